// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_conf.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"

#include <map>
#include <string>
#include <vector>

namespace kmodsync {

// One BUILT_MODULE_NAME[i] record with DKMS's defaults filled in.
struct ModuleRecord
{
  std::string built_name;      // BUILT_MODULE_NAME[i], without .ko
  std::string built_location;  // BUILT_MODULE_LOCATION[i], relative to the build dir, "" or ending in '/'
  std::string dest_name;       // DEST_MODULE_NAME[i], defaults to built_name
  std::string dest_location;   // DEST_MODULE_LOCATION[i] as written ("/extra", ...)
  bool strip = true;           // STRIP[i], defaults to STRIP[0], then yes
};

struct PatchRecord
{
  std::string file;   // PATCH[i], inside the source's patches/ directory
  std::string match;  // PATCH_MATCH[i], a regex on the kernel release; "" applies always
};

// A dkms.conf evaluated for one kernel, validated, with DKMS 3 defaults.
struct ModuleSpec
{
  std::string name;     // PACKAGE_NAME
  std::string version;  // PACKAGE_VERSION
  std::vector<std::string> make;        // MAKE[i]
  std::vector<std::string> make_match;  // MAKE_MATCH[i]
  std::string make_command;             // the one MAKE_MATCH selects for this kernel, or the default
  std::string clean;                    // CLEAN, or DKMS's default
  std::vector<ModuleRecord> modules;
  std::vector<PatchRecord> patches;     // all of PATCH[]
  std::vector<std::string> patches_for_kernel; // those PATCH_MATCH selects for this kernel
  std::string autoinstall;              // AUTOINSTALL as written
  std::string build_exclusive_kernel;
  std::string build_exclusive_kernel_min;
  std::string build_exclusive_kernel_max;
  std::string build_exclusive_arch;
  std::string build_exclusive_config;
  std::vector<std::string> build_depends;
  std::string pre_build, post_build, post_add, pre_install, post_install, post_remove;
  bool remake_initrd = false;
  bool no_weak_modules = false;
  std::string obsolete_by;
  std::vector<std::string> modules_conf;
  // Every recognised variable as evaluated, for the input key and `status --json`.
  DkmsConfValues values;

  // AUTOINSTALL set to anything but a no: DKMS 3 autoinstalls on any non-empty value.
  bool wants_autoinstall() const;
};

// Validates evaluated values into a spec, with DKMS's messages ("No 'BUILT_MODULE_NAME'
// directive specified for record #0") prefixed by the file. All problems are reported at
// once, separated by "; ". Names and locations that would reach outside the build
// directory or the kernel's module tree ('/', '..') are refused too. `kernel_config` is the
// kernel's .config, which decides CC=clang / LD=ld.lld as in DKMS.
Expected<ModuleSpec> make_module_spec(const DkmsConfValues& values,
                                      const std::filesystem::path& conf,
                                      const DkmsConfContext& context,
                                      const KernelConfig& kernel_config);

} // namespace kmodsync
