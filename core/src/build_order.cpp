// SPDX-License-Identifier: GPL-2.0-or-later
#include "build_order.hpp"

#include <cmath>
#include <system_error>

namespace kmodsync::detail {

namespace fs = std::filesystem;

namespace {

// A kernel module's C compiles at very roughly 10 KB per second here (kbuild's headers
// dominate); only the order matters, and a measured time replaces this at once.
constexpr double k_source_bytes_per_second = 10000;

std::string memo_key(const PassCell& cell)
{
  return "build-seconds:" + cell.module + "/" + cell.version;
}

double source_estimate(const fs::path& dir)
{
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto extension = it->path().extension();
    if ((extension == ".c" || extension == ".S") && it->is_regular_file(ec)) {
      bytes += it->file_size(ec);
    }
  }
  return 1.0 + static_cast<double>(bytes) / k_source_bytes_per_second;
}

} // namespace

BuildOrder::BuildOrder(Memo& memo, const PassPlan& plan) : m_memo(memo), m_plan(plan), m_estimates(plan.cells.size(), 0)
{
  std::map<fs::path, double> by_source;
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    const PassCell& cell = plan.cells[i];
    if (!cell.needs_build || !cell.source) {
      continue;
    }
    if (auto known = m_memo.get(memo_key(cell)); known && known->is_number_integer()) {
      m_estimates[i] = static_cast<double>(known->get<std::int64_t>()) / 1000.0;
      continue;
    }
    auto [it, added] = by_source.try_emplace(cell.source->dir, 0.0);
    if (added) {
      it->second = source_estimate(cell.source->dir);
    }
    m_estimates[i] = it->second;
  }
}

void BuildOrder::compiled(const PassCell& cell, double seconds)
{
  m_memo.put(memo_key(cell), static_cast<std::int64_t>(std::llround(seconds * 1000)));
  for (std::size_t i = 0; i < m_plan.cells.size(); ++i) {
    const PassCell& other = m_plan.cells[i];
    if (other.module == cell.module && other.version == cell.version) {
      m_estimates[i] = seconds;
    }
  }
}

} // namespace kmodsync::detail
