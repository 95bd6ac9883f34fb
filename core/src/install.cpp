// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/install.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/depmod_cache.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"
#include "kmodsync/version.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

std::string os_release_field(const std::string& text, const std::string& key)
{
  for (const auto& line : util::split_lines(text)) {
    if (line.starts_with(key + "=")) {
      std::string value = line.substr(key.size() + 1);
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')) {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return {};
}

bool stat_matches(const fs::path& path, const InstalledFile& file)
{
  struct stat info{};
  if (stat(path.c_str(), &info) != 0) {
    return false;
  }
  const std::int64_t mtime_ns = std::int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec;
  return file.size != 0 && info.st_size == file.size && mtime_ns == file.mtime_ns;
}

bool content_matches(const fs::path& path, const InstalledFile& file)
{
  auto hash = sha256_file(path);
  return hash && *hash == file.sha256;
}

} // namespace

std::string detect_distribution(const Root& root)
{
  // A bare test root has no os-release; then the host's says what the tools are.
  for (const auto& file : {root("/etc/os-release"), root("/usr/lib/os-release"),
                           fs::path("/etc/os-release"), fs::path("/usr/lib/os-release")}) {
    if (auto text = util::read_file(file)) {
      const std::string id = os_release_field(*text, "ID");
      const std::string like = os_release_field(*text, "ID_LIKE");
      return util::trim(id + " " + like).empty() ? "unknown" : std::string(util::trim(id + " " + like));
    }
  }
  return "unknown";
}

std::string install_location(const std::string& distribution, const std::string& dest_location)
{
  for (const auto& id : util::split_words(distribution)) {
    if (id == "debian" || id == "ubuntu" || id == "arch") {
      return "updates/dkms";
    }
    if (id == "fedora" || id == "rhel" || id == "ovm") {
      return "extra";
    }
    if (id == "sles" || id == "suse" || id == "opensuse") {
      return "updates";
    }
  }
  std::string location = dest_location;
  while (location.starts_with('/')) {
    location.erase(0, 1);
  }
  return location;
}

namespace {

// Modules named `name` anywhere in the kernel's tree (in-tree, extra, updates), except the
// files kmodsync owns. Links (build, source) are not followed.
std::vector<fs::path> modules_named(const Root& root, const Kernel& kernel, const std::string& name,
                                    const std::set<std::string>& ours)
{
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(kernel.modules_dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) {
      break;
    }
    if (it->is_regular_file(ec) && module_name_of_file(it->path().filename().string()) == name
        && !ours.contains(root.managed(it->path()))) {
      found.push_back(it->path());
    }
  }
  return found;
}

std::string signature_hash(const InstallSettings& settings, const Kernel& kernel)
{
  if (!settings.signing_hash.empty()) {
    return settings.signing_hash;
  }
  const auto hash = kernel.config.find("CONFIG_MODULE_SIG_HASH");
  return !hash || hash->empty() ? "sha256" : std::string(*hash);
}

Expected<void> copy_file(const fs::path& from, const fs::path& to, mode_t mode)
{
  auto content = util::read_file(from);
  if (!content) {
    return std::unexpected(content.error());
  }
  if (auto made = util::ensure_directory(to.parent_path()); !made) {
    return made;
  }
  return write_file_atomically(to, *content, mode);
}

// Across file systems (/var/lib and /usr/lib may differ): an atomic copy, then the unlink.
Expected<void> move_file(const fs::path& from, const fs::path& to, mode_t mode)
{
  if (auto copied = copy_file(from, to, mode); !copied) {
    return copied;
  }
  if (unlink(from.c_str()) != 0) {
    return error("cannot remove {}: {}", from.string(), std::strerror(errno));
  }
  return util::fsync_directory(from.parent_path());
}

} // namespace

std::string install_fingerprint(const InstallSettings& settings, const Kernel& kernel)
{
  const auto compression = choose_compression(settings.compression, kernel);
  return fmt::format("location={};compression={};signer={};hash={};force={}",
                     install_location(settings.distribution, "/updates"),
                     compression ? module_suffix(*compression) : "?", settings.key_identity,
                     settings.key ? signature_hash(settings, kernel) : "-", settings.force);
}

