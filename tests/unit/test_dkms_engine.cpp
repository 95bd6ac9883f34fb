// SPDX-License-Identifier: GPL-2.0-or-later
// The engine features behind the DKMS-compatible command line: build without install,
// forced rebuilds, explicit requests, cell causes, uninstall/unbuild, `dkms add`, adoption
// of what DKMS installed, and loading prebuilt modules.
#include "fake_system.hpp"

#include "kmodsync/compression.hpp"
#include "kmodsync/engine.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/state.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
using kmodsync::testing::read_text;
using kmodsync::testing::write_text;
namespace fs = std::filesystem;

namespace {

const std::string k1 = "6.1.0-55-amd64";
const std::string k2 = "6.12.107+deb12-amd64";

PassReport pass(const FakeSystem& system, const std::function<void(PassOptions&)>& tweak = {})
{
  PassOptions options;
  options.root = Root(system.root());
  options.jobs = 2;
  if (tweak) {
    tweak(options);
  }
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
  return *report;
}

const CellReport& cell_of(const PassReport& report, const std::string& module, const std::string& kernel,
                          const std::string& version = "")
{
  const auto it = std::find_if(report.cells.begin(), report.cells.end(), [&](const CellReport& c) {
    return c.module == module && c.kernel == kernel && (version.empty() || c.version == version);
  });
  REQUIRE_MESSAGE(it != report.cells.end(), module << "/" << version << " on " << kernel << " is not in the report");
  return *it;
}

State state_of(const FakeSystem& system)
{
  auto state = State::load(StatePaths(Root(system.root())).state_file);
  REQUIRE_MESSAGE(state.has_value(), (state ? "" : state.error()));
  return *state;
}

std::string modules_dep(const FakeSystem& system, const std::string& kernel)
{
  return read_text(system.root() / "usr/lib/modules" / kernel / "modules.dep");
}

bool dep_names(const FakeSystem& system, const std::string& kernel, const std::string& name)
{
  return modules_dep(system, kernel).find("updates/dkms/" + name + ".ko:") != std::string::npos;
}


// A NAME.ko built (and installed) for `kernel` by a pass on another fake system.
std::string module_built_for(const std::string& kernel, const std::string& name, const std::string& version)
{
  FakeSystem donor;
  donor.add_kernel(kernel);
  donor.add_module(name, version);
  REQUIRE(cell_of(pass(donor), name, kernel).status == CellStatus::installed);
  return read_text(donor.installed(kernel, name));
}

} // namespace

TEST_SUITE_BEGIN("engine.dkms");

TEST_CASE("install off builds and keeps the modules; a later pass installs them without compiling")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  const auto build_only = [](PassOptions& o) { o.install = false; };

  const PassReport built = pass(system, build_only);
  CHECK(cell_of(built, "hello", k1).status == CellStatus::built);
  CHECK_FALSE(built.any_failed());
  CHECK(system.build_count("hello") == 1);
  CHECK_FALSE(fs::exists(system.root() / "usr/lib/modules" / k1 / "updates"));
  {
    State state = state_of(system);
    const CellRecord* record = state.find("hello", "1.0", k1);
    REQUIRE(record);
    CHECK(record->outcome == Outcome::built);
    CHECK(record->files.empty());
    REQUIRE(record->built.size() == 1);
    CHECK(fs::path(record->built[0].path).string().starts_with("/var/lib/kmodsync/cache/"));
    CHECK(fs::is_regular_file(Root(system.root())(record->built[0].path)));
    CHECK(verify_module(Root(system.root())(record->built[0].path), k1, "hello").has_value());
  }

  const PassReport again = pass(system, build_only);
  CHECK(cell_of(again, "hello", k1).status == CellStatus::up_to_date);
  CHECK(system.build_count("hello") == 1);
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));

  const PassReport installed = pass(system);
  CHECK(cell_of(installed, "hello", k1).status == CellStatus::installed);
  CHECK(cell_of(installed, "hello", k1).reason == "installed the kept build");
  CHECK(system.build_count("hello") == 1);
  CHECK(verify_module(system.installed(k1, "hello"), k1, "hello").has_value());
  CHECK(dep_names(system, k1, "hello"));
  State state = state_of(system);
  REQUIRE(state.find("hello", "1.0", k1));
  CHECK(state.find("hello", "1.0", k1)->outcome == Outcome::installed);
  CHECK(state.find("hello", "1.0", k1)->files.size() == 1);
}

