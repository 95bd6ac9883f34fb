// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/file_util.hpp"

#include "kmodsync/process.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <cstring>

namespace kmodsync::util {

Expected<std::string> read_file(const fs::path& path, std::size_t limit)
{
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return error("cannot open {}: {}", path.string(), std::strerror(errno));
  }
  // Sized from fstat, plus one byte to see the end without growing: reading a .config or a
  // state file costs one allocation, not a doubling string copied chunk by chunk.
  struct stat info{};
  const bool sized = fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  std::string data;
  data.resize(std::min(sized ? static_cast<std::size_t>(info.st_size) + 1 : 65536, limit));
  std::size_t used = 0;
  while (used < limit) {
    if (used == data.size()) {
      data.resize(std::min(std::max<std::size_t>(data.size() * 2, 65536), limit));
    }
    const ssize_t n = ::read(fd, data.data() + used, data.size() - used);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int saved = errno;
      close(fd);
      return error("cannot read {}: {}", path.string(), std::strerror(saved));
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  close(fd);
  data.resize(used);
  return data;
}

Expected<void> ensure_directory(const fs::path& path)
{
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    return error("cannot create directory {}: {}", path.string(), ec.message());
  }
  return {};
}

Expected<void> remove_tree(const fs::path& path)
{
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    return error("cannot remove {}: {}", path.string(), ec.message());
  }
  return {};
}

Expected<void> chown_tree(const fs::path& root, unsigned uid, unsigned gid)
{
  // Its owner may read and write all of it (root could read a mode 000 file; its new
  // owner must too).
  const auto give = [&](const fs::path& path) -> Expected<void> {
    struct stat info{};
    if (lstat(path.c_str(), &info) != 0 || lchown(path.c_str(), uid, gid) != 0) {
      return error("cannot give {} to uid {}: {}", path.string(), uid, std::strerror(errno));
    }
    if (!S_ISLNK(info.st_mode)) {
      const mode_t wanted = (info.st_mode & 07777) | S_IRUSR | S_IWUSR | (S_ISDIR(info.st_mode) ? S_IXUSR : 0);
      if (wanted != (info.st_mode & 07777) && chmod(path.c_str(), wanted) != 0) {
        return error("cannot open {} to its owner: {}", path.string(), std::strerror(errno));
      }
    }
    return {};
  };
  std::error_code ec;
  if (auto given = give(root); !given) {
    return given;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (auto given = give(it->path()); !given) {
      return given;
    }
  }
  if (ec) {
    return error("cannot list {}: {}", root.string(), ec.message());
  }
  return {};
}

Expected<void> copy_tree(const fs::path& from, const fs::path& to)
{
  // No child may be mid-spawn while a copied script is open for writing.
  const std::unique_lock lock(spawn_mutex());
  std::error_code ec;
  fs::copy(from,
           to,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks
             | fs::copy_options::overwrite_existing,
           ec);
  if (ec) {
    return error("cannot copy {} to {}: {}", from.string(), to.string(), ec.message());
  }
  return {};
}

Expected<void> fsync_directory(const fs::path& path)
{
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return error("cannot open directory {}: {}", path.string(), std::strerror(errno));
  }
  const int result = fsync(fd);
  const int saved = errno;
  close(fd);
  if (result != 0) {
    return error("cannot fsync directory {}: {}", path.string(), std::strerror(saved));
  }
  return {};
}

} // namespace kmodsync::util
