// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/trigger.hpp"

#include "fixtures/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace kmodsync;

namespace {

std::vector<std::string> args(const TransactionChanges& changes)
{
  auto arguments = sync_arguments(changes);
  REQUIRE(arguments.has_value());
  return *arguments;
}

} // namespace

TEST_SUITE("trigger")
{
TEST_CASE("kernel images, module trees, build links and headers name their kernel")
{
  TransactionChanges changes;
  CHECK(note_path(changes, "/usr/lib/modules/6.1.0-55-amd64/vmlinuz", PathChange::added));
  CHECK(note_path(changes, "lib/modules/6.12.1/kernel/fs/ext4.ko.xz", PathChange::added));
  CHECK(note_path(changes, "/usr/src/kernels/6.13.0-1.fc42.x86_64/Makefile", PathChange::added));
  CHECK(note_path(changes, "/usr/lib/modules/6.1.0-56-amd64/build", PathChange::removed));
  // Debian's headers directories do not name a kernel (-common ones hold none).
  CHECK_FALSE(note_path(changes, "/usr/src/linux-headers-6.12.107+deb12-common/Makefile", PathChange::added));
  CHECK(changes.kernels_added == std::set<std::string>{"6.1.0-55-amd64", "6.12.1", "6.13.0-1.fc42.x86_64"});
  CHECK(changes.kernels_removed == std::set<std::string>{"6.1.0-56-amd64"});
  CHECK(changes.modules.empty());
}

TEST_CASE("a dkms.conf at the top of a /usr/src directory names its module; other files do not matter")
{
  TransactionChanges changes;
  CHECK(note_path(changes, "/usr/src/lime-forensics-1.9.1-5/dkms.conf", PathChange::added));
  CHECK_FALSE(note_path(changes, "/usr/src/lime-forensics-1.9.1-5/src/main.c", PathChange::added));
  CHECK_FALSE(note_path(changes, "/usr/src/x-1/sub/dkms.conf", PathChange::added));
  CHECK_FALSE(note_path(changes, "/usr/share/doc/x/README", PathChange::added));
  CHECK_FALSE(note_path(changes, "/usr/lib/modules/6.1.0-55-amd64/updates/dkms/acpi_call.ko", PathChange::added));
  CHECK_FALSE(note_path(changes, "/usr/lib/modules/../etc/passwd", PathChange::added));
  CHECK(changes.modules == std::set<std::string>{"lime-forensics"});
  CHECK(changes.kernels_added.empty());
}

TEST_CASE("added kernels the root does not have are forgotten")
{
  kmodsync::testing::TempDir root;
  std::filesystem::create_directories(root.path() / "usr/lib/modules/6.1.0-55-amd64");
  std::filesystem::create_directories(root.path() / "lib/modules/6.12.1");
  TransactionChanges changes;
  changes.kernels_added = {"6.1.0-55-amd64", "6.12.1", "6.13.0-1.fc42.x86_64"};
  forget_absent_kernels(changes, Root(root.path()));
  CHECK(changes.kernels_added == std::set<std::string>{"6.1.0-55-amd64", "6.12.1"});
}

TEST_CASE("one pass: narrowed to added kernels or to touched modules, full when both or a kernel went")
{
  CHECK_FALSE(sync_arguments(TransactionChanges{}).has_value());

  TransactionChanges kernels;
  kernels.kernels_added = {"6.1.0-55-amd64", "6.12.1"};
  CHECK(args(kernels) == std::vector<std::string>{"--kernel", "6.1.0-55-amd64", "--kernel", "6.12.1"});

  TransactionChanges modules;
  modules.modules = {"acpi-call", "vpoll"};
  CHECK(args(modules) == std::vector<std::string>{"--module", "acpi-call", "--module", "vpoll"});

  TransactionChanges both = kernels;
  both.modules = {"vpoll"};
  CHECK(args(both).empty());

  TransactionChanges removed;
  removed.kernels_removed = {"6.1.0-54-amd64"};
  removed.modules = {"vpoll"};
  CHECK(args(removed).empty());
}

TEST_CASE("a path component with a NUL names no kernel or module (fuzz_pacman_targets)")
{
  using namespace std::string_view_literals;
  TransactionChanges changes;
  CHECK_FALSE(note_path(changes, "usr/lib/modules/\0\0\0/vmlinuz"sv, PathChange::added));
  CHECK_FALSE(note_path(changes, "usr/src/a\0b-1.0/dkms.conf"sv, PathChange::added));
  CHECK(changes.empty());
}
}
