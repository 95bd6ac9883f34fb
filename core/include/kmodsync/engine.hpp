// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <chrono>
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
};
const char* to_string(CellStatus status);

struct CellReport
{
  std::string module;
  std::string version;
  std::string kernel;
  CellStatus status = CellStatus::skipped;
  std::string reason;       // skip reason, failure summary, or how it was satisfied
  std::string first_error;  // failed builds: the first compiler error
  std::string log;          // the cell's log file (absolute on the managed system)
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

// Registers a source directory (it must have a dkms.conf) and lifts a previous removal of
// its NAME/VERSION. Returns "NAME/VERSION".
Expected<std::string> add_module_source(const Root& root,
                                        const std::string& directory,
                                        std::chrono::milliseconds conf_timeout);

} // namespace kmodsync
