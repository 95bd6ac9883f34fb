// SPDX-License-Identifier: GPL-2.0-or-later
// `dkms status`: the lines scripts grep, from the recorded state alone (no evaluation).
#include "dkms_command.hpp"
#include "dkms_state.hpp"

#include "kmodsync/version.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace kmodsync::cli::dkms {

int status(const Context& context)
{
  const Request& request = context.request;
  auto state = load_dkms_view(context.root);
  if (!state) {
    fmt::print(stderr, "Error! {}\n", state.error());
    return k_error;
  }
  const std::string arch = machine_arch();
  // NAME/VERSION in DKMS's order: by name, then version.
  std::set<std::pair<std::string, std::string>> modules;
  for (const auto& key : state->added) {
    const auto slash = key.find('/');
    modules.insert({key.substr(0, slash), key.substr(slash + 1)});
  }
  for (const auto& record : state->cells) {
    modules.insert({record.module, record.version});
  }
  std::vector<std::pair<std::string, std::string>> ordered(modules.begin(), modules.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : compare_versions(a.second, b.second) < 0;
  });
  auto kernel_wanted = [&](const std::string& kernel) {
    if (request.kernels.empty()) {
      return request.arches.empty() || request.arches.front() == arch;
    }
    return std::any_of(request.kernels.begin(), request.kernels.end(), [&](const KernelArch& wanted) {
      return wanted.kernel == kernel && (wanted.arch.empty() || wanted.arch == arch);
    });
  };
  for (const auto& [module, version] : ordered) {
    if (!is_added(*state, module, version) || (!request.module.empty() && module != request.module)
        || (!request.version.empty() && version != request.version)) {
      continue;
    }
    std::vector<std::pair<std::string, const char*>> lines; // kernel, state
    for (const auto& record : state->cells) {
      if (record.module == module && record.version == version && kernel_wanted(record.kernel)
          && (record.outcome == Outcome::installed || record.outcome == Outcome::built)) {
        lines.emplace_back(record.kernel, record.outcome == Outcome::installed ? "installed" : "built");
      }
    }
    // Installed by DKMS and not yet taken over by a pass: installed all the same.
    const std::string prefix = module + "/" + version + "/";
    for (const auto& key : state->adopt) {
      const std::string kernel = key.substr(prefix.size());
      if (key.starts_with(prefix) && kernel_wanted(kernel) && !state->find(module, version, kernel)) {
        lines.emplace_back(kernel, "installed");
      }
    }
    std::sort(lines.begin(), lines.end(),
              [](const auto& a, const auto& b) { return compare_versions(a.first, b.first) < 0; });
    if (lines.empty()) {
      fmt::print("{}/{}: added\n", module, version);
    }
    for (const auto& [kernel, what] : lines) {
      fmt::print("{}/{}, {}, {}: {}\n", module, version, kernel, arch, what);
    }
  }
  return k_ok;
}

} // namespace kmodsync::cli::dkms
