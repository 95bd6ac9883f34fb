// SPDX-License-Identifier: GPL-2.0-or-later
// A build cache object from the remote cache (a zstd tar, or a plain one): unpack_entry,
// and BuildCache::import_entry, which stores it only once it is whole.
#include "fuzz_support.hpp"

#include "kmodsync/build_cache.hpp"
#include "kmodsync/cache_object.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view object = fuzz::as_text(data, size);
  const auto dir = fuzz::fresh_dir("unpacked");
  if (unpack_entry(object, dir)) {
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      fuzz::require(entry.is_regular_file() && !entry.is_symlink(), "unpacked something that is not a file");
      ++files;
    }
    fuzz::require(files >= 1 && files <= 64, "unpacked too many files");
  }

  const auto root = fuzz::fresh_dir("root");
  const BuildCache cache(Root(root), 1ull << 30);
  const std::string key = "0123456789abcdef0123456789abcdef";
  auto imported = cache.import_entry(key, object, [](const CachedResult&) -> Expected<void> { return {}; });
  if (imported) {
    auto found = cache.lookup(key);
    fuzz::require(found.has_value() && found->ok == imported->ok && found->modules.size() == imported->modules.size(),
                  "an imported entry is not found as it was imported");
  } else {
    fuzz::require(!cache.peek(key).has_value(), "a rejected object left an entry");
  }
  return 0;
}
