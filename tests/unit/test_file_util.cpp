// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/file_util.hpp"

#include <doctest/doctest.h>

#include <string>

using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;
using kmodsync::util::read_file;

TEST_SUITE_BEGIN("file_util");

TEST_CASE("read_file reads whole files of any size, byte for byte")
{
  const TempDir dir;
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{65535}, std::size_t{65536},
                                 std::size_t{65537}, std::size_t{1} << 20}) {
    CAPTURE(size);
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
      content[i] = static_cast<char>(i * 7 % 251);
    }
    write_text(dir / "file", content);
    auto read = read_file(dir / "file");
    REQUIRE(read.has_value());
    CHECK(*read == content);
  }
}

TEST_CASE("read_file with a limit reads at most that many bytes")
{
  const TempDir dir;
  write_text(dir / "file", std::string(100000, 'x') + "end");
  CHECK(read_file(dir / "file", 4096).value() == std::string(4096, 'x'));
  CHECK(read_file(dir / "file", 0).value().empty());
  CHECK(read_file(dir / "file", 1 << 20).value().size() == 100003);
}

TEST_CASE("read_file reads a file whose size stat does not know (/proc) to its end")
{
  auto status = read_file("/proc/self/status");
  REQUIRE(status.has_value());
  CHECK(status->find("Name:") == 0);
  CHECK(status->find("VmRSS:") != std::string::npos);
  CHECK(status->back() == '\n');
}

TEST_CASE("read_file of a missing file names it")
{
  const TempDir dir;
  auto missing = read_file(dir / "missing");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().find((dir / "missing").string()) != std::string::npos);
}

TEST_SUITE_END();
