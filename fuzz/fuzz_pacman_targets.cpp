// SPDX-License-Identifier: GPL-2.0-or-later
// The pacman hook's target reader: matched paths on stdin, one a line.
#include "fuzz_support.hpp"

#include "pacman_targets.hpp"

#include <sstream>

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(fuzz::as_text(data, size));
  const auto root = fuzz::fresh_dir("root");
  std::error_code ec;
  std::filesystem::create_directories(root / "usr/lib/modules/6.1.0-55-amd64", ec);
  for (const auto change : {PathChange::added, PathChange::removed}) {
    std::istringstream in(text);
    TransactionChanges changes = pacman::read_targets(in, change);
    forget_absent_kernels(changes, Root(root));
    for (const auto& kernel : changes.kernels_added) {
      fuzz::require(kernel == "6.1.0-55-amd64", "forget_absent_kernels kept a kernel the root does not have");
    }
    const auto arguments = sync_arguments(changes);
    fuzz::require(arguments.has_value() == !changes.empty(), "sync_arguments");
    for (const auto& dir : changes.module_dirs) {
      (void)split_source_dir(dir);
    }
  }
  return 0;
}
