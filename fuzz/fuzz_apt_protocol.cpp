// SPDX-License-Identifier: GPL-2.0-or-later
// The apt hook's DPkg::Pre-Install-Pkgs input (protocol version 3), and the transaction
// file it writes from it, which must load back as it was written.
#include "fuzz_support.hpp"

#include "apt_transaction.hpp"

#include <sstream>

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::istringstream in{std::string(fuzz::as_text(data, size))};
  auto input = apt::parse_hook_input(in);
  if (!input) {
    fuzz::require(input.error().starts_with("apt hook: "), input.error());
    fuzz::require(input.error().find("line ") != std::string::npos, "the error names no line");
    return 0;
  }
  const auto file = fuzz::fresh_dir("apt") / "apt-transaction.json";
  for (auto& package : input->packages) {
    package.old_paths = {"/usr/lib/modules/6.1.0-55-amd64/vmlinuz", package.name};
  }
  auto saved = apt::save_pending(file, input->packages);
  fuzz::require(saved.has_value(), saved ? "" : saved.error());
  auto loaded = apt::load_pending(file);
  fuzz::require(loaded.has_value(), loaded ? "" : loaded.error());
  fuzz::require(loaded->size() == input->packages.size(), "packages lost");
  for (std::size_t i = 0; i < loaded->size(); ++i) {
    const auto& a = (*loaded)[i];
    const auto& b = input->packages[i];
    // Names that are not UTF-8 come back with U+FFFD in them; the rest as they were.
    fuzz::require(a.removed == b.removed && a.configure_only == b.configure_only
                    && a.old_paths.size() == b.old_paths.size(),
                  "a package does not load back as it was saved");
  }
  return 0;
}
