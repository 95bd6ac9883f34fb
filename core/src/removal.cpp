// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/engine.hpp"

#include "pass_cell.hpp"

#include "kmodsync/config.hpp"
#include "kmodsync/dkms_conf.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/initramfs.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/lock.hpp"
#include "kmodsync/signing.hpp"
#include "kmodsync/state.hpp"

#include <algorithm>
#include <set>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

// The root's state, loaded under its lock (held as long as this lives).
struct LockedState
{
  StatePaths paths;
  FileLock lock;
  State state;
};

Expected<LockedState> lock_state(const Root& root)
{
  StatePaths paths(root);
  if (auto made = util::ensure_directory(paths.dir); !made) {
    return std::unexpected(made.error());
  }
  auto lock = FileLock::acquire(paths.lock_file);
  if (!lock) {
    return std::unexpected(lock.error());
  }
  auto state = State::load(paths.state_file);
  if (!state) {
    return std::unexpected(state.error());
  }
  return LockedState{std::move(paths), std::move(*lock), std::move(*state)};
}

// Uninstalls every cell `chosen` picks, journaled as a pass does: the records leave the
// state (as pending removals) and it is saved before any file is deleted. Returns the
// records it removed; warnings for files left alone go to `warnings`.
template <typename Chosen>
std::vector<CellRecord> uninstall_cells(const Root& root, LockedState& locked, Chosen chosen,
                                        std::vector<std::string>& warnings)
{
  State& state = locked.state;
  std::vector<CellRecord> removed;
  std::erase_if(state.cells, [&](const CellRecord& record) {
    if (!chosen(record)) {
      return false;
    }
    removed.push_back(record);
    return true;
  });
  if (removed.empty()) {
    return removed;
  }
  for (const auto& record : removed) {
    state.pending.push_back(uninstall_change(record));
  }
  if (auto saved = state.save(locked.paths.state_file); !saved) {
    warnings.push_back(saved.error());
  }
  for (const auto& record : removed) {
    for (auto& warning : apply_removal(root, uninstall_change(record))) {
      warnings.push_back(std::move(warning));
    }
  }
  state.pending.erase(state.pending.end() - static_cast<std::ptrdiff_t>(removed.size()), state.pending.end());
  return removed;
}

enum class WithInitramfs { no, yes };

// Saves the state, then runs the depmod (and initramfs) work the removal left pending and
// saves again; failures of that work become warnings.
Expected<void> save_and_settle(const Root& root, LockedState& locked, std::vector<std::string>& warnings,
                               WithInitramfs initramfs)
{
  if (auto saved = locked.state.save(locked.paths.state_file); !saved) {
    return saved;
  }
  if (auto kernels = discover_kernels(root)) {
    run_pending_depmods(root, locked.state, *kernels, warnings);
    if (initramfs == WithInitramfs::yes) {
      auto config = Config::load(root);
      settle_initramfs(root, locked.state, *kernels, !config || config->initramfs != "never", warnings);
    }
    if (auto saved = locked.state.save(locked.paths.state_file); !saved) {
      warnings.push_back(saved.error());
    }
  }
  return {};
}

} // namespace

Expected<std::vector<std::string>> remove_module(const Root& root, const std::string& name, const std::string& version)
{
  try {
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    State* state = &locked->state;
    std::vector<std::string> warnings;
    std::set<std::string> touched;
    const auto removed = uninstall_cells(
      root, *locked, [&](const CellRecord& record) { return record.module == name && record.version == version; },
      warnings);
    const bool known = !removed.empty();
    for (const auto& record : removed) {
      if (!record.files.empty()) {
        touched.insert(record.kernel);
        for (const auto& module : module_names(record.files)) {
          state->initramfs_pending[record.kernel].insert(module);
        }
      }
    }
    if (!known && !fs::exists(root("/usr/src/" + name + "-" + version + "/dkms.conf"))) {
      return error("{}/{} is not known to kmodsync (no cells recorded, no {})", name, version,
                   root("/usr/src/" + name + "-" + version).string());
    }
    state->depmod_pending.insert(touched.begin(), touched.end());
    state->removed.insert(name + "/" + version);
    if (auto settled = save_and_settle(root, *locked, warnings, WithInitramfs::yes); !settled) {
      return std::unexpected(settled.error());
    }
    return warnings;
  } catch (const std::exception& e) {
    return error("internal error while removing {}/{}: {}", name, version, e.what());
  }
}

