// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/module_source.hpp"

#include <algorithm>
#include <set>

namespace kmodsync {

namespace fs = std::filesystem;

bool ModuleSource::may_be(const std::string& name, const std::string& version) const
{
  if (version.empty()) {
    return dir_name.starts_with(name + "-") || dir_name == name;
  }
  return dir_name == name + "-" + version;
}

std::vector<ModuleSource> discover_module_sources(const Root& root,
                                                  const std::vector<std::string>& registered)
{
  std::vector<ModuleSource> sources;
  std::set<fs::path> seen;
  auto add = [&](const fs::path& dir) {
    std::error_code ec;
    // Anything named dkms.conf is a source: one that is not a file fails with a message
    // rather than going unnoticed.
    if (!fs::exists(fs::symlink_status(dir / "dkms.conf", ec))) {
      return;
    }
    const fs::path canonical = fs::weakly_canonical(dir, ec);
    if (!seen.insert(canonical).second) {
      return;
    }
    sources.push_back(ModuleSource{dir, dir.filename().string()});
  };

  std::error_code ec;
  const fs::path src = root("/usr/src");
  if (fs::is_directory(src, ec)) {
    for (const auto& entry : fs::directory_iterator(src, ec)) {
      if (entry.is_directory(ec)) {
        add(entry.path());
      }
    }
  }
  for (const auto& dir : registered) {
    add(root(dir));
  }
  std::sort(sources.begin(), sources.end(), [](const ModuleSource& a, const ModuleSource& b) {
    return a.dir_name < b.dir_name;
  });
  return sources;
}

} // namespace kmodsync
