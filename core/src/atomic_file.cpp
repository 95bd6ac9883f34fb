// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/atomic_file.hpp"

#include "kmodsync/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kmodsync {

Expected<AtomicFile> AtomicFile::create(const std::filesystem::path& path, mode_t mode)
{
  std::string temp = path.string() + ".kmodsync-XXXXXX";
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return error("cannot create a temporary file beside {}: {}", path.string(), std::strerror(errno));
  }
  if (fchmod(fd, mode) != 0) {
    const int saved = errno;
    close(fd);
    unlink(temp.c_str());
    return error("cannot set the mode of {}: {}", temp, std::strerror(saved));
  }
  return AtomicFile(path, temp, fd);
}

AtomicFile::AtomicFile(std::filesystem::path path, std::filesystem::path temp, int fd)
  : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(fd)
{
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
  : m_path(std::move(other.m_path)), m_temp(std::move(other.m_temp)), m_fd(other.m_fd)
{
  other.m_fd = -1;
  other.m_temp.clear();
}

AtomicFile::~AtomicFile()
{
  if (m_fd >= 0) {
    close(m_fd);
  }
  if (!m_temp.empty()) {
    unlink(m_temp.c_str());
  }
}

Expected<void> AtomicFile::write(std::string_view data)
{
  while (!data.empty()) {
    const ssize_t n = ::write(m_fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return error("cannot write {}: {}", m_path.string(), std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Expected<void> AtomicFile::commit()
{
  if (fsync(m_fd) != 0) {
    return error("cannot write {}: fsync: {}", m_path.string(), std::strerror(errno));
  }
  const int result = close(m_fd);
  m_fd = -1;
  if (result != 0) {
    return error("cannot write {}: close: {}", m_path.string(), std::strerror(errno));
  }
  if (rename(m_temp.c_str(), m_path.c_str()) != 0) {
    return error("cannot rename {} to {}: {}", m_temp.string(), m_path.string(), std::strerror(errno));
  }
  m_temp.clear();
  return util::fsync_directory(m_path.parent_path().empty() ? "." : m_path.parent_path());
}

Expected<void> write_file_atomically(const std::filesystem::path& path, std::string_view data, mode_t mode)
{
  auto file = AtomicFile::create(path, mode);
  if (!file) {
    return std::unexpected(file.error());
  }
  if (auto written = file->write(data); !written) {
    return written;
  }
  return file->commit();
}

} // namespace kmodsync
