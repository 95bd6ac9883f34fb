// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kmodsync {

Expected<FileLock> FileLock::acquire(const std::filesystem::path& path, const std::function<void()>& on_wait)
{
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return error("cannot open lock file {}: {}", path.string(), std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    return FileLock(fd);
  }
  if (errno != EWOULDBLOCK) {
    const int saved = errno;
    close(fd);
    return error("cannot lock {}: {}", path.string(), std::strerror(saved));
  }
  if (on_wait) {
    on_wait();
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int saved = errno;
      close(fd);
      return error("cannot lock {}: {}", path.string(), std::strerror(saved));
    }
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : m_fd(other.m_fd)
{
  other.m_fd = -1;
}

FileLock::~FileLock()
{
  if (m_fd >= 0) {
    close(m_fd);
  }
}

} // namespace kmodsync
