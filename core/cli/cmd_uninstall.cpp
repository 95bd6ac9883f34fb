// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/engine.hpp"
#include "kmodsync/state.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>

namespace kmodsync::cli {

namespace {

// Unlike `remove`, the module stays registered: a later pass builds it again if its source
// is still there. What a package manager asks before it deletes a module source.
int run_uninstall(const GlobalOptions& global, const std::string& target, bool json)
{
  const nlohmann::json fields = {{"module", target}};
  auto fail = [&](const std::string& message) {
    if (json) {
      return print_outcome_json(k_exit_usage, message, {}, fields);
    }
    fmt::print(stderr, "kmodsync uninstall: {}\n", message);
    return k_exit_usage;
  };
  const auto slash = target.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == target.size()) {
    return fail(fmt::format("expected NAME/VERSION, got '{}'", target));
  }
  const std::string name = target.substr(0, slash);
  const std::string version = target.substr(slash + 1);
  const Root root(global.root);
  auto state = State::load(StatePaths(root).state_file);
  if (!state) {
    return fail(state.error());
  }
  std::set<std::string> kernels;
  for (const auto& record : state->cells) {
    if (record.module == name && record.version == version) {
      kernels.insert(record.kernel);
    }
  }
  auto result = uninstall_module(root, name, version, {kernels.begin(), kernels.end()}, false);
  if (!result) {
    return fail(result.error());
  }
  if (json) {
    return print_outcome_json(k_exit_ok, "", result->warnings, {{"module", target}, {"kernels", result->uninstalled}});
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
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the outcome as JSON");
  command->callback([&action, &global, target, json] {
    action = [&global, target, json] { return run_uninstall(global, *target, *json); };
  });
}

} // namespace kmodsync::cli
