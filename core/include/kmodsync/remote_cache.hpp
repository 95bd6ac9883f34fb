// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// A fleet's shared store of build results: one object per build key under a base URL,
// fetched with GET and stored with PUT — the plain key-value protocol that ccache's http
// storage, a WebDAV-enabled nginx or Apache and most object stores serve. What comes back
// is not trusted: the build cache verifies an object before anything uses it.

#include "kmodsync/expected.hpp"

#include <optional>
#include <string>

namespace kmodsync {

struct RemoteCacheSettings
{
  std::string url;              // http(s)://host[:port]/prefix; may carry user:password@
  bool read_only = false;
  std::string layout = "flat";  // flat: URL/KEY; subdirs: URL/KEY[0:2]/KEY[2:]
  unsigned timeout_seconds = 30;
};

class RemoteCache
{
public:
  explicit RemoteCache(RemoteCacheSettings settings);

  bool enabled() const { return !m_settings.url.empty(); }
  bool writable() const { return enabled() && !m_settings.read_only; }
  // The URL without credentials, for messages.
  std::string shown_url() const;

  // The object stored under `key`; nullopt when the store has none (404). An error for
  // anything else (unreachable, refused, a server error).
  Expected<std::optional<std::string>> get(const std::string& key) const;
  Expected<void> put(const std::string& key, const std::string& object) const;

private:
  std::string object_url(const std::string& key) const;

  RemoteCacheSettings m_settings;
};

} // namespace kmodsync
