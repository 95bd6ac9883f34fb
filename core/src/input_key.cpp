// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/input_key.hpp"

#include "kmodsync/hash.hpp"
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
constexpr const char* k_key_schema = "kmodsync-cell-key-2";

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

ToolVersions probe_tool_versions()
{
  return {first_output_line({"gcc", "--version"}), first_output_line({"make", "--version"})};
}

Expected<std::string> hash_source_tree(const fs::path& dir)
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
      hasher.update_field(std::to_string(info.st_size));
      if (auto added = hasher.update_file(path); !added) {
        return std::unexpected(added.error());
      }
    }
  }
  return hasher.hex_digest();
}

std::string spec_to_json(const ModuleSpec& spec)
{
  json variables = json::object();
  for (const auto& [name, elements] : spec.values.variables) {
    json array = json::object();
    for (const auto& [index, value] : elements) {
      array[std::to_string(index)] = value;
    }
    variables[name] = array;
  }
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

std::string compute_input_key(const std::string& source_hash,
                              const ModuleSpec& spec,
                              const Kernel& kernel,
                              const ToolVersions& tools,
                              const std::string& install_fingerprint)
{
  Hasher hasher;
  hasher.update_field(k_key_schema);
  hasher.update_field(source_hash);
  hasher.update_field(spec_to_json(spec));
  hasher.update_field(kernel.release);
  hasher.update_field(kernel.fingerprint);
  hasher.update_field(tools.compiler);
  hasher.update_field(tools.make);
  hasher.update_field(install_fingerprint);
  return hasher.hex_digest();
}

} // namespace kmodsync
