// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/config.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using kmodsync::Config;
using kmodsync::Root;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

// The error of `result`, or "" when it holds a value: safe to use in a lazily evaluated
// assertion message (doctest stringifies those for passing assertions too under -s).
template <typename T> std::string error_of(const kmodsync::Expected<T>& result)
{
  return result.has_value() ? std::string() : result.error();
}

const char* const k_own = "etc/kmodsync/kmodsync.conf";
const char* const k_framework = "etc/dkms/framework.conf";

Config load_ok(const TempDir& dir)
{
  auto config = Config::load(Root(dir.path()));
  REQUIRE_MESSAGE(config.has_value(), error_of(config));
  return *config;
}

std::string load_error(const TempDir& dir)
{
  auto config = Config::load(Root(dir.path()));
  REQUIRE_FALSE(config.has_value());
  return config.error();
}

// The start of DKMS 3's shipped framework.conf: bash, mostly commented out.
const char* const k_dkms_framework_head = R"(## This configuration file modifies the behavior of
## DKMS (Dynamic Kernel Module Support) and is sourced
## in by DKMS every time it is run.

## Source Tree Location (default: /usr/src)
# source_tree="/usr/src"

## DKMS Tree Location (default: /var/lib/dkms)
# dkms_tree="/var/lib/dkms"

## Number of parallel jobs (default: number of CPUs)
# parallel_jobs=$(nproc)

# sign_file="/usr/lib/linux-kbuild-6.1/scripts/sign-file"
if [ -z "$kernelver" ]; then kernelver=$(uname -r); fi
)";

} // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("without any file every setting has its default")
{
  const TempDir dir;
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "");
  CHECK(config.signing_certificate == "");
  CHECK(config.signing_origin == "");
  CHECK(config.signing_hash == "");
  CHECK(config.compression == "auto");
  CHECK(config.initramfs == "auto");
  CHECK(config.jobs == 0);
}

TEST_CASE("every key of kmodsync.conf is read, around comments and blank lines")
{
  const TempDir dir;
  write_text(dir / k_own, "# kmodsync settings\n"
                          "\n"
                          "signing_key = /etc/kmodsync/module.key\n"
                          "   # an indented comment\n"
                          "signing_certificate=/etc/kmodsync/module.crt\n"
                          "\t signing_hash =\tsha512  \n"
                          "compression = zstd\n"
                          "initramfs = never\n"
                          "jobs = 12\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/etc/kmodsync/module.key");
  CHECK(config.signing_certificate == "/etc/kmodsync/module.crt");
  CHECK(config.signing_origin == "/etc/kmodsync/kmodsync.conf:3");
  CHECK(config.signing_hash == "sha512");
  CHECK(config.compression == "zstd");
  CHECK(config.initramfs == "never");
  CHECK(config.jobs == 12);
}

TEST_CASE("each allowed value of the checked keys is accepted")
{
  for (const char* hash : {"sha256", "sha384", "sha512", "sha224", "sha1"}) {
    const TempDir dir;
    write_text(dir / k_own, std::string("signing_hash = ") + hash + "\n");
    CHECK(load_ok(dir).signing_hash == hash);
  }
  for (const char* compression : {"auto", "none", "xz", "zstd", "gzip"}) {
    const TempDir dir;
    write_text(dir / k_own, std::string("compression = ") + compression + "\n");
    CHECK(load_ok(dir).compression == compression);
  }
  const TempDir dir;
  write_text(dir / k_own, "initramfs = auto\njobs = 0\n");
  const Config config = load_ok(dir);
  CHECK(config.initramfs == "auto");
  CHECK(config.jobs == 0);
}

TEST_CASE("double and single quotes around a value are stripped, spaces inside kept")
{
  const TempDir dir;
  write_text(dir / k_own, "signing_key = \"/etc/my keys/module.key\"\n"
                          "signing_certificate = '/etc/my keys/module.crt'\n"
                          "compression = \"xz\"\n"
                          "jobs = '3'\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/etc/my keys/module.key");
  CHECK(config.signing_certificate == "/etc/my keys/module.crt");
  CHECK(config.compression == "xz");
  CHECK(config.jobs == 3);
}

TEST_CASE("an unknown key is an error naming the file and line as seen inside the root")
{
  const TempDir dir;
  write_text(dir / k_own, "# comment\ncompression = xz\nsign_file = /usr/bin/sign-file\n");
  CHECK(load_error(dir) == "/etc/kmodsync/kmodsync.conf:3: unknown setting \"sign_file\"");
}

