// SPDX-License-Identifier: GPL-2.0-or-later
// add, build, install, uninstall, unbuild, remove, autoinstall, kernel_postinst,
// kernel_prerm, match: each one engine call, with DKMS's messages and exit codes.
#include "dkms_command.hpp"
#include "dkms_state.hpp"

#include "../text_reporter.hpp"

#include "kmodsync/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

namespace {

std::string name_version(const Request& request)
{
  return request.module + "/" + request.version;
}

bool has_module_args(const Request& request)
{
  if (request.module.empty() || request.version.empty()) {
    fmt::print(stderr, "Error! Arguments <module> and <module-version> are not specified.\n"
                       "Usage: {} <module>/<module-version> or\n"
                       "       {} -m <module>/<module-version> or\n"
                       "       {} -m <module> -v <module-version>\n",
               request.action, request.action, request.action);
    return false;
  }
  return true;
}

bool all_is_banned(const Request& request)
{
  if (request.all) {
    fmt::print(stderr, "Error! The action {} does not support the --all parameter.\n", request.action);
    return true;
  }
  return false;
}

// The kernels named with -k, else the running one, as DKMS defaults.
std::vector<KernelArch> kernels_of(const Request& request)
{
  if (!request.kernels.empty()) {
    return request.kernels;
  }
  return {{running_kernel(), request.arches.empty() ? "" : request.arches.front()}};
}

std::vector<std::string> releases_of(const std::vector<KernelArch>& kernels)
{
  std::vector<std::string> releases;
  for (const auto& kernel : kernels) {
    releases.push_back(kernel.kernel);
  }
  return releases;
}

const Kernel* find_kernel(const std::vector<Kernel>& kernels, const std::string& release)
{
  const auto it = std::find_if(kernels.begin(), kernels.end(), [&](const Kernel& k) { return k.release == release; });
  return it == kernels.end() ? nullptr : &*it;
}

// Checks each requested kernel is there and buildable as asked; prints DKMS's error and
// returns its code otherwise.
int check_kernels(const Context& context, const std::vector<KernelArch>& wanted, bool install)
{
  auto kernels = discover_kernels(context.root);
  if (!kernels) {
    fmt::print(stderr, "Error! {}\n", kernels.error());
    return k_error;
  }
  for (const auto& [release, arch] : wanted) {
    const Kernel* kernel = find_kernel(*kernels, release);
    if (!kernel) {
      if (install) {
        fmt::print(stderr, "Error! The directory {} doesn't exist.\nYou cannot install a module onto a non-existant kernel.\n",
                   context.root("/lib/modules/" + release).string());
        return k_install_failed;
      }
      fmt::print(stderr, "Error! Your kernel headers for kernel {} cannot be found at {}.\n", release,
                 context.root("/lib/modules/" + release + "/build").string());
      return k_error;
    }
    if (!arch.empty() && arch != kernel->arch) {
      fmt::print(stderr, "Error! kmodsync builds for a kernel's own architecture: {} is {}, not {}.\n", release,
                 kernel->arch, arch);
      return k_error;
    }
    const std::string& source_dir = context.request.kernel_source_dir;
    std::error_code ec;
    if (!source_dir.empty()
        && (!kernel->headers_dir || fs::weakly_canonical(source_dir, ec) != fs::weakly_canonical(*kernel->headers_dir, ec))) {
      fmt::print(stderr, "Error! --kernelsourcedir {}: kmodsync builds {} against its build link ({}).\n", source_dir,
                 release, kernel->headers_dir ? kernel->headers_dir->string() : "missing");
      return k_error;
    }
  }
  return k_ok;
}

PassOptions pass_options(const Context& context, std::vector<std::string> kernels)
{
  PassOptions options;
  options.root = context.root;
  options.kernels = std::move(kernels);
  options.jobs = context.request.jobs;
  options.force = context.request.force;
  options.depmod = !context.request.no_depmod;
  return options;
}

// DKMS's exit code for how one named cell ended.
int code_of(const CellReport& cell, bool install)
{
  switch (cell.status) {
  case CellStatus::installed:
  case CellStatus::built:
  case CellStatus::up_to_date:
  case CellStatus::would_build:
  case CellStatus::removed:
    return k_ok;
  case CellStatus::skipped:
    switch (cell.cause) {
    case CellCause::no_headers:
      return k_error;
    case CellCause::newer_installed:
      return k_install_failed;
    default:
      return k_skipped;
    }
  case CellStatus::failed:
    switch (cell.cause) {
    case CellCause::bad_conf:
      return k_bad_conf;
    case CellCause::install_failed:
      return install ? k_install_failed : k_build_failed;
    default:
      return k_build_failed;
    }
  }
  return k_error;
}

void print_outcome(const Context& context, const CellReport& cell, bool install)
{
  const char* what = install ? "installed on" : "built for";
  switch (cell.status) {
  case CellStatus::up_to_date:
    if (cell.reason == "installed by DKMS; adopted") {
      fmt::print("Module {}/{} already installed on kernel {} by DKMS: kmodsync takes it over.\n", cell.module,
                 cell.version, cell.kernel);
    } else {
      fmt::print("Module {}/{} already {} kernel {}, skip. You may override by specifying --force.\n", cell.module,
                 cell.version, what, cell.kernel);
    }
    break;
  case CellStatus::skipped:
    if (cell.cause == CellCause::excluded) {
      fmt::print(stderr, "Error! The dkms.conf for module {} includes a BUILD_EXCLUSIVE directive which does not "
                         "match this kernel/arch/config ({}).\nThis indicates that it should not be built.\n",
                 cell.module, cell.reason);
    } else {
      fmt::print(stderr, "Error! {}/{} for {}: {}\n", cell.module, cell.version, cell.kernel, cell.reason);
    }
    break;
  case CellStatus::failed:
    fmt::print(stderr, "Error! Bad return status for module {} on kernel {}: {}\n", context.request.action == "build" ? "build" : "build or install",
               cell.kernel, cell.reason);
    if (!cell.log.empty()) {
      fmt::print(stderr, "Consult {} for more information.\n", context.root(cell.log).string());
    }
    break;
  default:
    break;
  }
}

} // namespace

