// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

namespace kmodsync {

// Takes over what a DKMS tree (ROOT/var/lib/dkms) records, once per root: every
// NAME/VERSION with a `source` becomes added (a source outside /usr/src is registered), and
// every `kernel-KV-ARCH` link (DKMS's "installed" mark) asks the next pass that plans that
// cell to adopt DKMS's installed files instead of rebuilding (state.adopt). The DKMS tree
// itself is left as it is. Returns true if the state changed.
bool import_dkms_tree(const Root& root, State& state);

// Keeps DKMS's "added" mark, ROOT/var/lib/dkms/NAME/VERSION/source -> SOURCE, in step with
// kmodsync's: scripts written for DKMS test for it (`[ -L /var/lib/dkms/N/V/source ]`), and
// DKMS itself, if it comes back, finds what is added. Best effort: a failure changes
// nothing else.
void mark_added_in_dkms_tree(const Root& root, const std::string& name, const std::string& version,
                             const std::string& source_dir);
// Removes the mark (only a `source` symlink) and the directories it leaves empty.
void unmark_added_in_dkms_tree(const Root& root, const std::string& name, const std::string& version);

} // namespace kmodsync