TEST_CASE("a line that is not `key = value` is an error naming the file and line")
{
  {
    const TempDir dir;
    write_text(dir / k_own, "compression = xz\n\njust some words\n");
    CHECK(load_error(dir) == "/etc/kmodsync/kmodsync.conf:3: expected `key = value`, got \"just some words\"");
  }
  {
    const TempDir dir;
    write_text(dir / k_own, "= xz\n");
    CHECK(load_error(dir) == "/etc/kmodsync/kmodsync.conf:1: expected `key = value`, got \"= xz\"");
  }
  {
    // Not a shell file: `export` and other syntax are malformed here.
    const TempDir dir;
    write_text(dir / k_own, "jobs = 2\nexport jobs=3\n");
    CHECK(load_error(dir) == "/etc/kmodsync/kmodsync.conf:2: expected `key = value`, got \"export jobs=3\"");
  }
}

TEST_CASE("bad values are errors naming the file, line and value")
{
  struct Case
  {
    const char* line;
    const char* message;
  };
  for (const auto& [line, message] : {
         Case{"compression = bzip2", "/etc/kmodsync/kmodsync.conf:2: compression must be auto, none, xz, zstd or "
                                     "gzip, not \"bzip2\""},
         Case{"compression = XZ", "/etc/kmodsync/kmodsync.conf:2: compression must be auto, none, xz, zstd or "
                                  "gzip, not \"XZ\""},
         Case{"signing_hash = md5", "/etc/kmodsync/kmodsync.conf:2: signing_hash must be sha256, sha384, sha512, "
                                    "sha224 or sha1, not \"md5\""},
         Case{"initramfs = always", "/etc/kmodsync/kmodsync.conf:2: initramfs must be auto or never, not \"always\""},
         Case{"jobs = four", "/etc/kmodsync/kmodsync.conf:2: jobs must be a number, not \"four\""},
         Case{"jobs = 4x", "/etc/kmodsync/kmodsync.conf:2: jobs must be a number, not \"4x\""},
         Case{"jobs = -1", "/etc/kmodsync/kmodsync.conf:2: jobs must be a number, not \"-1\""},
         Case{"jobs =", "/etc/kmodsync/kmodsync.conf:2: jobs must be a number, not \"\""},
         Case{"jobs = 99999999999", "/etc/kmodsync/kmodsync.conf:2: jobs must be a number, not \"99999999999\""},
         Case{"cache_size = 2T", "/etc/kmodsync/kmodsync.conf:2: cache_size must be a size like 500M or 2G, not \"2T\""},
         Case{"cache_size = big", "/etc/kmodsync/kmodsync.conf:2: cache_size must be a size like 500M or 2G, not \"big\""},
         Case{"build_writable = /ok relative/dir", "/etc/kmodsync/kmodsync.conf:2: build_writable takes absolute directories, not \"relative/dir\""},
         Case{"remote_cache = ftp://x/", "/etc/kmodsync/kmodsync.conf:2: remote_cache must be an http:// or https:// URL, not \"ftp://x/\""},
         Case{"remote_cache_read_only = maybe", "/etc/kmodsync/kmodsync.conf:2: remote_cache_read_only must be yes or no, not \"maybe\""},
         Case{"remote_cache_layout = bazel", "/etc/kmodsync/kmodsync.conf:2: remote_cache_layout must be flat or subdirs, not \"bazel\""},
         Case{"remote_cache_timeout = 0", "/etc/kmodsync/kmodsync.conf:2: remote_cache_timeout must be a number of seconds, not \"0\""},
       }) {
    CAPTURE(line);
    const TempDir dir;
    write_text(dir / k_own, std::string("# settings\n") + line + "\n");
    CHECK(load_error(dir) == message);
  }
}

TEST_CASE("cache_size takes bytes, K, M or G, and defaults to 2 GiB")
{
  const TempDir dir;
  CHECK(load_ok(dir).cache_size == (2ull << 30));
  for (const auto& [text, bytes] : std::vector<std::pair<std::string, std::uint64_t>>{
         {"4096", 4096}, {"64K", 64ull << 10}, {"500M", 500ull << 20}, {"3G", 3ull << 30}}) {
    CAPTURE(text);
    write_text(dir / k_own, "cache_size = " + text + "\n");
    CHECK(load_ok(dir).cache_size == bytes);
  }
}

