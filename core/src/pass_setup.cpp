// SPDX-License-Identifier: GPL-2.0-or-later
#include "pass_cell.hpp"

#include "kmodsync/config.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <set>

namespace kmodsync::detail {

namespace fs = std::filesystem;

namespace {

bool any_kernel_forces_signatures(const PassOptions& options, const std::vector<Kernel>& kernels)
{
  return std::any_of(kernels.begin(), kernels.end(), [&](const Kernel& kernel) {
    const bool in_scope = options.kernels.empty()
                          || std::find(options.kernels.begin(), options.kernels.end(), kernel.release)
                               != options.kernels.end();
    return in_scope && kernel.config_enabled("CONFIG_MODULE_SIG_FORCE");
  });
}

// The temporary name AtomicFile gives: "<target>.kmodsync-XXXXXX".
bool is_atomic_temp(const std::string& name)
{
  const auto at = name.rfind(".kmodsync-");
  return at != std::string::npos && name.size() - at == 16;
}

// `Iterator` is fs::directory_iterator or fs::recursive_directory_iterator.
template <typename Iterator>
void remove_temp_files(const fs::path& dir)
{
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return;
  }
  std::vector<fs::path> leftovers;
  for (auto it = Iterator(dir, ec); it != Iterator(); it.increment(ec)) {
    if (ec) {
      break;
    }
    if (it->is_regular_file(ec) && is_atomic_temp(it->path().filename().string())) {
      leftovers.push_back(it->path());
    }
  }
  for (const auto& path : leftovers) {
    LOG("removing {}, left by a pass that was killed", path.string());
    fs::remove(path, ec);
  }
}

void remove_temp_files_under(const fs::path& dir)
{
  remove_temp_files<fs::recursive_directory_iterator>(dir);
}

// The build user: the configured one, else _kmodsync (a packaged system user), else nobody.
Expected<Confinement> confinement_from(const Config& config)
{
  Confinement confinement;
  confinement.as_root = {config.build_as_root.begin(), config.build_as_root.end()};
  confinement.as_root_origin = config.build_as_root_origin;
  if (geteuid() != 0) {
    return confinement;
  }
  const std::vector<std::string> candidates =
    config.build_user.empty() ? std::vector<std::string>{"_kmodsync", "nobody"} : std::vector<std::string>{config.build_user};
  for (const auto& name : candidates) {
    struct passwd entry{};
    struct passwd* found = nullptr;
    std::vector<char> buffer(16384);
    if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found) {
      if (found->pw_uid == 0) {
        return error("build_user {} is root: builds must run as an unprivileged user (build_as_root = * to opt out)", name);
      }
      Sandbox sandbox;
      sandbox.uid = found->pw_uid;
      sandbox.gid = found->pw_gid;
      sandbox.writable = {config.build_writable.begin(), config.build_writable.end()};
      confinement.sandbox = std::move(sandbox);
      return confinement;
    }
  }
  if (!config.build_user.empty()) {
    return error("build_user {} does not exist", config.build_user);
  }
  Sandbox sandbox; // nobody's customary ids, though the name is missing
  sandbox.writable = {config.build_writable.begin(), config.build_writable.end()};
  confinement.sandbox = std::move(sandbox);
  return confinement;
}

} // namespace

std::optional<Sandbox> Confinement::for_build(const std::string& module, const fs::path& build_dir) const
{
  if (!sandbox || all_as_root() || as_root.contains(module)) {
    return std::nullopt;
  }
  Sandbox confined = *sandbox;
  confined.writable.push_back(build_dir);
  return confined;
}

std::optional<Sandbox> Confinement::for_evaluation() const
{
  if (!sandbox || all_as_root()) {
    return std::nullopt;
  }
  return sandbox;
}

