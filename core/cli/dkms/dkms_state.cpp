// SPDX-License-Identifier: GPL-2.0-or-later
#include "dkms_state.hpp"
#include "dkms_command.hpp"

#include "kmodsync/dkms_import.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <set>

#include <sys/utsname.h>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

Expected<State> load_dkms_view(const Root& root)
{
  auto state = State::load(StatePaths(root).state_file);
  if (state) {
    import_dkms_tree(root, *state);
  }
  return state;
}

std::variant<State, int> load_added(const Context& context)
{
  const Request& request = context.request;
  auto state = load_dkms_view(context.root);
  if (!state) {
    fmt::print(stderr, "Error! {}\n", state.error());
    return k_error;
  }
  if (!is_added(*state, request.module, request.version)) {
    fmt::print(stderr, "Error! The module/version combo: {}-{} is not located in the DKMS tree.\n", request.module,
               request.version);
    return k_not_in_tree;
  }
  return std::move(*state);
}

bool is_added(const State& state, const std::string& module, const std::string& version)
{
  const std::string key = module + "/" + version;
  if (state.removed.contains(key)) {
    return false;
  }
  return state.added.contains(key) || std::any_of(state.cells.begin(), state.cells.end(), [&](const CellRecord& r) {
           return r.module == module && r.version == version;
         });
}

std::vector<std::string> added_modules(const State& state)
{
  std::set<std::string> modules;
  for (const auto& key : state.added) {
    modules.insert(key);
  }
  for (const auto& record : state.cells) {
    modules.insert(record.module + "/" + record.version);
  }
  std::vector<std::string> added;
  for (const auto& key : modules) {
    const auto slash = key.find('/');
    if (is_added(state, key.substr(0, slash), key.substr(slash + 1))) {
      added.push_back(key);
    }
  }
  return added;
}

bool has_module(const State& state, const std::string& module)
{
  return std::any_of(state.added.begin(), state.added.end(),
                     [&](const std::string& key) { return key.starts_with(module + "/"); })
         || std::any_of(state.cells.begin(), state.cells.end(), [&](const CellRecord& r) { return r.module == module; });
}

bool has_built_cells(const State& state, const std::string& module, const std::string& version)
{
  return std::any_of(state.cells.begin(), state.cells.end(), [&](const CellRecord& r) {
    return r.module == module && r.version == version
           && (r.outcome == Outcome::installed || r.outcome == Outcome::built);
  });
}

std::vector<std::string> kernels_with_cells(const State& state, const std::string& module, const std::string& version)
{
  std::vector<std::string> kernels;
  for (const auto& record : state.cells) {
    if (record.module == module && record.version == version) {
      kernels.push_back(record.kernel);
    }
  }
  return kernels;
}

std::string running_kernel()
{
  struct utsname names {};
  return ::uname(&names) == 0 ? names.release : "";
}

std::string machine_arch()
{
  struct utsname names {};
  return ::uname(&names) == 0 ? names.machine : "";
}

std::string managed_path(const Root& root, const std::string& path)
{
  const fs::path absolute = fs::absolute(path).lexically_normal();
  if (root.is_host()) {
    return absolute.string();
  }
  const std::string inside = root.managed(absolute);
  if (!inside.starts_with("/..")) {
    return inside;
  }
  return path; // already the managed system's name for it
}

} // namespace kmodsync::cli::dkms
