// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/compression.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/kernel.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::choose_compression;
using kmodsync::compress_module;
using kmodsync::Compression;
using kmodsync::decompress_module;
using kmodsync::Kernel;
using kmodsync::kernel_module_compression;
using kmodsync::module_suffix;
using kmodsync::testing::read_text;
using kmodsync::testing::shell_output;
using kmodsync::testing::split_at_newlines;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

// The error of `result`, or "" when it holds a value: safe to use in a lazily evaluated
// assertion message (doctest stringifies those for passing assertions too under -s).
template <typename T> std::string error_of(const kmodsync::Expected<T>& result)
{
  return result.has_value() ? std::string() : result.error();
}

// `size` bytes that look a little like a module: runs of text (compressible) broken up
// by pseudo-random bytes, including NULs and 0xff, so a codec that mangles binary or
// stops at a NUL shows. Deterministic, so a failure reproduces.
std::string module_like_data(std::size_t size)
{
  std::string data;
  data.reserve(size);
  std::uint32_t state = 0x2545f491;
  while (data.size() < size) {
    state = state * 1664525 + 1013904223;
    if ((state >> 28) < 10) {
      data += "vermagic=6.1.0-55-amd64 SMP preempt mod_unload modversions ";
      data += std::to_string(state % 1000);
      data.push_back('\0');
    } else {
      for (int i = 0; i < 24; ++i) {
        state = state * 1664525 + 1013904223;
        data.push_back(static_cast<char>(state >> 24));
      }
    }
  }
  data.resize(size);
  return data;
}

std::string compress_ok(std::string_view data, Compression compression)
{
  auto compressed = compress_module(data, compression);
  REQUIRE_MESSAGE(compressed.has_value(), error_of(compressed));
  return *compressed;
}

std::string decompress_ok(std::string_view data, Compression compression)
{
  auto decompressed = decompress_module(data, compression);
  REQUIRE_MESSAGE(decompressed.has_value(), error_of(decompressed));
  return *decompressed;
}

// A kernel whose modules directory is `modules_dir` (which may not exist) and whose
// .config holds `config`.
Kernel fake_kernel(const fs::path& modules_dir, std::map<std::string, std::string> config = {})
{
  Kernel kernel;
  kernel.release = "6.1.0-55-amd64";
  kernel.arch = "x86_64";
  kernel.modules_dir = modules_dir;
  kernel.config = std::move(config);
  return kernel;
}

// The exit status of a shell command line (its output is discarded).
int exit_status(const std::string& command_line)
{
  const int status = std::system((command_line + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

} // namespace

TEST_SUITE_BEGIN("compression");

TEST_CASE("module_suffix names each kind as kbuild does")
{
  CHECK(std::string(module_suffix(Compression::none)) == ".ko");
  CHECK(std::string(module_suffix(Compression::xz)) == ".ko.xz");
  CHECK(std::string(module_suffix(Compression::zstd)) == ".ko.zst");
  CHECK(std::string(module_suffix(Compression::gzip)) == ".ko.gz");
}

TEST_CASE("every kind round-trips binary data in process")
{
  // 300 KB: more than the 64 KiB output buffer the decoders loop over.
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{300000}}) {
    const std::string data = module_like_data(size);
    for (const auto kind : {Compression::xz, Compression::zstd, Compression::gzip}) {
      CAPTURE(size);
      CAPTURE(module_suffix(kind));
      const std::string compressed = compress_ok(data, kind);
      CHECK(compressed != data);
      if (size == 300000) {
        CHECK(compressed.size() < data.size());
      }
      CHECK(decompress_ok(compressed, kind) == data);
    }
  }
}

