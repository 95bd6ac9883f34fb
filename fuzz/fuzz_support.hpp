// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// Helpers shared by the fuzz targets: a scratch directory per fuzzing process (on tmpfs
// when there is one, so the fsyncs of atomic writes cost nothing), file helpers that
// abort on a broken set-up, and `require` for the properties a target checks.

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace kmodsync::fuzz {

// --- Interface ---

// This process's scratch directory, removed when the process exits normally.
const std::filesystem::path& scratch_dir();
// `scratch_dir()/name`, emptied (or created).
std::filesystem::path fresh_dir(const std::string& name);
void write_file(const std::filesystem::path& path, std::string_view content);
// Aborts with `what` when `condition` is false: libFuzzer keeps the input as a crash.
void require(bool condition, std::string_view what);

inline std::string_view as_text(const std::uint8_t* data, std::size_t size)
{
  return {reinterpret_cast<const char*>(data), size};
}

// --- Inline implementations ---

inline void require(bool condition, std::string_view what)
{
  if (!condition) {
    fmt::print(stderr, "fuzz property violated: {}\n", what);
    std::abort();
  }
}

// An extracted archive may hold directories without write or search permission.
inline void remove_everything(const std::filesystem::path& dir)
{
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ec) {
    return;
  }
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_symlink(ec)) {
      ::chmod(it->path().c_str(), 0700);
    }
  }
  ::chmod(dir.c_str(), 0700);
  std::filesystem::remove_all(dir, ec);
  require(!ec, fmt::format("cannot remove {}: {}", dir.string(), ec.message()));
}

inline const std::filesystem::path& scratch_dir()
{
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::string base = std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                         ? "/dev/shm"
                         : std::filesystem::temp_directory_path().string();
    std::string pattern = base + "/kmodsync-fuzz-XXXXXX";
    require(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    static std::filesystem::path made;
    made = pattern;
    std::atexit([] { remove_everything(made); });
    return made;
  }();
  return dir;
}

inline std::filesystem::path fresh_dir(const std::string& name)
{
  const std::filesystem::path dir = scratch_dir() / name;
  remove_everything(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  require(!ec, fmt::format("cannot create {}", dir.string()));
  return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view content)
{
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  require(out.good(), fmt::format("cannot write {}", path.string()));
}

} // namespace kmodsync::fuzz
