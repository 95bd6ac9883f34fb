// SPDX-License-Identifier: GPL-2.0-or-later
#include "dkms_extract.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <optional>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

namespace {

// libarchive leaves the message unset on some failures (an empty file, for one).
const char* message(archive* handle)
{
  const char* text = archive_error_string(handle);
  return text ? text : "unreadable archive";
}

// `name` made relative to the archive's directory, or nothing when it would leave it.
std::optional<fs::path> inside(const std::string& name)
{
  const fs::path relative = fs::path(name).lexically_normal();
  if (relative.is_absolute() || (!relative.empty() && *relative.begin() == "..")) {
    return std::nullopt;
  }
  return relative;
}

} // namespace

Expected<void> extract_tarball(const std::string& archive_path, const fs::path& dir)
{
  std::unique_ptr<archive, int (*)(archive*)> reader(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_all(reader.get());
  if (archive_read_open_filename(reader.get(), archive_path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return error("{}: {}", archive_path, message(reader.get()));
  }
  std::unique_ptr<archive, int (*)(archive*)> writer(archive_write_disk_new(), archive_write_free);
  // Entry names are checked below and then made absolute under `dir`, so the absolute-path
  // guard cannot be used; `..` and writing through symlinks stay refused by libarchive.
  archive_write_disk_set_options(writer.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                                 | ARCHIVE_EXTRACT_PERM);
  archive_entry* entry = nullptr;
  while (true) {
    const int read = archive_read_next_header(reader.get(), &entry);
    if (read == ARCHIVE_EOF) {
      return {};
    }
    if (read != ARCHIVE_OK && read != ARCHIVE_WARN) {
      return error("{}: {}", archive_path, message(reader.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) {
      return error("{}: an entry without a name", archive_path);
    }
    const std::string name = raw_name;
    const auto relative = inside(name);
    if (!relative) {
      return error("{}: {}: a path outside the archive's directory", archive_path, name);
    }
    // A hard link names its target as in the archive, which libarchive would look up from
    // the current directory (or anywhere, when absolute): it must be an entry in `dir`, one
    // extracted before (so a file, directory or symlink).
    if (const char* link = archive_entry_hardlink(entry)) {
      const auto link_relative = inside(link);
      if (!link_relative || link_relative->empty()) {
        return error("{}: {}: a hard link to {}, outside the archive's directory", archive_path, name, link);
      }
      archive_entry_set_hardlink(entry, (dir / *link_relative).c_str());
    } else if (const auto type = archive_entry_filetype(entry); type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      // A device node, fifo or socket has no business in a DKMS tarball (and a device node
      // would give whoever made it a way to the disk).
      return error("{}: {}: not a file, directory or symlink", archive_path, name);
    }
    const std::string target = (dir / *relative).string();
    archive_entry_set_pathname(entry, target.c_str());
    if (archive_write_header(writer.get(), entry) != ARCHIVE_OK) {
      return error("{}: {}: {}", archive_path, name, message(writer.get()));
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int status = ARCHIVE_OK;
    while ((status = archive_read_data_block(reader.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(writer.get(), block, size, offset) != ARCHIVE_OK) {
        return error("{}: {}: {}", archive_path, name, message(writer.get()));
      }
    }
    if (status != ARCHIVE_EOF) {
      return error("{}: {}: {}", archive_path, name, message(reader.get()));
    }
    archive_write_finish_entry(writer.get());
  }
}

} // namespace kmodsync::cli::dkms
