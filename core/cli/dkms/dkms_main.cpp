// SPDX-License-Identifier: GPL-2.0-or-later
#include "dkms_command.hpp"

#include "kmodsync/log.hpp"

#include <fmt/format.h>

#include <exception>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

namespace {

struct ActionEntry
{
  const char* name;
  int (*run)(const Context&);
};

constexpr ActionEntry k_actions[] = {
  {"add", add},
  {"build", [](const Context& c) { return build_or_install(c, false); }},
  {"install", [](const Context& c) { return build_or_install(c, true); }},
  {"uninstall", [](const Context& c) { return uninstall(c, true); }},
  {"unbuild", [](const Context& c) { return uninstall(c, false); }},
  {"remove", remove},
  {"status", status},
  {"autoinstall", [](const Context& c) { return autoinstall(c, "autoinstall"); }},
  {"kernel_postinst", [](const Context& c) { return autoinstall(c, "kernel_postinst"); }},
  {"kernel_preinst",
   [](const Context&) {
     // DKMS unbuilds before a kernel upgrade so that kernel_postinst rebuilds; kmodsync's
     // input keys see changed headers by themselves.
     fmt::print("kmodsync: nothing to do before a kernel is installed\n");
     return k_ok;
   }},
  {"kernel_prerm", kernel_prerm},
  {"match", match},
  {"mktarball", make_tarball},
  {"ldtarball", load_tarball},
};

// -q: as DKMS, everything the command prints goes away.
void silence()
{
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::close(null);
  }
}

} // namespace

int run_action(const Request& request)
{
  if (request.action.empty()) {
    fmt::print(stderr, "Error! No action was specified.\n"
                       "Usage: dkms {{add|remove|build|unbuild|install|uninstall|match|autoinstall|mktarball|ldtarball|"
                       "status|kernel_postinst|kernel_prerm}} [options]\n");
    return k_ok; // as DKMS 3.0.10, which prints its usage and exits 0
  }
  auto root = root_of(request);
  if (!root) {
    fmt::print(stderr, "Error! {}\n", root.error());
    return k_error;
  }
  std::error_code ec;
  if (!fs::is_directory(*root, ec)) {
    fmt::print(stderr, "Error! {}: not a directory\n", *root);
    return k_error;
  }
  Context context{request, Root(fs::path(*root))};
  for (const auto& action : k_actions) {
    if (request.action == action.name) {
      return action.run(context);
    }
  }
  return k_error;
}

int main(const std::vector<std::string>& args)
{
  try {
    auto parsed = parse_request(args);
    if (const int* code = std::get_if<int>(&parsed)) {
      return *code;
    }
    const Request& request = std::get<Request>(parsed);
    if (request.quiet) {
      silence();
    }
    if (request.verbose) {
      log::enable();
    }
    return run_action(request);
  } catch (const std::exception& e) {
    fmt::print(stderr, "Error! kmodsync internal error: {}\n", e.what());
    return k_error;
  }
}

} // namespace kmodsync::cli::dkms
