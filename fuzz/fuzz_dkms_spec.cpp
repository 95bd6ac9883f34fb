// SPDX-License-Identifier: GPL-2.0-or-later
// make_module_spec: the values a dkms.conf left set, as evaluate_dkms_conf reads them back
// from bash (NUL-separated name, index, value triples; an index has at most 9 digits).
#include "fuzz_support.hpp"

#include "kmodsync/dkms_spec.hpp"

#include <vector>

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view stream = fuzz::as_text(data, size);
  std::vector<std::string_view> fields;
  for (std::size_t start = 0; start < stream.size();) {
    const auto end = stream.find('\0', start);
    fields.push_back(stream.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  DkmsConfValues values;
  for (std::size_t i = 0; i + 3 <= fields.size(); i += 3) {
    const std::string index(fields[i + 1]);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 9) {
      continue;
    }
    values.variables[std::string(fields[i])][std::stoul(index)] = std::string(fields[i + 2]);
  }
  DkmsConfContext context;
  context.kernelver = "6.1.0-55-amd64";
  context.arch = "x86_64";
  context.kernel_source_dir = "/usr/lib/modules/6.1.0-55-amd64/build";
  context.dkms_tree = "/var/lib/dkms";
  context.module = "fuzz";
  context.module_version = "1.0";
  const std::map<std::string, std::string> kernel_config = {{"CONFIG_CC_IS_CLANG", "y"}};
  auto spec = make_module_spec(values, "/usr/src/fuzz-1.0/dkms.conf", context, kernel_config);
  if (!spec) {
    fuzz::require(spec.error().starts_with("/usr/src/fuzz-1.0/dkms.conf: "), spec.error());
    return 0;
  }
  for (const auto& module : spec->modules) {
    fuzz::require(!module.built_name.empty() && module.built_name.find('/') == std::string::npos
                    && module.dest_name.find('/') == std::string::npos,
                  "a module name that is not a plain file name was accepted");
  }
  return 0;
}
