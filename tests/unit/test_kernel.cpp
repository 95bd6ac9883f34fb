// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/kernel.hpp"
#include "kmodsync/root.hpp"

#include <doctest/doctest.h>

#include <sys/utsname.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::discover_kernels;
using kmodsync::Kernel;
using kmodsync::KernelConfig;
using kmodsync::parse_kernel_config;
using kmodsync::Root;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
using Config = std::map<std::string, std::string>;

namespace {

const char* const k_config = R"(#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"
CONFIG_CC_IS_GCC=y
CONFIG_GCC_VERSION=120200
# CONFIG_CC_IS_CLANG is not set
CONFIG_LOCALVERSION=""
CONFIG_VIDEO_DEV=m
CONFIG_MODVERSIONS=y
)";

std::vector<std::string> releases(const std::vector<Kernel>& kernels)
{
  std::vector<std::string> names;
  for (const auto& kernel : kernels) {
    names.push_back(kernel.release);
  }
  return names;
}

const Kernel* find(const std::vector<Kernel>& kernels, const std::string& release)
{
  for (const auto& kernel : kernels) {
    if (kernel.release == release) {
      return &kernel;
    }
  }
  return nullptr;
}

std::string machine()
{
  utsname name{};
  REQUIRE(uname(&name) == 0);
  return name.machine;
}

} // namespace

TEST_SUITE_BEGIN("kernel");

TEST_CASE("parse_kernel_config: values, quoted strings, and 'is not set' as n")
{
  CHECK(parse_kernel_config(k_config)
        == Config{
          {"CONFIG_CC_VERSION_TEXT", "gcc-12 (Debian 12.2.0-14) 12.2.0"},
          {"CONFIG_CC_IS_GCC", "y"},
          {"CONFIG_GCC_VERSION", "120200"},
          {"CONFIG_CC_IS_CLANG", "n"},
          {"CONFIG_LOCALVERSION", ""},
          {"CONFIG_VIDEO_DEV", "m"},
          {"CONFIG_MODVERSIONS", "y"},
        });
}

TEST_CASE("parse_kernel_config: the last line for an option wins, as in kbuild")
{
  CHECK(parse_kernel_config("CONFIG_A=y\n# CONFIG_A is not set\n# CONFIG_B is not set\nCONFIG_B=m\n")
        == Config{{"CONFIG_A", "n"}, {"CONFIG_B", "m"}});
}

TEST_CASE("parse_kernel_config ignores comments, blank lines and lines that are not options")
{
  CHECK(parse_kernel_config("").empty());
  CHECK(parse_kernel_config("\n# just a comment\n#CONFIG_X is not set\nCONFIG_NO_VALUE\nFOO=y\n").empty());
  // A value keeps everything after the first '='; only a pair of outer quotes goes.
  CHECK(parse_kernel_config("CONFIG_CMDLINE=\"root=/dev/sda1 quiet\"\nCONFIG_Q=\"\n")
        == Config{{"CONFIG_CMDLINE", "root=/dev/sda1 quiet"}, {"CONFIG_Q", "\""}});
}

TEST_CASE("KernelConfig::find finds an option as a line-by-line parse would")
{
  const auto config = parse_kernel_config("#\n# CONFIG_A is not set\nCONFIG_B=\"quoted\"\n"
                                          "  CONFIG_C=y\n# CONFIG_D=y\nXCONFIG_E=y\nCONFIG_F=1\n"
                                          "CONFIG_FF=2\nCONFIG_A=m\n# CONFIG_B is not set\nCONFIG_G=a=b\n"
                                          "# CONFIG_H is not set here\nCONFIG_LAST=end");
  CHECK(config.find("CONFIG_A") == "m");   // the later line wins, whichever form
  CHECK(config.find("CONFIG_B") == "n");
  CHECK(config.find("CONFIG_C") == std::nullopt); // not at the start of its line
  CHECK(config.find("CONFIG_D") == std::nullopt); // a commented-out assignment
  CHECK(config.find("CONFIG_E") == std::nullopt);
  CHECK(config.find("CONFIG_F") == "1");   // not CONFIG_FF's line
  CHECK(config.find("CONFIG_FF") == "2");
  CHECK(config.find("CONFIG_G") == "a=b");
  CHECK(config.find("CONFIG_G=a") == std::nullopt);
  CHECK(config.find("CONFIG_H") == std::nullopt);
  CHECK(config.find("CONFIG_LAST") == "end"); // no final newline
  CHECK(config.find("A") == std::nullopt);
  CHECK(config.find("") == std::nullopt);
  // Asked twice, from the cache, and from a copy: the same answers.
  const auto copy = config;
  CHECK(copy.find("CONFIG_A") == "m");
  CHECK(copy.find("CONFIG_C") == std::nullopt);
  CHECK(config.entries()
        == Config{{"CONFIG_A", "m"}, {"CONFIG_B", "n"}, {"CONFIG_F", "1"}, {"CONFIG_FF", "2"}, {"CONFIG_G", "a=b"},
                  {"CONFIG_LAST", "end"}});
  CHECK_FALSE(config.empty());
  CHECK(parse_kernel_config("# just comments\n#\n").empty());
  CHECK(KernelConfig().empty());
  CHECK(KernelConfig{{"CONFIG_X", "y"}}.find("CONFIG_X") == "y");
}

