// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/plan.hpp"

#include "kmodsync/string_util.hpp"
#include "kmodsync/version.hpp"

#include <regex.h>

namespace kmodsync {

bool bash_regex_match(const std::string& text, const std::string& pattern)
{
  // bash's =~ is POSIX regcomp/regexec with REG_EXTENDED, so use exactly that.
  regex_t regex;
  if (regcomp(&regex, pattern.c_str(), REG_EXTENDED | REG_NOSUB) != 0) {
    return false;
  }
  const bool matched = regexec(&regex, text.c_str(), 0, nullptr, 0) == 0;
  regfree(&regex);
  return matched;
}

std::optional<std::string> exclusion_reason(const ModuleSpec& spec, const Kernel& kernel, bool check_autoinstall)
{
  if (check_autoinstall && !spec.wants_autoinstall()) {
    return spec.autoinstall.empty()
             ? std::string("AUTOINSTALL is not set in dkms.conf")
             : fmt::format("AUTOINSTALL=\"{}\" in dkms.conf", spec.autoinstall);
  }
  if (!spec.build_exclusive_kernel.empty()
      && !bash_regex_match(kernel.release, spec.build_exclusive_kernel)) {
    return fmt::format("BUILD_EXCLUSIVE_KERNEL=\"{}\" does not match {}",
                       spec.build_exclusive_kernel, kernel.release);
  }
  if (!spec.build_exclusive_kernel_min.empty()
      && compare_versions(kernel.release, spec.build_exclusive_kernel_min) < 0) {
    return fmt::format("BUILD_EXCLUSIVE_KERNEL_MIN=\"{}\": {} is older",
                       spec.build_exclusive_kernel_min, kernel.release);
  }
  if (!spec.build_exclusive_kernel_max.empty()
      && compare_versions(kernel.release, spec.build_exclusive_kernel_max) > 0) {
    return fmt::format("BUILD_EXCLUSIVE_KERNEL_MAX=\"{}\": {} is newer",
                       spec.build_exclusive_kernel_max, kernel.release);
  }
  if (!spec.build_exclusive_arch.empty() && !bash_regex_match(kernel.arch, spec.build_exclusive_arch)) {
    return fmt::format("BUILD_EXCLUSIVE_ARCH=\"{}\" does not match {}", spec.build_exclusive_arch, kernel.arch);
  }
  if (!spec.obsolete_by.empty() && compare_versions(kernel.release, spec.obsolete_by) >= 0) {
    return fmt::format("OBSOLETE_BY=\"{}\": {} has the module built in", spec.obsolete_by, kernel.release);
  }
  // As DKMS: only checked when the kernel has a .config at all.
  if (!spec.build_exclusive_config.empty() && !kernel.config.empty()) {
    for (const auto& option : util::split_words(spec.build_exclusive_config)) {
      if (option.starts_with('!')) {
        if (kernel.config_enabled(option.substr(1))) {
          return fmt::format("BUILD_EXCLUSIVE_CONFIG: {} is set in {}'s .config", option.substr(1), kernel.release);
        }
      } else if (!kernel.config_enabled(option)) {
        return fmt::format("BUILD_EXCLUSIVE_CONFIG: {} is not set in {}'s .config", option, kernel.release);
      }
    }
  }
  return std::nullopt;
}

} // namespace kmodsync
