// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// The fork/exec path of `run` for sandboxed commands: posix_spawn cannot enter namespaces
// or change credentials, so the child does it between fork and exec, using only system
// calls (the parent is multithreaded: nothing that allocates or locks may run there).

#include "kmodsync/expected.hpp"
#include "kmodsync/process.hpp"

#include <sys/types.h>

#include <vector>

namespace kmodsync::detail {

struct ChildFds
{
  int stdin_fd = -1;  // /dev/null
  int out_fd = -1;    // becomes 1 and 2
  int side_fd = -1;   // becomes 3 when >= 0
  std::vector<int> passed; // become Command::k_first_passed_fd + i
};

// Starts `program` confined by `sandbox`; returns once it has exec'd (or failed to).
Expected<pid_t> spawn_sandboxed(const char* program, char* const* argv, char* const* envp, const char* cwd,
                                const ChildFds& fds, const Sandbox& sandbox);

} // namespace kmodsync::detail
