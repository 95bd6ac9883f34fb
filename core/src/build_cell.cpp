// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/build_cell.hpp"

#include "kmodsync/file_util.hpp"
#include "kmodsync/process.hpp"
#include "kmodsync/string_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace kmodsync {

namespace fs = std::filesystem;

namespace {

class LogFile
{
public:
  explicit LogFile(const fs::path& path)
    : m_fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644))
  {
  }
  ~LogFile()
  {
    if (m_fd >= 0) {
      close(m_fd);
    }
  }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  int fd() const { return m_fd; }
  void line(std::string_view text)
  {
    if (m_fd >= 0) {
      const std::string data = std::string(text) + "\n";
      [[maybe_unused]] const auto written = ::write(m_fd, data.data(), data.size());
    }
  }

private:
  int m_fd;
};

struct StepContext
{
  const BuildRequest& request;
  LogFile& log;
  std::vector<std::string> env;
};

Expected<Completion> run_step(StepContext& step, std::vector<std::string> argv)
{
  step.log.line(fmt::format("# kmodsync: running {}", fmt::join(argv, " ")));
  Command command;
  command.argv = std::move(argv);
  command.env = step.env;
  command.cwd = step.request.build_dir;
  command.output_fd = step.log.fd();
  command.timeout = step.request.timeout;
  command.sandbox = step.request.sandbox;
  if (step.request.jobserver) {
    command.pass_fds = step.request.jobserver->pass_fds();
  }
  return run(command);
}

// PRE_BUILD / POST_BUILD as DKMS runs them: a path relative to the build directory, with
// words after it as arguments; not executable means a warning and nothing else, and its
// exit status does not decide the build.
Expected<void> run_build_script(StepContext& step, const char* kind, const std::string& script)
{
  const auto words = util::split_words(script);
  if (words.empty()) {
    return {};
  }
  const fs::path relative = fs::path(words[0]).lexically_normal();
  if (relative.is_absolute() || relative.begin() == relative.end() || *relative.begin() == "..") {
    return error("the {} script \"{}\" is outside the build directory (it must be a path inside the module source)",
                 kind, words[0]);
  }
  const fs::path program = step.request.build_dir / words[0];
  if (access(program.c_str(), X_OK) != 0) {
    step.log.line(fmt::format("# kmodsync: warning: the {} script {} is not executable", kind, program.string()));
    return {};
  }
  std::vector<std::string> argv = {program.string()};
  argv.insert(argv.end(), words.begin() + 1, words.end());
  auto completion = run_step(step, argv);
  if (!completion) {
    step.log.line("# kmodsync: warning: " + completion.error());
  } else if (!completion->succeeded()) {
    step.log.line(fmt::format("# kmodsync: warning: the {} script failed ({})", kind,
                              completion->describe(step.request.timeout)));
  }
  return {};
}

// What a source tree may hold: directories, regular files, and symlinks that stay inside
// it. A link to /etc or a fifo is no part of a module's source, and copying either is a
// way out (or a hang).
Expected<void> check_source_tree(const fs::path& dir)
{
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::path& path = it->path();
    const auto status = fs::symlink_status(path, ec);
    const std::string shown = path.lexically_relative(dir).string();
    if (fs::is_symlink(status)) {
      const fs::path target = fs::read_symlink(path, ec);
      const fs::path resolved = (path.parent_path() / target).lexically_normal().lexically_relative(dir);
      if (target.is_absolute() || resolved.empty() || *resolved.begin() == "..") {
        return error("{}: {} is a symlink to {}, outside the module source", dir.string(), shown, target.string());
      }
    } else if (!fs::is_directory(status) && !fs::is_regular_file(status)) {
      return error("{}: {} is not a regular file or directory (a fifo, socket or device): not module source",
                   dir.string(), shown);
    }
  }
  if (ec) {
    return error("cannot list {}: {}", dir.string(), ec.message());
  }
  return {};
}

// DKMS turns a leading `make` into `make -jN KERNELRELEASE=KV`; our -j travels in MAKEFLAGS
// with the jobserver, since an explicit -j would make each make its own jobserver.
std::string make_command_for_kernel(const std::string& make_command, const std::string& release)
{
  if (make_command.starts_with("make")) {
    return "make KERNELRELEASE=" + release + make_command.substr(4);
  }
  return make_command;
}

BuildResult failed(LogFile& log, const fs::path& log_path, std::string failure)
{
  log.line("# kmodsync: " + failure);
  BuildResult result;
  result.failure = std::move(failure);
  if (auto content = util::read_file(log_path)) {
    result.first_error = first_compiler_error(*content);
  }
  return result;
}

} // namespace

std::string first_compiler_error(std::string_view log)
{
  const auto lines = util::split_lines(log);
  for (const auto& line : lines) {
    if (line.find(": error:") != std::string::npos || line.find(": fatal error:") != std::string::npos) {
      return std::string(util::trim(line));
    }
  }
  // Confined builds: a write outside the build directory is the cause, make's *** the effect.
  for (const auto& line : lines) {
    if (line.find("Read-only file system") != std::string::npos && !line.starts_with("# kmodsync")) {
      return "wrote outside its build directory: " + std::string(util::trim(line));
    }
  }
  for (const auto& line : lines) {
    if (line.find("*** ") != std::string::npos && !line.starts_with("# kmodsync")) {
      return std::string(util::trim(line));
    }
  }
  for (const auto& line : lines) {
    if (!line.starts_with("# kmodsync") && util::to_lower(line).find("error") != std::string::npos) {
      return std::string(util::trim(line));
    }
  }
  return {};
}

