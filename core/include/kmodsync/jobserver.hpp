// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <string>
#include <vector>

namespace kmodsync {

// A GNU make jobserver owned by kmodsync: a pipe holding one token per job slot. Every
// cell takes a token before it starts (its make's implicit slot) and gives it back when
// done; every `make` it runs reads further tokens from the same pipe through MAKEFLAGS.
// So all concurrent builds together never run more than `slots` jobs, and a lone build can
// use every slot.
class Jobserver
{
public:
  // --- Interface ---
  static Expected<Jobserver> create(unsigned slots);
  Jobserver(Jobserver&& other) noexcept;
  Jobserver& operator=(Jobserver&&) = delete;
  ~Jobserver();

  unsigned slots() const { return m_slots; }
  // Blocks until a token is free and takes it.
  Expected<void> acquire() const;
  void release() const;
  // What a child needs to join: these descriptors as its Command::pass_fds, and
  // MAKEFLAGS ("-jN --jobserver-auth=R,W", the form make 4.3 reads) naming them by the
  // numbers the child receives them under.
  std::vector<int> pass_fds() const { return {m_read, m_write}; }
  std::string makeflags() const;
  int read_fd() const { return m_read; }
  int write_fd() const { return m_write; }

private:
  Jobserver(unsigned slots, int read_fd, int write_fd);
  unsigned m_slots;
  int m_read;
  int m_write;
};

} // namespace kmodsync
