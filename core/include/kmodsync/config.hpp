// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace kmodsync {

// kmodsync's settings: ROOT/etc/kmodsync/kmodsync.conf (`key = value` lines, `#`
// comments), falling back for what it does not set to DKMS's
// /etc/dkms/framework.conf and framework.conf.d/*.conf (mok_signing_key,
// mok_certificate, parallel_jobs), so a system switching from DKMS keeps its key.
struct Config
{
  // Paths as seen on the managed system. Empty: no key configured.
  std::string signing_key;
  std::string signing_certificate;
  // Where a setting came from, for messages ("/etc/kmodsync/kmodsync.conf:3").
  std::string signing_origin;
  std::string signing_hash;           // empty: the kernel's CONFIG_MODULE_SIG_HASH, else sha256
  std::string compression = "auto";   // auto (as the kernel's own modules) | none | xz | zstd | gzip
  std::string initramfs = "auto";     // auto | never
  unsigned jobs = 0;                  // 0: number of CPUs
  std::uint64_t cache_size = 2ull << 30; // the build cache's bound (`cache_size = 2G`)
  // A fleet's shared store of build results: plain HTTP GET/PUT under this URL. Empty: none.
  std::string remote_cache;
  bool remote_cache_read_only = false;       // fetch, never upload
  std::string remote_cache_layout = "flat";  // flat: URL/KEY; subdirs: URL/KE/Y... (as ccache's)
  unsigned remote_cache_timeout = 30;        // seconds per request
  // Who runs strangers' code (dkms.conf, PRE_BUILD, MAKE, POST_BUILD): empty means
  // `_kmodsync` when that user exists, else `nobody`.
  std::string build_user;
  // PACKAGE_NAMEs built as root, unconfined (`*`: all); reported whenever used.
  std::vector<std::string> build_as_root;
  std::string build_as_root_origin;
  // Directories builds may write besides their own (e.g. a ccache directory).
  std::vector<std::string> build_writable;

  // An unknown key, a malformed line or a bad value is an error naming the file and line.
  static Expected<Config> load(const Root& root);
};

// Default places of the key pair that `kmodsync keygen` creates.
inline constexpr const char* k_default_signing_key = "/var/lib/kmodsync/signing.key";
inline constexpr const char* k_default_signing_certificate = "/var/lib/kmodsync/signing.crt";
// DKMS's defaults: used when they exist, so modules keep the key already enrolled with MOK.
inline constexpr const char* k_dkms_signing_key = "/var/lib/dkms/mok.key";
inline constexpr const char* k_dkms_signing_certificate = "/var/lib/dkms/mok.pub";

// The key pair a pass signs with (paths on the managed system): the configured one, else
// kmodsync's default pair, else DKMS's, each of those two only when both files exist.
// Both empty when there is none.
struct SigningPair
{
  std::string key;
  std::string certificate;
};
SigningPair signing_pair(const Root& root, const Config& config);

} // namespace kmodsync
