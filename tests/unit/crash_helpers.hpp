// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// Helpers for the crash-safety suite: running the kmodsync command as a child in a process
// group of its own, killing it and everything it left behind, taking snapshots of what is on
// disk, and the checks a killed pass and the passes after it must satisfy. The command's
// own children run in sessions of their own, so killing its group is not enough: what
// survives is found by /proc (cwd or command line under the test's directory) and killed
// until nothing is left that could still write into the root.

#include "fake_system.hpp"

#include "kmodsync/hash.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace kmodsync::test::crash {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using Problems = std::vector<std::string>;
using kmodsync::testing::read_text;
using kmodsync::testing::write_text;

// The fake module that always fails to build.
inline const std::string k_failing = "broken";

// --- Interface: processes and files ---

// Starts `argv` (argv[0] a path or a name looked up in PATH) in a new process group, stdin
// /dev/null, stdout to `out` and stderr to `err` (both truncated). Throws when it cannot.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err);

// Waits for `pid`: its exit code, 128 + signal when a signal ended it, or -1 when it did not
// end within `limit` (then it is killed with its group and reaped).
int wait_for_exit(pid_t pid, std::chrono::milliseconds limit);

// Live processes (not zombies, not this one) whose cwd, executable or command line lies
// under `dir`.
std::vector<pid_t> processes_under(const std::filesystem::path& dir);

// SIGKILLs `leader`'s group and reaps it (0: it was reaped already), then kills whatever
// still runs under `dir` until nothing does. Returns false when something kept running for
// 10 s.
bool kill_everything(pid_t leader, const std::filesystem::path& dir);

// A file name that the kernel's tools take for a module.
bool has_module_suffix(std::string_view name);

// Every regular file with a module suffix under ROOT/usr/lib/modules (links not followed),
// as the managed system names it, with its SHA-256 ("unreadable" when it cannot be read).
std::map<std::string, std::string> module_files(const std::filesystem::path& root);

// Regular files under `dir` (links not followed) whose name contains `needle`.
std::vector<std::filesystem::path> files_containing(const std::filesystem::path& dir, std::string_view needle);

// The strace binary, when there is one in PATH.
std::optional<std::filesystem::path> find_strace();

// --- Implementation: processes and files ---

inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err)
{
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

inline int wait_for_exit(pid_t pid, std::chrono::milliseconds limit)
{
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 && errno != EINTR) {
      return -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace detail {

// Plain read(2): a /proc file of a process that is ending fails with ESRCH, which would make
// an ifstream throw.
inline std::string read_proc(const std::string& path)
{
  std::string text;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return text;
  }
  char buffer[4096];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return text;
}

inline std::string read_link(const std::string& path)
{
  char buffer[4096];
  const ssize_t n = readlink(path.c_str(), buffer, sizeof(buffer));
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

inline bool is_under(const std::string& path, const std::string& dir)
{
  return path == dir || path.starts_with(dir + "/");
}

} // namespace detail

inline std::vector<pid_t> processes_under(const std::filesystem::path& dir)
{
  const std::string base = dir.string();
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return found;
  }
  while (const dirent* entry = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == getpid()) {
      continue;
    }
    const std::string here = "/proc/" + std::string(entry->d_name);
    const std::string stat = detail::read_proc(here + "/stat");
    const auto close_paren = stat.rfind(')');
    if (stat.empty() || close_paren == std::string::npos || close_paren + 2 >= stat.size()
        || stat[close_paren + 2] == 'Z' || stat[close_paren + 2] == 'X') {
      continue;
    }
    std::string cmdline = detail::read_proc(here + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (detail::is_under(detail::read_link(here + "/cwd"), base) || detail::is_under(detail::read_link(here + "/exe"), base)
        || cmdline.find(base + "/") != std::string::npos || cmdline.find(base + " ") != std::string::npos) {
      found.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(proc);
  return found;
}

inline bool kill_everything(pid_t leader, const std::filesystem::path& dir)
{
  if (leader > 0) {
    // While the leader is unreaped its group id cannot be reused: this hits only its group.
    kill(-leader, SIGKILL);
    kill(leader, SIGKILL);
    int status = 0;
    while (waitpid(leader, &status, 0) < 0 && errno == EINTR) {
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = processes_under(dir);
    if (left.empty()) {
      return true;
    }
    for (const pid_t pid : left) {
      kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return processes_under(dir).empty();
}

inline bool has_module_suffix(std::string_view name)
{
  for (const std::string_view suffix : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      return true;
    }
  }
  return false;
}

inline std::map<std::string, std::string> module_files(const std::filesystem::path& root)
{
  namespace fs = std::filesystem;
  std::map<std::string, std::string> files;
  std::error_code ec;
  const fs::path modules = root / "usr/lib/modules";
  for (fs::recursive_directory_iterator it(modules, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec) || !has_module_suffix(it->path().filename().string())) {
      continue;
    }
    const std::string managed = "/" + it->path().lexically_relative(root).string();
    auto hash = sha256_file(it->path());
    files[managed] = hash ? *hash : std::string("unreadable");
  }
  return files;
}

inline std::vector<std::filesystem::path> files_containing(const std::filesystem::path& dir, std::string_view needle)
{
  namespace fs = std::filesystem;
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)
        && it->path().filename().string().find(needle) != std::string::npos) {
      found.push_back(it->path());
    }
  }
  return found;
}

inline std::optional<std::filesystem::path> find_strace()
{
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t colon = std::min(dirs.find(':', start), dirs.size());
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, colon - start)) / "strace";
    if (access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = colon + 1;
  }
  return std::nullopt;
}

