// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/state.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::CellRecord;
using kmodsync::InstalledFile;
using kmodsync::Outcome;
using kmodsync::State;
using kmodsync::testing::read_text;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

CellRecord cell(const std::string& module, const std::string& version, const std::string& kernel)
{
  CellRecord record;
  record.module = module;
  record.version = version;
  record.kernel = kernel;
  return record;
}

CellRecord full_cell()
{
  CellRecord record = cell("v4l2loopback", "0.12.7", "6.1.0-55-amd64");
  record.source_dir = "/usr/src/v4l2loopback-0.12.7";
  record.input_key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  record.outcome = Outcome::installed;
  record.reason = "built";
  record.first_error = "";
  record.log = "/var/lib/kmodsync/log/v4l2loopback-0.12.7-6.1.0-55-amd64.log";
  record.files = {
    {"/usr/lib/modules/6.1.0-55-amd64/updates/dkms/v4l2loopback.ko",
     "aa00000000000000000000000000000000000000000000000000000000000000", 123456, 1733040000123456789},
    {"/usr/lib/modules/6.1.0-55-amd64/updates/dkms/other.ko",
     "bb00000000000000000000000000000000000000000000000000000000000000", 0, -5},
  };
  record.time = 1733040000;
  return record;
}

void check_same(const CellRecord& a, const CellRecord& b)
{
  CHECK(a.module == b.module);
  CHECK(a.version == b.version);
  CHECK(a.kernel == b.kernel);
  CHECK(a.source_dir == b.source_dir);
  CHECK(a.input_key == b.input_key);
  CHECK(a.outcome == b.outcome);
  CHECK(a.reason == b.reason);
  CHECK(a.first_error == b.first_error);
  CHECK(a.log == b.log);
  CHECK(a.time == b.time);
  REQUIRE(a.files.size() == b.files.size());
  for (std::size_t i = 0; i < a.files.size(); ++i) {
    CHECK(a.files[i].path == b.files[i].path);
    CHECK(a.files[i].sha256 == b.files[i].sha256);
    CHECK(a.files[i].size == b.files[i].size);
    CHECK(a.files[i].mtime_ns == b.files[i].mtime_ns);
  }
}

State load_ok(const fs::path& file)
{
  auto state = State::load(file);
  REQUIRE_MESSAGE(state.has_value(), state.error());
  return std::move(*state);
}

} // namespace

TEST_SUITE_BEGIN("state");

TEST_CASE("save and load round-trip every field")
{
  const TempDir dir;
  State state;
  state.cells.push_back(full_cell());
  CellRecord failed = cell("broken", "2.0", "6.12.107+deb12-amd64");
  failed.outcome = Outcome::failed;
  failed.reason = "make failed (exit status 2)";
  failed.first_error = "broken.c:3:1: error: expected ';' before '}' token";
  failed.input_key = "ff";
  state.cells.push_back(failed);
  CellRecord skipped = cell("skippy", "1", "6.1.0-55-amd64");
  skipped.outcome = Outcome::skipped;
  skipped.reason = "BUILD_EXCLUSIVE_KERNEL=\"^4\\.\" does not match 6.1.0-55-amd64";
  state.cells.push_back(skipped);
  state.registered = {"/opt/src/zeta-1.0", "/opt/src/alpha-2.0"};
  state.removed = {"old/1.0", "gone/0.1"};
  state.depmod_pending = {"6.1.0-55-amd64", "6.12.107+deb12-amd64"};

  const fs::path file = dir / "var/lib/kmodsync/state.json";
  REQUIRE(state.save(file).has_value());
  const State loaded = load_ok(file);

  // Cells come back sorted by module, version, kernel.
  REQUIRE(loaded.cells.size() == 3);
  check_same(loaded.cells[0], failed);
  check_same(loaded.cells[1], skipped);
  check_same(loaded.cells[2], full_cell());
  // Registered directories keep their order; the sets are sets.
  CHECK(loaded.registered == std::vector<std::string>{"/opt/src/zeta-1.0", "/opt/src/alpha-2.0"});
  CHECK(loaded.removed == std::set<std::string>{"gone/0.1", "old/1.0"});
  CHECK(loaded.depmod_pending == std::set<std::string>{"6.1.0-55-amd64", "6.12.107+deb12-amd64"});
}

TEST_CASE("the state file is JSON with a format number and readable outcomes")
{
  const TempDir dir;
  State state;
  state.cells.push_back(full_cell());
  REQUIRE(state.save(dir / "state.json").has_value());
  const auto document = nlohmann::json::parse(read_text(dir / "state.json"));
  CHECK(document.at("format") == 1);
  CHECK(document.at("cells").size() == 1);
  CHECK(document.at("cells")[0].at("outcome") == "installed");
  CHECK(document.at("cells")[0].at("files")[0].at("mtime_ns") == 1733040000123456789LL);
  CHECK(kmodsync::testing::file_mode(dir / "state.json") == 0644);
}

TEST_CASE("a missing state file loads as an empty state")
{
  const TempDir dir;
  const State state = load_ok(dir / "no/such/state.json");
  CHECK(state.cells.empty());
  CHECK(state.registered.empty());
  CHECK(state.removed.empty());
  CHECK(state.depmod_pending.empty());
}

TEST_CASE("a corrupt state file is an error naming the file")
{
  const TempDir dir;
  const fs::path file = dir / "state.json";
  for (const char* text : {"{\"format\": 1, \"cells\": [", "", "not json at all", "[1, 2]", "null",
                           "{\"format\": 1, \"cells\": [{\"version\": \"1\", \"kernel\": \"k\"}]}",
                           "{\"format\": 1, \"cells\": [{\"module\": 5, \"version\": \"1\", \"kernel\": \"k\"}]}"}) {
    INFO(text);
    write_text(file, text);
    const auto state = State::load(file);
    REQUIRE_FALSE(state.has_value());
    CHECK(state.error().starts_with(file.string() + ": corrupt state file: "));
  }
}

