// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kmodsync {

// The distribution of the root (os-release ID), which decides where modules go.
std::string detect_distribution(const Root& root);

// Where DKMS 3 puts a module on this distribution: updates/dkms on Debian, Ubuntu and
// Arch, extra on Fedora/RHEL, updates on SUSE, else DEST_MODULE_LOCATION as written.
// Relative to the kernel's modules directory.
std::string install_location(const std::string& distribution, const std::string& dest_location);

// Verifies (libkmod: vermagic, name), strips (STRIP) and places every built module of a
// cell atomically, then removes files of `previous` that the new set no longer has (only
// when they are still the files recorded). Returns what is now installed.
Expected<std::vector<InstalledFile>> install_modules(const Root& root,
                                                     const std::string& distribution,
                                                     const ModuleSpec& spec,
                                                     const Kernel& kernel,
                                                     const std::vector<std::filesystem::path>& built,
                                                     const std::vector<InstalledFile>& previous);

// Whether every recorded file is still there with its recorded hash.
bool files_intact(const Root& root, const std::vector<InstalledFile>& files);

// Removes recorded files that still have their recorded hash; a file changed since is
// left alone and named in the returned warnings.
std::vector<std::string> remove_installed_files(const Root& root,
                                                const std::vector<InstalledFile>& files);

// `depmod -a -b ROOT KV` (plain `depmod -a KV` on the host root). depmod only looks in
// ROOT/lib/modules, so a kernel found elsewhere (usr/lib/modules without the usual
// /lib -> usr/lib link) is refused with a message saying so.
Expected<void> run_depmod(const Root& root, const std::string& kernel_release,
                          const std::filesystem::path& modules_dir);

// Runs depmod once for every kernel in state.depmod_pending that is installed, and clears
// those that succeed or are gone. Failures are appended to `errors`. Returns true if the
// state changed.
bool run_pending_depmods(const Root& root, State& state, const std::vector<Kernel>& kernels,
                         std::vector<std::string>& errors);

} // namespace kmodsync
