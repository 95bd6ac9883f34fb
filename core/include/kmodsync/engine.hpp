// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kmodsync {

// What a pass covers and how it runs.
struct PassOptions
{
  Root root{"/"};
  std::vector<std::string> kernels;  // empty: every kernel
  std::vector<std::string> modules;  // NAME or NAME/VERSION; empty: every module source
  unsigned jobs = 0;                 // 0: number of CPUs
  bool dry_run = false;              // plan and report only; nothing is written
  bool retry = false;                // rebuild known failures
  bool force = false;                // install over modules of a newer version
  bool install = true;               // false: build and keep the modules, install nothing (`dkms build`)
  bool rebuild = false;              // compile again even what is up to date (`dkms --force`)
  // The cells were named by the user (`dkms build/install`): built even when AUTOINSTALL is
  // off or a newer version of the module is present, as DKMS builds what it is told to.
  bool explicit_request = false;
  // Only take over what DKMS's tree says is installed (before `dkms uninstall` acts on
  // it); build nothing, record nothing else.
  bool adopt_only = false;
  bool depmod = true;                // false: depmod is left pending for a later pass (`--no-depmod`)
  std::chrono::milliseconds build_timeout{std::chrono::minutes(30)};
  std::chrono::milliseconds conf_timeout{std::chrono::seconds(10)};
};

enum class CellStatus {
  installed,   // built and installed by this pass
  up_to_date,  // nothing changed since it was installed
  skipped,     // DKMS would not build it here (reason says why)
  failed,      // broken dkms.conf, failed build or install (this pass or remembered)
  would_build, // --dry-run: would be built
  removed,     // its source is gone; its files were uninstalled
  built,       // built and kept, not installed (PassOptions::install off)
};
const char* to_string(CellStatus status);

// Why a cell did not end installed, for callers that act on it (the dkms command's exit
// codes); `reason` says it in words.
enum class CellCause {
  none,
  autoinstall_off,  // AUTOINSTALL is not set
  excluded,         // BUILD_EXCLUSIVE_* or OBSOLETE_BY
  no_headers,
  superseded,       // a newer version of the module is present
  newer_installed,  // a module of a newer version serves the kernel
  depends_unmet,    // BUILD_DEPENDS
  bad_conf,         // dkms.conf cannot be read
  build_failed,
  install_failed,
};

struct CellReport
{
  std::string module;
  std::string version;
  std::string kernel;
  CellStatus status = CellStatus::skipped;
  std::string reason;       // skip reason, failure summary, or how it was satisfied
  std::string first_error;  // failed builds: the first compiler error
  std::string log;          // the cell's log file (absolute on the managed system)
  CellCause cause = CellCause::none;
  bool remembered = false;  // failed with an unchanged input key: not retried
  double seconds = 0;       // build time
};

struct PassReport
{
  std::vector<CellReport> cells;
  // Problems outside any one cell (depmod failing for a kernel, a broken state file...).
  std::vector<std::string> errors;
  bool any_failed() const;
};

// Receives progress as the pass runs; the CLI prints it. Called from worker threads, one
// call at a time.
class Reporter
{
public:
  virtual ~Reporter() = default;
  // Every cell of the pass once it is planned (not for --dry-run); those still to be built
  // have status would_build.
  virtual void pass_planned(const std::vector<CellReport>& /*cells*/) {}
  virtual void cell_started(const CellReport& /*cell*/) {}
  virtual void cell_finished(const CellReport& /*cell*/) {}
  virtual void note(std::string_view /*message*/) {}
};

// One pass: discover kernels and module sources, evaluate each dkms.conf per kernel, plan
// every cell, build what needs it in parallel under one jobserver, install, prune what is
// gone, run depmod once per changed kernel. Holds the root's lock throughout (except for
// --dry-run, which writes nothing). Cell failures are in the report, never an error: the
// error side is only for a pass that could not run at all (unreadable state, no lock).
Expected<PassReport> run_pass(const PassOptions& options, Reporter& reporter);

// Uninstalls NAME/VERSION from every kernel (only files it recorded), runs depmod where
// that changed something, forgets its cells and keeps it from being built again until
// `add_module_source`. Returns warnings (files left alone).
Expected<std::vector<std::string>> remove_module(const Root& root,
                                                 const std::string& name,
                                                 const std::string& version);

// Drops every cell of kernel KV (as a package manager removing that kernel asks): uninstalls
// the files kmodsync recorded for it, puts back what they displaced, removes its build
// trees and logs, and runs depmod if the kernel's directory is still there. Returns warnings.
Expected<std::vector<std::string>> remove_kernel(const Root& root, const std::string& kernel);

// Creates the module signing key pair at kmodsync's default paths (or the configured
// ones) unless they exist. Returns the certificate's path.
Expected<std::string> make_signing_key(const Root& root);

struct AddedSource
{
  std::string name;
  std::string version;
  bool already_added = false; // added before (nothing was changed)
};

// Registers a source directory (it must have a dkms.conf), marks its NAME/VERSION added and
// lifts a previous removal. With `copy_to_usr_src` (as `dkms add PATH`), a directory
// elsewhere is first copied to /usr/src/NAME-VERSION.
Expected<AddedSource> add_module_source(const Root& root,
                                        const std::string& directory,
                                        std::chrono::milliseconds conf_timeout,
                                        bool copy_to_usr_src = false);

// Takes modules built elsewhere (a DKMS tarball's dkms_main_tree/KV/ARCH/module) as the
// kept build of NAME/VERSION on `kernel`: the next pass installs them, checked as its own
// builds are (vermagic, name), instead of compiling. Replaces what the cell kept before.
Expected<void> load_prebuilt(const Root& root,
                             const std::string& name,
                             const std::string& version,
                             const std::string& kernel,
                             const std::vector<std::filesystem::path>& modules);

struct UninstallResult
{
  std::vector<std::string> uninstalled; // kernels the module's files were taken from
  std::vector<std::string> warnings;
};

// `dkms uninstall` (keep_build) and `dkms unbuild`: takes NAME/VERSION's files off the
// given kernels, journaled like a pass; the build kept for a cell stays (its cell is
// "built" again) or goes too. depmod runs for kernels that changed unless `depmod` is off,
// when it is left pending for the next pass.
Expected<UninstallResult> uninstall_module(const Root& root,
                                           const std::string& name,
                                           const std::string& version,
                                           const std::vector<std::string>& kernels,
                                           bool keep_build,
                                           bool depmod = true);

} // namespace kmodsync
