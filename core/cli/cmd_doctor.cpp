// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/doctor.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace kmodsync::cli {

namespace {

struct DoctorArgs
{
  std::vector<std::string> kernels;
  bool json = false;
};

nlohmann::json finding_json(const Finding& finding)
{
  return {{"severity", to_string(finding.severity)}, {"topic", finding.topic}, {"text", finding.text}, {"fix", finding.fix}};
}

void print_finding(const Finding& finding)
{
  fmt::print("  {:<8} {}: {}\n", to_string(finding.severity), finding.topic, finding.text);
  if (!finding.fix.empty() && finding.severity != Severity::ok) {
    fmt::print("           fix: {}\n", finding.fix);
  }
}

// Cells that will build are fine; the others say why not.
void print_cell(const Root& root, const CellReport& cell)
{
  if (cell.status != CellStatus::skipped && cell.status != CellStatus::failed) {
    return;
  }
  fmt::print("  {:<8} {}/{}: {}{}\n", to_string(cell.status), cell.module, cell.version,
             cell.remembered ? "known failure (inputs unchanged; sync --retry builds it again): " : "", cell.reason);
  if (!cell.first_error.empty()) {
    fmt::print("           first error: {}\n", cell.first_error);
  }
  if (!cell.log.empty() && cell.status == CellStatus::failed) {
    fmt::print("           log: {} (kmodsync log {}/{} {})\n", root(cell.log).string(), cell.module, cell.version,
               cell.kernel);
  }
}

int run_doctor(const GlobalOptions& global, const DoctorArgs& args)
{
  const Root root(global.root);
  const Diagnosis diagnosis = diagnose(root, args.kernels);
  const int code = diagnosis.any_problem() ? k_exit_cell_failed : k_exit_ok;
  if (args.json) {
    nlohmann::json general = nlohmann::json::array();
    for (const auto& finding : diagnosis.general) {
      general.push_back(finding_json(finding));
    }
    nlohmann::json kernels = nlohmann::json::array();
    for (const auto& kernel : diagnosis.kernels) {
      nlohmann::json findings = nlohmann::json::array();
      for (const auto& finding : kernel.findings) {
        findings.push_back(finding_json(finding));
      }
      nlohmann::json cells = nlohmann::json::array();
      for (const auto& cell : kernel.cells) {
        cells.push_back({{"module", cell.module},
                         {"version", cell.version},
                         {"status", to_string(cell.status)},
                         {"reason", cell.reason},
                         {"first_error", cell.first_error},
                         {"remembered", cell.remembered},
                         {"log", cell.log.empty() ? std::string() : root(cell.log).string()}});
      }
      kernels.push_back({{"kernel", kernel.release}, {"findings", findings}, {"cells", cells}});
    }
    fmt::print("{}", dump_json({{"ok", code == k_exit_ok}, {"general", general}, {"kernels", kernels}}));
    return code;
  }
  for (const auto& finding : diagnosis.general) {
    print_finding(finding);
  }
  std::size_t problems = 0;
  for (const auto& kernel : diagnosis.kernels) {
    fmt::print("kernel {}\n", kernel.release);
    std::size_t building = 0;
    for (const auto& finding : kernel.findings) {
      print_finding(finding);
      problems += finding.severity == Severity::problem;
    }
    for (const auto& cell : kernel.cells) {
      print_cell(root, cell);
      problems += cell.status == CellStatus::failed;
      building += cell.status == CellStatus::would_build;
    }
    if (building > 0) {
      fmt::print("  note     {} cell{} will be built by the next pass (kmodsync sync)\n", building, building == 1 ? "" : "s");
    }
  }
  for (const auto& finding : diagnosis.general) {
    problems += finding.severity == Severity::problem;
  }
  fmt::print("kmodsync doctor: {}\n", problems == 0 ? std::string("nothing is wrong")
                                                    : fmt::format("{} problem{}", problems, problems == 1 ? "" : "s"));
  return code;
}

} // namespace

void add_doctor_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto args = std::make_shared<DoctorArgs>();
  auto* command =
    app.add_subcommand("doctor", "Explain, per kernel, why cells are skipped or failing, and what to do about it");
  command->add_option("-k,--kernel", args->kernels, "Only this kernel release (repeatable)");
  command->add_flag("--json", args->json, "Print the diagnosis as JSON");
  command->callback([&action, &global, args] { action = [&global, args] { return run_doctor(global, *args); }; });
}

} // namespace kmodsync::cli
