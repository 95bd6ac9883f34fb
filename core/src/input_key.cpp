// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/input_key.hpp"

#include "kmodsync/hash.hpp"
#include "kmodsync/memo.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kmodsync {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bump when the meaning of a key changes, so old records are rebuilt.
constexpr const char* k_key_schema = "kmodsync-build-key-3";
constexpr const char* k_cell_key_schema = "kmodsync-cell-key-3";

std::string first_output_line(std::vector<std::string> argv)
{
  Command command;
  command.argv = std::move(argv);
  command.env = clean_environment();
  command.timeout = std::chrono::seconds(10);
  auto completion = run(command);
  if (!completion || !completion->succeeded()) {
    return "<unavailable>";
  }
  const auto lines = util::split_lines(completion->output);
  return lines.empty() ? std::string() : lines.front();
}

} // namespace

ToolVersions probe_tool_versions(Memo& memo)
{
  // The binaries as the builds will find them, by their stat: a compiler upgrade shows.
  std::string identity = "tools:";
  for (const char* tool : {"gcc", "make"}) {
    const auto path = find_executable(tool, clean_environment());
    struct stat info{};
    if (!path || stat(path->c_str(), &info) != 0) {
      identity.clear();
      break;
    }
    identity += fmt::format("{}:{}:{}:{}:{};", path->string(), info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec,
                            info.st_ino);
  }
  if (!identity.empty()) {
    if (auto known = memo.get(identity); known && known->is_array() && known->size() == 2) {
      return {(*known)[0].get<std::string>(), (*known)[1].get<std::string>()};
    }
  }
  ToolVersions tools{first_output_line({"gcc", "--version"}), first_output_line({"make", "--version"})};
  if (!identity.empty() && tools.compiler != "<unavailable>" && tools.make != "<unavailable>") {
    memo.put(identity, json::array({tools.compiler, tools.make}));
  }
  return tools;
}

Expected<std::string> hash_source_tree(const fs::path& dir, Memo& memo)
{
  std::vector<fs::path> entries;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) {
      break;
    }
    entries.push_back(it->path());
  }
  if (ec) {
    return error("cannot list {}: {}", dir.string(), ec.message());
  }
  std::sort(entries.begin(), entries.end());
  Hasher hasher;
  for (const auto& path : entries) {
    struct stat info{};
    if (lstat(path.c_str(), &info) != 0) {
      return error("cannot stat {}", path.string());
    }
    hasher.update_field(path.lexically_relative(dir).string());
    hasher.update_field(std::to_string(info.st_mode));
    if (S_ISLNK(info.st_mode)) {
      hasher.update_field(fs::read_symlink(path, ec).string());
    } else if (S_ISREG(info.st_mode)) {
      auto hash = memoized_file_hash(memo, path, info);
      if (!hash) {
        return std::unexpected(hash.error());
      }
      hasher.update_field(*hash);
    }
  }
  return hasher.hex_digest();
}

std::string spec_to_json(const ModuleSpec& spec)
{
  const json variables = values_to_json(spec.values);
  json modules = json::array();
  for (const auto& record : spec.modules) {
    modules.push_back({{"built_name", record.built_name},
                       {"built_location", record.built_location},
                       {"dest_name", record.dest_name},
                       {"dest_location", record.dest_location},
                       {"strip", record.strip}});
  }
  const json document = {
    {"variables", variables},
    {"make_command", spec.make_command},
    {"patches", spec.patches_for_kernel},
    {"modules", modules},
  };
  return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

void PathAliases::add(const fs::path& path, const std::string& placeholder)
{
  std::string text = path.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') {
    text.pop_back();
  }
  if (text.size() > 1) {
    replacements.emplace_back(std::move(text), placeholder);
  }
}

std::string PathAliases::apply(std::string text) const
{
  // Longest first: a build directory inside the root is replaced whole, not as root + rest.
  auto ordered = replacements;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [path, placeholder] : ordered) {
    for (std::size_t at = text.find(path); at != std::string::npos; at = text.find(path, at + placeholder.size())) {
      text.replace(at, path.size(), placeholder);
    }
  }
  return text;
}

std::string compute_build_key(const std::string& source_hash,
                              const ModuleSpec& spec,
                              const Kernel& kernel,
                              const ToolVersions& tools,
                              const PathAliases& aliases)
{
  // No release: the headers' fingerprint holds utsrelease.h, which is what a module's
  // vermagic is made of.
  Hasher hasher;
  hasher.update_field(k_key_schema);
  hasher.update_field(source_hash);
  hasher.update_field(aliases.apply(spec_to_json(spec)));
  hasher.update_field(kernel.arch);
  hasher.update_field(kernel.fingerprint);
  hasher.update_field(tools.compiler);
  hasher.update_field(tools.make);
  return hasher.hex_digest();
}

std::string compute_input_key(const std::string& build_key, const std::string& install_fingerprint)
{
  Hasher hasher;
  hasher.update_field(k_cell_key_schema);
  hasher.update_field(build_key);
  hasher.update_field(install_fingerprint);
  return hasher.hex_digest();
}

} // namespace kmodsync
