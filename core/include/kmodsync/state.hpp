// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kmodsync {

// Where kmodsync keeps its files inside a root.
struct StatePaths
{
  explicit StatePaths(const Root& root);
  std::filesystem::path dir;        // ROOT/var/lib/kmodsync
  std::filesystem::path state_file; // state.json
  std::filesystem::path lock_file;
  std::filesystem::path build_dir;  // per-cell build trees
  std::filesystem::path log_dir;    // per-cell logs
  std::filesystem::path built_dir;  // built modules kept per cell, as they left make
};

// A file kmodsync placed, recorded so that only this exact file is ever removed.
struct InstalledFile
{
  std::string path;   // absolute on the managed system: "/usr/lib/modules/KV/updates/dkms/x.ko"
  std::string sha256;
  // Size and modification time when installed: an unchanged stat spares rehashing.
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
};

// A file that stood where kmodsync installs and that kmodsync did not write: kept aside
// and put back when kmodsync's module goes.
struct DisplacedFile
{
  std::string original;  // absolute on the managed system
  std::string backup;    // absolute on the managed system, under /var/lib/kmodsync/displaced
  std::string sha256;
};

// built: compiled and kept (`dkms build`), not installed.
// The input key of a kept build loaded from a tarball: current for one install, whatever
// the cell's key is.
inline constexpr const char* k_prebuilt_key = "prebuilt";

enum class Outcome { installed, failed, skipped, built };
const char* to_string(Outcome outcome);

// The last result of one cell (module NAME/VERSION x kernel).
struct CellRecord
{
  std::string module;
  std::string version;
  std::string kernel;
  std::string source_dir;  // absolute on the managed system: "/usr/src/NAME-VERSION"
  std::string input_key;   // empty for skipped cells
  Outcome outcome = Outcome::skipped;
  std::string reason;      // why skipped, or the failure summary
  std::string first_error; // first compiler error line of a failed build
  std::string log;         // absolute on the managed system
  std::vector<InstalledFile> files;
  std::vector<DisplacedFile> displaced;
  // The modules as the build left them (stripped, unsigned): in the build cache, or under
  // built_dir when loaded from a tarball; `dkms install` after `dkms build`, or after `dkms
  // uninstall`, needs no compiler.
  std::vector<InstalledFile> built;
  std::int64_t time = 0;   // Unix time of the outcome
};

// A change to the files of one cell, written to the state before any file is touched; the
// files it changes are taken out of the cell's record at the same moment. So at every
// instant the records name only files that are on disk as recorded, and a pass killed
// half-way leaves the next one a complete list of what may have happened.
struct PendingChange
{
  std::string module;
  std::string version;
  std::string kernel;
  std::vector<InstalledFile> files;      // to be placed
  std::vector<DisplacedFile> displaced;  // foreign files to be moved aside first
  std::vector<InstalledFile> removing;   // formerly recorded files to be deleted or replaced
  std::vector<DisplacedFile> restoring;  // originals to be put back (an uninstall)
};

struct State
{
  std::vector<CellRecord> cells;
  // Source directories registered with `kmodsync add` outside /usr/src.
  std::vector<std::string> registered;
  // NAME/VERSION taken out with `kmodsync remove`: not built again until added back.
  std::set<std::string> removed;
  // NAME/VERSION added with `dkms add` (or found added in a DKMS tree): listed by `dkms
  // status` before any cell exists; adding one twice is DKMS's error 3.
  std::set<std::string> added;
  // NAME/VERSION/KV that DKMS's tree says are installed: the next pass that plans the cell
  // takes the files DKMS installed as its own instead of rebuilding them.
  std::set<std::string> adopt;
  // The root's DKMS tree was imported (done once).
  bool dkms_imported = false;
  // Kernels whose modules changed and that still need depmod: recorded before the change
  // is made, so a pass killed before depmod leaves the work to the next one.
  std::set<std::string> depmod_pending;
  std::vector<PendingChange> pending;
  // Kernels whose initramfs may need regenerating, with the module names that changed
  // ("*" when a module asked for it with REMAKE_INITRD). Settled after depmod.
  std::map<std::string, std::set<std::string>> initramfs_pending;

  CellRecord* find(const std::string& module, const std::string& version, const std::string& kernel);
  // Inserts or replaces the record of the same cell.
  void put(CellRecord record);

  // A missing file is an empty state. A corrupt one is an error naming the file.
  static Expected<State> load(const std::filesystem::path& file);
  Expected<void> save(const std::filesystem::path& file) const;
};

} // namespace kmodsync
