// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/cache_object.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/string_util.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_max_files = 64;
constexpr std::size_t k_max_total_bytes = 512u << 20;

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

bool plain_name(const std::string& name)
{
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos
         && name.find('\0') == std::string::npos;
}

// libarchive's message about an object from the network may quote its bytes.
std::string archive_problem(archive* reader)
{
  const char* message = archive_error_string(reader);
  return message ? util::printable(message) : "unreadable archive";
}

} // namespace

Expected<std::string> pack_entry(const fs::path& dir)
{
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    return error("cannot list {}: {}", dir.string(), ec.message());
  }
  std::sort(files.begin(), files.end());

  ArchivePtr writer(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(writer.get());
  archive_write_add_filter_zstd(writer.get());
  std::size_t capacity = 1 << 20;
  for (const auto& file : files) {
    capacity += fs::file_size(file, ec) + 1024;
  }
  std::string buffer(capacity, '\0');
  std::size_t used = 0;
  if (archive_write_open_memory(writer.get(), buffer.data(), buffer.size(), &used) != ARCHIVE_OK) {
    return error("cannot pack {}: {}", dir.string(), archive_error_string(writer.get()));
  }
  for (const auto& file : files) {
    auto content = util::read_file(file);
    if (!content) {
      return std::unexpected(content.error());
    }
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), file.filename().c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content->size()));
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK
        || archive_write_data(writer.get(), content->data(), content->size()) < 0) {
      return error("cannot pack {}: {}", file.string(), archive_error_string(writer.get()));
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return error("cannot pack {}: {}", dir.string(), archive_error_string(writer.get()));
  }
  buffer.resize(used);
  return buffer;
}

Expected<void> unpack_entry(std::string_view object, const fs::path& dir)
{
  ArchivePtr reader(archive_read_new(), archive_read_free);
  archive_read_support_filter_zstd(reader.get());
  archive_read_support_format_tar(reader.get());
  if (archive_read_open_memory(reader.get(), object.data(), object.size()) != ARCHIVE_OK) {
    return error("not a cache object: {}", archive_problem(reader.get()));
  }
  std::size_t files = 0;
  std::size_t total = 0;
  archive_entry* entry = nullptr;
  while (true) {
    const int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) {
      break;
    }
    if (status != ARCHIVE_OK) {
      return error("damaged cache object: {}", archive_problem(reader.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    const std::string name = raw_name ? raw_name : "";
    if (archive_entry_filetype(entry) != AE_IFREG || !plain_name(name)) {
      return error("cache object holds \"{}\", which is not a plain file", util::printable(name));
    }
    if (++files > k_max_files) {
      return error("cache object holds more than {} files", k_max_files);
    }
    std::string content;
    char chunk[64 * 1024];
    while (true) {
      const la_ssize_t got = archive_read_data(reader.get(), chunk, sizeof chunk);
      if (got < 0) {
        return error("damaged cache object at {}: {}", util::printable(name), archive_problem(reader.get()));
      }
      if (got == 0) {
        break;
      }
      total += static_cast<std::size_t>(got);
      if (total > k_max_total_bytes) {
        return error("cache object is larger than {} bytes unpacked", k_max_total_bytes);
      }
      content.append(chunk, static_cast<std::size_t>(got));
    }
    if (auto written = write_file_atomically(dir / name, content, 0644); !written) {
      return std::unexpected(written.error());
    }
  }
  if (files == 0) {
    return error("cache object is empty");
  }
  return {};
}

} // namespace kmodsync