TEST_CASE("rebuild compiles again what is up to date")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  pass(system);
  REQUIRE(system.build_count("hello") == 1);
  REQUIRE(cell_of(pass(system), "hello", k1).status == CellStatus::up_to_date);
  REQUIRE(system.build_count("hello") == 1);

  const PassReport rebuilt = pass(system, [](PassOptions& o) { o.rebuild = true; });
  CHECK(cell_of(rebuilt, "hello", k1).status == CellStatus::installed);
  CHECK(cell_of(rebuilt, "hello", k1).reason != "installed the kept build");
  CHECK(system.build_count("hello") == 2);
  CHECK(verify_module(system.installed(k1, "hello"), k1, "hello").has_value());

  // Without install too: compiled again and kept, the installed module left alone.
  const PassReport build_only = pass(system, [](PassOptions& o) {
    o.rebuild = true;
    o.install = false;
  });
  CHECK(cell_of(build_only, "hello", k1).status == CellStatus::built);
  CHECK(system.build_count("hello") == 3);
  CHECK(fs::exists(system.installed(k1, "hello")));
}

TEST_CASE("an explicit request builds a module without AUTOINSTALL and an older version")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("manual", "1.0", "");
  system.add_module("hello", "1.0");
  system.add_module("hello", "1.1");

  const PassReport normal = pass(system);
  CHECK(cell_of(normal, "manual", k1).status == CellStatus::skipped);
  CHECK(cell_of(normal, "manual", k1).cause == CellCause::autoinstall_off);
  CHECK(cell_of(normal, "hello", k1, "1.0").status == CellStatus::skipped);
  CHECK(cell_of(normal, "hello", k1, "1.0").cause == CellCause::superseded);
  CHECK(cell_of(normal, "hello", k1, "1.1").status == CellStatus::installed);
  CHECK(cell_of(normal, "hello", k1, "1.1").cause == CellCause::none);
  CHECK(system.build_count("manual") == 0);
  REQUIRE(read_module_info(system.installed(k1, "hello")).has_value());
  CHECK(read_module_info(system.installed(k1, "hello"))->version == "1.1");

  // Named without a version, both versions are in scope: the older one is not superseded.
  const PassReport asked = pass(system, [](PassOptions& o) {
    o.explicit_request = true;
    o.modules = {"manual", "hello"};
  });
  CHECK(cell_of(asked, "manual", k1).status == CellStatus::installed);
  CHECK(cell_of(asked, "manual", k1).cause == CellCause::none);
  CHECK(cell_of(asked, "hello", k1, "1.0").status == CellStatus::installed);
  CHECK(cell_of(asked, "hello", k1, "1.0").cause == CellCause::none);
  CHECK(cell_of(asked, "hello", k1, "1.1").status == CellStatus::up_to_date);
  CHECK(system.build_count("manual") == 1);
  CHECK(system.build_count("hello") == 2);
  CHECK(verify_module(system.installed(k1, "manual"), k1, "manual").has_value());
  REQUIRE(read_module_info(system.installed(k1, "hello")).has_value());
  CHECK(read_module_info(system.installed(k1, "hello"))->version == "1.0");
}

