// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/plan.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

using kmodsync::bash_regex_match;
using kmodsync::exclusion_reason;
using kmodsync::Kernel;
using kmodsync::ModuleSpec;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
using Reason = std::optional<std::string>;

namespace {

ModuleSpec autoinstalled()
{
  ModuleSpec spec;
  spec.name = "mymod";
  spec.version = "1.0";
  spec.autoinstall = "yes";
  return spec;
}

Kernel kernel(const std::string& release, const std::string& arch = "x86_64")
{
  Kernel result;
  result.release = release;
  result.arch = arch;
  result.config = {{"CONFIG_PCI", "y"}, {"CONFIG_VIDEO_DEV", "m"}, {"CONFIG_DRM", "n"}};
  return result;
}

} // namespace

TEST_SUITE_BEGIN("plan");

TEST_CASE("exclusion_reason: AUTOINSTALL unset or no keeps the module out")
{
  ModuleSpec spec = autoinstalled();
  spec.autoinstall = "";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == Reason("AUTOINSTALL is not set in dkms.conf"));
  spec.autoinstall = "no";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == Reason("AUTOINSTALL=\"no\" in dkms.conf"));
  spec.autoinstall = "yes";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
}

TEST_CASE("exclusion_reason: AUTOINSTALL is checked first")
{
  ModuleSpec spec = autoinstalled();
  spec.autoinstall = "";
  spec.build_exclusive_kernel = "^4\\.";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == Reason("AUTOINSTALL is not set in dkms.conf"));
}

TEST_CASE("exclusion_reason: BUILD_EXCLUSIVE_KERNEL is a regex on the release")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_kernel = "^6\\.1\\.";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
  CHECK(exclusion_reason(spec, kernel("6.12.107+deb12-amd64"))
        == Reason("BUILD_EXCLUSIVE_KERNEL=\"^6\\.1\\.\" does not match 6.12.107+deb12-amd64"));
  // Unanchored, as with bash's =~.
  spec.build_exclusive_kernel = "deb12";
  CHECK(exclusion_reason(spec, kernel("6.12.107+deb12-amd64")) == std::nullopt);
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")).has_value());
}

TEST_CASE("exclusion_reason: v4l2loopback's BUILD_EXCLUSIVE_KERNEL=\"REQUIRES CONFIG_VIDEO_DEV\" never matches")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_kernel = "REQUIRES CONFIG_VIDEO_DEV";
  for (const char* release : {"6.1.0-55-amd64", "6.12.107+deb12-amd64", "5.10.0-32-amd64", "6.7.0-rc5"}) {
    INFO(release);
    CHECK(exclusion_reason(spec, kernel(release))
          == Reason(std::string("BUILD_EXCLUSIVE_KERNEL=\"REQUIRES CONFIG_VIDEO_DEV\" does not match ") + release));
  }
}

TEST_CASE("exclusion_reason: BUILD_EXCLUSIVE_KERNEL_MIN and _MAX compare versions")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_kernel_min = "6.1";
  CHECK(exclusion_reason(spec, kernel("5.10.0-32-amd64"))
        == Reason("BUILD_EXCLUSIVE_KERNEL_MIN=\"6.1\": 5.10.0-32-amd64 is older"));
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
  CHECK(exclusion_reason(spec, kernel("6.12.107+deb12-amd64")) == std::nullopt);
  // Numeric, not textual: 6.9 is older than 6.10.
  spec.build_exclusive_kernel_min = "6.10";
  CHECK(exclusion_reason(spec, kernel("6.9.7-amd64")).has_value());
  CHECK(exclusion_reason(spec, kernel("6.10.1-amd64")) == std::nullopt);

  spec = autoinstalled();
  spec.build_exclusive_kernel_max = "6.1.999";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
  CHECK(exclusion_reason(spec, kernel("6.12.107+deb12-amd64"))
        == Reason("BUILD_EXCLUSIVE_KERNEL_MAX=\"6.1.999\": 6.12.107+deb12-amd64 is newer"));
  // The bounds themselves are allowed.
  spec.build_exclusive_kernel_min = "6.1.0-55-amd64";
  spec.build_exclusive_kernel_max = "6.1.0-55-amd64";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
}

TEST_CASE("exclusion_reason: BUILD_EXCLUSIVE_ARCH is a regex on the architecture")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_arch = "x86_64";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64", "x86_64")) == std::nullopt);
  spec.build_exclusive_arch = "aarch64|arm64";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64", "x86_64"))
        == Reason("BUILD_EXCLUSIVE_ARCH=\"aarch64|arm64\" does not match x86_64"));
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-arm64", "aarch64")) == std::nullopt);
}

