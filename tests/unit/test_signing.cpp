// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/expected.hpp"
#include "kmodsync/signing.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::generate_signing_key;
using kmodsync::SigningKey;
using kmodsync::strip_module_signature;
using kmodsync::testing::file_mode;
using kmodsync::testing::read_text;
using kmodsync::testing::shell_output;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

// The error of `result`, or "" when it holds a value: safe to use in a lazily evaluated
// assertion message (doctest stringifies those for passing assertions too under -s).
template <typename T> std::string error_of(const kmodsync::Expected<T>& result)
{
  return result.has_value() ? std::string() : result.error();
}

const std::string k_magic = "~Module signature appended~\n";
// What `kmodsync keygen` passes (core/src/pass_setup.cpp, removal.cpp).
const std::string k_common_name = "kmodsync module signing key";

std::string quoted(const fs::path& path)
{
  return "'" + path.string() + "'";
}

// The exit status of a shell command line (its output is discarded).
int exit_status(const std::string& command_line)
{
  const int status = std::system((command_line + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// One RSA key pair made by generate_signing_key for the whole file: RSA-3072 generation
// takes about a second. Its directory goes at exit.
struct KeyPair
{
  TempDir dir;
  fs::path key = dir / "keys/signing.key";
  fs::path certificate = dir / "keys/signing.crt";
  fs::path certificate_pem = dir / "keys/signing.pem";
  // Removed even when the last test failed: a key is no help in finding out why.
  ~KeyPair()
  {
    std::error_code ec;
    fs::remove_all(dir.path(), ec);
  }
};

const KeyPair& key_pair()
{
  static const std::unique_ptr<KeyPair> pair = [] {
    auto made = std::make_unique<KeyPair>();
    auto generated = generate_signing_key(made->key, made->certificate, k_common_name);
    REQUIRE_MESSAGE(generated.has_value(), error_of(generated));
    shell_output("openssl x509 -inform DER -in " + quoted(made->certificate) + " -out "
                 + quoted(made->certificate_pem));
    return made;
  }();
  return *pair;
}

SigningKey load_ok(const fs::path& key, const fs::path& certificate)
{
  auto loaded = SigningKey::load(key, certificate);
  REQUIRE_MESSAGE(loaded.has_value(), error_of(loaded));
  return std::move(*loaded);
}

// Compiles a relocatable ELF object whose .modinfo holds `fields`, as modpost leaves
// them in a real module (see test_module_info.cpp).
fs::path fake_module(const TempDir& dir, const std::string& file_name, const std::vector<std::string>& fields)
{
  std::string source;
  int index = 0;
  for (const auto& field : fields) {
    source += "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char m"
              + std::to_string(index++) + "[] = \"" + field + "\";\n";
  }
  source += "int fake_function(void) { return 42; }\n";
  write_text(dir / "fake_mod.c", source);
  const fs::path ko = dir / file_name;
  shell_output("gcc -c -o " + quoted(ko) + " " + quoted(dir / "fake_mod.c") + " 2>&1");
  REQUIRE(fs::exists(ko));
  return ko;
}

std::string standard_module(const TempDir& dir)
{
  return read_text(fake_module(dir, "fake_mod.ko",
                               {"vermagic=6.1.0-55-amd64 SMP preempt mod_unload modversions ", "name=fake_mod",
                                "version=1.0", "license=GPL"}));
}

// The size of the DER element at the start of `der`, header included; 0 if malformed.
std::size_t der_size(const std::string& der)
{
  if (der.size() < 2) {
    return 0;
  }
  const auto first = static_cast<unsigned char>(der[1]);
  if (first < 0x80) {
    return 2 + first;
  }
  const std::size_t count = first & 0x7f;
  if (count == 0 || count > 4 || der.size() < 2 + count) {
    return 0;
  }
  std::size_t length = 0;
  for (std::size_t i = 0; i < count; ++i) {
    length = length << 8 | static_cast<unsigned char>(der[2 + i]);
  }
  return 2 + count + length;
}

// The pieces of an appended signature, checked against the kernel's layout
// (include/linux/module_signature.h): module, PKCS#7, 12-byte trailer, magic.
struct Appended
{
  std::string content;
  std::string pkcs7;
};

Appended split_signed(const std::string& signed_module)
{
  REQUIRE(signed_module.size() > k_magic.size() + 12);
  REQUIRE(signed_module.ends_with(k_magic));
  const std::string trailer = signed_module.substr(signed_module.size() - k_magic.size() - 12, 12);
  CHECK(trailer[0] == 0); // algo: unused for PKCS#7
  CHECK(trailer[1] == 0); // hash: unused for PKCS#7
  CHECK(trailer[2] == 2); // id_type: PKEY_ID_PKCS7
  CHECK(trailer[3] == 0); // signer_len
  CHECK(trailer[4] == 0); // key_id_len
  CHECK(trailer.substr(5, 3) == std::string(3, '\0'));
  const auto byte = [&](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(trailer[i])); };
  const std::uint32_t sig_len = byte(8) << 24 | byte(9) << 16 | byte(10) << 8 | byte(11);
  REQUIRE(sig_len > 0);
  REQUIRE(sig_len < signed_module.size() - k_magic.size() - 12);
  const std::size_t content_size = signed_module.size() - k_magic.size() - 12 - sig_len;
  Appended parts{signed_module.substr(0, content_size), signed_module.substr(content_size, sig_len)};
  // A DER SEQUENCE whose length is the whole signature: a ContentInfo, not some other bytes.
  CHECK(parts.pkcs7.starts_with("\x30"));
  CHECK(parts.pkcs7.size() == der_size(parts.pkcs7));
  return parts;
}

// Whether openssl verifies `pkcs7` as a detached signature of `content` by the key pair's
// certificate (the certificate itself is not checked against a CA: it is self-signed).
bool openssl_verifies(const TempDir& dir, const std::string& pkcs7, const std::string& content,
                      const fs::path& certificate_pem)
{
  write_text(dir / "sig.der", pkcs7);
  write_text(dir / "content.bin", content);
  return exit_status("openssl cms -verify -binary -inform DER -in " + quoted(dir / "sig.der") + " -content "
                     + quoted(dir / "content.bin") + " -certfile " + quoted(certificate_pem)
                     + " -nointern -noverify -out /dev/null")
         == 0;
}

std::string modinfo_field(const fs::path& ko, const std::string& field)
{
  std::string value = shell_output("modinfo -F " + field + " " + quoted(ko));
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) {
    value.pop_back();
  }
  return value;
}

} // namespace

