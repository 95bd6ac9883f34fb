// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/engine.hpp"

#include "pass_cell.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/compression.hpp"
#include "kmodsync/config.hpp"
#include "kmodsync/dkms_conf.hpp"
#include "kmodsync/dkms_import.hpp"
#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/initramfs.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/lock.hpp"
#include "kmodsync/signing.hpp"
#include "kmodsync/state.hpp"

#include <algorithm>
#include <ctime>
#include <set>

#include <sys/utsname.h>

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
  import_dkms_tree(root, *state);
  return LockedState{std::move(paths), std::move(*lock), std::move(*state)};
}

// Uninstalls every cell `chosen` picks, journaled as a pass does: the records leave the
// state (as pending removals) and it is saved before any file is deleted. Returns the
// records it removed; warnings for files left alone go to `warnings`.
template <typename Chosen>
std::vector<CellRecord> uninstall_cells(const Root& root, LockedState& locked, Chosen chosen,
                                        std::vector<std::string>& warnings, bool discard_builds = true)
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
    if (discard_builds) {
      discard_kept_build(root, record);
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
    if (!known && !state->added.contains(name + "/" + version)
        && !fs::exists(root("/usr/src/" + name + "-" + version + "/dkms.conf"))) {
      return error("{}/{} is not known to kmodsync (no cells recorded, no {})", name, version,
                   root("/usr/src/" + name + "-" + version).string());
    }
    state->depmod_pending.insert(touched.begin(), touched.end());
    state->removed.insert(name + "/" + version);
    state->added.erase(name + "/" + version);
    std::erase_if(state->adopt, [&](const std::string& cell) { return cell.starts_with(name + "/" + version + "/"); });
    if (auto settled = save_and_settle(root, *locked, warnings, WithInitramfs::yes); !settled) {
      return std::unexpected(settled.error());
    }
    unmark_added_in_dkms_tree(root, name, version);
    return warnings;
  } catch (const std::exception& e) {
    return error("internal error while removing {}/{}: {}", name, version, e.what());
  }
}

Expected<UninstallResult> uninstall_module(const Root& root, const std::string& name, const std::string& version,
                                           const std::vector<std::string>& kernels, bool keep_build, bool depmod)
{
  try {
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    State& state = locked->state;
    UninstallResult result;
    auto in_scope = [&](const CellRecord& record) {
      return record.module == name && record.version == version
             && std::find(kernels.begin(), kernels.end(), record.kernel) != kernels.end();
    };
    std::vector<CellRecord> kept;
    for (const auto& record : state.cells) {
      if (in_scope(record) && keep_build && !record.built.empty() && files_intact(root, record.built)) {
        kept.push_back(record);
      }
    }
    const auto removed = uninstall_cells(
      root, *locked,
      [&](const CellRecord& record) {
        return in_scope(record) && (!keep_build || !record.files.empty());
      },
      result.warnings, !keep_build);
    for (const auto& record : removed) {
      if (!record.files.empty()) {
        result.uninstalled.push_back(record.kernel);
        state.depmod_pending.insert(record.kernel);
        for (const auto& module : module_names(record.files)) {
          state.initramfs_pending[record.kernel].insert(module);
        }
      }
    }
    // uninstall_cells forgot the kept builds with the records: the cells are "built" again.
    for (auto record : kept) {
      record.outcome = Outcome::built;
      record.files.clear();
      record.displaced.clear();
      record.reason = "uninstalled; the build is kept";
      if (!state.find(record.module, record.version, record.kernel)) {
        state.cells.push_back(std::move(record));
      }
    }
    if (!depmod) {
      // --no-depmod: the next pass (or command that runs depmod) catches up.
      if (auto saved = state.save(locked->paths.state_file); !saved) {
        return std::unexpected(saved.error());
      }
      return result;
    }
    if (auto settled = save_and_settle(root, *locked, result.warnings, WithInitramfs::yes); !settled) {
      return std::unexpected(settled.error());
    }
    return result;
  } catch (const std::exception& e) {
    return error("internal error while uninstalling {}/{}: {}", name, version, e.what());
  }
}

