// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/version.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

using kmodsync::compare_versions;

namespace {

// The sign of a comparison, so that the assertions state the exact order.
int sign(int value)
{
  return (value > 0) - (value < 0);
}

// `lines` sorted by the real `sort -V`, through a file in a temporary directory.
std::vector<std::string> sort_v(const std::vector<std::string>& lines)
{
  const kmodsync::testing::TempDir dir;
  std::string content;
  for (const auto& line : lines) {
    content += line + "\n";
  }
  kmodsync::testing::write_text(dir / "in", content);
  const std::string output =
    kmodsync::testing::shell_output("LC_ALL=C sort -V " + (dir / "in").string());
  std::vector<std::string> sorted;
  std::size_t start = 0;
  while (start < output.size()) {
    const std::size_t end = output.find('\n', start);
    sorted.push_back(output.substr(start, end - start));
    start = end + 1;
  }
  return sorted;
}

std::vector<std::string> sort_with_compare_versions(std::vector<std::string> lines)
{
  std::stable_sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return compare_versions(a, b) < 0;
  });
  return lines;
}

} // namespace

TEST_SUITE_BEGIN("version");

TEST_CASE("compare_versions: kernel releases compare numerically, part by part")
{
  CHECK(sign(compare_versions("6.1.0-55-amd64", "6.12.107+deb12-amd64")) == -1);
  CHECK(sign(compare_versions("6.12.107+deb12-amd64", "6.1.0-55-amd64")) == 1);
  CHECK(sign(compare_versions("6.1.0-9-amd64", "6.1.0-55-amd64")) == -1);
  CHECK(sign(compare_versions("5.15.0-100-generic", "5.15.0-91-generic")) == 1);
}

TEST_CASE("compare_versions: 1.9 < 1.10, unlike a string comparison")
{
  CHECK(sign(compare_versions("1.9", "1.10")) == -1);
  CHECK(sign(compare_versions("1.10", "1.9")) == 1);
  CHECK(std::string("1.9") > std::string("1.10")); // what a plain comparison would say
}

TEST_CASE("compare_versions: equal strings are equal, so 3.9 <= 3.9 holds")
{
  CHECK(compare_versions("3.9", "3.9") == 0);
  CHECK(compare_versions("6.1.0-55-amd64", "6.1.0-55-amd64") == 0);
  CHECK(compare_versions("", "") == 0);
  CHECK(compare_versions("abc", "abc") == 0);
}

TEST_CASE("compare_versions: a prefix sorts first")
{
  CHECK(sign(compare_versions("1.0", "1.0.1")) == -1);
  CHECK(sign(compare_versions("1.0.1", "1.0")) == 1);
  CHECK(sign(compare_versions("1.0", "1.0a")) == -1);
  CHECK(sign(compare_versions("6.7.0", "6.7.0-rc5")) == -1);
  CHECK(sign(compare_versions("", "1")) == -1);
  CHECK(sign(compare_versions("1", "")) == 1);
}

TEST_CASE("compare_versions: leading zeros do not change a number's value")
{
  CHECK(compare_versions("1.01", "1.1") == 0);
  CHECK(compare_versions("007", "7") == 0);
  CHECK(compare_versions("1.000", "1.0") == 0);
  CHECK(sign(compare_versions("1.010", "1.9")) == 1);
  CHECK(sign(compare_versions("1.09", "1.10")) == -1);
  // Longer than any integer type: still compared as numbers.
  CHECK(sign(compare_versions("1.99999999999999999999999", "1.100000000000000000000000")) == -1);
}

TEST_CASE("compare_versions: text parts compare as text")
{
  CHECK(sign(compare_versions("6.1.0-55-amd64", "6.1.0-55-cloud-amd64")) == -1);
  CHECK(sign(compare_versions("5.15.0-91-generic", "5.15.0-91-lowlatency")) == -1);
  CHECK(sign(compare_versions("a", "b")) == -1);
}

