// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace kmodsync::cli {

namespace {

int run_add(const GlobalOptions& global, const std::string& directory, bool json)
{
  const Root root(global.root);
  auto added = add_module_source(root, directory, std::chrono::seconds(10));
  if (json) {
    return added ? print_outcome_json(k_exit_ok, "", {},
                                      {{"directory", directory}, {"module", added->name}, {"version", added->version}})
                 : print_outcome_json(k_exit_usage, added.error(), {}, {{"directory", directory}});
  }
  if (!added) {
    fmt::print(stderr, "kmodsync: {}\n", added.error());
    return k_exit_usage;
  }
  fmt::print("kmodsync: added {}/{}; `kmodsync sync` builds it\n", added->name, added->version);
  return k_exit_ok;
}

} // namespace

void add_add_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto directory = std::make_shared<std::string>();
  auto* command = app.add_subcommand(
    "add", "Register a module source directory (path as seen inside the root), or undo `remove`");
  command->add_option("directory", *directory, "e.g. /usr/src/NAME-VERSION")->required();
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the outcome as JSON");
  command->callback([&action, &global, directory, json] {
    action = [&global, directory, json] { return run_add(global, *directory, *json); };
  });
}

} // namespace kmodsync::cli
