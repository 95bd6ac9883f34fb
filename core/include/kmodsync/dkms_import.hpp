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

} // namespace kmodsync
