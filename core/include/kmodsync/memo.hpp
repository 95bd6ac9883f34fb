// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// What a pass would otherwise recompute every time although its inputs did not change:
// file hashes (by the file's stat, as ccache's inode cache and git's index do), dkms.conf
// evaluations (by everything the evaluation sees) and tool versions (by the binaries'
// stat). A warm pass then spawns nothing and reads no source file. The memo is only a
// shortcut: a missing or damaged file means recomputing, never a different answer.

#include "kmodsync/expected.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

struct stat;

namespace kmodsync {

class Memo
{
public:
  // Loads `file`; a missing or unreadable one is an empty memo.
  explicit Memo(std::filesystem::path file);
  // No file at all: every lookup misses (dry runs of a root never seen, tests).
  Memo() = default;

  std::optional<nlohmann::json> get(const std::string& key);
  void put(const std::string& key, nlohmann::json value);
  // Writes the memo if it changed, leaving out entries no pass used for 30 days.
  Expected<void> save();

private:
  std::filesystem::path m_file;
  nlohmann::json m_entries = nlohmann::json::object();
  bool m_changed = false;
  std::mutex m_mutex;
};

// SHA-256 of the regular file `path` whose lstat is `info`, from the memo when size,
// modification and change times and inode are what they were when it was hashed.
Expected<std::string> memoized_file_hash(Memo& memo, const std::filesystem::path& path, const struct stat& info);

} // namespace kmodsync
