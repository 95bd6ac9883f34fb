// SPDX-License-Identifier: GPL-2.0-or-later
#include "progress_matrix.hpp"

#include <fmt/format.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace kmodsync::cli {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto k_min_redraw = 100ms; // events closer than this share one drawing
constexpr auto k_tick = 250ms;
constexpr std::size_t k_state_width = 10; // "up-to-date", "build 59s"

struct TerminalSize
{
  std::size_t columns = 80;
  std::size_t rows = 24;
};

TerminalSize terminal_size(int fd)
{
  TerminalSize size;
  struct winsize window {};
  if (::ioctl(fd, TIOCGWINSZ, &window) == 0 && window.ws_col > 0 && window.ws_row > 0) {
    size.columns = window.ws_col;
    size.rows = window.ws_row;
  }
  return size;
}

bool colours()
{
  const char* no_colour = std::getenv("NO_COLOR");
  return no_colour == nullptr || *no_colour == '\0';
}

std::string elapsed(Clock::duration duration)
{
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  return seconds < 60 ? fmt::format("{}s", seconds) : fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
}

std::string fit(const std::string& text, std::size_t width)
{
  if (text.size() <= width) {
    return text + std::string(width - text.size(), ' ');
  }
  return width == 0 ? std::string() : text.substr(0, width - 1) + "~";
}

} // namespace

bool ProgressMatrix::usable(int fd)
{
  const char* term = std::getenv("TERM");
  return ::isatty(fd) == 1 && term != nullptr && *term != '\0' && std::strcmp(term, "dumb") != 0;
}

ProgressMatrix::ProgressMatrix(const Root& root, std::FILE* out, int fd)
  : m_root(root), m_out(out), m_fd(fd), m_lines(root, out)
{
}

ProgressMatrix::~ProgressMatrix()
{
  {
    const std::lock_guard lock(m_mutex);
    m_finished = true;
  }
  m_wake.notify_all();
  if (m_ticker.joinable()) {
    m_ticker.join();
  }
}

ProgressMatrix::Cell& ProgressMatrix::cell_of(const CellReport& report)
{
  const std::string row = report.module + "/" + report.version;
  if (std::find(m_rows.begin(), m_rows.end(), row) == m_rows.end()) {
    m_rows.push_back(row);
  }
  if (std::find(m_kernels.begin(), m_kernels.end(), report.kernel) == m_kernels.end()) {
    m_kernels.push_back(report.kernel);
  }
  return m_cells[{row, report.kernel}];
}

void ProgressMatrix::pass_planned(const std::vector<CellReport>& cells)
{
  const std::lock_guard lock(m_mutex);
  for (const auto& report : cells) {
    Cell& cell = cell_of(report);
    cell.report = report;
    cell.queued = report.status == CellStatus::would_build;
  }
  draw(true);
  if (!m_ticker.joinable()) {
    m_ticker = std::thread([this] { tick(); });
  }
}

void ProgressMatrix::cell_started(const CellReport& report)
{
  const std::lock_guard lock(m_mutex);
  Cell& cell = cell_of(report);
  cell.queued = false;
  cell.building = true;
  cell.started = Clock::now();
  draw(false);
}

void ProgressMatrix::cell_finished(const CellReport& report)
{
  const std::lock_guard lock(m_mutex);
  Cell& cell = cell_of(report);
  cell.report = report;
  cell.queued = false;
  cell.building = false;
  draw(false);
}

void ProgressMatrix::note(std::string_view message)
{
  const std::lock_guard lock(m_mutex);
  erase();
  std::fflush(m_out);
  fmt::print(stderr, "kmodsync: {}\n", message);
  std::fflush(stderr);
  draw(true);
}

std::string ProgressMatrix::state_text(const Cell& cell) const
{
  if (cell.building) {
    return "build " + elapsed(Clock::now() - cell.started);
  }
  if (cell.queued) {
    return "queued";
  }
  const CellReport& report = cell.report;
  switch (report.status) {
  case CellStatus::installed:
    return report.reason.find("cache") != std::string::npos || report.reason.starts_with("installed the kept")
             ? "cached"
             : "installed";
  case CellStatus::up_to_date:
    return "up-to-date";
  case CellStatus::skipped:
    return "skipped";
  case CellStatus::failed:
    return "FAILED";
  case CellStatus::would_build:
    return "queued";
  case CellStatus::removed:
    return "removed";
  case CellStatus::built:
    return "built";
  }
  return "?";
}

