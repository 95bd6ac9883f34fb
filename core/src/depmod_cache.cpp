// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/depmod_cache.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/state.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

constexpr std::array<std::string_view, 3> k_depmod_inputs = {"modules.order", "modules.builtin",
                                                             "modules.builtin.modinfo"};
// kmod 30 reads these; depmod -b reads the host's, so a test root's are added as well.
constexpr std::array<std::string_view, 5> k_config_dirs = {"/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d",
                                                           "/usr/lib/depmod.d", "/lib/depmod.d"};
constexpr std::size_t k_trees_per_kernel = 3;
constexpr auto k_forget_kernel_after = std::chrono::hours(24 * 30);
constexpr std::string_view k_manifest = "manifest.json";

bool is_module_file(const std::string& name)
{
  return name.ends_with(".ko") || name.ends_with(".ko.xz") || name.ends_with(".ko.zst") || name.ends_with(".ko.gz");
}

bool is_depmod_input(const std::string& name)
{
  return std::find(k_depmod_inputs.begin(), k_depmod_inputs.end(), name) != k_depmod_inputs.end();
}

// What depmod writes: modules.* in the kernel's directory, but for its inputs.
bool is_depmod_output(const std::string& name)
{
  return name.starts_with("modules.") && !is_depmod_input(name) && name.find(".kmodsync-") == std::string::npos;
}

std::vector<fs::path> files_depmod_reads(const fs::path& modules_dir)
{
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(modules_dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it.depth() == 0 && (name == "build" || name == "source")) {
      it.disable_recursion_pending();
      continue;
    }
    if ((it.depth() == 0 && is_depmod_input(name)) || is_module_file(name)) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void add_config_files(Hasher& hasher, const fs::path& dir)
{
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".conf") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    hasher.update_field(file.string());
    if (auto added = hasher.update_file(file); !added) {
      hasher.update_field("unreadable");
    }
  }
}

std::string stat_line(const fs::path& file, const struct stat& info)
{
  return fmt::format("{} {} {} {}.{} {}.{}\n", file.string(), info.st_size, info.st_ino, info.st_mtim.tv_sec,
                     info.st_mtim.tv_nsec, info.st_ctim.tv_sec, info.st_ctim.tv_nsec);
}

} // namespace

std::string depmod_tree_stat_print(const fs::path& modules_dir)
{
  Hasher stats;
  for (const auto& file : files_depmod_reads(modules_dir)) {
    struct stat info {};
    if (::lstat(file.c_str(), &info) == 0) {
      stats.update(stat_line(file.lexically_relative(modules_dir), info));
    }
  }
  return stats.hex_digest();
}

Expected<DepmodTree> fingerprint_depmod_tree(const Root& root, const fs::path& modules_dir, const fs::path& depmod)
{
  Hasher content;
  Hasher stats;
  content.update_field("kmodsync-depmod-tree-1");
  if (auto added = content.update_file(depmod); !added) {
    return std::unexpected(added.error());
  }
  for (const auto& file : files_depmod_reads(modules_dir)) {
    const std::string relative = file.lexically_relative(modules_dir).string();
    struct stat info {};
    if (::lstat(file.c_str(), &info) != 0) {
      return error("depmod cache: cannot stat {}", file.string());
    }
    content.update_field(relative);
    if (S_ISLNK(info.st_mode)) {
      std::error_code ec;
      content.update_field("link:" + fs::read_symlink(file, ec).string());
    }
    if (auto added = content.update_file(file); !added) {
      // A dangling link or an unreadable module: depmod would complain; let it.
      return std::unexpected(added.error());
    }
    stats.update(stat_line(file.lexically_relative(modules_dir), info));
  }
  for (const auto& dir : k_config_dirs) {
    add_config_files(content, fs::path(dir));
    if (!root.is_host()) {
      add_config_files(content, root(dir));
    }
  }
  return DepmodTree{content.hex_digest(), stats.hex_digest()};
}

DepmodCache::DepmodCache(const Root& root) : m_dir(StatePaths(root).dir / "depmod-cache")
{
}