int add(const Context& context)
{
  const Request& request = context.request;
  if (all_is_banned(request)) {
    return k_banned;
  }
  if (!request.archive.empty() && request.module.empty() && request.source_path.empty()) {
    return load_tarball(context);
  }
  std::string dir;
  const bool from_path = !request.source_path.empty() && request.module.empty();
  if (from_path) {
    dir = managed_path(context.root, request.source_path);
  } else {
    if (!has_module_args(request)) {
      return k_error;
    }
    dir = "/usr/src/" + request.module + "-" + request.version;
    std::error_code ec;
    if (!fs::is_directory(context.root(dir), ec)) {
      fmt::print(stderr, "Error! Could not find module source directory.\nDirectory: {} does not exist.\n",
                 context.root(dir).string());
      return k_not_found;
    }
  }
  std::error_code ec;
  if (!fs::is_regular_file(context.root(dir) / "dkms.conf", ec)) {
    fmt::print(stderr, "Error! {} must contain a dkms.conf file!\n", context.root(dir).string());
    return k_no_dkms_conf;
  }
  auto added = add_module_source(context.root, dir, std::chrono::seconds(10), from_path);
  if (!added) {
    fmt::print(stderr, "Error! Bad conf file.\n{}\n", added.error());
    return k_bad_conf; // DKMS 3.0.10's "malformed" 10 is never reached: its read_conf dies with 8 first
  }
  if (added->already_added) {
    fmt::print(stderr, "Error! DKMS tree already contains: {}-{}\nYou cannot add the same module/version combo more "
                       "than once.\n",
               added->name, added->version);
    return k_not_in_tree;
  }
  fmt::print("Added {}/{}: kmodsync builds it for every kernel on its next pass.\n", added->name, added->version);
  return k_ok;
}

int build_or_install(const Context& context, bool install)
{
  const Request& request = context.request;
  if (all_is_banned(request)) {
    return k_banned;
  }
  if (!has_module_args(request)) {
    return k_error;
  }
  auto state = load_dkms_view(context.root);
  if (!state) {
    fmt::print(stderr, "Error! {}\n", state.error());
    return k_error;
  }
  if (!is_added(*state, request.module, request.version)) {
    // As DKMS: building a module that is not added adds it first.
    const std::string dir = "/usr/src/" + request.module + "-" + request.version;
    std::error_code ec;
    if (!fs::is_regular_file(context.root(dir) / "dkms.conf", ec)) {
      fmt::print(stderr, "Error! Could not find module source directory.\nDirectory: {} does not exist.\n",
                 context.root(dir).string());
      return k_not_found;
    }
    if (auto added = add_module_source(context.root, dir, std::chrono::seconds(10)); !added) {
      fmt::print(stderr, "Error! Bad conf file.\n{}\n", added.error());
      return k_bad_conf;
    }
  }
  const auto wanted = kernels_of(request);
  if (const int code = check_kernels(context, wanted, install); code != k_ok) {
    return code;
  }
  const std::vector<std::string> releases = releases_of(wanted);
  PassOptions options = pass_options(context, releases);
  options.modules = {name_version(request)};
  options.install = install;
  options.explicit_request = true;
  options.retry = true;
  options.rebuild = request.force;
  TextReporter reporter(context.root, stdout);
  auto report = run_pass(options, reporter);
  if (!report) {
    fmt::print(stderr, "Error! {}\n", report.error());
    return k_error;
  }
  for (const auto& message : report->errors) {
    fmt::print(stderr, "Warning! {}\n", message);
  }
  int code = k_ok;
  for (const auto& release : releases) {
    const auto cell = std::find_if(report->cells.begin(), report->cells.end(), [&](const CellReport& c) {
      return c.kernel == release && c.module == request.module && c.version == request.version;
    });
    if (cell == report->cells.end()) {
      fmt::print(stderr, "Error! {}/{}: no such module source for {} (its dkms.conf names another module or version)\n",
                 request.module, request.version, release);
      code = code == k_ok ? k_not_found : code;
      continue;
    }
    print_outcome(context, *cell, install);
    const int cell_code = code_of(*cell, install);
    code = code == k_ok ? cell_code : code;
  }
  return code;
}

