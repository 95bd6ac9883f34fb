// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/memo.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/string_util.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <ctime>

namespace kmodsync {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::int64_t k_unused_seconds = 30 * 24 * 3600;

std::int64_t now_seconds()
{
  return static_cast<std::int64_t>(std::time(nullptr));
}

std::int64_t nanoseconds(const timespec& time)
{
  return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

// When an entry was last used; 0 (long unused) when that is not an integer.
std::int64_t used_time(const json& entry)
{
  const auto used = entry.find("used");
  return used != entry.end() && used->is_number_integer() ? used->get<std::int64_t>() : 0;
}

} // namespace

Memo::Memo(fs::path file) : m_file(std::move(file))
{
  auto text = util::read_file(m_file);
  if (!text) {
    return;
  }
  try {
    json document = json::parse(*text);
    if (document.is_object()) {
      m_entries = std::move(document);
    }
  } catch (const json::exception& e) {
    LOG("{}: {}: starting afresh", m_file.string(), e.what());
  }
}

std::optional<json> Memo::get(const std::string& key)
{
  const std::lock_guard lock(m_mutex);
  const auto it = m_entries.find(key);
  if (it == m_entries.end() || !it->is_object() || !it->contains("v")) {
    return std::nullopt;
  }
  // Touched at most daily, so that a warm pass does not rewrite the memo just for this.
  const std::int64_t now = now_seconds();
  if (used_time(*it) < now - 24 * 3600) {
    (*it)["used"] = now;
    m_changed = true;
  }
  return (*it)["v"];
}

void Memo::put(const std::string& key, json value)
{
  // What could not be written back byte for byte is not remembered (it would come back
  // different): paths and values that are not UTF-8.
  if (!util::is_valid_utf8(key)
      || value.dump(-1, ' ', false, json::error_handler_t::ignore)
           != value.dump(-1, ' ', false, json::error_handler_t::replace)) {
    return;
  }
  const std::lock_guard lock(m_mutex);
  m_entries[key] = {{"v", std::move(value)}, {"used", now_seconds()}};
  m_changed = true;
}

Expected<void> Memo::save()
{
  const std::lock_guard lock(m_mutex);
  if (!m_changed || m_file.empty()) {
    return {};
  }
  const std::int64_t oldest = now_seconds() - k_unused_seconds;
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    if (!it->is_object() || used_time(*it) < oldest) {
      it = m_entries.erase(it);
    } else {
      ++it;
    }
  }
  if (auto made = util::ensure_directory(m_file.parent_path()); !made) {
    return made;
  }
  if (auto written = write_file_atomically(m_file, m_entries.dump(-1, ' ', false, json::error_handler_t::replace));
      !written) {
    return written;
  }
  m_changed = false;
  return {};
}

Expected<std::string> memoized_file_hash(Memo& memo, const fs::path& path, const struct stat& info)
{
  const json identity = {static_cast<std::int64_t>(info.st_size), nanoseconds(info.st_mtim),
                         nanoseconds(info.st_ctim), static_cast<std::uint64_t>(info.st_ino)};
  const std::string key = "file:" + path.string();
  if (auto known = memo.get(key); known && known->is_array() && known->size() == 2 && (*known)[0] == identity
                                          && (*known)[1].is_string()) {
    return (*known)[1].get<std::string>();
  }
  auto hash = sha256_file(path);
  if (!hash) {
    return hash;
  }
  // A file changed within the last seconds may change again within the same timestamp
  // tick, unseen by stat: such a hash is not remembered (git's "racily clean" entries).
  const std::int64_t changed = std::max(nanoseconds(info.st_mtim), nanoseconds(info.st_ctim)) / 1'000'000'000;
  if (changed < now_seconds() - 2) {
    memo.put(key, json::array({identity, *hash}));
  }
  return hash;
}

} // namespace kmodsync
