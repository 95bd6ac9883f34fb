// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kmodsync::util {

// Splits on runs of blanks (space, tab, newline), as the shell does for unquoted words.
std::vector<std::string> split_words(std::string_view text);
// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or bytes past U+10FFFF).
bool is_valid_utf8(std::string_view text);
// `text` safe to show on a terminal or in a log: control characters, backslashes and bytes
// that are not UTF-8 become \xNN, so bytes from the network (a damaged cache object's member
// names) can neither move the cursor nor make the output binary.
std::string printable(std::string_view text);
std::vector<std::string> split_lines(std::string_view text);
std::string_view trim(std::string_view text);
// Lower-cases ASCII letters only; used for yes/no directive values.
std::string to_lower(std::string_view text);

} // namespace kmodsync::util
