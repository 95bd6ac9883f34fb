// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"

#include "kmodsync/engine.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/state.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>
#include <thread>
#include <vector>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
using kmodsync::test::write_script;
namespace fs = std::filesystem;

namespace {

const std::string k1 = "6.1.0-55-amd64";
const std::string k2 = "6.12.107+deb12-amd64";

PassReport sync(const FakeSystem& system, unsigned jobs = 2, bool dry_run = false)
{
  PassOptions options;
  options.root = Root(system.root());
  options.jobs = jobs;
  options.dry_run = dry_run;
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
  return *report;
}

const CellReport* cell(const PassReport& report, const std::string& module, const std::string& kernel)
{
  const auto it = std::find_if(report.cells.begin(), report.cells.end(), [&](const CellReport& c) {
    return c.module == module && c.kernel == kernel;
  });
  return it == report.cells.end() ? nullptr : &*it;
}

CellStatus status_of(const PassReport& report, const std::string& module, const std::string& kernel)
{
  const CellReport* found = cell(report, module, kernel);
  REQUIRE_MESSAGE(found != nullptr, module << " on " << kernel << " is not in the report");
  return found->status;
}

} // namespace

TEST_SUITE_BEGIN("engine");

TEST_CASE("a pass builds every module for every kernel, then has nothing to do")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  system.add_module("broken", "2.0", "AUTOINSTALL=yes\n", /*fails=*/true);

  const PassReport first = sync(system);
  CHECK(first.any_failed());
  for (const auto& kernel : {k1, k2}) {
    CHECK(status_of(first, "hello", kernel) == CellStatus::installed);
    const auto info = verify_module(system.installed(kernel, "hello"), kernel, "hello");
    CHECK_MESSAGE(info.has_value(), (info ? "" : info.error()));
    const CellReport* failed = cell(first, "broken", kernel);
    REQUIRE(failed);
    CHECK(failed->status == CellStatus::failed);
    CHECK(failed->first_error == "broken.c:12:5: error: expected declaration");
    CHECK(fs::exists(Root(system.root())(failed->log)));
  }
  CHECK(system.build_count("hello") == 2);
  CHECK(system.build_count("broken") == 2);
  CHECK(kmodsync::testing::read_text(system.root() / "usr/lib/modules" / k1 / "modules.dep")
          .find("updates/dkms/hello.ko:") != std::string::npos);

  const auto installed_time = fs::last_write_time(system.installed(k1, "hello"));
  const PassReport second = sync(system);
  CHECK(status_of(second, "hello", k1) == CellStatus::up_to_date);
  CHECK(status_of(second, "hello", k2) == CellStatus::up_to_date);
  const CellReport* remembered = cell(second, "broken", k1);
  REQUIRE(remembered);
  CHECK(remembered->status == CellStatus::failed);
  CHECK(remembered->remembered);
  CHECK(remembered->first_error == "broken.c:12:5: error: expected declaration");
  CHECK(system.build_count("hello") == 2);
  CHECK(system.build_count("broken") == 2);
  CHECK(fs::last_write_time(system.installed(k1, "hello")) == installed_time);
}

TEST_CASE("a changed source, a deleted module file and --retry each cause a rebuild")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  system.add_module("broken", "2.0", "AUTOINSTALL=yes\n", true);
  sync(system);
  REQUIRE(system.build_count("hello") == 1);

  kmodsync::testing::write_text(system.root() / "usr/src/hello-1.0/version.txt", "changed\n");
  CHECK(status_of(sync(system), "hello", k1) == CellStatus::installed);
  CHECK(system.build_count("hello") == 2);

  // A deleted module comes back from the build kept for the cell: no compile.
  fs::remove(system.installed(k1, "hello"));
  const PassReport repaired = sync(system);
  CHECK(status_of(repaired, "hello", k1) == CellStatus::installed);
  CHECK(cell(repaired, "hello", k1)->reason == "installed the kept build");
  CHECK(fs::exists(system.installed(k1, "hello")));
  CHECK(system.build_count("hello") == 2);

  PassOptions options;
  options.root = Root(system.root());
  options.retry = true;
  Reporter reporter;
  auto retried = run_pass(options, reporter);
  REQUIRE(retried);
  CHECK(system.build_count("broken") == 2);
  CHECK_FALSE(cell(*retried, "broken", k1)->remembered);
}

