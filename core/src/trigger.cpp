// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/trigger.hpp"

#include "pass_cell.hpp"

#include <cstdlib>
#include <filesystem>

namespace kmodsync {

namespace {

// The next path component after `prefix`, when `path` starts with it and has one.
std::optional<std::string_view> component_after(std::string_view path, std::string_view prefix)
{
  if (!path.starts_with(prefix)) {
    return std::nullopt;
  }
  path.remove_prefix(prefix.size());
  const auto slash = path.find('/');
  const std::string_view component = path.substr(0, slash);
  // A NUL cannot be in a file name; kept, it would truncate the path the name is looked up
  // as (forget_absent_kernels would find ROOT/usr/lib/modules itself) and the argv of the pass.
  if (component.empty() || component == "." || component == ".." || component.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return component;
}

} // namespace

bool note_path(TransactionChanges& changes, std::string_view path, PathChange change)
{
  while (path.starts_with('/')) {
    path.remove_prefix(1);
  }
  if (path.starts_with("usr/")) {
    path.remove_prefix(4);
  }
  // lib/modules/KV/...: the kernel's module tree, image (vmlinuz) or build link.
  std::optional<std::string_view> kernel = component_after(path, "lib/modules/");
  // src/kernels/KV/...: Fedora's kernel-devel. (Debian's headers packages ship the
  // lib/modules/KV/build link, which names the kernel; their /usr/src/linux-headers-*
  // directories do not: -common ones hold no kernel of that name.)
  if (!kernel) {
    kernel = component_after(path, "src/kernels/");
  }
  if (kernel) {
    // A module kmodsync itself installs is not the kernel changing.
    if (path.find("/updates/dkms/") != std::string_view::npos || path.find("/extra/") != std::string_view::npos) {
      return false;
    }
    auto& set = change == PathChange::added ? changes.kernels_added : changes.kernels_removed;
    set.emplace(*kernel);
    return true;
  }
  if (auto dir = component_after(path, "src/")) {
    if (path == "src/" + std::string(*dir) + "/dkms.conf") {
      changes.modules.insert(split_source_dir(std::string(*dir)).first);
      changes.module_dirs.emplace(*dir);
      return true;
    }
  }
  return false;
}

void forget_absent_kernels(TransactionChanges& changes, const Root& root)
{
  std::erase_if(changes.kernels_added, [&](const std::string& kernel) {
    std::error_code ec;
    return !std::filesystem::is_directory(root("/usr/lib/modules/" + kernel), ec)
           && !std::filesystem::is_directory(root("/lib/modules/" + kernel), ec);
  });
}

std::string hook_kmodsync_binary()
{
  if (const char* binary = std::getenv("KMODSYNC"); binary && *binary) {
    return binary;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path().parent_path().parent_path() / "bin" / "kmodsync";
    if (std::filesystem::is_regular_file(beside, ec)) {
      return beside.string();
    }
  }
  return "/usr/bin/kmodsync";
}

std::pair<std::string, std::string> split_source_dir(const std::string& dir_name)
{
  return detail::guess_name_version(dir_name);
}

std::optional<std::vector<std::string>> sync_arguments(const TransactionChanges& changes)
{
  if (changes.empty()) {
    return std::nullopt;
  }
  std::vector<std::string> arguments;
  if (!changes.kernels_removed.empty() || (!changes.kernels_added.empty() && !changes.modules.empty())) {
    return arguments;
  }
  for (const auto& kernel : changes.kernels_added) {
    arguments.push_back("--kernel");
    arguments.push_back(kernel);
  }
  for (const auto& module : changes.modules) {
    arguments.push_back("--module");
    arguments.push_back(module);
  }
  return arguments;
}

} // namespace kmodsync
