// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/process.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kmodsync::Command;
using kmodsync::Completion;
using kmodsync::run;
using kmodsync::testing::read_text;
using kmodsync::testing::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

Command bash(const std::string& script)
{
  Command command;
  command.argv = {"bash", "-c", script};
  command.env = kmodsync::clean_environment();
  return command;
}

Completion run_ok(const Command& command)
{
  auto completion = run(command);
  REQUIRE_MESSAGE(completion.has_value(), completion.error());
  return *completion;
}

// Whether `pid` is gone (or a zombie, which is dead too), waiting up to two seconds for the
// kill to land and the reaper to act.
bool process_gone(pid_t pid)
{
  const auto deadline = Clock::now() + 2s;
  while (Clock::now() < deadline) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      return true;
    }
    std::string stat;
    try {
      stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    } catch (const std::exception&) {
      return true;
    }
    const auto close_paren = stat.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] == 'Z') {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

pid_t read_pid(const std::string& text)
{
  const pid_t pid = static_cast<pid_t>(std::stol(text));
  REQUIRE(pid > 1);
  return pid;
}

struct PipeFds
{
  int read = -1;
  int write = -1;
  explicit PipeFds(int flags)
  {
    int fds[2];
    REQUIRE(pipe2(fds, flags) == 0);
    read = fds[0];
    write = fds[1];
  }
  PipeFds(const PipeFds&) = delete;
  PipeFds& operator=(const PipeFds&) = delete;
  ~PipeFds()
  {
    close(read);
    close(write);
  }
};

} // namespace

TEST_SUITE_BEGIN("process");

TEST_CASE("run reports the exit code")
{
  const auto failed = run_ok(bash("exit 7"));
  CHECK(failed.exit_code == 7);
  CHECK(failed.signal == 0);
  CHECK_FALSE(failed.timed_out);
  CHECK_FALSE(failed.succeeded());
  CHECK(failed.describe(0ms) == "exit status 7");

  const auto passed = run_ok(bash("true"));
  CHECK(passed.exit_code == 0);
  CHECK(passed.succeeded());
  CHECK(passed.describe(0ms) == "exit status 0");
}

TEST_CASE("run reports the signal that ended the program")
{
  const auto completion = run_ok(bash("kill -TERM $$"));
  CHECK(completion.signal == SIGTERM);
  CHECK_FALSE(completion.timed_out);
  CHECK_FALSE(completion.succeeded());
  CHECK(completion.describe(0ms) == "killed by signal 15 (Terminated)");
}

TEST_CASE("a timeout kills the whole process group, background children included")
{
  const TempDir dir;
  Command command = bash("sleep 100 & echo $! > " + (dir / "pid").string() + "; sleep 100");
  command.timeout = 300ms;
  const auto start = Clock::now();
  const auto completion = run_ok(command);
  const auto elapsed = Clock::now() - start;
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 2s);
  CHECK(completion.timed_out);
  CHECK(completion.signal == SIGKILL);
  CHECK_FALSE(completion.succeeded());
  CHECK(completion.describe(command.timeout) == "timed out after 0.3 s");
  const pid_t background = read_pid(read_text(dir / "pid"));
  CHECK(process_gone(background));
}

TEST_CASE("a program that ends in time is not timed out")
{
  Command command = bash("echo done");
  command.timeout = 5s;
  const auto completion = run_ok(command);
  CHECK_FALSE(completion.timed_out);
  CHECK(completion.succeeded());
  CHECK(completion.output == "done\n");
}

TEST_CASE("a background child holding the output pipe does not keep run waiting, and is killed")
{
  const auto start = Clock::now();
  const auto completion = run_ok(bash("sleep 100 & echo $!; exit 4"));
  CHECK(Clock::now() - start < 2s);
  CHECK(completion.exit_code == 4);
  CHECK_FALSE(completion.timed_out);
  CHECK(process_gone(read_pid(completion.output)));
}

TEST_CASE("a background child detached from the pipes is killed when the program ends")
{
  const TempDir dir;
  const auto completion =
    run_ok(bash("sleep 100 >/dev/null 2>&1 & echo $! > " + (dir / "pid").string()));
  CHECK(completion.succeeded());
  CHECK(completion.output == "");
  CHECK(process_gone(read_pid(read_text(dir / "pid"))));
}

TEST_CASE("the child leads a session and process group of its own, without a terminal")
{
  // Fields 1, 5, 6 and 7 of /proc/PID/stat: pid, process group, session, controlling tty.
  const auto completion =
    run_ok(bash("read -r -a s < /proc/$$/stat; echo \"${s[0]} ${s[4]} ${s[5]} ${s[6]}\""));
  REQUIRE(completion.succeeded());
  std::istringstream fields(completion.output);
  long pid = 0;
  long group = 0;
  long session = 0;
  long tty = -1;
  fields >> pid >> group >> session >> tty;
  REQUIRE_FALSE(fields.fail());
  CHECK(group == pid);
  CHECK(session == pid);
  CHECK(tty == 0);
  CHECK(group != getpgrp());
  CHECK(session != getsid(0));
}