namespace {

// Cells DKMS's tree says are installed become kmodsync's before they are uninstalled:
// otherwise their files would be left behind and adopted again by the next pass. Returns
// true when it ran a pass (the state changed).
bool adopt_pending(const Context& context, const State& state)
{
  const Request& request = context.request;
  const std::string prefix = request.module + "/" + request.version + "/";
  if (std::none_of(state.adopt.begin(), state.adopt.end(), [&](const std::string& key) { return key.starts_with(prefix); })) {
    return false;
  }
  PassOptions options = pass_options(context, {});
  options.modules = {name_version(request)};
  options.explicit_request = true;
  options.adopt_only = true;
  Reporter quiet;
  if (auto adopted = run_pass(options, quiet); !adopted) {
    fmt::print(stderr, "Warning! {}\n", adopted.error());
  }
  return true;
}

// load_added, with DKMS-installed cells of the module taken over first.
std::variant<State, int> load_added_and_adopted(const Context& context)
{
  auto state = load_added(context);
  if (std::holds_alternative<State>(state) && adopt_pending(context, std::get<State>(state))) {
    return load_added(context);
  }
  return state;
}

} // namespace

int uninstall(const Context& context, bool keep_build)
{
  const Request& request = context.request;
  if (!has_module_args(request)) {
    return k_error;
  }
  auto state = load_added_and_adopted(context);
  if (const int* code = std::get_if<int>(&state)) {
    return *code;
  }
  const auto had_cells = kernels_with_cells(std::get<State>(state), request.module, request.version);
  const std::vector<std::string> releases = request.all ? had_cells : releases_of(kernels_of(request));
  auto result = uninstall_module(context.root, request.module, request.version, releases, keep_build, !request.no_depmod);
  if (!result) {
    fmt::print(stderr, "Error! {}\n", result.error());
    return k_error;
  }
  for (const auto& warning : result->warnings) {
    fmt::print(stderr, "Warning! {}\n", warning);
  }
  for (const auto& release : releases) {
    if (std::find(result->uninstalled.begin(), result->uninstalled.end(), release) != result->uninstalled.end()) {
      fmt::print("Module {}/{} uninstalled from kernel {}.\n", request.module, request.version, release);
    } else if (!keep_build && std::find(had_cells.begin(), had_cells.end(), release) != had_cells.end()) {
      fmt::print("Module {}/{} unbuilt for kernel {}.\n", request.module, request.version, release);
    } else {
      fmt::print("Module {} {} is not installed for kernel {}. Skipping...\n", request.module, request.version, release);
    }
  }
  return k_ok;
}

int remove(const Context& context)
{
  const Request& request = context.request;
  if (!has_module_args(request)) {
    return k_error;
  }
  auto state = load_added_and_adopted(context);
  if (const int* code = std::get_if<int>(&state)) {
    return *code;
  }
  if (!request.all) {
    const std::vector<std::string> releases = releases_of(kernels_of(request));
    auto result = uninstall_module(context.root, request.module, request.version, releases, false, !request.no_depmod);
    if (!result) {
      fmt::print(stderr, "Error! {}\n", result.error());
      return k_error;
    }
    for (const auto& warning : result->warnings) {
      fmt::print(stderr, "Warning! {}\n", warning);
    }
    for (const auto& release : result->uninstalled) {
      fmt::print("Module {}/{} removed from kernel {}.\n", request.module, request.version, release);
    }
    auto after = load_dkms_view(context.root);
    if (after && has_built_cells(*after, request.module, request.version)) {
      return k_ok; // still built for other kernels: stays added, as in DKMS
    }
  }
  // Unregistered: no pass builds it again until it is added back.
  auto removed = remove_module(context.root, request.module, request.version);
  if (!removed) {
    fmt::print(stderr, "Error! {}\n", removed.error());
    return k_error;
  }
  for (const auto& warning : *removed) {
    fmt::print(stderr, "Warning! {}\n", warning);
  }
  fmt::print("Deleting module {}-{} completely from the DKMS tree.\n", request.module, request.version);
  return k_ok;
}