TEST_CASE("builds of different cells run in parallel, never beyond -j")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  for (const char* name : {"alpha", "bravo", "charlie"}) {
    system.add_module(name, "1.0", "AUTOINSTALL=yes\n", false, 0.4);
  }
  const PassReport report = sync(system, 2);
  CHECK_FALSE(report.any_failed());
  CHECK(system.max_concurrent_builds() == 2);

  FakeSystem serial;
  serial.add_kernel(k1);
  for (const char* name : {"alpha", "bravo", "charlie"}) {
    serial.add_module(name, "1.0", "AUTOINSTALL=yes\n", false, 0.2);
  }
  sync(serial, 1);
  CHECK(serial.max_concurrent_builds() == 1);
}

TEST_CASE("one jobserver: a lone make uses every slot, several makes share them")
{
  FakeSystem lone;
  lone.add_kernel(k1);
  lone.add_make_module("wide", "1.0", 6, 0.3);
  const PassReport alone = sync(lone, 3);
  CHECK(status_of(alone, "wide", k1) == CellStatus::installed);
  CHECK(lone.max_concurrent_builds() == 3);

  FakeSystem shared;
  shared.add_kernel(k1);
  shared.add_kernel(k2);
  shared.add_make_module("wide", "1.0", 6, 0.2);
  shared.add_make_module("broad", "1.0", 6, 0.2);
  const PassReport together = sync(shared, 2);
  CHECK_FALSE(together.any_failed());
  CHECK(shared.max_concurrent_builds() == 2);
}

TEST_CASE("a build that never ends is killed at the time limit; the others go on")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hang", "1.0", "AUTOINSTALL=yes\n", false, 1000);
  system.add_module("hello", "1.0");
  PassOptions options;
  options.root = Root(system.root());
  options.build_timeout = std::chrono::seconds(1);
  Reporter reporter;
  const auto start = std::chrono::steady_clock::now();
  auto report = run_pass(options, reporter);
  REQUIRE(report);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(status_of(*report, "hang", k1) == CellStatus::failed);
  CHECK(cell(*report, "hang", k1)->reason.find("timed out") != std::string::npos);
  CHECK(status_of(*report, "hello", k1) == CellStatus::installed);
}

TEST_CASE("PATCH/PATCH_MATCH, PRE_BUILD, POST_BUILD and MAKE_MATCH behave as in DKMS")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  const std::string traces = system.traces().string();
  // The build succeeds only if the right patches and PRE_BUILD ran before it.
  const std::string checks =
    "grep -qx patched version.txt\n"
    "test -f prebuild-ran-with-arg\n"
    "if [ \"$kv\" = " + k2 + " ]; then test -f six-twelve.txt; else test ! -e six-twelve.txt; fi\n";
  system.add_module("fancy", "1.0",
                    "AUTOINSTALL=yes\n"
                    "PATCH[0]=\"fix.patch\"\n"
                    "PATCH[1]=\"only612.patch\"\nPATCH_MATCH[1]=\"^6\\.12\\.\"\n"
                    "PRE_BUILD=\"prebuild.sh with-arg\"\n"
                    "POST_BUILD=\"postbuild.sh\"\n"
                    "MAKE[1]=\"./build.sh ${kernelver} && echo $kernelver >> " + traces + "/make1.log\"\n"
                    "MAKE_MATCH[1]=\"^6\\.12\\.\"\n",
                    false, 0, checks);
  const fs::path source = system.root() / "usr/src/fancy-1.0";
  kmodsync::testing::write_text(source / "patches/fix.patch",
                             "--- a/version.txt\n+++ b/version.txt\n@@ -1 +1 @@\n-1.0\n+patched\n");
  kmodsync::testing::write_text(source / "patches/only612.patch",
                             "--- /dev/null\n+++ b/six-twelve.txt\n@@ -0,0 +1 @@\n+yes\n");
  write_script(source / "prebuild.sh", "#!/bin/sh\ntouch prebuild-ran-$1\n");
  write_script(source / "postbuild.sh", "#!/bin/sh\ntest -f fancy.ko && echo ok >> " + traces + "/postbuild.log\n");

  const PassReport report = sync(system);
  CHECK(status_of(report, "fancy", k1) == CellStatus::installed);
  CHECK(status_of(report, "fancy", k2) == CellStatus::installed);
  CHECK(kmodsync::testing::read_text(system.traces() / "postbuild.log") == "ok\nok\n");
  CHECK(kmodsync::testing::read_text(system.traces() / "make1.log") == k2 + "\n");
  // The source itself is never modified: patches apply to the cell's copy.
  CHECK(kmodsync::testing::read_text(source / "version.txt") == "1.0\n");
}

