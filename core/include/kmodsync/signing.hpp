// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "kmodsync/expected.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kmodsync {

// A private key and its X.509 certificate, loaded once per pass. The key's bytes never
// leave libcrypto: they are not copied, printed or logged.
class SigningKey
{
public:
  // --- Interface ---
  // The key is PEM; the certificate PEM or DER. A key file readable by group or others
  // is refused, as is a certificate that does not belong to the key.
  static Expected<SigningKey> load(const std::filesystem::path& key, const std::filesystem::path& certificate);
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  // The module with the kernel's appended signature, as scripts/sign-file makes it: a
  // detached PKCS#7 (CMS) signature in DER naming the signer by issuer and serial, the
  // module_signature trailer and the "~Module signature appended~\n" magic. A module
  // that is already signed is signed afresh (its old signature is cut first).
  Expected<std::string> sign_module(std::string_view module, const std::string& hash) const;

private:
  struct Impl;
  explicit SigningKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// Creates a new RSA-3072 key (PEM, mode 0600) and a self-signed certificate for module
// signing (DER, as mokutil --import wants it), each written atomically. Refuses to
// overwrite either file.
Expected<void> generate_signing_key(const std::filesystem::path& key,
                                    const std::filesystem::path& certificate,
                                    const std::string& common_name);

// The module without an appended signature, if it has one.
std::string_view strip_module_signature(std::string_view module);

} // namespace kmodsync
