// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// What the apt hook carries from DPkg::Pre-Install-Pkgs (before dpkg runs, while the file
// lists of packages about to go still exist) to DPkg::Post-Invoke (after dpkg).

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace kmodsync::apt {

// One package line of protocol version 3:
// "name oldver oldarch oldMA op newver newarch newMA action".
struct PackageChange
{
  std::string name;
  std::string arch;
  bool removed = false; // action **REMOVE**; else a .deb to unpack (or **CONFIGURE**)
  bool configure_only = false;
  // Paths of the package's files before the change that matter to kmodsync (kernels,
  // headers, module sources): a removal or an upgrade may take them away.
  std::vector<std::string> old_paths;
};

struct HookInput
{
  std::map<std::string, std::string> config; // apt's configuration, decoded
  std::vector<PackageChange> packages;
};

// Parses the hook's stdin. The error names the line that is not protocol 3.
Expected<HookInput> parse_hook_input(std::istream& in);

// dpkg's list of a package's files (ADMINDIR/info/NAME.list or NAME:ARCH.list); empty
// when the package is not installed.
std::vector<std::string> package_files(const std::filesystem::path& admindir, const std::string& name,
                                       const std::string& arch);

// The pending record under the root's kmodsync directory: packages from earlier
// Pre-Install-Pkgs runs are merged in. Written atomically.
Expected<void> save_pending(const std::filesystem::path& file, const std::vector<PackageChange>& packages);
Expected<std::vector<PackageChange>> load_pending(const std::filesystem::path& file);

} // namespace kmodsync::apt
