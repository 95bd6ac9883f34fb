// SPDX-License-Identifier: GPL-2.0-or-later
// mktarball / ldtarball in DKMS's layout, written and read with libarchive:
//   ./dkms_main_tree/KV/ARCH/module/NAME.ko   the built modules (as make left them)
//   ./dkms_main_tree/KV/ARCH/log/make.log
//   ./dkms_source_tree/...                    the module source, dkms.conf at its top
//   ./dkms_binaries_only/{PACKAGE_NAME,PACKAGE_VERSION,dkms.conf}   (--binaries-only)
#include "dkms_command.hpp"
#include "dkms_extract.hpp"
#include "dkms_state.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/kernel.hpp"
#include "kmodsync/module_info.hpp"
#include "kmodsync/state.hpp"
#include "kmodsync/string_util.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>

#include <unistd.h>

namespace kmodsync::cli::dkms {

namespace fs = std::filesystem;

namespace {

struct ArchiveWriter
{
  archive* handle = archive_write_new();
  ~ArchiveWriter() { archive_write_free(handle); }
  ArchiveWriter() = default;
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  Expected<void> add(const std::string& name, const std::string& content, mode_t mode)
  {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), mode & 07777);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(entry.get(), std::time(nullptr), 0);
    if (archive_write_header(handle, entry.get()) != ARCHIVE_OK
        || archive_write_data(handle, content.data(), content.size()) < 0) {
      return error("{}: {}", name, archive_error_string(handle));
    }
    return {};
  }

  Expected<void> add_tree(const std::string& prefix, const fs::path& dir)
  {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->is_symlink(ec)) {
        continue; // a source tree's symlinks could point anywhere: DKMS's `cp -r` follows them, we leave them
      }
      auto content = util::read_file(it->path());
      if (!content) {
        return std::unexpected(content.error());
      }
      const auto mode = static_cast<mode_t>(fs::status(it->path(), ec).permissions());
      if (auto added = add(prefix + "/" + fs::relative(it->path(), dir).string(), *content, mode); !added) {
        return added;
      }
    }
    return {};
  }
};

std::string strip_index(const std::string& kept_name)
{
  const auto dash = kept_name.find('-');
  return dash == std::string::npos ? kept_name : kept_name.substr(dash + 1);
}

} // namespace

int make_tarball(const Context& context)
{
  const Request& request = context.request;
  if (request.module.empty() || request.version.empty()) {
    fmt::print(stderr, "Error! Arguments <module> and <module-version> are not specified.\n");
    return k_error;
  }
  auto loaded = load_added(context);
  if (const int* code = std::get_if<int>(&loaded)) {
    return *code;
  }
  State* state = &std::get<State>(loaded);
  const std::string arch = machine_arch();
  std::vector<std::string> kernels;
  if (request.all) {
    kernels = kernels_with_cells(*state, request.module, request.version);
  } else if (!request.source_only) {
    kernels.push_back(request.kernels.empty() ? running_kernel() : request.kernels.front().kernel);
    for (std::size_t i = 1; i < request.kernels.size(); ++i) {
      kernels.push_back(request.kernels[i].kernel);
    }
  }
  ArchiveWriter writer;
  archive_write_add_filter_gzip(writer.handle);
  archive_write_set_format_pax_restricted(writer.handle);
  std::string kernel_list;
  std::vector<std::pair<std::string, std::string>> entries; // name -> file
  for (const auto& kernel : kernels) {
    const CellRecord* record = state->find(request.module, request.version, kernel);
    if (!record || record->built.empty()) {
      fmt::print(stderr, "Error! No modules built for {} ({}).\nModules must already be in the built state before "
                         "using mktarball.\n",
                 kernel, arch);
      return k_install_failed;
    }
    kernel_list += fmt::format("{}kernel{}-{}", kernel_list.empty() ? "" : "-", kernel, arch);
    for (const auto& file : record->built) {
      entries.emplace_back(fmt::format("./dkms_main_tree/{}/{}/module/{}", kernel, arch,
                                       strip_index(fs::path(file.path).filename().string())),
                           context.root(file.path).string());
    }
    if (!record->log.empty() && fs::exists(context.root(record->log))) {
      entries.emplace_back(fmt::format("./dkms_main_tree/{}/{}/log/make.log", kernel, arch),
                           context.root(record->log).string());
    }
  }
  if (request.source_only) {
    kernel_list = "source-only";
  }
  if (kernel_list.size() > 200) {
    kernel_list = "manykernels";
  }
  fs::path destination = context.root("/var/lib/dkms/" + request.module + "/" + request.version + "/tarball")
                         / fmt::format("{}-{}-{}.dkms.tar.gz", request.module, request.version, kernel_list);
  if (!request.archive.empty()) {
    const fs::path given(request.archive);
    destination = given.has_parent_path() ? given : destination.parent_path() / given;
  }
  if (auto made = util::ensure_directory(destination.parent_path()); !made) {
    fmt::print(stderr, "Error! Missing write permissions for {}: {}\n", destination.parent_path().string(), made.error());
    return k_no_dkms_conf;
  }
  const std::string temporary = destination.string() + fmt::format(".kmodsync-{}", ::getpid());
  if (archive_write_open_filename(writer.handle, temporary.c_str()) != ARCHIVE_OK) {
    fmt::print(stderr, "Error! Failed to make tarball: {}\n", archive_error_string(writer.handle));
    return k_install_failed;
  }
  auto fail = [&](const std::string& message) {
    fmt::print(stderr, "Error! Failed to make tarball: {}\n", message);
    std::error_code ec;
    fs::remove(temporary, ec);
    return k_install_failed;
  };
  for (const auto& [name, file] : entries) {
    auto content = util::read_file(file);
    if (!content) {
      return fail(content.error());
    }
    if (auto added = writer.add(name, *content, 0644); !added) {
      return fail(added.error());
    }
  }
  const std::string source_dir = "/usr/src/" + request.module + "-" + request.version;
  if (request.binaries_only) {
    auto conf = util::read_file(context.root(source_dir) / "dkms.conf");
    if (!conf) {
      return fail(conf.error());
    }
    for (const auto& [name, content] : std::vector<std::pair<std::string, std::string>>{
           {"PACKAGE_NAME", request.module + "\n"}, {"PACKAGE_VERSION", request.version + "\n"}, {"dkms.conf", *conf}}) {
      if (auto added = writer.add("./dkms_binaries_only/" + name, content, 0644); !added) {
        return fail(added.error());
      }
    }
  } else if (auto added = writer.add_tree("./dkms_source_tree", context.root(source_dir)); !added) {
    return fail(added.error());
  }
  if (archive_write_close(writer.handle) != ARCHIVE_OK) {
    return fail(archive_error_string(writer.handle));
  }
  std::error_code ec;
  fs::rename(temporary, destination, ec);
  if (ec) {
    return fail(ec.message());
  }
  fmt::print("Tarball location: {}\n", destination.string());
  return k_ok;
}

