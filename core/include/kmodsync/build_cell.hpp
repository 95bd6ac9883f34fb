// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/jobserver.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/module_source.hpp"
#include "kmodsync/process.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kmodsync {

struct BuildRequest
{
  const ModuleSpec* spec = nullptr;
  const ModuleSource* source = nullptr;
  const Kernel* kernel = nullptr;
  // $dkms_tree/NAME/VERSION/build: the cell's own build directory, as the spec's MAKE
  // commands expect it.
  std::filesystem::path build_dir;
  std::filesystem::path log_file;
  const Jobserver* jobserver = nullptr;
  std::chrono::milliseconds timeout{0};
  // PRE_BUILD, MAKE and POST_BUILD run confined, as its user, with the build directory
  // (given to that user) writable; none: as kmodsync itself (build_as_root, or not root).
  std::optional<Sandbox> sandbox;
};

struct BuildResult
{
  bool ok = false;
  std::string failure;      // what failed, e.g. "make failed (exit status 2)"
  std::string first_error;  // the first compiler error line of the log
  std::vector<std::filesystem::path> modules; // per spec record, the built .ko
};

// Builds one cell as DKMS does: fresh copy of the source, PATCH (PATCH_MATCH), PRE_BUILD,
// the selected MAKE command through bash with a leading `make` given KERNELRELEASE,
// POST_BUILD, then checks every BUILT_MODULE_NAME exists. Everything is logged to the
// cell's log. The caller holds a jobserver token for the duration.
BuildResult build_cell(const BuildRequest& request);

// The first line of a build log that reads like a compiler or make error.
std::string first_compiler_error(std::string_view log);

} // namespace kmodsync
