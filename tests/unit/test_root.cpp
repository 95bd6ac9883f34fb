// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/root.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace fs = std::filesystem;
using kmodsync::Root;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

TEST_SUITE_BEGIN("root");

TEST_CASE("Root maps absolute paths of the managed system under its directory")
{
  const Root root("/tmp/r");
  CHECK(root.dir() == "/tmp/r");
  CHECK_FALSE(root.is_host());
  CHECK(root("/usr/src") == "/tmp/r/usr/src");
  CHECK(root("/usr/lib/modules/6.1.0-55-amd64/build") == "/tmp/r/usr/lib/modules/6.1.0-55-amd64/build");
  CHECK(root("usr/src") == "/tmp/r/usr/src");
}

TEST_CASE("Root: a trailing slash, dot-dots and an empty path are normalised")
{
  CHECK(Root("/tmp/r/").dir() == "/tmp/r");
  CHECK(Root("/tmp/r/")("/etc/dkms") == "/tmp/r/etc/dkms");
  CHECK(Root("/tmp/x/../r").dir() == "/tmp/r");
  CHECK(Root("/tmp//r").dir() == "/tmp/r");
  CHECK(Root("").dir() == "/");
  CHECK(Root("").is_host());
}

TEST_CASE("the host root maps paths to themselves")
{
  const Root host("/");
  CHECK(host.is_host());
  CHECK(host("/usr/src") == "/usr/src");
  CHECK(host("usr/src") == "/usr/src");
  CHECK(host.managed("/usr/lib/modules") == "/usr/lib/modules");
}

TEST_CASE("managed() is the inverse of operator()")
{
  const Root root("/tmp/r");
  CHECK(root.managed("/tmp/r/usr/src/v4l2loopback-0.12.7") == "/usr/src/v4l2loopback-0.12.7");
  for (const char* path : {"/usr/src", "/var/lib/kmodsync/state.json", "/usr/lib/modules/6.12.107+deb12-amd64"}) {
    INFO(path);
    CHECK(root.managed(root(path)) == path);
    CHECK(Root("/").managed(Root("/")(path)) == path);
  }
}

// lexically_relative gives "." for the root itself: managed() once answered "/.".
TEST_CASE("managed() of the root directory itself is \"/\"")
{
  const Root root("/tmp/r");
  CHECK(root.managed("/tmp/r") == "/");
  CHECK(root.managed(root("/")) == "/");
}

TEST_CASE("resolve_link: an absolute link is looked up inside the root first")
{
  const TempDir root_dir;
  const TempDir host_dir;
  // The same absolute path exists inside the root and (as host_dir) on the host.
  const fs::path inside = root_dir / host_dir.path().relative_path();
  fs::create_directories(inside);
  fs::create_symlink(host_dir.path(), root_dir / "build");
  const Root root(root_dir.path());
  CHECK(root.resolve_link(root_dir / "build") == std::optional<fs::path>(inside));
}

TEST_CASE("resolve_link falls back to the host's path when the root lacks the target")
{
  const TempDir root_dir;
  const TempDir host_dir;
  fs::create_directories(host_dir / "linux-headers");
  fs::create_symlink(host_dir / "linux-headers", root_dir / "build");
  const Root root(root_dir.path());
  CHECK(root.resolve_link(root_dir / "build") == std::optional<fs::path>(host_dir / "linux-headers"));
}

TEST_CASE("resolve_link is nullopt when the target exists neither in the root nor on the host")
{
  const TempDir root_dir;
  fs::create_symlink(root_dir / "nowhere/at/all", root_dir / "build");
  fs::create_symlink("/kmodsync-unittest-no-such-directory", root_dir / "build2");
  fs::create_symlink("relative-missing", root_dir / "build3");
  const Root root(root_dir.path());
  CHECK(root.resolve_link(root_dir / "build") == std::nullopt);
  CHECK(root.resolve_link(root_dir / "build2") == std::nullopt);
  CHECK(root.resolve_link(root_dir / "build3") == std::nullopt);
  CHECK(root.resolve_link(root_dir / "no-link-here") == std::nullopt);
}

TEST_CASE("resolve_link: a relative link is taken from the link's directory")
{
  const TempDir root_dir;
  fs::create_directories(root_dir / "usr/src/linux-headers-6.1.0-55-amd64");
  fs::create_directories(root_dir / "usr/lib/modules/6.1.0-55-amd64");
  const fs::path link = root_dir / "usr/lib/modules/6.1.0-55-amd64/build";
  fs::create_symlink("../../../src/linux-headers-6.1.0-55-amd64", link);
  const Root root(root_dir.path());
  CHECK(root.resolve_link(link) == std::optional<fs::path>(root_dir / "usr/src/linux-headers-6.1.0-55-amd64"));
}

TEST_CASE("resolve_link: a real directory is its own target, a plain file is none")
{
  const TempDir root_dir;
  fs::create_directories(root_dir / "build");
  write_text(root_dir / "file", "x");
  const Root root(root_dir.path());
  CHECK(root.resolve_link(root_dir / "build") == std::optional<fs::path>(root_dir / "build"));
  CHECK(root.resolve_link(root_dir / "file") == std::nullopt);
}

TEST_CASE("resolve_link on the host root follows an absolute link as it is")
{
  const TempDir dir;
  fs::create_directories(dir / "target");
  fs::create_symlink(dir / "target", dir / "link");
  CHECK(Root("/").resolve_link(dir / "link") == std::optional<fs::path>(dir / "target"));
}

TEST_SUITE_END();
