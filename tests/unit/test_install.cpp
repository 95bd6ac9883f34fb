// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/compression.hpp"
#include "kmodsync/dkms_spec.hpp"
#include "kmodsync/expected.hpp"
#include "kmodsync/install.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/root.hpp"
#include "kmodsync/signing.hpp"
#include "kmodsync/state.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::CellRecord;
using kmodsync::Compression;
using kmodsync::decompress_module;
using kmodsync::detect_distribution;
using kmodsync::files_intact;
using kmodsync::InstalledFile;
using kmodsync::install_fingerprint;
using kmodsync::install_location;
using kmodsync::InstallSettings;
using kmodsync::Kernel;
using kmodsync::ModuleRecord;
using kmodsync::ModuleSpec;
using kmodsync::PendingChange;
using kmodsync::place_modules;
using kmodsync::plan_placement;
using kmodsync::prepare_install;
using kmodsync::PreparedInstall;
using kmodsync::Root;
using kmodsync::SigningKey;
using kmodsync::uninstall_cell;
using kmodsync::with_stat;
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

const std::string k_release = "6.1.0-55-amd64";
const std::string k_vermagic = "6.1.0-55-amd64 SMP preempt mod_unload modversions ";
const std::string k_modules = "/usr/lib/modules/6.1.0-55-amd64";
using KernelConfig = std::map<std::string, std::string>;

std::string quoted(const fs::path& path)
{
  return "'" + path.string() + "'";
}

// Compiles a relocatable ELF object at `ko` whose .modinfo holds `fields`, as modpost
// leaves them in a real module (see test_module_info.cpp).
fs::path fake_module(const fs::path& ko, const std::vector<std::string>& fields, const std::string& flags = "")
{
  std::string source;
  int index = 0;
  for (const auto& field : fields) {
    source += "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char m"
              + std::to_string(index++) + "[] = \"" + field + "\";\n";
  }
  source += "int fake_function(void) { return 42; }\n";
  const fs::path c_file = fs::path(ko).replace_extension(".c");
  write_text(c_file, source);
  shell_output("gcc -c " + flags + " -o " + quoted(ko) + " " + quoted(c_file) + " 2>&1");
  REQUIRE(fs::exists(ko));
  return ko;
}

fs::path versioned_module(const fs::path& ko, const std::string& name, const std::string& version,
                          const std::string& vermagic = k_vermagic)
{
  return fake_module(ko, {"vermagic=" + vermagic, "name=" + name, "version=" + version, "license=GPL"});
}

// A root with one kernel (ROOT/usr/lib/modules/KV with an in-tree kernel/ dir) and a build
// directory beside it.
struct Sandbox
{
  TempDir dir;
  fs::path root_dir = dir / "root";
  fs::path build_dir = dir / "build";
  Root root{root_dir};
  Kernel kernel;

  explicit Sandbox(KernelConfig config = {})
  {
    kernel.release = k_release;
    kernel.arch = "x86_64";
    kernel.modules_dir = root(k_modules);
    kernel.config = std::move(config);
    fs::create_directories(kernel.modules_dir / "kernel/drivers");
    fs::create_directories(build_dir);
  }

  InstallSettings settings(const std::string& distribution = "debian") const
  {
    InstallSettings settings;
    settings.root = root;
    settings.distribution = distribution;
    settings.key_identity = "unsigned";
    return settings;
  }

  // fake/1.0 building fake_mod.ko, version 1.0.
  fs::path built(const std::string& version = "1.0") const
  {
    return versioned_module(build_dir / "fake_mod.ko", "fake_mod", version);
  }
};

ModuleSpec fake_spec(const std::string& dest_location = "/kernel/drivers/misc", bool strip = false)
{
  ModuleSpec spec;
  spec.name = "fake";
  spec.version = "1.0";
  spec.modules.push_back(ModuleRecord{"fake_mod", "", "fake_mod", dest_location, strip});
  return spec;
}

PreparedInstall prepare_ok(const InstallSettings& settings, const ModuleSpec& spec, const Kernel& kernel,
                           const std::vector<fs::path>& built, const std::set<std::string>& ours = {})
{
  auto prepared = prepare_install(settings, spec, kernel, built, ours);
  REQUIRE_MESSAGE(prepared.has_value(), error_of(prepared));
  return std::move(*prepared);
}

