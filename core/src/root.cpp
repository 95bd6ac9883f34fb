// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/root.hpp"

namespace kmodsync {

namespace fs = std::filesystem;

Root::Root(fs::path dir) : m_dir(dir.empty() ? fs::path("/") : fs::path(dir).lexically_normal())
{
  // "/tmp/r/" and "/tmp/r" are the same root.
  if (m_dir != "/" && !m_dir.has_filename()) {
    m_dir = m_dir.parent_path();
  }
}

fs::path Root::operator()(std::string_view absolute) const
{
  fs::path relative(absolute);
  if (relative.is_absolute()) {
    relative = relative.relative_path();
  }
  return is_host() ? fs::path("/") / relative : m_dir / relative;
}

std::string Root::managed(const fs::path& path) const
{
  if (is_host()) {
    return path.string();
  }
  const fs::path relative = path.lexically_normal().lexically_relative(m_dir);
  return relative.empty() || relative == "." ? std::string("/") : "/" + relative.string();
}

std::optional<fs::path> Root::resolve_link(const fs::path& link) const
{
  std::error_code ec;
  if (!fs::is_symlink(link, ec)) {
    if (fs::is_directory(link, ec)) {
      return link;
    }
    return std::nullopt;
  }
  const fs::path target = fs::read_symlink(link, ec);
  if (ec) {
    return std::nullopt;
  }
  const fs::path inside =
    target.is_absolute() ? (*this)(target.string()) : (link.parent_path() / target).lexically_normal();
  if (fs::is_directory(inside, ec)) {
    return inside;
  }
  if (target.is_absolute() && !is_host() && fs::is_directory(target, ec)) {
    return target;
  }
  return std::nullopt;
}

} // namespace kmodsync