// --- Passes and what they must leave ---

// A fake system plus the places the test keeps things outside the root.
struct World
{
  FakeSystem system;
  fs::path logs;
  fs::path stash; // sources taken away
  std::vector<std::string> kernels;
  std::vector<std::string> stamped;  // AUTOINSTALL modules that build
  bool has_failing = false;
  std::optional<fs::path> strace = crash::find_strace();
  int passes = 0;

  World() : logs(base() / "logs"), stash(base() / "stash")
  {
    fs::create_directories(logs);
    fs::create_directories(stash);
  }
  fs::path base() const { return system.root().parent_path(); }
  fs::path source(const std::string& name) const { return system.root() / "usr/src" / (name + "-1.0"); }
  bool present(const std::string& name) const { return fs::exists(source(name) / "dkms.conf"); }
  fs::path state_file() const { return StatePaths(Root(system.root())).state_file; }

  void add_kernel(const std::string& release)
  {
    system.add_kernel(release);
    kernels.push_back(release);
  }

  // A module whose .ko embeds stamp.txt, so a new stamp is a rebuild that installs a
  // different file (the plain fake module builds to the same bytes every time).
  void add_stamped(const std::string& name, double sleep_s)
  {
    system.add_module(name, "1.0", "AUTOINSTALL=yes\n", false, sleep_s);
    write_text(source(name) / "stamp.txt", "0\n");
    kmodsync::test::write_script(
      source(name) / "build.sh",
      "#!/bin/bash\nset -e\nkv=$1\nsleep " + std::to_string(sleep_s) + "\nstamp=$(tr -d '\\n' < stamp.txt)\n"
        "printf '__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=%s SMP mod_unload \";\\n"
        "__attribute__((section(\".modinfo\"), used)) static const char n[] = \"name=" + name + "\";\\n"
        "__attribute__((used)) static const char stamp[] = \"stamp %s\";\\n"
        "int " + name + "_marker = 1;\\n' \"$kv\" \"$stamp\" > " + name + ".c\n"
        "gcc -g -c -o " + name + ".ko " + name + ".c\n");
    stamped.push_back(name);
  }

  void add_failing(double sleep_s)
  {
    system.add_module(k_failing, "1.0", "AUTOINSTALL=yes\n", /*fails=*/true, sleep_s);
    has_failing = true;
  }

  void restamp(const std::string& name, const std::string& stamp) { write_text(source(name) / "stamp.txt", stamp + "\n"); }

  void take_away(const std::string& name) { fs::rename(source(name), stash / (name + "-1.0")); }
  void bring_back(const std::string& name) { fs::rename(stash / (name + "-1.0"), source(name)); }
};

