// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/dkms_spec.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using kmodsync::DkmsConfContext;
using kmodsync::DkmsConfValues;
using kmodsync::make_module_spec;
using kmodsync::ModuleSpec;
using Strings = std::vector<std::string>;
using Config = std::map<std::string, std::string>;

namespace {

const char* const k_conf = "/usr/src/mymod-1.0/dkms.conf";

DkmsConfContext context(const std::string& kernelver = "6.1.0-55-amd64")
{
  DkmsConfContext result;
  result.kernelver = kernelver;
  result.arch = "x86_64";
  result.kernel_source_dir = "/lib/modules/" + kernelver + "/build";
  result.dkms_tree = "/var/lib/dkms";
  result.source_tree = "/usr/src";
  result.install_tree = "/lib/modules";
  result.module = "mymod";
  result.module_version = "1.0";
  return result;
}

// The smallest valid dkms.conf: name, version and one destination.
DkmsConfValues minimal()
{
  DkmsConfValues values;
  values.variables["PACKAGE_NAME"][0] = "mymod";
  values.variables["PACKAGE_VERSION"][0] = "1.0";
  values.variables["DEST_MODULE_LOCATION"][0] = "/updates/dkms";
  return values;
}

ModuleSpec spec_ok(const DkmsConfValues& values, const DkmsConfContext& ctx = context(),
                   const Config& config = {})
{
  auto spec = make_module_spec(values, k_conf, ctx, config);
  REQUIRE_MESSAGE(spec.has_value(), spec.error());
  return *spec;
}

std::string spec_error(const DkmsConfValues& values, const DkmsConfContext& ctx = context())
{
  auto spec = make_module_spec(values, k_conf, ctx, {});
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().starts_with(std::string(k_conf) + ": "));
  return spec.error();
}

bool contains(const std::string& text, const std::string& part)
{
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE_BEGIN("dkms_spec");

TEST_CASE("make_module_spec fills in DKMS's defaults for a minimal dkms.conf")
{
  const auto values = minimal();
  const auto spec = spec_ok(values);
  CHECK(spec.name == "mymod");
  CHECK(spec.version == "1.0");
  REQUIRE(spec.modules.size() == 1);
  CHECK(spec.modules[0].built_name == "mymod");
  CHECK(spec.modules[0].dest_name == "mymod");
  CHECK(spec.modules[0].built_location == "");
  CHECK(spec.modules[0].dest_location == "/updates/dkms");
  CHECK(spec.modules[0].strip);
  CHECK(spec.make.empty());
  CHECK(spec.make_command == "make -C /lib/modules/6.1.0-55-amd64/build M=/var/lib/dkms/mymod/1.0/build");
  CHECK(spec.clean == "make -C /lib/modules/6.1.0-55-amd64/build M=/var/lib/dkms/mymod/1.0/build clean");
  CHECK(spec.patches.empty());
  CHECK(spec.patches_for_kernel.empty());
  CHECK(spec.autoinstall == "");
  CHECK_FALSE(spec.wants_autoinstall());
  CHECK_FALSE(spec.remake_initrd);
  CHECK(spec.values.variables == values.variables);
}

TEST_CASE("BUILT_MODULE_NAME is not defaulted when there are several records")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "first";
  values.variables["BUILT_MODULE_NAME"][1] = "second";
  values.variables["DEST_MODULE_LOCATION"][1] = "/extra";
  values.variables["DEST_MODULE_NAME"][1] = "renamed";
  const auto spec = spec_ok(values);
  REQUIRE(spec.modules.size() == 2);
  CHECK(spec.modules[0].built_name == "first");
  CHECK(spec.modules[0].dest_name == "first");
  CHECK(spec.modules[1].built_name == "second");
  CHECK(spec.modules[1].dest_name == "renamed");
  CHECK(spec.modules[1].dest_location == "/extra");
}

TEST_CASE("BUILT_MODULE_LOCATION gets a trailing '/'")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "a";
  values.variables["BUILT_MODULE_NAME"][1] = "b";
  values.variables["BUILT_MODULE_NAME"][2] = "c";
  values.variables["BUILT_MODULE_LOCATION"][0] = "src";
  values.variables["BUILT_MODULE_LOCATION"][1] = "drivers/net/";
  for (unsigned long i = 0; i < 3; ++i) {
    values.variables["DEST_MODULE_LOCATION"][i] = "/extra";
  }
  const auto spec = spec_ok(values);
  REQUIRE(spec.modules.size() == 3);
  CHECK(spec.modules[0].built_location == "src/");
  CHECK(spec.modules[1].built_location == "drivers/net/");
  CHECK(spec.modules[2].built_location == "");
}

