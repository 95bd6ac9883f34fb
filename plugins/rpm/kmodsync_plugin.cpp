// SPDX-License-Identifier: GPL-2.0-or-later
// kmodsync.so: a librpm transaction plugin. In tsm_pre it notes which elements of the
// transaction touch kernels, kernel headers or module sources (their file lists are gone
// by tsm_post); in tsm_post it keeps the elements that succeeded and runs one kmodsync
// pass for what they changed. Nothing here may fail the transaction or throw into rpm.
#include "rpm_plugin_api.h"

#include "kmodsync/process.hpp"
#include "kmodsync/trigger.hpp"

#include <rpm/rpmfiles.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmte.h>
#include <rpm/rpmts.h>

#include <fmt/format.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

// One element that touches something kmodsync cares about.
struct Noted
{
  rpmte element = nullptr;
  kmodsync::TransactionChanges changes;
};

struct PluginState
{
  std::string kmodsync = KMODSYNC_DEFAULT_BINARY; // the plugin option overrides it
  std::vector<Noted> noted;
};

PluginState* state_of(rpmPlugin plugin)
{
  return static_cast<PluginState*>(rpmPluginGetData(plugin));
}

rpmRC init(rpmPlugin plugin, rpmts)
{
  try {
    auto* state = new PluginState;
    if (const char* options = rpmPluginOpts(plugin); options && *options) {
      state->kmodsync = options;
    }
    rpmPluginSetData(plugin, state);
  } catch (const std::exception&) {
    rpmPluginSetData(plugin, nullptr);
  }
  return RPMRC_OK;
}

void cleanup(rpmPlugin plugin)
{
  delete state_of(plugin);
  rpmPluginSetData(plugin, nullptr);
}

rpmRC tsm_pre(rpmPlugin plugin, rpmts ts)
{
  PluginState* state = state_of(plugin);
  if (!state) {
    return RPMRC_OK;
  }
  try {
    state->noted.clear();
    // dnf's dry run before the real transaction, and --justdb, which changes no file.
    if (rpmtsFlags(ts) & (RPMTRANS_FLAG_TEST | RPMTRANS_FLAG_JUSTDB)) {
      return RPMRC_OK;
    }
    rpmtsi iterator = rpmtsiInit(ts);
    while (rpmte element = rpmtsiNext(iterator, TR_ADDED | TR_REMOVED)) {
      const auto change = rpmteType(element) == TR_ADDED ? kmodsync::PathChange::added : kmodsync::PathChange::removed;
      Noted noted{element, {}};
      rpmfiles files = rpmteFiles(element);
      const rpm_count_t count = files ? rpmfilesFC(files) : 0;
      for (rpm_count_t i = 0; i < count; ++i) {
        char* name = rpmfilesFN(files, static_cast<int>(i));
        if (name) {
          kmodsync::note_path(noted.changes, name, change);
          std::free(name);
        }
      }
      rpmfilesFree(files);
      if (!noted.changes.empty()) {
        state->noted.push_back(std::move(noted));
      }
    }
    rpmtsiFree(iterator);
  } catch (const std::exception& e) {
    rpmlog(RPMLOG_WARNING, "kmodsync: %s\n", e.what());
    state->noted.clear();
  }
  return RPMRC_OK;
}

rpmRC tsm_post(rpmPlugin plugin, rpmts ts, int)
{
  PluginState* state = state_of(plugin);
  if (!state || state->noted.empty()) {
    return RPMRC_OK;
  }
  try {
    kmodsync::TransactionChanges changes;
    for (const Noted& noted : state->noted) {
      if (rpmteFailed(noted.element)) {
        continue;
      }
      changes.kernels_added.insert(noted.changes.kernels_added.begin(), noted.changes.kernels_added.end());
      changes.kernels_removed.insert(noted.changes.kernels_removed.begin(), noted.changes.kernels_removed.end());
      changes.modules.insert(noted.changes.modules.begin(), noted.changes.modules.end());
    }
    state->noted.clear();
    const char* root = rpmtsRootDir(ts);
    kmodsync::forget_absent_kernels(changes, kmodsync::Root(root && *root ? root : "/"));
    const auto arguments = kmodsync::sync_arguments(changes);
    if (!arguments) {
      return RPMRC_OK;
    }
    kmodsync::Command command;
    command.argv = {state->kmodsync, "--root", root && *root ? root : "/", "sync"};
    command.argv.insert(command.argv.end(), arguments->begin(), arguments->end());
    command.env = kmodsync::clean_environment();
    command.env.push_back("KMODSYNC_PROGRESS=lines");
    std::fflush(stdout);
    command.output_fd = STDOUT_FILENO; // one line per cell, in rpm's own output
    fmt::print("kmodsync: bringing out-of-tree modules in line with this transaction\n");
    std::fflush(stdout);
    auto completion = kmodsync::run(command);
    if (!completion) {
      rpmlog(RPMLOG_WARNING, "kmodsync: %s; run `kmodsync sync` by hand\n", completion.error().c_str());
    } else if (!completion->succeeded()) {
      rpmlog(RPMLOG_WARNING, "kmodsync: some modules did not build or install (%s, see above); "
                             "the transaction itself succeeded\n",
             completion->describe(std::chrono::milliseconds(0)).c_str());
    }
  } catch (const std::exception& e) {
    rpmlog(RPMLOG_WARNING, "kmodsync: %s\n", e.what());
  }
  return RPMRC_OK;
}

} // namespace

// rpm looks the table up by name: <plugin name>_hooks.
extern "C" {
__attribute__((visibility("default"))) struct rpmPluginHooks_s kmodsync_hooks = {
  init, cleanup, tsm_pre, tsm_post, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
};
}