TEST_CASE("a state file of an unknown format is an error naming the file")
{
  const TempDir dir;
  write_text(dir / "state.json", "{\"format\": 2, \"cells\": []}");
  const auto state = State::load(dir / "state.json");
  REQUIRE_FALSE(state.has_value());
  CHECK(state.error() == (dir / "state.json").string() + ": unknown state format 2");
}

TEST_CASE("a state file of a directory that cannot be read is an error naming it")
{
  const TempDir dir;
  fs::create_directories(dir / "state.json");
  const auto state = State::load(dir / "state.json");
  REQUIRE_FALSE(state.has_value());
  CHECK(state.error().find((dir / "state.json").string()) != std::string::npos);
}

TEST_CASE("fields left out of a cell take their defaults")
{
  const TempDir dir;
  write_text(dir / "state.json",
             R"({"format": 1, "cells": [{"module": "m", "version": "1", "kernel": "k"}]})");
  const State state = load_ok(dir / "state.json");
  REQUIRE(state.cells.size() == 1);
  check_same(state.cells[0], cell("m", "1", "k"));
  CHECK(state.cells[0].outcome == Outcome::skipped);
}

TEST_CASE("put replaces the record of the same cell and adds a new one otherwise")
{
  State state;
  CellRecord first = cell("m", "1", "k1");
  first.reason = "first";
  state.put(first);
  CellRecord other_kernel = cell("m", "1", "k2");
  state.put(other_kernel);
  CellRecord other_version = cell("m", "2", "k1");
  state.put(other_version);
  CHECK(state.cells.size() == 3);

  CellRecord replacement = cell("m", "1", "k1");
  replacement.reason = "second";
  replacement.outcome = Outcome::failed;
  state.put(replacement);
  REQUIRE(state.cells.size() == 3);
  CellRecord* found = state.find("m", "1", "k1");
  REQUIRE(found != nullptr);
  CHECK(found->reason == "second");
  CHECK(found->outcome == Outcome::failed);
  CHECK(found == &state.cells[0]);
  CHECK(state.find("m", "1", "k3") == nullptr);
  CHECK(state.find("x", "1", "k1") == nullptr);
}

TEST_CASE("non-UTF-8 bytes in a reason do not make save throw, and load gives U+FFFD")
{
  const TempDir dir;
  State state;
  CellRecord record = cell("m", "1", "k");
  record.outcome = Outcome::failed;
  record.reason = "bad \xff byte";
  record.first_error = "\xc3(";
  state.put(record);
  kmodsync::Expected<void> saved;
  CHECK_NOTHROW(saved = state.save(dir / "state.json"));
  REQUIRE(saved.has_value());
  const State loaded = load_ok(dir / "state.json");
  REQUIRE(loaded.cells.size() == 1);
  CHECK(loaded.cells[0].reason == "bad \xef\xbf\xbd byte");
  CHECK(loaded.cells[0].first_error == "\xef\xbf\xbd(");
}

TEST_CASE("save replaces the previous state file")
{
  const TempDir dir;
  State state;
  state.put(cell("a", "1", "k"));
  REQUIRE(state.save(dir / "state.json").has_value());
  state.cells.clear();
  state.put(cell("b", "1", "k"));
  REQUIRE(state.save(dir / "state.json").has_value());
  const State loaded = load_ok(dir / "state.json");
  REQUIRE(loaded.cells.size() == 1);
  CHECK(loaded.cells[0].module == "b");
  // Nothing but the state file is left in its directory.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("save fails with a message when the directory cannot be made")
{
  const TempDir dir;
  write_text(dir / "file", "in the way");
  State state;
  const auto saved = state.save(dir / "file/state.json");
  REQUIRE_FALSE(saved.has_value());
  CHECK(saved.error().find((dir / "file").string()) != std::string::npos);
}

TEST_CASE("StatePaths lays out /var/lib/kmodsync inside the root")
{
  const kmodsync::StatePaths paths(kmodsync::Root("/tmp/r"));
  CHECK(paths.dir == "/tmp/r/var/lib/kmodsync");
  CHECK(paths.state_file == "/tmp/r/var/lib/kmodsync/state.json");
  CHECK(paths.lock_file.parent_path() == paths.dir);
  CHECK(paths.build_dir.parent_path() == paths.dir);
  CHECK(paths.log_dir.parent_path() == paths.dir);
  CHECK(paths.build_dir != paths.log_dir);
}

TEST_CASE("to_string(Outcome)")
{
  CHECK(std::string(kmodsync::to_string(Outcome::installed)) == "installed");
  CHECK(std::string(kmodsync::to_string(Outcome::failed)) == "failed");
  CHECK(std::string(kmodsync::to_string(Outcome::skipped)) == "skipped");
}

TEST_SUITE_END();

TEST_CASE("a number that is not an integer where one belongs is a corrupt state (fuzz_state)")
{
  const TempDir dir;
  for (const char* text : {R"({"format":1e300})",
                           R"({"format":1,"cells":[{"module":"a","version":"1","kernel":"k","time":1e300}]})",
                           R"({"format":1,"cells":[{"module":"a","version":"1","kernel":"k","files":[{"path":"/x","sha256":"0","size":0.5}]}]})"}) {
    INFO(text);
    write_text(dir / "state.json", text);
    auto state = State::load(dir / "state.json");
    REQUIRE_FALSE(state.has_value());
    CHECK(state.error().starts_with((dir / "state.json").string() + ": corrupt state file: "));
  }
}