Expected<void> setup_install(const PassOptions& options, const std::vector<Kernel>& kernels, InstallSetup& setup,
                             Reporter& reporter)
{
  auto config = Config::load(options.root);
  if (!config) {
    return std::unexpected(config.error());
  }
  setup.jobs = config->jobs;
  setup.cache_size = config->cache_size;
  if (auto confined = confinement_from(*config); !confined) {
    return std::unexpected(confined.error());
  } else {
    setup.confinement = std::move(*confined);
  }
  setup.remote = {config->remote_cache, config->remote_cache_read_only, config->remote_cache_layout,
                  config->remote_cache_timeout};
  setup.initramfs = config->initramfs != "never";
  setup.settings.root = options.root;
  setup.settings.distribution = detect_distribution(options.root);
  setup.settings.signing_hash = config->signing_hash;
  setup.settings.compression = config->compression;
  setup.settings.force = options.force;
  setup.settings.key_identity = "unsigned";

  const SigningPair pair = signing_pair(options.root, *config);
  std::string key = pair.key;
  std::string certificate = pair.certificate;
  if (key.empty() && !options.dry_run && any_kernel_forces_signatures(options, kernels)) {
    key = k_default_signing_key;
    certificate = k_default_signing_certificate;
    if (auto made = generate_signing_key(options.root(key), options.root(certificate), "kmodsync module signing key");
        !made) {
      return error("a kernel requires signed modules (CONFIG_MODULE_SIG_FORCE) and no key could be made: {}",
                   made.error());
    }
    reporter.note(fmt::format("a kernel requires signed modules: generated {} and {}; enroll the certificate "
                              "(mokutil --import {}) for Secure Boot",
                              key, certificate, certificate));
  }
  if (key.empty()) {
    return {};
  }
  auto loaded = SigningKey::load(options.root(key), options.root(certificate));
  if (!loaded) {
    return std::unexpected(config->signing_origin.empty() ? loaded.error()
                                                          : config->signing_origin + ": " + loaded.error());
  }
  setup.key = std::move(*loaded);
  setup.settings.key = &*setup.key;
  auto identity = sha256_file(options.root(certificate));
  setup.settings.key_identity = identity ? *identity : certificate;
  return {};
}

void settle_change(const Root& root, State& state, const PendingChange& change)
{
  // Whatever part of the change happened, the kernel's module index must catch up.
  state.depmod_pending.insert(change.kernel);
  if (change.files.empty()) {
    for (const auto& warning : apply_removal(root, change)) {
      LOG("{}", warning);
    }
    return;
  }
  CellRecord* record = state.find(change.module, change.version, change.kernel);
  if (!record) {
    CellRecord fresh;
    fresh.module = change.module;
    fresh.version = change.version;
    fresh.kernel = change.kernel;
    fresh.outcome = Outcome::installed;
    fresh.reason = "adopted after an interrupted pass";
    state.put(fresh);
    record = state.find(change.module, change.version, change.kernel);
  }
  const auto on_disk = [&](const InstalledFile& file) {
    auto hash = sha256_file(root(file.path));
    return hash && *hash == file.sha256;
  };
  const auto adopt = [&](const InstalledFile& file) {
    std::erase_if(record->files, [&](const InstalledFile& f) { return f.path == file.path; });
    record->files.push_back(with_stat(root, file));
  };
  for (const auto& file : change.removing) {
    if (on_disk(file)) {
      adopt(file);
    }
  }
  // Placed files win over what they replace at the same path.
  for (const auto& file : change.files) {
    if (on_disk(file)) {
      adopt(file);
    }
  }
  for (const auto& displaced : change.displaced) {
    const bool recorded = std::any_of(record->displaced.begin(), record->displaced.end(),
                                      [&](const DisplacedFile& d) { return d.original == displaced.original; });
    if (!recorded && access(root(displaced.backup).c_str(), F_OK) == 0) {
      record->displaced.push_back(displaced);
    }
  }
  // Unless everything planned landed, the cell must be built again, even when its inputs
  // did not change (a reinstall of a deleted file).
  const bool complete = std::all_of(change.files.begin(), change.files.end(), on_disk);
  if (!complete) {
    record->input_key.clear();
  }
}

bool repair_after_crash(const Root& root, State& state)
{
  const bool changed = !state.pending.empty();
  std::set<fs::path> change_dirs;
  for (const auto& change : state.pending) {
    settle_change(root, state, change);
    // A DEST_MODULE_LOCATION outside updates/ and extra/ (on distributions that honour it)
    // is swept where the interrupted change was writing, not as a whole tree.
    for (const auto& file : change.files) {
      change_dirs.insert(root(fs::path(file.path).parent_path().string()));
    }
  }
  for (const auto& dir : change_dirs) {
    remove_temp_files<fs::directory_iterator>(dir);
  }
  state.pending.clear();
  for (const char* base : {"/usr/lib/modules", "/lib/modules"}) {
    std::error_code ec;
    if (!fs::is_directory(root(base), ec)) {
      continue;
    }
    for (const auto& kernel : fs::directory_iterator(root(base), ec)) {
      // depmod's indexes, when the depmod cache writes them back (not the distribution's
      // kernel/ tree: it is never written).
      remove_temp_files<fs::directory_iterator>(kernel.path());
      remove_temp_files_under(kernel.path() / "updates");
      remove_temp_files_under(kernel.path() / "extra");
    }
  }
  remove_temp_files_under(StatePaths(root).dir);
  return changed;
}

} // namespace kmodsync::detail
