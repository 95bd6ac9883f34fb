// SPDX-License-Identifier: GPL-2.0-or-later
// The apt hook's transaction file (apt-transaction.json) as Post-Invoke reads it: whatever
// is there, load_pending answers with packages or an error naming the file.
#include "fuzz_support.hpp"

#include "apt_transaction.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto dir = fuzz::fresh_dir("apt");
  const auto file = dir / "apt-transaction.json";
  fuzz::write_file(file, fuzz::as_text(data, size));
  auto loaded = apt::load_pending(file);
  if (!loaded) {
    fuzz::require(loaded.error().starts_with(file.string()), loaded.error());
    return 0;
  }
  auto saved = apt::save_pending(dir / "again.json", *loaded);
  fuzz::require(saved.has_value(), saved ? "" : saved.error());
  auto again = apt::load_pending(dir / "again.json");
  fuzz::require(again.has_value() && again->size() == loaded->size(), "a saved transaction does not load back");
  return 0;
}