TEST_CASE("cells report why they did not end installed")
{
  const std::string headless = "6.1.0-99-amd64";
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel_without_headers(headless);
  system.add_module("hello", "1.0");
  system.add_module("only9", "1.0", "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^9\"\n");
  system.add_module("broken", "1.0", "AUTOINSTALL=yes\n", /*fails=*/true);
  system.add_module("bad", "1.0");
  const fs::path bad_conf = system.root() / "usr/src/bad-1.0/dkms.conf";
  write_text(bad_conf, read_text(bad_conf) + "if true; then\n  X=1\nfi fi\n");

  const PassReport report = pass(system);
  CHECK(cell_of(report, "hello", k1).status == CellStatus::installed);
  CHECK(cell_of(report, "hello", k1).cause == CellCause::none);
  CHECK(cell_of(report, "hello", headless).status == CellStatus::skipped);
  CHECK(cell_of(report, "hello", headless).cause == CellCause::no_headers);
  CHECK(cell_of(report, "only9", k1).status == CellStatus::skipped);
  CHECK(cell_of(report, "only9", k1).cause == CellCause::excluded);
  CHECK(cell_of(report, "broken", k1).status == CellStatus::failed);
  CHECK(cell_of(report, "broken", k1).cause == CellCause::build_failed);
  CHECK(cell_of(report, "bad", k1).status == CellStatus::failed);
  CHECK(cell_of(report, "bad", k1).cause == CellCause::bad_conf);
  CHECK(cell_of(report, "bad", k1).reason.find("syntax error") != std::string::npos);
  CHECK(system.build_count("only9") == 0);
  CHECK(system.build_count("bad") == 0);

  // A remembered failure keeps its cause.
  const PassReport again = pass(system);
  CHECK(cell_of(again, "broken", k1).remembered);
  CHECK(cell_of(again, "broken", k1).cause == CellCause::build_failed);
  CHECK(system.build_count("broken") == 1);
}

TEST_CASE("uninstall keeps the build for a reinstall without compiling; unbuild drops it")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  pass(system);
  REQUIRE(system.build_count("hello") == 2);
  REQUIRE(dep_names(system, k1, "hello"));
  const Root root(system.root());

  auto first = uninstall_module(root, "hello", "1.0", {k1}, /*keep_build=*/true);
  REQUIRE_MESSAGE(first.has_value(), (first ? "" : first.error()));
  CHECK(first->uninstalled == std::vector<std::string>{k1});
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));
  CHECK(fs::exists(system.installed(k2, "hello")));
  CHECK_FALSE(dep_names(system, k1, "hello"));
  CHECK(dep_names(system, k2, "hello"));
  {
    State state = state_of(system);
    const CellRecord* record = state.find("hello", "1.0", k1);
    REQUIRE(record);
    CHECK(record->outcome == Outcome::built);
    CHECK(record->files.empty());
    REQUIRE(record->built.size() == 1);
    CHECK(fs::is_regular_file(root(record->built[0].path)));
    CHECK(state.depmod_pending.empty());
  }

  // Nothing is installed there any more: the kernel is not listed.
  auto second = uninstall_module(root, "hello", "1.0", {k1}, true);
  REQUIRE(second);
  CHECK(second->uninstalled.empty());
  REQUIRE(state_of(system).find("hello", "1.0", k1));
  CHECK(state_of(system).find("hello", "1.0", k1)->outcome == Outcome::built);

  const PassReport reinstalled = pass(system);
  CHECK(cell_of(reinstalled, "hello", k1).status == CellStatus::installed);
  CHECK(cell_of(reinstalled, "hello", k1).reason == "installed the kept build");
  CHECK(cell_of(reinstalled, "hello", k2).status == CellStatus::up_to_date);
  CHECK(system.build_count("hello") == 2);
  CHECK(dep_names(system, k1, "hello"));

  // Unbuild of an installed cell: its files and record go; the build stays in the build
  // cache (by input key), as ccache keeps objects after `make clean`.
  auto unbuilt = uninstall_module(root, "hello", "1.0", {k2}, /*keep_build=*/false);
  REQUIRE(unbuilt);
  CHECK(unbuilt->uninstalled == std::vector<std::string>{k2});
  CHECK_FALSE(fs::exists(system.installed(k2, "hello")));
  CHECK_FALSE(dep_names(system, k2, "hello"));
  CHECK(state_of(system).find("hello", "1.0", k2) == nullptr);

  // Unbuild of a cell that is only built: nothing uninstalled, the record goes.
  REQUIRE(uninstall_module(root, "hello", "1.0", {k1}, true));
  auto dropped = uninstall_module(root, "hello", "1.0", {k1}, false);
  REQUIRE(dropped);
  CHECK(dropped->uninstalled.empty());
  CHECK(state_of(system).find("hello", "1.0", k1) == nullptr);

  const PassReport reinstalled_from_cache = pass(system);
  CHECK(cell_of(reinstalled_from_cache, "hello", k1).status == CellStatus::installed);
  CHECK(cell_of(reinstalled_from_cache, "hello", k1).reason == "installed from the build cache");
  CHECK(cell_of(reinstalled_from_cache, "hello", k2).status == CellStatus::installed);
  CHECK(system.build_count("hello") == 2);

  // --force (rebuild) compiles again.
  const PassReport rebuilt = pass(system, [](PassOptions& options) { options.rebuild = true; });
  CHECK(cell_of(rebuilt, "hello", k1).status == CellStatus::installed);
  CHECK(system.build_count("hello") == 4);
}

