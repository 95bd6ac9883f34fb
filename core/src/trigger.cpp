// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/trigger.hpp"

#include "pass_cell.hpp"

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
  if (component.empty() || component == "." || component == "..") {
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
  // src/kernels/KV/...: Fedora's kernel-devel; src/linux-headers-KV/: Debian's headers.
  if (!kernel) {
    kernel = component_after(path, "src/kernels/");
  }
  if (!kernel) {
    if (auto dir = component_after(path, "src/"); dir && dir->starts_with("linux-headers-")) {
      kernel = dir->substr(std::string_view("linux-headers-").size());
    }
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