std::vector<std::string> ProgressMatrix::render() const
{
  const TerminalSize size = terminal_size(m_fd);
  const std::size_t width = size.columns > 1 ? size.columns - 1 : 1; // never the last column: no wrap
  std::map<std::string, int> counts;
  std::size_t name_width = 8;
  for (const auto& row : m_rows) {
    name_width = std::max(name_width, row.size());
  }
  name_width = std::min<std::size_t>(name_width, 32);
  std::size_t column = k_state_width;
  for (const auto& kernel : m_kernels) {
    column = std::max(column, kernel.size());
  }
  // Kernels named in full when they fit, else K1, K2... with a legend.
  const bool legend = 2 + name_width + m_kernels.size() * (column + 1) > width;
  if (legend) {
    column = std::max(k_state_width, fmt::format("K{}", m_kernels.size()).size());
  }
  const bool colour = colours();

  std::vector<std::string> lines;
  if (legend) {
    std::string line = " ";
    for (std::size_t k = 0; k < m_kernels.size(); ++k) {
      const std::string item = fmt::format(" K{}={}", k + 1, m_kernels[k]);
      if (line.size() > 1 && line.size() + item.size() > width) {
        lines.push_back(line);
        line = " ";
      }
      line += item;
    }
    lines.push_back(fit(line, width));
  }
  // Kernels beyond the terminal's width are left out, and the header says how many.
  const std::size_t room_for = width > 2 + name_width ? (width - 2 - name_width) / (column + 1) : 0;
  const std::size_t shown_kernels = std::max<std::size_t>(1, std::min(m_kernels.size(), room_for));
  std::string header = "  " + fit("", name_width);
  for (std::size_t k = 0; k < shown_kernels; ++k) {
    header += " " + fit(legend ? fmt::format("K{}", k + 1) : m_kernels[k], column);
  }
  lines.push_back(fit(header, width));

  // Rows that do not fit the terminal: the busy and the failed first, the rest counted.
  std::vector<std::size_t> order(m_rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  const std::size_t room = size.rows > lines.size() + 4 ? size.rows - lines.size() - 4 : 1;
  auto row_rank = [&](std::size_t row) {
    int rank = 2;
    for (const auto& kernel : m_kernels) {
      const auto it = m_cells.find({m_rows[row], kernel});
      if (it != m_cells.end() && it->second.building) {
        return 0;
      }
      if (it != m_cells.end() && !it->second.queued && it->second.report.status == CellStatus::failed) {
        rank = 1;
      }
    }
    return rank;
  };
  if (order.size() > room) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return row_rank(a) < row_rank(b); });
  }
  for (const auto& [key, cell] : m_cells) {
    const std::string text = state_text(cell);
    ++counts[text.starts_with("build ") ? "building" : text];
  }
  std::size_t shown = 0;
  for (const std::size_t row : order) {
    if (shown == room && order.size() > room) {
      lines.push_back(fmt::format("  ... and {} more", order.size() - room));
      break;
    }
    std::string line = "  " + fit(m_rows[row], name_width);
    std::size_t visible = line.size();
    for (std::size_t k = 0; k < shown_kernels; ++k) {
      const auto it = m_cells.find({m_rows[row], m_kernels[k]});
      const std::string text = it == m_cells.end() ? "-" : state_text(it->second);
      if (visible + 1 + column > width) {
        break;
      }
      std::string cell_text = fit(text, column);
      if (colour) {
        const char* code = text == "FAILED"                                 ? "\x1b[31m"
                           : text.starts_with("build ")                     ? "\x1b[33m"
                           : text == "installed" || text == "cached"        ? "\x1b[32m"
                           : text == "queued" || text == "skipped" || text == "-" ? "\x1b[2m"
                                                                                  : "";
        if (*code != '\0') {
          cell_text = std::string(code) + cell_text + "\x1b[0m";
        }
      }
      line += " " + cell_text;
      visible += 1 + column;
    }
    lines.push_back(line);
    ++shown;
  }
  std::string summary;
  for (const char* state : {"building", "queued", "installed", "cached", "up-to-date", "built", "FAILED", "skipped", "removed"}) {
    if (const auto it = counts.find(state); it != counts.end()) {
      summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", it->second, it->first == "FAILED" ? "failed" : it->first);
    }
  }
  if (shown_kernels < m_kernels.size()) {
    summary += fmt::format(" (the last {} kernels do not fit the terminal)", m_kernels.size() - shown_kernels);
  }
  lines.push_back(fit(fmt::format("  [{}] {}", elapsed(Clock::now() - m_begin), summary), width));
  return lines;
}

void ProgressMatrix::erase()
{
  if (m_drawn_lines > 0) {
    fmt::print(m_out, "\r\x1b[{}A\x1b[J", m_drawn_lines);
    m_drawn_lines = 0;
  }
}

void ProgressMatrix::draw(bool force)
{
  const auto now = Clock::now();
  if (!force && now - m_last_draw < k_min_redraw) {
    m_dirty = true; // the ticker draws it shortly
    return;
  }
  m_dirty = false;
  const auto lines = render();
  std::string text;
  if (m_drawn_lines > 0) {
    text = fmt::format("\r\x1b[{}A\x1b[J", m_drawn_lines);
  }
  for (const auto& line : lines) {
    text += line + "\n";
  }
  // One write per drawing: the terminal never shows half a matrix.
  std::fwrite(text.data(), 1, text.size(), m_out);
  std::fflush(m_out);
  m_drawn_lines = lines.size();
  m_last_draw = now;
}

void ProgressMatrix::tick()
{
  std::unique_lock lock(m_mutex);
  while (!m_finished) {
    m_wake.wait_for(lock, k_tick);
    if (m_finished) {
      break;
    }
    const bool building = std::any_of(m_cells.begin(), m_cells.end(), [](const auto& item) { return item.second.building; });
    const auto since = Clock::now() - m_last_draw;
    if ((m_dirty && since >= k_min_redraw) || (building && since >= 1s)) {
      draw(true);
    }
  }
}

void ProgressMatrix::finish(const PassReport& report)
{
  {
    const std::lock_guard lock(m_mutex);
    m_finished = true;
  }
  m_wake.notify_all();
  if (m_ticker.joinable()) {
    m_ticker.join();
  }
  const std::lock_guard lock(m_mutex);
  for (const auto& cell : report.cells) {
    Cell& entry = cell_of(cell);
    entry.report = cell;
    entry.queued = false;
    entry.building = false;
  }
  draw(true);
  m_drawn_lines = 0; // the final matrix stays
  for (const auto& cell : report.cells) {
    if (cell.status == CellStatus::failed) {
      m_lines.print_cell(cell);
    }
  }
  m_lines.print_summary(report);
}

} // namespace kmodsync::cli
