// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/jobserver.hpp"

#include "kmodsync/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kmodsync {

Expected<Jobserver> Jobserver::create(unsigned slots)
{
  if (slots == 0) {
    slots = 1;
  }
  int fds[2];
  // Close-on-exec by default; the spawner passes the pair only to the builds.
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return error("cannot create the jobserver pipe: {}", std::strerror(errno));
  }
  // make 4.3 switches the read end to non-blocking itself; we poll before reading anyway.
  const std::string tokens(slots, '+');
  if (::write(fds[1], tokens.data(), tokens.size()) != static_cast<ssize_t>(tokens.size())) {
    const int saved = errno;
    close(fds[0]);
    close(fds[1]);
    return error("cannot fill the jobserver pipe: {}", std::strerror(saved));
  }
  return Jobserver(slots, fds[0], fds[1]);
}

Jobserver::Jobserver(unsigned slots, int read_fd, int write_fd)
  : m_slots(slots), m_read(read_fd), m_write(write_fd)
{
}

Jobserver::Jobserver(Jobserver&& other) noexcept
  : m_slots(other.m_slots), m_read(other.m_read), m_write(other.m_write)
{
  other.m_read = -1;
  other.m_write = -1;
}

Jobserver::~Jobserver()
{
  if (m_read >= 0) {
    close(m_read);
  }
  if (m_write >= 0) {
    close(m_write);
  }
}

Expected<void> Jobserver::acquire() const
{
  while (true) {
    pollfd fd{m_read, POLLIN, 0};
    const int ready = poll(&fd, 1, -1);
    if (ready < 0 && errno != EINTR) {
      return error("jobserver: poll failed: {}", std::strerror(errno));
    }
    if (ready <= 0) {
      continue;
    }
    // Another reader (a child make) may win the race for the byte: then poll again.
    const int flags = fcntl(m_read, F_GETFL);
    fcntl(m_read, F_SETFL, flags | O_NONBLOCK);
    char token = 0;
    const ssize_t n = ::read(m_read, &token, 1);
    if (n == 1) {
      return {};
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return error("jobserver: read failed: {}", std::strerror(errno));
    }
  }
}

void Jobserver::release() const
{
  const char token = '+';
  while (::write(m_write, &token, 1) < 0 && errno == EINTR) {
  }
}

std::string Jobserver::makeflags() const
{
  const int child_read = Command::k_first_passed_fd;
  return "-j" + std::to_string(m_slots) + " --jobserver-auth=" + std::to_string(child_read) + ","
         + std::to_string(child_read + 1);
}

} // namespace kmodsync
