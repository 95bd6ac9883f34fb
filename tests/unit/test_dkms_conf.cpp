// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/dkms_conf.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kmodsync::DkmsConfContext;
using kmodsync::DkmsConfValues;
using kmodsync::evaluate_dkms_conf;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
using Array = std::map<unsigned long, std::string>;
using Clock = std::chrono::steady_clock;

namespace {

DkmsConfContext context_for(const TempDir& dir)
{
  DkmsConfContext context;
  context.kernelver = "6.1.0-55-amd64";
  context.arch = "x86_64";
  context.kernel_source_dir = (dir / "headers").string();
  context.dkms_tree = "/var/lib/dkms";
  context.source_tree = "/usr/src";
  context.install_tree = "/lib/modules";
  context.module = "mymod";
  context.module_version = "1.0";
  context.timeout = 10s;
  return context;
}

// Writes `text` as DIR/src/dkms.conf and evaluates it.
kmodsync::Expected<DkmsConfValues> evaluate(const TempDir& dir, const std::string& text,
                                            const DkmsConfContext& context)
{
  write_text(dir / "src/dkms.conf", text);
  return evaluate_dkms_conf(dir / "src/dkms.conf", context);
}

DkmsConfValues evaluate_ok(const TempDir& dir, const std::string& text, const DkmsConfContext& context)
{
  auto values = evaluate(dir, text, context);
  REQUIRE_MESSAGE(values.has_value(), values.error());
  return *values;
}

} // namespace

TEST_SUITE_BEGIN("dkms_conf");

TEST_CASE("scalars and arrays are read back, and only the variables DKMS reads")
{
  const TempDir dir;
  const auto values = evaluate_ok(dir, R"CONF(
PACKAGE_NAME="v4l2loopback"
PACKAGE_VERSION=0.12.7
MAKE[0]="make all"
MAKE[1]='make other'
BUILT_MODULE_NAME[0]=a
BUILT_MODULE_NAME[1]=b
BUILT_MODULE_NAME[2]=c
DEST_MODULE_LOCATION=(/extra /updates/dkms /kernel/drivers/misc)
PATCH[2]="only-the-third.patch"
NOT_A_DKMS_VARIABLE=1
AUTOINSTALL="yes"
)CONF", context_for(dir));
  CHECK(values.variables
        == std::map<std::string, Array>{
          {"PACKAGE_NAME", {{0, "v4l2loopback"}}},
          {"PACKAGE_VERSION", {{0, "0.12.7"}}},
          {"MAKE", {{0, "make all"}, {1, "make other"}}},
          {"BUILT_MODULE_NAME", {{0, "a"}, {1, "b"}, {2, "c"}}},
          {"DEST_MODULE_LOCATION", {{0, "/extra"}, {1, "/updates/dkms"}, {2, "/kernel/drivers/misc"}}},
          {"PATCH", {{2, "only-the-third.patch"}}},
          {"AUTOINSTALL", {{0, "yes"}}},
        });
}

TEST_CASE("DkmsConfValues::get, has and size")
{
  DkmsConfValues values;
  values.variables["MAKE"][0] = "make";
  values.variables["MAKE"][1] = "make other";
  values.variables["PATCH"][2] = "third.patch";
  values.variables["EMPTY"][0] = "";
  CHECK(values.get("MAKE") == "make");
  CHECK(values.get("MAKE", 1) == "make other");
  CHECK(values.get("MAKE", 2) == "");
  CHECK(values.get("MISSING") == "");
  CHECK(values.get("MISSING", 5) == "");
  CHECK(values.get("PATCH") == "");
  CHECK(values.get("PATCH", 2) == "third.patch");
  CHECK(values.has("MAKE"));
  CHECK(values.has("EMPTY"));
  CHECK_FALSE(values.has("MISSING"));
  CHECK(values.size("MAKE") == 2);
  CHECK(values.size("PATCH") == 3);
  CHECK(values.size("EMPTY") == 1);
  CHECK(values.size("MISSING") == 0);
}

TEST_CASE("a value with newlines, quotes, '=' and spaces comes back exactly")
{
  const TempDir dir;
  const auto values = evaluate_ok(dir, R"CONF(
POST_BUILD=$'first line\nsecond "quoted" = \'single\'\n  \tindented  END\n'
PRE_BUILD="a=b c=d"
CLEAN=" "
MAKE[0]=''
)CONF", context_for(dir));
  CHECK(values.get("POST_BUILD") == "first line\nsecond \"quoted\" = 'single'\n  \tindented  END\n");
  CHECK(values.get("PRE_BUILD") == "a=b c=d");
  CHECK(values.get("CLEAN") == " ");
  CHECK(values.has("MAKE"));
  CHECK(values.get("MAKE") == "");
}

