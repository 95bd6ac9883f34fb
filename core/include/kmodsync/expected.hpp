// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <fmt/format.h>

#include <expected>
#include <string>
#include <utility>

namespace kmodsync {

// The library's result type. The error is a message that already names what failed and
// where (module, kernel, file), ready to be shown to a user as it is.
template <typename T> using Expected = std::expected<T, std::string>;

// Builds the error half of an Expected from a format string.
template <typename... Args>
std::unexpected<std::string> error(fmt::format_string<Args...> format, Args&&... args)
{
  return std::unexpected(fmt::format(format, std::forward<Args>(args)...));
}

} // namespace kmodsync
