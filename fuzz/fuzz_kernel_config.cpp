// SPDX-License-Identifier: GPL-2.0-or-later
// parse_kernel_config: a kbuild .config.
#include "fuzz_support.hpp"

#include "kmodsync/kernel.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto config = parse_kernel_config(fuzz::as_text(data, size));
  Kernel kernel;
  kernel.config = config;
  fuzz::require(config.entries().size() == config.size(), "entries() lists every option once");
  for (const auto& [key, value] : config.entries()) {
    fuzz::require(key.starts_with("CONFIG_"), key);
    fuzz::require(key.find('\n') == std::string::npos && value.find('\n') == std::string::npos, "a newline in an entry");
    fuzz::require(config.find(key) == value, "find gives what entries lists");
    (void)kernel.config_enabled(key);
  }
  return 0;
}
