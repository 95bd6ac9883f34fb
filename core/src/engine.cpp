// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/engine.hpp"

#include "build_order.hpp"
#include "pass_cell.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/build_cache.hpp"
#include "kmodsync/build_cell.hpp"
#include "kmodsync/dkms_import.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/initramfs.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/jobserver.hpp"
#include "kmodsync/lock.hpp"
#include "kmodsync/memo.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/remote_cache.hpp"
#include "kmodsync/log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

namespace kmodsync {

namespace fs = std::filesystem;
using detail::PassCell;
using detail::PassPlan;
using detail::Confinement;

const char* to_string(CellStatus status)
{
  switch (status) {
  case CellStatus::installed:
    return "installed";
  case CellStatus::up_to_date:
    return "up-to-date";
  case CellStatus::skipped:
    return "skipped";
  case CellStatus::failed:
    return "failed";
  case CellStatus::would_build:
    return "would-build";
  case CellStatus::removed:
    return "removed";
  case CellStatus::built:
    return "built";
  }
  return "skipped";
}

bool PassReport::any_failed() const
{
  return !errors.empty() || std::any_of(cells.begin(), cells.end(), [](const CellReport& cell) {
           return cell.status == CellStatus::failed;
         });
}

namespace {

unsigned default_jobs()
{
  const unsigned cpus = std::thread::hardware_concurrency();
  return cpus == 0 ? 1 : cpus;
}

// The build half of a pass: a pool of workers, each taking a jobserver token per cell.
class BuildQueue
{
public:
  BuildQueue(const PassOptions& options, PassPlan& plan, State& state, Reporter& reporter, const Jobserver& jobserver,
             const BuildCache& cache, const RemoteCache& remote, const Confinement& confinement, Memo& memo)
    : m_options(options), m_plan(plan), m_state(state), m_reporter(reporter), m_jobserver(jobserver),
      m_cache(cache), m_remote(remote), m_confinement(confinement), m_order(memo, plan), m_paths(options.root)
  {
    for (std::size_t i = 0; i < plan.cells.size(); ++i) {
      if (plan.cells[i].needs_build) {
        m_pending.push_back(i);
      }
    }
  }

  void run(unsigned workers)
  {
    std::vector<std::thread> threads;
    workers = std::max(1u, std::min<unsigned>(workers, static_cast<unsigned>(m_pending.size())));
    for (unsigned i = 0; i < workers && !m_pending.empty(); ++i) {
      threads.emplace_back([this] { work(); });
    }
    for (auto& thread : threads) {
      thread.join();
    }
  }

  std::vector<std::string> errors() const { return m_errors; }

private:
  // The ready cell (its dependencies done) expected to compile longest; cells whose
  // dependencies failed are settled as skipped on the way. Called with the mutex held.
  std::optional<std::size_t> take_ready()
  {
    auto best = m_pending.end();
    for (auto it = m_pending.begin(); it != m_pending.end(); ++it) {
      PassCell& cell = m_plan.cells[*it];
      bool ready = true;
      std::string failed_dependency;
      for (const std::size_t dependency : cell.depends_on) {
        const PassCell& other = m_plan.cells[dependency];
        const bool coming = std::find(m_pending.begin(), m_pending.end(), dependency) != m_pending.end()
                            || m_running.contains(dependency);
        if (!m_done.contains(dependency) && coming) {
          ready = false;
        } else if (!m_done.contains(dependency)
                   || (other.report.status != CellStatus::installed && other.report.status != CellStatus::built)) {
          // Never built in this pass (the planner settles that; this is the backstop
          // against waiting for ever) or failed.
          failed_dependency = other.module;
        }
      }
      if (!failed_dependency.empty()) {
        cell.needs_build = false;
        cell.report.status = CellStatus::skipped;
        cell.report.cause = CellCause::depends_unmet;
        cell.report.reason = fmt::format("BUILD_DEPENDS not met: {} failed for {}", failed_dependency, cell.kernel->release);
        const std::size_t index = *it;
        m_pending.erase(it);
        m_done.insert(index);
        record_skip(cell);
        m_reporter.cell_finished(cell.report);
        m_changed.notify_all();
        return take_ready();
      }
      if (ready && (best == m_pending.end() || m_order.estimate(*it) > m_order.estimate(*best))) {
        best = it;
      }
    }
    if (best == m_pending.end()) {
      return std::nullopt;
    }
    const std::size_t index = *best;
    m_pending.erase(best);
    return index;
  }

