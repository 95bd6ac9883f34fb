// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/kernel.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/hash.hpp"
#include "kmodsync/memo.hpp"
#include "kmodsync/string_util.hpp"
#include "kmodsync/version.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

std::string machine_arch()
{
  utsname name{};
  if (uname(&name) != 0) {
    return "x86_64";
  }
  return name.machine;
}

bool looks_like_kernel(const fs::path& dir)
{
  std::error_code ec;
  return fs::is_symlink(dir / "build", ec) || fs::exists(dir / "build", ec)
         || fs::is_directory(dir / "kernel", ec) || fs::exists(dir / "modules.order", ec)
         || fs::exists(dir / "vmlinuz", ec);
}

// The files whose content decides whether a module built against these headers fits.
std::string headers_fingerprint(const fs::path& headers, Memo& memo)
{
  Hasher hasher;
  for (const char* file : {".config", "Module.symvers", "include/generated/utsrelease.h"}) {
    hasher.update_field(file);
    struct stat info{};
    const fs::path path = headers / file;
    auto hash = stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) ? memoized_file_hash(memo, path, info)
                                                                         : Expected<std::string>(error("missing"));
    hasher.update_field(hash ? *hash : std::string("<missing>"));
  }
  return hasher.hex_digest();
}

void load_headers(const Root& root, Kernel& kernel, Memo& memo)
{
  const fs::path link = kernel.modules_dir / "build";
  std::error_code ec;
  if (!fs::is_symlink(link, ec) && !fs::exists(link, ec)) {
    kernel.missing_headers_reason = fmt::format("no headers: {} does not exist", link.string());
    return;
  }
  auto headers = root.resolve_link(link);
  if (!headers) {
    kernel.missing_headers_reason =
      fmt::format("no headers: {} points at a directory that does not exist", link.string());
    return;
  }
  if (!fs::exists(*headers / "Makefile", ec)) {
    kernel.missing_headers_reason =
      fmt::format("no headers: {} has no Makefile (not a kbuild tree)", headers->string());
    return;
  }
  kernel.headers_dir = *headers;
  if (auto config = util::read_file(*headers / ".config")) {
    kernel.config = KernelConfig::parse(std::move(*config));
  }
  kernel.fingerprint = headers_fingerprint(*headers, memo);
}

} // namespace

bool Kernel::config_enabled(const std::string& option) const
{
  const auto value = config.find(option);
  return value == "y" || value == "m";
}

