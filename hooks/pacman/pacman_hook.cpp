// SPDX-License-Identifier: GPL-2.0-or-later
// kmodsync-pacman-hook: pacman's side of kmodsync, run by the .hook files chrooted into
// the root with the matched paths (no leading slash) on stdin.
//   install  PostTransaction of Install/Upgrade: one pass for the kernels and module
//            sources that arrived (an upgraded source replaces its old version).
//   remove   PreTransaction of Remove, while the files are still there: kmodsync's
//            modules leave each kernel being removed (so pacman finds its directories
//            empty) and each module source being removed leaves every kernel.
// It always exits 0: nothing kmodsync does may make pacman fail.
#include "pacman_targets.hpp"

#include "kmodsync/process.hpp"
#include "kmodsync/trigger.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kmodsync;

namespace {

void run_kmodsync(std::vector<std::string> arguments)
{
  Command command;
  command.argv = {hook_kmodsync_binary()};
  command.argv.insert(command.argv.end(), arguments.begin(), arguments.end());
  command.env = clean_environment();
  command.env.push_back("KMODSYNC_PROGRESS=lines"); // pacman's terminal and pacman.log
  if (const char* root = std::getenv("KMODSYNC_ROOT"); root && *root) {
    command.env.push_back(std::string("KMODSYNC_ROOT=") + root);
  }
  command.output_fd = STDOUT_FILENO;
  std::fflush(stdout);
  auto completion = run(command);
  if (!completion) {
    fmt::print(stderr, "kmodsync: {}; run `kmodsync sync` by hand\n", completion.error());
  } else if (!completion->succeeded()) {
    fmt::print(stderr, "kmodsync: `kmodsync {}` did not fully succeed (see above); pacman's transaction goes on\n",
               arguments.front());
  }
}

void install()
{
  TransactionChanges changes = pacman::read_targets(std::cin, PathChange::added);
  const char* root = std::getenv("KMODSYNC_ROOT");
  forget_absent_kernels(changes, Root(root && *root ? root : "/"));
  if (auto arguments = sync_arguments(changes)) {
    arguments->insert(arguments->begin(), "sync");
    run_kmodsync(*arguments);
  }
}

void remove()
{
  const TransactionChanges changes = pacman::read_targets(std::cin, PathChange::removed);
  for (const auto& kernel : changes.kernels_removed) {
    run_kmodsync({"kernel-remove", kernel});
  }
  for (const auto& dir : changes.module_dirs) {
    const auto [name, version] = split_source_dir(dir);
    if (!version.empty()) {
      run_kmodsync({"uninstall", name + "/" + version});
    }
  }
}

} // namespace

int main(int argc, char** argv)
{
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "install") {
      install();
    } else if (mode == "remove") {
      remove();
    } else {
      fmt::print(stderr, "usage: kmodsync-pacman-hook install|remove  (paths on stdin)\n");
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "kmodsync: pacman hook: {}\n", e.what());
  }
  return 0;
}
