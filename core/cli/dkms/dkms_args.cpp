// SPDX-License-Identifier: GPL-2.0-or-later
#include "dkms_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <regex>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

namespace {

// DKMS's "module/version" and "kernel/arch" split: at the first slash (its ^([^/]*)/(.*)$).
std::pair<std::string, std::string> split_pair(const std::string& text)
{
  const auto slash = text.find('/');
  if (slash == std::string::npos) {
    return {text, ""};
  }
  return {text.substr(0, slash), text.substr(slash + 1)};
}

bool is_action(const std::string& word)
{
  static const std::regex actions(
    "^(remove|(auto|un)?install|match|mktarball|(un)?build|add|status|ldtarball|kernel_(preinst|postinst|prerm))$");
  return std::regex_match(word, actions);
}

} // namespace

std::variant<Request, int> parse_request(const std::vector<std::string>& args)
{
  CLI::App app{"dkms (kmodsync): DKMS 3's command line, carried out by kmodsync's engine", "dkms"};
  Request request;
  std::string module_arg;
  std::vector<std::string> kernel_args;
  std::vector<std::string> words;
  std::vector<std::string> ignored_values;
  bool ignored = false;
  bool version = false;
  auto one_each = [](CLI::Option* option) {
    return option->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  app.add_option("-m,--module", module_arg, "Module NAME or NAME/VERSION")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-v", request.version, "Module version")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  one_each(app.add_option("-k,--kernelver", kernel_args, "Kernel release, or KV/ARCH (repeatable)"));
  one_each(app.add_option("-a,--arch", request.arches, "Architecture (repeatable, paired with -k)"));
  app.add_flag("--all", request.all, "Every kernel the module is built for");
  app.add_flag("--force", request.force, "Rebuild / reinstall even what is up to date; install over newer modules");
  app.add_option("-j", request.jobs, "Parallel jobs");
  app.add_option("--kernelsourcedir", request.kernel_source_dir, "The kernel's headers (must be its build link)");
  app.add_option("--dkmstree", request.dkms_tree, "ROOT/var/lib/dkms");
  app.add_option("--sourcetree", request.source_tree, "ROOT/usr/src");
  app.add_option("--installtree", request.install_tree, "ROOT/lib/modules");
  app.add_option("--root", request.root, "kmodsync: work on the system under this directory");
  app.add_option("--templatekernel", request.template_kernel, "match: the kernel to copy");
  app.add_option("--archive", request.archive, "mktarball/ldtarball: the tarball");
  app.add_flag("--binaries-only", request.binaries_only, "mktarball: modules without source");
  app.add_flag("--source-only", request.source_only, "mktarball: source without modules");
  app.add_flag("-q,--quiet", request.quiet, "Print nothing");
  app.add_flag("--verbose", request.verbose, "Say more (kmodsync's debug log)");
  app.add_flag("--no-depmod", request.no_depmod, "Do not run depmod now (the next pass will)");
  app.add_flag("-V,--version", version, "Print the version");
  // Accepted for compatibility; kmodsync needs none of them (see the README).
  for (const char* name : {"--no-initrd", "--no-prepare-kernel", "--no-clean-kernel", "--force-version-override",
                           "--rpm_safe_upgrade", "--symlink-modules", "--modprobe-on-install", "--debug"}) {
    app.add_flag(name, ignored, "Accepted, no effect");
  }
  for (const char* name : {"-c", "--config", "--directive"}) {
    one_each(app.add_option(name, ignored_values, "Accepted, no effect"));
  }
  app.add_option("words", words, "ACTION, NAME/VERSION, a source directory or an archive");
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return k_ok;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "Error! {}\n", e.what());
    fmt::print(stderr, "Usage: dkms [action] [options] (see `dkms --help`)\n");
    return k_not_found;
  }
  if (version) {
    fmt::print("dkms-3.0.10 (kmodsync {})\n", KMODSYNC_VERSION);
    return k_ok;
  }
  if (!module_arg.empty()) {
    auto [name, module_version] = split_pair(module_arg);
    request.module = name;
    if (!module_version.empty()) {
      request.version = module_version;
    }
  }
  for (const auto& word : words) {
    std::error_code ec;
    if (is_action(word)) {
      if (!request.action.empty()) {
        fmt::print(stderr, "Error! Cannot specify more than one action.\n");
        return 4;
      }
      request.action = word;
    } else if (word.ends_with("dkms.conf") && fs::is_regular_file(word, ec)) {
      request.source_path = fs::path(word).parent_path().string();
    } else if (fs::is_directory(word, ec) && fs::is_regular_file(fs::path(word) / "dkms.conf", ec)) {
      request.source_path = word;
    } else if (fs::is_regular_file(word, ec)) {
      request.archive = word;
    } else if (request.module.empty()) {
      auto [name, module_version] = split_pair(word);
      request.module = name;
      request.version = module_version;
    } else {
      fmt::print(stderr, "Warning! I do not know how to handle {}.\n", word);
    }
  }
  for (const auto& text : kernel_args) {
    auto [kernel, arch] = split_pair(text);
    request.kernels.push_back({kernel, arch});
  }
  // As DKMS: one -a applies to every kernel; several pair up with the -k in order.
  if (request.arches.size() > 1 && request.arches.size() != request.kernels.size()) {
    fmt::print(stderr, "Error! If more than one arch is specified on the command line, then there must be an "
                       "equal number of kernel versions also specified (1:1 relationship).\n");
    return k_error;
  }
  for (std::size_t i = 0; i < request.kernels.size(); ++i) {
    if (request.kernels[i].arch.empty() && !request.arches.empty()) {
      request.kernels[i].arch = request.arches.size() == 1 ? request.arches[0] : request.arches[i];
    }
  }
  if (!request.kernels.empty() && request.all) {
    fmt::print(stderr, "Error! You cannot specify a kernel version and also specify --all on the command line.\n");
    return 2;
  }
  if (!request.arches.empty() && request.all) {
    fmt::print(stderr, "Error! You cannot specify an arch and also specify --all on the command line.\n");
    return 3;
  }
  if (request.binaries_only && request.source_only) {
    fmt::print(stderr, "Error! You have specified both --binaries-only and --source-only.\n");
    return k_bad_conf;
  }
  return request;
}

