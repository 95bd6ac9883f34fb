// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/signing.hpp"

#include "kmodsync/atomic_file.hpp"
#include "kmodsync/file_util.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstring>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_magic = "~Module signature appended~\n";

// The kernel's struct module_signature (include/linux/module_signature.h).
struct ModuleSignatureTrailer
{
  std::uint8_t algo = 0;
  std::uint8_t hash = 0;
  std::uint8_t id_type = 2; // PKEY_ID_PKCS7
  std::uint8_t signer_len = 0;
  std::uint8_t key_id_len = 0;
  std::uint8_t pad[3] = {0, 0, 0};
  std::uint32_t sig_len = 0; // big-endian
};
static_assert(sizeof(ModuleSignatureTrailer) == 12);

std::string openssl_error()
{
  const unsigned long code = ERR_get_error();
  if (code == 0) {
    return "unknown OpenSSL error";
  }
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  ERR_clear_error();
  return buffer;
}

template <typename T, void (*Free)(T*)> struct Deleter
{
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo, CMS_ContentInfo_free>>;

Expected<X509Ptr> read_certificate(const fs::path& path)
{
  auto bytes = util::read_file(path);
  if (!bytes) {
    return std::unexpected(bytes.error());
  }
  BioPtr bio(BIO_new_mem_buf(bytes->data(), static_cast<int>(bytes->size())));
  X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) {
    ERR_clear_error();
    const auto* data = reinterpret_cast<const unsigned char*>(bytes->data());
    certificate.reset(d2i_X509(nullptr, &data, static_cast<long>(bytes->size())));
  }
  if (!certificate) {
    return error("{}: not an X.509 certificate (PEM or DER): {}", path.string(), openssl_error());
  }
  return certificate;
}

} // namespace

struct SigningKey::Impl
{
  KeyPtr key;
  X509Ptr certificate;
};

SigningKey::SigningKey(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

Expected<SigningKey> SigningKey::load(const fs::path& key, const fs::path& certificate)
{
  struct stat info{};
  if (stat(key.c_str(), &info) != 0) {
    return error("signing key {}: {}", key.string(), std::strerror(errno));
  }
  if ((info.st_mode & 077) != 0) {
    return error("signing key {} is readable by others (mode {:04o}): refusing to use it; chmod 600 it",
                 key.string(), info.st_mode & 07777);
  }
  auto impl = std::make_unique<Impl>();
  {
    auto bytes = util::read_file(key);
    if (!bytes) {
      return std::unexpected(bytes.error());
    }
    BioPtr bio(BIO_new_mem_buf(bytes->data(), static_cast<int>(bytes->size())));
    impl->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    OPENSSL_cleanse(bytes->data(), bytes->size());
    if (!impl->key) {
      return error("signing key {}: not a PEM private key (or it is encrypted): {}", key.string(), openssl_error());
    }
  }
  auto cert = read_certificate(certificate);
  if (!cert) {
    return std::unexpected(cert.error());
  }
  impl->certificate = std::move(*cert);
  if (X509_check_private_key(impl->certificate.get(), impl->key.get()) != 1) {
    ERR_clear_error();
    return error("certificate {} does not belong to the signing key {}", certificate.string(), key.string());
  }
  return SigningKey(std::move(impl));
}

std::string_view strip_module_signature(std::string_view module)
{
  if (!module.ends_with(k_magic) || module.size() < k_magic.size() + sizeof(ModuleSignatureTrailer)) {
    return module;
  }
  ModuleSignatureTrailer trailer;
  std::memcpy(&trailer, module.data() + module.size() - k_magic.size() - sizeof(trailer), sizeof(trailer));
  const std::size_t signature = ntohl(trailer.sig_len);
  const std::size_t overhead = k_magic.size() + sizeof(trailer) + signature;
  return overhead > module.size() ? module : module.substr(0, module.size() - overhead);
}

Expected<std::string> SigningKey::sign_module(std::string_view module, const std::string& hash) const
{
  module = strip_module_signature(module);
  const EVP_MD* digest = EVP_get_digestbyname(hash.c_str());
  if (!digest) {
    return error("unknown signature hash \"{}\"", hash);
  }
  BioPtr content(BIO_new_mem_buf(module.data(), static_cast<int>(module.size())));
  constexpr unsigned flags = CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_STREAM;
  CmsPtr cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  if (!cms) {
    return error("cannot start a CMS signature: {}", openssl_error());
  }
  if (!CMS_add1_signer(cms.get(), m_impl->certificate.get(), m_impl->key.get(), digest,
                       CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR)) {
    return error("cannot add the signer: {}", openssl_error());
  }
  if (CMS_final(cms.get(), content.get(), nullptr, CMS_NOCERTS | CMS_BINARY) != 1) {
    return error("cannot sign: {}", openssl_error());
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (i2d_CMS_bio(out.get(), cms.get()) != 1) {
    return error("cannot encode the signature: {}", openssl_error());
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(out.get(), &data);
  ModuleSignatureTrailer trailer;
  trailer.sig_len = htonl(static_cast<std::uint32_t>(length));
  std::string signed_module;
  signed_module.reserve(module.size() + static_cast<std::size_t>(length) + sizeof(trailer) + k_magic.size());
  signed_module.append(module);
  signed_module.append(data, static_cast<std::size_t>(length));
  signed_module.append(reinterpret_cast<const char*>(&trailer), sizeof(trailer));
  signed_module.append(k_magic);
  return signed_module;
}

Expected<void> generate_signing_key(const fs::path& key, const fs::path& certificate, const std::string& common_name)
{
  std::error_code ec;
  for (const auto& path : {key, certificate}) {
    if (fs::exists(path, ec)) {
      return error("{} already exists: keygen never overwrites a key", path.string());
    }
  }
  KeyPtr pkey(EVP_RSA_gen(3072));
  if (!pkey) {
    return error("cannot generate an RSA key: {}", openssl_error());
  }
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 365 * 100);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  // What the kernel's own x509.genkey asks for: a signing-only certificate.
  for (const auto& [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                                   std::pair{NID_key_usage, "digitalSignature"},
                                   std::pair{NID_ext_key_usage, "codeSigning"},
                                   std::pair{NID_subject_key_identifier, "hash"}}) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    if (!extension) {
      return error("cannot build the certificate: {}", openssl_error());
    }
    X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0) {
    return error("cannot self-sign the certificate: {}", openssl_error());
  }

  BioPtr key_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(key_out.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* key_data = nullptr;
  const long key_length = BIO_get_mem_data(key_out.get(), &key_data);
  BioPtr cert_out(BIO_new(BIO_s_mem()));
  i2d_X509_bio(cert_out.get(), cert.get());
  char* cert_data = nullptr;
  const long cert_length = BIO_get_mem_data(cert_out.get(), &cert_data);

  for (const auto& path : {key, certificate}) {
    if (auto made = util::ensure_directory(path.parent_path()); !made) {
      return made;
    }
  }
  auto written = write_file_atomically(key, std::string_view(key_data, static_cast<std::size_t>(key_length)), 0600);
  OPENSSL_cleanse(key_data, static_cast<std::size_t>(key_length));
  if (!written) {
    return written;
  }
  return write_file_atomically(certificate, std::string_view(cert_data, static_cast<std::size_t>(cert_length)), 0644);
}

} // namespace kmodsync
