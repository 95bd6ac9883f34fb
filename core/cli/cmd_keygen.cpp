// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"

#include "kmodsync/engine.hpp"

#include <fmt/format.h>

namespace kmodsync::cli {

namespace {

int run_keygen(const GlobalOptions& global)
{
  auto certificate = make_signing_key(Root(global.root));
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
  command->callback([&action, &global] { action = [&global] { return run_keygen(global); }; });
}

} // namespace kmodsync::cli