TEST_CASE("compare_versions orders kernel releases exactly as sort -V does")
{
  const std::vector<std::string> releases = {
    "6.1.0-55-amd64",
    "6.12.107+deb12-amd64",
    "6.1.0-9-amd64",
    "6.1.0-10-amd64",
    "6.1.0-55-rt-amd64",
    "6.1.0-55-cloud-amd64",
    "6.12.9+bpo-amd64",
    "5.10.0-32-amd64",
    "4.19.0-27-amd64",
    "6.7.0-rc5",
    "6.7.0",
    "6.6.8-arch1-1",
    "6.6.10-zen1-1-zen",
    "5.15.0-91-generic",
    "5.15.0-100-generic",
    "5.15.0-91-lowlatency",
    "5.14.0-362.8.1.el9_3.x86_64",
    "5.14.0-70.el9.x86_64",
    "6.5.6-300.fc39.x86_64",
    "6.10.0-1-amd64",
    "6.1.21+",
    "6.1.21-v7l+",
    "6.1.21-v8+",
    "5.14.0-284.el9.aarch64",
    "5.14.0-284.11.1.el9_2.aarch64",
  };
  // Start from a shuffled order so the result cannot be the input order by accident.
  std::vector<std::string> shuffled = releases;
  std::mt19937 generator(42);
  std::shuffle(shuffled.begin(), shuffled.end(), generator);

  const auto expected = sort_v(shuffled);
  REQUIRE(expected.size() == releases.size());
  CHECK(sort_with_compare_versions(shuffled) == expected);
  // And every pair agrees, in both directions.
  for (std::size_t i = 0; i < expected.size(); ++i) {
    for (std::size_t j = i + 1; j < expected.size(); ++j) {
      INFO(expected[i], " < ", expected[j]);
      CHECK(compare_versions(expected[i], expected[j]) < 0);
      CHECK(compare_versions(expected[j], expected[i]) > 0);
    }
  }
}

// sort -V (coreutils filevercmp) orders letters before other characters and '~' before
// everything, and first compares without a trailing file-name suffix such as ".el9.aarch64";
// a plain byte comparison of the text runs puts Raspberry Pi OS and RHEL aarch64 releases in
// another order.
TEST_CASE("compare_versions orders Raspberry Pi and RHEL aarch64 releases as sort -V does")
{
  const std::vector<std::vector<std::string>> groups = {
    {"6.1.21+", "6.1.21-v7+", "6.1.21-v7l+", "6.1.21-v8+"},
    {"5.14.0-284.el9.aarch64", "5.14.0-284.11.1.el9_2.aarch64"},
    {"6.1", "6.1~rc1"},
  };
  for (const auto& group : groups) {
    const auto expected = sort_v(group);
    REQUIRE(expected.size() == group.size());
    CHECK(sort_with_compare_versions(group) == expected);
  }
  // The same facts spelt out, as `sort -V` printed them above.
  CHECK(compare_versions("6.1.21-v7l+", "6.1.21-v7+") < 0);
  CHECK(compare_versions("5.14.0-284.el9.aarch64", "5.14.0-284.11.1.el9_2.aarch64") < 0);
  CHECK(compare_versions("6.1~rc1", "6.1") < 0);
}

TEST_CASE("compare_versions never contradicts sort -V on random version-like strings")
{
  // Digits, the separators kernel releases use, '~', and letters of both cases.
  const std::string alphabet = "0123456789000111..--+~_abzA";
  std::mt19937 generator(20261201);
  std::uniform_int_distribution<std::size_t> length(1, 12);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> digit(0, 9);
  std::set<std::string> unique;
  while (unique.size() < 300) {
    std::string text(1, static_cast<char>('0' + digit(generator)));
    for (std::size_t n = length(generator); n > 0; --n) {
      text += alphabet[pick(generator)];
    }
    unique.insert(text);
  }
  const auto expected = sort_v(std::vector<std::string>(unique.begin(), unique.end()));
  REQUIRE(expected.size() == unique.size());
  int contradictions = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(compare_versions(expected[i], expected[i]) == 0);
    for (std::size_t j = i + 1; j < expected.size(); ++j) {
      const int forward = sign(compare_versions(expected[i], expected[j]));
      const int backward = sign(compare_versions(expected[j], expected[i]));
      // sort -V breaks ties (equal as versions, like "1.01" and "1.1") by bytes.
      if (forward > 0 || backward != -forward) {
        if (++contradictions <= 10) {
          FAIL_CHECK("sort -V puts \"", expected[i], "\" before \"", expected[j], "\", compare_versions says ",
                     forward, " / ", backward);
        }
      }
    }
  }
  CHECK(contradictions == 0);
}

TEST_SUITE_END();
