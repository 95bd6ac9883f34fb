// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/module_info.hpp"

#include "kmodsync/compression.hpp"
#include "kmodsync/file_util.hpp"

#include <libkmod.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

namespace {

std::uint64_t elf_field(std::string_view elf, std::size_t offset, std::size_t size, bool big_endian)
{
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<unsigned char>(elf[offset + (big_endian ? i : size - 1 - i)]);
    value = (value << 8) | byte;
  }
  return value;
}

// libkmod 30 aborts the whole process (an assert in elf_get_section_header) on an ELF file
// without section headers or without a section name table, instead of failing: a damaged
// module from a tarball or the remote cache must not take kmodsync (or rpm) down with it.
// What libkmod rejects by itself (not ELF, truncated headers) is left to it.
Expected<void> check_section_headers(const std::filesystem::path& ko)
{
  auto data = util::read_file(ko);
  if (!data) {
    return {}; // libkmod says why, naming the file
  }
  std::string_view elf = *data;
  // libkmod recognises compression by its magic bytes, whatever the suffix.
  Compression compression = Compression::none;
  if (elf.starts_with("\xfd" "7zXZ")) {
    compression = Compression::xz;
  } else if (elf.starts_with("\x28\xb5\x2f\xfd")) {
    compression = Compression::zstd;
  } else if (elf.starts_with("\x1f\x8b")) {
    compression = Compression::gzip;
  }
  std::string plain;
  if (compression != Compression::none) {
    auto decompressed = decompress_module(elf, compression);
    if (!decompressed) {
      return error("{}: not a kernel module ({})", ko.string(), decompressed.error());
    }
    plain = std::move(*decompressed);
    elf = plain;
  }
  if (elf.size() < 64 || !elf.starts_with("\x7f" "ELF") || (elf[4] != 1 && elf[4] != 2) || (elf[5] != 1 && elf[5] != 2)) {
    return {};
  }
  const bool is_64 = elf[4] == 2;
  const bool big_endian = elf[5] == 2;
  const std::uint64_t shoff = elf_field(elf, is_64 ? 0x28 : 0x20, is_64 ? 8 : 4, big_endian);
  const std::uint64_t shentsize = elf_field(elf, is_64 ? 0x3A : 0x2E, 2, big_endian);
  const std::uint64_t shnum = elf_field(elf, is_64 ? 0x3C : 0x30, 2, big_endian);
  const std::uint64_t shstrndx = elf_field(elf, is_64 ? 0x3E : 0x32, 2, big_endian);
  if (shnum == 0 || shstrndx == 0 || shstrndx >= shnum || shentsize < (is_64 ? 64u : 40u) || shoff > elf.size()
      || shnum * shentsize > elf.size() - shoff) {
    return error("{}: not a kernel module (damaged ELF section headers: {} at {}, names in {})", ko.string(), shnum,
                 shoff, shstrndx);
  }
  return {};
}

} // namespace

Expected<ModuleInfo> read_module_info(const std::filesystem::path& ko)
{
  if (auto checked = check_section_headers(ko); !checked) {
    return std::unexpected(checked.error());
  }
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
    return error("{}: not a kernel module (cannot read its .modinfo: {})", ko.string(), std::strerror(-rc));
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
