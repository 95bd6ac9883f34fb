// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/engine.hpp"
#include "kmodsync/state.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace kmodsync::cli {

// Machine-readable forms of a pass and of the recorded state (`--json`).
std::string pass_report_json(const PassReport& report, const Root& root);
std::string state_json(const State& state, const Root& root);
// Every command's --json goes through this: indented, invalid UTF-8 replaced, one newline.
std::string dump_json(const nlohmann::json& document);
// What a command that changes something prints for --json: {"ok", "error" (when not ok),
// "warnings", and `fields`}, on stdout. Returns `exit_code`.
int print_outcome_json(int exit_code, const std::string& error, const std::vector<std::string>& warnings,
                       const nlohmann::json& fields);

} // namespace kmodsync::cli
