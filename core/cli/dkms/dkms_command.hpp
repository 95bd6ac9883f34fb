// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// `kmodsync dkms ...` and kmodsync run as `dkms`: DKMS 3's command line over the engine.

#include "kmodsync/engine.hpp"

#include <string>
#include <variant>
#include <vector>

namespace kmodsync::cli::dkms {

// DKMS's exit codes that scripts branch on (dkms(8) and /usr/lib/dkms/common.postinst).
constexpr int k_ok = 0;
constexpr int k_error = 1;           // bad arguments, missing headers
constexpr int k_not_found = 2;       // no source directory; unknown option
constexpr int k_not_in_tree = 3;     // already added (add) / not added (remove, uninstall...)
constexpr int k_banned = 5;          // --all where the action does not take it
constexpr int k_install_failed = 6;
constexpr int k_bad_conf = 8;
constexpr int k_no_dkms_conf = 9;
constexpr int k_build_failed = 10;
constexpr int k_autoinstall_failed = 11;
constexpr int k_kernel_prerm_failed = 14;
constexpr int k_skipped = 77;        // BUILD_EXCLUSIVE: "should not be built" (not an error)

struct KernelArch
{
  std::string kernel;
  std::string arch; // empty: the kernel's own
};

struct Request
{
  std::string action;
  std::string module;
  std::string version;
  std::vector<KernelArch> kernels;
  std::vector<std::string> arches; // -a, paired with kernels as DKMS pairs them
  std::string source_path;         // a directory (or its dkms.conf) named on the command line
  std::string archive;             // --archive or a file named on the command line
  std::string template_kernel;
  std::string kernel_source_dir;
  std::string dkms_tree;
  std::string source_tree;
  std::string install_tree;
  std::string root;                // kmodsync's own --root
  unsigned jobs = 0;
  bool all = false;
  bool force = false;
  bool no_depmod = false;
  bool quiet = false;
  bool verbose = false;
  bool binaries_only = false;
  bool source_only = false;
};

// Parses DKMS's argument forms: options anywhere, `--opt=value` or `--opt value`,
// `-m NAME/VERSION`, `-k KV/ARCH`, a bare NAME/VERSION, a source directory, an archive.
// On a usage error prints it and returns the exit code to use.
std::variant<Request, int> parse_request(const std::vector<std::string>& args);

// The root kmodsync works on: --root, else derived from the tree options, which must all
// name the same ROOT (ROOT/var/lib/dkms, ROOT/usr/src, ROOT/lib/modules), else "/".
Expected<std::string> root_of(const Request& request);

int run_action(const Request& request);

// Entry: `kmodsync dkms ARGS` and argv[0] == "dkms".
int main(const std::vector<std::string>& args);

// Actions (dkms_actions.cpp, dkms_status.cpp, dkms_tarball.cpp).
struct Context
{
  Request request;
  Root root{"/"};
};
int add(const Context& context);
int build_or_install(const Context& context, bool install);
int uninstall(const Context& context, bool keep_build);
int remove(const Context& context);
int autoinstall(const Context& context, const std::string& action);
int kernel_prerm(const Context& context);
int match(const Context& context);
int status(const Context& context);
int make_tarball(const Context& context);
int load_tarball(const Context& context);

} // namespace kmodsync::cli::dkms
