// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/initramfs.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"

#include <unistd.h>

#include <algorithm>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

bool executable_in(const Root& root, std::initializer_list<const char*> paths)
{
  return std::any_of(paths.begin(), paths.end(), [&](const char* path) { return access(root(path).c_str(), X_OK) == 0; });
}

std::string arch_pkgbase(const Kernel& kernel)
{
  auto text = util::read_file(kernel.modules_dir / "pkgbase");
  return text ? std::string(util::trim(*text)) : std::string();
}

} // namespace

std::optional<InitramfsTool> InitramfsTool::detect(const Root& root)
{
  if (executable_in(root, {"/usr/sbin/update-initramfs", "/sbin/update-initramfs"})) {
    return InitramfsTool(root, "update-initramfs");
  }
  if (executable_in(root, {"/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"})) {
    return InitramfsTool(root, "dracut");
  }
  if (executable_in(root, {"/usr/bin/mkinitcpio"})) {
    return InitramfsTool(root, "mkinitcpio");
  }
  return std::nullopt;
}

std::optional<fs::path> InitramfsTool::image(const Kernel& kernel) const
{
  std::vector<std::string> candidates;
  if (m_name == "mkinitcpio") {
    const std::string pkgbase = arch_pkgbase(kernel);
    if (!pkgbase.empty()) {
      candidates.push_back("/boot/initramfs-" + pkgbase + ".img");
    }
  } else {
    candidates = {"/boot/initrd.img-" + kernel.release, "/boot/initramfs-" + kernel.release + ".img"};
  }
  for (const auto& candidate : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(m_root(candidate), ec)) {
      return m_root(candidate);
    }
  }
  return std::nullopt;
}

Expected<std::string> InitramfsTool::run_in_root(std::vector<std::string> argv, std::chrono::milliseconds timeout) const
{
  Command command;
  if (!m_root.is_host()) {
    argv.insert(argv.begin(), {"chroot", m_root.dir().string()});
  }
  command.argv = std::move(argv);
  command.env = clean_environment();
  command.timeout = timeout;
  command.capture_limit = 16 << 20;
  auto completion = run(command);
  if (!completion) {
    return std::unexpected(completion.error());
  }
  if (!completion->succeeded()) {
    return error("{} failed ({}): {}", fmt::join(command.argv, " "), completion->describe(timeout),
                 util::trim(completion->output));
  }
  return completion->output;
}

Expected<bool> InitramfsTool::contains_any(const fs::path& image, const std::set<std::string>& modules) const
{
  const std::string lister = m_name == "update-initramfs" ? "lsinitramfs" : m_name == "dracut" ? "lsinitrd" : "lsinitcpio";
  auto listing = run_in_root({lister, m_root.managed(image)}, std::chrono::minutes(2));
  if (!listing) {
    return std::unexpected(listing.error());
  }
  for (const auto& line : util::split_lines(*listing)) {
    // lsinitrd prints `ls -l`-like lines: the path is the last word.
    const auto words = util::split_words(line);
    if (!words.empty() && modules.contains(module_name_of_file(fs::path(words.back()).filename().string()))) {
      return true;
    }
  }
  return false;
}

Expected<void> InitramfsTool::regenerate(const Kernel& kernel) const
{
  std::vector<std::string> argv;
  if (m_name == "update-initramfs") {
    argv = {"update-initramfs", "-u", "-k", kernel.release};
  } else if (m_name == "dracut") {
    argv = {"dracut", "-f", "--kver", kernel.release};
  } else {
    argv = {"mkinitcpio", "-p", arch_pkgbase(kernel)};
  }
  LOG("regenerating the initramfs of {} with {}", kernel.release, m_name);
  auto done = run_in_root(argv, std::chrono::minutes(10));
  if (!done) {
    return error("initramfs of {}: {}", kernel.release, done.error());
  }
  return {};
}

std::set<std::string> module_names(const std::vector<InstalledFile>& files)
{
  std::set<std::string> names;
  for (const auto& file : files) {
    if (auto name = module_name_of_file(fs::path(file.path).filename().string()); !name.empty()) {
      names.insert(name);
    }
  }
  return names;
}

bool settle_initramfs(const Root& root, State& state, const std::vector<Kernel>& kernels, bool enabled,
                      std::vector<std::string>& errors)
{
  if (state.initramfs_pending.empty()) {
    return false;
  }
  const auto tool = enabled ? InitramfsTool::detect(root) : std::nullopt;
  for (auto it = state.initramfs_pending.begin(); it != state.initramfs_pending.end();) {
    const auto kernel = std::find_if(kernels.begin(), kernels.end(), [&](const Kernel& k) { return k.release == it->first; });
    const auto image = tool && kernel != kernels.end() ? tool->image(*kernel) : std::nullopt;
    if (image) {
      bool needed = it->second.contains("*");
      if (!needed) {
        auto contains = tool->contains_any(*image, it->second);
        if (!contains) {
          errors.push_back(fmt::format("initramfs of {}: {}", it->first, contains.error()));
          ++it;
          continue;
        }
        needed = *contains;
      }
      if (needed) {
        if (auto done = tool->regenerate(*kernel); !done) {
          errors.push_back(done.error());
          ++it;
          continue;
        }
      }
    }
    it = state.initramfs_pending.erase(it);
  }
  return true;
}

} // namespace kmodsync