TEST_SUITE_BEGIN("signing");

TEST_CASE("generate_signing_key writes a private PEM key and a DER code-signing certificate for it")
{
  const KeyPair& pair = key_pair();
  CHECK(file_mode(pair.key) == 0600);
  const std::string key = read_text(pair.key);
  CHECK(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  CHECK(shell_output("openssl pkey -in " + quoted(pair.key) + " -noout -text").find("Private-Key: (3072 bit")
        != std::string::npos);

  const std::string certificate = read_text(pair.certificate);
  CHECK(certificate.starts_with("\x30\x82")); // DER, not PEM
  CHECK(exit_status("openssl x509 -inform PEM -in " + quoted(pair.certificate) + " -noout") != 0);
  const std::string text = shell_output("openssl x509 -inform DER -in " + quoted(pair.certificate) + " -noout -text");
  CAPTURE(text);
  CHECK(text.find("Subject: CN = " + k_common_name + "\n") != std::string::npos);
  CHECK(text.find("Issuer: CN = " + k_common_name + "\n") != std::string::npos);
  CHECK(text.find("X509v3 Extended Key Usage: \n                Code Signing\n") != std::string::npos);
  CHECK(text.find("X509v3 Key Usage: \n                Digital Signature\n") != std::string::npos);
  CHECK(text.find("X509v3 Basic Constraints: critical\n                CA:FALSE\n") != std::string::npos);
  CHECK(text.find("Signature Algorithm: sha256WithRSAEncryption") != std::string::npos);
  // Self-signed: it verifies against itself.
  CHECK(exit_status("openssl verify -partial_chain -purpose any -CAfile " + quoted(pair.certificate_pem) + " "
                    + quoted(pair.certificate_pem))
        == 0);

  // The certificate carries the key's public half.
  CHECK(shell_output("openssl x509 -inform DER -in " + quoted(pair.certificate) + " -noout -pubkey")
        == shell_output("openssl pkey -in " + quoted(pair.key) + " -pubout"));
}

TEST_CASE("generate_signing_key never overwrites a key or a certificate")
{
  const KeyPair& pair = key_pair();
  const std::string key_before = read_text(pair.key);
  const std::string certificate_before = read_text(pair.certificate);

  const auto again = generate_signing_key(pair.key, pair.certificate, "another");
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error() == pair.key.string() + " already exists: keygen never overwrites a key");
  CHECK(read_text(pair.key) == key_before);
  CHECK(read_text(pair.certificate) == certificate_before);

  // Only the certificate exists: still refused, and no key is left behind.
  const TempDir dir;
  const auto half = generate_signing_key(dir / "new.key", pair.certificate, "another");
  REQUIRE_FALSE(half.has_value());
  CHECK(half.error() == pair.certificate.string() + " already exists: keygen never overwrites a key");
  CHECK_FALSE(fs::exists(dir / "new.key"));
  CHECK(read_text(pair.certificate) == certificate_before);
}