// Every file and directory under `dir` with its content, to see that nothing changed.
std::map<std::string, std::string> snapshot(const fs::path& dir)
{
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    files[entry.path().string()] = entry.is_regular_file() ? read_text(entry.path()) : std::string("<dir>");
  }
  return files;
}

std::string sha256sum(const fs::path& file)
{
  return shell_output("sha256sum " + quoted(file)).substr(0, 64);
}

// One key pair for the whole file: RSA-3072 generation takes about a second.
struct KeyPair
{
  TempDir dir;
  fs::path key = dir / "signing.key";
  fs::path certificate = dir / "signing.crt";
  std::unique_ptr<SigningKey> loaded;
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
    auto generated = kmodsync::generate_signing_key(made->key, made->certificate, "kmodsync module signing key");
    REQUIRE_MESSAGE(generated.has_value(), error_of(generated));
    auto key = SigningKey::load(made->key, made->certificate);
    REQUIRE_MESSAGE(key.has_value(), error_of(key));
    made->loaded = std::make_unique<SigningKey>(std::move(*key));
    return made;
  }();
  return *pair;
}

std::string modinfo_field(const fs::path& ko, const std::string& field)
{
  std::string value = shell_output("modinfo -F " + field + " " + quoted(ko));
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) {
    value.pop_back();
  }
  return value;
}

// Installs fake_mod (version 1.0, uncompressed) for Debian: what the placement tests start from.
struct Installed
{
  PreparedInstall prepared;
  PendingChange change;
  CellRecord record;
};

Installed install(const Sandbox& box, const std::set<std::string>& ours = {},
                  const std::vector<InstalledFile>& previous = {})
{
  Installed result;
  result.prepared = prepare_ok(box.settings(), fake_spec(), box.kernel, {box.built()}, ours);
  result.change = plan_placement(box.root, result.prepared, k_release, ours, previous);
  const auto placed = place_modules(box.root, result.prepared, result.change);
  REQUIRE_MESSAGE(placed.has_value(), error_of(placed));
  result.record.module = "fake";
  result.record.version = "1.0";
  result.record.kernel = k_release;
  result.record.outcome = kmodsync::Outcome::installed;
  for (const auto& file : result.change.files) {
    result.record.files.push_back(with_stat(box.root, file));
  }
  result.record.displaced = result.change.displaced;
  return result;
}

} // namespace

TEST_SUITE_BEGIN("install");

TEST_CASE("install_location follows DKMS 3's per-distribution override")
{
  const std::string dest = "/kernel/drivers/x";
  CHECK(install_location("debian", dest) == "updates/dkms");
  CHECK(install_location("ubuntu debian", dest) == "updates/dkms");
  CHECK(install_location("linuxmint ubuntu debian", dest) == "updates/dkms");
  CHECK(install_location("arch", dest) == "updates/dkms");
  CHECK(install_location("manjaro arch", dest) == "updates/dkms");
  CHECK(install_location("fedora", dest) == "extra");
  CHECK(install_location("rhel", dest) == "extra");
  CHECK(install_location("almalinux rhel centos fedora", dest) == "extra");
  CHECK(install_location("sles", dest) == "updates");
  CHECK(install_location("opensuse-leap suse opensuse", dest) == "updates");
  // Elsewhere DEST_MODULE_LOCATION as written, relative to the modules directory.
  CHECK(install_location("gentoo", dest) == "kernel/drivers/x");
  CHECK(install_location("unknown", "/extra") == "extra");
  CHECK(install_location("", "//updates/dkms") == "updates/dkms");
  CHECK(install_location("gentoo", "") == "");
  // Whole words only.
  CHECK(install_location("notdebian", dest) == "kernel/drivers/x");
}

