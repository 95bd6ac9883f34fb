// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/install.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

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

Expected<InstalledFile> place_module(const Root& root, const fs::path& built, const fs::path& dest)
{
  auto content = util::read_file(built);
  if (!content) {
    return std::unexpected(content.error());
  }
  if (auto made = util::ensure_directory(dest.parent_path()); !made) {
    return std::unexpected(made.error());
  }
  if (auto written = write_file_atomically(dest, *content, 0644); !written) {
    return std::unexpected(written.error());
  }
  struct stat info{};
  stat(dest.c_str(), &info);
  return InstalledFile{root.managed(dest),
                       sha256_text(*content),
                       static_cast<std::int64_t>(info.st_size),
                       std::int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec};
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

Expected<std::vector<InstalledFile>> install_modules(const Root& root,
                                                     const std::string& distribution,
                                                     const ModuleSpec& spec,
                                                     const Kernel& kernel,
                                                     const std::vector<fs::path>& built,
                                                     const std::vector<InstalledFile>& previous)
{
  std::vector<InstalledFile> installed;
  for (std::size_t i = 0; i < spec.modules.size() && i < built.size(); ++i) {
    const ModuleRecord& record = spec.modules[i];
    if (auto verified = verify_module(built[i], kernel.release, record.built_name); !verified) {
      return std::unexpected(verified.error());
    }
    if (record.strip) {
      Command strip;
      strip.argv = {"strip", "-g", built[i].string()};
      strip.env = clean_environment();
      strip.timeout = std::chrono::minutes(2);
      auto completion = run(strip);
      if (!completion) {
        return std::unexpected(completion.error());
      }
      if (!completion->succeeded()) {
        return error("strip -g {} failed: {}", built[i].string(), util::trim(completion->output));
      }
    }
    const fs::path dest = kernel.modules_dir / install_location(distribution, record.dest_location)
                          / (record.dest_name + ".ko");
    auto placed = place_module(root, built[i], dest);
    if (!placed) {
      return std::unexpected(placed.error());
    }
    LOG("[{}/{} {}] installed {}", spec.name, spec.version, kernel.release, placed->path);
    installed.push_back(std::move(*placed));
  }

  std::set<std::string> current;
  for (const auto& file : installed) {
    current.insert(file.path);
  }
  std::vector<InstalledFile> stale;
  std::copy_if(previous.begin(), previous.end(), std::back_inserter(stale), [&](const InstalledFile& file) {
    return !current.contains(file.path);
  });
  for (const auto& warning : remove_installed_files(root, stale)) {
    LOG("[{}/{} {}] {}", spec.name, spec.version, kernel.release, warning);
  }
  return installed;
}

bool files_intact(const Root& root, const std::vector<InstalledFile>& files)
{
  return std::all_of(files.begin(), files.end(), [&](const InstalledFile& file) {
    const fs::path path = root(file.path);
    return stat_matches(path, file) || content_matches(path, file);
  });
}

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
  auto completion = run(depmod);
  if (!completion) {
    return error("depmod for {}: {}", kernel_release, completion.error());
  }
  if (!completion->succeeded()) {
    return error("depmod for {} failed ({}): {}", kernel_release,
                 completion->describe(depmod.timeout), util::trim(completion->output));
  }
  return {};
}

} // namespace kmodsync

namespace kmodsync {

bool run_pending_depmods(const Root& root, State& state, const std::vector<Kernel>& kernels,
                         std::vector<std::string>& errors)
{
  bool changed = false;
  for (auto it = state.depmod_pending.begin(); it != state.depmod_pending.end();) {
    const auto kernel = std::find_if(kernels.begin(), kernels.end(), [&](const Kernel& k) { return k.release == *it; });
    if (kernel != kernels.end()) {
      if (auto depmod = run_depmod(root, kernel->release, kernel->modules_dir); !depmod) {
        errors.push_back(depmod.error());
        ++it;
        continue;
      }
    }
    it = state.depmod_pending.erase(it);
    changed = true;
  }
  return changed;
}

} // namespace kmodsync
