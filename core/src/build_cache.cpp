// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/build_cache.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/cache_object.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/string_util.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <unistd.h>

namespace kmodsync {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* k_result = "result.json";

bool valid_key(const std::string& key)
{
  return key.size() >= 16 && std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::uint64_t tree_size(const fs::path& dir)
{
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      bytes += it->file_size(ec);
    }
  }
  return bytes;
}

} // namespace

BuildCache::BuildCache(const Root& root, std::uint64_t limit_bytes)
  : m_root(root), m_dir(StatePaths(root).dir / "cache"), m_limit(limit_bytes)
{
}

fs::path BuildCache::entry_dir(const std::string& key) const
{
  return m_dir / key.substr(0, 2) / key;
}

Expected<CachedResult> BuildCache::read_entry(const fs::path& dir) const
{
  auto text = util::read_file(dir / k_result);
  if (!text) {
    return std::unexpected(text.error());
  }
  try {
    const json document = json::parse(*text);
    CachedResult result;
    result.ok = document.at("ok").get<bool>();
    // Shown on terminals, and an entry may come from another machine.
    result.reason = util::printable(document.value("reason", ""));
    result.first_error = util::printable(document.value("first_error", ""));
    if (fs::exists(dir / "build.log")) {
      result.log = m_root.managed(dir / "build.log");
    }
    for (const auto& module : document.value("modules", json::array())) {
      const std::string name = module.at("file").get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
        return error("{}: \"{}\" is not a module file name", (dir / k_result).string(), util::printable(name));
      }
      const fs::path file = dir / name;
      const std::string sha256 = module.at("sha256").get<std::string>();
      auto actual = sha256_file(file);
      if (!actual || *actual != sha256) {
        return error("{} does not match its hash", file.string());
      }
      result.modules.push_back(with_stat(m_root, {m_root.managed(file), sha256, 0, 0}));
    }
    if (result.ok && result.modules.empty()) {
      return error("{}: a success without modules", (dir / k_result).string());
    }
    return result;
  } catch (const json::exception& e) {
    // json's messages quote the bytes they stopped at, and this file may come from the network.
    return error("{}: {}", (dir / k_result).string(), util::printable(e.what()));
  }
}

std::optional<CachedResult> BuildCache::lookup(const std::string& key) const
{
  if (!valid_key(key)) {
    return std::nullopt;
  }
  const fs::path dir = entry_dir(key);
  std::error_code ec;
  if (!fs::exists(dir / k_result, ec)) {
    return std::nullopt;
  }
  auto result = read_entry(dir);
  if (!result) {
    LOG("cache entry {}: {}: ignored", key, result.error());
    return std::nullopt;
  }
  fs::last_write_time(dir / k_result, fs::file_time_type::clock::now(), ec); // used: last to be evicted
  return *result;
}

fs::path BuildCache::staging_dir(const std::string& purpose, const std::string& key) const
{
  return m_dir / fmt::format("tmp-{}-{}-{}", purpose, ::getpid(), key);
}

Expected<CachedResult> BuildCache::publish(const fs::path& staging, const std::string& key) const
{
  // The entry appears whole or not at all: a directory renamed into place.
  const fs::path final_dir = entry_dir(key);
  if (auto made = util::ensure_directory(final_dir.parent_path()); !made) {
    return std::unexpected(made.error());
  }
  [[maybe_unused]] auto replaced = util::remove_tree(final_dir);
  std::error_code ec;
  fs::rename(staging, final_dir, ec);
  if (ec) {
    [[maybe_unused]] auto removed = util::remove_tree(staging);
    return error("cache: cannot store {}: {}", final_dir.string(), ec.message());
  }
  [[maybe_unused]] auto synced = util::fsync_directory(final_dir.parent_path());
  auto stored = lookup(key);
  if (!stored) {
    return error("cache: {} cannot be read back", final_dir.string());
  }
  return *stored;
}

Expected<std::string> BuildCache::export_entry(const std::string& key) const
{
  std::error_code ec;
  if (!valid_key(key) || !fs::exists(entry_dir(key) / k_result, ec)) {
    return error("cache: no entry {}", key);
  }
  return pack_entry(entry_dir(key));
}

