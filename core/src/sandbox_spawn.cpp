// SPDX-License-Identifier: GPL-2.0-or-later
#include "sandbox_spawn.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string>

namespace kmodsync::detail {

namespace {

// Async-signal-safe reporting from the child: straight to its stderr (the cell's log).
void say(const char* a, const char* b = "", const char* c = "")
{
  for (const char* part : {"kmodsync sandbox: ", a, b, c, "\n"}) {
    [[maybe_unused]] auto written = ::write(2, part, std::strlen(part));
  }
}

[[noreturn]] void fail_child(int report_fd, const char* what)
{
  const int saved = errno;
  say(what, ": ", strerror(saved));
  [[maybe_unused]] auto written = ::write(report_fd, &saved, sizeof saved);
  _exit(126);
}

// Everything read-only but the writable directories (each bound onto itself first so it
// is a mount of its own whose flag can be cleared again).
bool confine_filesystem(const std::vector<const char*>& writable)
{
  if (unshare(CLONE_NEWNS) != 0) {
    say("no mount namespace (", strerror(errno), "): the program is not kept from writing where its user may");
    return false;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    say("cannot make mounts private: ", strerror(errno));
    return false;
  }
  for (const char* dir : writable) {
    if (mount(dir, dir, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      say(dir, ": cannot bind it onto itself: ", strerror(errno));
      return false;
    }
  }
  mount_attr read_only{};
  read_only.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only) != 0) {
    say("cannot make the file system read-only: ", strerror(errno));
    return false;
  }
  mount_attr read_write{};
  read_write.attr_clr = MOUNT_ATTR_RDONLY;
  for (const char* dir : writable) {
    if (mount_setattr(AT_FDCWD, dir, AT_RECURSIVE, &read_write, sizeof read_write) != 0) {
      say("cannot make ", dir, " writable");
      return false;
    }
  }
  return true;
}

} // namespace

Expected<pid_t> spawn_sandboxed(const char* program, char* const* argv, char* const* envp, const char* cwd,
                                const ChildFds& fds, const Sandbox& sandbox)
{
  // Prepared here: the child must not allocate.
  std::vector<const char*> writable;
  for (const auto& dir : sandbox.writable) {
    writable.push_back(dir.c_str());
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    return error("cannot create a pipe: {}", std::strerror(errno));
  }
  // Far above the numbers the child's descriptors are moved to, so no dup2 replaces it.
  if (const int high = fcntl(report[1], F_DUPFD_CLOEXEC, 512); high >= 0) {
    close(report[1]);
    report[1] = high;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    const int saved = errno;
    close(report[0]);
    close(report[1]);
    return error("cannot fork for {}: {}", program, std::strerror(saved));
  }
  if (pid == 0) {
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int signal = 1; signal < NSIG; ++signal) {
      ::signal(signal, SIG_DFL);
    }
    // The sources are all staged high by the parent, so no dup2 here replaces another's.
    dup2(fds.stdin_fd, 0);
    dup2(fds.out_fd, 1);
    dup2(fds.out_fd, 2);
    if (fds.side_fd >= 0) {
      dup2(fds.side_fd, 3);
    } else {
      close(3);
    }
    int next = Command::k_first_passed_fd;
    for (const int fd : fds.passed) {
      dup2(fd, next++);
    }
    // Every other descriptor goes; the report pipe is close-on-exec and lives until exec.
    const unsigned first_closed = static_cast<unsigned>(next);
    const unsigned report_fd = static_cast<unsigned>(report[1]);
    if (first_closed < report_fd) {
      close_range(first_closed, report_fd - 1, 0);
    }
    close_range(std::max(first_closed, report_fd + 1), ~0U, 0);
    if (sandbox.private_network && unshare(CLONE_NEWNET) != 0) {
      say("no network namespace (", strerror(errno), "): the program keeps the network");
    }
    confine_filesystem(writable);
    // A PID namespace of its own, whose first process is the program: when it ends, the
    // kernel ends everything it left behind, even what escaped its process group (setsid).
    if (unshare(CLONE_NEWPID) == 0) {
      const pid_t program_pid = fork();
      if (program_pid < 0) {
        fail_child(report[1], "fork");
      }
      if (program_pid > 0) {
        close(report[1]);
        int status = 0;
        while (waitpid(program_pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(status)) {
          ::signal(WTERMSIG(status), SIG_DFL);
          kill(getpid(), WTERMSIG(status));
        }
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
      }
    } else {
      say("no PID namespace (", strerror(errno), "): processes the program leaves behind may outlive it");
    }
    if (setgroups(0, nullptr) != 0) {
      fail_child(report[1], "setgroups");
    }
    if (setgid(sandbox.gid) != 0) {
      fail_child(report[1], "setgid");
    }
    if (setuid(sandbox.uid) != 0) {
      fail_child(report[1], "setuid");
    }
    // Nothing it runs (sudo, a setuid helper) can get root back.
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (cwd[0] != '\0' && chdir(cwd) != 0) {
      fail_child(report[1], "cannot enter the build directory as the build user (is every directory above it searchable?)");
    }
    execve(program, argv, envp);
    fail_child(report[1], program);
  }
  close(report[1]);
  int child_errno = 0;
  ssize_t got = 0;
  while ((got = ::read(report[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  // Like posix_spawn, a child that could not exec is still a child to wait for: its exit
  // status (126) and its message in the output say what happened.
  return pid;
}

} // namespace kmodsync::detail