  void work()
  {
    while (true) {
      std::size_t index = 0;
      {
        std::unique_lock lock(m_mutex);
        while (true) {
          if (m_pending.empty()) {
            return;
          }
          if (auto ready = take_ready()) {
            index = *ready;
            break;
          }
          if (m_pending.empty()) {
            return;
          }
          m_changed.wait(lock);
        }
        m_running.insert(index);
        m_reporter.cell_started(m_plan.cells[index].report);
      }
      build_and_install(m_plan.cells[index]);
      {
        const std::lock_guard lock(m_mutex);
        m_running.erase(index);
        m_done.insert(index);
        m_reporter.cell_finished(m_plan.cells[index].report);
      }
      m_changed.notify_all();
    }
  }

  void build_and_install(PassCell& cell)
  {
    CellReport& report = cell.report;
    report.log = m_options.root.managed(cell.log_file);
    if (auto token = m_jobserver.acquire(); !token) {
      report.status = CellStatus::failed;
      report.cause = CellCause::build_failed;
      report.reason = token.error();
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<InstalledFile> kept;
    BuildResult result;
    if (cell.from_built) {
      const std::lock_guard lock(m_mutex);
      kept = m_state.find(cell.module, cell.version, cell.kernel->release)->built;
    }
    std::optional<CachedResult> cached;
    bool from_remote = false;
    bool upload = false;
    bool built_as_root = false;
    bool compiled = false;
    if (!cell.from_built && !m_options.rebuild) {
      cached = m_cache.lookup(cell.build_key);
      if (!cached) {
        cached = fetch_remote(cell);
        from_remote = cached.has_value();
      }
      if (cached && !cached->ok && m_options.retry) {
        cached.reset();
        from_remote = false;
      }
    }
    if (cell.from_built) {
      result = unpack_kept_build(cell, kept);
    } else if (cached && cached->ok) {
      // Built before with the very same inputs (e.g. for this kernel before it was removed).
      kept = cached->modules;
      result = unpack_kept_build(cell, kept);
    } else if (cached) {
      result.ok = false;
      result.failure = cached->reason;
      result.first_error = cached->first_error;
      report.remembered = true;
      if (!cached->log.empty()) {
        report.log = cached->log;
      }
    } else {
      BuildRequest request;
      request.spec = &*cell.spec;
      request.source = cell.source;
      request.kernel = cell.kernel;
      request.build_dir = cell.build_dir;
      request.log_file = cell.log_file;
      request.jobserver = &m_jobserver;
      request.timeout = m_options.build_timeout;
      request.sandbox = m_confinement.for_build(cell.spec->name, cell.build_dir);
      built_as_root = !request.sandbox && m_confinement.sandbox;
      result = build_cell(request);
      compiled = true;
      // Kept stripped, as DKMS keeps its built modules: smaller, and what gets installed.
      for (std::size_t i = 0; result.ok && i < result.modules.size() && i < cell.spec->modules.size(); ++i) {
        // What the build left must be a module before anything (strip) works on it.
        if (auto info = read_module_info(result.modules[i]); !info) {
          result.ok = false;
          result.failure = info.error();
        } else if (cell.spec->modules[i].strip) {
          if (auto stripped = strip_module(result.modules[i]); !stripped) {
            result.ok = false;
            result.failure = stripped.error();
          }
        }
      }
      // Successes and failures alike go to the cache under the cell's build key.
      auto stored = m_cache.store(cell.build_key, result.ok, result.ok ? result.modules : std::vector<fs::path>{},
                                  cell.log_file, result.failure, result.first_error);
      upload = stored.has_value();
      if (stored && result.ok) {
        kept = std::move(stored->modules);
      } else if (!stored && result.ok && !m_options.install) {
        result.ok = false;
        result.failure = stored.error();
      } else if (!stored) {
        LOG("{}/{} on {}: {}", cell.module, cell.version, cell.kernel->release, stored.error());
      }
    }
    m_jobserver.release();
    if (compiled && result.ok) {
      const std::lock_guard lock(m_mutex);
      m_order.compiled(cell, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (upload) {
      upload_result(cell);
    }
    const bool built_ok = result.ok;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    CellRecord record;
    record.module = cell.module;
    record.version = cell.version;
    record.kernel = cell.kernel->release;
    record.source_dir = m_options.root.managed(cell.source->dir);
    record.input_key = cell.input_key;
    record.log = report.log;
    record.time = std::time(nullptr);
    record.built = kept;
    if (!cell.from_built && !result.ok) {
      // The build the cell kept before is of other inputs and nothing refers to it now.
      const std::lock_guard lock(m_mutex);
      if (const CellRecord* old = m_state.find(cell.module, cell.version, cell.kernel->release)) {
        discard_kept_build(m_options.root, *old);
      }
    }

    std::vector<InstalledFile> previous;
    std::vector<DisplacedFile> previous_displaced;
    std::set<std::string> ours;
    {
      const std::lock_guard lock(m_mutex);
      if (const CellRecord* old = m_state.find(cell.module, cell.version, cell.kernel->release)) {
        previous = old->files;
        previous_displaced = old->displaced;
      }
      ours = owned_paths(cell.kernel->release);
    }
    bool obsolete = false;
    std::optional<PendingChange> journaled;
    if (result.ok && !m_options.install) {
      // `dkms build`: the kept modules are the result; what is installed stays as it was.
      for (std::size_t i = 0; i < result.modules.size() && i < cell.spec->modules.size(); ++i) {
        if (auto verified = verify_module(result.modules[i], cell.kernel->release, cell.spec->modules[i].built_name);
            !verified) {
          result.ok = false;
          result.failure = verified.error();
        }
      }
      if (result.ok) {
        record.outcome = Outcome::built;
        record.files = previous;
        record.displaced = previous_displaced;
        report.status = CellStatus::built;
        report.reason = fmt::format("built in {:.1f} s", report.seconds);
        [[maybe_unused]] auto removed = util::remove_tree(cell.build_dir.parent_path());
        const std::lock_guard lock(m_mutex);
        m_state.put(std::move(record));
        save_state();
        return;
      }
    } else if (result.ok) {
      auto prepared = prepare_install(m_plan.install, *cell.spec, *cell.kernel, result.modules, ours);
      if (!prepared) {
        result.ok = false;
        result.failure = prepared.error();
      } else if (!prepared->obsolete_reason.empty()) {
        obsolete = true;
        record.outcome = Outcome::skipped;
        record.reason = prepared->obsolete_reason;
        record.input_key.clear();
        record.files = previous;
        record.displaced = previous_displaced;
        report.status = CellStatus::skipped;
        report.cause = CellCause::newer_installed;
        report.reason = prepared->obsolete_reason;
      } else {
        PendingChange change = plan_placement(m_options.root, *prepared, cell.kernel->release, ours, previous);
        change.module = cell.module;
        change.version = cell.version;
        {
          // Journal first, and take the files about to change out of every record: a pass
          // killed while placing leaves records that are true and a journal that is complete.
          const std::lock_guard lock(m_mutex);
          m_state.pending.push_back(change);
          if (CellRecord* old = m_state.find(cell.module, cell.version, cell.kernel->release)) {
            old->files.clear();
          }
          take_over_files(cell.kernel->release, cell.module, change.files);
          save_state();
        }
        journaled = change;
        auto placed = place_modules(m_options.root, *prepared, change);
        if (placed) {
          record.outcome = Outcome::installed;
          for (const auto& file : change.files) {
            record.files.push_back(with_stat(m_options.root, file));
          }
          record.displaced = previous_displaced;
          record.displaced.insert(record.displaced.end(), change.displaced.begin(), change.displaced.end());
          report.status = CellStatus::installed;
          report.reason = cell.from_built       ? std::string("installed the kept build")
                          : from_remote          ? std::string("installed from the remote cache")
                          : cached && cached->ok ? std::string("installed from the build cache")
                          : built_as_root ? fmt::format("built in {:.1f} s, as root (build_as_root, {})", report.seconds,
                                                        m_confinement.as_root_origin)
                                          : fmt::format("built in {:.1f} s", report.seconds);
          // The build tree served its purpose; a failed one is kept for inspection.
          [[maybe_unused]] auto removed = util::remove_tree(cell.build_dir.parent_path());
          std::error_code ec;
          fs::remove(cell.build_dir.parent_path().parent_path(), ec); // only if empty
        } else {
          result.ok = false;
          result.failure = placed.error();
        }
      }
    }
    if (!result.ok) {
      record.outcome = Outcome::failed;
      record.reason = result.failure;
      record.first_error = result.first_error;
      // A failed build leaves the previous install in place: keep tracking those files. A
      // failed placement is settled from its journal entry below: whatever is on disk.
      record.files = journaled ? std::vector<InstalledFile>{} : previous;
      record.displaced = previous_displaced;
      report.status = CellStatus::failed;
      report.cause = built_ok ? CellCause::install_failed : CellCause::build_failed;
      report.reason = result.failure;
      report.first_error = result.first_error;
    }

    const std::lock_guard lock(m_mutex);
    if (journaled && !result.ok) {
      m_state.put(record);
      detail::settle_change(m_options.root, m_state, *journaled);
      CellRecord* settled = m_state.find(cell.module, cell.version, cell.kernel->release);
      record.files = settled->files;
      record.displaced = settled->displaced;
    }
    if (result.ok && !obsolete) {
      m_state.depmod_pending.insert(cell.kernel->release);
      auto& initramfs = m_state.initramfs_pending[cell.kernel->release];
      for (const auto& name : module_names(record.files)) {
        initramfs.insert(name);
      }
      if (cell.spec->remake_initrd) {
        initramfs.insert("*");
      }
    }
    std::erase_if(m_state.pending, [&](const PendingChange& change) {
      return change.module == record.module && change.version == record.version && change.kernel == record.kernel;
    });
    m_state.put(std::move(record));
    save_state();
  }

  // Copies of the kept modules in the cell's work directory: installing strips them in place.
  BuildResult unpack_kept_build(const PassCell& cell, std::vector<InstalledFile> kept)
  {
    BuildResult result;
    // In the spec's order (kept files are named "INDEX-NAME.ko"; a loaded tarball's are in
    // its own order): by built module name where one matches.
    std::vector<InstalledFile> ordered;
    for (const auto& module : cell.spec->modules) {
      const auto match = std::find_if(kept.begin(), kept.end(), [&](const InstalledFile& file) {
        const std::string name = fs::path(file.path).filename().string();
        const auto dash = name.find('-');
        return dash != std::string::npos
               && (name.substr(dash + 1) == module.built_name + ".ko" || name.substr(dash + 1) == module.dest_name + ".ko");
      });
      if (match != kept.end()) {
        ordered.push_back(*match);
        kept.erase(match);
      }
    }
    ordered.insert(ordered.end(), kept.begin(), kept.end());
    kept = std::move(ordered);
    const fs::path dir = cell.build_dir.parent_path() / "install";
    if (auto cleared = util::remove_tree(dir); !cleared) {
      result.failure = cleared.error();
      return result;
    }
    for (const auto& file : kept) {
      auto content = util::read_file(m_options.root(file.path));
      const fs::path copy = dir / fs::path(file.path).filename();
      if (!content) {
        result.failure = content.error();
        return result;
      }
      if (auto made = util::ensure_directory(dir); !made) {
        result.failure = made.error();
        return result;
      }
      if (auto written = write_file_atomically(copy, *content, 0644); !written) {
        result.failure = written.error();
        return result;
      }
      result.modules.push_back(copy);
    }
    result.ok = true;
    return result;
  }

  // Every path kmodsync recorded or is about to place for a kernel. Mutex held.
  std::set<std::string> owned_paths(const std::string& kernel) const
  {
    std::set<std::string> paths;
    for (const auto& record : m_state.cells) {
      if (record.kernel == kernel) {
        for (const auto& file : record.files) {
          paths.insert(file.path);
        }
      }
    }
    for (const auto& change : m_state.pending) {
      if (change.kernel == kernel) {
        for (const auto& file : change.files) {
          paths.insert(file.path);
        }
      }
    }
    return paths;
  }

  // Another version of the same module on the same kernel loses the paths this cell is
  // about to own. Mutex held.
  void take_over_files(const std::string& kernel, const std::string& module, const std::vector<InstalledFile>& files)
  {
    std::set<std::string> paths;
    for (const auto& file : files) {
      paths.insert(file.path);
    }
    for (auto& other : m_state.cells) {
      if (other.module == module && other.kernel == kernel) {
        std::erase_if(other.files, [&](const InstalledFile& file) { return paths.contains(file.path); });
      }
    }
  }

  void record_skip(const PassCell& cell)
  {
    CellRecord record;
    record.module = cell.module;
    record.version = cell.version;
    record.kernel = cell.kernel->release;
    record.source_dir = m_options.root.managed(cell.source->dir);
    record.outcome = Outcome::skipped;
    record.reason = cell.report.reason;
    record.time = std::time(nullptr);
    if (const CellRecord* old = m_state.find(cell.module, cell.version, cell.kernel->release)) {
      record.files = old->files;
    }
    m_state.put(std::move(record));
  }

  // A build result from the fleet's store, once it is verified for this very cell: whole,
  // hashes right, and every module the one the spec names, for this kernel (libkmod).
  std::optional<CachedResult> fetch_remote(const PassCell& cell)
  {
    if (!m_remote.enabled() || m_remote_down) {
      return std::nullopt;
    }
    auto object = m_remote.get(cell.build_key);
    if (!object) {
      remote_failed(object.error());
      return std::nullopt;
    }
    if (!*object) {
      return std::nullopt;
    }
    const auto accept = [&](const CachedResult& result) -> Expected<void> {
      if (!result.ok) {
        return {};
      }
      if (result.modules.size() != cell.spec->modules.size()) {
        return error("it holds {} modules, the spec names {}", result.modules.size(), cell.spec->modules.size());
      }
      for (std::size_t i = 0; i < result.modules.size(); ++i) {
        const fs::path module = m_options.root(result.modules[i].path);
        if (auto verified = verify_module(module, cell.kernel->release, cell.spec->modules[i].built_name); !verified) {
          return std::unexpected(verified.error());
        }
      }
      return {};
    };
    auto imported = m_cache.import_entry(cell.build_key, **object, accept);
    if (!imported) {
      const std::lock_guard lock(m_mutex);
      m_reporter.note(fmt::format("remote cache: the object for {}/{} on {} was rejected ({}); building it instead",
                                  cell.module, cell.version, cell.kernel->release, imported.error()));
      return std::nullopt;
    }
    return *imported;
  }

  void upload_result(const PassCell& cell)
  {
    if (!m_remote.writable() || m_remote_down) {
      return;
    }
    auto object = m_cache.export_entry(cell.build_key);
    if (!object) {
      LOG("{}/{} on {}: {}", cell.module, cell.version, cell.kernel->release, object.error());
      return;
    }
    if (auto stored = m_remote.put(cell.build_key, *object); !stored) {
      remote_failed(stored.error());
    }
  }

  // A store that does not answer is not asked again in this pass: one message, and the
  // pass goes on as if there were none.
  void remote_failed(const std::string& message)
  {
    if (!m_remote_down.exchange(true)) {
      const std::lock_guard lock(m_mutex);
      m_reporter.note(fmt::format("{}; not used for the rest of this pass", message));
    }
  }

  // After every cell, so a killed pass loses at most the cells that were running.
  void save_state()
  {
    if (auto saved = m_state.save(m_paths.state_file); !saved) {
      m_errors.push_back(saved.error());
    }
  }

  const PassOptions& m_options;
  PassPlan& m_plan;
  State& m_state;
  Reporter& m_reporter;
  const Jobserver& m_jobserver;
  const BuildCache& m_cache;
  const RemoteCache& m_remote;
  const Confinement& m_confinement;
  detail::BuildOrder m_order;
  std::atomic<bool> m_remote_down = false;
  StatePaths m_paths;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<std::size_t> m_pending;
  std::set<std::size_t> m_done;
  std::set<std::size_t> m_running;
  std::vector<std::string> m_errors;
};

// Records the outcome of a cell that needed no build. Returns true if the state changed.
bool record_unbuilt(const Root& root, State& state, const PassCell& cell)
{
  const CellReport& report = cell.report;
  CellRecord* old = state.find(cell.module, cell.version, cell.kernel->release);
  if (report.status == CellStatus::up_to_date || report.remembered) {
    return false;
  }
  CellRecord record;
  record.module = cell.module;
  record.version = cell.version;
  record.kernel = cell.kernel->release;
  record.source_dir = root.managed(cell.source->dir);
  record.outcome = report.status == CellStatus::failed ? Outcome::failed : Outcome::skipped;
  record.reason = report.reason;
  record.log = report.log;
  if (old) {
    // Skipping never uninstalls: files stay tracked so that a later removal finds them.
    record.files = old->files;
    record.built = old->built;
    if (old->outcome == record.outcome && old->reason == record.reason && old->input_key.empty()) {
      return false;
    }
  }
  record.time = std::time(nullptr);
  state.put(std::move(record));
  return true;
}

// Uninstalls records whose kernel or source is gone; kernels that lost files need depmod.
// The records leave the state, as journal entries, before any file is deleted.
void prune(const PassOptions& options, const PassPlan& plan, State& state, PassReport& report, Reporter& reporter)
{
  std::set<std::string> kernels;
  std::set<std::string> sources;
  for (const auto& kernel : plan.kernels) {
    kernels.insert(kernel.release);
  }
  for (const auto& source : plan.sources) {
    sources.insert(options.root.managed(source.dir));
  }
  std::vector<PendingChange> removals;
  std::vector<CellRecord> removed_records;
  std::erase_if(state.cells, [&](const CellRecord& record) {
    const bool kernel_in_scope = options.kernels.empty()
                                 || std::find(options.kernels.begin(), options.kernels.end(), record.kernel)
                                      != options.kernels.end();
    const bool kernel_gone = options.kernels.empty() && !kernels.contains(record.kernel);
    // Narrowed to some modules (a package of one module source was upgraded or erased),
    // their versions whose source went away are pruned too.
    const bool module_in_scope =
      options.modules.empty() || std::any_of(options.modules.begin(), options.modules.end(), [&](const std::string& m) {
        return m == record.module || m == record.module + "/" + record.version;
      });
    const bool source_gone = kernel_in_scope && module_in_scope && !sources.contains(record.source_dir);
    if (!kernel_gone && !source_gone) {
      return false;
    }
    removals.push_back(uninstall_change(record));
    removed_records.push_back(record);
    if (!record.files.empty() && !kernel_gone) {
      state.depmod_pending.insert(record.kernel);
      for (const auto& name : module_names(record.files)) {
        state.initramfs_pending[record.kernel].insert(name);
      }
    }
    CellReport cell;
    cell.module = record.module;
    cell.version = record.version;
    cell.kernel = record.kernel;
    cell.status = CellStatus::removed;
    cell.reason = kernel_gone ? "kernel is gone" : "module source is gone";
    reporter.cell_finished(cell);
    report.cells.push_back(cell);
    return true;
  });
  if (removals.empty()) {
    return;
  }
  state.pending.insert(state.pending.end(), removals.begin(), removals.end());
  if (auto saved = state.save(StatePaths(options.root).state_file); !saved) {
    report.errors.push_back(saved.error());
    return;
  }
  for (const auto& record : removed_records) {
    discard_kept_build(options.root, record);
  }
  for (const auto& change : removals) {
    for (const auto& warning : apply_removal(options.root, change)) {
      report.errors.push_back(fmt::format("{}/{} on {}: {}", change.module, change.version, change.kernel, warning));
    }
  }
  state.pending.erase(state.pending.end() - static_cast<std::ptrdiff_t>(removals.size()), state.pending.end());
}

Expected<PassReport> run_pass_locked(const PassOptions& options, Reporter& reporter)
{
  const StatePaths paths(options.root);
  auto state = State::load(paths.state_file);
  if (!state) {
    return std::unexpected(state.error());
  }
  // Dry runs read the memo but never write it (or anything else).
  Memo memo(paths.dir / "memo.json");
  auto kernels = discover_kernels(options.root, memo);
  if (!kernels) {
    return std::unexpected(kernels.error());
  }
  detail::InstallSetup setup;
  if (auto ready = detail::setup_install(options, *kernels, setup, reporter); !ready) {
    return std::unexpected(ready.error());
  }
  bool changed = !options.dry_run && detail::repair_after_crash(options.root, *state);
  changed |= import_dkms_tree(options.root, *state);
  auto plan = detail::plan_pass(options, *state, setup.settings, std::move(*kernels), memo, setup.confinement);
  if (!plan) {
    return std::unexpected(plan.error());
  }
  changed |= plan->state_changed;
  PassReport report;
  if (options.adopt_only) {
    if (changed && !options.dry_run) {
      if (auto saved = state->save(paths.state_file); !saved) {
        return std::unexpected(saved.error());
      }
    }
    return report;
  }
  if (options.dry_run) {
    for (const auto& cell : plan->cells) {
      report.cells.push_back(cell.report);
    }
    return report;
  }

  {
    std::vector<CellReport> planned;
    for (const auto& cell : plan->cells) {
      planned.push_back(cell.report);
      if (cell.needs_build) {
        planned.back().status = CellStatus::would_build;
      }
    }
    reporter.pass_planned(planned);
  }
  for (const auto& cell : plan->cells) {
    if (!cell.needs_build) {
      changed |= record_unbuilt(options.root, *state, cell);
      reporter.cell_finished(cell.report);
    }
  }

  const BuildCache cache(options.root, setup.cache_size);
  const bool any_build = std::any_of(plan->cells.begin(), plan->cells.end(), [](const PassCell& c) { return c.needs_build; });
  if (any_build) {
    const unsigned jobs = options.jobs ? options.jobs : setup.jobs ? setup.jobs : default_jobs();
    auto jobserver = Jobserver::create(jobs);
    if (!jobserver) {
      return std::unexpected(jobserver.error());
    }
    const RemoteCache remote(setup.remote);
    BuildQueue queue(options, *plan, *state, reporter, *jobserver, cache, remote, setup.confinement, memo);
    queue.run(jobs);
    for (const auto& message : queue.errors()) {
      report.errors.push_back(message);
    }
    changed = true;
    cache.evict();
  }

  prune(options, *plan, *state, report, reporter);
  changed |= !report.cells.empty();
  for (const auto& cell : plan->cells) {
    report.cells.push_back(cell.report);
  }
  if (options.depmod) {
    changed |= run_pending_depmods(options.root, *state, plan->kernels, report.errors);
  }
  // After depmod: the generators read modules.dep.
  changed |= settle_initramfs(options.root, *state, plan->kernels, setup.initramfs, report.errors);
  if (changed) {
    if (auto saved = state->save(paths.state_file); !saved) {
      report.errors.push_back(saved.error());
    }
  }
  if (auto saved = memo.save(); !saved) {
    LOG("{}", saved.error()); // only a shortcut: the next pass recomputes
  }
  return report;
}

} // namespace

Expected<PassReport> run_pass(const PassOptions& options, Reporter& reporter)
{
  try {
    if (options.dry_run) {
      return run_pass_locked(options, reporter);
    }
    const StatePaths paths(options.root);
    if (auto made = util::ensure_directory(paths.dir); !made) {
      return std::unexpected(made.error());
    }
    auto lock = FileLock::acquire(paths.lock_file, [&] {
      reporter.note("waiting for another kmodsync pass on this root to finish");
    });
    if (!lock) {
      return std::unexpected(lock.error());
    }
    return run_pass_locked(options, reporter);
  } catch (const std::exception& e) {
    return error("internal error during the pass: {}", e.what());
  }
}

} // namespace kmodsync
