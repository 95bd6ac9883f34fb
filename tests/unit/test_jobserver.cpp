// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/jobserver.hpp"
#include "kmodsync/process.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kmodsync::Jobserver;
using kmodsync::testing::TempDir;

namespace {

// A Makefile of `targets` independent jobs; each appends "ID-target start|end NANOSECONDS"
// lines to $(LOG) around a sleep.
std::string makefile(int targets, const char* sleep)
{
  std::string names;
  for (int i = 1; i <= targets; ++i) {
    names += " t" + std::to_string(i);
  }
  return "all:" + names + "\n.PHONY: all" + names + "\n" + names.substr(1) + ":\n"
         + "\t@echo \"$(ID)-$@ start $$(date +%s%N)\" >> $(LOG)\n"
         + "\t@sleep " + sleep + "\n"
         + "\t@echo \"$(ID)-$@ end $$(date +%s%N)\" >> $(LOG)\n";
}

struct MakeResult
{
  bool started = false;
  std::string error;
  kmodsync::Completion completion;
};

// What one cell does: take a token for make's implicit slot, run make on the shared
// jobserver, give the token back.
MakeResult run_make(const Jobserver& jobserver, const fs::path& dir, const std::string& id)
{
  MakeResult result;
  if (auto acquired = jobserver.acquire(); !acquired) {
    result.error = acquired.error();
    return result;
  }
  kmodsync::Command command;
  command.argv = {"make", "-f", (dir / "Makefile").string(), "ID=" + id, "LOG=" + (dir / "log").string()};
  command.env = kmodsync::clean_environment({"MAKEFLAGS=" + jobserver.makeflags()});
  command.cwd = dir;
  command.pass_fds = jobserver.pass_fds();
  command.timeout = 30s;
  auto completion = kmodsync::run(command);
  jobserver.release();
  if (!completion) {
    result.error = completion.error();
    return result;
  }
  result.started = true;
  result.completion = *completion;
  return result;
}

struct Overlap
{
  int jobs = 0;       // how many "start" lines
  int unmatched = 0;  // starts without an end or the reverse
  int max_parallel = 0;
};

// The largest number of jobs that were running at one instant, from the log.
Overlap measure(const std::string& log)
{
  struct Event
  {
    long long time;
    int delta;
  };
  std::vector<Event> events;
  Overlap overlap;
  int balance = 0;
  std::istringstream lines(log);
  std::string id;
  std::string kind;
  long long time = 0;
  while (lines >> id >> kind >> time) {
    if (kind == "start") {
      events.push_back({time, +1});
      ++overlap.jobs;
      ++balance;
    } else {
      events.push_back({time, -1});
      --balance;
    }
  }
  overlap.unmatched = balance;
  // At equal times an end counts first, so touching intervals are not an overlap.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.time != b.time ? a.time < b.time : a.delta < b.delta;
  });
  int running = 0;
  for (const auto& event : events) {
    running += event.delta;
    overlap.max_parallel = std::max(overlap.max_parallel, running);
  }
  return overlap;
}

// Runs `makes` makes, each from its own thread as the engine's cells do, on one jobserver.
Overlap run_parallel_makes(unsigned slots, int makes, int targets, const char* sleep)
{
  const TempDir dir;
  kmodsync::testing::write_text(dir / "Makefile", makefile(targets, sleep));
  kmodsync::testing::write_text(dir / "log", "");
  auto jobserver = Jobserver::create(slots);
  REQUIRE_MESSAGE(jobserver.has_value(), jobserver.error());

  std::vector<MakeResult> results(static_cast<std::size_t>(makes));
  std::vector<std::thread> threads;
  for (int i = 0; i < makes; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] = run_make(*jobserver, dir.path(), "make" + std::to_string(i));
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  for (const auto& result : results) {
    REQUIRE_MESSAGE(result.started, result.error);
    INFO("make output: ", result.completion.output);
    CHECK(result.completion.succeeded());
    // make says "jobserver unavailable" and falls back to -j1 when it cannot use the pipe.
    CHECK(result.completion.output == "");
  }
  // Every token is back in the pipe.
  int available = -1;
  REQUIRE(ioctl(jobserver->read_fd(), FIONREAD, &available) == 0);
  CHECK(available == static_cast<int>(slots));

  const Overlap overlap = measure(kmodsync::testing::read_text(dir / "log"));
  CHECK(overlap.jobs == makes * targets);
  CHECK(overlap.unmatched == 0);
  return overlap;
}

} // namespace

