// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// What pacman hands its hooks: the matched target paths, one a line, no leading slash.

#include "kmodsync/trigger.hpp"

#include <istream>

namespace kmodsync::pacman {

// Notes every target path read from `in` (to its end) as `change`. Lines that name no
// kernel or module source are ignored.
TransactionChanges read_targets(std::istream& in, PathChange change);

} // namespace kmodsync::pacman
