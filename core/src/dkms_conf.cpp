// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/dkms_conf.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <cstring>


namespace kmodsync {

namespace {

// Sources the dkms.conf, then the /etc/dkms overrides, with the conf's own stdout discarded
// and fd 3 closed for it; then writes every known variable to fd 3 as NUL-separated
// (name, index, value) triples and a final END record carrying the source's status.
constexpr const char* k_evaluator = R"BASH(
__kmodsync_conf=$1
shift $#
builtin source "$__kmodsync_conf" >/dev/null 3>&-
__kmodsync_status=$?
for __kmodsync_f in "$kmodsync_overrides/$module.conf" \
    "$kmodsync_overrides/$module-$module_version.conf" \
    "$kmodsync_overrides/$module-$module_version-$kernelver.conf" \
    "$kmodsync_overrides/$module-$module_version-$kernelver-$arch.conf"; do
  [[ -n $kmodsync_overrides && -f $__kmodsync_f ]] && builtin source "$__kmodsync_f" >/dev/null 3>&-
done
# Whatever the dkms.conf did to the shell (IFS, set -eu, set -f) must not bend the read-back.
IFS=$' \t\n'
builtin set +euf
for __kmodsync_n in $kmodsync_names; do
  builtin declare -n __kmodsync_r="$__kmodsync_n"
  for __kmodsync_i in "${!__kmodsync_r[@]}"; do
    builtin printf '%s\0%s\0%s\0' "$__kmodsync_n" "$__kmodsync_i" "${__kmodsync_r[$__kmodsync_i]}" >&3
  done
  builtin unset -n __kmodsync_r
done
builtin printf 'END\0%s\0' "$__kmodsync_status" >&3
)BASH";

const std::string k_empty;

// bash's own verdict that it cannot parse the file: "FILE: line N: syntax error ..." or
// "FILE: line N: unexpected EOF while looking for matching ...". Only lines that name the
// file count, so a program the dkms.conf runs cannot fake it.
std::string bash_parse_error(const std::string& output, const std::string& conf)
{
  for (const auto& line : util::split_lines(output)) {
    if (line.starts_with(conf + ": line ")
        && (line.find("syntax error") != std::string::npos || line.find("unexpected EOF") != std::string::npos)) {
      return std::string(util::trim(line));
    }
  }
  return {};
}

// "FILE: line N: message" from bash's stderr, for the first line that names the file.
std::string bash_complaint(const std::string& output, const std::string& conf)
{
  for (const auto& line : util::split_lines(output)) {
    if (line.find(conf) != std::string::npos && line.find("line ") != std::string::npos) {
      return std::string(util::trim(line));
    }
  }
  for (const auto& line : util::split_lines(output)) {
    if (!util::trim(line).empty()) {
      return std::string(util::trim(line));
    }
  }
  return {};
}

} // namespace

const std::string& DkmsConfValues::get(const std::string& name, unsigned long index) const
{
  const auto it = variables.find(name);
  if (it == variables.end()) {
    return k_empty;
  }
  const auto element = it->second.find(index);
  return element == it->second.end() ? k_empty : element->second;
}

bool DkmsConfValues::has(const std::string& name) const
{
  return variables.contains(name);
}

unsigned long DkmsConfValues::size(const std::string& name) const
{
  const auto it = variables.find(name);
  if (it == variables.end() || it->second.empty()) {
    return 0;
  }
  return it->second.rbegin()->first + 1;
}

const std::vector<std::string>& dkms_conf_variable_names()
{
  static const std::vector<std::string> names = {
    "PACKAGE_NAME", "PACKAGE_VERSION", "MAKE", "MAKE_MATCH", "CLEAN",
    "BUILT_MODULE_NAME", "BUILT_MODULE_LOCATION", "DEST_MODULE_NAME", "DEST_MODULE_LOCATION",
    "STRIP", "AUTOINSTALL", "BUILD_EXCLUSIVE_KERNEL", "BUILD_EXCLUSIVE_KERNEL_MIN",
    "BUILD_EXCLUSIVE_KERNEL_MAX", "BUILD_EXCLUSIVE_ARCH", "BUILD_EXCLUSIVE_CONFIG",
    "BUILD_DEPENDS", "BUILD_DEPENDS_REBUILD", "PATCH", "PATCH_MATCH", "PRE_BUILD", "POST_BUILD",
    "POST_ADD", "PRE_INSTALL", "POST_INSTALL", "POST_REMOVE", "OBSOLETE_BY", "NO_WEAK_MODULES",
    "REMAKE_INITRD", "MODULES_CONF", "MODULES_CONF_OBSOLETES", "MODULES_CONF_ALIAS_TYPE",
    "MODULES_CONF_OBSOLETE_ONLY", "SIGN_FILE", "MOK_SIGNING_KEY", "MOK_CERTIFICATE",
  };
  return names;
}

