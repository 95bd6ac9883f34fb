// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// depmod's indexes (modules.dep, .alias, .symbols and their .bin) are a function of the
// bytes depmod reads: the kernel's module files, modules.order, modules.builtin(.modinfo),
// the depmod.d configuration and depmod itself. Running depmod means decompressing every
// module of the kernel (6 s for 4200 xz modules here), so a tree seen before (a kernel
// reinstalled with its modules from the build cache, a module removed and added back)
// gets its indexes back from a small cache instead, checked by hash.

#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace kmodsync {

struct DepmodTree
{
  std::string key;        // content: what depmod reads, hashed
  std::string stat_print; // the same files' stat: tells whether the tree moved meanwhile
};

// Hashes everything depmod reads for the kernel whose modules are in `modules_dir`.
// `depmod` is the binary that will run (its bytes are part of the key).
Expected<DepmodTree> fingerprint_depmod_tree(const Root& root, const std::filesystem::path& modules_dir,
                                             const std::filesystem::path& depmod);
// Only the stat part, cheap: compared with the fingerprint's after depmod ran.
std::string depmod_tree_stat_print(const std::filesystem::path& modules_dir);

class DepmodCache
{
public:
  // ROOT/var/lib/kmodsync/depmod-cache
  explicit DepmodCache(const Root& root);

  // Writes the indexes stored under `tree` into `modules_dir`; false when there are none,
  // or when a stored file does not match its recorded hash (the entry is then dropped).
  bool restore(const std::string& kernel, const DepmodTree& tree, const std::filesystem::path& modules_dir) const;
  // Keeps the indexes depmod just wrote into `modules_dir` under `tree`; keeps a few
  // trees per kernel, and forgets kernels not seen for a month.
  Expected<void> store(const std::string& kernel, const DepmodTree& tree,
                       const std::filesystem::path& modules_dir) const;

private:
  std::filesystem::path m_dir;
};

} // namespace kmodsync
