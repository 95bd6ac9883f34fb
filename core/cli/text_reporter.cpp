// SPDX-License-Identifier: GPL-2.0-or-later
#include "text_reporter.hpp"

#include <fmt/format.h>

#include <map>

namespace kmodsync::cli {

void TextReporter::cell_finished(const CellReport& cell)
{
  print_cell(cell);
}

// Notes are diagnostics, not results: stderr, whatever the cells' lines go to.
void TextReporter::note(std::string_view message)
{
  std::fflush(m_out);
  fmt::print(stderr, "kmodsync: {}\n", message);
}

void QuietReporter::note(std::string_view message)
{
  fmt::print(stderr, "kmodsync: {}\n", message);
}

void TextReporter::print_cell(const CellReport& cell)
{
  std::string detail = cell.reason;
  if (cell.remembered) {
    detail = "known failure, not retried (inputs unchanged; --retry forces): " + detail;
  }
  fmt::print(m_out, "  {:<11} {}/{} for {}{}{}\n", to_string(cell.status), cell.module, cell.version, cell.kernel,
             detail.empty() ? "" : ": ", detail);
  if (cell.status == CellStatus::failed) {
    if (!cell.first_error.empty()) {
      fmt::print(m_out, "              first error: {}\n", cell.first_error);
    }
    if (!cell.log.empty()) {
      fmt::print(m_out, "              log: {}\n", m_root(cell.log).string());
    }
  }
  std::fflush(m_out);
}

void TextReporter::print_summary(const PassReport& report)
{
  std::map<std::string, int> counts;
  for (const auto& cell : report.cells) {
    ++counts[to_string(cell.status)];
  }
  std::string line;
  for (const auto& [status, count] : counts) {
    line += fmt::format("{}{} {}", line.empty() ? "" : ", ", count, status);
  }
  fmt::print(m_out, "kmodsync: {} cells: {}\n", report.cells.size(), line.empty() ? "nothing to do" : line);
  for (const auto& message : report.errors) {
    fmt::print(m_out, "kmodsync: error: {}\n", message);
  }
  std::fflush(m_out);
}

} // namespace kmodsync::cli