Expected<std::string> root_of(const Request& request)
{
  std::vector<std::pair<std::string, std::string>> candidates;
  auto strip = [&](const std::string& option, const std::string& value,
                   std::initializer_list<const char*> suffixes) -> Expected<void> {
    if (value.empty()) {
      return {};
    }
    const std::string path = fs::absolute(value).lexically_normal().string();
    for (const char* suffix : suffixes) {
      if (path.ends_with(suffix)) {
        const std::string root = path.substr(0, path.size() - std::string_view(suffix).size());
        candidates.emplace_back(option, root.empty() ? "/" : root);
        return {};
      }
    }
    return error("{} {}: kmodsync works on whole systems: give ROOT{} (or --root ROOT)", option, value,
                 *suffixes.begin());
  };
  if (auto ok = strip("--dkmstree", request.dkms_tree, {"/var/lib/dkms"}); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = strip("--sourcetree", request.source_tree, {"/usr/src"}); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = strip("--installtree", request.install_tree, {"/usr/lib/modules", "/lib/modules"}); !ok) {
    return std::unexpected(ok.error());
  }
  if (!request.root.empty()) {
    candidates.emplace_back("--root", fs::absolute(request.root).lexically_normal().string());
  }
  if (candidates.empty()) {
    const char* env = std::getenv("KMODSYNC_ROOT");
    return std::string(env && *env ? env : "/");
  }
  for (const auto& [option, root] : candidates) {
    if (fs::path(root) != fs::path(candidates.front().second)) {
      return error("{} and {} name different roots ({} and {}): kmodsync works on one system at a time",
                   candidates.front().first, option, candidates.front().second, root);
    }
  }
  return candidates.front().second;
}

} // namespace kmodsync::cli::dkms
