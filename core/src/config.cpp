// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/config.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/string_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <vector>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

struct Setting
{
  std::string value;
  std::string origin; // "file:line"
};

std::string unquote(std::string_view value)
{
  value = util::trim(value);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  return std::string(value);
}

// The value of a bash assignment `key=WORD [# comment]` when WORD needs no evaluation:
// plain, or quoted whole. nullopt for anything bash would expand or split ($(nproc), $HOME,
// a second word), which kmodsync cannot know without running the file.
std::optional<std::string> literal_shell_word(std::string_view text)
{
  text = util::trim(text);
  std::string_view word;
  std::string_view rest;
  if (!text.empty() && (text.front() == '"' || text.front() == '\'')) {
    const auto close = text.find(text.front(), 1);
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    word = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    if (text.front() == '"' && word.find_first_of("$`\\") != std::string_view::npos) {
      return std::nullopt;
    }
  } else {
    const auto end = std::min(text.find_first_of(" \t"), text.size());
    word = text.substr(0, end);
    rest = text.substr(end);
    if (word.find_first_of("$`\\\"'();&|<>") != std::string_view::npos) {
      return std::nullopt;
    }
  }
  rest = util::trim(rest);
  if (!rest.empty() && rest.front() != '#') {
    return std::nullopt;
  }
  return std::string(word);
}

// `key = value` / `key="value"` lines. framework.conf is bash, but the settings that
// matter here are plain assignments; anything else in it is not ours to read.
Expected<std::map<std::string, Setting>> parse_settings(const fs::path& file,
                                                        const std::string& shown_name,
                                                        bool strict)
{
  std::map<std::string, Setting> settings;
  auto text = util::read_file(file);
  if (!text) {
    return std::unexpected(text.error());
  }
  int number = 0;
  for (const auto& raw : util::split_lines(*text)) {
    ++number;
    const std::string_view line = util::trim(raw);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto equals = line.find('=');
    const std::string key(util::trim(line.substr(0, equals == std::string_view::npos ? 0 : equals)));
    const bool plain_key = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (equals == std::string_view::npos || !plain_key) {
      if (strict) {
        return error("{}:{}: expected `key = value`, got \"{}\"", shown_name, number, line);
      }
      continue;
    }
    std::optional<std::string> value = unquote(line.substr(equals + 1));
    if (!strict) {
      value = literal_shell_word(line.substr(equals + 1));
      if (!value) {
        continue;
      }
    }
    settings[key] = {std::move(*value), fmt::format("{}:{}", shown_name, number)};
  }
  return settings;
}

// `value` when it is a number and nothing else.
std::optional<unsigned> whole_number(const std::string& value)
{
  unsigned number = 0;
  const auto parsed = std::from_chars(value.data(), value.data() + value.size(), number);
  if (parsed.ec != std::errc() || parsed.ptr != value.data() + value.size()) {
    return std::nullopt;
  }
  return number;
}

bool one_of(const std::string& value, std::initializer_list<const char*> choices)
{
  return std::any_of(choices.begin(), choices.end(), [&](const char* choice) { return value == choice; });
}

} // namespace