TEST_CASE("the context variables are visible to the dkms.conf")
{
  const TempDir dir;
  auto context = context_for(dir);
  context.kernel_source_dir = "/lib/modules/6.1.0-55-amd64/build";
  const auto values = evaluate_ok(dir, R"CONF(
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/x"
PACKAGE_NAME="$module"
PACKAGE_VERSION="$module_version"
BUILT_MODULE_NAME[0]="m-$kernelver-$arch"
PRE_BUILD="$source_tree $install_tree"
)CONF", context);
  CHECK(values.get("MAKE") == "make -C /lib/modules/6.1.0-55-amd64/build M=/var/lib/dkms/x");
  CHECK(values.get("PACKAGE_NAME") == "mymod");
  CHECK(values.get("PACKAGE_VERSION") == "1.0");
  CHECK(values.get("BUILT_MODULE_NAME") == "m-6.1.0-55-amd64-x86_64");
  CHECK(values.get("PRE_BUILD") == "/usr/src /lib/modules");
}

TEST_CASE("a dkms.conf that sources the kernel's .config and uses sort -V, as v4l2loopback's does")
{
  // Shaped like Debian's v4l2loopback dkms.conf: refuse kernels without V4L2 through an
  // impossible BUILD_EXCLUSIVE_KERNEL, and pick a make line by kernel version.
  const std::string conf = R"CONF(
PACKAGE_NAME="v4l2loopback"
PACKAGE_VERSION="0.12.7"
if [ -f $kernel_source_dir/.config ]; then
    . $kernel_source_dir/.config
    if ! { echo "${CONFIG_VIDEO_DEV}" | grep -qE "^[ym]$"; }; then
        BUILD_EXCLUSIVE_KERNEL="REQUIRES CONFIG_VIDEO_DEV"
    fi
fi
if [ "$(printf '%s\n' 5.18 "$kernelver" | sort -V | head -n1)" = 5.18 ]; then
    MAKE[0]="make KERNEL_DIR=${kernel_source_dir} all NEW_API=1"
else
    MAKE[0]="make KERNEL_DIR=${kernel_source_dir} all"
fi
BUILT_MODULE_NAME[0]="$PACKAGE_NAME"
DEST_MODULE_LOCATION[0]="/extra"
AUTOINSTALL=yes
)CONF";
  const TempDir dir;
  auto context = context_for(dir);

  SUBCASE("6.1 with CONFIG_VIDEO_DEV=m")
  {
    write_text(dir / "headers/.config", "CONFIG_VIDEO_DEV=m\nCONFIG_MODULES=y\n");
    const auto values = evaluate_ok(dir, conf, context);
    CHECK_FALSE(values.has("BUILD_EXCLUSIVE_KERNEL"));
    CHECK(values.get("MAKE") == "make KERNEL_DIR=" + context.kernel_source_dir + " all NEW_API=1");
    CHECK(values.get("BUILT_MODULE_NAME") == "v4l2loopback");
    // The .config's own variables are not among the results.
    CHECK_FALSE(values.has("CONFIG_VIDEO_DEV"));
  }
  SUBCASE("5.10 without V4L2")
  {
    context.kernelver = "5.10.0-32-amd64";
    write_text(dir / "headers/.config", "# CONFIG_VIDEO_DEV is not set\nCONFIG_MODULES=y\n");
    const auto values = evaluate_ok(dir, conf, context);
    CHECK(values.get("BUILD_EXCLUSIVE_KERNEL") == "REQUIRES CONFIG_VIDEO_DEV");
    CHECK(values.get("MAKE") == "make KERNEL_DIR=" + context.kernel_source_dir + " all");
  }
}

TEST_CASE("a dkms.conf's chatter on stdout and stderr does not disturb the values")
{
  const TempDir dir;
  const auto values = evaluate_ok(dir, R"CONF(
for i in $(seq 1 5000); do echo "PACKAGE_NAME=wrong-$i"; printf 'END\0PACKAGE_NAME\0000\0x\0'; done
echo "warning: this goes to stderr" >&2
PACKAGE_NAME=right
printf 'PACKAGE_NAME\0000\0forged\0END\0000\0' >&3 2>/dev/null
PACKAGE_VERSION=2
)CONF", context_for(dir));
  CHECK(values.get("PACKAGE_NAME") == "right");
  CHECK(values.get("PACKAGE_VERSION") == "2");
  CHECK(values.variables.size() == 2);
}

