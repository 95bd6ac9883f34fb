// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace kmodsync::cli {

namespace {

struct StatusArgs
{
  bool json = false;
};

// Reads the recorded state only: no evaluation, no builds, no lock (state.json is
// replaced atomically, so a reader never sees half of it).
int run_status(const GlobalOptions& global, const StatusArgs& args)
{
  const Root root(global.root);
  auto state = State::load(StatePaths(root).state_file);
  if (!state) {
    fmt::print(stderr, "kmodsync: {}\n", state.error());
    return k_exit_usage;
  }
  if (args.json) {
    fmt::print("{}", state_json(*state, root));
    return k_exit_ok;
  }
  std::size_t width = 6;
  std::size_t kernel_width = 6;
  for (const auto& record : state->cells) {
    width = std::max(width, record.module.size() + record.version.size() + 1);
    kernel_width = std::max(kernel_width, record.kernel.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:<9}  {}\n", "MODULE", width, "KERNEL", kernel_width, "STATE", "DETAIL");
  for (const auto& record : state->cells) {
    std::string detail = record.reason;
    if (record.outcome == Outcome::failed && !record.log.empty()) {
      detail += " (log: " + root(record.log).string() + ")";
    }
    fmt::print("{:<{}}  {:<{}}  {:<9}  {}\n", record.module + "/" + record.version, width, record.kernel,
               kernel_width, to_string(record.outcome), detail);
  }
  return k_exit_ok;
}

} // namespace

void add_status_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto args = std::make_shared<StatusArgs>();
  auto* command = app.add_subcommand("status", "Print the recorded matrix: module/version x kernel -> state");
  command->add_flag("--json", args->json, "Print as JSON");
  command->callback([&action, &global, args] { action = [&global, args] { return run_status(global, *args); }; });
}

} // namespace kmodsync::cli
