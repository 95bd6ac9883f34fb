// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <shared_mutex>
#include <optional>
#include <string>
#include <vector>

namespace kmodsync {

// What a program written by strangers (a module's Makefile, PRE_BUILD, its dkms.conf) may
// do: run as an unprivileged user, in a mount namespace where everything is read-only but
// `writable`, and in a network namespace of its own (no network) where the kernel allows one.
struct Sandbox
{
  unsigned uid = 65534;
  unsigned gid = 65534;
  std::vector<std::filesystem::path> writable;
  bool private_network = true;
};

// One external program to run. argv is executed directly (no shell); stdin is /dev/null;
// the child gets a session of its own (process group, no controlling terminal) so a timeout
// can kill everything it started and nothing can wait on a terminal.
struct Command
{
  std::vector<std::string> argv;
  // The complete environment of the child ("NAME=value"); nothing is inherited.
  std::vector<std::string> env;
  std::filesystem::path cwd;
  // stdout and stderr go to this descriptor when >= 0 (e.g. a cell's log file); otherwise
  // they are captured together into Completion::output.
  int output_fd = -1;
  // When true, descriptor 3 of the child is a pipe whose content lands in
  // Completion::side_channel: a channel for results that the program's own chatter on
  // stdout cannot be confused with.
  bool side_channel = false;
  // Descriptors handed to the child (e.g. the jobserver pipe): pass_fds[i] becomes the
  // child's descriptor k_first_passed_fd + i. Every other descriptor is closed in the child,
  // whether or not it was opened close-on-exec.
  std::vector<int> pass_fds;
  static constexpr int k_first_passed_fd = 4;
  // Zero means no limit. On expiry the whole process group is killed.
  std::chrono::milliseconds timeout{0};
  // Captured output beyond this is dropped (and Completion::truncated set).
  std::size_t capture_limit = 1 << 20;
  // Confines the program (only when kmodsync runs as root: otherwise it already runs
  // unprivileged). What could not be confined is said on its output (stderr).
  std::optional<Sandbox> sandbox;
};

struct Completion
{
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;      // the signal that ended the child, if any
  bool timed_out = false;
  bool truncated = false;
  std::string output;
  std::string side_channel;

  bool succeeded() const { return signal == 0 && !timed_out && exit_code == 0; }
  // "exit status 2", "killed by signal 9", "timed out after 10 s".
  std::string describe(std::chrono::milliseconds timeout) const;
};

// Runs a command to completion. Fails only when the program could not be started at all
// (the message names it); a program that runs and fails is a Completion.
Expected<Completion> run(const Command& command);

// Held shared while a child is being spawned, exclusively while files that may be executed
// are being written (copy_tree). A child forked by one thread inherits every descriptor
// another thread has open until it execs; were one of them a script being written, running
// that script would fail with "Text file busy".
std::shared_mutex& spawn_mutex();

// A minimal environment for children: PATH and LC_ALL=C (so compiler messages are in
// English and can be quoted in reports), plus `extra`.
std::vector<std::string> clean_environment(const std::vector<std::string>& extra = {});

// Where `name` is found on the PATH of `env` (a name with a `/` is taken as it is): the
// program a command with that environment runs, not the one on kmodsync's own PATH.
std::optional<std::filesystem::path> find_executable(const std::string& name, const std::vector<std::string>& env);

} // namespace kmodsync