TEST_CASE("a patch that does not apply fails the cell and names the patch")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("stale", "1.0", "AUTOINSTALL=yes\nPATCH[0]=\"old.patch\"\n");
  kmodsync::testing::write_text(system.root() / "usr/src/stale-1.0/patches/old.patch",
                             "--- a/version.txt\n+++ b/version.txt\n@@ -1 +1 @@\n-0.9\n+patched\n");
  const PassReport report = sync(system);
  CHECK(status_of(report, "stale", k1) == CellStatus::failed);
  CHECK(cell(report, "stale", k1)->reason.find("old.patch") != std::string::npos);
  CHECK(system.build_count("stale") == 0);
}

TEST_CASE("skips: AUTOINSTALL, BUILD_EXCLUSIVE, missing headers, BUILD_DEPENDS, older versions")
{
  FakeSystem system;
  system.add_kernel(k1, "CONFIG_FOO=y\n# CONFIG_BAR is not set\n");
  system.add_kernel_without_headers("6.1.0-99-amd64");
  system.add_module("manual", "1.0", "");
  system.add_module("needsbar", "1.0", "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_CONFIG=\"CONFIG_BAR\"\n");
  system.add_module("only612", "1.0", "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^6\\.12\\.\"\n");
  system.add_module("orphan", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS=\"nosuchmodule\"\n");
  system.add_module("hello", "1.0");
  system.add_module("hello", "1.1");

  const PassReport report = sync(system);
  CHECK(status_of(report, "manual", k1) == CellStatus::skipped);
  CHECK(cell(report, "manual", k1)->reason.find("AUTOINSTALL") != std::string::npos);
  CHECK(status_of(report, "needsbar", k1) == CellStatus::skipped);
  CHECK(cell(report, "needsbar", k1)->reason.find("CONFIG_BAR") != std::string::npos);
  CHECK(status_of(report, "only612", k1) == CellStatus::skipped);
  CHECK(status_of(report, "orphan", k1) == CellStatus::skipped);
  CHECK(cell(report, "orphan", k1)->reason.find("nosuchmodule") != std::string::npos);
  CHECK(status_of(report, "hello", "6.1.0-99-amd64") == CellStatus::skipped);
  CHECK(cell(report, "hello", "6.1.0-99-amd64")->reason.find("no headers") != std::string::npos);
  // Only the newest version of a module is built, as DKMS autoinstall does.
  const auto hello = std::count_if(report.cells.begin(), report.cells.end(), [&](const CellReport& c) {
    return c.module == "hello" && c.kernel == k1 && c.status == CellStatus::installed;
  });
  CHECK(hello == 1);
  CHECK(std::any_of(report.cells.begin(), report.cells.end(), [&](const CellReport& c) {
    return c.module == "hello" && c.version == "1.0" && c.reason == "superseded by hello/1.1";
  }));
  CHECK(system.build_count("manual") == 0);
  CHECK(system.build_count("needsbar") == 0);
  CHECK_FALSE(report.any_failed());
}