Expected<Config> Config::load(const Root& root)
{
  Config config;
  std::string certificate_origin;
  std::error_code ec;

  // DKMS's framework files first, so kmodsync.conf overrides them.
  std::vector<fs::path> framework = {root("/etc/dkms/framework.conf")};
  if (fs::is_directory(root("/etc/dkms/framework.conf.d"), ec)) {
    std::vector<fs::path> extra;
    for (const auto& entry : fs::directory_iterator(root("/etc/dkms/framework.conf.d"), ec)) {
      if (entry.path().extension() == ".conf") {
        extra.push_back(entry.path());
      }
    }
    std::sort(extra.begin(), extra.end());
    framework.insert(framework.end(), extra.begin(), extra.end());
  }
  for (const auto& file : framework) {
    if (!fs::is_regular_file(file, ec)) {
      continue;
    }
    auto settings = parse_settings(file, root.managed(file), false);
    if (!settings) {
      return std::unexpected(settings.error());
    }
    if (settings->contains("mok_signing_key")) {
      config.signing_key = (*settings)["mok_signing_key"].value;
      config.signing_origin = (*settings)["mok_signing_key"].origin;
    }
    if (settings->contains("mok_certificate")) {
      config.signing_certificate = (*settings)["mok_certificate"].value;
      certificate_origin = (*settings)["mok_certificate"].origin;
    }
    if (settings->contains("parallel_jobs")) {
      // Shell like the rest of the file: a value that is not just a number ($(nproc), 4x)
      // is ignored, not half read.
      if (const auto jobs = whole_number((*settings)["parallel_jobs"].value)) {
        config.jobs = *jobs;
      }
    }
  }

  const fs::path own = root("/etc/kmodsync/kmodsync.conf");
  if (fs::is_regular_file(own, ec)) {
    const std::string shown = root.managed(own);
    auto settings = parse_settings(own, shown, true);
    if (!settings) {
      return std::unexpected(settings.error());
    }
    for (const auto& [key, setting] : *settings) {
      const std::string& value = setting.value;
      if (key == "signing_key") {
        config.signing_key = value;
        config.signing_origin = setting.origin;
      } else if (key == "signing_certificate") {
        config.signing_certificate = value;
        certificate_origin = setting.origin;
      } else if (key == "signing_hash") {
        if (!one_of(value, {"sha256", "sha384", "sha512", "sha224", "sha1"})) {
          return error("{}: signing_hash must be sha256, sha384, sha512, sha224 or sha1, not \"{}\"", setting.origin, value);
        }
        config.signing_hash = value;
      } else if (key == "compression") {
        if (!one_of(value, {"auto", "none", "xz", "zstd", "gzip"})) {
          return error("{}: compression must be auto, none, xz, zstd or gzip, not \"{}\"", setting.origin, value);
        }
        config.compression = value;
      } else if (key == "initramfs") {
        if (!one_of(value, {"auto", "never"})) {
          return error("{}: initramfs must be auto or never, not \"{}\"", setting.origin, value);
        }
        config.initramfs = value;
      } else if (key == "jobs") {
        const auto jobs = whole_number(value);
        if (!jobs) {
          return error("{}: jobs must be a number, not \"{}\"", setting.origin, value);
        }
        config.jobs = *jobs;
      } else if (key == "cache_size") {
        // A number of bytes, with an optional K, M or G (powers of 1024).
        std::uint64_t size = 0;
        const auto parsed = std::from_chars(value.data(), value.data() + value.size(), size);
        const std::string_view unit(parsed.ptr, value.data() + value.size() - parsed.ptr);
        const int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
        if (parsed.ec != std::errc() || parsed.ptr == value.data() || shift < 0) {
          return error("{}: cache_size must be a size like 500M or 2G, not \"{}\"", setting.origin, value);
        }
        config.cache_size = size << shift;
      } else if (key == "build_user") {
        config.build_user = value;
      } else if (key == "build_as_root") {
        config.build_as_root = util::split_words(value);
        config.build_as_root_origin = setting.origin;
      } else if (key == "build_writable") {
        config.build_writable = util::split_words(value);
        for (const auto& dir : config.build_writable) {
          if (!dir.starts_with("/")) {
            return error("{}: build_writable takes absolute directories, not \"{}\"", setting.origin, dir);
          }
        }
      } else if (key == "remote_cache") {
        if (!value.empty() && !value.starts_with("http://") && !value.starts_with("https://")) {
          return error("{}: remote_cache must be an http:// or https:// URL, not \"{}\"", setting.origin, value);
        }
        config.remote_cache = value;
      } else if (key == "remote_cache_read_only") {
        if (!one_of(value, {"yes", "no", "true", "false", "1", "0"})) {
          return error("{}: remote_cache_read_only must be yes or no, not \"{}\"", setting.origin, value);
        }
        config.remote_cache_read_only = one_of(value, {"yes", "true", "1"});
      } else if (key == "remote_cache_layout") {
        if (!one_of(value, {"flat", "subdirs"})) {
          return error("{}: remote_cache_layout must be flat or subdirs, not \"{}\"", setting.origin, value);
        }
        config.remote_cache_layout = value;
      } else if (key == "remote_cache_timeout") {
        const auto seconds = whole_number(value);
        if (!seconds || *seconds == 0) {
          return error("{}: remote_cache_timeout must be a number of seconds, not \"{}\"", setting.origin, value);
        }
        config.remote_cache_timeout = *seconds;
      } else {
        return error("{}: unknown setting \"{}\"", setting.origin, key);
      }
    }
  }
  if (config.signing_key.empty() != config.signing_certificate.empty()) {
    return error("{}: a signing key needs a certificate and a certificate a key (set both)",
                 config.signing_key.empty() ? certificate_origin : config.signing_origin);
  }
  return config;
}

SigningPair signing_pair(const Root& root, const Config& config)
{
  const auto pair_exists = [&](const char* key, const char* certificate) {
    return access(root(key).c_str(), F_OK) == 0 && access(root(certificate).c_str(), F_OK) == 0;
  };
  if (!config.signing_key.empty()) {
    return {config.signing_key, config.signing_certificate};
  }
  if (pair_exists(k_default_signing_key, k_default_signing_certificate)) {
    return {k_default_signing_key, k_default_signing_certificate};
  }
  if (pair_exists(k_dkms_signing_key, k_dkms_signing_certificate)) {
    return {k_dkms_signing_key, k_dkms_signing_certificate};
  }
  return {};
}

} // namespace kmodsync