TEST_CASE("every kind round-trips highly compressible data, many times the output buffer")
{
  // A module is mostly zero padding and repeated strings: a little input expands to far
  // more output than one 64 KiB read of the decoders.
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); i += 4096) {
    data.replace(i, 8, "kmodsync");
  }
  for (const auto kind : {Compression::xz, Compression::zstd, Compression::gzip}) {
    CAPTURE(module_suffix(kind));
    const std::string compressed = compress_ok(data, kind);
    CHECK(compressed.size() < data.size() / 20);
    const auto decompressed = decompress_module(compressed, kind);
    REQUIRE_MESSAGE(decompressed.has_value(), error_of(decompressed));
    CHECK(decompressed->size() == data.size());
    CHECK(*decompressed == data);
  }
}

TEST_CASE("none passes the bytes through unchanged both ways")
{
  const std::string data = module_like_data(5000);
  CHECK(compress_ok(data, Compression::none) == data);
  CHECK(decompress_ok(data, Compression::none) == data);
}

TEST_CASE("xz output has a CRC32 check and a 1 MiB dictionary, and xz -dc restores it")
{
  const TempDir dir;
  const std::string data = module_like_data(6000);
  write_text(dir / "fake.ko.xz", compress_ok(data, Compression::xz));

  // The kernel's in-kernel xz decompressor supports CRC32 but not xz's default CRC64, and
  // only a limited dictionary: both are visible in the container headers.
  const auto list = split_at_newlines(shell_output("xz --robot --list -vv '" + (dir / "fake.ko.xz").string() + "'"));
  bool saw_file = false;
  bool saw_block = false;
  for (const auto& line : list) {
    if (line.starts_with("file\t")) {
      saw_file = true;
      CHECK_MESSAGE(line.find("\tCRC32\t") != std::string::npos, line);
      CHECK_MESSAGE(line.find("\t6000\t") != std::string::npos, line);
    }
    if (line.starts_with("block\t")) {
      saw_block = true;
      CHECK_MESSAGE(line.ends_with("--lzma2=dict=1MiB"), line);
    }
  }
  CHECK(saw_file);
  CHECK(saw_block);

  shell_output("xz -dc '" + (dir / "fake.ko.xz").string() + "' > '" + (dir / "out").string() + "'");
  CHECK(read_text(dir / "out") == data);
}

TEST_CASE("zstd output is a zstd frame that zstd -dc restores")
{
  const TempDir dir;
  const std::string data = module_like_data(6000);
  const std::string compressed = compress_ok(data, Compression::zstd);
  CHECK(compressed.starts_with("\x28\xb5\x2f\xfd"));
  write_text(dir / "fake.ko.zst", compressed);
  shell_output("zstd -q -dc '" + (dir / "fake.ko.zst").string() + "' > '" + (dir / "out").string() + "'");
  CHECK(read_text(dir / "out") == data);
}

TEST_CASE("gzip output has no name or time stamp, is reproducible, and gzip -dc restores it")
{
  const TempDir dir;
  const std::string data = module_like_data(6000);
  const std::string compressed = compress_ok(data, Compression::gzip);
  REQUIRE(compressed.size() > 10);
  CHECK(compressed.starts_with("\x1f\x8b\x08"));
  CHECK(compressed[3] == '\0');                      // FLG: no FNAME, FCOMMENT, FEXTRA
  CHECK(compressed.substr(4, 4) == std::string(4, '\0')); // MTIME 0
  CHECK(compressed[8] == '\x02');                    // XFL: maximum compression (-9)
  CHECK(compress_ok(data, Compression::gzip) == compressed);

  write_text(dir / "fake.ko.gz", compressed);
  shell_output("gzip -dc '" + (dir / "fake.ko.gz").string() + "' > '" + (dir / "out").string() + "'");
  CHECK(read_text(dir / "out") == data);
  // gzip -t checks the CRC32 and length trailer too.
  CHECK(exit_status("gzip -t '" + (dir / "fake.ko.gz").string() + "'") == 0);
}