TEST_CASE("add_module_source: added once, copied to /usr/src on request, cleared by remove")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  const Root root(system.root());

  auto first = add_module_source(root, "/usr/src/hello-1.0", std::chrono::seconds(10));
  REQUIRE_MESSAGE(first.has_value(), (first ? "" : first.error()));
  CHECK(first->name == "hello");
  CHECK(first->version == "1.0");
  CHECK_FALSE(first->already_added);
  CHECK(state_of(system).added.contains("hello/1.0"));
  auto second = add_module_source(root, "/usr/src/hello-1.0", std::chrono::seconds(10));
  REQUIRE(second);
  CHECK(second->already_added);

  // A source elsewhere in the root, copied where every tool looks for it.
  system.add_module("outside", "2.0");
  fs::create_directories(system.root() / "opt");
  fs::rename(system.root() / "usr/src/outside-2.0", system.root() / "opt/outside-2.0");
  auto copied = add_module_source(root, "/opt/outside-2.0", std::chrono::seconds(10), /*copy_to_usr_src=*/true);
  REQUIRE_MESSAGE(copied.has_value(), (copied ? "" : copied.error()));
  CHECK(copied->name == "outside");
  CHECK_FALSE(copied->already_added);
  CHECK(read_text(system.root() / "usr/src/outside-2.0/dkms.conf")
        == read_text(system.root() / "opt/outside-2.0/dkms.conf"));
  CHECK(state_of(system).registered.empty());
  const PassReport report = pass(system);
  CHECK(cell_of(report, "outside", k1).status == CellStatus::installed);
  REQUIRE(state_of(system).find("outside", "2.0", k1));
  CHECK(state_of(system).find("outside", "2.0", k1)->source_dir == "/usr/src/outside-2.0");

  auto removed = remove_module(root, "hello", "1.0");
  REQUIRE_MESSAGE(removed.has_value(), (removed ? "" : removed.error()));
  CHECK_FALSE(state_of(system).added.contains("hello/1.0"));
  CHECK(state_of(system).removed.contains("hello/1.0"));
  auto again = add_module_source(root, "/usr/src/hello-1.0", std::chrono::seconds(10));
  REQUIRE(again);
  CHECK_FALSE(again->already_added);
  CHECK(state_of(system).added.contains("hello/1.0"));
  CHECK_FALSE(state_of(system).removed.contains("hello/1.0"));
}

