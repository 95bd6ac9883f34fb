// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/string_util.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using kmodsync::util::printable;
using kmodsync::util::split_lines;
using kmodsync::util::split_words;
using kmodsync::util::to_lower;
using kmodsync::util::trim;
using Strings = std::vector<std::string>;

TEST_SUITE_BEGIN("string_util");

TEST_CASE("split_words splits on runs of spaces, tabs and newlines")
{
  CHECK(split_words("a b c") == Strings{"a", "b", "c"});
  CHECK(split_words("  make  -C\t/lib/modules/6.1\n M=build  ") == Strings{"make", "-C", "/lib/modules/6.1", "M=build"});
  CHECK(split_words("one") == Strings{"one"});
  CHECK(split_words("a\r\nb") == Strings{"a", "b"});
}

TEST_CASE("split_words of empty or blank text is no words")
{
  CHECK(split_words("").empty());
  CHECK(split_words(" \t\n  ").empty());
}

TEST_CASE("split_words does not interpret quotes")
{
  CHECK(split_words("\"a b\" c") == Strings{"\"a", "b\"", "c"});
}

TEST_CASE("split_lines splits on newlines and keeps empty lines between")
{
  CHECK(split_lines("a\nb\nc") == Strings{"a", "b", "c"});
  CHECK(split_lines("a\n\nb") == Strings{"a", "", "b"});
  CHECK(split_lines("  indented \n\tx") == Strings{"  indented ", "\tx"});
}

TEST_CASE("split_lines: a final newline does not add an empty line")
{
  CHECK(split_lines("a\nb\n") == Strings{"a", "b"});
  CHECK(split_lines("\n") == Strings{""});
  CHECK(split_lines("a\n\n") == Strings{"a", ""});
  CHECK(split_lines("").empty());
}

TEST_CASE("trim removes leading and trailing blanks only")
{
  CHECK(trim("  a b  ") == "a b");
  CHECK(trim("\t\r\n x \n") == "x");
  CHECK(trim("x") == "x");
  CHECK(trim("") == "");
  CHECK(trim(" \t\n ") == "");
  CHECK(trim("a  b") == "a  b");
}

TEST_CASE("trim returns a view into the given text")
{
  const std::string text = "  yes ";
  const std::string_view trimmed = trim(text);
  CHECK(trimmed == "yes");
  CHECK(trimmed.data() == text.data() + 2);
}

TEST_CASE("to_lower lowers ASCII letters and leaves everything else alone")
{
  CHECK(to_lower("YES") == "yes");
  CHECK(to_lower("Yes-No_1.2") == "yes-no_1.2");
  CHECK(to_lower("") == "");
  // UTF-8 "ÄB": the two bytes of Ä are untouched, B is lowered.
  CHECK(to_lower("\xC3\x84" "B") == "\xC3\x84" "b");
  CHECK(to_lower("@[`{") == "@[`{"); // the characters just outside A-Z and a-z
}

TEST_CASE("printable keeps text and UTF-8, and escapes control characters and stray bytes")
{
  CHECK(printable("plain text: x.c:1: error") == "plain text: x.c:1: error");
  CHECK(printable("gcc \u2018quotes\u2019 stay") == "gcc \u2018quotes\u2019 stay");
  CHECK(printable("\x1b[2J") == "\\x1b[2J");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("tab\there\n") == "tab\\x09here\\x0a");
  CHECK(printable("\xff\xc3") == "\\xff\\xc3");
  CHECK(printable("caf\xc3\xa9 \xc3") == "caf\xc3\xa9 \\xc3");
  // A backslash is escaped too, so what is shown reads back one way only.
  CHECK(printable("\\x41") == "\\x5cx41");
}

TEST_SUITE_END();
