// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// Internal to the engine: one cell as a pass works on it.

#include "kmodsync/dkms_conf.hpp"
#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/engine.hpp"
#include "kmodsync/input_key.hpp"
#include "kmodsync/memo.hpp"
#include "kmodsync/remote_cache.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/module_source.hpp"
#include "kmodsync/state.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kmodsync::detail {

struct PassCell
{
  const ModuleSource* source = nullptr;
  const Kernel* kernel = nullptr;
  std::string module;
  std::string version;
  std::optional<ModuleSpec> spec;
  std::string input_key;
  std::string build_key;   // what the build cache and the remote cache know it by
  bool needs_build = false;
  bool from_built = false;  // needs_build, but its kept build is current: install it, no compile
  std::vector<std::size_t> depends_on; // indices of cells of the same kernel
  CellReport report;
  std::filesystem::path build_dir;
  std::filesystem::path log_file;
};

// Everything a pass knows before it builds.
struct PassPlan
{
  std::vector<Kernel> kernels;
  std::vector<ModuleSource> sources;
  std::vector<PassCell> cells;
  ToolVersions tools;
  InstallSettings install;
  bool state_changed = false; // planning itself changed the state (modules adopted from DKMS)
};

// Who runs strangers' code (dkms.conf, PRE_BUILD, MAKE, POST_BUILD), from the config.
struct Confinement
{
  // None when kmodsync is not root: it has nothing to drop.
  std::optional<Sandbox> sandbox;
  std::set<std::string> as_root; // build_as_root: PACKAGE_NAMEs, or "*"
  std::string as_root_origin;

  bool all_as_root() const { return as_root.contains("*"); }
  // The sandbox for building `module` in `build_dir`, or none when it is built as root.
  std::optional<Sandbox> for_build(const std::string& module, const std::filesystem::path& build_dir) const;
  std::optional<Sandbox> for_evaluation() const;
};

// How this pass finishes modules: the config, and the signing key the settings point at.
struct InstallSetup
{
  InstallSettings settings;
  std::optional<SigningKey> key;
  unsigned jobs = 0; // from the config, when the command line gave none
  bool initramfs = true;
  std::uint64_t cache_size = 2ull << 30;
  RemoteCacheSettings remote;
  Confinement confinement;
};

// Loads kmodsync.conf / framework.conf and the signing key: the configured one, else
// kmodsync's default pair, else DKMS's (/var/lib/dkms/mok.*). When none exists and a kernel
// in scope has CONFIG_MODULE_SIG_FORCE, the default pair is generated (and said so).
Expected<void> setup_install(const PassOptions& options, const std::vector<Kernel>& kernels, InstallSetup& setup,
                             Reporter& reporter);

// Undoes what a killed pass left: files placed under a journal entry (state.pending) are
// adopted into their cells when they are intact, and temporary files of atomic writes are
// removed. Returns true if the state changed.
bool repair_after_crash(const Root& root, State& state);

// Brings a cell's record in line with the disk after `change` was (partly) carried out: the
// files it placed that are there as planned, the files it was to drop that are still there
// unchanged, and the originals it moved aside. For an uninstall (nothing to place) the
// removal is completed instead.
void settle_change(const Root& root, State& state, const PendingChange& change);

// "lime-forensics-1.9.1-5" -> {"lime-forensics", "1.9.1-5"}: split before the first
// "-<digit>". Used to label a source whose dkms.conf cannot be read.
std::pair<std::string, std::string> guess_name_version(const std::string& dir_name);

// Discovers, evaluates and plans every cell in scope. Cells that need no build get their
// final report here.
// `kernels` are every kernel of the root; `memo` spares recomputing what did not change.
Expected<PassPlan> plan_pass(const PassOptions& options, State& state, InstallSettings install,
                             std::vector<Kernel> kernels, Memo& memo, const Confinement& confinement);

} // namespace kmodsync::detail
