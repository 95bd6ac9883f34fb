// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"
#include "json_output.hpp"

#include "kmodsync/build_cache.hpp"
#include "kmodsync/config.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace kmodsync::cli {

namespace {

std::string human(std::uint64_t bytes)
{
  if (bytes >= (1ull << 30)) {
    return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
  }
  if (bytes >= (1ull << 20)) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1ull << 20));
  }
  return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
}

int run_cache(const GlobalOptions& global, const std::string& what, bool json)
{
  const Root root(global.root);
  auto config = Config::load(root);
  if (!config) {
    if (json) {
      return print_outcome_json(k_exit_usage, config.error(), {}, nlohmann::json::object());
    }
    fmt::print(stderr, "kmodsync: {}\n", config.error());
    return k_exit_usage;
  }
  const BuildCache cache(root, config->cache_size);
  if (what == "clear") {
    auto cleared = cache.clear();
    if (json) {
      return print_outcome_json(cleared ? k_exit_ok : k_exit_usage, cleared ? "" : cleared.error(), {},
                                {{"directory", cache.dir().string()}});
    }
    if (!cleared) {
      fmt::print(stderr, "kmodsync: {}\n", cleared.error());
      return k_exit_usage;
    }
    fmt::print("kmodsync: build cache {} cleared\n", cache.dir().string());
    return k_exit_ok;
  }
  const CacheStats stats = cache.stats();
  if (json) {
    return print_outcome_json(k_exit_ok, "", {},
                              {{"directory", cache.dir().string()}, {"entries", stats.entries},
                               {"failures", stats.failures}, {"bytes", stats.bytes}, {"limit", stats.limit}});
  }
  fmt::print("build cache: {}\n", cache.dir().string());
  fmt::print("  entries:   {} ({} failed builds)\n", stats.entries, stats.failures);
  fmt::print("  size:      {} of {} (cache_size)\n", human(stats.bytes), human(stats.limit));
  return k_exit_ok;
}

} // namespace

void add_cache_command(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto what = std::make_shared<std::string>("stats");
  auto* command = app.add_subcommand("cache", "The build cache: `stats` (default) or `clear`");
  command->add_option("what", *what, "stats | clear")->check(CLI::IsMember({"stats", "clear"}));
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print the statistics (or the outcome) as JSON");
  command->callback([&action, &global, what, json] {
    action = [&global, what, json] { return run_cache(global, *what, *json); };
  });
}

} // namespace kmodsync::cli
