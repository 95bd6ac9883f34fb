// SPDX-License-Identifier: GPL-2.0-or-later
// State::load of state.json; a state that loads must save, load again and save the same.
#include "fuzz_support.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/state.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto dir = fuzz::fresh_dir("state");
  const auto file = dir / "state.json";
  fuzz::write_file(file, fuzz::as_text(data, size));
  auto state = State::load(file);
  if (!state) {
    fuzz::require(state.error().starts_with(file.string() + ": "), state.error());
    return 0;
  }
  const auto saved = dir / "saved.json";
  auto written = state->save(saved);
  fuzz::require(written.has_value(), written ? "" : written.error());
  auto again = State::load(saved);
  fuzz::require(again.has_value(), again ? "" : again.error());
  const auto resaved = dir / "resaved.json";
  fuzz::require(again->save(resaved).has_value(), "second save");
  fuzz::require(util::read_file(saved).value() == util::read_file(resaved).value(),
                "a saved state does not load back as it was");
  return 0;
}