TEST_CASE("BUILD_DEPENDS orders builds of one kernel, even with free job slots")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("base", "1.0", "AUTOINSTALL=yes\n", false, 0.3);
  // `top` fails unless base.ko is already installed when it starts.
  system.add_module("top", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS=\"base\"\n", false, 0,
                    "test -f " + system.installed(k1, "base").string());
  const PassReport report = sync(system, 4);
  CHECK(status_of(report, "base", k1) == CellStatus::installed);
  CHECK(status_of(report, "top", k1) == CellStatus::installed);

  FakeSystem failing;
  failing.add_kernel(k1);
  failing.add_module("base", "1.0", "AUTOINSTALL=yes\n", true);
  failing.add_module("top", "1.0", "AUTOINSTALL=yes\nBUILD_DEPENDS=\"base\"\n");
  const PassReport second = sync(failing, 4);
  CHECK(status_of(second, "top", k1) == CellStatus::skipped);
  CHECK(cell(second, "top", k1)->reason.find("base failed") != std::string::npos);
  CHECK(failing.build_count("top") == 0);
}

TEST_CASE("passes started together on one root run one after the other")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0", "AUTOINSTALL=yes\n", false, 0.3);
  system.add_module("world", "1.0", "AUTOINSTALL=yes\n", false, 0.3);
  std::vector<PassReport> reports(4);
  {
    std::vector<std::jthread> passes;
    for (auto& report : reports) {
      passes.emplace_back([&system, &report] {
        PassOptions options;
        options.root = Root(system.root());
        options.jobs = 2;
        Reporter reporter;
        if (auto done = run_pass(options, reporter)) {
          report = *done;
        }
      });
    }
  }
  // Exactly one pass built each cell; the others waited and found them up to date.
  CHECK(system.build_count("hello") == 2);
  CHECK(system.build_count("world") == 2);
  int installed = 0;
  int up_to_date = 0;
  for (const auto& report : reports) {
    REQUIRE(report.cells.size() == 4);
    for (const auto& c : report.cells) {
      installed += c.status == CellStatus::installed;
      up_to_date += c.status == CellStatus::up_to_date;
    }
  }
  CHECK(installed == 4);
  CHECK(up_to_date == 12);
  auto state = State::load(StatePaths(Root(system.root())).state_file);
  REQUIRE(state);
  CHECK(state->cells.size() == 4);
}

TEST_CASE("a dry run plans and writes nothing")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  const PassReport report = sync(system, 2, /*dry_run=*/true);
  CHECK(status_of(report, "hello", k1) == CellStatus::would_build);
  CHECK_FALSE(fs::exists(system.root() / "var/lib/kmodsync"));
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));
  CHECK(system.build_count("hello") == 0);
}

TEST_CASE("a kernel that disappears loses its cells; a removed module stays removed")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  sync(system);
  fs::remove_all(system.root() / "usr/lib/modules" / k2);
  const PassReport report = sync(system);
  CHECK(status_of(report, "hello", k2) == CellStatus::removed);
  auto state = State::load(StatePaths(Root(system.root())).state_file);
  REQUIRE(state);
  CHECK(state->find("hello", "1.0", k2) == nullptr);
  CHECK(state->find("hello", "1.0", k1) != nullptr);

  auto removed = remove_module(Root(system.root()), "hello", "1.0");
  REQUIRE(removed);
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));
  CHECK(cell(sync(system), "hello", k1) == nullptr);
  CHECK(system.build_count("hello") == 2);

  auto added = add_module_source(Root(system.root()), "/usr/src/hello-1.0", std::chrono::seconds(10));
  REQUIRE(added);
  CHECK(added->name == "hello");
  CHECK(added->version == "1.0");
  CHECK_FALSE(added->already_added);
  CHECK(status_of(sync(system), "hello", k1) == CellStatus::installed);
}