TEST_CASE("build confinement: a build user, modules built as root, extra writable directories")
{
  const TempDir dir;
  const Config defaults = load_ok(dir);
  CHECK(defaults.build_user.empty());
  CHECK(defaults.build_as_root.empty());
  CHECK(defaults.build_writable.empty());
  write_text(dir / k_own, "build_user = builder\nbuild_as_root = nvidia zfs\nbuild_writable = /var/cache/ccache /srv/x\n");
  const Config config = load_ok(dir);
  CHECK(config.build_user == "builder");
  CHECK(config.build_as_root == std::vector<std::string>{"nvidia", "zfs"});
  CHECK(config.build_as_root_origin == "/etc/kmodsync/kmodsync.conf:2");
  CHECK(config.build_writable == std::vector<std::string>{"/var/cache/ccache", "/srv/x"});
}

TEST_CASE("the remote cache: a URL, read-only or not, a layout and a timeout")
{
  const TempDir dir;
  const Config defaults = load_ok(dir);
  CHECK(defaults.remote_cache.empty());
  CHECK_FALSE(defaults.remote_cache_read_only);
  CHECK(defaults.remote_cache_layout == "flat");
  CHECK(defaults.remote_cache_timeout == 30);
  write_text(dir / k_own, "remote_cache = \"https://cache.example/kmodsync\"\nremote_cache_read_only = yes\n"
                          "remote_cache_layout = subdirs\nremote_cache_timeout = 5\n");
  const Config config = load_ok(dir);
  CHECK(config.remote_cache == "https://cache.example/kmodsync");
  CHECK(config.remote_cache_read_only);
  CHECK(config.remote_cache_layout == "subdirs");
  CHECK(config.remote_cache_timeout == 5);
}

TEST_CASE("DKMS's framework.conf provides the key, certificate and jobs when kmodsync.conf does not")
{
  const TempDir dir;
  write_text(dir / k_framework, std::string(k_dkms_framework_head)
                                  + "mok_signing_key=\"/x\"\n"
                                    "mok_certificate='/y'\n"
                                    "parallel_jobs=6\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/x");
  CHECK(config.signing_certificate == "/y");
  CHECK(config.signing_origin == "/etc/dkms/framework.conf:16");
  CHECK(config.jobs == 6);
  // Only those three are taken from it.
  CHECK(config.compression == "auto");
  CHECK(config.signing_hash == "");
}

TEST_CASE("framework.conf is shell: lines kmodsync cannot read are ignored, not errors")
{
  const TempDir dir;
  write_text(dir / k_framework, "parallel_jobs=$(nproc)\n"
                                "for f in a b; do :; done\n"
                                "unknown_dkms_setting=1\n"
                                "mok_signing_key=/var/lib/dkms/mok.key\n"
                                "mok_certificate=/var/lib/dkms/mok.pub\n");
  const Config config = load_ok(dir);
  CHECK(config.jobs == 0);
  CHECK(config.signing_key == "/var/lib/dkms/mok.key");
  CHECK(config.signing_certificate == "/var/lib/dkms/mok.pub");
  CHECK(config.signing_origin == "/etc/dkms/framework.conf:4");

  // Not half read either: 4x is not 4.
  write_text(dir / k_framework, "parallel_jobs=4x\n");
  CHECK(load_ok(dir).jobs == 0);
  write_text(dir / k_framework, "parallel_jobs=3\nparallel_jobs=5 # a comment\n");
  CHECK(load_ok(dir).jobs == 5);
}

TEST_CASE("framework.conf values are read as bash reads them, or not at all")
{
  const TempDir dir;
  const auto key_of = [&](const std::string& line) {
    write_text(dir / k_framework, "mok_certificate=/c\nmok_signing_key=/before\n" + line + "\n");
    return load_ok(dir).signing_key;
  };
  CHECK(key_of("mok_signing_key=/var/lib/shim-signed/mok/MOK.priv  # Ubuntu's key")
        == "/var/lib/shim-signed/mok/MOK.priv");
  CHECK(key_of("mok_signing_key=\"/with space/mok.key\" # quoted") == "/with space/mok.key");
  CHECK(key_of("mok_signing_key='/single/$literal'") == "/single/$literal");
  // What bash would expand or split is not guessed at: the earlier value stays.
  CHECK(key_of("mok_signing_key=$HOME/mok.key") == "/before");
  CHECK(key_of("mok_signing_key=\"${dkms_tree}/mok.key\"") == "/before");
  CHECK(key_of("mok_signing_key=/a /b") == "/before");
  CHECK(key_of("mok_signing_key=\"/unterminated") == "/before");
  CHECK(key_of("mok_signing_key=`cat /etc/key-path`") == "/before");
}

