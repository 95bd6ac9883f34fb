// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string_view>

namespace kmodsync {

// Compares version strings the way `sort -V` and DKMS's VER() do: digit runs numerically,
// other runs as text. Returns <0, 0 or >0.
int compare_versions(std::string_view a, std::string_view b);

} // namespace kmodsync