int autoinstall(const Context& context, const std::string& action)
{
  const Request& request = context.request;
  if (action == "kernel_postinst" && request.kernels.size() != 1) {
    fmt::print(stderr, "Error! The action {} does not support multiple kernel version parameters on the command line.\n",
               action);
    return 4;
  }
  const auto wanted = kernels_of(request);
  if (check_kernels(context, wanted, true) != k_ok) {
    return k_autoinstall_failed;
  }
  const std::vector<std::string> releases = releases_of(wanted);
  // As DKMS: the modules that are added (`kmodsync sync` also builds sources never added).
  auto state = load_dkms_view(context.root);
  if (!state) {
    fmt::print(stderr, "Error! {}\n", state.error());
    return k_autoinstall_failed;
  }
  PassOptions options = pass_options(context, releases);
  options.modules = added_modules(*state);
  if (options.modules.empty()) {
    return k_ok;
  }
  TextReporter reporter(context.root, stdout);
  auto report = run_pass(options, reporter);
  if (!report) {
    fmt::print(stderr, "Error! {}\n", report.error());
    return k_autoinstall_failed;
  }
  reporter.print_summary(*report);
  if (report->any_failed()) {
    fmt::print(stderr, "Error! One or more modules failed to install during {}.\nRefer to previous errors for more "
                       "information.\n",
               action);
    return k_autoinstall_failed;
  }
  return k_ok;
}

int kernel_prerm(const Context& context)
{
  const Request& request = context.request;
  if (request.kernels.size() != 1) {
    fmt::print(stderr, "Error! The action kernel_prerm does not support multiple kernel version parameters on the "
                       "command line.\n");
    return 4;
  }
  auto removed = remove_kernel(context.root, request.kernels.front().kernel);
  if (!removed) {
    fmt::print(stderr, "Error! dkms kernel_prerm for kernel {} failed: {}\n", request.kernels.front().kernel,
               removed.error());
    return k_kernel_prerm_failed;
  }
  for (const auto& warning : *removed) {
    fmt::print(stderr, "Warning! {}\n", warning);
  }
  return k_ok;
}

int match(const Context& context)
{
  const Request& request = context.request;
  if (request.template_kernel.empty()) {
    fmt::print(stderr, "Error! Invalid number of parameters passed.\nUsage: match --templatekernel=<kernel-version> -k "
                       "<kernel-version>\n   or: match --templatekernel=<kernel-version> -k <kernel-version> <module>\n");
    return k_error;
  }
  if (request.kernels.size() != 1) {
    fmt::print(stderr, "Error! The action match does not support multiple kernel version parameters on the command line.\n");
    return 4;
  }
  const std::string& target = request.kernels.front().kernel;
  if (request.template_kernel == target) {
    fmt::print(stderr, "Error! The templatekernel and the specified kernel version are the same.\n");
    return k_not_found;
  }
  auto state = load_dkms_view(context.root);
  if (!state) {
    fmt::print(stderr, "Error! {}\n", state.error());
    return k_error;
  }
  std::vector<std::string> modules;
  for (const auto& record : state->cells) {
    if (record.kernel == request.template_kernel && record.outcome == Outcome::installed
        && (request.module.empty() || record.module == request.module)) {
      modules.push_back(record.module + "/" + record.version);
    }
  }
  if (!request.module.empty() && !has_module(*state, request.module)) {
    fmt::print(stderr, "Error! The module: {} is not located in the DKMS tree.\n", request.module);
    return k_not_in_tree;
  }
  fmt::print("Matching modules in kernel: {}\nto the configuration of kernel: {}\n", target, request.template_kernel);
  if (modules.empty()) {
    fmt::print("There is nothing to be done for this match.\n");
    return k_ok;
  }
  if (const int code = check_kernels(context, request.kernels, true); code != k_ok) {
    return code;
  }
  PassOptions options = pass_options(context, {target});
  options.modules = modules;
  options.explicit_request = true;
  TextReporter reporter(context.root, stdout);
  auto report = run_pass(options, reporter);
  if (!report) {
    fmt::print(stderr, "Error! {}\n", report.error());
    return k_error;
  }
  int code = k_ok;
  for (const auto& cell : report->cells) {
    print_outcome(context, cell, true);
    const int cell_code = code_of(cell, true);
    code = code == k_ok ? cell_code : code;
  }
  return code;
}

} // namespace kmodsync::cli::dkms
