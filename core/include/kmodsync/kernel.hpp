// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kmodsync {

// One installed kernel, as found under ROOT/usr/lib/modules/KV (or ROOT/lib/modules/KV).
struct Kernel
{
  std::string release;                   // KV
  std::string arch;                      // e.g. x86_64
  std::filesystem::path modules_dir;     // ROOT/usr/lib/modules/KV
  std::optional<std::filesystem::path> headers_dir; // the kbuild tree `build` points at
  std::string missing_headers_reason;    // why headers_dir is empty
  std::map<std::string, std::string> config; // the headers' .config (CONFIG_X -> value)
  // Hash of what a module built against these headers depends on: .config,
  // Module.symvers, utsrelease.h. Empty when there are no headers.
  std::string fingerprint;

  bool buildable() const { return headers_dir.has_value(); }
  // True for CONFIG_X=y or =m, as BUILD_EXCLUSIVE_CONFIG tests it.
  bool config_enabled(const std::string& option) const;
};

// Finds every kernel of the root. A directory counts as a kernel when it has a `build`
// link, a `kernel/` tree or modules.order (a leftover directory holding only
// updates/ does not). Sorted by release, newest last.
class Memo;
// `memo` spares rehashing the headers of kernels seen before.
Expected<std::vector<Kernel>> discover_kernels(const Root& root, Memo& memo);
Expected<std::vector<Kernel>> discover_kernels(const Root& root);

// Parses a kbuild .config (`CONFIG_X=value`, `# CONFIG_X is not set`).
std::map<std::string, std::string> parse_kernel_config(std::string_view text);

} // namespace kmodsync