// How strace stretches a pass: each rename / fsync returns only after this long.
struct Stretch
{
  int rename_ms = 0;
  int fsync_ms = 0;
  bool active() const { return rename_ms > 0 || fsync_ms > 0; }
};

inline std::vector<std::string> pass_argv(const World& world, const Stretch& stretch, bool json_output)
{
  std::vector<std::string> argv;
  if (stretch.active()) {
    argv = {world.strace->string(), "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2,fsync,fdatasync"};
    if (stretch.rename_ms > 0) {
      argv.push_back("-e");
      argv.push_back(fmt::format("inject=rename,renameat,renameat2:delay_exit={}ms", stretch.rename_ms));
    }
    if (stretch.fsync_ms > 0) {
      argv.push_back("-e");
      argv.push_back(fmt::format("inject=fsync,fdatasync:delay_exit={}ms", stretch.fsync_ms));
    }
  }
  for (const std::string arg : {KMODSYNC_BINARY, "--root", world.system.root().c_str(), "sync", "-j", "2"}) {
    argv.push_back(arg);
  }
  if (json_output) {
    argv.push_back("--json");
  }
  return argv;
}

struct Completed
{
  int exit_code = -1;
  std::optional<json> report;
  std::string output;    // stdout and stderr, for messages
  bool left_processes = false;
};

// A pass run to its end (one minute at most), its --json report parsed.
inline Completed run_to_completion(World& world)
{
  const int n = ++world.passes;
  const fs::path out = world.logs / fmt::format("pass-{}.out", n);
  const fs::path err = world.logs / fmt::format("pass-{}.err", n);
  const pid_t pid = crash::spawn(pass_argv(world, {}, true), out, err);
  Completed done;
  done.exit_code = crash::wait_for_exit(pid, std::chrono::minutes(1));
  done.left_processes = !crash::processes_under(world.base()).empty();
  crash::kill_everything(0, world.base());
  const std::string text = read_text(out);
  done.output = text + read_text(err);
  try {
    done.report = json::parse(text);
  } catch (const json::exception&) {
  }
  return done;
}

struct Killed
{
  bool condition_met = false;  // false: it ended first or the limit passed
  bool finished_first = false; // the pass ended by itself before the kill
  bool all_stopped = true;     // nothing from it was left running
  double seconds = 0;          // from start to kill (or to its end)
  std::string output;
};