Expected<CachedResult> BuildCache::import_entry(const std::string& key, std::string_view object,
                                                const Acceptor& accept) const
{
  if (!valid_key(key)) {
    return error("cache: \"{}\" is not an input key", key);
  }
  const fs::path staging = staging_dir("import", key);
  [[maybe_unused]] auto cleared = util::remove_tree(staging);
  if (auto made = util::ensure_directory(staging); !made) {
    return std::unexpected(made.error());
  }
  auto checked = [&]() -> Expected<void> {
    if (auto unpacked = unpack_entry(object, staging); !unpacked) {
      return unpacked;
    }
    auto result = read_entry(staging);
    if (!result) {
      return std::unexpected(result.error());
    }
    return accept(*result);
  }();
  if (!checked) {
    [[maybe_unused]] auto removed = util::remove_tree(staging);
    return std::unexpected(checked.error());
  }
  return publish(staging, key);
}

std::optional<bool> BuildCache::peek(const std::string& key) const
{
  if (!valid_key(key)) {
    return std::nullopt;
  }
  auto text = util::read_file(entry_dir(key) / k_result);
  if (!text) {
    return std::nullopt;
  }
  try {
    return json::parse(*text).at("ok").get<bool>();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Expected<CachedResult> BuildCache::store(const std::string& key, bool ok, const std::vector<fs::path>& modules,
                                         const fs::path& log, const std::string& reason,
                                         const std::string& first_error) const
{
  if (!valid_key(key)) {
    return error("cache: \"{}\" is not an input key", key);
  }
  const fs::path staging = staging_dir("store", key);
  if (auto cleared = util::remove_tree(staging); !cleared) {
    return std::unexpected(cleared.error());
  }
  if (auto made = util::ensure_directory(staging); !made) {
    return std::unexpected(made.error());
  }
  json entries = json::array();
  for (std::size_t i = 0; i < modules.size(); ++i) {
    auto content = util::read_file(modules[i]);
    if (!content) {
      return std::unexpected(content.error());
    }
    const std::string name = fmt::format("{}-{}", i, modules[i].filename().string());
    if (auto written = write_file_atomically(staging / name, *content, 0644); !written) {
      return std::unexpected(written.error());
    }
    entries.push_back({{"file", name}, {"sha256", sha256_text(*content)}});
  }
  std::error_code ec;
  if (!log.empty() && fs::is_regular_file(log, ec)) {
    fs::copy_file(log, staging / "build.log", fs::copy_options::overwrite_existing, ec);
  }
  const json document = {{"ok", ok}, {"reason", reason}, {"first_error", first_error}, {"modules", entries}};
  if (auto written = write_file_atomically(staging / k_result, document.dump(1, ' ', false, json::error_handler_t::replace) + "\n"); !written) {
    return std::unexpected(written.error());
  }
  return publish(staging, key);
}

void BuildCache::evict() const
{
  struct Entry
  {
    fs::path dir;
    fs::file_time_type used;
    std::uint64_t bytes;
  };
  std::vector<Entry> entries;
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(m_dir, ec)) {
    if (!shard.is_directory(ec) || shard.path().filename().string().starts_with("tmp-")) {
      continue;
    }
    for (const auto& entry : fs::directory_iterator(shard.path(), ec)) {
      const auto used = fs::last_write_time(entry.path() / k_result, ec);
      const std::uint64_t bytes = tree_size(entry.path());
      total += bytes;
      entries.push_back({entry.path(), ec ? fs::file_time_type::min() : used, bytes});
    }
  }
  if (total <= m_limit) {
    return;
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const auto& entry : entries) {
    if (total <= m_limit) {
      break;
    }
    if (util::remove_tree(entry.dir)) {
      total -= entry.bytes;
      LOG("cache: evicted {} ({} bytes)", entry.dir.string(), entry.bytes);
    }
  }
}

CacheStats BuildCache::stats() const
{
  CacheStats stats;
  stats.limit = m_limit;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(m_dir, ec)) {
    if (!shard.is_directory(ec) || shard.path().filename().string().starts_with("tmp-")) {
      continue;
    }
    for (const auto& entry : fs::directory_iterator(shard.path(), ec)) {
      ++stats.entries;
      stats.bytes += tree_size(entry.path());
      auto text = util::read_file(entry.path() / k_result);
      if (text && text->find("\"ok\": false") != std::string::npos) {
        ++stats.failures;
      }
    }
  }
  return stats;
}

Expected<void> BuildCache::clear() const
{
  return util::remove_tree(m_dir);
}

} // namespace kmodsync
