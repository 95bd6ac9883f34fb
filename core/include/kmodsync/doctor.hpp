// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// `kmodsync doctor`: why cells of a root are, or would be, skipped or failing, kernel by
// kernel, with what to do about it. Reads only: a dry-run pass, the state, the headers.

#include "kmodsync/engine.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/root.hpp"

#include <string>
#include <vector>

namespace kmodsync {

enum class Severity { ok, note, warning, problem };
const char* to_string(Severity severity);

struct Finding
{
  Severity severity = Severity::ok;
  std::string topic; // "headers", "compiler", "signing", "make", "config", NAME/VERSION ...
  std::string text;
  std::string fix;   // what to run or install; may be empty
};

struct KernelDiagnosis
{
  std::string release;
  std::vector<Finding> findings;
  std::vector<CellReport> cells; // as the next pass would find them
};

struct Diagnosis
{
  std::vector<Finding> general;
  std::vector<KernelDiagnosis> kernels;
  bool any_problem() const;
};

// `kernels` narrows the kernels looked at (none: all of them).
Diagnosis diagnose(const Root& root, const std::vector<std::string>& kernels);

// The package that has KV's headers on the root's distribution ("linux-headers-KV"...).
std::string headers_package(const Root& root, const std::string& kernel_release);

} // namespace kmodsync