TEST_CASE("a file kmodsync did not write is never removed")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  sync(system);
  // Someone replaces the installed module by hand; then the source goes away.
  kmodsync::testing::write_text(system.installed(k1, "hello"), "not ours\n");
  fs::remove_all(system.root() / "usr/src/hello-1.0");
  const PassReport report = sync(system);
  CHECK(status_of(report, "hello", k1) == CellStatus::removed);
  CHECK(kmodsync::testing::read_text(system.installed(k1, "hello")) == "not ours\n");
  CHECK(std::any_of(report.errors.begin(), report.errors.end(), [](const std::string& e) {
    return e.find("left") != std::string::npos && e.find("alone") != std::string::npos;
  }));
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("engine.install");

namespace {

// A module kmodsync did not build, placed where a distribution or an admin would put it.
void place_foreign_module(const FakeSystem& system, const std::string& kernel, const std::string& relative,
                          const std::string& name, const std::string& version)
{
  const fs::path dir = system.traces() / ("foreign-" + name);
  kmodsync::testing::write_text(dir / "m.c",
                                "__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=" + kernel
                                  + " SMP mod_unload \";\n__attribute__((section(\".modinfo\"), used)) static const "
                                    "char n[] = \"name=" + name + "\";\n__attribute__((section(\".modinfo\"), used)) "
                                    "static const char r[] = \"version=" + version + "\";\n");
  REQUIRE(std::system(("gcc -c -o '" + (dir / "m.ko").string() + "' '" + (dir / "m.c").string() + "'").c_str()) == 0);
  fs::create_directories((system.root() / "usr/lib/modules" / kernel / relative).parent_path());
  fs::copy_file(dir / "m.ko", system.root() / "usr/lib/modules" / kernel / relative, fs::copy_options::overwrite_existing);
}

PassReport sync_with(const FakeSystem& system, bool force)
{
  PassOptions options;
  options.root = Root(system.root());
  options.force = force;
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
  return *report;
}

} // namespace

TEST_CASE("a newer in-tree module is not replaced unless forced")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  place_foreign_module(system, k1, "kernel/drivers/misc/hello.ko", "hello", "2.0");
  const PassReport report = sync(system);
  CHECK(status_of(report, "hello", k1) == CellStatus::skipped);
  CHECK(cell(report, "hello", k1)->reason.find("newer") != std::string::npos);
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));

  const PassReport forced = sync_with(system, true);
  CHECK(status_of(forced, "hello", k1) == CellStatus::installed);
  CHECK(fs::exists(system.installed(k1, "hello")));
}

TEST_CASE("a file kmodsync did not write is moved aside, and put back when the module goes")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  place_foreign_module(system, k1, "updates/dkms/hello.ko", "hello", "0.5");
  const std::string original = kmodsync::testing::read_text(system.installed(k1, "hello"));
  CHECK(status_of(sync(system), "hello", k1) == CellStatus::installed);
  CHECK(kmodsync::testing::read_text(system.installed(k1, "hello")) != original);
  CHECK(kmodsync::testing::read_text(system.root() / "var/lib/kmodsync/displaced" / k1 / "usr/lib/modules" / k1
                                     / "updates/dkms/hello.ko")
        == original);

  auto removed = remove_module(Root(system.root()), "hello", "1.0");
  REQUIRE(removed);
  CHECK(kmodsync::testing::read_text(system.installed(k1, "hello")) == original);
}

