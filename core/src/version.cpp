// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/version.hpp"

#include <cctype>

namespace kmodsync {

namespace {

bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

// Compares two digit runs as numbers of any length.
int compare_numbers(std::string_view a, std::string_view b)
{
  while (a.size() > 1 && a.front() == '0') {
    a.remove_prefix(1);
  }
  while (b.size() > 1 && b.front() == '0') {
    b.remove_prefix(1);
  }
  if (a.size() != b.size()) {
    return a.size() < b.size() ? -1 : 1;
  }
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

} // namespace

int compare_versions(std::string_view a, std::string_view b)
{
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    const bool a_number = i < a.size() && is_digit(a[i]);
    const bool b_number = j < b.size() && is_digit(b[j]);
    std::size_t i_end = i;
    std::size_t j_end = j;
    if (a_number && b_number) {
      while (i_end < a.size() && is_digit(a[i_end])) {
        ++i_end;
      }
      while (j_end < b.size() && is_digit(b[j_end])) {
        ++j_end;
      }
      if (const int c = compare_numbers(a.substr(i, i_end - i), b.substr(j, j_end - j)); c != 0) {
        return c;
      }
    } else {
      while (i_end < a.size() && !is_digit(a[i_end])) {
        ++i_end;
      }
      while (j_end < b.size() && !is_digit(b[j_end])) {
        ++j_end;
      }
      // Where one side has a number and the other text, the number sorts first; the end
      // of a string sorts before both ("1.0" < "1.0.1", "1.0" < "1.0a").
      const std::string_view a_text = a.substr(i, i_end - i);
      const std::string_view b_text = b.substr(j, j_end - j);
      if (a_text != b_text) {
        return a_text < b_text ? -1 : 1;
      }
      if (i_end == i && j_end == j) {
        // One side is a number, the other is at its end.
        return i < a.size() ? 1 : -1;
      }
    }
    i = i_end;
    j = j_end;
  }
  return 0;
}

} // namespace kmodsync
