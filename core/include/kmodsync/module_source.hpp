// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kmodsync {

// A module source tree with a dkms.conf: ROOT/usr/src/NAME-VERSION, or a directory
// registered with `kmodsync add`.
struct ModuleSource
{
  std::filesystem::path dir;     // where it is on this machine (inside the root)
  std::string dir_name;          // "v4l2loopback-0.12.7"
  std::filesystem::path conf() const { return dir / "dkms.conf"; }
  // Whether this source may be NAME (and VERSION, when not empty), judging by the
  // directory name alone; the dkms.conf has the final word once evaluated.
  bool may_be(const std::string& name, const std::string& version) const;
};

// Every ROOT/usr/src/*/dkms.conf plus `registered` directories (given inside the root).
// Sorted by directory name; a registered directory that no longer exists is left out.
std::vector<ModuleSource> discover_module_sources(const Root& root,
                                                  const std::vector<std::string>& registered);

} // namespace kmodsync
