// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace kmodsync {

// A file that appears at its path complete or not at all. Data goes to a temporary sibling
// (`<path>.kmodsync-XXXXXX`), and commit() fsyncs it, renames it over the target and
// fsyncs the directory, because we write under /usr/lib/modules in the middle of package
// transactions where a crash must not leave half a module. Dropping an uncommitted
// AtomicFile removes the temporary.
class AtomicFile
{
public:
  // --- Interface ---
  static Expected<AtomicFile> create(const std::filesystem::path& path, mode_t mode = 0644);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();

  Expected<void> write(std::string_view data);
  Expected<void> commit();

private:
  AtomicFile(std::filesystem::path path, std::filesystem::path temp, int fd);
  std::filesystem::path m_path;
  std::filesystem::path m_temp;
  int m_fd;
};

// Convenience: the whole content at once.
Expected<void> write_file_atomically(const std::filesystem::path& path,
                                     std::string_view data,
                                     mode_t mode = 0644);

} // namespace kmodsync