TEST_CASE("STRIP: default yes, STRIP[0] is inherited by later records that leave it unset")
{
  auto values = minimal();
  for (unsigned long i = 0; i < 3; ++i) {
    values.variables["BUILT_MODULE_NAME"][i] = "m" + std::to_string(i);
    values.variables["DEST_MODULE_LOCATION"][i] = "/extra";
  }
  const auto strips = [](const ModuleSpec& spec) {
    std::vector<bool> result;
    for (const auto& record : spec.modules) {
      result.push_back(record.strip);
    }
    return result;
  };
  CHECK(strips(spec_ok(values)) == std::vector<bool>{true, true, true});

  values.variables["STRIP"][0] = "no";
  CHECK(strips(spec_ok(values)) == std::vector<bool>{false, false, false});

  values.variables["STRIP"][1] = "yes";
  CHECK(strips(spec_ok(values)) == std::vector<bool>{false, true, false});

  values.variables["STRIP"][0] = "N";
  values.variables["STRIP"][1] = "whatever";
  CHECK(strips(spec_ok(values)) == std::vector<bool>{false, true, false});

  values.variables.erase("STRIP");
  values.variables["STRIP"][2] = "n";
  CHECK(strips(spec_ok(values)) == std::vector<bool>{true, true, false});
}

TEST_CASE("MAKE[0] is the make command when MAKE_MATCH[0] is unset")
{
  auto values = minimal();
  values.variables["MAKE"][0] = "make KVER=$kernelver";
  values.variables["CLEAN"][0] = "make clean";
  const auto spec = spec_ok(values);
  CHECK(spec.make == Strings{"make KVER=$kernelver"});
  CHECK(spec.make_command == "make KVER=$kernelver");
  CHECK(spec.clean == "make clean");
}

TEST_CASE("MAKE_MATCH selects the MAKE line whose regex matches the kernel, the last match winning")
{
  auto values = minimal();
  values.variables["MAKE"][0] = "make default";
  values.variables["MAKE"][1] = "make for 6.x";
  values.variables["MAKE_MATCH"][1] = "^6\\.";
  values.variables["MAKE"][2] = "make for 6.1";
  values.variables["MAKE_MATCH"][2] = "^6\\.1\\.";
  values.variables["MAKE"][3] = "make for 4.x";
  values.variables["MAKE_MATCH"][3] = "^4\\.";
  CHECK(spec_ok(values, context("6.1.0-55-amd64")).make_command == "make for 6.1");
  CHECK(spec_ok(values, context("6.12.107+deb12-amd64")).make_command == "make for 6.x");
  CHECK(spec_ok(values, context("5.10.0-32-amd64")).make_command == "make default");
  const auto spec = spec_ok(values);
  CHECK(spec.make == Strings{"make default", "make for 6.x", "make for 6.1", "make for 4.x"});
  CHECK(spec.make_match == Strings{"", "^6\\.", "^6\\.1\\.", "^4\\."});
}

TEST_CASE("with MAKE_MATCH[0] set and nothing matching, the default make command is used")
{
  auto values = minimal();
  values.variables["MAKE"][0] = "make only for 4.x";
  values.variables["MAKE_MATCH"][0] = "^4\\.";
  CHECK(spec_ok(values, context("4.19.0-27-amd64")).make_command == "make only for 4.x");
  CHECK(spec_ok(values, context("6.1.0-55-amd64")).make_command
        == "make -C /lib/modules/6.1.0-55-amd64/build M=/var/lib/dkms/mymod/1.0/build");
}

TEST_CASE("PATCH_MATCH decides which patches apply to this kernel")
{
  auto values = minimal();
  values.variables["PATCH"][0] = "always.patch";
  values.variables["PATCH"][1] = "for-6.1.patch";
  values.variables["PATCH_MATCH"][1] = "^6\\.1\\.";
  values.variables["PATCH"][2] = "for-5.patch";
  values.variables["PATCH_MATCH"][2] = "^5\\.";
  const auto spec = spec_ok(values, context("6.1.0-55-amd64"));
  CHECK(spec.patches_for_kernel == Strings{"always.patch", "for-6.1.patch"});
  REQUIRE(spec.patches.size() == 3);
  CHECK(spec.patches[1].file == "for-6.1.patch");
  CHECK(spec.patches[1].match == "^6\\.1\\.");
  CHECK(spec.patches[2].match == "^5\\.");
  CHECK(spec_ok(values, context("5.10.0-32-amd64")).patches_for_kernel == Strings{"always.patch", "for-5.patch"});
  CHECK(spec_ok(values, context("6.12.107+deb12-amd64")).patches_for_kernel == Strings{"always.patch"});
}