int load_tarball(const Context& context)
{
  const Request& request = context.request;
  std::error_code ec;
  if (request.archive.empty() || !fs::exists(request.archive, ec)) {
    fmt::print(stderr, "Error! {} does not exist.\n", request.archive);
    return k_not_found;
  }
  const fs::path work = StatePaths(context.root).dir / fmt::format("tmp/ldtarball-{}", ::getpid());
  util::remove_tree(work);
  struct Cleanup
  {
    fs::path dir;
    ~Cleanup() { [[maybe_unused]] auto removed = util::remove_tree(dir); }
  } cleanup{work};
  if (auto made = util::ensure_directory(work); !made) {
    fmt::print(stderr, "Error! {}\n", made.error());
    return k_error;
  }
  if (auto extracted = extract_tarball(request.archive, work); !extracted) {
    fmt::print(stderr, "Error! {} is not a valid DKMS tarball: {}\n", request.archive, extracted.error());
    return 7;
  }
  fs::path source = work / "dkms_source_tree";
  if (!fs::is_directory(work / "dkms_main_tree", ec)) {
    // A plain source tarball: the first dkms.conf in it.
    source.clear();
    for (auto it = fs::recursive_directory_iterator(work, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->path().filename() == "dkms.conf") {
        source = it->path().parent_path();
        break;
      }
    }
    if (source.empty()) {
      fmt::print(stderr, "Error! Tarball does not appear to be a correctly formed DKMS archive. No dkms.conf found "
                         "within it.\n");
      return k_not_in_tree;
    }
  }
  std::string source_dir = context.root.managed(source);
  if (!fs::is_regular_file(source / "dkms.conf", ec)) {
    const fs::path binaries = work / "dkms_binaries_only";
    if (!fs::is_regular_file(binaries / "dkms.conf", ec)) {
      fmt::print(stderr, "Error! No valid dkms.conf in dkms_source_tree or dkms_binaries_only.\n{} is not a valid DKMS "
                         "tarball.\n",
                 request.archive);
      return 7;
    }
    // Modules without their source: loaded only when the source is installed already, so
    // kmodsync can rebuild them when the kernel's headers change.
    auto name = util::read_file(binaries / "PACKAGE_NAME");
    auto version = util::read_file(binaries / "PACKAGE_VERSION");
    source_dir = fmt::format("/usr/src/{}-{}", name ? util::trim(*name) : std::string_view(), version ? util::trim(*version) : std::string_view());
    if (!name || !version || !fs::is_regular_file(context.root(source_dir) / "dkms.conf", ec)) {
      fmt::print(stderr, "Error! {} holds modules without their source (--binaries-only) and {} is not installed: "
                         "kmodsync builds and tracks modules from source and does not load these.\n",
                 request.archive, context.root(source_dir).string());
      return 7;
    }
  }
  auto added = add_module_source(context.root, source_dir, std::chrono::seconds(10), true);
  if (!added) {
    fmt::print(stderr, "Error! Malformed dkms.conf, refusing to load: {}\n", added.error());
    return 7;
  }
  if (added->already_added && !request.force) {
    fmt::print(stderr, "Error! {}-{} is already added!\nAborting.\n", added->name, added->version);
    return k_bad_conf;
  }
  fmt::print("Loading tarball for {}-{}\n", added->name, added->version);
  for (auto kernel_dir = fs::directory_iterator(work / "dkms_main_tree", ec); !ec && kernel_dir != fs::directory_iterator();
       kernel_dir.increment(ec)) {
    for (const auto& arch_dir : fs::directory_iterator(kernel_dir->path(), ec)) {
      std::vector<fs::path> modules;
      for (const auto& file : fs::directory_iterator(arch_dir.path() / "module", ec)) {
        if (!module_name_of_file(file.path().filename().string()).empty()) {
          modules.push_back(file.path());
        }
      }
      std::sort(modules.begin(), modules.end());
      const std::string kernel = kernel_dir->path().filename().string();
      if (modules.empty()) {
        continue;
      }
      if (auto loaded = load_prebuilt(context.root, added->name, added->version, kernel, modules); !loaded) {
        fmt::print(stderr, "Error! {}\n", loaded.error());
        return k_error;
      }
      fmt::print("Loading {} module(s) built for {}\n", modules.size(), kernel);
    }
  }
  return k_ok;
}

} // namespace kmodsync::cli::dkms
