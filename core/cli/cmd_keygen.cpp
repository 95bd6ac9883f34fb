// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kmodsync::cli {

namespace {

int run_keygen(const GlobalOptions& global, bool json)
{
  auto certificate = make_signing_key(Root(global.root));
  if (json) {
    return certificate ? print_outcome_json(k_exit_ok, "", {}, {{"certificate", *certificate}})
                       : print_outcome_json(k_exit_usage, certificate.error(), {}, nlohmann::json::object());
  }
  if (!certificate) {
    fmt::print(stderr, "kmodsync: {}\n", certificate.error());
    return k_exit_usage;
  }
  fmt::print("kmodsync: created a module signing key; modules are signed from the next pass on.\n"
             "For Secure Boot, enroll the certificate: mokutil --import {}\n",
             *certificate);
  return k_exit_ok;
}

} // namespace

void add_keygen_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* command = app.add_subcommand("keygen", "Create the module signing key and certificate if none exist");
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the outcome as JSON");
  command->callback([&action, &global, json] { action = [&global, json] { return run_keygen(global, *json); }; });
}

} // namespace kmodsync::cli