TEST_CASE("Kernel::config_enabled is true for y and m only")
{
  Kernel kernel;
  kernel.config = parse_kernel_config(k_config);
  CHECK(kernel.config_enabled("CONFIG_CC_IS_GCC"));
  CHECK(kernel.config_enabled("CONFIG_VIDEO_DEV"));
  CHECK_FALSE(kernel.config_enabled("CONFIG_CC_IS_CLANG"));
  CHECK_FALSE(kernel.config_enabled("CONFIG_GCC_VERSION"));
  CHECK_FALSE(kernel.config_enabled("CONFIG_MISSING"));
  CHECK_FALSE(kernel.buildable());
}

TEST_CASE("discover_kernels finds each kernel once, with headers, config and fingerprint")
{
  const TempDir root_dir;
  const TempDir host_dir; // headers "installed on the host", outside the root
  const fs::path modules = root_dir / "usr/lib/modules";
  fs::create_directories(modules);
  fs::create_directory_symlink("usr/lib", root_dir / "lib");

  // A: headers inside the root, through an absolute link as Debian ships it.
  const fs::path headers_a = root_dir / "usr/src/linux-headers-6.1.0-55-amd64";
  write_text(headers_a / "Makefile", "# kbuild\n");
  write_text(headers_a / ".config", k_config);
  fs::create_directories(modules / "6.1.0-55-amd64/kernel");
  fs::create_symlink("/usr/src/linux-headers-6.1.0-55-amd64", modules / "6.1.0-55-amd64/build");
  // B: the headers package was removed; the link dangles (inside the root and on the host,
  // which may well have real headers of the same release, hence the odd name).
  fs::create_directories(modules / "6.12.107+deb12-amd64/kernel");
  fs::create_symlink("/usr/src/linux-headers-kmodsync-unittest-removed", modules / "6.12.107+deb12-amd64/build");
  // C: a leftover directory with only updates/: not a kernel.
  fs::create_directories(modules / "6.0.0-leftover/updates/dkms");
  write_text(modules / "6.0.0-leftover/updates/dkms/old.ko", "stale");
  // D: a kernel without any build link.
  fs::create_directories(modules / "5.10.0-32-amd64/kernel");
  write_text(modules / "5.10.0-32-amd64/modules.order", "");
  // E: a relative build link to a directory that is no kbuild tree.
  fs::create_directories(root_dir / "usr/src/not-headers");
  fs::create_directories(modules / "6.1.0-9-amd64");
  fs::create_symlink("../../../src/not-headers", modules / "6.1.0-9-amd64/build");
  // F: a build link whose absolute target exists only on the host.
  write_text(host_dir / "headers/Makefile", "# kbuild\n");
  write_text(host_dir / "headers/.config", "CONFIG_CC_IS_CLANG=y\n");
  fs::create_directories(modules / "6.5.0-host");
  fs::create_symlink(host_dir / "headers", modules / "6.5.0-host/build");
  // A plain file among the kernels is not one.
  write_text(modules / "README", "not a kernel\n");

  const auto kernels = discover_kernels(Root(root_dir.path()));
  REQUIRE_MESSAGE(kernels.has_value(), kernels.error());
  CHECK(releases(*kernels)
        == std::vector<std::string>{"5.10.0-32-amd64", "6.1.0-9-amd64", "6.1.0-55-amd64", "6.5.0-host",
                                    "6.12.107+deb12-amd64"});

  const Kernel* a = find(*kernels, "6.1.0-55-amd64");
  REQUIRE(a != nullptr);
  CHECK(a->buildable());
  REQUIRE(a->headers_dir.has_value());
  CHECK(*a->headers_dir == headers_a);
  CHECK(a->modules_dir == modules / "6.1.0-55-amd64");
  CHECK(a->missing_headers_reason == "");
  CHECK(a->config == parse_kernel_config(k_config));
  CHECK(a->config_enabled("CONFIG_VIDEO_DEV"));
  CHECK(a->fingerprint.size() == 64);
  CHECK(a->arch == machine());

  const Kernel* b = find(*kernels, "6.12.107+deb12-amd64");
  REQUIRE(b != nullptr);
  CHECK_FALSE(b->buildable());
  CHECK(b->missing_headers_reason.find((modules / "6.12.107+deb12-amd64/build").string()) != std::string::npos);
  CHECK(b->missing_headers_reason.find("does not exist") != std::string::npos);
  CHECK(b->config.empty());
  CHECK(b->fingerprint == "");

  const Kernel* d = find(*kernels, "5.10.0-32-amd64");
  REQUIRE(d != nullptr);
  CHECK_FALSE(d->buildable());
  CHECK(d->missing_headers_reason.find((modules / "5.10.0-32-amd64/build").string()) != std::string::npos);

  const Kernel* e = find(*kernels, "6.1.0-9-amd64");
  REQUIRE(e != nullptr);
  CHECK_FALSE(e->buildable());
  CHECK(e->missing_headers_reason.find("no Makefile") != std::string::npos);
  CHECK(e->missing_headers_reason.find((root_dir / "usr/src/not-headers").string()) != std::string::npos);

  const Kernel* f = find(*kernels, "6.5.0-host");
  REQUIRE(f != nullptr);
  CHECK(f->buildable());
  CHECK(f->headers_dir == std::optional<fs::path>(host_dir / "headers"));
  CHECK(f->config == Config{{"CONFIG_CC_IS_CLANG", "y"}});
  CHECK(f->fingerprint.size() == 64);
  CHECK(f->fingerprint != a->fingerprint);
}