TEST_CASE("capture_limit truncates the captured output")
{
  Command command = bash("head -c 100000 /dev/zero | tr '\\0' x");
  command.capture_limit = 1000;
  const auto truncated = run_ok(command);
  CHECK(truncated.succeeded());
  CHECK(truncated.truncated);
  CHECK(truncated.output == std::string(1000, 'x'));

  command.capture_limit = 100000;
  const auto exact = run_ok(command);
  CHECK_FALSE(exact.truncated);
  CHECK(exact.output == std::string(100000, 'x'));
}

TEST_CASE("stdout and stderr are captured together, in order")
{
  const auto completion = run_ok(bash("echo one; echo two >&2; echo three"));
  CHECK(completion.output == "one\ntwo\nthree\n");
}

TEST_CASE("side_channel: descriptor 3 is captured apart from stdout")
{
  Command command = bash("echo out; printf 'side\\0data' >&3; echo err >&2");
  command.side_channel = true;
  const auto completion = run_ok(command);
  CHECK(completion.succeeded());
  CHECK(completion.output == "out\nerr\n");
  CHECK(completion.side_channel == std::string("side\0data", 9));
}

TEST_CASE("without side_channel, descriptor 3 is not open in the child")
{
  // Even when the caller's own descriptor 3 is inheritable (ctest leaves one like that):
  // put /dev/null there without close-on-exec, and put back what was there afterwards.
  const int saved = fcntl(3, F_DUPFD_CLOEXEC, 100);
  const int saved_flags = saved >= 0 ? fcntl(3, F_GETFD) : 0;
  const int null_fd = open("/dev/null", O_RDONLY);
  REQUIRE(null_fd >= 0);
  if (null_fd != 3) {
    REQUIRE(dup2(null_fd, 3) == 3);
    close(null_fd);
  }
  const auto completion = run(bash("test -e /proc/self/fd/3"));
  if (saved >= 0) {
    dup2(saved, 3);
    fcntl(3, F_SETFD, saved_flags);
    close(saved);
  } else {
    close(3);
  }
  REQUIRE(completion.has_value());
  CHECK(completion->exit_code == 1);
  CHECK(completion->side_channel == "");
}

TEST_CASE("stdin is /dev/null: cat returns at once with no output")
{
  Command command;
  command.argv = {"cat"};
  command.env = kmodsync::clean_environment();
  command.timeout = 5s;
  const auto start = Clock::now();
  const auto completion = run_ok(command);
  CHECK(Clock::now() - start < 2s);
  CHECK(completion.succeeded());
  CHECK(completion.output == "");

  command.argv = {"readlink", "/proc/self/fd/0"};
  CHECK(run_ok(command).output == "/dev/null\n");
}

