// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/process.hpp"

#include "kmodsync/log.hpp"

#include "sandbox_spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kmodsync {

namespace {

using Clock = std::chrono::steady_clock;

// How long to keep reading a finished program's pipes, which a stray background child of
// it may hold open, before its process group is killed.
constexpr std::chrono::milliseconds k_drain_grace{200};

struct Pipe
{
  int read = -1;
  int write = -1;
  ~Pipe() { close_both(); }
  void close_write()
  {
    if (write >= 0) {
      close(write);
      write = -1;
    }
  }
  void close_both()
  {
    close_write();
    if (read >= 0) {
      close(read);
      read = -1;
    }
  }
};

Expected<void> open_pipe(Pipe& pipe)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return error("cannot create a pipe: {}", std::strerror(errno));
  }
  pipe.read = fds[0];
  pipe.write = fds[1];
  return {};
}

// Appends what is readable now; returns false at end of file.
bool read_available(int fd, std::string& into, std::size_t limit, bool& truncated)
{
  char buffer[65536];
  const ssize_t n = ::read(fd, buffer, sizeof(buffer));
  if (n < 0) {
    return errno == EINTR || errno == EAGAIN;
  }
  if (n == 0) {
    return false;
  }
  const std::size_t room = into.size() < limit ? limit - into.size() : 0;
  const std::size_t keep = std::min(room, static_cast<std::size_t>(n));
  into.append(buffer, keep);
  if (keep < static_cast<std::size_t>(n)) {
    truncated = true;
  }
  return true;
}

int wait_for(pid_t pid)
{
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

class SpawnSetup
{
public:
  SpawnSetup()
  {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup()
  {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
};

} // namespace

std::string Completion::describe(std::chrono::milliseconds timeout) const
{
  if (timed_out) {
    return fmt::format("timed out after {} s", timeout.count() / 1000.0);
  }
  if (signal != 0) {
    return fmt::format("killed by signal {} ({})", signal, strsignal(signal));
  }
  return fmt::format("exit status {}", exit_code);
}

std::shared_mutex& spawn_mutex()
{
  static std::shared_mutex mutex;
  return mutex;
}

std::vector<std::string> clean_environment(const std::vector<std::string>& extra)
{
  std::vector<std::string> env = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL=C",
  };
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::optional<std::filesystem::path> find_executable(const std::string& name, const std::vector<std::string>& env)
{
  if (name.find('/') != std::string::npos) {
    return std::filesystem::path(name);
  }
  const auto path = std::find_if(env.begin(), env.end(), [](const std::string& var) { return var.starts_with("PATH="); });
  if (path == env.end()) {
    return std::nullopt;
  }
  std::string_view dirs = std::string_view(*path).substr(5);
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    if (!dir.empty()) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
        return candidate;
      }
    }
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    dirs.remove_prefix(colon + 1);
  }
}

