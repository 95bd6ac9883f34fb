// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kmodsync {

// SHA-256 (OpenSSL), used for input keys and for recognising the files we installed.
class Hasher
{
public:
  // --- Interface ---
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  Hasher& update(std::string_view data);
  // Adds a length prefix before the data, so that ("ab","c") and ("a","bc") differ.
  Hasher& update_field(std::string_view data);
  Expected<void> update_file(const std::filesystem::path& path);
  // Lower-case hex digest; the hasher is spent afterwards.
  std::string hex_digest();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

Expected<std::string> sha256_file(const std::filesystem::path& path);
std::string sha256_text(std::string_view data);

} // namespace kmodsync
