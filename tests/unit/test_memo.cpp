// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"
#include "fixtures/temp_dir.hpp"

#include "kmodsync/engine.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/memo.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
using kmodsync::testing::read_text;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
namespace fs = std::filesystem;

namespace {

const std::string k1 = "6.1.0-55-amd64";
const std::string k2 = "6.12.107+deb12-amd64";

struct stat aged_stat(const fs::path& file, int seconds_ago)
{
  struct stat info{};
  REQUIRE(stat(file.c_str(), &info) == 0);
  info.st_mtim.tv_sec -= seconds_ago;
  info.st_ctim.tv_sec -= seconds_ago;
  return info;
}

PassReport sync(const FakeSystem& system, bool dry_run = false)
{
  PassOptions options;
  options.root = Root(system.root());
  options.jobs = 2;
  options.dry_run = dry_run;
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
  return *report;
}

// How many times the dkms.conf of the fake sources was sourced by bash.
std::size_t evaluations(const FakeSystem& system)
{
  std::error_code ec;
  if (!fs::exists(system.traces() / "evaluations", ec)) {
    return 0;
  }
  const std::string text = read_text(system.traces() / "evaluations");
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string counting_conf(const FakeSystem& system)
{
  return "AUTOINSTALL=yes\necho \"$module $kernelver\" >>" + (system.traces() / "evaluations").string() + "\n";
}

} // namespace

TEST_SUITE("memo")
{
TEST_CASE("a file's hash is reused while its stat is unchanged, and recomputed when it changes")
{
  const TempDir dir;
  write_text(dir / "a.c", "int a;\n");
  const auto info = aged_stat(dir / "a.c", 60);
  Memo memo(dir / "memo.json");
  const auto first = memoized_file_hash(memo, dir / "a.c", info);
  REQUIRE(first.has_value());
  CHECK(*first == sha256_text("int a;\n"));

  // Same stat: the memo answers, without reading the file (whose content now differs).
  write_text(dir / "a.c", "int b;\n");
  CHECK(*memoized_file_hash(memo, dir / "a.c", info) == *first);
  // A different stat (as any write gives): hashed again.
  auto changed = info;
  changed.st_mtim.tv_nsec += 1;
  CHECK(*memoized_file_hash(memo, dir / "a.c", changed) == sha256_text("int b;\n"));

  // It survives a save and a reload; a damaged file is an empty memo.
  REQUIRE(memo.save().has_value());
  Memo reloaded(dir / "memo.json");
  CHECK(*memoized_file_hash(reloaded, dir / "a.c", changed) == sha256_text("int b;\n"));
  write_text(dir / "memo.json", "{\"file:x\": [tr");
  Memo damaged(dir / "memo.json");
  CHECK_FALSE(damaged.get("file:x").has_value());
  CHECK(*memoized_file_hash(damaged, dir / "a.c", changed) == sha256_text("int b;\n"));
}

TEST_CASE("a file changed in the last seconds is hashed but not remembered")
{
  const TempDir dir;
  write_text(dir / "fresh.c", "int x;\n");
  struct stat info{};
  REQUIRE(stat((dir / "fresh.c").c_str(), &info) == 0);
  Memo memo;
  REQUIRE(memoized_file_hash(memo, dir / "fresh.c", info).has_value());
  // Same stat, new content within the same timestamp tick: still seen.
  write_text(dir / "fresh.c", "int y;\n");
  CHECK(*memoized_file_hash(memo, dir / "fresh.c", info) == sha256_text("int y;\n"));
}

TEST_CASE("a warm pass sources no dkms.conf; a changed dkms.conf, override or kernel is evaluated again")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_kernel(k2);
  system.add_module("hello", "1.0", counting_conf(system));
  system.add_module("world", "2.0", counting_conf(system));
  sync(system);
  const std::size_t cold = evaluations(system);
  CHECK(cold >= 4);
  CHECK(system.build_count("hello") == 2);

  for (int i = 0; i < 2; ++i) {
    const auto report = sync(system);
    CHECK(evaluations(system) == cold);
    CHECK(std::all_of(report.cells.begin(), report.cells.end(),
                      [](const CellReport& c) { return c.status == CellStatus::up_to_date; }));
  }

  // An override for one module: its cells are evaluated again (and see the override).
  write_text(system.root() / "etc/dkms/hello.conf", "BUILD_EXCLUSIVE_KERNEL=\"^6\\.12\\.\"\n");
  auto report = sync(system);
  CHECK(evaluations(system) == cold + 2);
  const auto hello_k1 = std::find_if(report.cells.begin(), report.cells.end(),
                                     [](const CellReport& c) { return c.module == "hello" && c.kernel == k1; });
  REQUIRE(hello_k1 != report.cells.end());
  CHECK(hello_k1->status == CellStatus::skipped);

  // The dkms.conf itself edited: evaluated again for every kernel.
  const fs::path conf = system.root() / "usr/src/world-2.0/dkms.conf";
  write_text(conf, read_text(conf) + "# edited\n");
  sync(system);
  CHECK(evaluations(system) == cold + 4);

  // A kernel added: only its cells are evaluated.
  system.add_kernel("6.13.0-1-amd64");
  sync(system);
  CHECK(evaluations(system) == cold + 6);

  // A dry run on a fresh memo evaluates but writes no memo.
  fs::remove(system.root() / "var/lib/kmodsync/memo.json");
  sync(system, /*dry_run=*/true);
  CHECK(evaluations(system) == cold + 12);
  CHECK_FALSE(fs::exists(system.root() / "var/lib/kmodsync/memo.json"));
}
}
