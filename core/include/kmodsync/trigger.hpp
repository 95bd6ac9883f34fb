// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// What a package transaction changed, in a pass's terms. Shared by every trigger (the rpm
// plugin, apt and pacman hooks): each only feeds in the paths its transaction added or
// removed, and runs the one pass this asks for.

#include "kmodsync/root.hpp"

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kmodsync {

struct TransactionChanges
{
  std::set<std::string> kernels_added;   // KV: a kernel image, module tree or headers arrived
  std::set<std::string> kernels_removed; // KV: a kernel's files went away
  std::set<std::string> modules;         // NAME of each module source added or removed
  std::set<std::string> module_dirs;     // their directories' names under /usr/src ("NAME-VERSION")

  bool empty() const { return kernels_added.empty() && kernels_removed.empty() && modules.empty(); }
};

enum class PathChange { added, removed };

// Notes one path of the managed system ("/usr/lib/modules/KV/vmlinuz",
// "/usr/src/kernels/KV/Makefile", "/usr/src/NAME-VERSION/dkms.conf", with or without the
// leading slash, /lib as well as /usr/lib). Returns true when it mattered.
bool note_path(TransactionChanges& changes, std::string_view path, PathChange change);

// Drops added kernels the root does not have (no ROOT/usr/lib/modules/KV or
// ROOT/lib/modules/KV): a directory name that only looked like a kernel, or one whose
// package left no module tree, must not make the whole pass refuse to run.
void forget_absent_kernels(TransactionChanges& changes, const Root& root);

// The kmodsync a hook program runs: $KMODSYNC, else the one installed beside the hook
// (hooks live in PREFIX/lib/kmodsync, kmodsync in PREFIX/bin), else /usr/bin/kmodsync.
std::string hook_kmodsync_binary();

// "lime-forensics-1.9.1-5" -> {"lime-forensics", "1.9.1-5"}, as DKMS names a source's
// directory: split before the first "-<digit>".
std::pair<std::string, std::string> split_source_dir(const std::string& dir_name);

// The arguments after `kmodsync sync` for one pass covering the changes, or nullopt when
// nothing relevant changed (no process need start). A removed kernel asks for a full pass
// (only a full pass prunes kernels that are gone); else the pass is narrowed to the added
// kernels, or to the touched modules (a removed source is pruned, an upgraded one replaced),
// or covers everything when both kinds changed (a pass's scopes intersect).
std::optional<std::vector<std::string>> sync_arguments(const TransactionChanges& changes);

} // namespace kmodsync
