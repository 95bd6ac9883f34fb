// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace kmodsync::cli {

// Exit codes of the kmodsync command (documented in the README).
constexpr int k_exit_ok = 0;
constexpr int k_exit_cell_failed = 1;
constexpr int k_exit_usage = 2;

struct GlobalOptions
{
  std::string root = "/";
  bool verbose = false;
};

// Each command adds its subcommand to `app` and sets `action` to run it when chosen.
using Action = std::function<int()>;
void add_sync_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_status_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_remove_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_add_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_kernel_remove_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_keygen_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_uninstall_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_cache_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_log_command(CLI::App& app, const GlobalOptions& global, Action& action);
void add_doctor_command(CLI::App& app, const GlobalOptions& global, Action& action);

// Parses argv and runs the chosen command; never throws.
int main(int argc, char** argv);

} // namespace kmodsync::cli
