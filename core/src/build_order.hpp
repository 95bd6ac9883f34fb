// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// Internal to the engine: which ready cell a free worker builds next. Longest first: with
// compiles from 1 s to a minute, a pass whose longest compile starts last ends with one
// core busy and the others idle (the tail that kept a cold pass 13% above CPU / cores).

#include "pass_cell.hpp"

#include "kmodsync/memo.hpp"

#include <map>
#include <string>
#include <vector>

namespace kmodsync::detail {

class BuildOrder
{
public:
  BuildOrder(Memo& memo, const PassPlan& plan);

  // Estimated seconds of compiling plan.cells[index].
  double estimate(std::size_t index) const { return m_estimates[index]; }
  // A compile of `cell` took `seconds`: its other kernels will take about as long, and the
  // next pass knows it too (the memo).
  void compiled(const PassCell& cell, double seconds);

private:
  Memo& m_memo;
  const PassPlan& m_plan;
  std::vector<double> m_estimates;
};

} // namespace kmodsync::detail
