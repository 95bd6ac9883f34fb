// SPDX-License-Identifier: GPL-2.0-or-later
#include "pass_cell.hpp"

#include "kmodsync/install.hpp"
#include "kmodsync/build_cache.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/log.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/plan.hpp"
#include "kmodsync/version.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <ctime>
#include <map>
#include <set>
#include <thread>

namespace kmodsync::detail {

namespace fs = std::filesystem;

namespace {

struct ModuleFilter
{
  std::string name;
  std::string version;
};

std::vector<ModuleFilter> parse_filters(const std::vector<std::string>& modules)
{
  std::vector<ModuleFilter> filters;
  for (const auto& text : modules) {
    const auto slash = text.find('/');
    filters.push_back(slash == std::string::npos ? ModuleFilter{text, ""}
                                                 : ModuleFilter{text.substr(0, slash), text.substr(slash + 1)});
  }
  return filters;
}

bool source_in_scope(const ModuleSource& source, const std::vector<ModuleFilter>& filters)
{
  return filters.empty() || std::any_of(filters.begin(), filters.end(), [&](const ModuleFilter& filter) {
           return source.may_be(filter.name, filter.version);
         });
}

bool spec_in_scope(const std::string& name, const std::string& version, const std::vector<ModuleFilter>& filters)
{
  return filters.empty() || std::any_of(filters.begin(), filters.end(), [&](const ModuleFilter& filter) {
           return filter.name == name && (filter.version.empty() || filter.version == version);
         });
}

DkmsConfContext make_context(const PassOptions& options,
                             const StatePaths& paths,
                             const Kernel& kernel,
                             const std::string& module,
                             const std::string& version)
{
  DkmsConfContext context;
  context.kernelver = kernel.release;
  context.arch = kernel.arch;
  context.kernel_source_dir = kernel.headers_dir ? kernel.headers_dir->string() : (kernel.modules_dir / "build").string();
  context.dkms_tree = (paths.build_dir / kernel.release).string();
  context.source_tree = options.root("/usr/src").string();
  context.install_tree = kernel.modules_dir.parent_path().string();
  context.module = module;
  context.module_version = version;
  context.overrides_dir = options.root("/etc/dkms").string();
  context.timeout = options.conf_timeout;
  return context;
}

// A dkms.conf's values depend on its source tree (which holds it and whatever it reads
// there), what DKMS tells it (the context), the override files and the kernel's headers;
// with all of those unchanged, the last evaluation stands and no bash runs.
Expected<DkmsConfValues> evaluate_memoized(const fs::path& conf, const DkmsConfContext& context, const Kernel& kernel,
                                           const std::string& source_hash, Memo& memo)
{
  if (source_hash.empty()) {
    return evaluate_dkms_conf(conf, context);
  }
  Hasher hasher;
  hasher.update_field("kmodsync-conf-1");
  hasher.update_field(source_hash);
  hasher.update_field(conf.string());
  for (const std::string* field : {&context.kernelver, &context.arch, &context.kernel_source_dir, &context.dkms_tree,
                                   &context.source_tree, &context.install_tree, &context.module,
                                   &context.module_version, &context.overrides_dir, &kernel.fingerprint}) {
    hasher.update_field(*field);
  }
  const std::string base = context.overrides_dir + "/" + context.module;
  for (const std::string& overrides :
       {base + ".conf", base + "-" + context.module_version + ".conf",
        base + "-" + context.module_version + "-" + context.kernelver + ".conf",
        base + "-" + context.module_version + "-" + context.kernelver + "-" + context.arch + ".conf"}) {
    auto content = util::read_file(overrides);
    hasher.update_field(content ? *content : std::string("<missing>"));
  }
  const std::string key = "conf:" + hasher.hex_digest();
  if (auto known = memo.get(key)) {
    if (auto values = values_from_json(*known)) {
      return *values;
    }
  }
  auto values = evaluate_dkms_conf(conf, context);
  if (values) {
    memo.put(key, values_to_json(*values));
  }
  return values;
}

// Evaluates the cell's dkms.conf; on success the cell has its spec and its real name.
void evaluate(const PassOptions& options, const StatePaths& paths, PassCell& cell, const std::string& source_hash,
              Memo& memo, const std::optional<Sandbox>& sandbox)
{
  auto [module, version] = guess_name_version(cell.source->dir_name);
  cell.module = module;
  cell.version = version;
  auto context = make_context(options, paths, *cell.kernel, module, version);
  context.sandbox = sandbox;
  auto values = evaluate_memoized(cell.source->conf(), context, *cell.kernel, source_hash, memo);
  // $module and the default build directory follow PACKAGE_NAME/VERSION, as after `dkms add`.
  if (values && (values->get("PACKAGE_NAME") != module || values->get("PACKAGE_VERSION") != version)
      && !values->get("PACKAGE_NAME").empty() && !values->get("PACKAGE_VERSION").empty()) {
    context = make_context(options, paths, *cell.kernel, values->get("PACKAGE_NAME"), values->get("PACKAGE_VERSION"));
    context.sandbox = sandbox;
    values = evaluate_memoized(cell.source->conf(), context, *cell.kernel, source_hash, memo);
  }
  if (!values) {
    cell.report.status = CellStatus::failed;
    cell.report.cause = CellCause::bad_conf;
    cell.report.reason = values.error();
    return;
  }
  auto spec = make_module_spec(*values, cell.source->conf(), context, cell.kernel->config);
  if (!spec) {
    if (!values->get("PACKAGE_NAME").empty()) {
      cell.module = values->get("PACKAGE_NAME");
    }
    if (!values->get("PACKAGE_VERSION").empty()) {
      cell.version = values->get("PACKAGE_VERSION");
    }
    cell.report.status = CellStatus::failed;
    cell.report.cause = CellCause::bad_conf;
    cell.report.reason = spec.error();
    return;
  }
  cell.module = spec->name;
  cell.version = spec->version;
  cell.spec = std::move(*spec);
}

// A cell DKMS's tree says is installed (state.adopt, from import_dkms_tree) and that
// kmodsync has no files for: when every module of the spec is where DKMS puts it, for this
// kernel, those files become the cell's, so switching from DKMS rebuilds nothing.
bool adopt_dkms_install(const Root& root, const InstallSettings& install, PassCell& cell, State& state)
{
  const std::string key = cell.module + "/" + cell.version + "/" + cell.kernel->release;
  if (!state.adopt.contains(key)) {
    return false;
  }
  state.adopt.erase(key);
  const CellRecord* existing = state.find(cell.module, cell.version, cell.kernel->release);
  if (existing && !existing->files.empty()) {
    return false;
  }
  CellRecord record;
  for (const auto& destination : module_destinations(install, *cell.spec, *cell.kernel)) {
    std::optional<InstalledFile> found;
    for (const char* suffix : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"}) {
      const fs::path path = destination.string() + suffix;
      std::error_code ec;
      if (!fs::is_regular_file(path, ec)) {
        continue;
      }
      auto info = read_module_info(path);
      auto hash = sha256_file(path);
      if (info && hash && info->vermagic.starts_with(cell.kernel->release + " ")) {
        found = with_stat(root, InstalledFile{root.managed(path), *hash, 0, 0});
      }
      break;
    }
    if (!found) {
      LOG("{}: not adopted from DKMS: no module for {} at {}", key, cell.kernel->release, destination.string());
      return false;
    }
    record.files.push_back(std::move(*found));
  }
  record.module = cell.module;
  record.version = cell.version;
  record.kernel = cell.kernel->release;
  record.source_dir = root.managed(cell.source->dir);
  record.input_key = cell.input_key;
  record.outcome = Outcome::installed;
  record.reason = "installed by DKMS; adopted";
  record.time = std::time(nullptr);
  state.put(std::move(record));
  return true;
}

} // namespace

std::pair<std::string, std::string> guess_name_version(const std::string& dir_name)
{
  for (std::size_t i = 0; i + 1 < dir_name.size(); ++i) {
    if (dir_name[i] == '-' && dir_name[i + 1] >= '0' && dir_name[i + 1] <= '9') {
      return {dir_name.substr(0, i), dir_name.substr(i + 1)};
    }
  }
  return {dir_name, ""};
}

namespace {

// A cell in a BUILD_DEPENDS cycle (itself included) can never start: it fails, naming the
// cycle. Then, until nothing changes, a cell waiting for one that will not be built is
// skipped, so the build queue only ever waits for cells it will build.
void settle_dependency_cycles(std::vector<PassCell>& cells)
{
  enum class Mark { none, active, done };
  std::vector<Mark> marks(cells.size(), Mark::none);
  std::vector<std::size_t> path;
  std::function<void(std::size_t)> visit = [&](std::size_t index) {
    marks[index] = Mark::active;
    path.push_back(index);
    for (const std::size_t next : cells[index].depends_on) {
      if (marks[next] == Mark::active) {
        const auto start = std::find(path.begin(), path.end(), next);
        std::vector<std::string> names;
        for (auto it = start; it != path.end(); ++it) {
          names.push_back(cells[*it].module);
        }
        names.push_back(cells[next].module);
        for (auto it = start; it != path.end(); ++it) {
          PassCell& member = cells[*it];
          member.needs_build = false;
          member.report.status = CellStatus::failed;
          member.report.cause = CellCause::bad_conf;
          member.report.reason = fmt::format("BUILD_DEPENDS forms a cycle for {}: {} ({})", member.kernel->release,
                                             fmt::join(names, " -> "), member.source->conf().string());
        }
      } else if (marks[next] == Mark::none) {
        visit(next);
      }
    }
    path.pop_back();
    marks[index] = Mark::done;
  };
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (cells[i].needs_build && marks[i] == Mark::none) {
      visit(i);
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (auto& cell : cells) {
      if (!cell.needs_build) {
        continue;
      }
      for (const std::size_t dependency : cell.depends_on) {
        if (!cells[dependency].needs_build) {
          cell.needs_build = false;
          cell.report.status = CellStatus::skipped;
          cell.report.cause = CellCause::depends_unmet;
          cell.report.reason = fmt::format("BUILD_DEPENDS not met: {} will not be built for {}",
                                           cells[dependency].module, cell.kernel->release);
          changed = true;
          break;
        }
      }
    }
  }
  for (auto& cell : cells) {
    if (!cell.needs_build) {
      cell.depends_on.clear();
    }
  }
}

// Two sources that install the same module file for one kernel would overwrite each other
// pass after pass: the first (in source order) keeps it, the others fail, naming it.
void refuse_shared_destinations(PassPlan& plan)
{
  std::map<std::pair<const Kernel*, std::string>, const PassCell*> owners;
  for (auto& cell : plan.cells) {
    if (!cell.spec || !(cell.needs_build || cell.report.status == CellStatus::up_to_date)) {
      continue;
    }
    for (const auto& destination : module_destinations(plan.install, *cell.spec, *cell.kernel)) {
      const auto [it, first] = owners.try_emplace({cell.kernel, destination.string()}, &cell);
      const PassCell& owner = *it->second;
      // Versions of one module are settled by supersession (or asked for explicitly).
      if (first || owner.module == cell.module) {
        continue;
      }
      cell.needs_build = false;
      cell.report.status = CellStatus::failed;
      cell.report.cause = CellCause::bad_conf;
      cell.report.reason =
        fmt::format("{}.ko for {} is also built by {}/{} ({}): one module file cannot come from two sources",
                    destination.filename().string(), cell.kernel->release, owner.module, owner.version,
                    "/usr/src/" + owner.source->dir_name);
      break;
    }
  }
}

} // namespace

Expected<PassPlan> plan_pass(const PassOptions& options, State& state, InstallSettings install,
                             std::vector<Kernel> kernels, Memo& memo, const Confinement& confinement)
{
  const StatePaths paths(options.root);
  const BuildCache cache(options.root, 0); // only looked at here
  PassPlan plan;
  for (const auto& wanted : options.kernels) {
    if (std::none_of(kernels.begin(), kernels.end(), [&](const Kernel& k) { return k.release == wanted; })) {
      return error("kernel {} is not installed: no {} or {}", wanted,
                   options.root("/usr/lib/modules/" + wanted).string(),
                   options.root("/lib/modules/" + wanted).string());
    }
  }
  for (auto& kernel : kernels) {
    if (options.kernels.empty()
        || std::find(options.kernels.begin(), options.kernels.end(), kernel.release) != options.kernels.end()) {
      plan.kernels.push_back(std::move(kernel));
    }
  }
  plan.sources = discover_module_sources(options.root, state.registered);
  plan.install = std::move(install);
  const auto filters = parse_filters(options.modules);

  std::vector<PassCell> candidates;
  for (const auto& source : plan.sources) {
    if (!source_in_scope(source, filters)) {
      continue;
    }
    for (const auto& kernel : plan.kernels) {
      PassCell cell;
      cell.source = &source;
      cell.kernel = &kernel;
      cell.report.status = CellStatus::skipped;
      candidates.push_back(std::move(cell));
    }
  }
  // The source trees' hashes key the evaluations as well as the builds.
  std::map<const ModuleSource*, Expected<std::string>> source_hashes;
  for (const auto& cell : candidates) {
    if (!source_hashes.contains(cell.source)) {
      source_hashes.emplace(cell.source, hash_source_tree(cell.source->dir, memo));
    }
  }
  // Each evaluation not in the memo is a bash process of its own, mostly waiting on
  // fork/exec: run them on every core.
  std::atomic<std::size_t> next{0};
  auto evaluate_some = [&] {
    for (std::size_t i = next++; i < candidates.size(); i = next++) {
      const auto& hash = source_hashes.at(candidates[i].source);
      evaluate(options, paths, candidates[i], hash ? *hash : std::string(), memo, confinement.for_evaluation());
    }
  };
  {
    std::vector<std::jthread> workers;
    const unsigned threads = std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()), candidates.size());
    for (unsigned i = 1; i < threads; ++i) {
      workers.emplace_back(evaluate_some);
    }
    evaluate_some();
  }
  for (auto& cell : candidates) {
    if (spec_in_scope(cell.module, cell.version, filters)
        && !state.removed.contains(cell.module + "/" + cell.version)) {
      plan.cells.push_back(std::move(cell));
    }
  }

  // DKMS autoinstalls only the newest version of a module present.
  std::map<std::pair<std::string, std::string>, std::string> newest;
  for (const auto& cell : plan.cells) {
    if (!cell.spec || options.explicit_request) {
      continue;
    }
    auto& best = newest[{cell.module, cell.kernel->release}];
    if (best.empty() || compare_versions(cell.version, best) > 0) {
      best = cell.version;
    }
  }

  bool tools_known = false;
  for (auto& cell : plan.cells) {
    CellReport& report = cell.report;
    report.module = cell.module;
    report.version = cell.version;
    report.kernel = cell.kernel->release;
    cell.log_file = paths.log_dir / cell.kernel->release / (cell.module + "-" + cell.version + ".log");
    cell.build_dir = paths.build_dir / cell.kernel->release / cell.module / cell.version / "build";
    if (!cell.spec) {
      continue;
    }
    const ModuleSpec& spec = *cell.spec;
    if (!cell.kernel->buildable()) {
      // Modules loaded from a tarball need no headers to be installed (DKMS's use of
      // binary tarballs); anything else does.
      const CellRecord* loaded = state.find(cell.module, cell.version, cell.kernel->release);
      if (options.install && !options.adopt_only && loaded && loaded->outcome == Outcome::built
          && loaded->input_key == k_prebuilt_key && files_intact(options.root, loaded->built)) {
        cell.input_key = k_prebuilt_key;
        cell.needs_build = true;
        cell.from_built = true;
        report.status = options.dry_run ? CellStatus::would_build : CellStatus::installed;
        report.reason = "installing the loaded prebuilt modules";
        continue;
      }
      report.reason = cell.kernel->missing_headers_reason;
      report.cause = CellCause::no_headers;
      continue;
    }
    if (const auto& best = newest[{cell.module, cell.kernel->release}]; !best.empty() && best != cell.version) {
      report.reason = fmt::format("superseded by {}/{}", cell.module, best);
      report.cause = CellCause::superseded;
      continue;
    }
    if (auto excluded = exclusion_reason(spec, *cell.kernel, !options.explicit_request)) {
      report.reason = *excluded;
      report.cause = spec.wants_autoinstall() || options.explicit_request ? CellCause::excluded : CellCause::autoinstall_off;
      continue;
    }
    const auto& source_hash = source_hashes.at(cell.source);
    if (!source_hash) {
      report.status = CellStatus::failed;
      report.cause = CellCause::build_failed;
      report.reason = source_hash.error();
      continue;
    }
    if (!tools_known) {
      plan.tools = probe_tool_versions(memo);
      tools_known = true;
    }
    PathAliases aliases;
    aliases.add(cell.build_dir, "@build_dir@");
    aliases.add(paths.build_dir / cell.kernel->release, "@dkms_tree@");
    aliases.add(*cell.kernel->headers_dir, "@kernel_source_dir@");
    aliases.add(options.root("/"), "");
    cell.build_key = compute_build_key(*source_hash, spec, *cell.kernel, plan.tools, aliases);
    cell.input_key = compute_input_key(cell.build_key, install_fingerprint(plan.install, *cell.kernel));
    if (adopt_dkms_install(options.root, plan.install, cell, state)) {
      plan.state_changed = true;
      report.status = CellStatus::up_to_date;
      report.reason = "installed by DKMS; adopted";
      continue;
    }
    if (options.adopt_only) {
      continue;
    }
    const CellRecord* record = state.find(cell.module, cell.version, cell.kernel->release);
    // A kept build that is current (same input key, or loaded from a tarball) spares the
    // compiler: `dkms build` finds it done, an install only installs it.
    const bool built_kept = record && !record->built.empty() && files_intact(options.root, record->built);
    const bool kept_is_current =
      built_kept && !options.rebuild
      && ((record->outcome == Outcome::built && record->input_key == k_prebuilt_key)
          || (record->input_key == cell.input_key && record->outcome != Outcome::failed));
    const bool installed_is_current = record && record->input_key == cell.input_key && !options.rebuild
                                      && record->outcome == Outcome::installed && !record->files.empty()
                                      && files_intact(options.root, record->files);
    // Every installed cell has at least one module file: none recorded means not installed.
    if (installed_is_current) {
      report.status = CellStatus::up_to_date;
      report.log = record->log;
      continue;
    }
    if (kept_is_current) {
      report.log = record->log;
      if (!options.install) {
        report.status = CellStatus::up_to_date;
        report.reason = "built";
        continue;
      }
      cell.needs_build = true;
      cell.from_built = true;
      report.status = options.dry_run ? CellStatus::would_build : CellStatus::installed;
      report.reason = record->input_key == k_prebuilt_key ? "installing the loaded prebuilt modules"
                                                          : "installing the kept build";
      continue;
    }
    // Built before with these very inputs (say, for this kernel before it was removed)?
    const std::optional<bool> cached = options.rebuild ? std::nullopt : cache.peek(cell.build_key);
    if (record && record->input_key == cell.input_key && !options.rebuild) {
      // A failure to install (a full disk, a read-only /usr) is the system's, not the
      // build's: with the build in the cache, the next pass installs it again.
      if (record->outcome == Outcome::failed && !options.retry && !cached.value_or(false)) {
        report.status = CellStatus::failed;
        report.cause = record->reason.starts_with("make") || !record->first_error.empty() ? CellCause::build_failed
                                                                                           : CellCause::install_failed;
        report.remembered = true;
        report.reason = record->reason;
        report.first_error = record->first_error;
        report.log = record->log;
        continue;
      }
    }
    cell.needs_build = true;
    report.status = options.dry_run        ? CellStatus::would_build
                    : options.install      ? CellStatus::installed
                                           : CellStatus::built;
    if (cached && (*cached || !options.retry)) {
      report.reason = !*cached          ? "a failure in the build cache"
                      : options.install ? "installing from the build cache"
                                        : "in the build cache";
      continue;
    }
    report.reason = options.rebuild && record ? "rebuild asked for"
                    : !record ? "new"
                    : record->input_key != cell.input_key ? "inputs changed"
                    : record->outcome == Outcome::failed  ? "retrying a failed build"
                                                          : "installed files missing or changed";
  }

  // BUILD_DEPENDS: a cell waits for the cells of the same kernel it names; a name with no
  // buildable cell there leaves it skipped.
  for (auto& cell : plan.cells) {
    if (!cell.needs_build) {
      continue;
    }
    std::vector<std::string> missing;
    for (const auto& dependency : cell.spec->build_depends) {
      bool found = false;
      for (std::size_t j = 0; j < plan.cells.size(); ++j) {
        const PassCell& other = plan.cells[j];
        if (other.kernel == cell.kernel && other.module == dependency && other.spec
            && (other.needs_build || other.report.status == CellStatus::up_to_date)) {
          found = true;
          if (other.needs_build) {
            cell.depends_on.push_back(j);
          }
        }
      }
      if (!found) {
        missing.push_back(dependency);
      }
    }
    if (!missing.empty()) {
      cell.needs_build = false;
      cell.depends_on.clear();
      cell.report.status = CellStatus::skipped;
      cell.report.cause = CellCause::depends_unmet;
      cell.report.reason = fmt::format("BUILD_DEPENDS not met: {} is not installed for {}",
                                       fmt::join(missing, ", "), cell.kernel->release);
    }
  }
  refuse_shared_destinations(plan);
  settle_dependency_cycles(plan.cells);
  LOG("planned {} cells over {} kernels and {} module sources", plan.cells.size(), plan.kernels.size(),
      plan.sources.size());
  return plan;
}

} // namespace kmodsync::detail
