// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>

#include <memory>

namespace kmodsync::cli {

namespace {

int run_add(const GlobalOptions& global, const std::string& directory)
{
  const Root root(global.root);
  auto added = add_module_source(root, directory, std::chrono::seconds(10));
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
  command->callback([&action, &global, directory] { action = [&global, directory] { return run_add(global, *directory); }; });
}

} // namespace kmodsync::cli