Expected<void> strip_module(const fs::path& module)
{
  Command strip;
  strip.argv = {"strip", "-g", module.string()};
  strip.env = clean_environment();
  strip.timeout = std::chrono::minutes(2);
  auto completion = run(strip);
  if (!completion) {
    return std::unexpected(completion.error());
  }
  if (!completion->succeeded()) {
    return error("strip -g {} failed: {}", module.string(), util::trim(completion->output));
  }
  return {};
}

std::vector<fs::path> module_destinations(const InstallSettings& settings, const ModuleSpec& spec, const Kernel& kernel)
{
  std::vector<fs::path> destinations;
  for (const auto& record : spec.modules) {
    destinations.push_back(kernel.modules_dir / install_location(settings.distribution, record.dest_location)
                           / record.dest_name);
  }
  return destinations;
}

Expected<PreparedInstall> prepare_install(const InstallSettings& settings,
                                          const ModuleSpec& spec,
                                          const Kernel& kernel,
                                          const std::vector<fs::path>& built,
                                          const std::set<std::string>& ours)
{
  auto compression = choose_compression(settings.compression, kernel);
  if (!compression) {
    return std::unexpected(compression.error());
  }
  const Root& root = settings.root;
  PreparedInstall prepared;
  for (std::size_t i = 0; i < spec.modules.size() && i < built.size(); ++i) {
    const ModuleRecord& record = spec.modules[i];
    auto info = verify_module(built[i], kernel.release, record.built_name);
    if (!info) {
      return std::unexpected(info.error());
    }
    if (record.strip) {
      if (auto stripped = strip_module(built[i]); !stripped) {
        return std::unexpected(stripped.error());
      }
    }
    auto content = util::read_file(built[i]);
    if (!content) {
      return std::unexpected(content.error());
    }
    if (settings.key) {
      auto signed_module = settings.key->sign_module(*content, signature_hash(settings, kernel));
      if (!signed_module) {
        return error("signing {}: {}", built[i].string(), signed_module.error());
      }
      *content = std::move(*signed_module);
    }
    auto finished = compress_module(*content, *compression);
    if (!finished) {
      return error("compressing {}: {}", built[i].string(), finished.error());
    }
    const fs::path dest = module_destinations(settings, spec, kernel)[i].string() + module_suffix(*compression);
    if (!settings.force && !info->version.empty() && prepared.obsolete_reason.empty()) {
      for (const auto& other : modules_named(root, kernel, kernel_module_name(record.dest_name), ours)) {
        auto theirs = read_module_info(other);
        if (theirs && !theirs->version.empty() && compare_versions(theirs->version, info->version) > 0) {
          prepared.obsolete_reason =
            fmt::format("{} has version {}, newer than {}/{}'s {} (--force installs it anyway)",
                        root.managed(other), theirs->version, spec.name, spec.version, info->version);
        }
      }
    }
    PreparedModule module{dest, std::move(*finished), {}};
    module.sha256 = sha256_text(module.content);
    prepared.modules.push_back(std::move(module));
  }
  return prepared;
}

PendingChange plan_placement(const Root& root,
                             const PreparedInstall& prepared,
                             const std::string& kernel,
                             const std::set<std::string>& ours,
                             const std::vector<InstalledFile>& previous)
{
  PendingChange change;
  change.kernel = kernel;
  for (const auto& module : prepared.modules) {
    const std::string path = root.managed(module.dest);
    change.files.push_back({path, module.sha256, 0, 0});
    std::error_code ec;
    if (fs::exists(fs::symlink_status(module.dest, ec)) && !ours.contains(path)) {
      auto hash = sha256_file(module.dest);
      change.displaced.push_back({path, "/var/lib/kmodsync/displaced/" + kernel + path, hash ? *hash : ""});
    }
  }
  // Every previous file is either replaced (same path) or dropped: it leaves the record.
  change.removing = previous;
  return change;
}

Expected<void> place_modules(const Root& root, const PreparedInstall& prepared, const PendingChange& change)
{
  for (const auto& displaced : change.displaced) {
    // Copied, not moved: our module then replaces it with one rename, so the path is
    // never empty.
    if (auto copied = copy_file(root(displaced.original), root(displaced.backup), 0644); !copied) {
      return error("cannot keep a copy of {}, which kmodsync did not install: {}", displaced.original, copied.error());
    }
    LOG("kept {} aside as {}", displaced.original, displaced.backup);
  }
  for (const auto& module : prepared.modules) {
    if (auto made = util::ensure_directory(module.dest.parent_path()); !made) {
      return made;
    }
    if (auto written = write_file_atomically(module.dest, module.content, 0644); !written) {
      return written;
    }
  }
  for (const auto& warning : apply_removal(root, change)) {
    LOG("{}", warning);
  }
  return {};
}