TEST_CASE("kernel-remove drops a kernel's cells and files; OBSOLETE_BY skips newer kernels")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  system.add_module("legacy", "1.0", "AUTOINSTALL=yes\nOBSOLETE_BY=\"6.5\"\n");
  const PassReport report = sync(system);
  CHECK(status_of(report, "legacy", k1) == CellStatus::installed);
  CHECK(status_of(report, "legacy", k2) == CellStatus::skipped);
  CHECK(cell(report, "legacy", k2)->reason.find("OBSOLETE_BY") != std::string::npos);

  auto dropped = remove_kernel(Root(system.root()), k2);
  REQUIRE(dropped);
  CHECK_FALSE(fs::exists(system.installed(k2, "hello")));
  CHECK(fs::exists(system.installed(k1, "hello")));
  auto state = State::load(StatePaths(Root(system.root())).state_file);
  REQUIRE(state);
  CHECK(state->find("hello", "1.0", k2) == nullptr);
  CHECK(state->find("hello", "1.0", k1) != nullptr);
}

TEST_CASE("with a key pair, every installed module is signed; a new key re-installs")
{
  FakeSystem system;
  system.add_kernel(k1, "CONFIG_MODULE_SIG_HASH=\"sha512\"\n");
  system.add_module("hello", "1.0");
  REQUIRE(make_signing_key(Root(system.root())));
  CHECK(status_of(sync(system), "hello", k1) == CellStatus::installed);
  const std::string signer =
    kmodsync::testing::shell_output("modinfo -F signer '" + system.installed(k1, "hello").string() + "'");
  CHECK(signer.find("kmodsync module signing key") != std::string::npos);
  CHECK(kmodsync::testing::shell_output("modinfo -F sig_hashalgo '" + system.installed(k1, "hello").string() + "'")
          .find("sha512")
        != std::string::npos);
  CHECK(status_of(sync(system), "hello", k1) == CellStatus::up_to_date);
}

TEST_CASE("the initramfs is regenerated once per kernel, only when it holds a changed module or one asks")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  system.add_module("world", "1.0");
  const fs::path root = system.root();
  // A tiny system in the root for the chrooted tools: busybox as /bin/sh.
  fs::create_directories(root / "bin");
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  fs::create_symlink("busybox", root / "bin/sh");
  write_script(root / "usr/sbin/update-initramfs", "#!/bin/sh\necho \"$*\" >> /initramfs-calls\n");
  // k1's initramfs holds hello; k2's holds nothing of ours.
  write_script(root / "usr/bin/lsinitramfs",
               "#!/bin/sh\ncase \"$1\" in *" + k1 + "*) echo usr/lib/modules/" + k1
                 + "/updates/dkms/hello.ko ;; esac\necho usr/lib/modules/x/kernel/fs/ext4.ko\n");
  kmodsync::testing::write_text(root / ("boot/initrd.img-" + k1), "fake");
  kmodsync::testing::write_text(root / ("boot/initrd.img-" + k2), "fake");

  sync(system);
  CHECK(kmodsync::testing::read_text(root / "initramfs-calls") == "-u -k " + k1 + "\n");

  // Nothing changed: no regeneration.
  sync(system);
  CHECK(kmodsync::testing::read_text(root / "initramfs-calls") == "-u -k " + k1 + "\n");

  // A module asking for it (REMAKE_INITRD) regenerates k2's too.
  system.add_module("early", "1.0", "AUTOINSTALL=yes\nREMAKE_INITRD=yes\n");
  sync(system);
  const std::string calls = kmodsync::testing::read_text(root / "initramfs-calls");
  CHECK(calls.find("-u -k " + k2 + "\n") != std::string::npos);
  CHECK(std::count(calls.begin(), calls.end(), '\n') == 3);
}