bool DepmodCache::restore(const std::string& kernel, const DepmodTree& tree, const fs::path& modules_dir) const
{
  const fs::path entry = m_dir / kernel / tree.key;
  auto manifest_text = util::read_file(entry / k_manifest);
  if (!manifest_text) {
    return false;
  }
  const auto manifest = nlohmann::json::parse(*manifest_text, nullptr, false);
  if (!manifest.is_object() || manifest.empty()) {
    return false;
  }
  // Everything is read and checked before anything is written: the indexes change
  // together or not at all.
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& [name, sha256] : manifest.items()) {
    auto content = util::read_file(entry / name);
    if (!is_depmod_output(name) || !sha256.is_string() || !content || sha256_text(*content) != sha256.get<std::string>()) {
      LOG("depmod cache for {}: {} is damaged; dropped", kernel, (entry / name).string());
      [[maybe_unused]] auto removed = util::remove_tree(entry);
      return false;
    }
    files.emplace_back(name, std::move(*content));
  }
  for (const auto& [name, content] : files) {
    if (auto written = write_file_atomically(modules_dir / name, content, 0644); !written) {
      LOG("depmod cache for {}: {}", kernel, written.error());
      return false;
    }
  }
  std::error_code ec;
  fs::last_write_time(entry, fs::file_time_type::clock::now(), ec); // most recently used
  return true;
}

Expected<void> DepmodCache::store(const std::string& kernel, const DepmodTree& tree, const fs::path& modules_dir) const
{
  const fs::path kernel_dir = m_dir / kernel;
  const fs::path entry = kernel_dir / tree.key;
  if (auto made = util::ensure_directory(kernel_dir); !made) {
    return made;
  }
  std::string pattern = (kernel_dir / ".new-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return error("depmod cache: cannot create a directory in {}", kernel_dir.string());
  }
  const fs::path staging = pattern;
  nlohmann::json manifest = nlohmann::json::object();
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(modules_dir, ec)) {
    const std::string name = item.path().filename().string();
    if (!item.is_regular_file(ec) || !is_depmod_output(name)) {
      continue;
    }
    auto content = util::read_file(item.path());
    if (!content) {
      [[maybe_unused]] auto removed = util::remove_tree(staging);
      return std::unexpected(content.error());
    }
    if (auto written = write_file_atomically(staging / name, *content, 0644); !written) {
      [[maybe_unused]] auto removed = util::remove_tree(staging);
      return written;
    }
    manifest[name] = sha256_text(*content);
  }
  if (auto written = write_file_atomically(staging / k_manifest, manifest.dump(1) + "\n", 0644); !written) {
    [[maybe_unused]] auto removed = util::remove_tree(staging);
    return written;
  }
  [[maybe_unused]] auto old = util::remove_tree(entry);
  fs::rename(staging, entry, ec);
  if (ec) {
    [[maybe_unused]] auto removed = util::remove_tree(staging);
    return error("depmod cache: cannot rename {} to {}: {}", staging.string(), entry.string(), ec.message());
  }

  // A few trees per kernel (the current one and those a rollback would find again).
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  for (const auto& item : fs::directory_iterator(kernel_dir, ec)) {
    if (item.is_directory(ec)) {
      entries.emplace_back(fs::last_write_time(item.path(), ec), item.path());
    }
  }
  std::sort(entries.begin(), entries.end(), std::greater<>());
  for (std::size_t i = k_trees_per_kernel; i < entries.size(); ++i) {
    [[maybe_unused]] auto removed = util::remove_tree(entries[i].second);
  }
  // Kernels gone long ago (kept meanwhile: a removed kernel may come back).
  const auto now = fs::file_time_type::clock::now();
  for (const auto& item : fs::directory_iterator(m_dir, ec)) {
    if (item.is_directory(ec) && now - fs::last_write_time(item.path(), ec) > k_forget_kernel_after) {
      [[maybe_unused]] auto removed = util::remove_tree(item.path());
    }
  }
  fs::last_write_time(kernel_dir, now, ec);
  return {};
}

} // namespace kmodsync