namespace {

constexpr std::string_view k_not_set_suffix = " is not set";

// The value of the `CONFIG_X=value` or `# CONFIG_X is not set` line `line`, if it is one
// for `option`.
std::optional<std::string_view> entry_value(std::string_view line, std::string_view option)
{
  if (line.starts_with(option) && line.size() > option.size() && line[option.size()] == '='
      && option.find('=') == std::string_view::npos) {
    std::string_view value = line.substr(option.size() + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  if (line.size() == 2 + option.size() + k_not_set_suffix.size() && line.starts_with("# ")
      && line.substr(2, option.size()) == option && line.ends_with(k_not_set_suffix)) {
    return "n";
  }
  return std::nullopt;
}

// Calls `visit(line)` for each line of `text`.
template <typename Visit>
void each_line(std::string_view text, Visit visit)
{
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    visit(text.substr(start, end - start));
    start = end + 1;
  }
}

// The option a line sets, if it is an entry at all.
std::optional<std::string_view> entry_option(std::string_view line)
{
  if (line.starts_with("CONFIG_")) {
    const auto equals = line.find('=');
    if (equals != std::string_view::npos) {
      return line.substr(0, equals);
    }
  } else if (line.starts_with("# CONFIG_") && line.ends_with(k_not_set_suffix)) {
    return line.substr(2, line.size() - 2 - k_not_set_suffix.size());
  }
  return std::nullopt;
}

// The last line of `text` that is an entry for `option`: each occurrence of the name is
// looked at, not each line (memmem runs through 250 KB in microseconds).
std::optional<std::string_view> scan_for(std::string_view text, std::string_view option)
{
  std::optional<std::string_view> value;
  if (!option.starts_with("CONFIG_") || option.find('\n') != std::string_view::npos) {
    return value;
  }
  std::size_t from = 0;
  while (from < text.size()) {
    const void* hit = memmem(text.data() + from, text.size() - from, option.data(), option.size());
    if (!hit) {
      break;
    }
    const auto at = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
    from = at + 1;
    std::size_t line_start = at;
    if (at >= 2 && text.substr(at - 2, 2) == "# ") {
      line_start = at - 2;
    }
    if (line_start != 0 && text[line_start - 1] != '\n') {
      continue;
    }
    const std::size_t line_end = std::min(text.find('\n', at), text.size());
    if (auto found = entry_value(text.substr(line_start, line_end - line_start), option)) {
      value = found;
    }
  }
  return value;
}

} // namespace

KernelConfig KernelConfig::parse(std::string text)
{
  KernelConfig config;
  config.m_data = std::make_shared<Data>();
  config.m_data->text = std::move(text);
  return config;
}

KernelConfig::KernelConfig(std::initializer_list<std::pair<const std::string, std::string>> entries)
  : KernelConfig(std::map<std::string, std::string>(entries))
{
}

KernelConfig::KernelConfig(const std::map<std::string, std::string>& entries)
{
  m_data = std::make_shared<Data>();
  for (const auto& [option, value] : entries) {
    m_data->found.emplace(option, value);
  }
}

std::optional<std::string_view> KernelConfig::find(std::string_view option) const
{
  if (!m_data) {
    return std::nullopt;
  }
  const std::lock_guard lock(m_data->mutex);
  auto it = m_data->found.find(option);
  if (it == m_data->found.end()) {
    const auto value = scan_for(m_data->text, option);
    it = m_data->found.emplace(std::string(option), value ? std::optional<std::string>(*value) : std::nullopt).first;
  }
  if (!it->second) {
    return std::nullopt;
  }
  return std::string_view(*it->second);
}

bool KernelConfig::empty() const
{
  if (!m_data) {
    return true;
  }
  const std::lock_guard lock(m_data->mutex);
  if (std::any_of(m_data->found.begin(), m_data->found.end(), [](const auto& entry) { return entry.second.has_value(); })) {
    return false;
  }
  bool any = false;
  each_line(m_data->text, [&](std::string_view line) { any = any || entry_option(line).has_value(); });
  return !any;
}

std::map<std::string, std::string> KernelConfig::entries() const
{
  std::map<std::string, std::string> entries;
  if (!m_data) {
    return entries;
  }
  const std::lock_guard lock(m_data->mutex);
  each_line(m_data->text, [&](std::string_view line) {
    if (const auto option = entry_option(line)) {
      entries.insert_or_assign(std::string(*option), std::string(*entry_value(line, *option)));
    }
  });
  if (m_data->text.empty()) {
    for (const auto& [option, value] : m_data->found) {
      if (value) {
        entries.emplace(option, *value);
      }
    }
  }
  return entries;
}

KernelConfig parse_kernel_config(std::string_view text)
{
  return KernelConfig::parse(std::string(text));
}

Expected<std::vector<Kernel>> discover_kernels(const Root& root)
{
  Memo none;
  return discover_kernels(root, none);
}

Expected<std::vector<Kernel>> discover_kernels(const Root& root, Memo& memo)
{
  std::vector<Kernel> kernels;
  std::set<std::string> seen_releases;
  std::set<fs::path> seen_dirs;
  const std::string arch = machine_arch();
  for (const char* base : {"/usr/lib/modules", "/lib/modules"}) {
    const fs::path modules = root(base);
    std::error_code ec;
    if (!fs::is_directory(modules, ec)) {
      continue;
    }
    for (const auto& entry : fs::directory_iterator(modules, ec)) {
      // A dangling link or an unreadable entry is not a kernel, and not an error either.
      std::error_code entry_ec;
      if (!entry.is_directory(entry_ec)) {
        continue;
      }
      // /lib is usually a link to /usr/lib: the same directory must count once.
      const fs::path canonical = fs::weakly_canonical(entry.path(), entry_ec);
      const std::string release = entry.path().filename().string();
      if (seen_dirs.contains(canonical) || seen_releases.contains(release)
          || !looks_like_kernel(entry.path())) {
        continue;
      }
      seen_dirs.insert(canonical);
      seen_releases.insert(release);
      Kernel kernel;
      kernel.release = release;
      kernel.arch = arch;
      kernel.modules_dir = entry.path();
      load_headers(root, kernel, memo);
      kernels.push_back(std::move(kernel));
    }
    if (ec) {
      return error("cannot list {}: {}", modules.string(), ec.message());
    }
  }
  std::sort(kernels.begin(), kernels.end(), [](const Kernel& a, const Kernel& b) {
    return compare_versions(a.release, b.release) < 0;
  });
  return kernels;
}

} // namespace kmodsync