TEST_CASE("a clang-built kernel adds CC=clang, and LD=ld.lld for lld, as DKMS does")
{
  auto values = minimal();
  const std::string make = "make -C /lib/modules/6.1.0-55-amd64/build M=/var/lib/dkms/mymod/1.0/build";
  CHECK(spec_ok(values, context(), {{"CONFIG_CC_IS_CLANG", "y"}}).make_command == make + " CC=clang");
  CHECK(spec_ok(values, context(), {{"CONFIG_CC_IS_CLANG", "y"}, {"CONFIG_LD_IS_LLD", "y"}}).make_command
        == make + " CC=clang LD=ld.lld");
  CHECK(spec_ok(values, context(), {{"CONFIG_CC_IS_CLANG", "n"}, {"CONFIG_CC_IS_GCC", "y"}}).make_command == make);
  values.variables["MAKE"][0] = "make all";
  CHECK(spec_ok(values, context(), {{"CONFIG_CC_IS_CLANG", "y"}}).make_command == "make all CC=clang");
}

TEST_CASE("the directives are carried over as written")
{
  auto values = minimal();
  values.variables["AUTOINSTALL"][0] = "yes";
  values.variables["BUILD_EXCLUSIVE_KERNEL"][0] = "^6\\.";
  values.variables["BUILD_EXCLUSIVE_KERNEL_MIN"][0] = "5.4";
  values.variables["BUILD_EXCLUSIVE_KERNEL_MAX"][0] = "6.99";
  values.variables["BUILD_EXCLUSIVE_ARCH"][0] = "x86_64|aarch64";
  values.variables["BUILD_EXCLUSIVE_CONFIG"][0] = "CONFIG_PCI !CONFIG_FOO";
  values.variables["BUILD_DEPENDS"][0] = "dep-a dep-b";
  values.variables["BUILD_DEPENDS"][1] = "dep-c";
  values.variables["PRE_BUILD"][0] = "pre.sh";
  values.variables["POST_BUILD"][0] = "post.sh";
  values.variables["REMAKE_INITRD"][0] = "Yes";
  values.variables["NO_WEAK_MODULES"][0] = "no";
  values.variables["OBSOLETE_BY"][0] = "6.5";
  values.variables["MODULES_CONF"][0] = "options mymod debug=1";
  const auto spec = spec_ok(values);
  CHECK(spec.autoinstall == "yes");
  CHECK(spec.wants_autoinstall());
  CHECK(spec.build_exclusive_kernel == "^6\\.");
  CHECK(spec.build_exclusive_kernel_min == "5.4");
  CHECK(spec.build_exclusive_kernel_max == "6.99");
  CHECK(spec.build_exclusive_arch == "x86_64|aarch64");
  CHECK(spec.build_exclusive_config == "CONFIG_PCI !CONFIG_FOO");
  CHECK(spec.build_depends == Strings{"dep-a", "dep-b", "dep-c"});
  CHECK(spec.pre_build == "pre.sh");
  CHECK(spec.post_build == "post.sh");
  CHECK(spec.remake_initrd);
  CHECK_FALSE(spec.no_weak_modules);
  CHECK(spec.obsolete_by == "6.5");
  CHECK(spec.modules_conf == Strings{"options mymod debug=1"});
}

TEST_CASE("wants_autoinstall: any value but a no")
{
  ModuleSpec spec;
  for (const char* yes : {"yes", "YES", "y", "Yes", " yes ", "1", "true"}) {
    INFO("AUTOINSTALL=", yes);
    spec.autoinstall = yes;
    CHECK(spec.wants_autoinstall());
  }
  for (const char* no : {"", " ", "no", "NO", "n", "false", "0"}) {
    INFO("AUTOINSTALL=", no);
    spec.autoinstall = no;
    CHECK_FALSE(spec.wants_autoinstall());
  }
}

TEST_CASE("a missing PACKAGE_NAME or PACKAGE_VERSION is refused")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "mymod";
  values.variables.erase("PACKAGE_NAME");
  CHECK(spec_error(values) == std::string(k_conf) + ": No 'PACKAGE_NAME' directive specified");

  values = minimal();
  values.variables.erase("PACKAGE_VERSION");
  CHECK(spec_error(values) == std::string(k_conf) + ": No 'PACKAGE_VERSION' directive specified");
}

TEST_CASE("a missing BUILT_MODULE_NAME with two records is refused for each record")
{
  auto values = minimal();
  values.variables["DEST_MODULE_LOCATION"][1] = "/extra";
  CHECK(spec_error(values)
        == std::string(k_conf)
             + ": No 'BUILT_MODULE_NAME' directive specified for record #0"
               "; No 'BUILT_MODULE_NAME' directive specified for record #1");
}

TEST_CASE("a .ko or .o suffix on a module name is refused")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "mymod.ko";
  values.variables["DEST_MODULE_NAME"][0] = "mymod";
  CHECK(spec_error(values)
        == std::string(k_conf) + ": 'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #0");

  values.variables["BUILT_MODULE_NAME"][0] = "mymod";
  values.variables["DEST_MODULE_NAME"][0] = "mymod.o";
  CHECK(spec_error(values)
        == std::string(k_conf) + ": 'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #0");
}

