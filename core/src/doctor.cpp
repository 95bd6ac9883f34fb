// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/doctor.hpp"

#include "kmodsync/config.hpp"
#include "kmodsync/file_util.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/signing.hpp"
#include "kmodsync/state.hpp"
#include "kmodsync/string_util.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

bool distribution_is(const std::string& distribution, std::initializer_list<const char*> ids)
{
  const auto words = util::split_words(distribution);
  return std::any_of(words.begin(), words.end(), [&](const std::string& word) {
    return std::find_if(ids.begin(), ids.end(), [&](const char* id) { return word == id; }) != ids.end();
  });
}

std::string install_command(const std::string& distribution, const std::string& package)
{
  if (distribution_is(distribution, {"debian", "ubuntu"})) {
    return "apt-get install " + package;
  }
  if (distribution_is(distribution, {"fedora", "rhel", "centos"})) {
    return "dnf install " + package;
  }
  if (distribution_is(distribution, {"arch"})) {
    return "pacman -S " + package;
  }
  return "install " + package;
}

// /sys says so on the host; a root other than / has no firmware of its own.
bool secure_boot_enabled(const Root& root)
{
  if (!root.is_host()) {
    return false;
  }
  auto variable = util::read_file("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c3d5e4e5b");
  return variable && variable->size() >= 5 && (*variable)[4] == 1;
}

void check_make(const Root& root, std::vector<Finding>& findings)
{
  const auto env = clean_environment();
  const std::string distribution = detect_distribution(root);
  if (!find_executable("make", env)) {
    findings.push_back({Severity::problem, "make", "make is not installed: nothing can be built",
                        install_command(distribution, "make")});
  } else {
    findings.push_back({Severity::ok, "make", "make is installed", ""});
  }
}

// Which key the next pass signs with, and whether it can read it.
struct KeyStatus
{
  std::string key;
  std::string problem;
};

KeyStatus signing_key_status(const Root& root, const Config& config)
{
  const SigningPair pair = signing_pair(root, config);
  KeyStatus status;
  status.key = pair.key;
  if (!status.key.empty()) {
    if (auto loaded = SigningKey::load(root(status.key), root(pair.certificate)); !loaded) {
      status.problem = loaded.error();
    }
  }
  return status;
}

void check_compiler(const Kernel& kernel, std::vector<Finding>& findings, const std::string& distribution)
{
  const auto version_text = kernel.config.find("CONFIG_CC_VERSION_TEXT");
  if (!version_text) {
    return;
  }
  std::string built_with(*version_text);
  if (built_with.size() >= 2 && built_with.front() == '"' && built_with.back() == '"') {
    built_with = built_with.substr(1, built_with.size() - 2);
  }
  const auto words = util::split_words(built_with);
  if (words.empty()) {
    return;
  }
  const std::string program = words.front(); // "gcc-12": what kbuild's CC was
  const auto env = clean_environment();
  const auto found = find_executable(program, env);
  if (!found) {
    const std::string package = program.starts_with("gcc") ? program : std::string("gcc");
    findings.push_back({Severity::problem, "compiler",
                        fmt::format("the kernel was built with \"{}\" and {} is not installed", built_with, program),
                        install_command(distribution, package)});
    return;
  }
  Command version;
  version.argv = {found->string(), "--version"};
  version.env = env;
  version.timeout = std::chrono::seconds(10);
  auto ran = run(version);
  std::string first_line;
  if (ran && ran->succeeded()) {
    if (const auto lines = util::split_lines(ran->output); !lines.empty()) {
      first_line = util::trim(lines.front());
    }
  }
  if (first_line == built_with) {
    findings.push_back({Severity::ok, "compiler", fmt::format("{}, as the kernel was built with", first_line), ""});
  } else {
    findings.push_back({Severity::warning, "compiler",
                        fmt::format("{} is \"{}\"; the kernel was built with \"{}\" (modules usually build and "
                                    "load, but kbuild may warn or reject options)",
                                    program, first_line.empty() ? "unknown" : first_line, built_with),
                        ""});
  }
}

void check_signing(const Root& root, const Kernel& kernel, const KeyStatus& key, bool secure_boot,
                   std::vector<Finding>& findings)
{
  const bool signs = kernel.config_enabled("CONFIG_MODULE_SIG");
  const bool forced = kernel.config.find("CONFIG_MODULE_SIG_FORCE") == "y";
  if (!key.problem.empty()) {
    findings.push_back({Severity::problem, "signing", key.problem, "chmod 600 the key, or kmodsync keygen"});
    return;
  }
  if (!signs) {
    findings.push_back({Severity::ok, "signing", "the kernel does not check module signatures", ""});
    return;
  }
  if (!key.key.empty()) {
    findings.push_back({Severity::ok, "signing", fmt::format("modules are signed with {}", root(key.key).string()),
                        secure_boot ? "the certificate must be enrolled: mokutil --import CERTIFICATE" : ""});
    return;
  }
  if (forced) {
    findings.push_back({Severity::note, "signing",
                        "the kernel loads only signed modules (CONFIG_MODULE_SIG_FORCE) and there is no key: the "
                        "next pass generates one",
                        "kmodsync keygen; then mokutil --import the certificate"});
  } else if (secure_boot) {
    findings.push_back({Severity::problem, "signing",
                        "Secure Boot is on and there is no signing key: the kernel will refuse unsigned modules",
                        "kmodsync keygen; then mokutil --import the certificate"});
  } else {
    findings.push_back({Severity::warning, "signing",
                        "no signing key: modules load unsigned and taint the kernel", "kmodsync keygen"});
  }
}

} // namespace