TEST_CASE("detect_distribution reads ID and ID_LIKE of the root's os-release")
{
  const TempDir dir;
  write_text(dir / "usr/lib/os-release", "NAME=\"openSUSE Leap\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n");
  CHECK(detect_distribution(Root(dir.path())) == "opensuse-leap suse opensuse");
  // /etc/os-release comes first.
  write_text(dir / "etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
  CHECK(detect_distribution(Root(dir.path())) == "debian");
}

TEST_CASE("install_fingerprint changes with what changes the installed bytes")
{
  const Sandbox box(KernelConfig{{"CONFIG_MODULE_COMPRESS_XZ", "y"}, {"CONFIG_MODULE_SIG_HASH", "sha512"}});
  InstallSettings settings = box.settings("debian");
  CHECK(install_fingerprint(settings, box.kernel)
        == "location=updates/dkms;compression=.ko.xz;signer=unsigned;hash=-;force=false");
  settings.compression = "none";
  settings.force = true;
  settings.distribution = "fedora";
  CHECK(install_fingerprint(settings, box.kernel)
        == "location=extra;compression=.ko;signer=unsigned;hash=-;force=true");
  settings.key = key_pair().loaded.get();
  settings.key_identity = "c0ffee";
  CHECK(install_fingerprint(settings, box.kernel)
        == "location=extra;compression=.ko;signer=c0ffee;hash=sha512;force=true");
  settings.signing_hash = "sha384";
  CHECK(install_fingerprint(settings, box.kernel)
        == "location=extra;compression=.ko;signer=c0ffee;hash=sha384;force=true");
}

TEST_CASE("prepare_install compresses as the kernel's .config says and places under updates/dkms on Debian")
{
  const Sandbox box(KernelConfig{{"CONFIG_MODULE_COMPRESS_XZ", "y"}});
  const fs::path built = box.built();
  const std::string module = read_text(built);
  const auto before = snapshot(box.root_dir);

  const PreparedInstall prepared = prepare_ok(box.settings("debian"), fake_spec(), box.kernel, {built});
  REQUIRE(prepared.modules.size() == 1);
  CHECK(prepared.obsolete_reason == "");
  const auto& result = prepared.modules[0];
  CHECK(result.dest == box.kernel.modules_dir / "updates/dkms/fake_mod.ko.xz");
  CHECK(box.root.managed(result.dest) == k_modules + "/updates/dkms/fake_mod.ko.xz");

  // Real xz data of the module, and the hash is the hash of those bytes.
  write_text(box.dir / "out.ko.xz", result.content);
  CHECK(shell_output("xz -dc " + quoted(box.dir / "out.ko.xz")) == module);
  CHECK(result.sha256 == sha256sum(box.dir / "out.ko.xz"));
  // Unsigned: no signature appended.
  CHECK_FALSE(module.ends_with("~Module signature appended~\n"));

  // Nothing is written under the root yet, and the built file is as it was.
  CHECK(snapshot(box.root_dir) == before);
  CHECK(read_text(built) == module);
}

TEST_CASE("prepare_install: other distributions, forced compression, an uncompressed kernel")
{
  const Sandbox box;
  const fs::path built = box.built();
  const std::string module = read_text(built);

  const PreparedInstall fedora = prepare_ok(box.settings("fedora"), fake_spec(), box.kernel, {built});
  REQUIRE(fedora.modules.size() == 1);
  CHECK(fedora.modules[0].dest == box.kernel.modules_dir / "extra/fake_mod.ko");
  CHECK(fedora.modules[0].content == module);

  const PreparedInstall gentoo = prepare_ok(box.settings("gentoo"), fake_spec("/kernel/drivers/misc"), box.kernel,
                                            {built});
  REQUIRE(gentoo.modules.size() == 1);
  CHECK(gentoo.modules[0].dest == box.kernel.modules_dir / "kernel/drivers/misc/fake_mod.ko");

  InstallSettings zstd = box.settings("debian");
  zstd.compression = "zstd";
  const PreparedInstall forced = prepare_ok(zstd, fake_spec(), box.kernel, {built});
  REQUIRE(forced.modules.size() == 1);
  CHECK(forced.modules[0].dest == box.kernel.modules_dir / "updates/dkms/fake_mod.ko.zst");
  write_text(box.dir / "out.ko.zst", forced.modules[0].content);
  CHECK(shell_output("zstd -q -dc " + quoted(box.dir / "out.ko.zst")) == module);

  InstallSettings bogus = box.settings("debian");
  bogus.compression = "lz4";
  const auto refused = prepare_install(bogus, fake_spec(), box.kernel, {built}, {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == "unknown compression \"lz4\"");
}

TEST_CASE("prepare_install follows modules.dep over .config")
{
  const Sandbox box(KernelConfig{{"CONFIG_MODULE_COMPRESS_XZ", "y"}});
  write_text(box.kernel.modules_dir / "modules.dep", "kernel/drivers/net/dummy.ko.zst:\n");
  const PreparedInstall prepared = prepare_ok(box.settings("debian"), fake_spec(), box.kernel, {box.built()});
  REQUIRE(prepared.modules.size() == 1);
  CHECK(prepared.modules[0].dest == box.kernel.modules_dir / "updates/dkms/fake_mod.ko.zst");
}

TEST_CASE("prepare_install refuses a module built for another kernel or of another name, naming the file")
{
  const Sandbox box;
  const fs::path other_kernel =
    versioned_module(box.build_dir / "fake_mod.ko", "fake_mod", "1.0", "6.12.107+deb12-amd64 SMP mod_unload ");
  const auto wrong_kernel = prepare_install(box.settings(), fake_spec(), box.kernel, {other_kernel}, {});
  REQUIRE_FALSE(wrong_kernel.has_value());
  CHECK(wrong_kernel.error().starts_with(other_kernel.string() + " was built for another kernel"));

  const fs::path other_name = versioned_module(box.build_dir / "fake_mod.ko", "other_mod", "1.0");
  const auto wrong_name = prepare_install(box.settings(), fake_spec(), box.kernel, {other_name}, {});
  REQUIRE_FALSE(wrong_name.has_value());
  CHECK(wrong_name.error().starts_with(other_name.string() + " is module \"other_mod\""));
}

TEST_CASE("prepare_install signs with the settings' key, with the kernel's hash unless one is set")
{
  const Sandbox box(KernelConfig{{"CONFIG_MODULE_COMPRESS_XZ", "y"}, {"CONFIG_MODULE_SIG_HASH", "sha512"}});
  const fs::path built = box.built();
  const std::string module = read_text(built);
  InstallSettings settings = box.settings("debian");
  settings.key = key_pair().loaded.get();
  settings.key_identity = "test";

  const PreparedInstall by_kernel = prepare_ok(settings, fake_spec(), box.kernel, {built});
  REQUIRE(by_kernel.modules.size() == 1);
  CHECK(by_kernel.modules[0].dest == box.kernel.modules_dir / "updates/dkms/fake_mod.ko.xz");
  // Signed first, then compressed: the signature covers the uncompressed module, as the
  // kernel checks it after decompressing.
  auto signed_module = decompress_module(by_kernel.modules[0].content, Compression::xz);
  REQUIRE_MESSAGE(signed_module.has_value(), error_of(signed_module));
  CHECK(signed_module->starts_with(module));
  CHECK(signed_module->ends_with("~Module signature appended~\n"));
  CHECK(kmodsync::strip_module_signature(*signed_module) == module);
  write_text(box.dir / "signed.ko", *signed_module);
  CHECK(modinfo_field(box.dir / "signed.ko", "signer") == "kmodsync module signing key");
  CHECK(modinfo_field(box.dir / "signed.ko", "sig_hashalgo") == "sha512");
  // modinfo reads the compressed file the same way.
  write_text(box.dir / "signed.ko.xz", by_kernel.modules[0].content);
  CHECK(modinfo_field(box.dir / "signed.ko.xz", "signer") == "kmodsync module signing key");

  settings.signing_hash = "sha384";
  const PreparedInstall by_setting = prepare_ok(settings, fake_spec(), box.kernel, {built});
  REQUIRE(by_setting.modules.size() == 1);
  write_text(box.dir / "signed384.ko.xz", by_setting.modules[0].content);
  CHECK(modinfo_field(box.dir / "signed384.ko.xz", "sig_hashalgo") == "sha384");

  // Without CONFIG_MODULE_SIG_HASH and without a setting: sha256.
  const Sandbox plain;
  InstallSettings plain_settings = plain.settings("debian");
  plain_settings.key = key_pair().loaded.get();
  const PreparedInstall by_default = prepare_ok(plain_settings, fake_spec(), plain.kernel, {plain.built()});
  REQUIRE(by_default.modules.size() == 1);
  write_text(plain.dir / "signed.ko", by_default.modules[0].content);
  CHECK(modinfo_field(plain.dir / "signed.ko", "sig_hashalgo") == "sha256");
}

TEST_CASE("prepare_install strips debug information when STRIP is on, and only then")
{
  const Sandbox box;
  const std::vector<std::string> fields = {"vermagic=" + k_vermagic, "name=fake_mod", "version=1.0"};
  const auto has_debug_info = [&](const std::string& content) {
    write_text(box.dir / "check.ko", content);
    return shell_output("readelf -S --wide " + quoted(box.dir / "check.ko")).find(".debug_info") != std::string::npos;
  };

  const fs::path kept = fake_module(box.build_dir / "fake_mod.ko", fields, "-g");
  REQUIRE(has_debug_info(read_text(kept)));
  const PreparedInstall unstripped = prepare_ok(box.settings(), fake_spec("/extra", false), box.kernel, {kept});
  REQUIRE(unstripped.modules.size() == 1);
  CHECK(has_debug_info(unstripped.modules[0].content));

  const fs::path stripped_source = fake_module(box.build_dir / "fake_mod.ko", fields, "-g");
  const PreparedInstall stripped =
    prepare_ok(box.settings(), fake_spec("/extra", true), box.kernel, {stripped_source});
  REQUIRE(stripped.modules.size() == 1);
  CHECK_FALSE(has_debug_info(stripped.modules[0].content));
  // Still the same module.
  CHECK(modinfo_field(box.dir / "check.ko", "name") == "fake_mod");
  CHECK(modinfo_field(box.dir / "check.ko", "vermagic") == k_vermagic.substr(0, k_vermagic.size() - 1));
}

TEST_CASE("prepare_install finds a newer module of the same name elsewhere in the kernel's tree")
{
  const Sandbox box;
  const fs::path foreign = box.kernel.modules_dir / "kernel/drivers/fake_mod.ko";
  versioned_module(foreign, "fake_mod", "2.0");
  fs::remove(fs::path(foreign).replace_extension(".c"));
  const fs::path built = box.built("1.0");

  const PreparedInstall obsolete = prepare_ok(box.settings(), fake_spec(), box.kernel, {built});
  CHECK(obsolete.obsolete_reason
        == k_modules + "/kernel/drivers/fake_mod.ko has version 2.0, newer than fake/1.0's 1.0"
                       " (--force installs it anyway)");
  // The module is still prepared: the caller decides.
  CHECK(obsolete.modules.size() == 1);

  InstallSettings forced = box.settings();
  forced.force = true;
  CHECK(prepare_ok(forced, fake_spec(), box.kernel, {built}).obsolete_reason == "");

  // A file kmodsync installed itself does not count.
  CHECK(prepare_ok(box.settings(), fake_spec(), box.kernel, {built}, {k_modules + "/kernel/drivers/fake_mod.ko"})
          .obsolete_reason
        == "");

  // Nor does an older or the same version.
  for (const std::string version : {"0.9", "1.0"}) {
    CAPTURE(version);
    versioned_module(foreign, "fake_mod", version);
    CHECK(prepare_ok(box.settings(), fake_spec(), box.kernel, {built}).obsolete_reason == "");
  }
}

TEST_CASE("prepare_install's newer-module check reads compressed and dash-named modules too")
{
  const Sandbox box;
  const fs::path built = box.built("1.0");
  // As Debian ships in-tree modules: xz with CRC32, and the file name with '-'.
  const fs::path foreign = box.kernel.modules_dir / "kernel/drivers/misc/fake-mod.ko";
  versioned_module(foreign, "fake_mod", "10.1");
  fs::remove(fs::path(foreign).replace_extension(".c"));
  shell_output("xz --check=crc32 " + quoted(foreign));
  REQUIRE(fs::exists(foreign.string() + ".xz"));

  CHECK(prepare_ok(box.settings(), fake_spec(), box.kernel, {built}).obsolete_reason
        == k_modules + "/kernel/drivers/misc/fake-mod.ko.xz has version 10.1, newer than fake/1.0's 1.0"
                       " (--force installs it anyway)");

  // A module of another name is no concern, however new.
  fs::remove(foreign.string() + ".xz");
  versioned_module(box.kernel.modules_dir / "kernel/drivers/misc/fake_mod2.ko", "fake_mod2", "99");
  CHECK(prepare_ok(box.settings(), fake_spec(), box.kernel, {built}).obsolete_reason == "");
}

TEST_CASE("plan_placement lists the files and which foreign files would be displaced, touching nothing")
{
  const Sandbox box(KernelConfig{{"CONFIG_MODULE_COMPRESS_XZ", "y"}});
  const PreparedInstall prepared = prepare_ok(box.settings(), fake_spec(), box.kernel, {box.built()});
  const std::string dest = k_modules + "/updates/dkms/fake_mod.ko.xz";

  const PendingChange empty_slot = plan_placement(box.root, prepared, k_release, {}, {});
  CHECK(empty_slot.kernel == k_release);
  REQUIRE(empty_slot.files.size() == 1);
  CHECK(empty_slot.files[0].path == dest);
  CHECK(empty_slot.files[0].sha256 == prepared.modules[0].sha256);
  CHECK(empty_slot.displaced.empty());

  write_text(box.root(dest), "a module DKMS installed\n");
  const auto before = snapshot(box.root_dir);
  const PendingChange foreign = plan_placement(box.root, prepared, k_release, {}, {});
  REQUIRE(foreign.displaced.size() == 1);
  CHECK(foreign.displaced[0].original == dest);
  CHECK(foreign.displaced[0].backup == "/var/lib/kmodsync/displaced/" + k_release + dest);
  CHECK(foreign.displaced[0].sha256 == sha256sum(box.root(dest)));
  CHECK(snapshot(box.root_dir) == before);

  // kmodsync's own file is replaced, not displaced.
  CHECK(plan_placement(box.root, prepared, k_release, {dest}, {}).displaced.empty());
  CHECK(snapshot(box.root_dir) == before);

  // Every file of the previous install leaves the record: replaced or dropped.
  const std::vector<InstalledFile> previous = {{dest, "aa", 1, 2}, {k_modules + "/updates/dkms/old.ko", "bb", 3, 4}};
  const PendingChange again = plan_placement(box.root, prepared, k_release, {dest}, previous);
  REQUIRE(again.removing.size() == 2);
  CHECK(again.removing[0].path == dest);
  CHECK(again.removing[1].path == k_modules + "/updates/dkms/old.ko");
  CHECK(again.removing[1].sha256 == "bb");
  CHECK(again.restoring.empty());
}

TEST_CASE("uninstall_change removes the record's files and restores its displaced originals")
{
  CellRecord record;
  record.module = "fake";
  record.version = "1.0";
  record.kernel = k_release;
  record.files = {{k_modules + "/updates/dkms/fake_mod.ko", "aa", 1, 2}};
  record.displaced = {{k_modules + "/updates/dkms/fake_mod.ko",
                       "/var/lib/kmodsync/displaced/" + k_release + k_modules + "/updates/dkms/fake_mod.ko", "cc"}};
  const PendingChange change = kmodsync::uninstall_change(record);
  CHECK(change.module == "fake");
  CHECK(change.version == "1.0");
  CHECK(change.kernel == k_release);
  CHECK(change.files.empty());
  CHECK(change.displaced.empty());
  REQUIRE(change.removing.size() == 1);
  CHECK(change.removing[0].path == record.files[0].path);
  CHECK(change.removing[0].sha256 == "aa");
  REQUIRE(change.restoring.size() == 1);
  CHECK(change.restoring[0].original == record.displaced[0].original);
  CHECK(change.restoring[0].backup == record.displaced[0].backup);
}

TEST_CASE("place_modules moves a foreign file aside byte for byte; uninstall_cell puts it back")
{
  const Sandbox box;
  const std::string dest = k_modules + "/updates/dkms/fake_mod.ko";
  const std::string original = std::string("\x7f" "ELF original module from DKMS\0\xff binary", 40);
  write_text(box.root(dest), original);

  const Installed installed = install(box);
  REQUIRE(installed.change.displaced.size() == 1);
  const std::string backup = "/var/lib/kmodsync/displaced/" + k_release + dest;
  CHECK(read_text(box.root(backup)) == original);
  CHECK(read_text(box.root(dest)) == installed.prepared.modules[0].content);
  CHECK(file_mode(box.root(dest)) == 0644);
  CHECK(sha256sum(box.root(dest)) == installed.record.files[0].sha256);

  const auto warnings = uninstall_cell(box.root, installed.record);
  CHECK(warnings.empty());
  CHECK(read_text(box.root(dest)) == original);
  CHECK_FALSE(fs::exists(box.root(backup)));
}

TEST_CASE("uninstall_cell removes what it installed and nothing else")
{
  const Sandbox box;
  const std::string dest = k_modules + "/updates/dkms/fake_mod.ko";
  write_text(box.kernel.modules_dir / "updates/dkms/neighbour.ko", "someone else's\n");
  const Installed installed = install(box);
  CHECK(installed.change.displaced.empty());
  REQUIRE(fs::exists(box.root(dest)));

  CHECK(uninstall_cell(box.root, installed.record).empty());
  CHECK_FALSE(fs::exists(box.root(dest)));
  CHECK(read_text(box.kernel.modules_dir / "updates/dkms/neighbour.ko") == "someone else's\n");
  // Uninstalling again is a no-op.
  CHECK(uninstall_cell(box.root, installed.record).empty());
}

TEST_CASE("a file changed after install is left alone by uninstall_cell, with a warning")
{
  const Sandbox box;
  const std::string dest = k_modules + "/updates/dkms/fake_mod.ko";
  const std::string original = "the displaced original\n";
  write_text(box.root(dest), original);
  const Installed installed = install(box);
  const std::string backup = "/var/lib/kmodsync/displaced/" + k_release + dest;

  write_text(box.root(dest), "rebuilt by hand\n");
  const auto warnings = uninstall_cell(box.root, installed.record);
  CHECK(read_text(box.root(dest)) == "rebuilt by hand\n");
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0] == "left " + box.root(dest).string() + " alone: it changed since kmodsync installed it");
  // The original cannot go back over it; it stays in the backup.
  CHECK(warnings[1] == "did not restore " + box.root(dest).string()
                         + ": something else is there now (the original is kept in " + box.root(backup).string()
                         + ")");
  CHECK(read_text(box.root(backup)) == original);
}

