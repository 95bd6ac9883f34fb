// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"

#include "kmodsync/depmod_cache.hpp"
#include "kmodsync/engine.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/state.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

using namespace kmodsync;
using kmodsync::test::FakeSystem;
using kmodsync::testing::read_text;
using kmodsync::testing::shell_output;
using kmodsync::testing::write_text;
namespace fs = std::filesystem;

namespace {

const std::string k1 = "6.1.0-55-amd64";

void sync(const FakeSystem& system)
{
  PassOptions options;
  options.root = Root(system.root());
  options.jobs = 2;
  Reporter reporter;
  auto report = run_pass(options, reporter);
  REQUIRE_MESSAGE(report.has_value(), (report ? "" : report.error()));
}

fs::path modules_dir(const FakeSystem& system)
{
  return system.root() / "lib/modules" / k1;
}

fs::path kernel_cache(const FakeSystem& system)
{
  return system.root() / "var/lib/kmodsync/depmod-cache" / k1;
}

std::vector<fs::path> entries(const FakeSystem& system)
{
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kernel_cache(system), ec)) {
    found.push_back(entry.path());
  }
  return found;
}

// Every index depmod writes, by name.
std::map<std::string, std::string> indexes(const fs::path& dir)
{
  std::map<std::string, std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("modules.") && name != "modules.order" && name != "modules.builtin"
        && name != "modules.builtin.modinfo") {
      found[name] = read_text(entry.path());
    }
  }
  return found;
}

// What a real depmod makes of the tree as it is now, in a copy of it.
std::map<std::string, std::string> fresh_depmod(const FakeSystem& system)
{
  kmodsync::testing::TempDir scratch;
  const fs::path copy = scratch.path() / "lib/modules" / k1;
  fs::create_directories(copy.parent_path());
  fs::copy(modules_dir(system), copy, fs::copy_options::recursive | fs::copy_options::skip_symlinks);
  shell_output("depmod -a -b '" + scratch.path().string() + "' " + k1 + " 2>/dev/null");
  return indexes(copy);
}

DepmodTree fingerprint(const FakeSystem& system)
{
  auto tree = fingerprint_depmod_tree(Root(system.root()), modules_dir(system), fs::canonical("/usr/sbin/depmod"));
  REQUIRE_MESSAGE(tree.has_value(), (tree ? "" : tree.error()));
  return *tree;
}

} // namespace

TEST_SUITE_BEGIN("depmod cache");

TEST_CASE("a module tree seen before gets depmod's indexes back from the cache, as depmod would write them")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  system.add_module("other", "2.0");
  sync(system);
  REQUIRE(entries(system).size() == 1);
  const auto after_first = indexes(modules_dir(system));
  REQUIRE(after_first.at("modules.dep").find("hello.ko") != std::string::npos);
  CHECK(after_first == fresh_depmod(system));

  // kernel-remove leaves depmod to the kernel's removal; the pass that puts the same
  // modules back finds the very tree again.
  REQUIRE(remove_kernel(Root(system.root()), k1).has_value());
  CHECK_FALSE(fs::exists(system.installed(k1, "hello")));
  // The stored indexes are what the next pass writes: mark the stored modules.dep (with
  // its hash in the manifest) to see that no depmod ran.
  const fs::path entry = entries(system).front();
  const std::string marked = read_text(entry / "modules.dep") + "# from the depmod cache\n";
  write_text(entry / "modules.dep", marked);
  auto manifest = nlohmann::json::parse(read_text(entry / "manifest.json"));
  manifest["modules.dep"] = sha256_text(marked);
  write_text(entry / "manifest.json", manifest.dump());
  sync(system);
  CHECK(fs::exists(system.installed(k1, "hello")));
  CHECK(read_text(modules_dir(system) / "modules.dep") == marked);
  CHECK(entries(system).size() == 1);
}

TEST_CASE("a damaged cache entry is dropped and depmod runs")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  sync(system);
  REQUIRE(entries(system).size() == 1);
  const fs::path entry = entries(system).front();
  write_text(entry / "modules.alias", "alias evil hello\n"); // the manifest's hash no longer matches

  REQUIRE(remove_kernel(Root(system.root()), k1).has_value());
  sync(system);
  CHECK(read_text(modules_dir(system) / "modules.alias").find("evil") == std::string::npos);
  CHECK(indexes(modules_dir(system)) == fresh_depmod(system));
  // Stored again, whole.
  REQUIRE(entries(system).size() == 1);
  CHECK(read_text(entries(system).front() / "modules.alias").find("evil") == std::string::npos);
}

TEST_CASE("the tree's key follows the bytes depmod reads, not their timestamps")
{
  FakeSystem system;
  system.add_kernel(k1);
  system.add_module("hello", "1.0");
  sync(system);
  const DepmodTree before = fingerprint(system);
  CHECK(fingerprint(system).key == before.key);
  CHECK(fingerprint(system).stat_print == before.stat_print);

  const fs::path module = system.installed(k1, "hello");
  const std::string bytes = read_text(module);
  fs::remove(module);
  write_text(module, bytes); // same bytes, another inode and time
  const DepmodTree rewritten = fingerprint(system);
  CHECK(rewritten.key == before.key);
  CHECK(rewritten.stat_print != before.stat_print);

  write_text(module, bytes + std::string(1, '\0'));
  CHECK(fingerprint(system).key != before.key);
  write_text(module, bytes);

  write_text(modules_dir(system) / "modules.order", "updates/dkms/hello.ko\n");
  const DepmodTree ordered = fingerprint(system);
  CHECK(ordered.key != before.key);

  // Only a test root's configuration: the host's is read too, and is the same each time.
  write_text(system.root() / "etc/depmod.d/override.conf", "override hello * extra\n");
  const DepmodTree configured = fingerprint(system);
  CHECK(configured.key != ordered.key);

  // depmod's own outputs are not inputs.
  write_text(modules_dir(system) / "modules.alias", "changed\n");
  write_text(modules_dir(system) / "modules.symbols", "changed\n");
  CHECK(fingerprint(system).key == configured.key);
}

TEST_CASE("the cache keeps the three most recent trees of a kernel")
{
  FakeSystem system;
  system.add_kernel(k1);
  for (int version = 1; version <= 5; ++version) {
    system.add_module("m" + std::to_string(version), "1.0");
    sync(system);
  }
  CHECK(entries(system).size() == 3);
  CHECK(indexes(modules_dir(system)) == fresh_depmod(system));
}

TEST_SUITE_END();
