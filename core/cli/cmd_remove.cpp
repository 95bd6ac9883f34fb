// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>

#include <memory>

namespace kmodsync::cli {

namespace {

int run_remove(const GlobalOptions& global, const std::string& target)
{
  const auto slash = target.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == target.size()) {
    fmt::print(stderr, "kmodsync remove: expected NAME/VERSION, got '{}'\n", target);
    return k_exit_usage;
  }
  const Root root(global.root);
  auto warnings = remove_module(root, target.substr(0, slash), target.substr(slash + 1));
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
  auto* command = app.add_subcommand("remove", "Uninstall NAME/VERSION from every kernel and stop building it");
  command->add_option("module", *target, "NAME/VERSION")->required();
  command->callback([&action, &global, target] { action = [&global, target] { return run_remove(global, *target); }; });
}

} // namespace kmodsync::cli
