// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <fmt/format.h>

#include <string_view>

// Debug log for developers and bug reports (`--verbose` or KMODSYNC_LOG=1), apart from the
// user-facing Reporter. Formatting is skipped entirely when the log is off.
#define LOG(...)                                                                         \
  do {                                                                                   \
    if (::kmodsync::log::enabled()) {                                                    \
      ::kmodsync::log::write(fmt::format(__VA_ARGS__));                                  \
    }                                                                                    \
  } while (false)

namespace kmodsync::log {

// Turns the log on; lines go to stderr, each with a time stamp and the pid.
void enable();
bool enabled();
// Writes one line; safe to call from several threads.
void write(std::string_view line);

} // namespace kmodsync::log
