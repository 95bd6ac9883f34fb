// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kmodsync {

// Versions of the tools a build uses; part of every input key.
struct ToolVersions
{
  std::string compiler;  // first line of `gcc --version`
  std::string make;      // first line of `make --version`
};

class Memo;

// Runs `gcc --version` and `make --version`, unless `memo` knows these very binaries.
ToolVersions probe_tool_versions(Memo& memo);

// Hash of a source tree: every path, file type, permission bits, file content and
// symlink target, in sorted order.
Expected<std::string> hash_source_tree(const std::filesystem::path& dir, Memo& memo);

// Paths that differ between machines (or roots) without changing what a build makes: the
// root's prefix, the cell's build directory, where the headers are. The key sees each as
// a placeholder, so identical headers give one key wherever they are installed, and one
// machine's build serves another's (the remote cache).
struct PathAliases
{
  std::vector<std::pair<std::string, std::string>> replacements; // (host path, placeholder)

  void add(const std::filesystem::path& path, const std::string& placeholder);
  std::string apply(std::string text) const;
};

// A build key: what a build's result depends on (source tree, evaluated spec, the headers'
// content, compiler and make). The build cache and the remote cache are addressed by it.
std::string compute_build_key(const std::string& source_hash,
                              const ModuleSpec& spec,
                              const Kernel& kernel,
                              const ToolVersions& tools,
                              const PathAliases& aliases);

// A cell's input key: its build key plus how the modules are finished
// (`install_fingerprint`: signer, compression, location). Same key, same installed result,
// so a cell whose key matches its record is up to date, and a failure is not retried.
std::string compute_input_key(const std::string& build_key, const std::string& install_fingerprint);

// The evaluated spec as canonical JSON text (for keys and reports).
std::string spec_to_json(const ModuleSpec& spec);

} // namespace kmodsync
