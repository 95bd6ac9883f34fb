// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"
#include "fixtures/temp_dir.hpp"

#include "kmodsync/build_cache.hpp"
#include "kmodsync/engine.hpp"
#include "kmodsync/hash.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
namespace fs = std::filesystem;

namespace {

const std::string k1 = "6.1.0-55-amd64";
const std::string key_a(64, 'a');
const std::string key_b(64, 'b');

PassReport sync(const FakeSystem& system, bool retry = false)
{
  PassOptions options;
  options.root = Root(system.root());
  options.jobs = 2;
  options.retry = retry;
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
  return *report;
}

const CellReport& cell_of(const PassReport& report, const std::string& module)
{
  const auto it = std::find_if(report.cells.begin(), report.cells.end(),
                               [&](const CellReport& c) { return c.module == module && c.kernel == k1; });
  REQUIRE(it != report.cells.end());
  return *it;
}

fs::path write_module(const fs::path& dir, const std::string& name, std::size_t size)
{
  const fs::path file = dir / (name + ".ko");
  kmodsync::testing::write_text(file, std::string(size, 'm') + name);
  return file;
}

} // namespace

TEST_SUITE("build_cache")
{
TEST_CASE("a stored result comes back whole, with its log; a tampered module is not used")
{
  kmodsync::testing::TempDir root;
  const BuildCache cache(Root(root.path()), 1 << 30);
  CHECK_FALSE(cache.lookup(key_a).has_value());
  const fs::path work = root.path() / "work";
  const auto module = write_module(work, "hello", 100);
  kmodsync::testing::write_text(work / "build.log", "make: ok\n");
  auto stored = cache.store(key_a, true, {module}, work / "build.log", "", "");
  REQUIRE(stored.has_value());

  auto hit = cache.lookup(key_a);
  REQUIRE(hit.has_value());
  CHECK(hit->ok);
  REQUIRE(hit->modules.size() == 1);
  const fs::path cached = Root(root.path())(hit->modules[0].path);
  CHECK(kmodsync::testing::read_text(cached) == kmodsync::testing::read_text(module));
  CHECK(hit->modules[0].sha256 == sha256_text(kmodsync::testing::read_text(module)));
  CHECK(kmodsync::testing::read_text(Root(root.path())(hit->log)) == "make: ok\n");

  kmodsync::testing::write_text(cached, "tampered");
  CHECK_FALSE(cache.lookup(key_a).has_value());
  CHECK_FALSE(cache.lookup("not-a-key").has_value());
}

TEST_CASE("failures are stored with their reason and first error")
{
  kmodsync::testing::TempDir root;
  const BuildCache cache(Root(root.path()), 1 << 30);
  REQUIRE(cache.store(key_b, false, {}, {}, "make failed (exit status 2)", "x.c:1: error: nope").has_value());
  auto hit = cache.lookup(key_b);
  REQUIRE(hit.has_value());
  CHECK_FALSE(hit->ok);
  CHECK(hit->reason == "make failed (exit status 2)");
  CHECK(hit->first_error == "x.c:1: error: nope");
  CHECK(hit->modules.empty());
  CHECK(cache.stats().failures == 1);
}

TEST_CASE("over its bound the least recently used entries go first; clear empties it")
{
  kmodsync::testing::TempDir root;
  const fs::path work = root.path() / "work";
  const BuildCache big(Root(root.path()), 1 << 30);
  const std::string key_c(64, 'c');
  REQUIRE(big.store(key_a, true, {write_module(work, "a", 4000)}, {}, "", "").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(big.store(key_b, true, {write_module(work, "b", 4000)}, {}, "", "").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(big.store(key_c, true, {write_module(work, "c", 4000)}, {}, "", "").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(big.lookup(key_a).has_value()); // a is now the most recently used
  CHECK(big.stats().entries == 3);

  const BuildCache small(Root(root.path()), 9000);
  small.evict();
  CHECK(small.lookup(key_a).has_value());
  CHECK_FALSE(small.lookup(key_b).has_value());
  CHECK(small.lookup(key_c).has_value());
  CHECK(small.stats().bytes <= 9000);

  REQUIRE(small.clear().has_value());
  CHECK(small.stats().entries == 0);
}

TEST_CASE("a kernel removed and installed again gets its modules from the cache, failures included")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  system.add_module("broken", "1.0", "AUTOINSTALL=yes\n", true);
  sync(system);
  REQUIRE(system.build_count("hello") == 1);
  REQUIRE(system.build_count("broken") == 1);

  REQUIRE(remove_kernel(Root(system.root()), k1).has_value());
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));

  const PassReport again = sync(system);
  CHECK(cell_of(again, "hello").status == CellStatus::installed);
  CHECK(cell_of(again, "hello").reason == "installed from the build cache");
  CHECK(fs::exists(system.installed(k1, "hello")));
  CHECK(cell_of(again, "broken").status == CellStatus::failed);
  CHECK(cell_of(again, "broken").remembered);
  CHECK(system.build_count("hello") == 1);
  CHECK(system.build_count("broken") == 1);

  // --retry compiles a cached failure again.
  REQUIRE(remove_kernel(Root(system.root()), k1).has_value());
  sync(system, /*retry=*/true);
  CHECK(system.build_count("broken") == 2);
  CHECK(system.build_count("hello") == 1);
}
}
