// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <functional>

namespace kmodsync {

// An exclusive flock on a file, held for the life of the object. Two passes on the same
// root (apt's hook and a kernel hook firing together) serialise on it; the kernel drops it
// if the holder dies, so a killed pass never blocks the next one.
class FileLock
{
public:
  // --- Interface ---
  // Waits for the lock. `on_wait` is called once if another process holds it.
  static Expected<FileLock> acquire(const std::filesystem::path& path,
                                    const std::function<void()>& on_wait = {});
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

private:
  explicit FileLock(int fd) : m_fd(fd) {}
  int m_fd;
};

} // namespace kmodsync
