// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/state.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kmodsync {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int k_format = 1;

// An integer field, `fallback` when absent. A number that is not an integer (1e300, 0.5)
// is as corrupt as a string: converting it could be undefined behaviour.
template <typename T> T integer(const json& object, const char* key, T fallback)
{
  if (!object.is_object()) {
    throw json::type_error::create(306, fmt::format("cannot read \"{}\" from {}", key, object.type_name()), &object);
  }
  const auto it = object.find(key);
  if (it == object.end()) {
    return fallback;
  }
  if (!it->is_number_integer()) {
    throw json::type_error::create(302, fmt::format("\"{}\" must be an integer", key), &*it);
  }
  return it->get<T>();
}

Outcome outcome_from(const std::string& text)
{
  if (text == "installed") {
    return Outcome::installed;
  }
  if (text == "failed") {
    return Outcome::failed;
  }
  if (text == "built") {
    return Outcome::built;
  }
  return Outcome::skipped;
}

json files_json(const std::vector<InstalledFile>& files)
{
  json array = json::array();
  for (const auto& file : files) {
    array.push_back({{"path", file.path}, {"sha256", file.sha256}, {"size", file.size}, {"mtime_ns", file.mtime_ns}});
  }
  return array;
}

json displaced_json(const std::vector<DisplacedFile>& displaced)
{
  json array = json::array();
  for (const auto& file : displaced) {
    array.push_back({{"original", file.original}, {"backup", file.backup}, {"sha256", file.sha256}});
  }
  return array;
}

std::vector<InstalledFile> files_from(const json& array)
{
  std::vector<InstalledFile> files;
  for (const auto& file : array) {
    files.push_back({file.at("path").get<std::string>(),
                     file.at("sha256").get<std::string>(),
                     integer(file, "size", std::int64_t{0}),
                     integer(file, "mtime_ns", std::int64_t{0})});
  }
  return files;
}

std::vector<DisplacedFile> displaced_from(const json& array)
{
  std::vector<DisplacedFile> displaced;
  for (const auto& file : array) {
    displaced.push_back({file.at("original").get<std::string>(), file.at("backup").get<std::string>(),
                         file.at("sha256").get<std::string>()});
  }
  return displaced;
}

json to_json(const CellRecord& record)
{
  const json files = files_json(record.files);
  return {
    {"module", record.module},
    {"version", record.version},
    {"kernel", record.kernel},
    {"source_dir", record.source_dir},
    {"input_key", record.input_key},
    {"outcome", to_string(record.outcome)},
    {"reason", record.reason},
    {"first_error", record.first_error},
    {"log", record.log},
    {"files", files},
    {"displaced", displaced_json(record.displaced)},
    {"built", files_json(record.built)},
    {"time", record.time},
  };
}

CellRecord record_from(const json& object)
{
  CellRecord record;
  record.module = object.at("module").get<std::string>();
  record.version = object.at("version").get<std::string>();
  record.kernel = object.at("kernel").get<std::string>();
  record.source_dir = object.value("source_dir", "");
  record.input_key = object.value("input_key", "");
  record.outcome = outcome_from(object.value("outcome", "skipped"));
  record.reason = object.value("reason", "");
  record.first_error = object.value("first_error", "");
  record.log = object.value("log", "");
  record.time = integer(object, "time", std::int64_t{0});
  record.files = files_from(object.value("files", json::array()));
  record.displaced = displaced_from(object.value("displaced", json::array()));
  record.built = files_from(object.value("built", json::array()));
  return record;
}

} // namespace

StatePaths::StatePaths(const Root& root)
  : dir(root("/var/lib/kmodsync")),
    state_file(dir / "state.json"),
    lock_file(dir / "lock"),
    build_dir(dir / "build"),
    log_dir(dir / "log"),
    built_dir(dir / "built")
{
}

const char* to_string(Outcome outcome)
{
  switch (outcome) {
  case Outcome::installed:
    return "installed";
  case Outcome::failed:
    return "failed";
  case Outcome::skipped:
    return "skipped";
  case Outcome::built:
    return "built";
  }
  return "skipped";
}

