// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/atomic_file.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::AtomicFile;
using kmodsync::testing::file_mode;
using kmodsync::testing::read_text;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

// Every name in `dir`, sorted.
std::vector<std::string> entries(const fs::path& dir)
{
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

ino_t inode(const fs::path& path)
{
  struct stat st{};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

} // namespace

TEST_SUITE_BEGIN("atomic_file");

TEST_CASE("commit writes the content with the requested mode")
{
  const TempDir dir;
  const fs::path target = dir / "fake.ko";
  {
    auto file = AtomicFile::create(target, 0600);
    REQUIRE(file.has_value());
    REQUIRE(file->write("first part, ").has_value());
    REQUIRE(file->write(std::string("second part\n\0binary", 20)).has_value());
    REQUIRE(file->commit().has_value());
  }
  CHECK(read_text(target) == std::string("first part, second part\n\0binary", 32));
  CHECK(file_mode(target) == 0600);
  CHECK(entries(dir.path()) == std::vector<std::string>{"fake.ko"});
}

TEST_CASE("write_file_atomically: default mode 0644, and an explicit 0755 despite the umask")
{
  const TempDir dir;
  const mode_t old_umask = umask(077);
  const auto plain = kmodsync::write_file_atomically(dir / "plain", "text");
  const auto script = kmodsync::write_file_atomically(dir / "script", "#!/bin/sh\n", 0755);
  umask(old_umask);
  REQUIRE(plain.has_value());
  REQUIRE(script.has_value());
  CHECK(read_text(dir / "plain") == "text");
  CHECK(file_mode(dir / "plain") == 0644);
  CHECK(read_text(dir / "script") == "#!/bin/sh\n");
  CHECK(file_mode(dir / "script") == 0755);
}

TEST_CASE("the target keeps its old content until commit, which replaces it by rename")
{
  const TempDir dir;
  const fs::path target = dir / "state.json";
  write_text(target, "old content");
  const ino_t old_inode = inode(target);
  // A second name for the old file: a rename leaves it alone, rewriting in place would not.
  fs::create_hard_link(target, dir / "old-link");

  auto file = AtomicFile::create(target);
  REQUIRE(file.has_value());
  REQUIRE(file->write("new content").has_value());

  // Mid-way: the target is untouched and the data sits in one temporary sibling.
  CHECK(read_text(target) == "old content");
  CHECK(inode(target) == old_inode);
  const auto during = entries(dir.path());
  REQUIRE(during.size() == 3);
  CHECK(during[0] == "old-link");
  CHECK(during[1] == "state.json");
  CHECK(during[2].starts_with("state.json.kmodsync-"));
  CHECK(during[2].size() == std::string("state.json.kmodsync-XXXXXX").size());
  CHECK(read_text(dir / during[2]) == "new content");

  REQUIRE(file->commit().has_value());
  CHECK(read_text(target) == "new content");
  CHECK(inode(target) != old_inode);
  CHECK(read_text(dir / "old-link") == "old content");
  CHECK(entries(dir.path()) == std::vector<std::string>{"old-link", "state.json"});
}

TEST_CASE("an uncommitted AtomicFile leaves no temporary and does not touch the target")
{
  const TempDir dir;
  const fs::path target = dir / "module.ko";
  write_text(target, "installed module");
  const ino_t old_inode = inode(target);
  {
    auto file = AtomicFile::create(target, 0600);
    REQUIRE(file.has_value());
    REQUIRE(file->write("half a module").has_value());
    CHECK(entries(dir.path()).size() == 2);
  }
  CHECK(entries(dir.path()) == std::vector<std::string>{"module.ko"});
  CHECK(read_text(target) == "installed module");
  CHECK(inode(target) == old_inode);
}

TEST_CASE("an uncommitted AtomicFile for a new path leaves nothing behind")
{
  const TempDir dir;
  {
    auto file = AtomicFile::create(dir / "new");
    REQUIRE(file.has_value());
    REQUIRE(file->write("x").has_value());
  }
  CHECK(entries(dir.path()).empty());
}

TEST_CASE("a moved AtomicFile commits once, and the moved-from one removes nothing")
{
  const TempDir dir;
  const fs::path target = dir / "moved";
  {
    auto created = AtomicFile::create(target);
    REQUIRE(created.has_value());
    AtomicFile file(std::move(*created));
    REQUIRE(file.write("via move").has_value());
    REQUIRE(file.commit().has_value());
  } // both destructors have run here
  CHECK(read_text(target) == "via move");
  CHECK(entries(dir.path()) == std::vector<std::string>{"moved"});
}

TEST_CASE("create in a missing directory fails with a message naming the path")
{
  const TempDir dir;
  const fs::path target = dir / "no" / "such" / "dir" / "file";
  auto file = AtomicFile::create(target);
  REQUIRE_FALSE(file.has_value());
  CHECK(file.error().find(target.string()) != std::string::npos);
  CHECK(file.error().find("No such file or directory") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "no"));

  const auto written = kmodsync::write_file_atomically(target, "x");
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().find(target.string()) != std::string::npos);
}

TEST_CASE("a commit that cannot rename fails naming the target and leaves no temporary")
{
  const TempDir dir;
  const fs::path target = dir / "occupied";
  write_text(target / "inside", "a directory stands where the file should go");
  {
    auto file = AtomicFile::create(target);
    REQUIRE(file.has_value());
    REQUIRE(file->write("data").has_value());
    const auto committed = file->commit();
    REQUIRE_FALSE(committed.has_value());
    CHECK(committed.error().find(target.string()) != std::string::npos);
  }
  CHECK(entries(dir.path()) == std::vector<std::string>{"occupied"});
  CHECK(read_text(target / "inside") == "a directory stands where the file should go");
}

TEST_SUITE_END();
