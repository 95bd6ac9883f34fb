// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/engine.hpp"

#include <cstdio>

namespace kmodsync::cli {

// One line per finished cell, for package-manager logs, CI and pipes (a terminal gets the
// ProgressMatrix); failures add the first compiler error and the log's path.
class TextReporter : public Reporter
{
public:
  TextReporter(const Root& root, std::FILE* out) : m_root(root), m_out(out) {}
  void cell_finished(const CellReport& cell) override;
  void note(std::string_view message) override;

  // Prints one cell as cell_finished does (used for --dry-run plans too).
  void print_cell(const CellReport& cell);
  // Closing lines: counts per state and pass-level errors.
  void print_summary(const PassReport& report);

private:
  const Root& m_root;
  std::FILE* m_out;
};

// Silent until the end: for --json.
// No cell lines (--json and dry runs print the report at the end), but notes still go to
// stderr: a rejected remote object or a generated key must not pass unseen.
class QuietReporter : public Reporter
{
public:
  void note(std::string_view message) override;
};

} // namespace kmodsync::cli
