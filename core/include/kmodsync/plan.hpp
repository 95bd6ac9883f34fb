// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/kernel.hpp"

#include <optional>
#include <string>

namespace kmodsync {

// Why DKMS would not build this spec for this kernel, in DKMS's own terms, or nullopt when
// it would: AUTOINSTALL, BUILD_EXCLUSIVE_KERNEL/_MIN/_MAX/_ARCH/_CONFIG.
// `check_autoinstall` off: the user named the module, so AUTOINSTALL does not matter.
std::optional<std::string> exclusion_reason(const ModuleSpec& spec, const Kernel& kernel,
                                            bool check_autoinstall = true);

// Whether `text` matches the POSIX extended regex `pattern` anywhere, as bash's =~ does.
// An invalid pattern matches nothing.
bool bash_regex_match(const std::string& text, const std::string& pattern);

} // namespace kmodsync
