// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace kmodsync::cli {

namespace {

int run_remove(const GlobalOptions& global, const std::string& target, bool json)
{
  const nlohmann::json fields = {{"module", target}};
  const auto slash = target.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == target.size()) {
    const std::string message = fmt::format("expected NAME/VERSION, got '{}'", target);
    if (json) {
      return print_outcome_json(k_exit_usage, message, {}, fields);
    }
    fmt::print(stderr, "kmodsync remove: {}\n", message);
    return k_exit_usage;
  }
  const Root root(global.root);
  auto warnings = remove_module(root, target.substr(0, slash), target.substr(slash + 1));
  if (json) {
    return warnings ? print_outcome_json(k_exit_ok, "", *warnings, fields)
                    : print_outcome_json(k_exit_usage, warnings.error(), {}, fields);
  }
  if (!warnings) {
    fmt::print(stderr, "kmodsync: {}\n", warnings.error());
    return k_exit_usage;
  }
  for (const auto& warning : *warnings) {
    fmt::print(stderr, "kmodsync: warning: {}\n", warning);
  }
  fmt::print("kmodsync: removed {} from every kernel\n", target);
  return k_exit_ok;
}

} // namespace

void add_remove_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto target = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* command = app.add_subcommand("remove", "Uninstall NAME/VERSION from every kernel and stop building it");
  command->add_option("module", *target, "NAME/VERSION")->required();
  command->add_flag("--json", *json, "Print the outcome as JSON");
  command->callback([&action, &global, target, json] {
    action = [&global, target, json] { return run_remove(global, *target, *json); };
  });
}

} // namespace kmodsync::cli