TEST_CASE("the fingerprint follows .config, Module.symvers and utsrelease.h")
{
  const TempDir root_dir;
  const fs::path headers = root_dir / "usr/src/linux-headers-6.1.0-55-amd64";
  write_text(headers / "Makefile", "# kbuild\n");
  write_text(headers / ".config", k_config);
  fs::create_directories(root_dir / "usr/lib/modules/6.1.0-55-amd64");
  fs::create_symlink(headers, root_dir / "usr/lib/modules/6.1.0-55-amd64/build");
  const Root root(root_dir.path());

  const auto fingerprint = [&] {
    const auto kernels = discover_kernels(root);
    REQUIRE(kernels.has_value());
    REQUIRE(kernels->size() == 1);
    return kernels->front().fingerprint;
  };
  const std::string original = fingerprint();
  CHECK(fingerprint() == original);
  write_text(headers / "Makefile", "# a Makefile change is not part of it\n");
  CHECK(fingerprint() == original);

  write_text(headers / ".config", std::string(k_config) + "CONFIG_NEW=y\n");
  const std::string new_config = fingerprint();
  CHECK(new_config != original);
  write_text(headers / "Module.symvers", "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n");
  const std::string with_symvers = fingerprint();
  CHECK(with_symvers != new_config);
  write_text(headers / "include/generated/utsrelease.h", "#define UTS_RELEASE \"6.1.0-55-amd64\"\n");
  CHECK(fingerprint() != with_symvers);
}

TEST_CASE("discover_kernels: /lib/modules alone, and a separate /lib/modules copy counts once")
{
  const TempDir root_dir;
  fs::create_directories(root_dir / "lib/modules/6.1.0-55-amd64/kernel");
  fs::create_directories(root_dir / "lib/modules/5.10.0-32-amd64/kernel");
  fs::create_directories(root_dir / "usr/lib/modules/6.1.0-55-amd64/kernel");

  const auto kernels = discover_kernels(Root(root_dir.path()));
  REQUIRE(kernels.has_value());
  CHECK(releases(*kernels) == std::vector<std::string>{"5.10.0-32-amd64", "6.1.0-55-amd64"});
  const Kernel* usr = find(*kernels, "6.1.0-55-amd64");
  REQUIRE(usr != nullptr);
  CHECK(usr->modules_dir == root_dir / "usr/lib/modules/6.1.0-55-amd64");
  const Kernel* lib = find(*kernels, "5.10.0-32-amd64");
  REQUIRE(lib != nullptr);
  CHECK(lib->modules_dir == root_dir / "lib/modules/5.10.0-32-amd64");
}

// entry.is_directory(ec) on a dangling symlink sets ENOENT; when that error_code was the one
// of the listing and the link the last entry, the whole discovery once failed with
// "cannot list".
TEST_CASE("a dangling symlink among the module directories is ignored")
{
  const TempDir root_dir;
  fs::create_directories(root_dir / "usr/lib/modules/6.1.0-55-amd64/kernel");
  fs::create_directories(root_dir / "lib/modules");
  fs::create_symlink("/kmodsync-unittest-gone", root_dir / "lib/modules/6.0.0-gone");
  const auto kernels = discover_kernels(Root(root_dir.path()));
  REQUIRE_MESSAGE(kernels.has_value(), kernels.error());
  CHECK(releases(*kernels) == std::vector<std::string>{"6.1.0-55-amd64"});
}

TEST_CASE("discover_kernels of a root without module directories is empty")
{
  const TempDir root_dir;
  const auto kernels = discover_kernels(Root(root_dir.path()));
  REQUIRE(kernels.has_value());
  CHECK(kernels->empty());
}

TEST_SUITE_END();