TEST_CASE("framework.conf.d/*.conf are read after framework.conf in name order, the later winning")
{
  const TempDir dir;
  write_text(dir / k_framework, "mok_signing_key=/base.key\nmok_certificate=/base.crt\nparallel_jobs=2\n");
  write_text(dir / "etc/dkms/framework.conf.d/20-second.conf", "mok_signing_key=/second.key\nparallel_jobs=8\n");
  write_text(dir / "etc/dkms/framework.conf.d/10-first.conf",
             "mok_signing_key=/first.key\nmok_certificate=/first.crt\nparallel_jobs=4\n");
  // Not *.conf: not read.
  write_text(dir / "etc/dkms/framework.conf.d/99-disabled.conf.bak", "mok_signing_key=/disabled.key\n");
  write_text(dir / "etc/dkms/framework.conf.d/README", "mok_signing_key=/readme.key\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/second.key");
  CHECK(config.signing_origin == "/etc/dkms/framework.conf.d/20-second.conf:1");
  CHECK(config.signing_certificate == "/first.crt");
  CHECK(config.jobs == 8);
}

TEST_CASE("framework.conf.d works without a framework.conf")
{
  const TempDir dir;
  write_text(dir / "etc/dkms/framework.conf.d/signing.conf", "mok_signing_key=/k\nmok_certificate=/c\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/k");
  CHECK(config.signing_certificate == "/c");
}

TEST_CASE("kmodsync.conf overrides framework.conf")
{
  const TempDir dir;
  write_text(dir / k_framework, "mok_signing_key=/dkms.key\nmok_certificate=/dkms.crt\nparallel_jobs=2\n");
  write_text(dir / "etc/dkms/framework.conf.d/50-local.conf", "parallel_jobs=3\n");
  write_text(dir / k_own, "jobs = 16\nsigning_key = /own.key\nsigning_certificate = /own.crt\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/own.key");
  CHECK(config.signing_certificate == "/own.crt");
  CHECK(config.signing_origin == "/etc/kmodsync/kmodsync.conf:2");
  CHECK(config.jobs == 16);
}

TEST_CASE("kmodsync.conf setting only the certificate keeps framework.conf's key")
{
  const TempDir dir;
  write_text(dir / k_framework, "mok_signing_key=/dkms.key\nmok_certificate=/dkms.crt\n");
  write_text(dir / k_own, "signing_certificate = /own.crt\n");
  const Config config = load_ok(dir);
  CHECK(config.signing_key == "/dkms.key");
  CHECK(config.signing_certificate == "/own.crt");
}

TEST_CASE("a signing key without a certificate is an error naming where the key was set")
{
  {
    const TempDir dir;
    write_text(dir / k_own, "compression = xz\nsigning_key = /etc/kmodsync/module.key\n");
    const std::string message = load_error(dir);
    CHECK(message.starts_with("/etc/kmodsync/kmodsync.conf:2: "));
    CHECK(message.find("certificate") != std::string::npos);
  }
  {
    const TempDir dir;
    write_text(dir / k_framework, "# DKMS\nmok_signing_key=/var/lib/dkms/mok.key\n");
    const std::string message = load_error(dir);
    CHECK(message.starts_with("/etc/dkms/framework.conf:2: "));
    CHECK(message.find("certificate") != std::string::npos);
  }
}

TEST_CASE("a certificate without a key is an error naming the kmodsync.conf line")
{
  const TempDir dir;
  write_text(dir / k_own, "jobs = 1\nsigning_certificate = /etc/kmodsync/module.crt\n");
  const std::string message = load_error(dir);
  CHECK(message.starts_with("/etc/kmodsync/kmodsync.conf"));
  CHECK(message.find("a signing key needs a certificate and a certificate a key") != std::string::npos);
}

TEST_CASE("a certificate without a key in framework.conf is an error naming framework.conf's line")
{
  const TempDir dir;
  write_text(dir / k_framework, "# DKMS\nmok_certificate=/var/lib/dkms/mok.pub\n");
  const std::string message = load_error(dir);
  CHECK(message.starts_with("/etc/dkms/framework.conf:2: "));
}

TEST_SUITE_END();
