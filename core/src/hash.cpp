// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/hash.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>

namespace kmodsync {

struct Hasher::Impl
{
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(context); }
};

Hasher::Hasher() : m_impl(std::make_unique<Impl>())
{
  EVP_DigestInit_ex(m_impl->context, EVP_sha256(), nullptr);
}

Hasher::~Hasher() = default;

Hasher& Hasher::update(std::string_view data)
{
  EVP_DigestUpdate(m_impl->context, data.data(), data.size());
  return *this;
}

Hasher& Hasher::update_field(std::string_view data)
{
  const std::string length = std::to_string(data.size()) + ":";
  update(length);
  return update(data);
}

Expected<void> Hasher::update_file(const std::filesystem::path& path)
{
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return error("cannot open {}: {}", path.string(), std::strerror(errno));
  }
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int saved = errno;
      close(fd);
      return error("cannot read {}: {}", path.string(), std::strerror(saved));
    }
    if (n == 0) {
      break;
    }
    update(std::string_view(buffer, static_cast<std::size_t>(n)));
  }
  close(fd);
  return {};
}

std::string Hasher::hex_digest()
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(m_impl->context, digest, &length);
  static constexpr char hex[] = "0123456789abcdef";
  std::string result;
  result.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    result += hex[digest[i] >> 4];
    result += hex[digest[i] & 0xf];
  }
  return result;
}

Expected<std::string> sha256_file(const std::filesystem::path& path)
{
  Hasher hasher;
  if (auto added = hasher.update_file(path); !added) {
    return std::unexpected(added.error());
  }
  return hasher.hex_digest();
}

std::string sha256_text(std::string_view data)
{
  Hasher hasher;
  hasher.update(data);
  return hasher.hex_digest();
}

} // namespace kmodsync
