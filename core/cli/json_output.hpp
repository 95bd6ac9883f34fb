// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/engine.hpp"
#include "kmodsync/state.hpp"

#include <string>

namespace kmodsync::cli {

// Machine-readable forms of a pass and of the recorded state (`--json`).
std::string pass_report_json(const PassReport& report, const Root& root);
std::string state_json(const State& state, const Root& root);

} // namespace kmodsync::cli
