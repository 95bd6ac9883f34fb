// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// A build cache entry as a single object, for the remote cache: a zstd-compressed tar of
// the entry's files (result.json, the modules, build.log). Objects come from the network,
// so unpacking accepts only what an entry can hold.

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace kmodsync {

Expected<std::string> pack_entry(const std::filesystem::path& dir);

// Extracts `object` into the empty directory `dir`: regular files with plain names only
// (no directories, links, `/` or `..`), at most 64 of them and 512 MiB in all.
Expected<void> unpack_entry(std::string_view object, const std::filesystem::path& dir);

} // namespace kmodsync