TEST_CASE("stdin is closed: a dkms.conf that reads does not hang")
{
  const TempDir dir;
  auto context = context_for(dir);
  context.timeout = 5s;
  const auto values = evaluate_ok(dir, "read -r line\nPACKAGE_NAME=\"got:$line\"\n", context);
  CHECK(values.get("PACKAGE_NAME") == "got:");
}

TEST_CASE("a syntax error is an error naming the file and the line")
{
  const TempDir dir;
  const auto values = evaluate(dir, "PACKAGE_NAME=x\nif true; then\n  MAKE[0]=make\nfi fi\n", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  const std::string conf = (dir / "src/dkms.conf").string();
  CHECK(values.error().starts_with("bash rejects " + conf + ": "));
  CHECK(values.error().find(conf + ": line 4: syntax error") != std::string::npos);
}

// bash 5.2 reports an unterminated quote only as "unexpected EOF while looking for matching
// `\"'", without "syntax error"; it was once missed and the values before the broken line
// were returned as if the file were fine.
TEST_CASE("an unterminated quote is an error naming the file and the line")
{
  const TempDir dir;
  const auto values = evaluate(dir, "PACKAGE_NAME=x\nMAKE[0]=\"make\nAUTOINSTALL=yes\n", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  const std::string conf = (dir / "src/dkms.conf").string();
  CHECK(values.error().find(conf) != std::string::npos);
  CHECK(values.error().find("line 2") != std::string::npos);
}

// Once, "syntax error" anywhere in the output (here from expr) was taken for bash rejecting
// the file, though the file is valid and fully read.
TEST_CASE("another program's \"syntax error\" on stderr does not reject a valid dkms.conf")
{
  const TempDir dir;
  const auto values = evaluate(dir, "MINOR=$(expr 1 + 2 +)\nPACKAGE_NAME=x\nPACKAGE_VERSION=1\n", context_for(dir));
  REQUIRE_MESSAGE(values.has_value(), values.error());
  CHECK(values->get("PACKAGE_NAME") == "x");
  CHECK(values->get("PACKAGE_VERSION") == "1");
}

TEST_CASE("a dkms.conf that exits is an error naming the file")
{
  const TempDir dir;
  const auto values = evaluate(dir, "PACKAGE_NAME=x\nexit 3\nPACKAGE_VERSION=1\n", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  const std::string conf = (dir / "src/dkms.conf").string();
  CHECK(values.error().starts_with(conf + ": "));
  CHECK(values.error().find("exit status 3") != std::string::npos);
}

TEST_CASE("a dkms.conf that never ends is stopped at the time limit")
{
  const TempDir dir;
  auto context = context_for(dir);
  context.timeout = 500ms;
  const auto start = Clock::now();
  const auto values = evaluate(dir, "PACKAGE_NAME=x\nwhile :; do :; done\n", context);
  const auto elapsed = Clock::now() - start;
  CHECK(elapsed >= 500ms);
  CHECK(elapsed < 2s);
  REQUIRE_FALSE(values.has_value());
  const std::string conf = (dir / "src/dkms.conf").string();
  CHECK(values.error() == conf + ": evaluating it with bash did not finish within 0.5 s");
}

TEST_CASE("/etc/dkms overrides are sourced after the dkms.conf, most specific last")
{
  const TempDir dir;
  auto context = context_for(dir);
  context.overrides_dir = (dir / "etc/dkms").string();
  write_text(dir / "etc/dkms/mymod.conf", "MAKE[0]=\"make from override\"\nCLEAN=name\nPOST_BUILD=name\n");
  write_text(dir / "etc/dkms/mymod-1.0.conf", "CLEAN=name-version\nPRE_BUILD=name-version\n");
  write_text(dir / "etc/dkms/mymod-1.0-6.1.0-55-amd64.conf", "PRE_BUILD=name-version-kernel\n");
  write_text(dir / "etc/dkms/mymod-1.0-6.1.0-55-amd64-x86_64.conf", "POST_INSTALL=\"$MAKE\"\n");
  write_text(dir / "etc/dkms/othermod.conf", "MAKE[0]=\"make from another module\"\n");
  write_text(dir / "etc/dkms/mymod-2.0.conf", "CLEAN=\"another version\"\n");
  const auto values = evaluate_ok(dir, "PACKAGE_NAME=mymod\nMAKE[0]=\"make from conf\"\nCLEAN=conf\n", context);
  CHECK(values.get("MAKE") == "make from override");
  CHECK(values.get("CLEAN") == "name-version");
  CHECK(values.get("POST_BUILD") == "name");
  CHECK(values.get("PRE_BUILD") == "name-version-kernel");
  CHECK(values.get("POST_INSTALL") == "make from override");

  // Without overrides_dir, none of them applies.
  context.overrides_dir = "";
  const auto plain = evaluate_ok(dir, "PACKAGE_NAME=mymod\nMAKE[0]=\"make from conf\"\nCLEAN=conf\n", context);
  CHECK(plain.get("MAKE") == "make from conf");
  CHECK(plain.get("CLEAN") == "conf");
  CHECK_FALSE(plain.has("POST_BUILD"));
}

TEST_CASE("the environment is clean: the caller's variables do not reach the dkms.conf")
{
  const TempDir dir;
  REQUIRE(setenv("KMODSYNC_LEAK", "1", 1) == 0);
  REQUIRE(setenv("CONFIG_VIDEO_DEV", "y", 1) == 0);
  const auto values = evaluate(dir, R"CONF(
PACKAGE_NAME="leak:${KMODSYNC_LEAK-unset}"
PACKAGE_VERSION="${CONFIG_VIDEO_DEV-unset}"
MAKE[0]="$PATH"
CLEAN="$LC_ALL"
)CONF", context_for(dir));
  unsetenv("KMODSYNC_LEAK");
  unsetenv("CONFIG_VIDEO_DEV");
  REQUIRE_MESSAGE(values.has_value(), values.error());
  CHECK(values->get("PACKAGE_NAME") == "leak:unset");
  CHECK(values->get("PACKAGE_VERSION") == "unset");
  CHECK(values->get("MAKE") == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  CHECK(values->get("CLEAN") == "C");
}

TEST_CASE("a dkms.conf that turns on set -eu does not break reading the values back")
{
  const TempDir dir;
  const auto values = evaluate_ok(dir, "set -eu\nPACKAGE_NAME=strict\n", context_for(dir));
  CHECK(values.get("PACKAGE_NAME") == "strict");
}

TEST_CASE("an associative array among the DKMS variables is an error naming the file")
{
  const TempDir dir;
  const auto values = evaluate(dir, "declare -A MAKE=([default]=make)\nPACKAGE_NAME=x\n", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  CHECK(values.error()
        == (dir / "src/dkms.conf").string() + ": MAKE is not an indexed array (index 'default')");
}

TEST_CASE("a dkms.conf that uses bash features (functions, arithmetic, [[ =~ ]]) evaluates as in DKMS")
{
  const std::string conf = R"CONF(
major() { echo "${kernelver%%.*}"; }
if (( $(major) >= 6 )) && [[ $kernelver =~ ^6\.1\. ]]; then
  MAKE[0]="make NEW=1"
fi
PACKAGE_NAME=x
)CONF";
  const TempDir dir;
  auto context = context_for(dir);
  CHECK(evaluate_ok(dir, conf, context).get("MAKE") == "make NEW=1");
  context.kernelver = "6.12.107+deb12-amd64";
  CHECK_FALSE(evaluate_ok(dir, conf, context).has("MAKE"));
  context.kernelver = "5.10.0-32-amd64";
  CHECK_FALSE(evaluate_ok(dir, conf, context).has("MAKE"));
}

// The evaluator word-splits its list of names after sourcing; with the IFS a dkms.conf left
// behind (set to split $kernelver, say) it once read back no values at all.
TEST_CASE("a dkms.conf that changes IFS still has its values read back")
{
  const TempDir dir;
  const auto values = evaluate(dir, R"CONF(
IFS=.
set -- $kernelver
PACKAGE_NAME=x
PACKAGE_VERSION=1
MAKE[0]="make KMAJOR=$1 KMINOR=$2"
)CONF", context_for(dir));
  REQUIRE_MESSAGE(values.has_value(), values.error());
  CHECK(values->get("PACKAGE_NAME") == "x");
  CHECK(values->get("PACKAGE_VERSION") == "1");
  CHECK(values->get("MAKE") == "make KMAJOR=6 KMINOR=1");
}

// `.` of a missing file fails but the evaluator goes on: a dkms.conf that vanished once
// evaluated to no values instead of an error naming it.
TEST_CASE("a missing dkms.conf is an error naming it")
{
  const TempDir dir;
  fs::create_directories(dir / "src");
  const auto values = evaluate_dkms_conf(dir / "src/dkms.conf", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  CHECK(values.error().find((dir / "src/dkms.conf").string()) != std::string::npos);
}

TEST_CASE("a dkms.conf in a directory that does not exist is an error naming it")
{
  const TempDir dir;
  const auto values = evaluate_dkms_conf(dir / "nowhere/dkms.conf", context_for(dir));
  REQUIRE_FALSE(values.has_value());
  CHECK(values.error().starts_with((dir / "nowhere/dkms.conf").string() + ": "));
}

TEST_SUITE_END();
