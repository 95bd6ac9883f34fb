// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/compression.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/string_util.hpp"

#include <lzma.h>
#include <memory>
#include <zlib.h>
#include <zstd.h>

namespace kmodsync {

namespace {

Expected<std::string> xz_compress(std::string_view input)
{
  lzma_options_lzma options;
  lzma_lzma_preset(&options, LZMA_PRESET_DEFAULT);
  options.dict_size = 1 << 20;
  lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
  std::string output(lzma_stream_buffer_bound(input.size()), '\0');
  std::size_t position = 0;
  const lzma_ret result = lzma_stream_buffer_encode(
    filters, LZMA_CHECK_CRC32, nullptr, reinterpret_cast<const std::uint8_t*>(input.data()), input.size(),
    reinterpret_cast<std::uint8_t*>(output.data()), &position, output.size());
  if (result != LZMA_OK) {
    return error("xz compression failed (liblzma error {})", static_cast<int>(result));
  }
  output.resize(position);
  return output;
}

Expected<std::string> xz_decompress(std::string_view input)
{
  lzma_stream stream = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&stream, UINT64_MAX, 0) != LZMA_OK) {
    return error("cannot start xz decompression");
  }
  std::string output;
  stream.next_in = reinterpret_cast<const std::uint8_t*>(input.data());
  stream.avail_in = input.size();
  char buffer[65536];
  lzma_ret result = LZMA_OK;
  while (result == LZMA_OK) {
    stream.next_out = reinterpret_cast<std::uint8_t*>(buffer);
    stream.avail_out = sizeof(buffer);
    result = lzma_code(&stream, LZMA_FINISH);
    output.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  lzma_end(&stream);
  if (result != LZMA_STREAM_END) {
    return error("corrupt xz data (liblzma error {})", static_cast<int>(result));
  }
  return output;
}

Expected<std::string> zstd_compress(std::string_view input)
{
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  // A content checksum, as the zstd command (and so kbuild) writes one: corruption is caught.
  ZSTD_CCtx_setParameter(context.get(), ZSTD_c_compressionLevel, 19);
  ZSTD_CCtx_setParameter(context.get(), ZSTD_c_checksumFlag, 1);
  std::string output(ZSTD_compressBound(input.size()), '\0');
  const std::size_t size = ZSTD_compress2(context.get(), output.data(), output.size(), input.data(), input.size());
  if (ZSTD_isError(size)) {
    return error("zstd compression failed: {}", ZSTD_getErrorName(size));
  }
  output.resize(size);
  return output;
}

Expected<std::string> zstd_decompress(std::string_view input)
{
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> stream(ZSTD_createDStream(), &ZSTD_freeDStream);
  ZSTD_initDStream(stream.get());
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  std::string output;
  char buffer[65536];
  std::size_t result = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer out{buffer, sizeof(buffer), 0};
    result = ZSTD_decompressStream(stream.get(), &out, &in);
    if (ZSTD_isError(result)) {
      return error("corrupt zstd data: {}", ZSTD_getErrorName(result));
    }
    output.append(buffer, out.pos);
  }
  if (result != 0) {
    return error("truncated zstd data");
  }
  return output;
}

Expected<std::string> gzip_code(std::string_view input, bool compress)
{
  z_stream stream{};
  // 16 + 15: a gzip wrapper (no name, no time stamp: deterministic output).
  const int init = compress ? deflateInit2(&stream, 9, Z_DEFLATED, 16 + 15, 9, Z_DEFAULT_STRATEGY)
                            : inflateInit2(&stream, 16 + 15);
  if (init != Z_OK) {
    return error("cannot start zlib");
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  std::string output;
  char buffer[65536];
  int result = Z_OK;
  while (result == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    result = compress ? deflate(&stream, Z_FINISH) : inflate(&stream, Z_NO_FLUSH);
    output.append(buffer, sizeof(buffer) - stream.avail_out);
    if (!compress && result == Z_BUF_ERROR && stream.avail_in == 0) {
      break;
    }
  }
  compress ? deflateEnd(&stream) : inflateEnd(&stream);
  if (result != Z_STREAM_END) {
    return error("{} failed (zlib error {})", compress ? "gzip compression" : "corrupt gzip data; decompression", result);
  }
  return output;
}

} // namespace

const char* module_suffix(Compression compression)
{
  switch (compression) {
  case Compression::none:
    return ".ko";
  case Compression::xz:
    return ".ko.xz";
  case Compression::zstd:
    return ".ko.zst";
  case Compression::gzip:
    return ".ko.gz";
  }
  return ".ko";
}

Compression kernel_module_compression(const Kernel& kernel)
{
  // The first line names a module, which is enough; the whole file is up to a megabyte,
  // and this runs for every cell.
  if (auto dep = util::read_file(kernel.modules_dir / "modules.dep", 4096)) {
    const auto colon = dep->find(':');
    if (colon != std::string::npos) {
      const std::string_view first(dep->data(), colon);
      if (first.ends_with(".ko.xz")) {
        return Compression::xz;
      }
      if (first.ends_with(".ko.zst")) {
        return Compression::zstd;
      }
      if (first.ends_with(".ko.gz")) {
        return Compression::gzip;
      }
      if (first.ends_with(".ko")) {
        return Compression::none;
      }
    }
  }
  if (kernel.config_enabled("CONFIG_MODULE_COMPRESS_XZ")) {
    return Compression::xz;
  }
  if (kernel.config_enabled("CONFIG_MODULE_COMPRESS_ZSTD")) {
    return Compression::zstd;
  }
  if (kernel.config_enabled("CONFIG_MODULE_COMPRESS_GZIP")) {
    return Compression::gzip;
  }
  return Compression::none;
}

Expected<Compression> choose_compression(const std::string& setting, const Kernel& kernel)
{
  if (setting.empty() || setting == "auto") {
    return kernel_module_compression(kernel);
  }
  if (setting == "none") {
    return Compression::none;
  }
  if (setting == "xz") {
    return Compression::xz;
  }
  if (setting == "zstd") {
    return Compression::zstd;
  }
  if (setting == "gzip") {
    return Compression::gzip;
  }
  return error("unknown compression \"{}\"", setting);
}

Expected<std::string> compress_module(std::string_view module, Compression compression)
{
  switch (compression) {
  case Compression::none:
    return std::string(module);
  case Compression::xz:
    return xz_compress(module);
  case Compression::zstd:
    return zstd_compress(module);
  case Compression::gzip:
    return gzip_code(module, true);
  }
  return std::string(module);
}

Expected<std::string> decompress_module(std::string_view data, Compression compression)
{
  switch (compression) {
  case Compression::none:
    return std::string(data);
  case Compression::xz:
    return xz_decompress(data);
  case Compression::zstd:
    return zstd_decompress(data);
  case Compression::gzip:
    return gzip_code(data, false);
  }
  return std::string(data);
}

} // namespace kmodsync
