// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// Content-addressed results of cell builds, by input key: the modules as the build left
// them (stripped, unsigned), its log and outcome, successes and failures alike. A cell
// whose key is there is satisfied without a compiler: a kernel removed and installed
// again, a rebuilt state, a module file deleted by hand. Entries are written whole (a
// directory renamed into place) and checked by hash when used; the least recently used go
// first when the cache outgrows its bound.

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kmodsync {

struct CachedResult
{
  bool ok = false;
  std::string reason;       // failures: what failed
  std::string first_error;  // failures: the first compiler error
  std::vector<InstalledFile> modules; // successes: absolute on the managed system, in spec order
  std::string log;          // the build's log, absolute on the managed system
};

struct CacheStats
{
  std::uint64_t entries = 0;
  std::uint64_t failures = 0;
  std::uint64_t bytes = 0;
  std::uint64_t limit = 0;
};

class BuildCache
{
public:
  BuildCache(const Root& root, std::uint64_t limit_bytes);

  // The entry for `key` when it is whole and its modules match their hashes; marks it used.
  std::optional<CachedResult> lookup(const std::string& key) const;
  // Whether there is an entry for `key` and it is a success (no hashes checked: for plans
  // and messages; lookup is what decides).
  std::optional<bool> peek(const std::string& key) const;
  // Stores a result (modules and log are copied). Returns the stored entry.
  Expected<CachedResult> store(const std::string& key, bool ok, const std::vector<std::filesystem::path>& modules,
                               const std::filesystem::path& log, const std::string& reason,
                               const std::string& first_error) const;
  // The entry for `key` as one object (for the remote cache); an error when there is none.
  Expected<std::string> export_entry(const std::string& key) const;
  // Stores an object fetched from elsewhere, once it is whole, its modules match their
  // hashes and `accept` (which sees the unpacked result) agrees. Nothing of a rejected
  // object stays.
  using Acceptor = std::function<Expected<void>(const CachedResult&)>;
  Expected<CachedResult> import_entry(const std::string& key, std::string_view object, const Acceptor& accept) const;
  // Removes the least recently used entries until the cache fits its bound.
  void evict() const;
  CacheStats stats() const;
  Expected<void> clear() const;

  const std::filesystem::path& dir() const { return m_dir; }

private:
  std::filesystem::path entry_dir(const std::string& key) const;
  Expected<CachedResult> read_entry(const std::filesystem::path& dir) const;
  std::filesystem::path staging_dir(const std::string& purpose, const std::string& key) const;
  // Renames a whole staged entry into place and reads it back.
  Expected<CachedResult> publish(const std::filesystem::path& staging, const std::string& key) const;

  Root m_root;
  std::filesystem::path m_dir;
  std::uint64_t m_limit;
};

} // namespace kmodsync
