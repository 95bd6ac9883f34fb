// SPDX-License-Identifier: GPL-2.0-or-later
#include "json_output.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace kmodsync::cli {

using nlohmann::json;

namespace {

std::string host_path(const Root& root, const std::string& managed)
{
  return managed.empty() ? std::string() : root(managed).string();
}

} // namespace

std::string dump_json(const json& document)
{
  return document.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

int print_outcome_json(int exit_code, const std::string& error, const std::vector<std::string>& warnings,
                       const json& fields)
{
  json document = fields.is_object() ? fields : json::object();
  document["ok"] = exit_code == 0;
  if (!error.empty()) {
    document["error"] = error;
  }
  document["warnings"] = warnings;
  std::fputs(dump_json(document).c_str(), stdout);
  return exit_code;
}

std::string pass_report_json(const PassReport& report, const Root& root)
{
  json cells = json::array();
  for (const auto& cell : report.cells) {
    cells.push_back({
      {"module", cell.module},
      {"version", cell.version},
      {"kernel", cell.kernel},
      {"status", to_string(cell.status)},
      {"reason", cell.reason},
      {"first_error", cell.first_error},
      {"log", host_path(root, cell.log)},
      {"remembered", cell.remembered},
      {"seconds", cell.seconds},
    });
  }
  return dump_json({{"cells", cells}, {"errors", report.errors}, {"failed", report.any_failed()}});
}

std::string state_json(const State& state, const Root& root)
{
  json cells = json::array();
  for (const auto& record : state.cells) {
    json files = json::array();
    for (const auto& file : record.files) {
      files.push_back({{"path", file.path}, {"sha256", file.sha256}});
    }
    cells.push_back({
      {"module", record.module},
      {"version", record.version},
      {"kernel", record.kernel},
      {"state", to_string(record.outcome)},
      {"reason", record.reason},
      {"first_error", record.first_error},
      {"log", host_path(root, record.log)},
      {"source_dir", record.source_dir},
      {"files", files},
    });
  }
  return dump_json({{"cells", cells}, {"removed", state.removed}});
}

} // namespace kmodsync::cli
