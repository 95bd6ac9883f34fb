// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "dkms/dkms_command.hpp"

#include "kmodsync/log.hpp"

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <filesystem>

namespace kmodsync::cli {

namespace {

struct CommandEntry
{
  void (*add)(CLI::App&, const GlobalOptions&, Action&);
};

// One table of subcommands; each lives in its own cmd_*.cpp.
constexpr CommandEntry k_commands[] = {
  {add_sync_command},
  {add_status_command},
  {add_remove_command},
  {add_add_command},
  {add_kernel_remove_command},
  {add_keygen_command},
  {add_uninstall_command},
  {add_cache_command},
  {add_log_command},
  {add_doctor_command},
};

} // namespace

int main(int argc, char** argv)
{
  // A closed pipe (`kmodsync status | head`) must not kill us mid-write of state.
  std::signal(SIGPIPE, SIG_IGN);
  // Installed as `dkms`, or `kmodsync dkms ...`: DKMS's command line, parsed its own way.
  if (argc > 0 && std::filesystem::path(argv[0]).filename() == "dkms") {
    return dkms::main(std::vector<std::string>(argv + 1, argv + argc));
  }
  if (argc > 1 && std::string_view(argv[1]) == "dkms") {
    return dkms::main(std::vector<std::string>(argv + 2, argv + argc));
  }
  CLI::App app{"kmodsync: builds out-of-tree kernel modules (dkms.conf sources) for every installed kernel"};
  app.set_version_flag("--version", std::string("kmodsync ") + KMODSYNC_VERSION);
  app.require_subcommand(1);
  GlobalOptions global;
  // Hooks run by package managers pass the root down this way (kernel-install has no
  // --root of its own).
  if (const char* root = std::getenv("KMODSYNC_ROOT"); root && *root) {
    global.root = root;
  }
  auto* root_option =
    app.add_option("--root", global.root, "Work on the system under this directory (default /, or $KMODSYNC_ROOT)");
  app.add_flag("-v,--verbose", global.verbose, "Write a debug log to stderr");
  Action action;
  for (const auto& command : k_commands) {
    command.add(app, global, action);
  }
  // Listed for --help; `kmodsync dkms ...` is dispatched above, before this parser.
  auto* dkms_command =
    app.add_subcommand("dkms", "DKMS 3's command line (add, build, install, status, ...); also when run as `dkms`");
  dkms_command->prefix_command();
  dkms_command->callback([&action, &global, dkms_command, root_option] {
    action = [&global, dkms_command, root_option] {
      auto args = dkms_command->remaining();
      // Only a root given here: the default would clash with --dkmstree ROOT/var/lib/dkms.
      // dkms::main reads KMODSYNC_ROOT itself.
      if (root_option->count() > 0) {
        args.insert(args.begin(), {"--root", global.root});
      }
      return dkms::main(args);
    };
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? k_exit_ok : k_exit_usage;
  }
  if (global.verbose) {
    log::enable();
  }
  std::error_code ec;
  const auto root = std::filesystem::absolute(global.root, ec);
  if (ec || !std::filesystem::is_directory(root, ec)) {
    fmt::print(stderr, "kmodsync: --root {}: not a directory\n", global.root);
    return k_exit_usage;
  }
  global.root = root.string();
  try {
    return action ? action() : k_exit_usage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kmodsync: internal error: {}\n", e.what());
    return k_exit_usage;
  }
}

} // namespace kmodsync::cli