TEST_CASE("a pass killed after placing a file but before recording it is repaired by the next")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  sync(system);
  const StatePaths paths{Root(system.root())};
  auto state = State::load(paths.state_file);
  REQUIRE(state);
  CellRecord* record = state->find("hello", "1.0", k1);
  REQUIRE(record);
  // As the journal leaves it: the change announced, the record still without the file,
  // and a temporary file of an atomic write that never finished.
  PendingChange change;
  change.module = "hello";
  change.version = "1.0";
  change.kernel = k1;
  change.files = record->files;
  state->pending.push_back(change);
  // A change that was writing to a DEST_MODULE_LOCATION in the distribution's tree (honoured
  // on distributions kmodsync does not know): its directory is swept, and only it.
  PendingChange elsewhere;
  elsewhere.module = "ghost";
  elsewhere.version = "1.0";
  elsewhere.kernel = k1;
  elsewhere.files = {{"/usr/lib/modules/" + k1 + "/kernel/drivers/misc/ghost.ko", std::string(64, '0')}};
  state->pending.push_back(elsewhere);
  record->files.clear();
  record->input_key = "old";
  REQUIRE(state->save(paths.state_file));
  kmodsync::testing::write_text(system.installed(k1, "hello").string() + ".kmodsync-AbC123", "half");
  // One of depmod's indexes, half written back from the depmod cache; and files of that
  // shape deeper in the distribution's tree, which no pass writes and none may touch.
  const fs::path kernel_dir = system.root() / "usr/lib/modules" / k1;
  kmodsync::testing::write_text(kernel_dir / "modules.alias.kmodsync-Zz9Yx8", "half");
  kmodsync::testing::write_text(kernel_dir / "kernel/drivers/x.ko.kmodsync-Zz9Yx8", "not ours");
  kmodsync::testing::write_text(kernel_dir / "kernel/drivers/misc/ghost.ko.kmodsync-Qq1Ww2", "half");

  const PassReport report = sync(system);
  CHECK(status_of(report, "hello", k1) == CellStatus::installed);
  auto repaired = State::load(paths.state_file);
  REQUIRE(repaired);
  CHECK(repaired->pending.empty());
  CHECK(repaired->find("hello", "1.0", k1)->files.size() == 1);
  CHECK_FALSE(fs::exists(system.installed(k1, "hello").string() + ".kmodsync-AbC123"));
  CHECK_FALSE(fs::exists(kernel_dir / "modules.alias.kmodsync-Zz9Yx8"));
  CHECK(fs::exists(kernel_dir / "kernel/drivers/x.ko.kmodsync-Zz9Yx8"));
  CHECK_FALSE(fs::exists(kernel_dir / "kernel/drivers/misc/ghost.ko.kmodsync-Qq1Ww2"));
  // The file was recognised as kmodsync's own: nothing was moved aside.
  CHECK_FALSE(fs::exists(system.root() / "var/lib/kmodsync/displaced"));
}

TEST_SUITE_END();

namespace {

// The modules in the order their builds started, from the fake builds' log.
std::vector<std::string> build_starts(const FakeSystem& system)
{
  std::vector<std::string> order;
  std::istringstream log(kmodsync::testing::read_text(system.traces() / "builds.log"));
  std::string name, version, kernel, event;
  std::string rest;
  while (log >> name >> version >> kernel >> event && std::getline(log, rest)) {
    if (event == "start") {
      order.push_back(name + " " + kernel);
    }
  }
  return order;
}

} // namespace

TEST_CASE("the longest compiles start first: by source size at first, then by the time they took")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("asmall", "1.0", "AUTOINSTALL=yes\n", false, 0.0);
  system.add_module("mslow", "1.0", "AUTOINSTALL=yes\n", false, 1.0);
  system.add_module("zbig", "1.0", "AUTOINSTALL=yes\n", false, 0.0);
  // Never built before: the source with the most C goes first, whatever its name.
  kmodsync::testing::write_text(system.root() / "usr/src/zbig-1.0/big.c", std::string(200000, 'x'));
  kmodsync::testing::write_text(system.root() / "usr/src/mslow-1.0/slow.c", std::string(50000, 'x'));
  sync(system, 1);
  auto order = build_starts(system);
  REQUIRE(order.size() == 3);
  CHECK(order[0] == "zbig " + k1);
  CHECK(order[1] == "mslow " + k1);

  // A new kernel: mslow took a second on k1, zbig no time at all.
  system.add_kernel(k2);
  sync(system, 1);
  order = build_starts(system);
  REQUIRE(order.size() == 6);
  CHECK(order[3] == "mslow " + k2);
}