TEST_CASE("SigningKey::load accepts the certificate as DER or PEM")
{
  const KeyPair& pair = key_pair();
  CHECK(SigningKey::load(pair.key, pair.certificate).has_value());
  CHECK(SigningKey::load(pair.key, pair.certificate_pem).has_value());
}

TEST_CASE("SigningKey::load refuses a key file that group or others can read")
{
  const KeyPair& pair = key_pair();
  const TempDir dir;
  for (const mode_t mode : {mode_t{0644}, mode_t{0640}, mode_t{0604}, mode_t{0601}}) {
    CAPTURE(mode);
    const fs::path key = dir / "open.key";
    write_text(key, read_text(pair.key));
    REQUIRE(chmod(key.c_str(), mode) == 0);
    const auto loaded = SigningKey::load(key, pair.certificate);
    REQUIRE_FALSE(loaded.has_value());
    CHECK(loaded.error().find(key.string()) != std::string::npos);
    CHECK(loaded.error().find("chmod 600") != std::string::npos);
  }
  // Owner-only modes are fine.
  const fs::path key = dir / "closed.key";
  write_text(key, read_text(pair.key));
  REQUIRE(chmod(key.c_str(), 0400) == 0);
  const auto loaded = SigningKey::load(key, pair.certificate);
  CHECK_MESSAGE(loaded.has_value(), error_of(loaded));
}

TEST_CASE("SigningKey::load refuses a certificate of another key")
{
  const KeyPair& pair = key_pair();
  const TempDir dir;
  // An EC key pair made by openssl: quick, and a valid certificate, just not this key's.
  shell_output("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=other -days 1"
               " -keyout "
               + quoted(dir / "other.key") + " -out " + quoted(dir / "other.pem") + " 2>&1");
  const auto loaded = SigningKey::load(pair.key, dir / "other.pem");
  REQUIRE_FALSE(loaded.has_value());
  CHECK(loaded.error() == "certificate " + (dir / "other.pem").string() + " does not belong to the signing key "
                            + pair.key.string());
}

TEST_CASE("SigningKey::load names the file that is missing, not a key or not a certificate")
{
  const KeyPair& pair = key_pair();
  const TempDir dir;
  const auto missing_key = SigningKey::load(dir / "missing.key", pair.certificate);
  REQUIRE_FALSE(missing_key.has_value());
  CHECK(missing_key.error().starts_with("signing key " + (dir / "missing.key").string() + ": "));

  write_text(dir / "text.key", "not a key\n");
  REQUIRE(chmod((dir / "text.key").c_str(), 0600) == 0);
  const auto text_key = SigningKey::load(dir / "text.key", pair.certificate);
  REQUIRE_FALSE(text_key.has_value());
  CHECK(text_key.error().starts_with("signing key " + (dir / "text.key").string() + ": not a PEM private key"));

  const auto missing_cert = SigningKey::load(pair.key, dir / "missing.crt");
  REQUIRE_FALSE(missing_cert.has_value());
  CHECK(missing_cert.error().find((dir / "missing.crt").string()) != std::string::npos);

  write_text(dir / "text.crt", "not a certificate\n");
  const auto text_cert = SigningKey::load(pair.key, dir / "text.crt");
  REQUIRE_FALSE(text_cert.has_value());
  CHECK(text_cert.error().starts_with((dir / "text.crt").string() + ": not an X.509 certificate"));
}

