// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace kmodsync::log {

namespace {

std::atomic<bool> g_enabled{std::getenv("KMODSYNC_LOG") != nullptr};
std::mutex g_mutex;

} // namespace

void enable()
{
  g_enabled = true;
}

bool enabled()
{
  return g_enabled;
}

void write(std::string_view line)
{
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  const std::string text = fmt::format(
    "[{}.{:06} {}] {}\n", micros / 1000000, micros % 1000000, getpid(), line);
  const std::lock_guard lock(g_mutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

} // namespace kmodsync::log
