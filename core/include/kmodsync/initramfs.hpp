// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kmodsync {

// The system's own initramfs generator, found in the root (never assumed): Debian's
// update-initramfs, dracut, or Arch's mkinitcpio. Commands for a root other than "/" run
// chrooted into it, as the package manager's own scripts would.
class InitramfsTool
{
public:
  // --- Interface ---
  static std::optional<InitramfsTool> detect(const Root& root);

  const std::string& name() const { return m_name; }
  // The kernel's initramfs image if it has one (inside the root).
  std::optional<std::filesystem::path> image(const Kernel& kernel) const;
  // Whether the image holds any module named in `modules` (kernel names, '-' as '_').
  Expected<bool> contains_any(const std::filesystem::path& image, const std::set<std::string>& modules) const;
  // Regenerates the kernel's initramfs (update-initramfs -u -k KV, dracut -f --kver KV,
  // mkinitcpio -p PKGBASE).
  Expected<void> regenerate(const Kernel& kernel) const;

private:
  InitramfsTool(Root root, std::string name) : m_root(std::move(root)), m_name(std::move(name)) {}
  Expected<std::string> run_in_root(std::vector<std::string> argv, std::chrono::milliseconds timeout) const;
  Root m_root;
  std::string m_name;
};

// Regenerates, once per kernel, the initramfs of each kernel in state.initramfs_pending that
// has one, when a module asked for it (REMAKE_INITRD) or a changed module is in it; then
// clears those entries (all of them when `enabled` is false). Failures go to `errors` and
// stay pending. Runs after depmod, which the generators rely on. Returns true if the state
// changed.
bool settle_initramfs(const Root& root, State& state, const std::vector<Kernel>& kernels, bool enabled,
                      std::vector<std::string>& errors);

// The module names (kernel form: '_' for '-') of installed files, for initramfs_pending.
std::set<std::string> module_names(const std::vector<InstalledFile>& files);

} // namespace kmodsync