const char* to_string(Severity severity)
{
  switch (severity) {
  case Severity::ok:
    return "ok";
  case Severity::note:
    return "note";
  case Severity::warning:
    return "warning";
  case Severity::problem:
    return "problem";
  }
  return "?";
}

bool Diagnosis::any_problem() const
{
  const auto bad = [](const Finding& finding) { return finding.severity == Severity::problem; };
  return std::any_of(general.begin(), general.end(), bad)
         || std::any_of(kernels.begin(), kernels.end(), [&](const KernelDiagnosis& kernel) {
              return std::any_of(kernel.findings.begin(), kernel.findings.end(), bad)
                     || std::any_of(kernel.cells.begin(), kernel.cells.end(),
                                    [](const CellReport& cell) { return cell.status == CellStatus::failed; });
            });
}

std::string headers_package(const Root& root, const std::string& kernel_release)
{
  const std::string distribution = detect_distribution(root);
  if (distribution_is(distribution, {"fedora", "rhel", "centos"})) {
    return "kernel-devel-" + kernel_release;
  }
  if (distribution_is(distribution, {"arch"})) {
    // Arch's kernel packages name themselves in pkgbase (linux, linux-lts, linux-zen...).
    for (const auto& dir : {root("/usr/lib/modules/" + kernel_release), root("/lib/modules/" + kernel_release)}) {
      if (auto base = util::read_file(dir / "pkgbase")) {
        return std::string(util::trim(*base)) + "-headers";
      }
    }
    return "linux-headers";
  }
  if (distribution_is(distribution, {"opensuse", "suse", "sles"})) {
    return "kernel-devel";
  }
  return "linux-headers-" + kernel_release;
}

Diagnosis diagnose(const Root& root, const std::vector<std::string>& only)
{
  Diagnosis diagnosis;
  const std::string distribution = detect_distribution(root);
  auto config = Config::load(root);
  if (!config) {
    diagnosis.general.push_back({Severity::problem, "config", config.error(), ""});
  }
  if (auto state = State::load(StatePaths(root).state_file); !state) {
    diagnosis.general.push_back({Severity::problem, "state", state.error(), ""});
  }
  check_make(root, diagnosis.general);
  const bool secure_boot = secure_boot_enabled(root);
  if (secure_boot) {
    diagnosis.general.push_back({Severity::note, "secure boot", "Secure Boot is on: modules must be signed by an "
                                                                "enrolled key", ""});
  }
  const KeyStatus key = config ? signing_key_status(root, *config) : KeyStatus{};

  auto kernels = discover_kernels(root);
  if (!kernels) {
    diagnosis.general.push_back({Severity::problem, "kernels", kernels.error(), ""});
    return diagnosis;
  }
  for (const auto& release : only) {
    if (std::none_of(kernels->begin(), kernels->end(), [&](const Kernel& k) { return k.release == release; })) {
      diagnosis.general.push_back({Severity::problem, "kernels",
                                   fmt::format("no kernel {} in {}", release, root("/usr/lib/modules").string()), ""});
    }
  }
  if (kernels->empty()) {
    diagnosis.general.push_back({Severity::note, "kernels", fmt::format("no kernel in {}", root("/usr/lib/modules").string()), ""});
  }

  // The next pass as it would go, without building or writing anything.
  PassOptions options;
  options.root = root;
  options.kernels = only;
  options.dry_run = true;
  Reporter silent;
  auto plan = run_pass(options, silent);
  if (!plan) {
    diagnosis.general.push_back({Severity::problem, "pass", plan.error(), ""});
  }

  for (const auto& kernel : *kernels) {
    if (!only.empty() && std::find(only.begin(), only.end(), kernel.release) == only.end()) {
      continue;
    }
    KernelDiagnosis entry;
    entry.release = kernel.release;
    if (!kernel.buildable()) {
      entry.findings.push_back({Severity::problem, "headers", kernel.missing_headers_reason,
                                install_command(distribution, headers_package(root, kernel.release))});
    } else {
      entry.findings.push_back({Severity::ok, "headers", kernel.headers_dir->string(), ""});
      check_compiler(kernel, entry.findings, distribution);
      check_signing(root, kernel, key, secure_boot, entry.findings);
    }
    if (plan) {
      for (const auto& cell : plan->cells) {
        if (cell.kernel == kernel.release) {
          entry.cells.push_back(cell);
        }
      }
    }
    diagnosis.kernels.push_back(std::move(entry));
  }
  return diagnosis;
}

} // namespace kmodsync
