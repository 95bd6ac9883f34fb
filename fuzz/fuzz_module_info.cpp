// SPDX-License-Identifier: GPL-2.0-or-later
// read_module_info with libkmod: the input as NAME.ko, or .ko.xz / .ko.zst / .ko.gz when it
// starts as those do.
#include "fuzz_support.hpp"

#include "kmodsync/module_info.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view bytes = fuzz::as_text(data, size);
  std::string name = "module.ko";
  if (bytes.starts_with("\xfd" "7zXZ")) {
    name += ".xz";
  } else if (bytes.starts_with("\x28\xb5\x2f\xfd")) {
    name += ".zst";
  } else if (bytes.starts_with("\x1f\x8b")) {
    name += ".gz";
  }
  const auto file = fuzz::fresh_dir("module") / name;
  fuzz::write_file(file, bytes);
  if (auto info = read_module_info(file); !info) {
    fuzz::require(info.error().starts_with(file.string()), info.error());
  }
  (void)verify_module(file, "6.1.0-55-amd64", "module");
  return 0;
}
