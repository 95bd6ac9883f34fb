// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"

#include <string>
#include <string_view>

namespace kmodsync {

enum class Compression { none, xz, zstd, gzip };

// ".ko", ".ko.xz", ".ko.zst", ".ko.gz".
const char* module_suffix(Compression compression);

// How the kernel's own modules are compressed: the suffix of its modules in modules.dep,
// else its .config (CONFIG_MODULE_COMPRESS_XZ/ZSTD/GZIP), else none.
Compression kernel_module_compression(const Kernel& kernel);

// "auto" follows the kernel; "none", "xz", "zstd", "gzip" force it.
Expected<Compression> choose_compression(const std::string& setting, const Kernel& kernel);

// Compresses in process the way kbuild's modules_install does: xz with a CRC32 check and
// a 1 MiB dictionary (what the kernel's decompressor supports), zstd, gzip -9 without a
// name or time stamp.
Expected<std::string> compress_module(std::string_view module, Compression compression);

// The inverse, for reading installed modules back (tests, remote-cache checks).
Expected<std::string> decompress_module(std::string_view data, Compression compression);

} // namespace kmodsync