CellRecord* State::find(const std::string& module, const std::string& version, const std::string& kernel)
{
  const auto it = std::find_if(cells.begin(), cells.end(), [&](const CellRecord& record) {
    return record.module == module && record.version == version && record.kernel == kernel;
  });
  return it == cells.end() ? nullptr : &*it;
}

void State::put(CellRecord record)
{
  if (CellRecord* existing = find(record.module, record.version, record.kernel)) {
    *existing = std::move(record);
  } else {
    cells.push_back(std::move(record));
  }
}

Expected<State> State::load(const fs::path& file)
{
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return State{};
  }
  auto text = util::read_file(file);
  if (!text) {
    return std::unexpected(text.error());
  }
  try {
    const json document = json::parse(*text);
    if (const int format = integer(document, "format", 0); format != k_format) {
      return error("{}: unknown state format {}", file.string(), format);
    }
    State state;
    for (const auto& cell : document.value("cells", json::array())) {
      state.cells.push_back(record_from(cell));
    }
    state.registered = document.value("registered", std::vector<std::string>{});
    const auto removed = document.value("removed", std::vector<std::string>{});
    state.removed.insert(removed.begin(), removed.end());
    const auto added = document.value("added", std::vector<std::string>{});
    state.added.insert(added.begin(), added.end());
    const auto adopt = document.value("adopt", std::vector<std::string>{});
    state.adopt.insert(adopt.begin(), adopt.end());
    state.dkms_imported = document.value("dkms_imported", false);
    const auto depmod = document.value("depmod_pending", std::vector<std::string>{});
    state.depmod_pending.insert(depmod.begin(), depmod.end());
    state.initramfs_pending =
      document.value("initramfs_pending", std::map<std::string, std::set<std::string>>{});
    for (const auto& change : document.value("pending", json::array())) {
      state.pending.push_back({change.at("module").get<std::string>(), change.at("version").get<std::string>(),
                               change.at("kernel").get<std::string>(), files_from(change.value("files", json::array())),
                               displaced_from(change.value("displaced", json::array())),
                               files_from(change.value("removing", json::array())),
                               displaced_from(change.value("restoring", json::array()))});
    }
    return state;
  } catch (const json::exception& e) {
    return error("{}: corrupt state file: {}", file.string(), e.what());
  }
}

Expected<void> State::save(const fs::path& file) const
{
  json cells_json = json::array();
  auto sorted = cells;
  std::sort(sorted.begin(), sorted.end(), [](const CellRecord& a, const CellRecord& b) {
    return std::tie(a.module, a.version, a.kernel) < std::tie(b.module, b.version, b.kernel);
  });
  for (const auto& record : sorted) {
    cells_json.push_back(to_json(record));
  }
  json pending_json = json::array();
  for (const auto& change : pending) {
    pending_json.push_back({{"module", change.module},
                            {"version", change.version},
                            {"kernel", change.kernel},
                            {"files", files_json(change.files)},
                            {"displaced", displaced_json(change.displaced)},
                            {"removing", files_json(change.removing)},
                            {"restoring", displaced_json(change.restoring)}});
  }
  const json document = {
    {"format", k_format},
    {"cells", cells_json},
    {"registered", registered},
    {"removed", std::vector<std::string>(removed.begin(), removed.end())},
    {"added", std::vector<std::string>(added.begin(), added.end())},
    {"adopt", std::vector<std::string>(adopt.begin(), adopt.end())},
    {"dkms_imported", dkms_imported},
    {"depmod_pending", std::vector<std::string>(depmod_pending.begin(), depmod_pending.end())},
    {"pending", pending_json},
    {"initramfs_pending", initramfs_pending},
  };
  if (auto made = util::ensure_directory(file.parent_path()); !made) {
    return made;
  }
  // Compiler messages and paths need not be UTF-8: replace, never throw.
  return write_file_atomically(file, document.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

} // namespace kmodsync