Expected<DkmsConfValues> evaluate_dkms_conf(const std::filesystem::path& conf,
                                            const DkmsConfContext& context)
{
  std::error_code ec;
  if (!std::filesystem::is_regular_file(conf, ec)) {
    return error("{}: not a regular file", conf.string());
  }
  auto text = util::read_file(conf);
  if (!text) {
    return error("{}: cannot read it: {}", conf.string(), text.error());
  }
  if (const auto at = text->find("\r\n"); at != std::string::npos) {
    const auto line = 1 + std::count(text->begin(), text->begin() + static_cast<std::ptrdiff_t>(at), '\n');
    return error("{}:{}: DOS line endings (CR LF): every value would end in a carriage return; convert the file "
                 "(dos2unix)", conf.string(), line);
  }
  std::string names;
  for (const auto& name : dkms_conf_variable_names()) {
    names += name + " ";
  }
  Command command;
  command.argv = {"bash", "--norc", "--noprofile", "-c", k_evaluator, "dkms", conf.string()};
  command.sandbox = context.sandbox;
  command.env = clean_environment({
    "kernelver=" + context.kernelver,
    "arch=" + context.arch,
    "kernel_source_dir=" + context.kernel_source_dir,
    "dkms_tree=" + context.dkms_tree,
    "source_tree=" + context.source_tree,
    "install_tree=" + context.install_tree,
    "module=" + context.module,
    "module_version=" + context.module_version,
    "kmodsync_overrides=" + context.overrides_dir,
    "kmodsync_names=" + names,
  });
  command.cwd = conf.parent_path();
  command.side_channel = true;
  command.timeout = context.timeout;
  command.capture_limit = 256 * 1024;

  auto completion = run(command);
  if (!completion) {
    return error("{}: {}", conf.string(), completion.error());
  }
  if (completion->timed_out) {
    return error("{}: evaluating it with bash did not finish within {} s",
                 conf.string(), context.timeout.count() / 1000.0);
  }
  if (const auto parse_error = bash_parse_error(completion->output, conf.string()); !parse_error.empty()) {
    return error("bash rejects {}: {}", conf.string(), parse_error);
  }

  DkmsConfValues values;
  const std::string& stream = completion->side_channel;
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (start < stream.size()) {
    const std::size_t end = stream.find('\0', start);
    if (end == std::string::npos) {
      break;
    }
    fields.emplace_back(std::string_view(stream).substr(start, end - start));
    start = end + 1;
  }
  bool finished = false;
  for (std::size_t i = 0; i < fields.size();) {
    if (fields[i] == "END") {
      finished = true;
      break;
    }
    if (i + 3 > fields.size()) {
      break;
    }
    const std::string name(fields[i]);
    const std::string index(fields[i + 1]);
    i += 3;
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos
        || index.size() > 9) {
      return error("{}: {} is not an indexed array (index '{}')", conf.string(), name, index);
    }
    values.variables[name][std::stoul(index)] = std::string(fields[i - 1]);
  }
  if (!finished) {
    const std::string complaint = bash_complaint(completion->output, conf.string());
    return error("{}: sourcing it ended early ({}){}{}",
                 conf.string(),
                 completion->describe(context.timeout),
                 complaint.empty() ? "" : ": ",
                 complaint);
  }
  return values;
}

nlohmann::json values_to_json(const DkmsConfValues& values)
{
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [name, elements] : values.variables) {
    nlohmann::json array = nlohmann::json::object();
    for (const auto& [index, value] : elements) {
      array[std::to_string(index)] = value;
    }
    object[name] = std::move(array);
  }
  return object;
}

std::optional<DkmsConfValues> values_from_json(const nlohmann::json& object)
{
  try {
    DkmsConfValues values;
    for (const auto& [name, elements] : object.items()) {
      for (const auto& [index, value] : elements.items()) {
        values.variables[name][std::stoul(index)] = value.get<std::string>();
      }
    }
    return values;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace kmodsync