// Starts a pass and SIGKILLs it, its group and everything it started as soon as `kill_now`
// returns true (polled every 2 ms), or after `limit`.
inline Killed run_and_kill(World& world, const Stretch& stretch, const std::function<bool()>& kill_now,
                    std::chrono::milliseconds limit)
{
  const int n = ++world.passes;
  const fs::path out = world.logs / fmt::format("pass-{}.out", n);
  const fs::path err = world.logs / fmt::format("pass-{}.err", n);
  const auto started = Clock::now();
  const pid_t pid = crash::spawn(pass_argv(world, stretch, false), out, err);
  const auto deadline = started + limit;
  Killed killed;
  pid_t leader = pid;
  while (Clock::now() < deadline) {
    if (kill_now()) {
      killed.condition_met = true;
      break;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      killed.finished_first = true;
      leader = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  killed.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  killed.all_stopped = crash::kill_everything(leader, world.base());
  killed.output = read_text(out) + read_text(err);
  return killed;
}

// --- What the state says ---

struct Loaded
{
  std::optional<State> state;
  std::string error;
  // The journal of installs in progress ("pending" in state.json), when the core has one:
  // path -> hashes a pending change will leave there.
  std::map<std::string, std::set<std::string>> pending;
  std::size_t pending_changes = 0;
  std::set<std::string> pending_cells; // "MODULE KERNEL" of each pending change
};

inline Loaded load_state(const World& world)
{
  Loaded loaded;
  auto state = State::load(world.state_file());
  if (!state) {
    loaded.error = state.error();
    return loaded;
  }
  loaded.state = std::move(*state);
  if (fs::exists(world.state_file())) {
    try {
      const json document = json::parse(read_text(world.state_file()));
      for (const auto& change : document.value("pending", json::array())) {
        ++loaded.pending_changes;
        loaded.pending_cells.insert(change.value("module", "") + " " + change.value("kernel", ""));
        for (const auto& file : change.value("files", json::array())) {
          loaded.pending[file.value("path", "")].insert(file.value("sha256", ""));
        }
      }
    } catch (const json::exception& e) {
      loaded.error = fmt::format("State::load accepted {} but it is not JSON: {}", world.state_file().string(), e.what());
    }
  }
  return loaded;
}

inline std::string short_hash(const std::string& hash)
{
  return hash.size() > 12 ? hash.substr(0, 12) : hash;
}

inline std::string disk_hash(const World& world, const std::string& managed)
{
  auto hash = sha256_file(Root(world.system.root())(managed));
  return hash ? *hash : std::string();
}

// "path sha" of every recorded file whose disk content is not the recorded one.
inline std::set<std::string> broken_records(const World& world, const Loaded& loaded)
{
  std::set<std::string> broken;
  if (!loaded.state) {
    return broken;
  }
  for (const auto& cell : loaded.state->cells) {
    for (const auto& file : cell.files) {
      if (disk_hash(world, file.path) != file.sha256) {
        broken.insert(file.path + " " + file.sha256);
      }
    }
  }
  return broken;
}

// Recorded files that are not on disk with their recorded hash, unless the journal names
// what is there or they were already so before the pass (`already_broken`).
inline Problems unexplained_records(const World& world, const Loaded& loaded, const std::set<std::string>& already_broken)
{
  Problems problems;
  if (!loaded.state) {
    return problems;
  }
  for (const auto& cell : loaded.state->cells) {
    for (const auto& file : cell.files) {
      const std::string disk = disk_hash(world, file.path);
      if (disk == file.sha256 || already_broken.contains(file.path + " " + file.sha256)) {
        continue;
      }
      if (const auto it = loaded.pending.find(file.path); it != loaded.pending.end() && it->second.contains(disk)) {
        continue;
      }
      problems.push_back(fmt::format("{}/{} on {} ({}) records {} with sha256 {}, but the disk has {}", cell.module,
                                     cell.version, cell.kernel, to_string(cell.outcome), file.path,
                                     short_hash(file.sha256), disk.empty() ? "no such file" : short_hash(disk)));
    }
  }
  return problems;
}

// --- What the disk says ---

inline std::string kernel_of(const std::string& managed)
{
  const std::string prefix = "/usr/lib/modules/";
  const auto end = managed.find('/', prefix.size());
  return managed.substr(prefix.size(), end - prefix.size());
}

inline std::string module_name_of(const std::string& managed)
{
  const std::string name = fs::path(managed).filename().string();
  return name.substr(0, name.find(".ko"));
}

// Every file with a module suffix is a whole module for its kernel.
inline Problems incomplete_modules(const World& world)
{
  Problems problems;
  for (const auto& [managed, hash] : crash::module_files(world.system.root())) {
    const auto info = verify_module(Root(world.system.root())(managed), kernel_of(managed), module_name_of(managed));
    if (!info) {
      problems.push_back(fmt::format("{} is not a complete module: {}", managed, info.error()));
    }
  }
  return problems;
}

// Each module file after the killed pass is as it was before it or as it is after the next
// one (absent counts as a content). Files of `exempt` modules are not compared.
inline Problems neither_before_nor_after(const std::map<std::string, std::string>& before,
                                  const std::map<std::string, std::string>& killed,
                                  const std::map<std::string, std::string>& after,
                                  const std::set<std::string>& exempt)
{
  auto content = [](const std::map<std::string, std::string>& files, const std::string& path) {
    const auto it = files.find(path);
    return it == files.end() ? std::string("absent") : short_hash(it->second);
  };
  std::set<std::string> paths;
  for (const auto* files : {&before, &killed, &after}) {
    for (const auto& [path, hash] : *files) {
      paths.insert(path);
    }
  }
  Problems problems;
  for (const auto& path : paths) {
    if (exempt.contains(module_name_of(path))) {
      continue;
    }
    const std::string now = content(killed, path);
    if (now != content(before, path) && now != content(after, path)) {
      problems.push_back(fmt::format("{} is {} after the kill, but was {} before and is {} after the next pass", path,
                                     now, content(before, path), content(after, path)));
    }
  }
  return problems;
}

inline std::vector<std::string> relative_names(const World& world, const std::vector<fs::path>& files)
{
  std::vector<std::string> names;
  for (const auto& file : files) {
    names.push_back("/" + file.lexically_relative(world.system.root()).string());
  }
  return names;
}

// --- After a pass that ran to its end ---

struct Convergence
{
  Problems failed;        // bad exit, error in the report, module not installed, depmod not done
  Problems disagree;      // a recorded file is not on disk as recorded
  Problems orphans;       // a module file no record names, or a journal entry left
  Problems temp_modules;  // *.kmodsync-* under usr/lib/modules
  Problems temp_state;    // *.kmodsync-* beside state.json
  Problems not_idle;      // a further pass still had work
  Problems survivors;     // a completed pass left processes running
  // Set when a known core bug showed up ("text-file-busy": a build failed with ETXTBSY;
  // "empty-record": a cell recorded as installed with no files): the other problems of this
  // convergence may be its consequences.
  std::string known_bug;
};

inline void check_report(const Completed& run, const char* which, Problems& problems, bool idle, std::string& known_bug)
{
  if (run.left_processes) {
    problems.push_back(fmt::format("the {} pass left processes running", which));
  }
  if (!run.report) {
    problems.push_back(fmt::format("the {} pass exited {} without a JSON report: {}", which, run.exit_code, run.output));
    return;
  }
  const json& report = *run.report;
  std::set<std::string> failed_modules;
  for (const auto& cell : report.value("cells", json::array())) {
    const std::string module = cell.value("module", "");
    const std::string status = cell.value("status", "");
    const std::string where = fmt::format("{}/{} on {}", module, cell.value("version", ""), cell.value("kernel", ""));
    if (status == "failed") {
      failed_modules.insert(module);
      if (module != k_failing) {
        std::string tail;
        const fs::path log = cell.value("log", "");
        if (!log.empty() && fs::exists(log)) {
          const std::string text = read_text(log);
          if (text.find("Text file busy") != std::string::npos) {
            known_bug = "text-file-busy";
          }
          const auto lines = kmodsync::testing::split_at_newlines(text);
          for (std::size_t i = lines.size() > 4 ? lines.size() - 4 : 0; i < lines.size(); ++i) {
            tail += "\n      | " + lines[i];
          }
        }
        problems.push_back(fmt::format("the {} pass failed {}: {}{}", which, where, cell.value("reason", ""), tail));
      } else if (idle && !cell.value("remembered", false)) {
        problems.push_back(fmt::format("the {} pass rebuilt the known failure {}", which, where));
      }
    } else if (idle && status != "up-to-date" && status != "skipped") {
      problems.push_back(fmt::format("the {} pass still found work: {} is {} ({})", which, where, status,
                                     cell.value("reason", "")));
    }
  }
  for (const auto& message : report.value("errors", json::array())) {
    problems.push_back(fmt::format("the {} pass reported: {}", which, message.get<std::string>()));
  }
  const bool any_failed = !failed_modules.empty() || !report.value("errors", json::array()).empty();
  if (run.exit_code != (any_failed ? 1 : 0)) {
    problems.push_back(fmt::format("the {} pass exited {} (expected {}: 1 only for failed cells or errors)", which,
                                   run.exit_code, any_failed ? 1 : 0));
  }
}

// Runs the next pass to its end, checks that state and disk agree, then a further pass that
// must find nothing to do.
inline Convergence converge(World& world)
{
  Convergence result;
  const Completed next = run_to_completion(world);
  check_report(next, "next", result.failed, false, result.known_bug);
  // A module that kmodsync wrote but failed to record is "left alone" when its cell goes:
  // that is the orphan problem, not a failure to converge of its own.
  std::erase_if(result.failed, [&](const std::string& problem) {
    if (problem.find("alone: it changed since kmodsync installed it") == std::string::npos) {
      return false;
    }
    result.orphans.push_back(problem);
    return true;
  });
  if (next.left_processes) {
    result.survivors.push_back("the next pass left processes running");
  }

  const Loaded loaded = load_state(world);
  if (!loaded.state) {
    result.failed.push_back("state does not load after the next pass: " + loaded.error);
    return result;
  }
  State state = *loaded.state;
  const Root root(world.system.root());
  std::set<std::string> recorded;
  for (const auto& cell : state.cells) {
    for (const auto& file : cell.files) {
      recorded.insert(file.path);
    }
  }
  // After a pass that ended, the journal explains nothing: records alone must be true.
  Loaded records_only;
  records_only.state = loaded.state;
  result.disagree = unexplained_records(world, records_only, {});
  for (const auto& [path, hash] : crash::module_files(world.system.root())) {
    if (!recorded.contains(path)) {
      result.orphans.push_back(fmt::format("{} is on disk but no cell records it", path));
    }
  }
  if (loaded.pending_changes > 0) {
    result.orphans.push_back(fmt::format("{} pending install(s) still journaled", loaded.pending_changes));
  }
  for (const auto& name : relative_names(world, crash::files_containing(world.system.root() / "usr/lib/modules", ".kmodsync-"))) {
    result.temp_modules.push_back(name + " left behind");
  }
  for (const auto& name : relative_names(world, crash::files_containing(world.state_file().parent_path(), "state.json.kmodsync-"))) {
    result.temp_state.push_back(name + " left behind");
  }
  if (!state.depmod_pending.empty()) {
    result.failed.push_back(fmt::format("depmod still pending for {}", fmt::join(state.depmod_pending, ", ")));
  }

  // Every AUTOINSTALL module whose source is there is installed for every kernel, and
  // modules.dep knows it.
  for (const auto& kernel : world.kernels) {
    const fs::path modules_dir = world.system.root() / "usr/lib/modules" / kernel;
    std::string dep;
    if (fs::exists(modules_dir / "modules.dep")) {
      dep = "\n" + read_text(modules_dir / "modules.dep");
    }
    for (const auto& name : world.stamped) {
      if (!world.present(name)) {
        continue;
      }
      const CellRecord* cell = state.find(name, "1.0", kernel);
      if (cell != nullptr && cell->outcome == Outcome::installed && cell->files.empty() && result.known_bug.empty()) {
        result.known_bug = "empty-record";
      }
      if (cell == nullptr || cell->outcome != Outcome::installed || cell->files.empty()) {
        result.failed.push_back(fmt::format("{} is not installed for {} ({})", name, kernel,
                                            cell ? to_string(cell->outcome) + std::string(": ") + cell->reason
                                                 : std::string("no record")));
        continue;
      }
      for (const auto& file : cell->files) {
        const std::string relative = fs::path(file.path).lexically_relative("/usr/lib/modules/" + kernel).string();
        if (dep.find("\n" + relative + ":") == std::string::npos) {
          result.failed.push_back(fmt::format("modules.dep of {} does not list {}", kernel, relative));
        }
      }
    }
    for (const auto& line : kmodsync::testing::split_at_newlines(dep)) {
      const std::string entry = line.substr(0, line.find(':'));
      if (entry.starts_with("updates/") && !fs::exists(modules_dir / entry)) {
        result.failed.push_back(fmt::format("modules.dep of {} lists {}, which is not there", kernel, entry));
      }
    }
    if (world.has_failing && world.present(k_failing)) {
      const CellRecord* cell = state.find(k_failing, "1.0", kernel);
      if (cell == nullptr || cell->outcome != Outcome::failed) {
        result.failed.push_back(fmt::format("{} on {} is not recorded as failed", k_failing, kernel));
      }
    }
  }

  const Completed further = run_to_completion(world);
  check_report(further, "further", result.not_idle, true, result.known_bug);
  return result;
}


inline std::string listed(const Problems& problems)
{
  return problems.empty() ? std::string("none") : fmt::format("\n  {}", fmt::join(problems, "\n  "));
}

inline void check_converged(const Convergence& result, bool with_orphans)
{
  CHECK_MESSAGE(result.failed.empty(), listed(result.failed));
  CHECK_MESSAGE(result.disagree.empty(), listed(result.disagree));
  CHECK_MESSAGE(result.not_idle.empty(), listed(result.not_idle));
  CHECK_MESSAGE(result.survivors.empty(), listed(result.survivors));
  if (with_orphans) {
    CHECK_MESSAGE(result.orphans.empty(), listed(result.orphans));
  }
}

} // namespace kmodsync::test::crash