TEST_CASE("what the CLIs compress, decompress_module reads")
{
  const TempDir dir;
  const std::string data = module_like_data(6000);
  write_text(dir / "in", data);
  const std::string in = (dir / "in").string();
  CHECK(decompress_ok(shell_output("xz --check=crc32 -c '" + in + "'"), Compression::xz) == data);
  // xz's own default check (CRC64) is read too.
  CHECK(decompress_ok(shell_output("xz -c '" + in + "'"), Compression::xz) == data);
  CHECK(decompress_ok(shell_output("zstd -q -c '" + in + "'"), Compression::zstd) == data);
  CHECK(decompress_ok(shell_output("gzip -9 -c '" + in + "'"), Compression::gzip) == data);
}

TEST_CASE("corrupt, truncated or foreign data is an error, not wrong bytes")
{
  const std::string data = module_like_data(6000);
  for (const auto kind : {Compression::xz, Compression::zstd, Compression::gzip}) {
    CAPTURE(module_suffix(kind));
    const std::string compressed = compress_ok(data, kind);

    const auto garbage = decompress_module("this is not compressed data at all", kind);
    CHECK_FALSE(garbage.has_value());

    const auto truncated = decompress_module(std::string_view(compressed).substr(0, compressed.size() / 2), kind);
    CHECK_FALSE(truncated.has_value());

    const auto empty = decompress_module("", kind);
    CHECK_FALSE(empty.has_value());
  }
  // Damage the checks catch: xz's CRC32 over the block (a byte of the payload flipped),
  // gzip's CRC32 trailer.
  for (const auto kind : {Compression::xz, Compression::gzip}) {
    CAPTURE(module_suffix(kind));
    std::string compressed = compress_ok(data, kind);
    if (kind == Compression::gzip) {
      compressed[compressed.size() - 8] ^= 0x01; // first byte of the CRC32 trailer
    } else {
      compressed[compressed.size() / 2] ^= 0x01;
    }
    const auto damaged = decompress_module(compressed, kind);
    CHECK_FALSE(damaged.has_value());
  }
}

TEST_CASE("zstd frames carry a content checksum, so a flipped byte is always caught")
{
  // As the zstd command that kbuild runs writes them (XXH64): without one, a flipped byte
  // in the entropy-coded payload can decode to other bytes with no error.
  const std::string data = module_like_data(6000);
  const std::string compressed = compress_ok(data, Compression::zstd);
  const TempDir dir;
  write_text(dir / "fake.ko.zst", compressed);
  CHECK(shell_output("zstd -lv '" + (dir / "fake.ko.zst").string() + "' 2>&1").find("Check: XXH64")
        != std::string::npos);
  int silent = 0;
  for (std::size_t i = 6; i < compressed.size(); ++i) {
    std::string damaged = compressed;
    damaged[i] ^= 0x10;
    const auto result = decompress_module(damaged, Compression::zstd);
    if (result && *result != data) {
      ++silent;
    }
  }
  CHECK(silent == 0);
}

TEST_CASE("kernel_module_compression follows the first entry of modules.dep")
{
  const TempDir dir;
  const fs::path modules_dir = dir / "usr/lib/modules/6.1.0-55-amd64";
  struct Case
  {
    std::string dep;
    Compression expected;
    // The .config says something else each time: modules.dep, what is really installed, wins.
    std::string config;
  };
  const std::vector<Case> cases = {
    {"kernel/arch/x86/crypto/aesni-intel.ko.xz: kernel/crypto/crypto_simd.ko.xz kernel/crypto/cryptd.ko.xz\n"
     "kernel/crypto/cryptd.ko.xz:\n",
     Compression::xz, "CONFIG_MODULE_COMPRESS_ZSTD"},
    {"kernel/fs/btrfs/btrfs.ko.zst: kernel/lib/raid6/raid6_pq.ko.zst\n", Compression::zstd,
     "CONFIG_MODULE_COMPRESS_XZ"},
    {"kernel/fs/btrfs/btrfs.ko.gz: kernel/lib/raid6/raid6_pq.ko.gz\n", Compression::gzip,
     "CONFIG_MODULE_COMPRESS_XZ"},
    {"kernel/fs/btrfs/btrfs.ko: kernel/lib/raid6/raid6_pq.ko\nkernel/lib/raid6/raid6_pq.ko:\n", Compression::none,
     "CONFIG_MODULE_COMPRESS_XZ"},
  };
  for (const auto& [dep, expected, config] : cases) {
    CAPTURE(dep);
    write_text(modules_dir / "modules.dep", dep);
    CHECK(kernel_module_compression(fake_kernel(modules_dir, {{config, "y"}})) == expected);
  }
}

