// SPDX-License-Identifier: GPL-2.0-or-later
#include "apt_transaction.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/string_util.hpp"

#include <apt-pkg/strutl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace kmodsync::apt {

namespace fs = std::filesystem;
using nlohmann::json;

Expected<HookInput> parse_hook_input(std::istream& in)
{
  HookInput input;
  std::string line;
  if (!std::getline(in, line) || util::trim(line) != "VERSION 3") {
    return error("apt hook: expected \"VERSION 3\" on line 1, got \"{}\" (set DPkg::Tools::Options::HOOK::Version \"3\")",
                 line);
  }
  int number = 1;
  // apt's configuration, "key=value" with the value %-encoded, up to a blank line.
  while (std::getline(in, line)) {
    ++number;
    if (util::trim(line).empty()) {
      break;
    }
    const auto equals = line.find('=');
    if (equals == std::string::npos) {
      return error("apt hook: line {}: \"{}\" is not key=value", number, line);
    }
    input.config[line.substr(0, equals)] = DeQuoteString(line.substr(equals + 1));
  }
  while (std::getline(in, line)) {
    ++number;
    if (util::trim(line).empty()) {
      continue;
    }
    std::istringstream fields(line);
    std::string name, old_version, old_arch, old_ma, op, new_version, new_arch, new_ma, action;
    if (!(fields >> name >> old_version >> old_arch >> old_ma >> op >> new_version >> new_arch >> new_ma >> action)) {
      return error("apt hook: line {}: \"{}\" is not a protocol 3 package line", number, line);
    }
    PackageChange change;
    change.name = name;
    change.removed = action == "**REMOVE**";
    change.configure_only = action == "**CONFIGURE**";
    change.arch = change.removed ? old_arch : new_arch;
    if (change.arch == "none" || change.arch == "-") {
      change.arch = old_arch;
    }
    input.packages.push_back(std::move(change));
  }
  return input;
}

std::vector<std::string> package_files(const fs::path& admindir, const std::string& name, const std::string& arch)
{
  std::vector<std::string> files;
  for (const auto& candidate : {name + ".list", name + ":" + arch + ".list"}) {
    std::ifstream list(admindir / "info" / candidate);
    std::string path;
    while (std::getline(list, path)) {
      if (!path.empty()) {
        files.push_back(path);
      }
    }
    if (!files.empty()) {
      break;
    }
  }
  return files;
}

Expected<void> save_pending(const fs::path& file, const std::vector<PackageChange>& packages)
{
  json array = json::array();
  for (const auto& package : packages) {
    array.push_back({{"name", package.name},
                     {"arch", package.arch},
                     {"removed", package.removed},
                     {"configure_only", package.configure_only},
                     {"old_paths", package.old_paths}});
  }
  if (auto made = util::ensure_directory(file.parent_path()); !made) {
    return made;
  }
  // Names and paths from apt and dpkg need not be UTF-8: replace, never throw.
  return write_file_atomically(file, json{{"packages", array}}.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

Expected<std::vector<PackageChange>> load_pending(const fs::path& file)
{
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return std::vector<PackageChange>{};
  }
  auto text = util::read_file(file);
  if (!text) {
    return std::unexpected(text.error());
  }
  try {
    std::vector<PackageChange> packages;
    const json document = json::parse(*text);
    for (const auto& item : document.at("packages")) {
      PackageChange package;
      package.name = item.at("name").get<std::string>();
      package.arch = item.value("arch", "");
      package.removed = item.value("removed", false);
      package.configure_only = item.value("configure_only", false);
      package.old_paths = item.value("old_paths", std::vector<std::string>{});
      packages.push_back(std::move(package));
    }
    return packages;
  } catch (const json::exception& e) {
    return error("{}: {}", file.string(), e.what());
  }
}

} // namespace kmodsync::apt
