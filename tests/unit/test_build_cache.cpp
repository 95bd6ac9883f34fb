// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"
#include "fixtures/temp_dir.hpp"

#include "kmodsync/build_cache.hpp"
#include "kmodsync/engine.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/input_key.hpp"
#include "kmodsync/string_util.hpp"

#include <archive.h>
#include <archive_entry.h>

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

namespace {

// A tar.zst written by hand, to feed the importer what a hostile store could send.
std::string archive_of(const std::vector<std::pair<std::string, std::string>>& files, bool symlink = false)
{
  std::string buffer(1 << 20, '\0');
  std::size_t used = 0;
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  archive_write_add_filter_zstd(writer);
  archive_write_open_memory(writer, buffer.data(), buffer.size(), &used);
  for (const auto& [name, content] : files) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_filetype(entry, symlink ? AE_IFLNK : AE_IFREG);
    if (symlink) {
      archive_entry_set_symlink(entry, content.c_str());
    }
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, symlink ? 0 : static_cast<la_int64_t>(content.size()));
    archive_write_header(writer, entry);
    if (!symlink) {
      archive_write_data(writer, content.data(), content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
  buffer.resize(used);
  return buffer;
}

const BuildCache::Acceptor accept_all = [](const CachedResult&) -> Expected<void> { return {}; };

bool cache_is_empty(const fs::path& root)
{
  std::error_code ec;
  const fs::path dir = root / "var/lib/kmodsync/cache";
  return !fs::exists(dir, ec) || fs::is_empty(dir, ec)
         || std::none_of(fs::recursive_directory_iterator(dir), fs::recursive_directory_iterator(),
                         [](const auto& entry) { return entry.is_regular_file(); });
}

} // namespace

// Two roots, each with its cache: what one exports, the other imports.
struct TwoRoots
{
  kmodsync::testing::TempDir a;
  kmodsync::testing::TempDir b;
  const BuildCache cache_a{Root(a.path()), 1 << 30};
  const BuildCache cache_b{Root(b.path()), 1 << 30};
  const fs::path work = a.path() / "work";
};

TEST_CASE_FIXTURE(TwoRoots, "an exported entry imports whole into another root's cache")
{
  const auto one = write_module(work, "one", 3000);
  const auto two = write_module(work, "two", 10);
  kmodsync::testing::write_text(work / "build.log", "make: built\n");
  REQUIRE(cache_a.store(key_a, true, {one, two}, work / "build.log", "", "").has_value());
  CHECK_FALSE(cache_b.export_entry(key_a).has_value());

  auto object = cache_a.export_entry(key_a);
  REQUIRE(object.has_value());
  std::vector<std::string> seen;
  auto imported = cache_b.import_entry(key_a, *object, [&](const CachedResult& result) -> Expected<void> {
    for (const auto& module : result.modules) {
      seen.push_back(fs::path(module.path).filename().string());
    }
    return {};
  });
  REQUIRE_MESSAGE(imported.has_value(), (imported ? "" : imported.error()));
  CHECK(seen == std::vector<std::string>{"0-one.ko", "1-two.ko"});
  auto hit = cache_b.lookup(key_a);
  REQUIRE(hit.has_value());
  REQUIRE(hit->modules.size() == 2);
  CHECK(kmodsync::testing::read_text(Root(b.path())(hit->modules[0].path)) == kmodsync::testing::read_text(one));
  CHECK(kmodsync::testing::read_text(Root(b.path())(hit->log)) == "make: built\n");

  // Failures travel too.
  REQUIRE(cache_a.store(key_b, false, {}, {}, "make failed (exit status 2)", "x.c:1: error: nope").has_value());
  auto failure = cache_a.export_entry(key_b);
  REQUIRE(failure.has_value());
  auto imported_failure = cache_b.import_entry(key_b, *failure, accept_all);
  REQUIRE(imported_failure.has_value());
  CHECK_FALSE(imported_failure->ok);
  CHECK(imported_failure->first_error == "x.c:1: error: nope");
}

TEST_CASE_FIXTURE(TwoRoots, "a damaged, truncated, hostile or unwanted object is refused and leaves nothing")
{
  REQUIRE(cache_a.store(key_a, true, {write_module(work, "one", 20000)}, {}, "", "").has_value());
  const std::string good = *cache_a.export_entry(key_a);

  std::string flipped = good;
  for (std::size_t i = flipped.size() / 3; i < flipped.size() / 3 + 8; ++i) {
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
  }
  const std::string module = std::string(20000, 'm') + "one";
  const std::string manifest_of_one = R"({"ok": true, "modules": [{"file": "0-one.ko", "sha256": ")"
                                      + sha256_text(module) + R"("}]})";
  const std::vector<std::pair<std::string, std::string>> cases = {
    {"flipped bytes", flipped},
    {"truncated", good.substr(0, good.size() / 2)},
    {"empty", ""},
    {"not an archive", std::string(4096, 'x')},
    {"a path out of the entry", archive_of({{"result.json", manifest_of_one}, {"../0-one.ko", module}})},
    {"a directory", archive_of({{"sub/result.json", manifest_of_one}})},
    {"a symlink", archive_of({{"result.json", "/etc/passwd"}}, true)},
    {"a module that does not match its hash",
     archive_of({{"result.json", manifest_of_one}, {"0-one.ko", module + "!"}})},
    {"a manifest naming a file outside",
     archive_of({{"result.json", R"({"ok": true, "modules": [{"file": "../../etc/passwd", "sha256": "00"}]})"}})},
    {"a success without modules", archive_of({{"result.json", R"({"ok": true, "modules": []})"}})},
    {"a manifest that is not JSON", archive_of({{"result.json", "{ok"}})},
  };
  for (const auto& [what, object] : cases) {
    CAPTURE(what);
    auto imported = cache_b.import_entry(key_a, object, accept_all);
    CHECK_FALSE(imported.has_value());
    CHECK_FALSE(cache_b.lookup(key_a).has_value());
    CHECK(cache_is_empty(b.path()));
  }
  CHECK_FALSE(fs::exists(b.path() / "etc/passwd"));
  CHECK_FALSE(fs::exists(b.path() / "var/lib/kmodsync/0-one.ko"));

  // Whole and hashed right, but the caller's check (vermagic, module names) says no.
  auto refused = cache_b.import_entry(key_a, good, [](const CachedResult&) -> Expected<void> {
    return error("vermagic is for another kernel");
  });
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("vermagic is for another kernel") != std::string::npos);
  CHECK(cache_is_empty(b.path()));
  CHECK(cache_b.import_entry(key_a, good, accept_all).has_value());
}

