// SPDX-License-Identifier: GPL-2.0-or-later
// compare_versions: the input is up to three versions separated by NULs. The order must be
// one std::sort can use (kernels and module versions are sorted with it): antisymmetric
// and transitive.
#include "fuzz_support.hpp"

#include "kmodsync/version.hpp"

#include <vector>

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text = fuzz::as_text(data, size);
  std::vector<std::string_view> versions;
  while (versions.size() < 2) {
    const auto nul = text.find('\0');
    if (nul == std::string_view::npos) {
      break;
    }
    versions.push_back(text.substr(0, nul));
    text.remove_prefix(nul + 1);
  }
  versions.push_back(text);
  while (versions.size() < 3) {
    versions.push_back(versions.back());
  }
  const auto& a = versions[0];
  const auto& b = versions[1];
  const auto& c = versions[2];
  const int ab = compare_versions(a, b);
  const int bc = compare_versions(b, c);
  const int ac = compare_versions(a, c);
  fuzz::require(compare_versions(a, a) == 0, "a version differs from itself");
  fuzz::require(ab >= -1 && ab <= 1, "result out of range");
  fuzz::require(compare_versions(b, a) == -ab, fmt::format("not antisymmetric: \"{}\" vs \"{}\"", a, b));
  if (ab <= 0 && bc <= 0) {
    fuzz::require(ac <= 0, fmt::format("not transitive: \"{}\" <= \"{}\" <= \"{}\" but not \"{}\" <= \"{}\"", a, b, c, a, c));
  }
  if (ab == 0 && bc == 0) {
    fuzz::require(ac == 0, "equality is not transitive");
  }
  return 0;
}
