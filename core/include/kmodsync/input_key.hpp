// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"

#include <filesystem>
#include <string>

namespace kmodsync {

// Versions of the tools a build uses; part of every input key.
struct ToolVersions
{
  std::string compiler;  // first line of `gcc --version`
  std::string make;      // first line of `make --version`
};

ToolVersions probe_tool_versions();

// Hash of a source tree: every path, file type, permission bits, file content and
// symlink target, in sorted order.
Expected<std::string> hash_source_tree(const std::filesystem::path& dir);

// A cell's input key: what its result depends on. Same key, same result, so a cell whose
// key matches its record is up to date, and a failure is not retried.
// `install_fingerprint` covers how modules are finished (signer, compression, location).
std::string compute_input_key(const std::string& source_hash,
                              const ModuleSpec& spec,
                              const Kernel& kernel,
                              const ToolVersions& tools,
                              const std::string& install_fingerprint);

// The evaluated spec as canonical JSON text (for keys and reports).
std::string spec_to_json(const ModuleSpec& spec);

} // namespace kmodsync