TEST_CASE("place_modules removes stale files of the previous install only when unchanged")
{
  const Sandbox box;
  const std::string stale = k_modules + "/updates/dkms/old_name.ko";
  const std::string edited = k_modules + "/updates/dkms/edited.ko";
  write_text(box.root(stale), "old module\n");
  write_text(box.root(edited), "old module, edited since\n");
  const std::string dest = k_modules + "/updates/dkms/fake_mod.ko";
  write_text(box.root(dest), "previous fake_mod\n");
  const std::vector<InstalledFile> previous = {
    with_stat(box.root, {stale, sha256sum(box.root(stale)), 0, 0}),
    {edited, sha256sum(box.root(stale)), 0, 0}, // recorded hash is not the file's any more
    with_stat(box.root, {dest, sha256sum(box.root(dest)), 0, 0}),
  };

  const Installed installed = install(box, {dest, stale, edited}, previous);
  CHECK(installed.change.displaced.empty());
  CHECK_FALSE(fs::exists(box.root(stale)));
  CHECK(read_text(box.root(edited)) == "old module, edited since\n");
  CHECK(read_text(box.root(dest)) == installed.prepared.modules[0].content);
}

TEST_CASE("files_intact: true while the recorded bytes are there, false once changed or gone")
{
  const Sandbox box;
  const Installed installed = install(box);
  const auto& files = installed.record.files;
  REQUIRE(files.size() == 1);
  const fs::path dest = box.root(files[0].path);
  CHECK(files[0].size == static_cast<std::int64_t>(fs::file_size(dest)));
  CHECK(files[0].mtime_ns > 0);
  CHECK(files_intact(box.root, files));
  CHECK(files_intact(box.root, {}));

  // A new time stamp alone: still the same bytes.
  const timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  REQUIRE(utimensat(AT_FDCWD, dest.c_str(), times, 0) == 0);
  CHECK(files_intact(box.root, files));

  // Same size, other bytes.
  std::string content = read_text(dest);
  content[content.size() / 2] ^= 0x01;
  write_text(dest, content);
  CHECK_FALSE(files_intact(box.root, files));

  fs::remove(dest);
  CHECK_FALSE(files_intact(box.root, files));
}

TEST_SUITE_END();