TEST_CASE("the environment is exactly the one given")
{
  REQUIRE(setenv("KMODSYNC_LEAK", "1", 1) == 0);
  Command command;
  command.argv = {"env"};
  command.env = {"A=1", "B=two words", "EMPTY="};
  const auto given = run_ok(command);
  CHECK(given.output == "A=1\nB=two words\nEMPTY=\n");

  command.env = {};
  CHECK(run_ok(command).output == "");

  command.env = kmodsync::clean_environment({"X=y"});
  CHECK(run_ok(command).output
        == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nLC_ALL=C\nX=y\n");
  unsetenv("KMODSYNC_LEAK");
}

TEST_CASE("cwd is honoured")
{
  const TempDir dir;
  fs::create_directory(dir / "work dir");
  Command command;
  command.argv = {"pwd", "-P"};
  command.env = kmodsync::clean_environment();
  command.cwd = dir / "work dir";
  CHECK(run_ok(command).output == fs::canonical(dir / "work dir").string() + "\n");
}

TEST_CASE("a cwd that does not exist means the program cannot be started")
{
  const TempDir dir;
  Command command;
  command.argv = {"pwd"};
  command.env = kmodsync::clean_environment();
  command.cwd = dir / "missing";
  const auto completion = run(command);
  REQUIRE_FALSE(completion.has_value());
  CHECK(completion.error().find("pwd") != std::string::npos);
}

TEST_CASE("pass_fds: a close-on-exec pipe reaches the child only when passed, at a fixed number")
{
  const PipeFds pipe(O_CLOEXEC);
  const std::string first = std::to_string(Command::k_first_passed_fd);
  Command command = bash("test -e /proc/self/fd/" + std::to_string(pipe.write));
  CHECK(run_ok(command).exit_code == 1);

  // It is the same pipe, under the first passed number.
  command.pass_fds = {pipe.write};
  command.argv = {"bash", "-c", "echo through >&" + first};
  REQUIRE(run_ok(command).succeeded());
  char buffer[64] = {};
  const ssize_t n = ::read(pipe.read, buffer, sizeof(buffer));
  CHECK(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "through\n");

  // Passing it once does not make it inheritable for later runs.
  command.pass_fds = {};
  command.argv = {"bash", "-c", "test -e /proc/self/fd/" + first};
  CHECK(run_ok(command).exit_code == 1);
}

// "All others are closed" must not depend on close-on-exec: a descriptor the caller (rpm, a
// package hook, ctest) left inheritable must not reach dkms.conf evaluation and make.
TEST_CASE("pass_fds: a descriptor without close-on-exec is not inherited")
{
  const PipeFds pipe(0);
  const auto completion = run_ok(bash("test -e /proc/self/fd/" + std::to_string(pipe.write)));
  CHECK(completion.exit_code == 1);
}

TEST_CASE("pass_fds: several descriptors keep their order, swapped numbers included")
{
  const PipeFds first(0);
  const PipeFds second(0);
  const int base = Command::k_first_passed_fd;
  // Passed in reverse, so a naive dup2 sequence would clobber one with the other.
  Command command = bash("echo A >&" + std::to_string(base) + "; echo B >&" + std::to_string(base + 1)
                         + "; test ! -e /proc/self/fd/" + std::to_string(base + 2));
  command.pass_fds = {second.write, first.write};
  CHECK(run_ok(command).exit_code == 0);
  char buffer[8] = {};
  REQUIRE(::read(second.read, buffer, sizeof(buffer)) == 2);
  CHECK(std::string(buffer, 2) == "A\n");
  REQUIRE(::read(first.read, buffer, sizeof(buffer)) == 2);
  CHECK(std::string(buffer, 2) == "B\n");
}

TEST_CASE("side_channel and pass_fds together: descriptor 3 is the channel, the passed one follows")
{
  const PipeFds pipe(O_CLOEXEC);
  const std::string fd = std::to_string(Command::k_first_passed_fd);
  Command command = bash("echo kept >&" + fd + " && echo channel >&3");
  command.side_channel = true;
  command.pass_fds = {pipe.write};
  const auto completion = run_ok(command);
  CHECK(completion.succeeded());
  CHECK(completion.side_channel == "channel\n");
  char buffer[64] = {};
  const ssize_t n = ::read(pipe.read, buffer, sizeof(buffer));
  CHECK(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "kept\n");
}

TEST_CASE("the child starts with default signal dispositions and an empty mask")
{
  struct sigaction ignore{};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_action{};
  REQUIRE(sigaction(SIGUSR1, &ignore, &old_action) == 0);
  sigset_t block;
  sigset_t old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &block, &old_mask) == 0);

  Command command;
  command.argv = {"grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"};
  command.env = kmodsync::clean_environment();
  const auto completion = run(command);

  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR1, &old_action, nullptr);
  REQUIRE(completion.has_value());
  const auto lines = kmodsync::testing::split_at_newlines(completion->output);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "SigBlk:\t0000000000000000");
  REQUIRE(lines[1].starts_with("SigIgn:\t"));
  // Only the classic signals: glibc's posix_spawn itself leaves its internal real-time
  // signals 32 and 33 ignored in children of a threaded parent, and exec keeps that.
  const unsigned long long ignored = std::stoull(lines[1].substr(8), nullptr, 16);
  CHECK((ignored & 0x7fffffffULL) == 0);
}

TEST_CASE("output_fd: stdout and stderr go to the given file, nothing is captured")
{
  const TempDir dir;
  const int fd = open((dir / "log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  Command command = bash("echo out; echo err >&2");
  command.output_fd = fd;
  const auto completion = run(command);
  close(fd);
  REQUIRE(completion.has_value());
  CHECK(completion->succeeded());
  CHECK(completion->output == "");
  CHECK(read_text(dir / "log") == "out\nerr\n");
}

TEST_CASE("a missing program is an error naming it")
{
  Command command;
  command.argv = {"kmodsync-no-such-program", "--flag"};
  command.env = kmodsync::clean_environment();
  const auto completion = run(command);
  REQUIRE_FALSE(completion.has_value());
  CHECK(completion.error().find("kmodsync-no-such-program") != std::string::npos);
  CHECK(completion.error().find("No such file or directory") != std::string::npos);
}

TEST_CASE("an empty argv is an error")
{
  const auto completion = run(Command{});
  CHECK_FALSE(completion.has_value());
}

TEST_CASE("Completion::describe words each ending")
{
  Completion completion;
  completion.exit_code = 2;
  CHECK(completion.describe(0ms) == "exit status 2");
  completion.signal = SIGKILL;
  CHECK(completion.describe(0ms) == "killed by signal 9 (Killed)");
  completion.timed_out = true;
  CHECK(completion.describe(10s) == "timed out after 10 s");
  CHECK(completion.describe(1500ms) == "timed out after 1.5 s");
  CHECK(completion.describe(30min) == "timed out after 1800 s");
}

TEST_CASE("clean_environment holds PATH and LC_ALL=C, then the extras in order")
{
  CHECK(kmodsync::clean_environment()
        == std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                    "LC_ALL=C"});
  const auto env = kmodsync::clean_environment({"B=2", "A=1"});
  REQUIRE(env.size() == 4);
  CHECK(env[2] == "B=2");
  CHECK(env[3] == "A=1");
}

TEST_SUITE_END();
