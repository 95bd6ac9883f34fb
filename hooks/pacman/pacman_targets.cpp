// SPDX-License-Identifier: GPL-2.0-or-later
#include "pacman_targets.hpp"

#include <string>

namespace kmodsync::pacman {

TransactionChanges read_targets(std::istream& in, PathChange change)
{
  TransactionChanges changes;
  std::string path;
  while (std::getline(in, path)) {
    note_path(changes, path, change);
  }
  return changes;
}

} // namespace kmodsync::pacman
