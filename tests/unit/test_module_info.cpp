// SPDX-License-Identifier: GPL-2.0-or-later
#include "fixtures/temp_dir.hpp"

#include "kmodsync/module_info.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kmodsync::read_module_info;
using kmodsync::verify_module;
using kmodsync::testing::TempDir;
using kmodsync::testing::write_text;

namespace {

const char* const k_vermagic = "6.1.0-55-amd64 SMP preempt mod_unload modversions ";

// Compiles a relocatable ELF object whose .modinfo holds `fields`, one NUL-terminated
// "key=value" string each, as modpost leaves them in a real module.
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
  kmodsync::testing::shell_output("gcc -c -o '" + ko.string() + "' '" + (dir / "fake_mod.c").string() + "' 2>&1");
  REQUIRE(fs::exists(ko));
  return ko;
}

fs::path standard_module(const TempDir& dir)
{
  return fake_module(dir, "fake_mod.ko",
                     {std::string("vermagic=") + k_vermagic, "name=fake_mod", "version=1.2.3",
                      "srcversion=0123456789ABCDEF0123456", "license=GPL"});
}

} // namespace

TEST_SUITE_BEGIN("module_info");

TEST_CASE("read_module_info returns the .modinfo fields")
{
  const TempDir dir;
  const fs::path ko = standard_module(dir);
  const auto info = read_module_info(ko);
  REQUIRE_MESSAGE(info.has_value(), info.error());
  CHECK(info->name == "fake_mod");
  CHECK(info->vermagic == k_vermagic);
  CHECK(info->version == "1.2.3");
  CHECK(info->srcversion == "0123456789ABCDEF0123456");
}

TEST_CASE("read_module_info: without a name field the name comes from the file name")
{
  const TempDir dir;
  const fs::path ko = fake_module(dir, "fake-mod.ko", {std::string("vermagic=") + k_vermagic});
  const auto info = read_module_info(ko);
  REQUIRE_MESSAGE(info.has_value(), info.error());
  CHECK(info->name == "fake_mod");
  CHECK(info->vermagic == k_vermagic);
  CHECK(info->version == "");
  CHECK(info->srcversion == "");
}

TEST_CASE("verify_module passes for the right kernel and name, '-' and '_' alike")
{
  const TempDir dir;
  const fs::path ko = standard_module(dir);
  const auto exact = verify_module(ko, "6.1.0-55-amd64", "fake_mod");
  REQUIRE_MESSAGE(exact.has_value(), exact.error());
  CHECK(exact->name == "fake_mod");
  CHECK(exact->vermagic == k_vermagic);
  const auto dashed = verify_module(ko, "6.1.0-55-amd64", "fake-mod");
  CHECK_MESSAGE(dashed.has_value(), dashed.error());
}

TEST_CASE("verify_module fails naming the file for a module of another kernel")
{
  const TempDir dir;
  const fs::path ko = standard_module(dir);
  const auto other = verify_module(ko, "6.12.107+deb12-amd64", "fake_mod");
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error()
        == ko.string() + " was built for another kernel: vermagic \"" + k_vermagic
             + "\" is not for 6.12.107+deb12-amd64");
  // A release that is only a prefix of the module's is another kernel too.
  const auto prefix = verify_module(ko, "6.1.0-55", "fake_mod");
  REQUIRE_FALSE(prefix.has_value());
  CHECK(prefix.error().starts_with(ko.string() + " was built for another kernel"));
}

TEST_CASE("verify_module fails naming the file for a module of another name")
{
  const TempDir dir;
  const fs::path ko = standard_module(dir);
  const auto other = verify_module(ko, "6.1.0-55-amd64", "other_mod");
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error() == ko.string() + " is module \"fake_mod\", not \"other_mod\" as BUILT_MODULE_NAME says");
}

TEST_CASE("a file that is not ELF is not a module")
{
  const TempDir dir;
  write_text(dir / "text.ko", "this is not an ELF file, just text pretending to be a module\n");
  const auto info = read_module_info(dir / "text.ko");
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().starts_with((dir / "text.ko").string() + ": "));
  const auto verified = verify_module(dir / "text.ko", "6.1.0-55-amd64", "text");
  REQUIRE_FALSE(verified.has_value());
  CHECK(verified.error().starts_with((dir / "text.ko").string() + ": "));
}

TEST_CASE("a missing module file is an error naming it")
{
  const TempDir dir;
  const auto info = read_module_info(dir / "missing.ko");
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().starts_with((dir / "missing.ko").string() + ": "));
}

TEST_CASE("an ELF object without vermagic is for no kernel")
{
  const TempDir dir;
  const fs::path ko = fake_module(dir, "fake_mod.ko", {"name=fake_mod"});
  const auto verified = verify_module(ko, "6.1.0-55-amd64", "fake_mod");
  REQUIRE_FALSE(verified.has_value());
  CHECK(verified.error().starts_with(ko.string() + " was built for another kernel"));
}

TEST_CASE("an ELF file without section headers is an error, not libkmod's assertion (fuzz_module_info)")
{
  const TempDir dir;
  std::string elf(64, '\0');
  elf.replace(0, 7, "\x7f" "ELF\x02\x01\x01");
  elf[0x10] = 1;    // ET_REL
  elf[0x12] = 0x3e; // x86-64
  elf[0x34] = 64;   // e_ehsize; e_shnum and e_shstrndx stay 0
  write_text(dir / "broken.ko", elf);
  auto info = read_module_info(dir / "broken.ko");
  REQUIRE_FALSE(info.has_value());
  CHECK(info.error().find("damaged ELF section headers") != std::string::npos);
}

TEST_SUITE_END();
