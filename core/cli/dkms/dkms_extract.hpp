// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// The reading half of `dkms ldtarball`: unpacking a DKMS tarball (any format and
// compression libarchive reads) into a directory. Tarballs come from elsewhere, so
// nothing in one may land outside that directory.

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <string>

namespace kmodsync::cli::dkms {

// Extracts `archive_path` under `dir`, refusing absolute paths, `..` and links out. The
// error names the archive and the entry.
Expected<void> extract_tarball(const std::string& archive_path, const std::filesystem::path& dir);

} // namespace kmodsync::cli::dkms
