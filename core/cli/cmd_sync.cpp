// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"
#include "progress_matrix.hpp"
#include "text_reporter.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string_view>

namespace kmodsync::cli {

namespace {

struct SyncArgs
{
  std::vector<std::string> kernels;
  std::vector<std::string> modules;
  unsigned jobs = 0;
  bool dry_run = false;
  bool retry = false;
  bool force = false;
  bool json = false;
  bool lines = false;
  unsigned build_timeout_s = 1800;
};

int run_sync(const GlobalOptions& global, const SyncArgs& args)
{
  PassOptions options;
  options.root = Root(global.root);
  options.kernels = args.kernels;
  options.modules = args.modules;
  options.jobs = args.jobs;
  options.dry_run = args.dry_run;
  options.retry = args.retry;
  options.force = args.force;
  options.build_timeout = std::chrono::seconds(args.build_timeout_s);

  TextReporter text(options.root, stdout);
  QuietReporter quiet;
  std::optional<ProgressMatrix> matrix;
  // Triggers set KMODSYNC_PROGRESS=lines: a package manager's terminal and its log take
  // lines, not a matrix redrawn in place.
  const char* progress = std::getenv("KMODSYNC_PROGRESS");
  const bool lines = args.lines || (progress != nullptr && std::string_view(progress) == "lines");
  const bool live = !args.json && !args.dry_run && !lines && ProgressMatrix::usable(STDOUT_FILENO);
  if (live) {
    matrix.emplace(options.root, stdout, STDOUT_FILENO);
  }
  // A dry run prints its plan at the end, in order.
  Reporter& reporter = live ? static_cast<Reporter&>(*matrix)
                       : args.json || args.dry_run ? static_cast<Reporter&>(quiet)
                                                   : text;
  auto report = run_pass(options, reporter);
  if (!report) {
    fmt::print(stderr, "kmodsync: {}\n", report.error());
    return k_exit_usage;
  }
  if (args.json) {
    fmt::print("{}", pass_report_json(*report, options.root));
  } else if (matrix) {
    matrix->finish(*report);
  } else {
    if (args.dry_run) {
      fmt::print("kmodsync: plan (--dry-run, nothing is changed):\n");
      for (const auto& cell : report->cells) {
        text.print_cell(cell);
      }
    }
    text.print_summary(*report);
  }
  return report->any_failed() ? k_exit_cell_failed : k_exit_ok;
}

} // namespace

void add_sync_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto args = std::make_shared<SyncArgs>();
  auto* command = app.add_subcommand("sync", "Build and install every module source for every kernel (one pass)");
  command->add_option("-k,--kernel", args->kernels, "Only this kernel release (repeatable)");
  command->add_option("-m,--module", args->modules, "Only this module, NAME or NAME/VERSION (repeatable)");
  command->add_option("-j,--jobs", args->jobs, "Parallel jobs for all builds together (default: CPUs)");
  command->add_flag("-n,--dry-run", args->dry_run, "Print the plan; change nothing");
  command->add_flag("--retry", args->retry, "Rebuild known failures even if nothing changed");
  command->add_flag("--force", args->force, "Install even over a module of a newer version");
  command->add_flag("--json", args->json, "Print the result as JSON");
  command->add_flag("--lines", args->lines, "One line per finished cell, also on a terminal (no live matrix)");
  command->add_option("--build-timeout", args->build_timeout_s, "Seconds before one cell's build is killed")
    ->capture_default_str();
  command->callback([&action, &global, args] { action = [&global, args] { return run_sync(global, *args); }; });
}

} // namespace kmodsync::cli
