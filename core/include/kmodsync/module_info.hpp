// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <string>

namespace kmodsync {

// The .modinfo fields of a built module, read with libkmod.
struct ModuleInfo
{
  std::string name;      // the module's own name (from .gnu.linkonce.this_module)
  std::string vermagic;
  std::string version;
  std::string srcversion;
};

// The kernel's form of a module name: '-' and '_' are the same to it.
std::string kernel_module_name(std::string name);

// "foo-bar.ko.xz" -> "foo_bar"; "" when the file name is not a module's (.ko, .ko.xz,
// .ko.zst, .ko.gz).
std::string module_name_of_file(const std::string& file_name);

Expected<ModuleInfo> read_module_info(const std::filesystem::path& ko);

// Checks that a built .ko belongs to `kernel_release` (vermagic starts with it) and is the
// module `expected_name` (`-` and `_` are the same to the kernel).
Expected<ModuleInfo> verify_module(const std::filesystem::path& ko,
                                   const std::string& kernel_release,
                                   const std::string& expected_name);

} // namespace kmodsync