PendingChange uninstall_change(const CellRecord& record)
{
  PendingChange change;
  change.module = record.module;
  change.version = record.version;
  change.kernel = record.kernel;
  change.removing = record.files;
  change.restoring = record.displaced;
  return change;
}

InstalledFile with_stat(const Root& root, InstalledFile file)
{
  struct stat info{};
  if (stat(root(file.path).c_str(), &info) == 0) {
    file.size = static_cast<std::int64_t>(info.st_size);
    file.mtime_ns = std::int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec;
  }
  return file;
}

bool files_intact(const Root& root, const std::vector<InstalledFile>& files)
{
  return std::all_of(files.begin(), files.end(), [&](const InstalledFile& file) {
    const fs::path path = root(file.path);
    return stat_matches(path, file) || content_matches(path, file);
  });
}

namespace {

// After a module leaves .../lib/modules/KV/updates/dkms/, the directories it was the last
// file of go too (up to, not including, the kernel's own directory), so a package manager
// removing the kernel finds nothing of kmodsync's.
void remove_empty_parents(const Root& root, const std::string& managed_file)
{
  const fs::path file(managed_file);
  std::vector<fs::path> parts(file.begin(), file.end());
  // "/", "usr"?, "lib", "modules", KV, ...: the kernel's directory ends at "modules"/KV.
  std::size_t kernel_end = 0;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "modules" && i > 0 && parts[i - 1] == "lib") {
      kernel_end = i + 2;
      break;
    }
  }
  if (kernel_end == 0) {
    return;
  }
  fs::path dir = file.parent_path();
  while (std::distance(dir.begin(), dir.end()) > static_cast<std::ptrdiff_t>(kernel_end)) {
    std::error_code ec;
    if (!fs::remove(root(dir.string()), ec) || ec) { // only an empty directory is removed
      return;
    }
    dir = dir.parent_path();
  }
}

} // namespace

std::vector<std::string> remove_installed_files(const Root& root, const std::vector<InstalledFile>& files)
{
  std::vector<std::string> warnings;
  for (const auto& file : files) {
    const fs::path path = root(file.path);
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(path, ec))) {
      continue;
    }
    if (!content_matches(path, file)) {
      warnings.push_back(fmt::format("left {} alone: it changed since kmodsync installed it", path.string()));
      continue;
    }
    if (unlink(path.c_str()) != 0) {
      warnings.push_back(fmt::format("cannot remove {}: {}", path.string(), std::strerror(errno)));
      continue;
    }
    [[maybe_unused]] auto synced = util::fsync_directory(path.parent_path());
    remove_empty_parents(root, file.path);
  }
  return warnings;
}

Expected<void> run_depmod(const Root& root, const std::string& kernel_release, const fs::path& modules_dir)
{
  std::error_code ec;
  const fs::path seen_by_depmod = root("/lib/modules/" + kernel_release);
  if (!fs::equivalent(seen_by_depmod, modules_dir, ec)) {
    return error("depmod for {}: depmod reads {}, which is not {} (is {} a link to usr/lib?)",
                 kernel_release, seen_by_depmod.string(), modules_dir.string(), root("/lib").string());
  }
  Command depmod;
  depmod.argv = root.is_host() ? std::vector<std::string>{"depmod", "-a", kernel_release}
                               : std::vector<std::string>{"depmod", "-a", "-b", root.dir().string(), kernel_release};
  depmod.env = clean_environment();
  depmod.timeout = std::chrono::minutes(5);

  const DepmodCache cache(root);
  std::optional<DepmodTree> tree;
  if (const auto binary = find_executable("depmod", depmod.env)) {
    if (auto fingerprint = fingerprint_depmod_tree(root, modules_dir, fs::canonical(*binary, ec)); fingerprint) {
      tree = std::move(*fingerprint);
    } else {
      LOG("depmod for {}: no depmod cache: {}", kernel_release, fingerprint.error());
    }
  }
  if (tree && cache.restore(kernel_release, *tree, modules_dir)) {
    LOG("depmod for {}: indexes of this very tree restored from the depmod cache", kernel_release);
    return {};
  }
  auto completion = run(depmod);
  if (!completion) {
    return error("depmod for {}: {}", kernel_release, completion.error());
  }
  if (!completion->succeeded()) {
    return error("depmod for {} failed ({}): {}", kernel_release,
                 completion->describe(depmod.timeout), util::trim(completion->output));
  }
  // Kept only when nothing moved in the tree while depmod read it.
  if (tree && depmod_tree_stat_print(modules_dir) == tree->stat_print) {
    if (auto stored = cache.store(kernel_release, *tree, modules_dir); !stored) {
      LOG("depmod for {}: {}", kernel_release, stored.error());
    }
  }
  return {};
}