TEST_CASE("DEST_MODULE_LOCATION must begin with /kernel, /updates or /extra")
{
  auto values = minimal();
  values.variables["DEST_MODULE_LOCATION"][0] = "/lib/firmware";
  CHECK(spec_error(values)
        == std::string(k_conf)
             + ": Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #0");
  for (const char* good : {"/kernel/drivers/net", "/updates", "/extra"}) {
    INFO(good);
    values.variables["DEST_MODULE_LOCATION"][0] = good;
    CHECK(spec_ok(values).modules[0].dest_location == good);
  }
  values.variables["DEST_MODULE_LOCATION"][0] = "/updates/../../../../etc";
  CHECK(contains(spec_error(values), "'DEST_MODULE_LOCATION' '/updates/../../../../etc' in record #0 leaves the kernel's module tree"));
}

TEST_CASE("a record without DEST_MODULE_LOCATION, or no record at all, is refused")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "a";
  values.variables["BUILT_MODULE_NAME"][1] = "b";
  CHECK(spec_error(values)
        == std::string(k_conf) + ": No 'DEST_MODULE_LOCATION' directive specified for record #1");

  values = minimal();
  values.variables.erase("DEST_MODULE_LOCATION");
  CHECK(spec_error(values) == std::string(k_conf) + ": No 'DEST_MODULE_LOCATION' directive specified");
}

TEST_CASE("names and locations that reach outside their directory are refused")
{
  auto values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "sub/mymod";
  values.variables["DEST_MODULE_NAME"][0] = "mymod";
  CHECK(spec_error(values)
        == std::string(k_conf) + ": 'BUILT_MODULE_NAME' 'sub/mymod' in record #0 is not a plain file name");

  values = minimal();
  values.variables["BUILT_MODULE_NAME"][0] = "..";
  CHECK(contains(spec_error(values), "'BUILT_MODULE_NAME' '..' in record #0 is not a plain file name"));

  values = minimal();
  values.variables["DEST_MODULE_NAME"][0] = "../../evil";
  CHECK(contains(spec_error(values), "'DEST_MODULE_NAME' '../../evil' in record #0 is not a plain file name"));

  for (const char* location : {"..", "../elsewhere", "src/../..", "/abs/path"}) {
    INFO(location);
    values = minimal();
    values.variables["BUILT_MODULE_LOCATION"][0] = location;
    CHECK(contains(spec_error(values), "'BUILT_MODULE_LOCATION' '"));
    CHECK(contains(spec_error(values), "in record #0 leaves the build directory"));
  }
  values = minimal();
  values.variables["BUILT_MODULE_LOCATION"][0] = "src/..x/";  // a name that starts with dots is fine
  CHECK(spec_ok(values).modules[0].built_location == "src/..x/");

  values = minimal();
  values.variables["PACKAGE_NAME"][0] = "../mymod";
  CHECK(contains(spec_error(values), "'PACKAGE_NAME' '../mymod' is not a plain name"));
  values = minimal();
  values.variables["PACKAGE_VERSION"][0] = "1.0/..";
  CHECK(contains(spec_error(values), "'PACKAGE_VERSION' '1.0/..' is not a plain version"));

  values = minimal();
  values.variables["PATCH"][0] = "../../etc/evil.patch";
  CHECK(contains(spec_error(values), "'PATCH[0]' '../../etc/evil.patch' is outside the patches directory"));
}

TEST_CASE("all problems are reported at once, after the conf path")
{
  DkmsConfValues values;
  values.variables["BUILT_MODULE_NAME"][0] = "a.ko";
  values.variables["DEST_MODULE_LOCATION"][0] = "/opt";
  values.variables["BUILT_MODULE_NAME"][1] = "b";
  values.variables["DEST_MODULE_LOCATION"][1] = "/extra";
  CHECK(spec_error(values)
        == std::string(k_conf)
             + ": No 'PACKAGE_NAME' directive specified"
               "; No 'PACKAGE_VERSION' directive specified"
               "; 'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #0"
               "; 'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #0"
               "; Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #0");
}

TEST_CASE("an array index far beyond any real dkms.conf is refused, not iterated up to (fuzz_dkms_spec)")
{
  DkmsConfValues values = minimal();
  values.variables["BUILT_MODULE_NAME"][999999999] = "x";
  CHECK(contains(spec_error(values), "'BUILT_MODULE_NAME[999999999]': arrays have at most 1024 elements"));
  values = minimal();
  values.variables["BUILT_MODULE_NAME"][1023] = "x";
  CHECK_FALSE(contains(spec_error(values), "at most"));
}

TEST_SUITE_END();
