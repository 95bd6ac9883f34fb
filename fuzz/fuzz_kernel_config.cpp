// SPDX-License-Identifier: GPL-2.0-or-later
// KernelConfig: a kbuild .config. Lookups scan the text for the option; entries() parses
// every line. The two must agree, for every option the file names and for near misses.
#include "fuzz_support.hpp"

#include "kmodsync/kernel.hpp"
#include "kmodsync/string_util.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(fuzz::as_text(data, size));
  const auto config = parse_kernel_config(text);
  Kernel kernel;
  kernel.config = config;
  const auto entries = config.entries();
  fuzz::require(config.empty() == entries.empty(), "empty() agrees with entries()");
  for (const auto& [key, value] : entries) {
    fuzz::require(key.starts_with("CONFIG_"), key);
    fuzz::require(key.find('\n') == std::string::npos && value.find('\n') == std::string::npos, "a newline in an entry");
    fuzz::require(config.find(key) == value, "find gives what entries lists: " + key);
    (void)kernel.config_enabled(key);
  }
  // Words of the text, and the parts of `a=b` words, as options: present or not, find must
  // say what the full parse says.
  for (const auto& word : util::split_words(text)) {
    for (const std::string& option : {word, word.substr(0, word.find('='))}) {
      const auto it = entries.find(option);
      const auto found = config.find(option);
      fuzz::require(found.has_value() == (it != entries.end()), "find and entries disagree on presence: " + option);
      fuzz::require(!found || *found == it->second, "find and entries disagree on the value: " + option);
    }
  }
  return 0;
}