TEST_CASE("exclusion_reason: BUILD_EXCLUSIVE_CONFIG wants y or m, and !CONFIG_X wants it off")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_config = "CONFIG_PCI CONFIG_VIDEO_DEV";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);

  spec.build_exclusive_config = "CONFIG_PCI CONFIG_USB";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64"))
        == Reason("BUILD_EXCLUSIVE_CONFIG: CONFIG_USB is not set in 6.1.0-55-amd64's .config"));
  spec.build_exclusive_config = "CONFIG_DRM";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64"))
        == Reason("BUILD_EXCLUSIVE_CONFIG: CONFIG_DRM is not set in 6.1.0-55-amd64's .config"));

  spec.build_exclusive_config = "!CONFIG_DRM !CONFIG_USB";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64")) == std::nullopt);
  spec.build_exclusive_config = "CONFIG_PCI !CONFIG_VIDEO_DEV";
  CHECK(exclusion_reason(spec, kernel("6.1.0-55-amd64"))
        == Reason("BUILD_EXCLUSIVE_CONFIG: CONFIG_VIDEO_DEV is set in 6.1.0-55-amd64's .config"));
}

TEST_CASE("exclusion_reason: BUILD_EXCLUSIVE_CONFIG is not checked when the kernel has no .config")
{
  ModuleSpec spec = autoinstalled();
  spec.build_exclusive_config = "CONFIG_USB";
  Kernel bare = kernel("6.1.0-55-amd64");
  bare.config = {};
  CHECK(exclusion_reason(spec, bare) == std::nullopt);
}

TEST_CASE("bash_regex_match: extended regex, unanchored")
{
  CHECK(bash_regex_match("6.1.0-55-amd64", "^6\\.1\\."));
  CHECK_FALSE(bash_regex_match("6.12.107+deb12-amd64", "^6\\.1\\."));
  CHECK(bash_regex_match("6.12.107+deb12-amd64", "\\+deb1[0-9]"));
  CHECK(bash_regex_match("5.10.0-32-amd64", "^(5\\.10|6\\.1)\\."));
  CHECK(bash_regex_match("x86_64", "^[[:alnum:]_]+$"));
  CHECK(bash_regex_match("anything", ""));
  CHECK_FALSE(bash_regex_match("6.1.0", "^6.1$"));
}

TEST_CASE("bash_regex_match: an invalid pattern matches nothing")
{
  CHECK_FALSE(bash_regex_match("(", "("));
  CHECK_FALSE(bash_regex_match("[", "["));
  CHECK_FALSE(bash_regex_match("a", "a{2,1}"));
  CHECK_FALSE(bash_regex_match("", "*"));
}

TEST_CASE("bash_regex_match agrees with bash's own =~")
{
  const std::vector<std::pair<std::string, std::string>> cases = {
    {"6.1.0-55-amd64", "^6\\.1\\."},
    {"6.12.107+deb12-amd64", "^6\\.1\\."},
    {"6.12.107+deb12-amd64", "^6\\.1[0-9]?\\."},
    {"6.12.107+deb12-amd64", "deb12"},
    {"6.1.0-55-amd64", "REQUIRES CONFIG_VIDEO_DEV"},
    {"x86_64", "x86_64|aarch64"},
    {"armv7l", "^arm"},
    {"6.1.0", "^6.1$"},
    {"aa", "(a)\\1"},
    {"6.1.0-55-rt-amd64", "-rt-"},
    {"5.15.0-91-generic", "^5\\.(4|15)\\.0-[0-9]+-generic$"},
    {"(", "("},
    {"a", "a{2,1}"},
    {"anything", ""},
  };
  const TempDir dir;
  std::string script;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    write_text(dir / ("text" + std::to_string(i)), cases[i].first);
    write_text(dir / ("pattern" + std::to_string(i)), cases[i].second);
    script += "t=$(<text" + std::to_string(i) + "); p=$(<pattern" + std::to_string(i)
              + "); if [[ $t =~ $p ]]; then echo 1; else echo 0; fi\n";
  }
  write_text(dir / "script", script);
  const std::string answers =
    kmodsync::testing::shell_output("cd " + dir.path().string() + " && bash script 2>/dev/null");
  const auto lines = kmodsync::testing::split_at_newlines(answers);
  REQUIRE(lines.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("[[ ", cases[i].first, " =~ ", cases[i].second, " ]]");
    CHECK(bash_regex_match(cases[i].first, cases[i].second) == (lines[i] == "1"));
  }
}

TEST_SUITE_END();
