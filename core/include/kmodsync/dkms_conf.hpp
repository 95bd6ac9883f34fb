// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"
#include "kmodsync/process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kmodsync {

// What a dkms.conf sees when it is sourced: the variables DKMS sets before reading it.
struct DkmsConfContext
{
  std::string kernelver;
  std::string arch;
  std::string kernel_source_dir;
  std::string dkms_tree;
  std::string source_tree;
  std::string install_tree;
  std::string module;          // DKMS's $module, known from the directory name
  std::string module_version;
  // Directory of per-module overrides (/etc/dkms inside the root): NAME.conf,
  // NAME-VERSION.conf, NAME-VERSION-KV.conf and NAME-VERSION-KV-ARCH.conf are sourced
  // after the dkms.conf, as DKMS does.
  std::string overrides_dir;
  std::chrono::milliseconds timeout{10000};
  // Confines bash while it sources the file (it is a stranger's shell script).
  std::optional<Sandbox> sandbox;
};

// Every variable the dkms.conf left set among those DKMS reads, as arrays (a scalar is
// index 0, as in bash).
struct DkmsConfValues
{
  std::map<std::string, std::map<unsigned long, std::string>> variables;

  // Element `index` of `name`, or "" when unset.
  const std::string& get(const std::string& name, unsigned long index = 0) const;
  bool has(const std::string& name) const;
  // One past the highest index set (bash's ${#A[@]} for dense arrays).
  unsigned long size(const std::string& name) const;
};

// Values as JSON, {"NAME": {"INDEX": "value"}}: for keys, reports and the memo.
nlohmann::json values_to_json(const DkmsConfValues& values);
// The inverse; nullopt when `object` is not of that shape.
std::optional<DkmsConfValues> values_from_json(const nlohmann::json& object);

// The dkms.conf variables DKMS reads, directives and deprecated ones alike.
const std::vector<std::string>& dkms_conf_variable_names();

// Sources `conf` with bash, as DKMS does: a clean environment holding only the context's
// variables, stdin closed, its own output discarded, killed after the time limit. The
// values are read back NUL-separated over a side channel, so no value (newlines, quotes,
// `=`) can be misread. Fails with a message naming the file, and the line when bash gives
// one, when bash rejects the file, the file exits early, or time runs out.
Expected<DkmsConfValues> evaluate_dkms_conf(const std::filesystem::path& conf,
                                            const DkmsConfContext& context);

} // namespace kmodsync