TEST_CASE("kernel_module_compression falls back to .config without a usable modules.dep")
{
  const TempDir dir;
  const fs::path modules_dir = dir / "usr/lib/modules/6.1.0-55-amd64";
  fs::create_directories(modules_dir);
  const std::vector<std::pair<std::map<std::string, std::string>, Compression>> cases = {
    {{{"CONFIG_MODULE_COMPRESS_XZ", "y"}}, Compression::xz},
    {{{"CONFIG_MODULE_COMPRESS_ZSTD", "y"}}, Compression::zstd},
    {{{"CONFIG_MODULE_COMPRESS_GZIP", "y"}}, Compression::gzip},
    {{{"CONFIG_MODULE_COMPRESS_NONE", "y"}}, Compression::none},
    {{{"CONFIG_MODULE_COMPRESS_XZ", "n"}, {"CONFIG_MODULE_COMPRESS_ZSTD", "n"}}, Compression::none},
    {{}, Compression::none},
  };
  for (const auto& [config, expected] : cases) {
    CAPTURE(config.size());
    CAPTURE(module_suffix(expected));
    CHECK(kernel_module_compression(fake_kernel(modules_dir, config)) == expected);
  }
  // An empty modules.dep (depmod not run yet) says nothing either.
  write_text(modules_dir / "modules.dep", "");
  CHECK(kernel_module_compression(fake_kernel(modules_dir, {{"CONFIG_MODULE_COMPRESS_XZ", "y"}})) == Compression::xz);
  // Nor does a kernel whose modules directory does not exist.
  CHECK(kernel_module_compression(fake_kernel(dir / "missing", {{"CONFIG_MODULE_COMPRESS_GZIP", "y"}}))
        == Compression::gzip);
}

TEST_CASE("choose_compression: auto follows the kernel, the names force a kind, others are errors")
{
  const TempDir dir;
  const Kernel xz_kernel = fake_kernel(dir / "none", {{"CONFIG_MODULE_COMPRESS_XZ", "y"}});
  const Kernel plain_kernel = fake_kernel(dir / "none");

  const auto automatic = choose_compression("auto", xz_kernel);
  REQUIRE(automatic.has_value());
  CHECK(*automatic == Compression::xz);
  const auto automatic_plain = choose_compression("auto", plain_kernel);
  REQUIRE(automatic_plain.has_value());
  CHECK(*automatic_plain == Compression::none);
  const auto unset = choose_compression("", xz_kernel);
  REQUIRE(unset.has_value());
  CHECK(*unset == Compression::xz);

  const auto none = choose_compression("none", xz_kernel);
  REQUIRE(none.has_value());
  CHECK(*none == Compression::none);
  for (const auto& [name, kind] : std::vector<std::pair<std::string, Compression>>{
         {"xz", Compression::xz}, {"zstd", Compression::zstd}, {"gzip", Compression::gzip}}) {
    CAPTURE(name);
    const auto forced = choose_compression(name, plain_kernel);
    REQUIRE(forced.has_value());
    CHECK(*forced == kind);
  }

  const auto bogus = choose_compression("bzip2", xz_kernel);
  REQUIRE_FALSE(bogus.has_value());
  CHECK(bogus.error() == "unknown compression \"bzip2\"");
}

TEST_SUITE_END();
