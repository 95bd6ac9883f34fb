// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace kmodsync::cli {

namespace {

int run_kernel_remove(const GlobalOptions& global, const std::string& kernel, bool json)
{
  auto warnings = remove_kernel(Root(global.root), kernel);
  if (json) {
    return warnings ? print_outcome_json(k_exit_ok, "", *warnings, {{"kernel", kernel}})
                    : print_outcome_json(k_exit_usage, warnings.error(), {}, {{"kernel", kernel}});
  }
  if (!warnings) {
    fmt::print(stderr, "kmodsync: {}\n", warnings.error());
    return k_exit_usage;
  }
  for (const auto& warning : *warnings) {
    fmt::print(stderr, "kmodsync: warning: {}\n", warning);
  }
  fmt::print("kmodsync: dropped every module of kernel {}\n", kernel);
  return k_exit_ok;
}

} // namespace

void add_kernel_remove_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto kernel = std::make_shared<std::string>();
  auto* command = app.add_subcommand("kernel-remove", "Uninstall every module kmodsync installed for kernel KV");
  command->add_option("kernel", *kernel, "the kernel release (KV)")->required();
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the outcome as JSON");
  command->callback([&action, &global, kernel, json] {
    action = [&global, kernel, json] { return run_kernel_remove(global, *kernel, *json); };
  });
}

} // namespace kmodsync::cli
