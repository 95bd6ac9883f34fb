// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/dkms_import.hpp"

#include "kmodsync/log.hpp"

#include <algorithm>
#include <filesystem>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

// DKMS writes the `source` link with the path as it saw it: the managed system's path, or
// (with --sourcetree) a host path inside the root.
std::optional<std::string> managed_source(const Root& root, const fs::path& source, const std::string& name,
                                          const std::string& version)
{
  std::error_code ec;
  fs::path target = source;
  if (fs::is_symlink(source, ec)) {
    target = fs::read_symlink(source, ec);
    if (ec) {
      return std::nullopt;
    }
    if (target.is_relative()) {
      target = source.parent_path() / target;
    }
  }
  if (fs::is_regular_file(root(target.string()) / "dkms.conf", ec)) {
    return target.lexically_normal().string();
  }
  const std::string inside = root.managed(target);
  if (!inside.starts_with("/..") && fs::is_regular_file(root(inside) / "dkms.conf", ec)) {
    return fs::path(inside).lexically_normal().string();
  }
  // A tree copied from elsewhere (an image built under another path): DKMS's own layout.
  const std::string usual = "/usr/src/" + name + "-" + version;
  if (fs::is_regular_file(root(usual) / "dkms.conf", ec)) {
    return usual;
  }
  return std::nullopt;
}

} // namespace

bool import_dkms_tree(const Root& root, State& state)
{
  if (state.dkms_imported) {
    return false;
  }
  state.dkms_imported = true;
  const fs::path tree = root("/var/lib/dkms");
  std::error_code ec;
  if (!fs::is_directory(tree, ec)) {
    return true;
  }
  for (const auto& module_dir : fs::directory_iterator(tree, ec)) {
    if (!module_dir.is_directory(ec) || module_dir.is_symlink(ec)) {
      continue;
    }
    const std::string name = module_dir.path().filename().string();
    for (const auto& entry : fs::directory_iterator(module_dir.path(), ec)) {
      const std::string entry_name = entry.path().filename().string();
      if (entry_name.starts_with("kernel-") && entry.is_symlink(ec)) {
        // kernel-KV-ARCH -> VERSION/KV/ARCH
        const fs::path target = fs::read_symlink(entry.path(), ec);
        std::vector<std::string> parts;
        for (const auto& part : target) {
          parts.push_back(part.string());
        }
        if (!ec && parts.size() >= 3) {
          const std::string& version = parts[parts.size() - 3];
          const std::string& kernel = parts[parts.size() - 2];
          state.adopt.insert(name + "/" + version + "/" + kernel);
          LOG("DKMS tree: {}/{} is installed for {}", name, version, kernel);
        }
        continue;
      }
      if (entry_name == "original_module" || !entry.is_directory(ec)) {
        continue;
      }
      const auto source = managed_source(root, entry.path() / "source", name, entry_name);
      if (!source) {
        continue;
      }
      const std::string added = name + "/" + entry_name;
      state.added.insert(added);
      state.removed.erase(added);
      if (!source->starts_with("/usr/src/")
          && std::find(state.registered.begin(), state.registered.end(), *source) == state.registered.end()) {
        state.registered.push_back(*source);
      }
      LOG("DKMS tree: {} is added ({})", added, *source);
    }
  }
  return true;
}

void mark_added_in_dkms_tree(const Root& root, const std::string& name, const std::string& version,
                             const std::string& source_dir)
{
  const fs::path dir = root("/var/lib/dkms/" + name + "/" + version);
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path link = dir / "source";
  if (fs::is_symlink(link, ec)) {
    fs::remove(link, ec);
  }
  if (!fs::exists(fs::symlink_status(link, ec))) {
    fs::create_directory_symlink(source_dir, link, ec);
  }
  if (ec) {
    LOG("cannot mark {}/{} added in {}: {}", name, version, dir.string(), ec.message());
  }
}

void unmark_added_in_dkms_tree(const Root& root, const std::string& name, const std::string& version)
{
  const fs::path module_dir = root("/var/lib/dkms/" + name);
  const fs::path dir = module_dir / version;
  std::error_code ec;
  if (fs::is_symlink(dir / "source", ec)) {
    fs::remove(dir / "source", ec);
  }
  fs::remove(dir / "build", ec); // the empty directory DKMS's add makes; only if empty
  fs::remove(dir, ec);           // only if empty
  fs::remove(module_dir, ec);
}

} // namespace kmodsync
