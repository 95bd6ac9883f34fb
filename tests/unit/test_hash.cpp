// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/hash.hpp"

#include <doctest/doctest.h>

#include <string>

using kmodsync::Hasher;
using kmodsync::sha256_file;
using kmodsync::sha256_text;
using kmodsync::testing::shell_output;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

TEST_SUITE_BEGIN("hash");

TEST_CASE("sha256_text gives the FIPS 180-2 digests, lower-case hex")
{
  CHECK(sha256_text("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("Hasher::update in pieces equals one update of the whole")
{
  Hasher hasher;
  hasher.update("a").update("").update("bc");
  CHECK(hasher.hex_digest() == sha256_text("abc"));
}

TEST_CASE("update_field keeps field boundaries: (\"ab\",\"c\") differs from (\"a\",\"bc\")")
{
  Hasher first;
  first.update_field("ab").update_field("c");
  Hasher second;
  second.update_field("a").update_field("bc");
  Hasher again;
  again.update_field("ab").update_field("c");
  const std::string a = first.hex_digest();
  const std::string b = second.hex_digest();
  CHECK(a != b);
  CHECK(a == again.hex_digest());
  CHECK(a != sha256_text("abc"));
  CHECK(a.size() == 64);

  // An empty field still counts: ("", "x") is not ("x").
  Hasher with_empty;
  with_empty.update_field("").update_field("x");
  Hasher without;
  without.update_field("x");
  CHECK(with_empty.hex_digest() != without.hex_digest());
}

TEST_CASE("sha256_file equals sha256_text of the content, and sha256sum")
{
  const TempDir dir;
  // Larger than the 64 KiB read buffer, with NUL bytes, so chunking and binary data count.
  std::string content;
  for (int i = 0; i < 200000; ++i) {
    content += static_cast<char>((i * 7) % 256);
  }
  write_text(dir / "blob", content);
  const auto digest = sha256_file(dir / "blob");
  REQUIRE(digest.has_value());
  CHECK(*digest == sha256_text(content));
  CHECK(*digest + "\n" == shell_output("sha256sum " + (dir / "blob").string() + " | cut -d' ' -f1"));

  write_text(dir / "empty", "");
  CHECK(sha256_file(dir / "empty") == sha256_text(""));
}

TEST_CASE("Hasher::update_file adds the file's bytes to what is already there")
{
  const TempDir dir;
  write_text(dir / "tail", "bc");
  Hasher hasher;
  hasher.update("a");
  REQUIRE(hasher.update_file(dir / "tail").has_value());
  CHECK(hasher.hex_digest() == sha256_text("abc"));
}

TEST_CASE("sha256_file of a missing file is an error naming the path")
{
  const TempDir dir;
  const auto digest = sha256_file(dir / "missing.ko");
  REQUIRE_FALSE(digest.has_value());
  CHECK(digest.error().find((dir / "missing.ko").string()) != std::string::npos);
  CHECK(digest.error().find("No such file or directory") != std::string::npos);
}

TEST_CASE("sha256_file of a directory is an error naming it")
{
  const TempDir dir;
  const auto digest = sha256_file(dir.path());
  REQUIRE_FALSE(digest.has_value());
  CHECK(digest.error().find(dir.path().string()) != std::string::npos);
}

TEST_SUITE_END();
