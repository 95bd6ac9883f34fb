// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/dkms_spec.hpp"

#include "kmodsync/plan.hpp"
#include "kmodsync/string_util.hpp"

#include <algorithm>

namespace kmodsync {

namespace {

bool ends_with_object_suffix(const std::string& name)
{
  return name.ends_with(".o") || name.ends_with(".ko");
}

bool has_parent_reference(const std::string& path)
{
  return path == ".." || path.starts_with("../") || path.ends_with("/..")
         || path.find("/../") != std::string::npos;
}

// Names become directory and file names and go into reports: text, without spaces or
// control characters.
bool plain_text(const std::string& value)
{
  return util::is_valid_utf8(value) && std::none_of(value.begin(), value.end(), [](char c) {
           const auto byte = static_cast<unsigned char>(c);
           return byte <= 0x20 || byte == 0x7f;
         });
}

bool is_yes(const std::string& value)
{
  return !value.empty() && (value[0] == 'y' || value[0] == 'Y');
}

std::vector<std::string> elements(const DkmsConfValues& values, const std::string& name)
{
  std::vector<std::string> result;
  for (unsigned long i = 0; i < values.size(name); ++i) {
    result.push_back(values.get(name, i));
  }
  return result;
}

} // namespace

bool ModuleSpec::wants_autoinstall() const
{
  const std::string value = util::to_lower(util::trim(autoinstall));
  return !value.empty() && value != "no" && value != "n" && value != "false" && value != "0";
}

Expected<ModuleSpec> make_module_spec(const DkmsConfValues& values,
                                      const std::filesystem::path& conf,
                                      const DkmsConfContext& context,
                                      const KernelConfig& kernel_config)
{
  // bash arrays may be sparse, and records run up to the highest index (as in DKMS): a
  // stray BUILT_MODULE_NAME[999999999] would be a billion records.
  constexpr unsigned long k_max_elements = 1024;
  for (const auto& [name, elements] : values.variables) {
    if (!elements.empty() && elements.rbegin()->first >= k_max_elements) {
      return error("{}: '{}[{}]': arrays have at most {} elements", conf.string(), name, elements.rbegin()->first,
                   k_max_elements);
    }
  }
  std::vector<std::string> problems;
  ModuleSpec spec;
  spec.values = values;
  spec.name = values.get("PACKAGE_NAME");
  spec.version = values.get("PACKAGE_VERSION");
  if (spec.name.empty()) {
    problems.emplace_back("No 'PACKAGE_NAME' directive specified");
  } else if (spec.name.find('/') != std::string::npos || has_parent_reference(spec.name) || !plain_text(spec.name)) {
    problems.push_back(fmt::format("'PACKAGE_NAME' '{}' is not a plain name", spec.name));
  }
  if (spec.version.empty()) {
    problems.emplace_back("No 'PACKAGE_VERSION' directive specified");
  } else if (spec.version.find('/') != std::string::npos || has_parent_reference(spec.version)
             || !plain_text(spec.version)) {
    problems.push_back(fmt::format("'PACKAGE_VERSION' '{}' is not a plain version", spec.version));
  }

  // As DKMS's read_conf: the records are as many as the longest of the four arrays.
  const unsigned long count = std::max({values.size("BUILT_MODULE_NAME"),
                                        values.size("BUILT_MODULE_LOCATION"),
                                        values.size("DEST_MODULE_NAME"),
                                        values.size("DEST_MODULE_LOCATION")});
  bool first_strip = true;
  for (unsigned long i = 0; i < count; ++i) {
    ModuleRecord record;
    record.built_name = values.get("BUILT_MODULE_NAME", i);
    record.built_location = values.get("BUILT_MODULE_LOCATION", i);
    record.dest_name = values.get("DEST_MODULE_NAME", i);
    record.dest_location = values.get("DEST_MODULE_LOCATION", i);
    const std::string& strip = values.get("STRIP", i);
    if (!strip.empty() && (strip[0] == 'n' || strip[0] == 'N')) {
      record.strip = false;
    } else if (strip.empty() && i > 0) {
      record.strip = first_strip;
    }
    if (i == 0) {
      first_strip = record.strip;
    }
    if (record.built_name.empty() && values.size("DEST_MODULE_LOCATION") == 1) {
      record.built_name = spec.name;
    }
    if (record.dest_name.empty()) {
      record.dest_name = record.built_name;
    }
    if (!record.built_location.empty() && !record.built_location.ends_with('/')) {
      record.built_location += '/';
    }

    if (record.built_name.empty()) {
      problems.push_back(fmt::format("No 'BUILT_MODULE_NAME' directive specified for record #{}", i));
    } else if (ends_with_object_suffix(record.built_name)) {
      problems.push_back(fmt::format("'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #{}", i));
    } else if (record.built_name.find('/') != std::string::npos || has_parent_reference(record.built_name)) {
      problems.push_back(fmt::format("'BUILT_MODULE_NAME' '{}' in record #{} is not a plain file name", record.built_name, i));
    }
    if (ends_with_object_suffix(record.dest_name)) {
      problems.push_back(fmt::format("'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #{}", i));
    } else if (record.dest_name.find('/') != std::string::npos || has_parent_reference(record.dest_name)) {
      problems.push_back(fmt::format("'DEST_MODULE_NAME' '{}' in record #{} is not a plain file name", record.dest_name, i));
    }
    if (record.built_location.starts_with('/') || has_parent_reference(record.built_location)) {
      problems.push_back(fmt::format("'BUILT_MODULE_LOCATION' '{}' in record #{} leaves the build directory", record.built_location, i));
    }
    if (record.dest_location.empty()) {
      problems.push_back(fmt::format("No 'DEST_MODULE_LOCATION' directive specified for record #{}", i));
    } else if (!record.dest_location.starts_with("/kernel") && !record.dest_location.starts_with("/updates")
               && !record.dest_location.starts_with("/extra")) {
      problems.push_back(fmt::format(
        "Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #{}", i));
    } else if (has_parent_reference(record.dest_location)) {
      problems.push_back(fmt::format("'DEST_MODULE_LOCATION' '{}' in record #{} leaves the kernel's module tree", record.dest_location, i));
    }
    spec.modules.push_back(std::move(record));
  }
  if (count == 0) {
    problems.emplace_back("No 'DEST_MODULE_LOCATION' directive specified");
  }

  spec.make = elements(values, "MAKE");
  spec.make_match = elements(values, "MAKE_MATCH");
  if (values.get("MAKE_MATCH", 0).empty()) {
    spec.make_command = values.get("MAKE", 0);
  }
  for (unsigned long i = 0; i < values.size("MAKE"); ++i) {
    const std::string& make = values.get("MAKE", i);
    const std::string& match = values.get("MAKE_MATCH", i);
    if (!make.empty() && !match.empty() && bash_regex_match(context.kernelver, match)) {
      spec.make_command = make;
    }
  }
  const std::string build_dir =
    context.dkms_tree + "/" + context.module + "/" + context.module_version + "/build";
  if (spec.make_command.empty()) {
    spec.make_command = "make -C " + context.kernel_source_dir + " M=" + build_dir;
  }
  const auto config_is = [&](const char* option) {
    return kernel_config.find(option) == "y";
  };
  if (config_is("CONFIG_CC_IS_CLANG")) {
    spec.make_command += " CC=clang";
  }
  if (config_is("CONFIG_LD_IS_LLD")) {
    spec.make_command += " LD=ld.lld";
  }
  spec.clean = values.get("CLEAN");
  if (spec.clean.empty()) {
    spec.clean = "make -C " + context.kernel_source_dir + " M=" + build_dir + " clean";
  }

  for (unsigned long i = 0; i < values.size("PATCH"); ++i) {
    PatchRecord patch{values.get("PATCH", i), values.get("PATCH_MATCH", i)};
    if (patch.file.empty()) {
      continue;
    }
    if (patch.file.starts_with('/') || has_parent_reference(patch.file)) {
      problems.push_back(fmt::format("'PATCH[{}]' '{}' is outside the patches directory", i, patch.file));
      continue;
    }
    if (patch.match.empty() || bash_regex_match(context.kernelver, patch.match)) {
      spec.patches_for_kernel.push_back(patch.file);
    }
    spec.patches.push_back(std::move(patch));
  }

  spec.autoinstall = values.get("AUTOINSTALL");
  spec.build_exclusive_kernel = values.get("BUILD_EXCLUSIVE_KERNEL");
  spec.build_exclusive_kernel_min = values.get("BUILD_EXCLUSIVE_KERNEL_MIN");
  spec.build_exclusive_kernel_max = values.get("BUILD_EXCLUSIVE_KERNEL_MAX");
  spec.build_exclusive_arch = values.get("BUILD_EXCLUSIVE_ARCH");
  spec.build_exclusive_config = values.get("BUILD_EXCLUSIVE_CONFIG");
  for (unsigned long i = 0; i < values.size("BUILD_DEPENDS"); ++i) {
    for (auto& word : util::split_words(values.get("BUILD_DEPENDS", i))) {
      spec.build_depends.push_back(std::move(word));
    }
  }
  spec.pre_build = values.get("PRE_BUILD");
  spec.post_build = values.get("POST_BUILD");
  spec.post_add = values.get("POST_ADD");
  spec.pre_install = values.get("PRE_INSTALL");
  spec.post_install = values.get("POST_INSTALL");
  spec.post_remove = values.get("POST_REMOVE");
  spec.remake_initrd = is_yes(values.get("REMAKE_INITRD"));
  spec.no_weak_modules = is_yes(values.get("NO_WEAK_MODULES"));
  spec.obsolete_by = values.get("OBSOLETE_BY");
  spec.modules_conf = elements(values, "MODULES_CONF");

  if (!problems.empty()) {
    std::string message = conf.string() + ": ";
    for (std::size_t i = 0; i < problems.size(); ++i) {
      message += (i ? "; " : "") + problems[i];
    }
    return std::unexpected(message);
  }
  return spec;
}

} // namespace kmodsync