TEST_SUITE_BEGIN("jobserver");

TEST_CASE("makeflags has the form make 4.3 reads, -jN --jobserver-auth=R,W, with the child's numbers")
{
  auto jobserver = Jobserver::create(4);
  REQUIRE(jobserver.has_value());
  CHECK(jobserver->slots() == 4);
  // pass_fds() hands over read then write end, which the child gets as descriptors
  // k_first_passed_fd and k_first_passed_fd + 1: MAKEFLAGS names those.
  CHECK(jobserver->pass_fds() == std::vector<int>{jobserver->read_fd(), jobserver->write_fd()});
  const int first = kmodsync::Command::k_first_passed_fd;
  CHECK(jobserver->makeflags()
        == "-j4 --jobserver-auth=" + std::to_string(first) + "," + std::to_string(first + 1));
  CHECK(jobserver->read_fd() >= 0);
  CHECK(jobserver->write_fd() >= 0);
  CHECK(jobserver->read_fd() != jobserver->write_fd());
}

TEST_CASE("create: the pipe holds one token per slot, is close-on-exec, and 0 slots means 1")
{
  auto jobserver = Jobserver::create(3);
  REQUIRE(jobserver.has_value());
  int available = -1;
  REQUIRE(ioctl(jobserver->read_fd(), FIONREAD, &available) == 0);
  CHECK(available == 3);
  CHECK((fcntl(jobserver->read_fd(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((fcntl(jobserver->write_fd(), F_GETFD) & FD_CLOEXEC) != 0);

  auto single = Jobserver::create(0);
  REQUIRE(single.has_value());
  CHECK(single->slots() == 1);
  CHECK(single->makeflags().starts_with("-j1 "));
  REQUIRE(ioctl(single->read_fd(), FIONREAD, &available) == 0);
  CHECK(available == 1);
}

TEST_CASE("acquire takes a token, release gives it back, and acquire waits while none is free")
{
  auto jobserver = Jobserver::create(1);
  REQUIRE(jobserver.has_value());
  REQUIRE(jobserver->acquire().has_value());
  int available = -1;
  REQUIRE(ioctl(jobserver->read_fd(), FIONREAD, &available) == 0);
  CHECK(available == 0);

  std::atomic<bool> second_acquired{false};
  bool second_ok = false;
  std::thread waiter([&] {
    second_ok = jobserver->acquire().has_value();
    second_acquired = true;
  });
  std::this_thread::sleep_for(150ms);
  const bool acquired_early = second_acquired;
  jobserver->release();
  waiter.join();
  CHECK_FALSE(acquired_early);
  CHECK(second_acquired);
  CHECK(second_ok);
  jobserver->release();
  REQUIRE(ioctl(jobserver->read_fd(), FIONREAD, &available) == 0);
  CHECK(available == 1);
}

TEST_CASE("a moved Jobserver keeps the pipe open; the moved-from one closes nothing")
{
  auto created = Jobserver::create(2);
  REQUIRE(created.has_value());
  const int read_fd = created->read_fd();
  const int write_fd = created->write_fd();
  {
    Jobserver moved(std::move(*created));
    CHECK(created->read_fd() == -1);
    CHECK(moved.read_fd() == read_fd);
    REQUIRE(moved.acquire().has_value());
    moved.release();
  }
  // The moved-to object closed both ends when it went.
  CHECK(fcntl(read_fd, F_GETFD) == -1);
  CHECK(fcntl(write_fd, F_GETFD) == -1);
}

TEST_CASE("a lone make on the jobserver uses every slot")
{
  const Overlap overlap = run_parallel_makes(3, 1, 6, "0.2");
  CHECK(overlap.max_parallel == 3);
}

TEST_CASE("three makes on a 2-slot jobserver never run more than 2 jobs, and do run 2")
{
  const Overlap overlap = run_parallel_makes(2, 3, 4, "0.2");
  CHECK(overlap.max_parallel == 2);
}

TEST_CASE("two makes on a 1-slot jobserver run strictly one job at a time")
{
  const Overlap overlap = run_parallel_makes(1, 2, 3, "0.1");
  CHECK(overlap.max_parallel == 1);
}

TEST_SUITE_END();
