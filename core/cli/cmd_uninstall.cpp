// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"

#include "kmodsync/engine.hpp"
#include "kmodsync/state.hpp"

#include <fmt/format.h>

#include <memory>
#include <set>

namespace kmodsync::cli {

namespace {

// Unlike `remove`, the module stays registered: a later pass builds it again if its source
// is still there. What a package manager asks before it deletes a module source.
int run_uninstall(const GlobalOptions& global, const std::string& target)
{
  const auto slash = target.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == target.size()) {
    fmt::print(stderr, "kmodsync uninstall: expected NAME/VERSION, got '{}'\n", target);
    return k_exit_usage;
  }
  const std::string name = target.substr(0, slash);
  const std::string version = target.substr(slash + 1);
  const Root root(global.root);
  auto state = State::load(StatePaths(root).state_file);
  if (!state) {
    fmt::print(stderr, "kmodsync: {}\n", state.error());
    return k_exit_usage;
  }
  std::set<std::string> kernels;
  for (const auto& record : state->cells) {
    if (record.module == name && record.version == version) {
      kernels.insert(record.kernel);
    }
  }
  auto result = uninstall_module(root, name, version, {kernels.begin(), kernels.end()}, false);
  if (!result) {
    fmt::print(stderr, "kmodsync: {}\n", result.error());
    return k_exit_usage;
  }
  for (const auto& warning : result->warnings) {
    fmt::print(stderr, "kmodsync: warning: {}\n", warning);
  }
  for (const auto& kernel : result->uninstalled) {
    fmt::print("  removed     {} for {}\n", target, kernel);
  }
  return k_exit_ok;
}

} // namespace

void add_uninstall_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto target = std::make_shared<std::string>();
  auto* command = app.add_subcommand(
    "uninstall", "Take NAME/VERSION off every kernel (it stays registered: a later pass rebuilds it if its source is there)");
  command->add_option("module", *target, "NAME/VERSION")->required();
  command->callback([&action, &global, target] { action = [&global, target] { return run_uninstall(global, *target); }; });
}

} // namespace kmodsync::cli
