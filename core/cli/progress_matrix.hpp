// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "text_reporter.hpp"

#include "kmodsync/engine.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kmodsync::cli {

// On a terminal: the module x kernel matrix of the pass, redrawn in place (at most a few
// times a second, and each second while something builds, for the elapsed times). What
// stays on the screen at the end is the final matrix; the failures' first errors and logs
// follow it, then the summary. Without a terminal, TextReporter's lines are used instead.
class ProgressMatrix : public Reporter
{
public:
  ProgressMatrix(const Root& root, std::FILE* out, int fd);
  ~ProgressMatrix() override;
  ProgressMatrix(const ProgressMatrix&) = delete;
  ProgressMatrix& operator=(const ProgressMatrix&) = delete;

  void pass_planned(const std::vector<CellReport>& cells) override;
  void cell_started(const CellReport& cell) override;
  void cell_finished(const CellReport& cell) override;
  void note(std::string_view message) override;

  // The last drawing, then the failed cells in detail and the summary.
  void finish(const PassReport& report);

  // Whether `out` (with descriptor `fd`) is a terminal that takes cursor movements.
  static bool usable(int fd);

private:
  struct Cell
  {
    CellReport report;
    bool queued = false;
    bool building = false;
    std::chrono::steady_clock::time_point started;
  };

  Cell& cell_of(const CellReport& report);
  std::string state_text(const Cell& cell) const;
  std::vector<std::string> render() const;
  // Called with the mutex held.
  void draw(bool force);
  void erase();
  void tick();

  const Root& m_root;
  std::FILE* m_out;
  int m_fd;
  TextReporter m_lines;
  std::vector<std::string> m_rows;    // NAME/VERSION, in order of appearance
  std::vector<std::string> m_kernels; // in order of appearance
  std::map<std::pair<std::string, std::string>, Cell> m_cells;
  std::chrono::steady_clock::time_point m_begin = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_draw{};
  std::size_t m_drawn_lines = 0;
  bool m_dirty = false;
  bool m_finished = false;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::thread m_ticker;
};

} // namespace kmodsync::cli