TEST_CASE("sign_module appends a PKCS#7 signature in the kernel's format that openssl verifies")
{
  const KeyPair& pair = key_pair();
  const SigningKey key = load_ok(pair.key, pair.certificate);
  const TempDir dir;
  const std::string module = standard_module(dir);

  for (const std::string hash : {"sha256", "sha512"}) {
    CAPTURE(hash);
    auto signed_module = key.sign_module(module, hash);
    REQUIRE_MESSAGE(signed_module.has_value(), error_of(signed_module));
    CHECK(signed_module->starts_with(module));
    const Appended parts = split_signed(*signed_module);
    CHECK(parts.content == module);

    // What the kernel's own tools read from it.
    write_text(dir / "signed.ko", *signed_module);
    CHECK(modinfo_field(dir / "signed.ko", "signer") == k_common_name);
    CHECK(modinfo_field(dir / "signed.ko", "sig_hashalgo") == hash);
    CHECK(modinfo_field(dir / "signed.ko", "name") == "fake_mod");

    // Detached, without the certificate, signer named by issuer and serial (as sign-file).
    write_text(dir / "sig.der", parts.pkcs7);
    const std::string printed =
      shell_output("openssl cms -cmsout -print -inform DER -in " + quoted(dir / "sig.der"));
    CAPTURE(printed);
    CHECK(printed.find("eContent: <ABSENT>") != std::string::npos);
    CHECK(printed.find("certificates:\n      <ABSENT>") != std::string::npos);
    CHECK(printed.find("issuerAndSerialNumber") != std::string::npos);
    // No signed attributes (sign-file's default): the digest is over the module itself.
    CHECK(printed.find(" signedAttrs:\n          <ABSENT>") != std::string::npos);
    CHECK(printed.find("messageDigest") == std::string::npos);

    CHECK(openssl_verifies(dir, parts.pkcs7, parts.content, pair.certificate_pem));
    std::string tampered = parts.content;
    tampered[tampered.size() / 2] ^= 0x01;
    CHECK_FALSE(openssl_verifies(dir, parts.pkcs7, tampered, pair.certificate_pem));
  }
}

TEST_CASE("signing a signed module replaces its signature instead of stacking a second one")
{
  const KeyPair& pair = key_pair();
  const SigningKey key = load_ok(pair.key, pair.certificate);
  const TempDir dir;
  const std::string module = standard_module(dir);

  auto once = key.sign_module(module, "sha256");
  REQUIRE(once.has_value());
  auto twice = key.sign_module(*once, "sha256");
  REQUIRE(twice.has_value());
  // RSA PKCS#1 v1.5 without signed attributes is deterministic: the same bytes.
  CHECK(twice->size() == once->size());
  CHECK(*twice == *once);
  CHECK(split_signed(*twice).content == module);

  // Re-signing with another hash also starts from the bare module.
  auto rehashed = key.sign_module(*once, "sha512");
  REQUIRE(rehashed.has_value());
  const Appended parts = split_signed(*rehashed);
  CHECK(parts.content == module);
  CHECK(openssl_verifies(dir, parts.pkcs7, module, pair.certificate_pem));
}

TEST_CASE("strip_module_signature cuts exactly the appended signature")
{
  const KeyPair& pair = key_pair();
  const SigningKey key = load_ok(pair.key, pair.certificate);
  const TempDir dir;
  const std::string module = standard_module(dir);
  auto signed_module = key.sign_module(module, "sha256");
  REQUIRE(signed_module.has_value());

  CHECK(strip_module_signature(*signed_module) == module);
  CHECK(strip_module_signature(module) == module);
  CHECK(strip_module_signature("") == "");
  // Only the magic: too short for a trailer, left as it is.
  CHECK(strip_module_signature(k_magic) == k_magic);
  // A trailer claiming a signature longer than the file is not believed.
  std::string bogus = "short" + std::string("\0\0\x02\0\0\0\0\0\x7f\xff\xff\xff", 12) + k_magic;
  CHECK(strip_module_signature(bogus) == bogus);
}

TEST_CASE("sign_module refuses a hash it does not know")
{
  const KeyPair& pair = key_pair();
  const SigningKey key = load_ok(pair.key, pair.certificate);
  const auto signed_module = key.sign_module("module bytes", "sha3000");
  REQUIRE_FALSE(signed_module.has_value());
  CHECK(signed_module.error() == "unknown signature hash \"sha3000\"");
}

TEST_CASE("an EC key and PEM certificate made by openssl sign verifiable modules too")
{
  const TempDir dir;
  shell_output("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=ec signer'"
               " -days 1 -addext extendedKeyUsage=codeSigning -keyout "
               + quoted(dir / "ec.key") + " -out " + quoted(dir / "ec.pem") + " 2>&1");
  REQUIRE(chmod((dir / "ec.key").c_str(), 0600) == 0);
  const SigningKey key = load_ok(dir / "ec.key", dir / "ec.pem");
  const std::string module = standard_module(dir);
  auto signed_module = key.sign_module(module, "sha256");
  REQUIRE_MESSAGE(signed_module.has_value(), error_of(signed_module));
  const Appended parts = split_signed(*signed_module);
  CHECK(parts.content == module);
  CHECK(openssl_verifies(dir, parts.pkcs7, module, dir / "ec.pem"));
  write_text(dir / "signed.ko", *signed_module);
  CHECK(modinfo_field(dir / "signed.ko", "signer") == "ec signer");
}

TEST_SUITE_END();
