// SPDX-License-Identifier: GPL-2.0-or-later
// Config::load: the input as ROOT/etc/kmodsync/kmodsync.conf and as DKMS's
// ROOT/etc/dkms/framework.conf, together and framework.conf alone.
#include "fuzz_support.hpp"

#include "kmodsync/config.hpp"

using namespace kmodsync;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text = fuzz::as_text(data, size);
  const auto root = fuzz::fresh_dir("root");
  fuzz::write_file(root / "etc/kmodsync/kmodsync.conf", text);
  fuzz::write_file(root / "etc/dkms/framework.conf", text);
  if (auto both = Config::load(Root(root)); !both) {
    // Every error names the file and line it is about.
    fuzz::require(both.error().starts_with("/etc/kmodsync/kmodsync.conf:")
                    || both.error().starts_with("/etc/dkms/framework.conf:"),
                  both.error());
  }
  std::filesystem::remove(root / "etc/kmodsync/kmodsync.conf");
  if (auto framework = Config::load(Root(root)); !framework) {
    // framework.conf is bash: what is not a plain setting is not kmodsync's to refuse; only
    // a key without its certificate (or the reverse) is an error.
    fuzz::require(framework.error().starts_with("/etc/dkms/framework.conf:")
                    && framework.error().find("a signing key needs a certificate") != std::string::npos,
                  framework.error());
  }
  return 0;
}