TEST_CASE("modules DKMS installed are adopted, not rebuilt; the DKMS tree is imported once")
{
  const std::string for_k1 = module_built_for(k1, "hello", "1.0");
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  const fs::path tree = system.root() / "var/lib/dkms/hello";
  fs::create_directories(tree / "1.0");
  fs::create_symlink("/usr/src/hello-1.0", tree / "1.0/source");
  // As DKMS writes them: relative links. k2's "installed" module was built for k1.
  fs::create_symlink("1.0/" + k1 + "/x86_64", tree / ("kernel-" + k1 + "-x86_64"));
  fs::create_symlink("1.0/" + k2 + "/x86_64", tree / ("kernel-" + k2 + "-x86_64"));
  write_text(system.installed(k1, "hello"), for_k1);
  write_text(system.installed(k2, "hello"), for_k1);

  const PassReport report = pass(system);
  CHECK(cell_of(report, "hello", k1).status == CellStatus::up_to_date);
  CHECK(cell_of(report, "hello", k1).reason == "installed by DKMS; adopted");
  CHECK(cell_of(report, "hello", k2).status == CellStatus::installed);
  CHECK(cell_of(report, "hello", k2).reason != "installed by DKMS; adopted");
  CHECK(system.build_count("hello") == 1);
  CHECK(read_text(system.installed(k1, "hello")) == for_k1);
  CHECK(verify_module(system.installed(k2, "hello"), k2, "hello").has_value());
  {
    State state = state_of(system);
    CHECK(state.dkms_imported);
    CHECK(state.added.contains("hello/1.0"));
    CHECK(state.adopt.empty());
    const CellRecord* adopted = state.find("hello", "1.0", k1);
    REQUIRE(adopted);
    CHECK(adopted->outcome == Outcome::installed);
    REQUIRE(adopted->files.size() == 1);
    CHECK(adopted->files[0].path == "/usr/lib/modules/" + k1 + "/updates/dkms/hello.ko");
  }

  // The adopted cell is up to date as any other; a source DKMS adds later is not imported.
  system.add_module("late", "1.0");
  fs::create_directories(system.root() / "var/lib/dkms/late/1.0");
  fs::create_symlink("/usr/src/late-1.0", system.root() / "var/lib/dkms/late/1.0/source");
  const PassReport second = pass(system);
  CHECK(cell_of(second, "hello", k1).status == CellStatus::up_to_date);
  CHECK(cell_of(second, "hello", k1).reason.empty());
  CHECK(system.build_count("hello") == 1);
  CHECK_FALSE(state_of(system).added.contains("late/1.0"));
}

TEST_CASE("load_prebuilt keeps given modules as the cell's build; a .ko.xz is decompressed")
{
  const std::string for_k1 = module_built_for(k1, "hello", "1.0");
  const std::string for_k2 = module_built_for(k2, "hello", "1.0");
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0");
  const Root root(system.root());
  write_text(system.traces() / "prebuilt/hello.ko", for_k1);
  auto xz = compress_module(for_k2, Compression::xz);
  REQUIRE_MESSAGE(xz.has_value(), (xz ? "" : xz.error()));
  REQUIRE(*xz != for_k2);
  write_text(system.traces() / "prebuilt/hello.ko.xz", *xz);

  auto loaded = load_prebuilt(root, "hello", "1.0", k1, {system.traces() / "prebuilt/hello.ko"});
  REQUIRE_MESSAGE(loaded.has_value(), (loaded ? "" : loaded.error()));
  auto loaded_xz = load_prebuilt(root, "hello", "1.0", k2, {system.traces() / "prebuilt/hello.ko.xz"});
  REQUIRE_MESSAGE(loaded_xz.has_value(), (loaded_xz ? "" : loaded_xz.error()));
  {
    State state = state_of(system);
    for (const auto& [kernel, content] : {std::pair{k1, for_k1}, std::pair{k2, for_k2}}) {
      const CellRecord* record = state.find("hello", "1.0", kernel);
      REQUIRE(record);
      CHECK(record->outcome == Outcome::built);
      CHECK(record->input_key == k_prebuilt_key);
      REQUIRE(record->built.size() == 1);
      CHECK(fs::path(record->built[0].path).filename() == "0-hello.ko");
      CHECK(read_text(root(record->built[0].path)) == content);
    }
  }

  const PassReport report = pass(system);
  for (const auto& kernel : {k1, k2}) {
    CHECK(cell_of(report, "hello", kernel).status == CellStatus::installed);
    CHECK(cell_of(report, "hello", kernel).reason == "installed the kept build");
    CHECK(verify_module(system.installed(kernel, "hello"), kernel, "hello").has_value());
    CHECK(dep_names(system, kernel, "hello"));
  }
  CHECK(system.build_count("hello") == 0);
  {
    State state = state_of(system);
    REQUIRE(state.find("hello", "1.0", k1));
    CHECK(state.find("hello", "1.0", k1)->outcome == Outcome::installed);
    CHECK(state.find("hello", "1.0", k1)->input_key != k_prebuilt_key);
  }
  const PassReport again = pass(system);
  CHECK(cell_of(again, "hello", k1).status == CellStatus::up_to_date);
  CHECK(cell_of(again, "hello", k2).status == CellStatus::up_to_date);
  CHECK(system.build_count("hello") == 0);
}

TEST_SUITE_END();