Expected<std::vector<std::string>> remove_kernel(const Root& root, const std::string& kernel)
{
  try {
    if (kernel.empty() || kernel.find('/') != std::string::npos || kernel == "." || kernel == "..") {
      return error("\"{}\" is not a kernel release", kernel);
    }
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    const StatePaths& paths = locked->paths;
    State* state = &locked->state;
    std::vector<std::string> warnings;
    uninstall_cells(root, *locked, [&](const CellRecord& record) { return record.kernel == kernel; }, warnings);
    for (const auto& dir : {paths.build_dir / kernel, paths.log_dir / kernel, paths.dir / "displaced" / kernel}) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    state->depmod_pending.insert(kernel);
    if (auto settled = save_and_settle(root, *locked, warnings, WithInitramfs::no); !settled) {
      return std::unexpected(settled.error());
    }
    return warnings;
  } catch (const std::exception& e) {
    return error("internal error while removing kernel {}: {}", kernel, e.what());
  }
}

Expected<std::string> make_signing_key(const Root& root)
{
  try {
    auto config = Config::load(root);
    if (!config) {
      return std::unexpected(config.error());
    }
    const std::string key = config->signing_key.empty() ? k_default_signing_key : config->signing_key;
    const std::string certificate =
      config->signing_certificate.empty() ? k_default_signing_certificate : config->signing_certificate;
    if (fs::exists(root(key)) && fs::exists(root(certificate))) {
      return error("{} and {} exist already: nothing to do", root(key).string(), root(certificate).string());
    }
    if (auto made = generate_signing_key(root(key), root(certificate), "kmodsync module signing key"); !made) {
      return std::unexpected(made.error());
    }
    return root(certificate).string();
  } catch (const std::exception& e) {
    return error("internal error while making a signing key: {}", e.what());
  }
}

Expected<std::string> add_module_source(const Root& root, const std::string& directory,
                                        std::chrono::milliseconds conf_timeout)
{
  try {
    const fs::path dir = root(directory);
    if (!fs::is_regular_file(dir / "dkms.conf")) {
      return error("{} has no dkms.conf", dir.string());
    }
    // PACKAGE_NAME/VERSION do not depend on the kernel in any dkms.conf worth the name;
    // an empty kernel context is enough to learn them.
    DkmsConfContext context;
    context.source_tree = root("/usr/src").string();
    const auto [module, version] = detail::guess_name_version(dir.filename().string());
    context.module = module;
    context.module_version = version;
    context.timeout = conf_timeout;
    auto values = evaluate_dkms_conf(dir / "dkms.conf", context);
    if (!values) {
      return std::unexpected(values.error());
    }
    const std::string name = values->get("PACKAGE_NAME");
    const std::string package_version = values->get("PACKAGE_VERSION");
    if (name.empty() || package_version.empty()) {
      return error("{}: No 'PACKAGE_NAME' or 'PACKAGE_VERSION' directive specified", (dir / "dkms.conf").string());
    }
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    const StatePaths& paths = locked->paths;
    State* state = &locked->state;
    state->removed.erase(name + "/" + package_version);
    const std::string managed = root.managed(dir);
    if (!managed.starts_with("/usr/src/")
        && std::find(state->registered.begin(), state->registered.end(), managed) == state->registered.end()) {
      state->registered.push_back(managed);
    }
    if (auto saved = state->save(paths.state_file); !saved) {
      return std::unexpected(saved.error());
    }
    return name + "/" + package_version;
  } catch (const std::exception& e) {
    return error("internal error while adding {}: {}", directory, e.what());
  }
}

} // namespace kmodsync