Expected<void> load_prebuilt(const Root& root, const std::string& name, const std::string& version,
                             const std::string& kernel, const std::vector<fs::path>& modules)
{
  try {
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    State& state = locked->state;
    CellRecord record;
    if (const CellRecord* old = state.find(name, version, kernel)) {
      record = *old;
      discard_kept_build(root, *old);
    }
    record.module = name;
    record.version = version;
    record.kernel = kernel;
    record.input_key = k_prebuilt_key;
    record.source_dir = "/usr/src/" + name + "-" + version;
    record.reason = "prebuilt modules loaded";
    record.built.clear();
    record.outcome = Outcome::built; // installed files (if any) stay tracked; the next install replaces them
    const fs::path dir = locked->paths.built_dir / kernel / name / version;
    for (std::size_t i = 0; i < modules.size(); ++i) {
      auto content = util::read_file(modules[i]);
      if (!content) {
        return std::unexpected(content.error());
      }
      // Kept as make leaves a module: DKMS's tarballs may hold them compressed and signed.
      std::string file_name = modules[i].filename().string();
      for (const auto compression : {Compression::xz, Compression::zstd, Compression::gzip}) {
        if (file_name.ends_with(module_suffix(compression))) {
          auto plain = decompress_module(*content, compression);
          if (!plain) {
            return error("{}: {}", modules[i].string(), plain.error());
          }
          *content = std::move(*plain);
          file_name = file_name.substr(0, file_name.size() - std::string_view(module_suffix(compression)).size()) + ".ko";
        }
      }
      *content = std::string(strip_module_signature(*content));
      auto file = keep_module(root, dir, i, file_name, *content);
      if (!file) {
        return std::unexpected(file.error());
      }
      record.built.push_back(std::move(*file));
    }
    record.time = std::time(nullptr);
    state.put(std::move(record));
    return state.save(locked->paths.state_file);
  } catch (const std::exception& e) {
    return error("internal error while loading prebuilt {}/{} for {}: {}", name, version, kernel, e.what());
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
    for (const auto& dir : {paths.build_dir / kernel, paths.log_dir / kernel, paths.built_dir / kernel,
                            paths.dir / "displaced" / kernel}) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    // The kernel is going away (this runs from its removal's hooks): depmod over the
    // tree its package is about to delete would be 6 s for nothing. Should the kernel
    // stay, the next pass that sees it runs the depmod left pending here.
    state->depmod_pending.insert(kernel);
    if (auto saved = state->save(paths.state_file); !saved) {
      return std::unexpected(saved.error());
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

Expected<AddedSource> add_module_source(const Root& root, const std::string& directory,
                                        std::chrono::milliseconds conf_timeout, bool copy_to_usr_src)
{
  try {
    fs::path dir = root(directory);
    if (!fs::is_regular_file(dir / "dkms.conf")) {
      return error("{} has no dkms.conf", dir.string());
    }
    // As `dkms add`: the file is read for the running kernel, and must be valid as a whole
    // (PACKAGE_NAME/VERSION do not depend on the kernel in any dkms.conf worth the name).
    DkmsConfContext context;
    struct utsname names {};
    if (::uname(&names) == 0) {
      context.kernelver = names.release;
      context.arch = names.machine;
      context.kernel_source_dir = root("/lib/modules/" + context.kernelver + "/build").string();
    }
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
    if (auto spec = make_module_spec(*values, dir / "dkms.conf", context, {}); !spec) {
      return std::unexpected(spec.error());
    }
    auto locked = lock_state(root);
    if (!locked) {
      return std::unexpected(locked.error());
    }
    const StatePaths& paths = locked->paths;
    State* state = &locked->state;
    AddedSource added{name, package_version, state->added.contains(name + "/" + package_version)};
    if (added.already_added) {
      return added;
    }
    const fs::path usr_src = root("/usr/src/" + name + "-" + package_version);
    std::error_code ec;
    if (copy_to_usr_src && fs::weakly_canonical(dir, ec) != fs::weakly_canonical(usr_src, ec)) {
      // As `dkms add PATH` does: the source then lives where every tool looks for it.
      // One already there (a package's) is used as it is, never overwritten.
      if (!fs::exists(usr_src / "dkms.conf", ec)) {
        if (auto copied = util::copy_tree(dir, usr_src); !copied) {
          return error("cannot copy {} to {}: {}", dir.string(), usr_src.string(), copied.error());
        }
      }
      dir = usr_src;
    }
    state->removed.erase(name + "/" + package_version);
    state->added.insert(name + "/" + package_version);
    const std::string managed = root.managed(dir);
    if (!managed.starts_with("/usr/src/")
        && std::find(state->registered.begin(), state->registered.end(), managed) == state->registered.end()) {
      state->registered.push_back(managed);
    }
    if (auto saved = state->save(paths.state_file); !saved) {
      return std::unexpected(saved.error());
    }
    mark_added_in_dkms_tree(root, name, package_version, managed);
    return added;
  } catch (const std::exception& e) {
    return error("internal error while adding {}: {}", directory, e.what());
  }
}

} // namespace kmodsync
