// SPDX-License-Identifier: GPL-2.0-or-later
// The memo file: loading it, looking up every key it has, the file-hash shortcut and
// saving. A damaged memo must only mean recomputing. "@ID@" in the input stands for the
// stat identity of a real file whose key is "file:@PATH@", so the fuzzer can reach the
// entries that memoized_file_hash trusts.
#include "fuzz_support.hpp"

#include "kmodsync/memo.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>

using namespace kmodsync;

namespace {

void replace_all(std::string& text, std::string_view from, const std::string& to)
{
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto dir = fuzz::fresh_dir("memo");
  const auto hashed = dir / "hashed";
  fuzz::write_file(hashed, "content");
  // Old enough to be memoized (changed more than two seconds ago).
  const timespec old_times[2] = {{1000000000, 0}, {1000000000, 0}};
  ::utimensat(AT_FDCWD, hashed.c_str(), old_times, 0);
  struct stat info{};
  fuzz::require(::stat(hashed.c_str(), &info) == 0, "stat");
  const nlohmann::json identity = {static_cast<std::int64_t>(info.st_size),
                                   std::int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec,
                                   std::int64_t{info.st_ctim.tv_sec} * 1'000'000'000 + info.st_ctim.tv_nsec,
                                   static_cast<std::uint64_t>(info.st_ino)};
  std::string text(fuzz::as_text(data, size));
  replace_all(text, "@ID@", identity.dump());
  replace_all(text, "@PATH@", hashed.string());
  const auto file = dir / "memo.json";
  fuzz::write_file(file, text);

  Memo memo(file);
  const auto document = nlohmann::json::parse(text, nullptr, false);
  if (document.is_object()) {
    for (const auto& item : document.items()) {
      (void)memo.get(item.key());
    }
  }
  auto hash = memoized_file_hash(memo, hashed, info);
  fuzz::require(hash.has_value(), "memoized_file_hash failed on a readable file");
  memo.put("fuzz", 1);
  auto saved = memo.save();
  fuzz::require(saved.has_value(), saved ? "" : saved.error());
  // What was saved loads back as a memo that still answers.
  Memo reloaded(file);
  fuzz::require(reloaded.get("fuzz") == nlohmann::json(1), "a saved memo lost an entry");
  return 0;
}
