// SPDX-License-Identifier: GPL-2.0-or-later
// kmodsync-apt-hook: apt's side of kmodsync.
//   pre-install-pkgs  DPkg::Pre-Install-Pkgs, protocol 3 on stdin: notes the packages the
//                     transaction changes, with the relevant files of those that may lose
//                     them (their lists are gone once dpkg has removed them).
//   post-invoke       DPkg::Post-Invoke, after dpkg: maps the noted packages to kernels and
//                     module sources with dpkg's file lists and runs one kmodsync pass.
// It always exits 0: nothing kmodsync does may make apt or dpkg fail.
#include "apt_transaction.hpp"

#include "kmodsync/process.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"
#include "kmodsync/trigger.hpp"

#include <apt-pkg/configuration.h>
#include <apt-pkg/error.h>
#include <apt-pkg/init.h>
#include <fmt/format.h>

#include <exception>
#include <filesystem>
#include <iostream>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace kmodsync;

namespace {

struct Settings
{
  std::string root = "/";
  fs::path admindir = "/var/lib/dpkg";
};

// apt's own configuration (APT_CONFIG, apt.conf.d), with what the hook was sent on top.
Settings read_settings(const std::map<std::string, std::string>& sent)
{
  pkgInitConfig(*_config);
  for (const auto& [key, value] : sent) {
    _config->Set(key, value);
  }
  Settings settings;
  const std::string chroot = _config->Find("DPkg::Chroot-Directory", "");
  settings.root = !chroot.empty() && chroot != "/" ? chroot : _config->FindDir("Dir", "/");
  settings.admindir = fs::path(_config->FindFile("Dir::State::status", "/var/lib/dpkg/status")).parent_path();
  _error->Discard();
  return settings;
}

fs::path pending_file(const Settings& settings)
{
  return StatePaths(Root(settings.root)).dir / "apt-transaction.json";
}

bool relevant(const std::string& path)
{
  TransactionChanges scratch;
  return note_path(scratch, path, PathChange::added);
}

int pre_install_pkgs()
{
  auto input = apt::parse_hook_input(std::cin);
  if (!input) {
    fmt::print(stderr, "kmodsync: {}\n", input.error());
    return 0;
  }
  Settings settings = read_settings(input->config);
  auto pending = apt::load_pending(pending_file(settings));
  std::vector<apt::PackageChange> packages = pending ? *pending : std::vector<apt::PackageChange>{};
  for (auto& package : input->packages) {
    if (package.configure_only) {
      continue; // its files are in place already; an unpack of it is noted separately
    }
    for (auto& path : apt::package_files(settings.admindir, package.name, package.arch)) {
      if (relevant(path)) {
        package.old_paths.push_back(std::move(path));
      }
    }
    packages.push_back(std::move(package));
  }
  if (auto saved = apt::save_pending(pending_file(settings), packages); !saved) {
    fmt::print(stderr, "kmodsync: cannot note this transaction: {}; run `kmodsync sync` after it\n", saved.error());
  }
  return 0;
}

int post_invoke(const std::string& kmodsync)
{
  Settings settings = read_settings({});
  const fs::path file = pending_file(settings);
  auto packages = apt::load_pending(file);
  if (!packages) {
    fmt::print(stderr, "kmodsync: {}; run `kmodsync sync`\n", packages.error());
    return 0;
  }
  if (packages->empty()) {
    return 0;
  }
  TransactionChanges changes;
  for (const auto& package : *packages) {
    std::set<std::string> now;
    for (const auto& path : apt::package_files(settings.admindir, package.name, package.arch)) {
      if (note_path(changes, path, PathChange::added)) {
        now.insert(path);
      }
    }
    for (const auto& path : package.old_paths) {
      if (!now.contains(path)) {
        note_path(changes, path, PathChange::removed);
      }
    }
  }
  std::error_code ec;
  fs::remove(file, ec);
  forget_absent_kernels(changes, Root(settings.root));
  const auto arguments = sync_arguments(changes);
  if (!arguments) {
    return 0;
  }
  Command command;
  command.argv = {kmodsync, "--root", settings.root, "sync"};
  command.argv.insert(command.argv.end(), arguments->begin(), arguments->end());
  command.env = clean_environment();
  command.env.push_back("KMODSYNC_PROGRESS=lines"); // apt's terminal and term.log
  command.output_fd = STDOUT_FILENO;
  fmt::print("kmodsync: bringing out-of-tree modules in line with this transaction\n");
  std::fflush(stdout);
  auto completion = run(command);
  if (!completion) {
    fmt::print(stderr, "kmodsync: {}; run `kmodsync sync` by hand\n", completion.error());
  } else if (!completion->succeeded()) {
    fmt::print(stderr, "kmodsync: some modules did not build or install (see above); apt's transaction itself "
                       "succeeded\n");
  }
  return 0;
}

} // namespace

int main(int argc, char** argv)
{
  try {
    std::string kmodsync = hook_kmodsync_binary();
    std::string mode;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--kmodsync" && i + 1 < argc) {
        kmodsync = argv[++i];
      } else {
        mode = arg;
      }
    }
    if (mode == "pre-install-pkgs") {
      return pre_install_pkgs();
    }
    if (mode == "post-invoke") {
      return post_invoke(kmodsync);
    }
    fmt::print(stderr, "usage: kmodsync-apt-hook [--kmodsync PATH] pre-install-pkgs|post-invoke\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "kmodsync: apt hook: {}\n", e.what());
  }
  return 0;
}