Expected<InstalledFile> keep_module(const Root& root, const fs::path& dir, std::size_t index,
                                    const std::string& file_name, const std::string& content)
{
  if (auto made = util::ensure_directory(dir); !made) {
    return std::unexpected(made.error());
  }
  const fs::path copy = dir / fmt::format("{}-{}", index, file_name);
  if (auto written = write_file_atomically(copy, content, 0644); !written) {
    return error("keeping the built {}: {}", file_name, written.error());
  }
  return with_stat(root, {root.managed(copy), sha256_text(content), 0, 0});
}

void discard_kept_build(const Root& root, const CellRecord& record)
{
  std::error_code ec;
  for (const auto& file : record.built) {
    // A build in the cache stays there (other cells, a reinstalled kernel, may use it);
    // only a cell's own copy (loaded from a tarball) goes.
    if (file.path.starts_with("/var/lib/kmodsync/built/")) {
      fs::remove(root(file.path), ec);
      fs::remove(root(file.path).parent_path(), ec); // only if empty
    }
  }
}

std::vector<std::string> uninstall_cell(const Root& root, const CellRecord& record)
{
  return apply_removal(root, uninstall_change(record));
}

std::vector<std::string> apply_removal(const Root& root, const PendingChange& change)
{
  std::set<std::string> placed;
  for (const auto& file : change.files) {
    placed.insert(file.path);
  }
  std::vector<InstalledFile> dropped;
  std::copy_if(change.removing.begin(), change.removing.end(), std::back_inserter(dropped),
               [&](const InstalledFile& file) { return !placed.contains(file.path); });
  auto warnings = remove_installed_files(root, dropped);
  for (const auto& displaced : change.restoring) {
    std::error_code ec;
    const fs::path original = root(displaced.original);
    if (!fs::exists(root(displaced.backup), ec)) {
      continue;
    }
    if (fs::exists(fs::symlink_status(original, ec))) {
      warnings.push_back(fmt::format("did not restore {}: something else is there now (the original is kept in {})",
                                     original.string(), root(displaced.backup).string()));
      continue;
    }
    if (auto moved = move_file(root(displaced.backup), original, 0644); !moved) {
      warnings.push_back(moved.error());
    }
  }
  return warnings;
}

} // namespace kmodsync

namespace kmodsync {

bool run_pending_depmods(const Root& root, State& state, const std::vector<Kernel>& kernels,
                         std::vector<std::string>& errors)
{
  struct Work
  {
    std::string release;
    const Kernel* kernel = nullptr;
    Expected<void> result;
  };
  std::vector<Work> work;
  for (const auto& release : state.depmod_pending) {
    const auto kernel = std::find_if(kernels.begin(), kernels.end(), [&](const Kernel& k) { return k.release == release; });
    work.push_back({release, kernel == kernels.end() ? nullptr : &*kernel, {}});
  }
  // One depmod per kernel, side by side: each is one process reading its own tree, and
  // the 6 s of a kernel with xz modules need not wait for the others.
  const std::size_t width = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t first = 0; first < work.size(); first += width) {
    std::vector<std::thread> threads;
    for (std::size_t i = first; i < std::min(work.size(), first + width); ++i) {
      if (work[i].kernel) {
        threads.emplace_back([&root, &item = work[i]] {
          item.result = run_depmod(root, item.kernel->release, item.kernel->modules_dir);
        });
      }
    }
    for (auto& thread : threads) {
      thread.join();
    }
  }
  bool changed = false;
  for (const auto& item : work) {
    if (!item.result) {
      errors.push_back(item.result.error());
      continue;
    }
    state.depmod_pending.erase(item.release); // done, or the kernel is gone
    changed = true;
  }
  return changed;
}

} // namespace kmodsync
