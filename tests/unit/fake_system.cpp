// SPDX-License-Identifier: GPL-2.0-or-later
#include "fake_system.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>


namespace kmodsync::test {

namespace fs = std::filesystem;

namespace {

using testing::read_text;
using testing::write_text;

std::string read_if_present(const fs::path& path)
{
  return fs::exists(path) ? read_text(path) : std::string();
}

} // namespace

void write_script(const fs::path& path, const std::string& text)
{
  write_text(path, text);
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec
                          | fs::perms::others_read | fs::perms::others_exec);
}

FakeSystem::FakeSystem() : m_root(m_base / "root"), m_traces(m_base / "traces")
{
  fs::create_directories(m_root / "usr/lib/modules");
  fs::create_directories(m_root / "usr/src");
  fs::create_directories(m_traces);
  fs::create_directory_symlink("usr/lib", m_root / "lib");
  // Fake builds and dkms.conf files leave traces outside their build directory: the one
  // place besides it the (unprivileged, confined) build user may write.
  fs::permissions(m_traces, fs::perms::all);
  write_text(m_root / "etc/kmodsync/kmodsync.conf", "build_writable = " + m_traces.string() + "\n");
}

void FakeSystem::add_kernel(const std::string& release, const std::string& config)
{
  const fs::path headers = m_root / "usr/src" / ("fake-headers-" + release);
  write_text(headers / "Makefile", "# fake kbuild tree\n");
  write_text(headers / ".config", config);
  write_text(headers / "Module.symvers", "");
  write_text(headers / "include/generated/utsrelease.h", "#define UTS_RELEASE \"" + release + "\"\n");
  fs::create_directories(m_root / "usr/lib/modules" / release);
  fs::create_symlink("/usr/src/fake-headers-" + release, m_root / "usr/lib/modules" / release / "build");
}

void FakeSystem::add_kernel_without_headers(const std::string& release)
{
  fs::create_directories(m_root / "usr/lib/modules" / release);
  fs::create_symlink("/usr/src/missing-headers-" + release, m_root / "usr/lib/modules" / release / "build");
}

namespace {

std::string module_conf(const std::string& name, const std::string& version, const std::string& make)
{
  return "PACKAGE_NAME=\"" + name + "\"\nPACKAGE_VERSION=\"" + version + "\"\n" + "BUILT_MODULE_NAME[0]=\"" + name
         + "\"\nDEST_MODULE_LOCATION[0]=\"/extra\"\n" + "MAKE[0]=\"" + make + "\"\n";
}

// build.sh KV: optionally traces its start/end, then compiles NAME.ko for KV (or fails).
std::string build_script(const std::string& name,
                         const std::string& version,
                         const std::string& trace_log,
                         bool fails,
                         double sleep_s,
                         const std::string& before_build)
{
  const std::string trace = trace_log.empty() ? std::string()
                                              : "echo \"" + name + " " + version + " $kv EVENT $(date +%s%N)\" >> "
                                                  + trace_log + "\n";
  auto traced = [&](const char* event) {
    std::string line = trace;
    if (const auto at = line.find("EVENT"); at != std::string::npos) {
      line.replace(at, 5, event);
    }
    return line;
  };
  std::string script = "#!/bin/bash\nset -e\nkv=$1\n" + traced("start") + before_build + "\n";
  script += "sleep " + std::to_string(sleep_s) + "\n";
  if (fails) {
    script += "echo 'make[1]: Entering directory'; echo '" + name + ".c:12:5: error: expected declaration' >&2\n";
    return script + traced("end") + "exit 2\n";
  }
  script += "printf '__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=%s SMP mod_unload \";\\n"
            "__attribute__((section(\".modinfo\"), used)) static const char n[] = \"name=" + name + "\";\\n"
            "__attribute__((section(\".modinfo\"), used)) static const char r[] = \"version=" + version + "\";\\n"
            "int " + name + "_marker = 1;\\n' \"$kv\" > " + name + ".c\n";
  script += "gcc -g -c -o " + name + ".ko " + name + ".c\n";
  return script + traced("end");
}

} // namespace

void FakeSystem::add_module(const std::string& name,
                            const std::string& version,
                            const std::string& extra_conf,
                            bool fails,
                            double sleep_s,
                            const std::string& before_build)
{
  const fs::path dir = m_root / "usr/src" / (name + "-" + version);
  write_text(dir / "dkms.conf", module_conf(name, version, "./build.sh ${kernelver}") + extra_conf);
  write_script(dir / "build.sh",
             build_script(name, version, (m_traces / "builds.log").string(), fails, sleep_s, before_build));
  write_text(dir / "version.txt", version + "\n");
}

void FakeSystem::add_make_module(const std::string& name, const std::string& version, int targets, double sleep_s)
{
  const fs::path dir = m_root / "usr/src" / (name + "-" + version);
  write_text(dir / "dkms.conf", module_conf(name, version, "make -f jobs.mk KV=${kernelver}") + "AUTOINSTALL=yes\n");
  const std::string log = (m_traces / "builds.log").string();
  std::string makefile = "JOBS :=";
  for (int i = 0; i < targets; ++i) {
    makefile += " job" + std::to_string(i);
  }
  makefile += "\nall: $(JOBS)\n\t./build.sh $(KV)\n";
  makefile += "$(JOBS):\n\t@echo \"" + name + " " + version + " $(KV) start $$(date +%s%N)\" >> " + log
              + "; sleep " + std::to_string(sleep_s) + "; echo \"" + name + " " + version
              + " $(KV) end $$(date +%s%N)\" >> " + log + "\n";
  makefile += ".PHONY: all $(JOBS)\n";
  write_text(dir / "jobs.mk", makefile);
  write_script(dir / "build.sh", build_script(name, version, "", false, 0, ""));
}

fs::path FakeSystem::installed(const std::string& release, const std::string& name) const
{
  return m_root / "usr/lib/modules" / release / "updates/dkms" / (name + ".ko");
}

int FakeSystem::build_count(const std::string& name) const
{
  std::istringstream lines(read_if_present(m_traces / "builds.log"));
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    if (line.starts_with(name + " ") && line.find(" start ") != std::string::npos) {
      ++count;
    }
  }
  return count;
}

int FakeSystem::max_concurrent_builds() const
{
  std::istringstream lines(read_if_present(m_traces / "builds.log"));
  std::string name, version, kernel, event;
  long long time = 0;
  std::vector<std::pair<long long, int>> events;
  while (lines >> name >> version >> kernel >> event >> time) {
    events.emplace_back(time, event == "start" ? 1 : -1);
  }
  std::sort(events.begin(), events.end());
  int running = 0;
  int most = 0;
  for (const auto& [when, delta] : events) {
    running += delta;
    most = std::max(most, running);
  }
  return most;
}

} // namespace kmodsync::test
