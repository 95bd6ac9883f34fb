// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"
#include "fixtures/temp_dir.hpp"

#include "kmodsync/engine.hpp"
#include "kmodsync/process.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
using kmodsync::testing::read_text;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

Completion confined(const std::string& script, const std::vector<fs::path>& writable, int passed_fd = -1)
{
  Command command;
  command.argv = {"sh", "-c", script};
  command.env = clean_environment();
  command.timeout = 20s;
  Sandbox sandbox;
  sandbox.writable = writable;
  command.sandbox = sandbox;
  if (passed_fd >= 0) {
    command.pass_fds = {passed_fd};
  }
  auto completion = run(command);
  REQUIRE_MESSAGE(completion.has_value(), (completion ? "" : completion.error()));
  return *completion;
}

} // namespace

TEST_SUITE("sandbox")
{
TEST_CASE("a sandboxed program runs as the build user, without privileges or network")
{
  if (geteuid() != 0) {
    MESSAGE("not root: nothing to drop, the sandbox is not used");
    return;
  }
  const auto who = confined("id -u; id -g; id -G; grep NoNewPrivs /proc/self/status", {});
  CHECK(who.succeeded());
  CHECK(who.output.find("65534\n65534\n65534\n") == 0);
  CHECK(who.output.find("NoNewPrivs:\t1") != std::string::npos);
  // A network namespace of its own holds only a loopback interface.
  const auto net = confined("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", {});
  CHECK(net.output == "lo\n");
}

TEST_CASE("a sandboxed program writes only into its writable directories")
{
  if (geteuid() != 0) {
    return;
  }
  const TempDir dir;
  fs::create_directories(dir / "build");
  fs::create_directories(dir / "other");
  fs::permissions(dir / "build", fs::perms::all);
  fs::permissions(dir / "other", fs::perms::all); // open to everyone, yet read-only inside
  const auto wrote = confined("echo ok > " + (dir / "build/inside").string() + " && echo x > "
                                + (dir / "other/outside").string(),
                              {dir / "build"});
  CHECK_FALSE(wrote.succeeded());
  CHECK(wrote.output.find("Read-only file system") != std::string::npos);
  CHECK(read_text(dir / "build/inside") == "ok\n");
  CHECK_FALSE(fs::exists(dir / "other/outside"));
  for (const char* place : {"/tmp/kmodsync-sandbox-probe", "/etc/kmodsync-sandbox-probe", "/root/kmodsync-sandbox-probe"}) {
    CAPTURE(place);
    CHECK_FALSE(confined(std::string("touch ") + place, {}).succeeded());
    CHECK_FALSE(fs::exists(place));
  }
  // Root's files stay unreadable: the user is not root.
  write_text(dir / "secret.key", "key");
  fs::permissions(dir / "secret.key", fs::perms::owner_read | fs::perms::owner_write);
  CHECK_FALSE(confined("cat " + (dir / "secret.key").string(), {}).succeeded());
}

TEST_CASE("descriptors reach a sandboxed program at their numbers, and nothing else does")
{
  if (geteuid() != 0) {
    return;
  }
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const auto seen = confined("echo through >&4; ls /proc/self/fd | sort -n | tr '\\n' ' '", {}, fds[1]);
  close(fds[1]);
  char buffer[64] = {};
  const auto got = read(fds[0], buffer, sizeof buffer - 1);
  close(fds[0]);
  CHECK(got > 0);
  CHECK(std::string(buffer) == "through\n");
  CAPTURE(seen.output);
  // 0-2, the passed 4, and 3: the descriptor ls opens to list the directory.
  CHECK(seen.output == "0 1 2 3 4 ");
}

TEST_CASE("a sandboxed program's run ends when the program does, not a drain grace later")
{
  if (geteuid() != 0) {
    return;
  }
  // kmodsync kept its own copy of the output pipe's write end, so the pipe never reached
  // its end and every confined run (each build, each dkms.conf evaluation) waited out the
  // 200 ms drain grace: ten runs took over 2 s. Without that copy they take a few ms each.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    CHECK(confined("echo ran", {}).output == "ran\n");
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK_MESSAGE(elapsed < 1500ms, "10 confined runs took "
                                      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
}

TEST_CASE("what a sandboxed program leaves behind ends with it, even what left its session")
{
  if (geteuid() != 0) {
    return;
  }
  const auto left = confined("setsid sleep 313.37 </dev/null >/dev/null 2>&1 & sleep 317.11 </dev/null >/dev/null 2>&1 & echo started", {});
  CHECK(left.output == "started\n");
  Command look;
  look.argv = {"pgrep", "-f", "sleep 31[37]\\.[13][17]"};
  look.env = clean_environment();
  std::string found = "?";
  for (int i = 0; i < 50; ++i) { // the kernel ends them asynchronously
    found = run(look)->output;
    if (found.empty()) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK(found.empty());
}

TEST_CASE("BUILD_DEPENDS on itself or in a cycle fails those cells and the pass ends")
{
  FakeSystem system;
  system.add_kernel("6.1.0-55-amd64");
  system.add_module("selfish", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS[0]=selfish\n");
  system.add_module("ping", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS[0]=pong\n");
  system.add_module("pong", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS[0]=ping\n");
  system.add_module("waiter", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS[0]=ping\n");
  system.add_module("hello", "1.0");
  PassOptions options;
  options.root = Root(system.root());
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE(report.has_value());
  const auto find = [&](const std::string& module) {
    const auto it = std::find_if(report->cells.begin(), report->cells.end(),
                                 [&](const CellReport& c) { return c.module == module; });
    REQUIRE(it != report->cells.end());
    return *it;
  };
  CHECK(find("selfish").status == CellStatus::failed);
  CHECK(find("selfish").reason.find("BUILD_DEPENDS forms a cycle for 6.1.0-55-amd64: selfish -> selfish") == 0);
  CHECK(find("ping").status == CellStatus::failed);
  CHECK(find("ping").reason.find("ping -> pong -> ping") != std::string::npos);
  CHECK(find("pong").status == CellStatus::failed);
  CHECK(find("waiter").status == CellStatus::skipped);
  CHECK(find("waiter").reason.find("BUILD_DEPENDS not met: ping") == 0);
  CHECK(find("hello").status == CellStatus::installed);
  CHECK(system.build_count("selfish") + system.build_count("ping") + system.build_count("pong") == 0);
}

TEST_CASE("a build runs confined: its Makefile cannot write outside its build directory")
{
  if (geteuid() != 0) {
    return;
  }
  FakeSystem system;
  system.add_kernel("6.1.0-55-amd64");
  const fs::path evil = system.root() / "etc/evil";
  const fs::path owner = system.traces() / "owner";
  system.add_module("hello", "1.0", "AUTOINSTALL=yes\n", false, 0,
                    "touch " + evil.string() + " 2>/dev/null || true; id -u > " + owner.string());
  PassOptions options;
  options.root = Root(system.root());
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE(report.has_value());
  REQUIRE(report->cells.size() == 1);
  CAPTURE(report->cells[0].reason);
  CHECK(report->cells[0].status == CellStatus::installed);
  CHECK_FALSE(fs::exists(evil));
  CHECK(read_text(owner) == "65534\n");
  CHECK(fs::exists(system.installed("6.1.0-55-amd64", "hello")));

  // build_as_root lets it out, and says so.
  write_text(system.root() / "etc/kmodsync/kmodsync.conf",
             "build_writable = " + system.traces().string() + "\nbuild_as_root = hello\n");
  write_text(system.root() / "usr/src/hello-1.0/dkms.conf",
             read_text(system.root() / "usr/src/hello-1.0/dkms.conf") + "# changed\n");
  report = run_pass(options, reporter);
  REQUIRE(report.has_value());
  CHECK(report->cells[0].status == CellStatus::installed);
  CHECK(report->cells[0].reason.find("as root (build_as_root, /etc/kmodsync/kmodsync.conf:2)") != std::string::npos);
  CHECK(fs::exists(evil));
  CHECK(read_text(owner) == "0\n");
}
}
