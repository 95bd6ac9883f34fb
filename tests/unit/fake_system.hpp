// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// A throwaway root with fake kbuild trees and module sources whose "build" compiles a tiny
// ELF object carrying a real .modinfo (vermagic, name), so libkmod, strip and depmod
// treat it like a module. Fast enough for unit tests; the real headers are exercised by
// tests/integration.

#include "fixtures/temp_dir.hpp"

#include <filesystem>
#include <string>

namespace kmodsync::test {

class FakeSystem
{
public:
  FakeSystem();
  FakeSystem(const FakeSystem&) = delete;
  FakeSystem& operator=(const FakeSystem&) = delete;

  const std::filesystem::path& root() const { return m_root; }
  // Outside the root: where fake builds leave traces for the test to read.
  const std::filesystem::path& traces() const { return m_traces; }

  // A kernel with a fake kbuild tree inside the root (`build` -> /usr/src/fake-headers-KV).
  void add_kernel(const std::string& release, const std::string& config = "CONFIG_FOO=y\n");
  // A kernel directory whose `build` link points nowhere.
  void add_kernel_without_headers(const std::string& release);
  // /usr/src/NAME-VERSION with a dkms.conf (`extra_conf` appended) whose MAKE runs
  // build.sh: it logs "NAME VERSION KV start/end TIMESTAMP" to traces()/builds.log, sleeps
  // `sleep_s`, then produces NAME.ko for the kernel, or fails with a compiler-style error
  // when `fails`. `before_build` is shell run first (e.g. a check of a dependency).
  void add_module(const std::string& name,
                  const std::string& version,
                  const std::string& extra_conf = "AUTOINSTALL=yes\n",
                  bool fails = false,
                  double sleep_s = 0,
                  const std::string& before_build = "");
  // Like add_module, but MAKE is a real GNU make run (no -j of its own) over `targets`
  // parallel jobs, each logged to builds.log as "NAME VERSION KV start/end" and sleeping
  // `sleep_s`: a make that only runs jobs in parallel through kmodsync's jobserver.
  void add_make_module(const std::string& name, const std::string& version, int targets, double sleep_s);
  std::filesystem::path installed(const std::string& release, const std::string& name) const;
  // Lines of traces()/builds.log that record a build start for NAME (any kernel).
  int build_count(const std::string& name) const;
  // The most builds that were running at one moment, from the start/end records.
  int max_concurrent_builds() const;

private:
  testing::TempDir m_base;
  std::filesystem::path m_root;
  std::filesystem::path m_traces;
};

// Writes an executable (0755) file, creating parent directories.
void write_script(const std::filesystem::path& path, const std::string& text);

} // namespace kmodsync::test
