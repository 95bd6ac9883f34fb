// SPDX-License-Identifier: GPL-2.0-or-later
// `dkms ldtarball`'s extraction of a tarball (any format and filter libarchive reads).
// Nothing may land outside the target directory: the process runs in a directory holding
// a file that no entry may reach (by a hard link or otherwise), and what is extracted may
// only be files, directories and symlinks.
#include "fuzz_support.hpp"

#include "dkms_extract.hpp"

#include <sys/stat.h>

using namespace kmodsync;

namespace {

constexpr std::string_view k_victim_content = "not to be touched\n";

std::filesystem::path victim()
{
  static const std::filesystem::path path = [] {
    const auto cwd = fuzz::fresh_dir("cwd");
    fuzz::require(::chdir(cwd.c_str()) == 0, "chdir");
    fuzz::write_file(cwd / "victim", k_victim_content);
    return cwd / "victim";
  }();
  return path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto victim_file = victim();
  const auto archive = fuzz::scratch_dir() / "input.tar";
  fuzz::write_file(archive, fuzz::as_text(data, size));
  const auto dir = fuzz::fresh_dir("extracted");
  (void)cli::dkms::extract_tarball(archive.string(), dir);

  struct stat info{};
  fuzz::require(::lstat(victim_file.c_str(), &info) == 0 && S_ISREG(info.st_mode) && info.st_nlink == 1
                  && info.st_size == static_cast<off_t>(k_victim_content.size()),
                "an entry reached a file outside the extraction directory");
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    fuzz::require(::lstat(it->path().c_str(), &info) == 0, "lstat");
    fuzz::require(S_ISREG(info.st_mode) || S_ISDIR(info.st_mode) || S_ISLNK(info.st_mode),
                  fmt::format("{} is not a file, directory or symlink", it->path().string()));
  }
  return 0;
}
