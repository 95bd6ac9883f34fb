// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// What the dkms command reads of kmodsync's state, in DKMS's terms.

#include "kmodsync/root.hpp"
#include "kmodsync/state.hpp"

#include <string>
#include <variant>
#include <vector>

namespace kmodsync::cli::dkms {

// The recorded state, with a DKMS tree not imported yet taken in (in memory only: the next
// command that writes imports it for good). No lock: state.json is replaced atomically.
Expected<State> load_dkms_view(const Root& root);

// The view, when the request's NAME/VERSION is added; else DKMS's error is printed and its
// exit code returned (3 "not located in the DKMS tree", 1 for an unreadable state).
std::variant<State, int> load_added(const struct Context& context);

// "Added" as DKMS says it: added with `dkms add` (or in DKMS's tree), or built by a pass,
// and not removed since.
bool is_added(const State& state, const std::string& module, const std::string& version);
bool has_module(const State& state, const std::string& module);
// Every added NAME/VERSION.
std::vector<std::string> added_modules(const State& state);
// Whether any kernel still has the module built or installed.
bool has_built_cells(const State& state, const std::string& module, const std::string& version);
std::vector<std::string> kernels_with_cells(const State& state, const std::string& module, const std::string& version);

std::string running_kernel();
std::string machine_arch();

// A path given on the command line, as the managed system names it.
std::string managed_path(const Root& root, const std::string& path);

} // namespace kmodsync::cli::dkms
