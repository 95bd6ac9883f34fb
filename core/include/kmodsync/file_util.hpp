// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace kmodsync::util {

namespace fs = std::filesystem;

// Reads a whole file, or its first `limit` bytes. Fails with a message naming the path and
// the errno text.
Expected<std::string> read_file(const fs::path& path, std::size_t limit = SIZE_MAX);
// Creates `path` and its parents (mode 0755) if missing.
Expected<void> ensure_directory(const fs::path& path);
// Removes a tree if it exists; missing is not an error.
Expected<void> remove_tree(const fs::path& path);
// Copies a source tree the way `cp -a` does for our needs: directories, regular files with
// their permission bits, and symlinks as symlinks (never followed, so a link to /etc stays a
// link and its target is never read).
Expected<void> copy_tree(const fs::path& from, const fs::path& to);
// Gives a tree (links themselves, not their targets) to uid:gid.
Expected<void> chown_tree(const fs::path& root, unsigned uid, unsigned gid);
// fsyncs a directory so a rename inside it survives a crash.
Expected<void> fsync_directory(const fs::path& path);

} // namespace kmodsync::util
