// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/module_info.hpp"

#include <libkmod.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace kmodsync {

std::string kernel_module_name(std::string name)
{
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string module_name_of_file(const std::string& file_name)
{
  for (const std::string_view suffix : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"}) {
    if (file_name.ends_with(suffix)) {
      return kernel_module_name(file_name.substr(0, file_name.size() - suffix.size()));
    }
  }
  return {};
}

Expected<ModuleInfo> read_module_info(const std::filesystem::path& ko)
{
  // No modprobe configuration: we only read the file's own .modinfo.
  const char* no_config[] = {"/dev/null", nullptr};
  std::unique_ptr<kmod_ctx, decltype(&kmod_unref)> context(kmod_new("/nonexistent", no_config), &kmod_unref);
  if (!context) {
    return error("{}: cannot create a libkmod context", ko.string());
  }
  kmod_module* raw_module = nullptr;
  if (const int rc = kmod_module_new_from_path(context.get(), ko.c_str(), &raw_module); rc < 0) {
    return error("{}: not a kernel module ({})", ko.string(), std::strerror(-rc));
  }
  std::unique_ptr<kmod_module, decltype(&kmod_module_unref)> module(raw_module, &kmod_module_unref);
  kmod_list* list = nullptr;
  if (const int rc = kmod_module_get_info(module.get(), &list); rc < 0) {
    return error("{}: cannot read .modinfo ({})", ko.string(), std::strerror(-rc));
  }
  ModuleInfo info;
  for (kmod_list* item = list; item != nullptr; item = kmod_list_next(list, item)) {
    const std::string key = kmod_module_info_get_key(item);
    const char* value = kmod_module_info_get_value(item);
    const std::string text = value ? value : "";
    if (key == "name") {
      info.name = text;
    } else if (key == "vermagic") {
      info.vermagic = text;
    } else if (key == "version") {
      info.version = text;
    } else if (key == "srcversion") {
      info.srcversion = text;
    }
  }
  kmod_module_info_free_list(list);
  if (info.name.empty()) {
    info.name = kmod_module_get_name(module.get());
  }
  return info;
}

Expected<ModuleInfo> verify_module(const std::filesystem::path& ko,
                                   const std::string& kernel_release,
                                   const std::string& expected_name)
{
  auto info = read_module_info(ko);
  if (!info) {
    return info;
  }
  if (!info->vermagic.starts_with(kernel_release + " ")) {
    return error("{} was built for another kernel: vermagic \"{}\" is not for {}",
                 ko.string(), info->vermagic, kernel_release);
  }
  if (kernel_module_name(info->name) != kernel_module_name(expected_name)) {
    return error("{} is module \"{}\", not \"{}\" as BUILT_MODULE_NAME says",
                 ko.string(), info->name, expected_name);
  }
  return info;
}

} // namespace kmodsync
