// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/version.hpp"

namespace kmodsync {

namespace {

bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

bool is_alpha(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The weight of the character at `pos` in a non-digit run, as Debian version ordering
// gives it: '~' before the end of the string, the end before letters, letters before
// everything else.
int weight(std::string_view s, std::size_t pos)
{
  if (pos >= s.size()) {
    return -1;
  }
  const auto c = static_cast<unsigned char>(s[pos]);
  if (is_digit(static_cast<char>(c))) {
    return 0;
  }
  if (is_alpha(static_cast<char>(c))) {
    return c;
  }
  if (c == '~') {
    return -2;
  }
  return c + 256;
}

// Alternating non-digit runs (by weight) and digit runs (by value).
int compare_runs(std::string_view a, std::string_view b)
{
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    while ((i < a.size() && !is_digit(a[i])) || (j < b.size() && !is_digit(b[j]))) {
      const int wa = weight(a, i);
      const int wb = weight(b, j);
      if (wa != wb) {
        return wa - wb;
      }
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') {
      ++i;
    }
    while (j < b.size() && b[j] == '0') {
      ++j;
    }
    int first_difference = 0;
    while (i < a.size() && j < b.size() && is_digit(a[i]) && is_digit(b[j])) {
      if (first_difference == 0) {
        first_difference = a[i] - b[j];
      }
      ++i;
      ++j;
    }
    if (i < a.size() && is_digit(a[i])) {
      return 1;
    }
    if (j < b.size() && is_digit(b[j])) {
      return -1;
    }
    if (first_difference != 0) {
      return first_difference;
    }
  }
  return 0;
}

// Length of `s` without a trailing file-name suffix such as ".el9.aarch64" (runs of
// '.' followed by a letter or '~' and then letters, digits and '~'), which `sort -V`
// compares only when the rest is equal.
std::size_t without_suffix(std::string_view s)
{
  std::size_t prefix = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    ++i;
    prefix = i;
    while (i + 1 < s.size() && s[i] == '.' && (is_alpha(s[i + 1]) || s[i + 1] == '~')) {
      for (i += 2; i < s.size() && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '~'); ++i) {
      }
    }
  }
  return prefix;
}

int sign(int value)
{
  return value < 0 ? -1 : (value > 0 ? 1 : 0);
}

} // namespace

int compare_versions(std::string_view a, std::string_view b)
{
  if (a == b) {
    return 0;
  }
  const std::size_t a_prefix = without_suffix(a);
  const std::size_t b_prefix = without_suffix(b);
  int result = compare_runs(a.substr(0, a_prefix), b.substr(0, b_prefix));
  if (result == 0 && (a_prefix != a.size() || b_prefix != b.size())) {
    result = compare_runs(a, b);
  }
  return sign(result);
}

} // namespace kmodsync
