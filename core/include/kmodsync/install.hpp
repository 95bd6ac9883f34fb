// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/compression.hpp"
#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/signing.hpp"
#include "kmodsync/state.hpp"

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace kmodsync {

// The distribution of the root (os-release ID), which decides where modules go.
std::string detect_distribution(const Root& root);

// Where DKMS 3 puts a module on this distribution: updates/dkms on Debian, Ubuntu and
// Arch, extra on Fedora/RHEL, updates on SUSE, else DEST_MODULE_LOCATION as written.
// Relative to the kernel's modules directory.
std::string install_location(const std::string& distribution, const std::string& dest_location);

// How modules are finished before they are placed; the same for every cell of a pass.
struct InstallSettings
{
  Root root{"/"};
  std::string distribution;
  const SigningKey* key = nullptr;   // null: modules are not signed
  std::string key_identity;          // hash of the certificate, or "unsigned" (part of input keys)
  std::string signing_hash;          // empty: the kernel's CONFIG_MODULE_SIG_HASH, else sha256
  std::string compression = "auto";
  bool force = false;                // install over newer modules too
};

// What the settings mean for one kernel, as a string for the cells' input keys.
std::string install_fingerprint(const InstallSettings& settings, const Kernel& kernel);

// One finished module, in memory, ready to be placed.
struct PreparedModule
{
  std::filesystem::path dest;  // inside the root
  std::string content;
  std::string sha256;
};

struct PreparedInstall
{
  std::vector<PreparedModule> modules;
  // Set when a module of a newer version already serves this kernel and the cell must not
  // install over it (DKMS's "obsolete" check): the reason, naming both versions.
  std::string obsolete_reason;
};

// Verifies each built module (libkmod: vermagic, name), strips it (STRIP), signs it,
// compresses it as the kernel's own modules are, and checks that no module of the same
// name and a newer `version` is installed for the kernel outside `ours` (paths kmodsync
// recorded). Writes nothing under the root.
Expected<PreparedInstall> prepare_install(const InstallSettings& settings,
                                          const ModuleSpec& spec,
                                          const Kernel& kernel,
                                          const std::vector<std::filesystem::path>& built,
                                          const std::set<std::string>& ours);

// `strip -g MODULE` in place (STRIP[i], as DKMS: debug symbols go, the symbol table stays).
Expected<void> strip_module(const std::filesystem::path& module);

// Where each module of the spec goes for this kernel, without the .ko suffix.
std::vector<std::filesystem::path> module_destinations(const InstallSettings& settings,
                                                       const ModuleSpec& spec,
                                                       const Kernel& kernel);

// What place_modules will write, move aside and delete, known before it touches
// anything, so the caller can journal it first: the new files, foreign files at their
// destinations, and the cell's `previous` files that the new set replaces or drops.
PendingChange plan_placement(const Root& root,
                             const PreparedInstall& prepared,
                             const std::string& kernel,
                             const std::set<std::string>& ours,
                             const std::vector<InstalledFile>& previous);

// Carries out a planned placement: moves displaced files aside, places the prepared
// modules atomically, deletes the dropped files (only when unchanged).
Expected<void> place_modules(const Root& root, const PreparedInstall& prepared, const PendingChange& change);

// The change that uninstalls a cell: all its files go, its displaced originals come back.
PendingChange uninstall_change(const CellRecord& record);

// Writes one module of a cell's kept build: DIR/INDEX-FILE_NAME, atomically; the record
// of it as CellRecord::built holds it.
Expected<InstalledFile> keep_module(const Root& root, const std::filesystem::path& dir, std::size_t index,
                                    const std::string& file_name, const std::string& content);

// Deletes the modules a cell kept from its build (CellRecord::built) and their directory.
void discard_kept_build(const Root& root, const CellRecord& record);

// Uninstalls a cell at once (apply_removal of its uninstall_change), unjournaled.
std::vector<std::string> uninstall_cell(const Root& root, const CellRecord& record);

// Deletes `change.removing` (only files still as recorded) and puts `change.restoring`
// back. Returns warnings for what it left alone.
std::vector<std::string> apply_removal(const Root& root, const PendingChange& change);

// The file as recorded after placing it: its size and mtime filled in from the disk.
InstalledFile with_stat(const Root& root, InstalledFile file);

// Whether every recorded file is still there with its recorded hash.
bool files_intact(const Root& root, const std::vector<InstalledFile>& files);

// Removes recorded files that still have their recorded hash; a file changed since is
// left alone and named in the returned warnings.
std::vector<std::string> remove_installed_files(const Root& root, const std::vector<InstalledFile>& files);


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