Expected<Completion> run(const Command& command)
{
  if (command.argv.empty()) {
    return error("internal error: empty command");
  }
  Pipe output;
  Pipe side;
  if (command.output_fd < 0) {
    if (auto opened = open_pipe(output); !opened) {
      return std::unexpected(opened.error());
    }
  }
  if (command.side_channel) {
    if (auto opened = open_pipe(side); !opened) {
      return std::unexpected(opened.error());
    }
  }

  SpawnSetup setup;
  auto* actions = &setup.actions;
  posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0);
  const int out_fd = command.output_fd >= 0 ? command.output_fd : output.write;
  posix_spawn_file_actions_adddup2(actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(actions, out_fd, 2);
  if (command.side_channel) {
    posix_spawn_file_actions_adddup2(actions, side.write, 3);
  }
  // Passed descriptors go to fixed numbers. Each is first duplicated above every target
  // so that no dup2 can overwrite a source another one still needs.
  std::vector<int> staged;
  for (const int fd : command.pass_fds) {
    const int copy = fcntl(fd, F_DUPFD_CLOEXEC, Command::k_first_passed_fd + 64);
    if (copy < 0) {
      for (const int done : staged) {
        close(done);
      }
      return error("cannot pass descriptor {} to {}: {}", fd, command.argv[0], std::strerror(errno));
    }
    staged.push_back(copy);
  }
  struct StagedFds
  {
    std::vector<int>& fds;
    ~StagedFds()
    {
      for (const int fd : fds) {
        close(fd);
      }
    }
  } close_staged{staged};
  for (std::size_t i = 0; i < staged.size(); ++i) {
    posix_spawn_file_actions_adddup2(actions, staged[i], Command::k_first_passed_fd + static_cast<int>(i));
  }
  if (!command.side_channel) {
    posix_spawn_file_actions_addclose(actions, 3);
  }
  posix_spawn_file_actions_addclosefrom_np(actions, Command::k_first_passed_fd + static_cast<int>(staged.size()));
  if (!command.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(actions, command.cwd.c_str());
  }

  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  // A session of its own: its own process group (so a timeout kills all it started) and no
  // controlling terminal, so nothing it runs (patch, a Makefile's prompt) can stop on a tty.
  posix_spawnattr_setflags(&setup.attributes,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&setup.attributes, &no_signals);
  posix_spawnattr_setsigdefault(&setup.attributes, &all_signals);

  std::vector<char*> argv;
  for (const auto& arg : command.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& var : command.env) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);

  pid_t pid = 0;
  int spawned = 0;
  // The program on the command's own PATH (posix_spawnp would search kmodsync's).
  const auto program = find_executable(command.argv[0], command.env);
  if (command.sandbox && geteuid() == 0) {
    if (!program) {
      return error("cannot run {}: not found on PATH", command.argv[0]);
    }
    detail::ChildFds fds;
    const auto stage = [&](int fd) {
      const int copy = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, Command::k_first_passed_fd + 64);
      if (copy >= 0) {
        staged.push_back(copy);
      }
      return copy;
    };
    fds.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fds.passed = std::vector<int>(staged.begin(), staged.end());
    fds.out_fd = stage(out_fd);
    fds.side_fd = command.side_channel ? stage(side.write) : -1;
    if (fds.stdin_fd >= 0) {
      staged.push_back(fds.stdin_fd);
    }
    if (fds.stdin_fd < 0 || fds.out_fd < 0 || (command.side_channel && fds.side_fd < 0)) {
      return error("cannot set up the descriptors of {}: {}", command.argv[0], std::strerror(errno));
    }
    // Returns once the child has exec'd, so no descriptor outlives the lock.
    const std::shared_lock lock(spawn_mutex());
    auto started = detail::spawn_sandboxed(program->c_str(), argv.data(), envp.data(), command.cwd.c_str(), fds,
                                           *command.sandbox);
    if (!started) {
      return std::unexpected(started.error());
    }
    pid = *started;
  } else {
    // posix_spawn returns once the child has exec'd, so no descriptor outlives the lock.
    const std::shared_lock lock(spawn_mutex());
    spawned = program ? posix_spawn(&pid, program->c_str(), actions, &setup.attributes, argv.data(), envp.data())
                      : posix_spawnp(&pid, argv[0], actions, &setup.attributes, argv.data(), envp.data());
  }
  // The child has its copies now. The parent's staged ones go at once: a staged copy of the
  // output pipe (the sandboxed path stages it) would keep the pipe from reaching its end
  // when the program exits, and every run would wait out the drain grace.
  for (const int fd : staged) {
    close(fd);
  }
  staged.clear();
  output.close_write();
  side.close_write();
  if (spawned != 0) {
    return error("cannot run {}: {}", command.argv[0], std::strerror(spawned));
  }
  if (log::enabled()) {
    std::string line = fmt::format("{}", fmt::join(command.argv, " "));
    std::replace(line.begin(), line.end(), '\n', ' ');
    LOG("started pid {}: {}", pid, line.size() > 160 ? line.substr(0, 160) + "..." : line);
  }

  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int saved = errno;
    kill(-pid, SIGKILL);
    wait_for(pid);
    return error("cannot watch {} (pidfd_open): {}", command.argv[0], std::strerror(saved));
  }

  Completion completion;
  const auto start = Clock::now();
  const auto deadline = start + command.timeout;
  bool exited = false;
  Clock::time_point drain_deadline{};
  while (true) {
    const auto now = Clock::now();
    if (!exited && command.timeout.count() > 0 && now >= deadline) {
      completion.timed_out = true;
      kill(-pid, SIGKILL);
    }
    if (exited && (output.read < 0 && side.read < 0)) {
      break;
    }
    if (exited && now >= drain_deadline) {
      kill(-pid, SIGKILL);
      break;
    }
    pollfd fds[3];
    nfds_t count = 0;
    if (!exited) {
      fds[count++] = {pidfd, POLLIN, 0};
    }
    const nfds_t first_pipe = count;
    if (output.read >= 0) {
      fds[count++] = {output.read, POLLIN, 0};
    }
    if (side.read >= 0) {
      fds[count++] = {side.read, POLLIN, 0};
    }
    int wait_ms = -1;
    if (exited) {
      wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - now).count() + 1);
    } else if (command.timeout.count() > 0 && !completion.timed_out) {
      wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    }
    const int ready = poll(fds, count, wait_ms);
    if (ready < 0 && errno != EINTR) {
      kill(-pid, SIGKILL);
      break;
    }
    for (nfds_t i = 0; i < count && ready > 0; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      if (i < first_pipe) {
        exited = true;
        drain_deadline = Clock::now() + k_drain_grace;
      } else if (fds[i].fd == output.read) {
        if (!read_available(output.read, completion.output, command.capture_limit, completion.truncated)) {
          close(output.read);
          output.read = -1;
        }
      } else if (fds[i].fd == side.read) {
        if (!read_available(side.read, completion.side_channel, command.capture_limit, completion.truncated)) {
          close(side.read);
          side.read = -1;
        }
      }
    }
  }
  close(pidfd);
  // Whatever the program left running in its group goes with it. Done before reaping, while
  // the (zombie) leader still holds the group id, so no unrelated group can be hit.
  kill(-pid, SIGKILL);
  const int status = wait_for(pid);
  if (WIFEXITED(status)) {
    completion.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    completion.signal = WTERMSIG(status);
  }
  LOG("pid {} ended: {}", pid, completion.describe(command.timeout));
  return completion;
}

} // namespace kmodsync
