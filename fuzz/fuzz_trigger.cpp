// SPDX-License-Identifier: GPL-2.0-or-later
// Trigger path classification: note_path on the input as one path (NULs, newlines and all),
// split_source_dir on it, and the pass that sync_arguments asks for.
#include "fuzz_support.hpp"

#include "kmodsync/trigger.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view path = fuzz::as_text(data, size);
  for (const auto change : {PathChange::added, PathChange::removed}) {
    TransactionChanges changes;
    const bool mattered = note_path(changes, path, change);
    fuzz::require(mattered == !changes.empty(), "note_path's answer and what it noted disagree");
    for (const auto& set : {changes.kernels_added, changes.kernels_removed, changes.module_dirs}) {
      for (const auto& name : set) {
        fuzz::require(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos,
                      fmt::format("\"{}\" is not one path component", name));
      }
    }
    fuzz::require(sync_arguments(changes).has_value() == mattered, "sync_arguments");
  }
  const std::string dir(path);
  const auto [name, version] = split_source_dir(dir);
  fuzz::require(version.empty() ? name == dir : name + "-" + version == dir, "split_source_dir loses characters");
  return 0;
}
