// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kmodsync {

// A kbuild .config: CONFIG_X -> value, outer quotes stripped, "n" for `# CONFIG_X is not
// set`, the last line for an option winning as in kbuild. Every pass reads the .config of
// every kernel (some 10000 options each) for a handful of lookups, so the text is kept as
// it is and each option looked up is found in it once, then remembered; copies of a Kernel
// share both. Safe to use from several threads.
class KernelConfig
{
public:
  KernelConfig() = default;
  // For tests and fakes: the given entries.
  KernelConfig(std::initializer_list<std::pair<const std::string, std::string>> entries);
  KernelConfig(const std::map<std::string, std::string>& entries);

  static KernelConfig parse(std::string text);

  std::optional<std::string_view> find(std::string_view option) const;
  // No option at all (no .config, or one without entries).
  bool empty() const;
  // Every entry, parsed from the whole text: for tests and listings, not for lookups.
  std::map<std::string, std::string> entries() const;
  bool operator==(const KernelConfig& other) const { return entries() == other.entries(); }

private:
  struct Data
  {
    std::string text;
    std::mutex mutex;
    std::map<std::string, std::optional<std::string>, std::less<>> found;
  };
  std::shared_ptr<Data> m_data;
};

// One installed kernel, as found under ROOT/usr/lib/modules/KV (or ROOT/lib/modules/KV).
struct Kernel
{
  std::string release;                   // KV
  std::string arch;                      // e.g. x86_64
  std::filesystem::path modules_dir;     // ROOT/usr/lib/modules/KV
  std::optional<std::filesystem::path> headers_dir; // the kbuild tree `build` points at
  std::string missing_headers_reason;    // why headers_dir is empty
  KernelConfig config;                   // the headers' .config
  // Hash of what a module built against these headers depends on: .config,
  // Module.symvers, utsrelease.h. Empty when there are no headers.
  std::string fingerprint;

  bool buildable() const { return headers_dir.has_value(); }
  // True for CONFIG_X=y or =m, as BUILD_EXCLUSIVE_CONFIG tests it.
  bool config_enabled(const std::string& option) const;
};

// Finds every kernel of the root. A directory counts as a kernel when it has a `build`
// link, a `kernel/` tree or modules.order (a leftover directory holding only
// updates/ does not). Sorted by release, newest last.
class Memo;
// `memo` spares rehashing the headers of kernels seen before.
Expected<std::vector<Kernel>> discover_kernels(const Root& root, Memo& memo);
Expected<std::vector<Kernel>> discover_kernels(const Root& root);

// Parses a kbuild .config (`CONFIG_X=value`, `# CONFIG_X is not set`).
KernelConfig parse_kernel_config(std::string_view text);

} // namespace kmodsync
