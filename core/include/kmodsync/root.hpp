// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace kmodsync {

// The directory the whole engine works under (`--root`, default "/"). Every path the engine
// writes is inside it; package managers' `--root` transactions and tests rely on that.
class Root
{
public:
  // --- Interface ---
  explicit Root(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return m_dir; }
  bool is_host() const { return m_dir == "/"; }
  // Maps an absolute path of the managed system ("/usr/src") to where it is here.
  std::filesystem::path operator()(std::string_view absolute) const;
  // The inverse: how the managed system names a path that is inside the root.
  std::string managed(const std::filesystem::path& path) const;
  // Follows a symlink the way the managed system would see it: an absolute target is
  // looked up inside the root first. When it is missing there, the host's path is used,
  // which lets a test root point its `build` links at headers installed on the host (they
  // are only read, never written). Returns nullopt when neither exists.
  std::optional<std::filesystem::path> resolve_link(const std::filesystem::path& link) const;

private:
  std::filesystem::path m_dir;
};

} // namespace kmodsync