TEST_CASE_FIXTURE(TwoRoots, "what a refused object says can be shown on a terminal, whatever its bytes")
{
  REQUIRE(cache_a.store(key_a, true, {write_module(work, "one", 20000)}, work / "no-log", "", "").has_value());
  const std::string good = *cache_a.export_entry(key_a);

  const auto shown_safely = [](const std::string& message) {
    return util::is_valid_utf8(message)
           && std::none_of(message.begin(), message.end(), [](char c) { return c >= 0 && c < 0x20; });
  };
  std::vector<std::string> objects = {
    archive_of({{"\x1b[2J\xff\xfe/evil", "x"}}),
    archive_of({{"result.json", "{\"ok\": tr\x1b]0;owned\x07\xff"}}),
    archive_of({{"result.json", R"({"ok": true, "modules": [{"file": "a/\u001b[31m", "sha256": "00"}]})"}}),
  };
  // A damaged zstd stream decodes to garbage tar headers whose names are arbitrary bytes.
  for (std::size_t at = 0; at + 32 < good.size(); at += good.size() / 40 + 1) {
    std::string damaged = good;
    std::fill_n(damaged.begin() + static_cast<std::ptrdiff_t>(at), 32, '\xff');
    objects.push_back(damaged);
  }
  std::size_t refused = 0;
  for (const auto& object : objects) {
    auto imported = cache_b.import_entry(key_a, object, accept_all);
    if (!imported) {
      ++refused;
      CAPTURE(imported.error());
      CHECK(shown_safely(imported.error()));
    }
  }
  CHECK(refused >= 3);

  // A remembered failure's first error from another machine is shown the same way.
  REQUIRE(cache_a.store(key_b, false, {}, {}, "make failed", "x.c:1: \x1b[2Jerror: \xff").has_value());
  auto failure = cache_b.import_entry(key_b, *cache_a.export_entry(key_b), accept_all);
  REQUIRE(failure.has_value());
  CHECK(failure->first_error.starts_with("x.c:1: \\x1b[2Jerror: "));
  CHECK(shown_safely(failure->first_error));
}

TEST_CASE("build keys do not depend on where the root, the build directory or the headers are")
{
  ModuleSpec spec;
  spec.name = "hello";
  spec.version = "1.0";
  const auto spec_at = [&](const std::string& root, const std::string& headers) {
    ModuleSpec located = spec;
    located.make_command = "make -C " + headers + " M=" + root + "/var/lib/kmodsync/build/KV/hello/1.0/build";
    located.values.variables["kernel_source_dir"][0] = headers;
    located.values.variables["source_tree"][0] = root + "/usr/src";
    return located;
  };
  const auto key_for = [&](const std::string& root, const std::string& headers, const std::string& fingerprint) {
    Kernel kernel;
    kernel.release = "6.1.0-55-amd64";
    kernel.arch = "x86_64";
    kernel.fingerprint = fingerprint;
    PathAliases aliases;
    aliases.add(root + "/var/lib/kmodsync/build/KV/hello/1.0/build", "@build_dir@");
    aliases.add(root + "/var/lib/kmodsync/build/KV", "@dkms_tree@");
    aliases.add(headers, "@kernel_source_dir@");
    aliases.add(root + "/", "");
    return compute_build_key("sourcehash", spec_at(root, headers), kernel, {"gcc 12", "make 4.3"}, aliases);
  };
  const std::string here = key_for("/tmp/a", "/usr/src/linux-headers-6.1.0-55-amd64", "fp1");
  CHECK(here.size() == 64);
  CHECK(key_for("/tmp/other-root", "/usr/src/linux-headers-6.1.0-55-amd64", "fp1") == here);
  CHECK(key_for("/tmp/a", "/usr/src/kernels/6.1.0-55-amd64", "fp1") == here);
  CHECK(key_for("/tmp/a", "/usr/src/linux-headers-6.1.0-55-amd64", "fp2") != here);
  // The finished form is the cell's business: one build key, two input keys.
  CHECK(compute_input_key(here, "signer=a") != compute_input_key(here, "signer=b"));
}
}