namespace {

BuildResult build_cell_logged(const BuildRequest& request)
{
  const ModuleSpec& spec = *request.spec;
  const Kernel& kernel = *request.kernel;
  if (auto made = util::ensure_directory(request.log_file.parent_path()); !made) {
    return BuildResult{false, made.error(), {}, {}};
  }
  LogFile log(request.log_file);
  if (log.fd() < 0) {
    return BuildResult{false, fmt::format("cannot create log {}: {}", request.log_file.string(), std::strerror(errno)), {}, {}};
  }
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", std::localtime(&now));
  log.line(fmt::format("# kmodsync build log for {}/{} on kernel {} ({}), {}", spec.name, spec.version,
                       kernel.release, kernel.arch, date));

  if (auto removed = util::remove_tree(request.build_dir); !removed) {
    return failed(log, request.log_file, removed.error());
  }
  if (auto made = util::ensure_directory(request.build_dir.parent_path()); !made) {
    return failed(log, request.log_file, made.error());
  }
  if (auto checked = check_source_tree(request.source->dir); !checked) {
    return failed(log, request.log_file, checked.error());
  }
  if (auto copied = util::copy_tree(request.source->dir, request.build_dir); !copied) {
    return failed(log, request.log_file, copied.error());
  }

  std::vector<std::string> extra_env;
  if (request.jobserver) {
    extra_env.push_back("MAKEFLAGS=" + request.jobserver->makeflags());
  }
  if (request.sandbox) {
    // The build user owns its copy and nothing else; its temporary files (gcc's) stay in
    // it too, since everything else is read-only.
    const fs::path tmp = request.build_dir / ".kmodsync-tmp";
    if (auto made = util::ensure_directory(tmp); !made) {
      return failed(log, request.log_file, made.error());
    }
    if (auto given = util::chown_tree(request.build_dir, request.sandbox->uid, request.sandbox->gid); !given) {
      return failed(log, request.log_file, given.error());
    }
    extra_env.push_back("TMPDIR=" + tmp.string());
    log.line(fmt::format("# kmodsync: building as uid {} (gid {}), read-only but {}{}", request.sandbox->uid,
                         request.sandbox->gid, request.build_dir.string(),
                         request.sandbox->private_network ? ", no network" : ""));
  } else if (geteuid() == 0) {
    log.line("# kmodsync: building as root, unconfined (build_as_root)");
  }
  StepContext step{request, log, clean_environment(extra_env)};

  for (const auto& patch : spec.patches_for_kernel) {
    const fs::path file = request.build_dir / "patches" / patch;
    std::error_code ec;
    if (!fs::exists(file, ec)) {
      return failed(log, request.log_file,
                    fmt::format("patch {} as specified in dkms.conf cannot be found in {}",
                                patch, (request.build_dir / "patches").string()));
    }
    // -f: never ask (DKMS feeds the patch on stdin, which has the same effect).
    auto completion = run_step(step, {"patch", "-p1", "-f", "-i", file.string()});
    if (!completion) {
      return failed(log, request.log_file, completion.error());
    }
    if (!completion->succeeded()) {
      return failed(log, request.log_file,
                    fmt::format("applying patch {} failed ({})", patch, completion->describe(request.timeout)));
    }
  }

  if (auto ran = run_build_script(step, "PRE_BUILD", spec.pre_build); !ran) {
    return failed(log, request.log_file, ran.error());
  }

  const std::string make = make_command_for_kernel(spec.make_command, kernel.release);
  auto completion = run_step(step, {"bash", "--norc", "--noprofile", "-c", make});
  if (!completion) {
    return failed(log, request.log_file, completion.error());
  }
  if (!completion->succeeded()) {
    return failed(log, request.log_file,
                  fmt::format("make failed ({})", completion->describe(request.timeout)));
  }

  if (auto ran = run_build_script(step, "POST_BUILD", spec.post_build); !ran) {
    return failed(log, request.log_file, ran.error());
  }

  BuildResult result;
  for (const auto& record : spec.modules) {
    const fs::path ko = request.build_dir / (record.built_location + record.built_name + ".ko");
    std::error_code ec;
    // A symlink named like the module is not a module: it could point anywhere.
    if (!fs::is_regular_file(fs::symlink_status(ko, ec))) {
      return failed(log, request.log_file,
                    fmt::format("the build did not produce {} (BUILT_MODULE_NAME {}, BUILT_MODULE_LOCATION \"{}\")",
                                ko.string(), record.built_name, record.built_location));
    }
    result.modules.push_back(ko);
  }
  log.line("# kmodsync: build succeeded");
  result.ok = true;
  return result;
}

} // namespace

BuildResult build_cell(const BuildRequest& request)
{
  BuildResult result = build_cell_logged(request);
  // "broken.c:5:49: error: ..." reads better than the same behind a 90-character build
  // directory, and is the same on every machine and kernel (the log keeps the full path).
  const std::string prefix = request.build_dir.string() + "/";
  for (auto at = result.first_error.find(prefix); at != std::string::npos; at = result.first_error.find(prefix, at)) {
    result.first_error.erase(at, prefix.size());
  }
  return result;
}

} // namespace kmodsync
