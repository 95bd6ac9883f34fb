// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/state.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <set>

namespace kmodsync::cli {

namespace {

struct LogArgs
{
  std::string module; // NAME or NAME/VERSION
  std::string kernel;
  bool path_only = false;
  bool json = false;
};

std::string joined(const std::set<std::string>& items)
{
  std::string text;
  for (const auto& item : items) {
    text += (text.empty() ? "" : ", ") + item;
  }
  return text;
}

// The recorded cell the arguments name, or a message saying what to add to name one.
Expected<const CellRecord*> find_cell(const State& state, const LogArgs& args)
{
  const auto slash = args.module.find('/');
  const std::string name = args.module.substr(0, slash);
  const std::string version = slash == std::string::npos ? std::string() : args.module.substr(slash + 1);
  std::vector<const CellRecord*> matches;
  std::set<std::string> versions;
  for (const auto& record : state.cells) {
    if (record.module == name && (version.empty() || record.version == version)) {
      matches.push_back(&record);
      versions.insert(record.version);
    }
  }
  if (matches.empty()) {
    return error("no cell of {} is recorded (kmodsync status lists them)", args.module);
  }
  if (versions.size() > 1) {
    return error("{} has several versions: {}; give NAME/VERSION", name, joined(versions));
  }
  std::erase_if(matches, [&](const CellRecord* record) {
    return args.kernel.empty() ? record->log.empty() : record->kernel != args.kernel;
  });
  std::set<std::string> kernels;
  for (const auto& record : state.cells) {
    if (record.module == name && versions.contains(record.version) && !record.log.empty()) {
      kernels.insert(record.kernel);
    }
  }
  if (matches.empty()) {
    return args.kernel.empty() ? error("no log is recorded for {}", args.module)
                               : error("{} has no cell for kernel {}{}", args.module, args.kernel,
                                       kernels.empty() ? "" : "; logs exist for " + joined(kernels));
  }
  if (matches.size() > 1) {
    return error("{} has logs for several kernels: {}; give the kernel too", args.module, joined(kernels));
  }
  return matches.front();
}

int run_log(const GlobalOptions& global, const LogArgs& args)
{
  const Root root(global.root);
  auto state = State::load(StatePaths(root).state_file);
  if (!state) {
    fmt::print(stderr, "kmodsync: {}\n", state.error());
    return k_exit_usage;
  }
  auto found = find_cell(*state, args);
  if (!found) {
    fmt::print(stderr, "kmodsync: {}\n", found.error());
    return k_exit_usage;
  }
  const CellRecord& record = **found;
  const std::string cell = fmt::format("{}/{} on {}", record.module, record.version, record.kernel);
  if (record.log.empty()) {
    fmt::print(stderr, "kmodsync: {} has no build log ({}: {})\n", cell, to_string(record.outcome), record.reason);
    return k_exit_usage;
  }
  const auto path = root(record.log);
  if (args.path_only) {
    fmt::print("{}\n", path.string());
    return k_exit_ok;
  }
  auto text = util::read_file(path);
  if (!text) {
    fmt::print(stderr, "kmodsync: the log of {} is gone: {}\n", cell, text.error());
    return k_exit_usage;
  }
  if (args.json) {
    const nlohmann::json document = {{"module", record.module},       {"version", record.version},
                                     {"kernel", record.kernel},       {"state", to_string(record.outcome)},
                                     {"reason", record.reason},       {"first_error", record.first_error},
                                     {"log", path.string()},          {"text", *text}};
    fmt::print("{}", dump_json(document));
    return k_exit_ok;
  }
  std::fwrite(text->data(), 1, text->size(), stdout);
  return k_exit_ok;
}

} // namespace

void add_log_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto args = std::make_shared<LogArgs>();
  auto* command = app.add_subcommand("log", "Print a cell's build log: NAME[/VERSION] [KV]");
  command->add_option("module", args->module, "NAME or NAME/VERSION")->required();
  command->add_option("kernel", args->kernel, "the kernel release (needed when several kernels have a log)");
  command->add_flag("--path", args->path_only, "Print only the log's path");
  command->add_flag("--json", args->json, "Print the cell and its log as JSON");
  command->callback([&action, &global, args] { action = [&global, args] { return run_log(global, *args); }; });
}

} // namespace kmodsync::cli
