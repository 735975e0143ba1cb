// Sandbox implementation: fork -> setsid/rlimits/uid drop -> exec bwrap -> python3 runner.
#include "eval/sandbox/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "base/threading.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

// Host uids used for concurrent runs when started as root: each slot gets its own uid so that
// RLIMIT_NPROC (which the kernel does not enforce for uid 0) counts only that program's tasks.
constexpr uid_t kSlotUidBase = 1900000000;
constexpr size_t kMaxSlots = 4096;
constexpr int kSandboxUid = 65534;  // "nobody" inside the user namespace

// The in-sandbox driver. It sets the process limit from inside the new user namespace (where
// the count covers only this program's tasks, for root and normal users alike), then runs the
// program the way HF code_eval does: exec() with empty globals, any exception is a failure, and
// only reaching the end writes the success byte to a private pipe (so os._exit(0) is not a pass).
// With the guard it also disables what HF code_eval's reliability_guard disables (process, file
// and directory functions, exit/quit/help, a few modules), so that a program fails here exactly
// where it fails under lm-eval. The guard is not the security boundary; bubblewrap is.
constexpr const char* kRunner = R"PY(import os, sys
def _rvec_guard():
    import builtins, faulthandler, shutil, subprocess
    faulthandler.disable()
    os.environ["OMP_NUM_THREADS"] = "1"
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace",
                 "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod",
                 "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None
def _rvec_run():
    path, fd, nproc, guard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    if nproc > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    sys.argv = [path]
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if guard:
            _rvec_guard()
        exec(compile(source, path, "exec"), {})
    except BaseException:
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    os.write(fd, b"1")
    os._exit(0)
_rvec_run()
)PY";

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return "";
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return "";
  size_t begin = text.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  std::string line = text.substr(begin, end + 1 - begin);
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGKILL:
      return "SIGKILL";
    case SIGXCPU:
      return "SIGXCPU (CPU time limit)";
    case SIGXFSZ:
      return "SIGXFSZ (file size limit)";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGABRT:
      return "SIGABRT";
    case SIGTERM:
      return "SIGTERM";
    case SIGPIPE:
      return "SIGPIPE";
    default:
      return "signal";
  }
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

// argv/envp as stable char* arrays, built before fork (the child may only make async-signal-safe
// calls, so it must not allocate).
struct CArgs {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  explicit CArgs(std::vector<std::string> items) : storage(std::move(items)) {
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
};

void SetLimit(int resource, uint64_t value, uint64_t hard_extra = 0) {
  struct rlimit limit;
  limit.rlim_cur = value;
  limit.rlim_max = value + hard_extra;
  setrlimit(resource, &limit);
}

void ChildWrite(const char* message) {
  ssize_t ignored = write(2, message, strlen(message));
  (void)ignored;
}

// Removes unsafe mode's private working directory when the run ends, however it ends.
struct WorkdirCleanup {
  std::string path;
  ~WorkdirCleanup() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

// Every descriptor one run opens: the child keeps the program, /dev/null and the write ends; the
// parent reads the rest.
struct RunFds {
  Fd program, out_r, out_w, err_r, err_w, ok_r, ok_w, null;
};

// Returns why the descriptors could not be opened, or "" when they all are.
std::string OpenRunFds(const std::string& program, RunFds* fds) {
  fds->program.fd = static_cast<int>(syscall(SYS_memfd_create, "rvec-program", MFD_CLOEXEC));
  if (fds->program.fd < 0) return fmt::format("memfd_create: {}", strerror(errno));
  for (size_t done = 0; done < program.size();) {
    const ssize_t n = write(fds->program.fd, program.data() + done, program.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fmt::format("writing the program: {}", strerror(errno));
    done += static_cast<size_t>(n);
  }
  lseek(fds->program.fd, 0, SEEK_SET);

  int out_pipe[2], err_pipe[2], ok_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return "pipe2 failed";
  fds->out_r.fd = out_pipe[0];
  fds->out_w.fd = out_pipe[1];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return "pipe2 failed";
  fds->err_r.fd = err_pipe[0];
  fds->err_w.fd = err_pipe[1];
  if (pipe2(ok_pipe, O_CLOEXEC) != 0) return "pipe2 failed";
  fds->ok_r.fd = ok_pipe[0];
  fds->ok_w.fd = ok_pipe[1];
  fds->null.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fds->null.fd < 0) return "cannot open /dev/null";
  return "";
}

// Everything the child uses after fork, prepared beforehand: the child may only make
// async-signal-safe calls, so it must not allocate.
struct ChildPlan {
  const RunFds* fds;
  const SandboxOptions* options;
  uint64_t cpu_s;
  bool as_root;
  uid_t slot_uid;
  const std::string* workdir;  // empty in the sandbox
  const CArgs* argv;
  const CArgs* envp;
};

// The forked child: limits, privilege drop, exec. Never returns.
[[noreturn]] void RunChild(const ChildPlan& plan) {
  // Child: async-signal-safe calls only.
  const RunFds& fds = *plan.fds;
  const SandboxOptions& options = *plan.options;
  setsid();  // own process group, so the timeout can kill everything left in it
  dup2(fds.null.fd, 0);
  dup2(fds.out_w.fd, 1);
  dup2(fds.err_w.fd, 2);
  // Nothing the parent opened elsewhere (other threads' files) may leak into the sandbox.
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  fcntl(fds.program.fd, F_SETFD, 0);
  fcntl(fds.ok_w.fd, F_SETFD, 0);
  SetLimit(RLIMIT_AS, options.address_space_bytes);
  SetLimit(RLIMIT_CPU, plan.cpu_s, 1);  // SIGXCPU first (named in the reason), SIGKILL 1 s later
  SetLimit(RLIMIT_FSIZE, options.file_size_bytes);
  SetLimit(RLIMIT_CORE, 0);
  SetLimit(RLIMIT_NOFILE, options.max_open_files);
  if (plan.as_root) {
    if (setgroups(0, nullptr) != 0 || setresgid(plan.slot_uid, plan.slot_uid, plan.slot_uid) != 0 ||
        setresuid(plan.slot_uid, plan.slot_uid, plan.slot_uid) != 0) {
      ChildWrite("rvec sandbox: cannot drop root privileges\n");
      _exit(126);
    }
  }
  if (!plan.workdir->empty() && chdir(plan.workdir->c_str()) != 0) _exit(126);
  execve(plan.argv->ptrs[0], plan.argv->ptrs.data(), plan.envp->ptrs.data());
  ChildWrite("rvec sandbox: exec failed: ");
  ChildWrite(plan.argv->ptrs[0]);
  ChildWrite("\n");
  _exit(127);
}

// How the parent's watch over a run ended.
struct WatchEnd {
  bool exited = false, timed_out = false, output_limit = false, sentinel = false;
};

// Reads what is ready on `fd` into `keep` (up to `capacity` bytes kept, the rest only counted);
// closes `fd` at end of file.
void Drain(Fd& fd, char* buffer, size_t buffer_size, size_t capacity, std::string& keep,
           uint64_t& total) {
  const ssize_t n = read(fd.fd, buffer, buffer_size);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    fd.Close();
    return;
  }
  total += static_cast<uint64_t>(n);
  if (keep.size() < capacity) {
    keep.append(buffer, std::min<size_t>(static_cast<size_t>(n), capacity - keep.size()));
  }
}

// Collects the child's output and success byte until it exits (plus a moment for buffered
// output), the wall-clock deadline passes, or its output exceeds the kill limit. The child is
// left unreaped.
WatchEnd Watch(pid_t pid, RunFds& fds, Fd& pidfd, const SandboxOptions& options,
               std::chrono::steady_clock::time_point start, ExecResult* result) {
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(options.timeout_s));
  WatchEnd end;
  std::chrono::steady_clock::time_point exit_time;
  char buffer[65536];
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (!end.exited && now >= deadline) {
      end.timed_out = true;
      break;
    }
    // After the main process exits, give the pipes a moment to deliver what is buffered.
    if (end.exited && (now - exit_time > std::chrono::milliseconds(500) ||
                       (fds.out_r.fd < 0 && fds.err_r.fd < 0 && fds.ok_r.fd < 0))) {
      break;
    }
    struct pollfd pfds[4];
    int nfds = 0;
    Fd* owners[4];
    for (Fd* f : {&fds.out_r, &fds.err_r, &fds.ok_r}) {
      if (f->fd >= 0) {
        pfds[nfds] = {f->fd, POLLIN, 0};
        owners[nfds++] = f;
      }
    }
    if (!end.exited && pidfd.fd >= 0) {
      pfds[nfds] = {pidfd.fd, POLLIN, 0};
      owners[nfds++] = &pidfd;
    }
    auto wait_until = end.exited ? exit_time + std::chrono::milliseconds(500) : deadline;
    int wait_ms =
        static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(wait_until - now).count()) +
        1;
    if (pidfd.fd < 0 && !end.exited) wait_ms = std::min(wait_ms, 10);  // no pidfd: poll waitid
    const int ready = poll(pfds, static_cast<nfds_t>(nfds), std::max(wait_ms, 0));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < nfds && ready > 0; ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (owners[i] == &fds.out_r) {
        Drain(fds.out_r, buffer, sizeof(buffer), options.output_capture_bytes, result->stdout_text,
              result->stdout_bytes);
      }
      if (owners[i] == &fds.err_r) {
        Drain(fds.err_r, buffer, sizeof(buffer), options.output_capture_bytes, result->stderr_text,
              result->stderr_bytes);
      }
      if (owners[i] == &fds.ok_r) {
        const ssize_t n = read(fds.ok_r.fd, buffer, sizeof(buffer));
        if (n > 0) end.sentinel = true;
        if (n == 0) fds.ok_r.Close();
      }
    }
    if (result->stdout_bytes + result->stderr_bytes > options.output_kill_bytes) {
      end.output_limit = true;
      break;
    }
    if (!end.exited) {
      // WNOWAIT: leave the zombie unreaped, so its pid (our process group id) cannot be reused
      // before the group kill that follows the watch.
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        end.exited = true;
        exit_time = std::chrono::steady_clock::now();
        result->elapsed_ms = MsSince(start);
      }
    }
  }
  return end;
}

// Turns how the watch ended and the wait status into the run's outcome and reason.
void SetOutcome(const SandboxOptions& options, const WatchEnd& end, int status,
                ExecResult* result) {
  if (end.timed_out) {
    result->outcome = ExecOutcome::kTimeout;
    result->reason = fmt::format("wall-clock timeout after {} s", options.timeout_s);
    return;
  }
  if (end.output_limit) {
    result->outcome = ExecOutcome::kFailed;
    result->reason = fmt::format("output limit exceeded ({} bytes)", options.output_kill_bytes);
    return;
  }
  if (WIFSIGNALED(status)) {
    result->signal = WTERMSIG(status);
    result->outcome = ExecOutcome::kFailed;
    result->reason = fmt::format("killed by {} ({})", SignalName(result->signal), result->signal);
    return;
  }
  result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // bwrap reports a program killed by a signal as exit status 128 + signal.
  if (!options.unsafe_no_sandbox && result->exit_code > 128 && result->exit_code < 128 + 65) {
    result->signal = result->exit_code - 128;
    result->outcome = ExecOutcome::kFailed;
    result->reason = fmt::format("killed by {} ({})", SignalName(result->signal), result->signal);
    return;
  }
  if (result->exit_code == 0 && end.sentinel) {
    result->outcome = ExecOutcome::kPassed;
    return;
  }
  result->outcome = ExecOutcome::kFailed;
  if (result->exit_code == 0) {
    result->reason = "exited before finishing the program";
  } else {
    const std::string last = LastLine(result->stderr_text);
    result->reason =
        fmt::format("exit code {}{}{}", result->exit_code, last.empty() ? "" : ": ", last);
  }
}

}  // namespace

const char* ExecOutcomeName(ExecOutcome outcome) {
  switch (outcome) {
    case ExecOutcome::kPassed:
      return "passed";
    case ExecOutcome::kFailed:
      return "failed";
    case ExecOutcome::kTimeout:
      return "timeout";
  }
  return "failed";
}

StatusOr<std::unique_ptr<Sandbox>> Sandbox::Create(const SandboxOptions& options_in) {
  SandboxOptions options = options_in;
  if (!(options.timeout_s > 0)) {
    return InvalidArgument("sandbox: timeout must be positive, got {}", options.timeout_s);
  }
  if (options.cpu_s <= 0) options.cpu_s = std::ceil(options.timeout_s) + 1;
  if (options.python.empty()) {
    for (const char* candidate : {"/usr/bin/python3", "/usr/local/bin/python3"}) {
      if (access(candidate, X_OK) == 0) {
        options.python = candidate;
        break;
      }
    }
    if (options.python.empty()) {
      return FailedPrecondition(
          "sandbox: no python3 found at /usr/bin/python3 or /usr/local/bin/python3 (install "
          "the Debian package python3, or name an interpreter)");
    }
  } else if (access(options.python.c_str(), X_OK) != 0) {
    return NotFound("sandbox: python interpreter {} is not an executable file", options.python);
  }
  auto sandbox = std::unique_ptr<Sandbox>(new Sandbox(options));
  std::error_code ec;
  const fs::path real = fs::canonical(options.python, ec);
  if (!ec && real.string().rfind("/usr/", 0) != 0) {
    // e.g. /opt/python3.11/bin/python3.11: bind /opt/python3.11 read-only, nothing wider.
    sandbox->python_prefix_ = real.parent_path().parent_path().string();
    if (sandbox->python_prefix_ == "/" || sandbox->python_prefix_.empty()) {
      return FailedPrecondition("sandbox: python interpreter {} has no installation prefix",
                                real.string());
    }
  }
  if (!options.unsafe_no_sandbox) {
    if (sandbox->options_.bwrap.empty()) sandbox->options_.bwrap = FindOnPath("bwrap");
    if (sandbox->options_.bwrap.empty() || access(sandbox->options_.bwrap.c_str(), X_OK) != 0) {
      return FailedPrecondition(
          "sandbox: bubblewrap ({}) is not installed, so model-written code cannot be run "
          "safely; install the Debian package 'bubblewrap' (scripts/deps.sh), or pass "
          "--unsafe-no-sandbox to run it without isolation (trusted code only)",
          sandbox->options_.bwrap.empty() ? "bwrap on PATH" : sandbox->options_.bwrap);
    }
  }
  // Probe: the machinery must work before real programs are judged by it.
  const ExecResult probe = sandbox->Run("import sys\nassert sys.version_info >= (3, 0)\n", 0);
  if (!probe.passed()) {
    std::string detail = LastLine(probe.stderr_text);
    if (detail.empty()) detail = probe.reason;
    if (options.unsafe_no_sandbox) {
      return FailedPrecondition("sandbox: {} cannot run a trivial program: {}", options.python,
                                detail);
    }
    return FailedPrecondition(
        "sandbox: bubblewrap cannot create its namespaces here ({}); this happens in "
        "containers without user-namespace support or where AppArmor restricts unprivileged "
        "user namespaces. Allow them (e.g. sysctl kernel.unprivileged_userns_clone=1 or "
        "kernel.apparmor_restrict_unprivileged_userns=0), or pass --unsafe-no-sandbox to run "
        "without isolation (trusted code only)",
        detail);
  }
  return sandbox;
}

std::string Sandbox::Describe() const {
  std::string text;
  if (sandboxed()) {
    text = fmt::format(
        "bubblewrap {} (no network, read-only /usr, private /tmp, new pid+user "
        "namespaces)",
        options_.bwrap);
  } else {
    text = "UNSAFE: no sandbox (rlimits and timeout only)";
  }
  if (options_.lm_eval_guard) text += ", code_eval reliability guard";
  text += fmt::format(", python {}, timeout {} s, cpu {} s, address space {} MiB, processes {}",
                      options_.python, options_.timeout_s, options_.cpu_s,
                      options_.address_space_bytes >> 20, options_.max_processes);
  return text;
}

std::vector<std::string> Sandbox::BuildCommand(int program_fd, int sentinel_fd) const {
  const uint64_t nproc_in_runner = options_.max_processes;
  std::vector<std::string> args;
  if (!sandboxed()) {
    args = {options_.python,
            "-s",
            "-c",
            kRunner,
            fmt::format("/proc/self/fd/{}", program_fd),
            std::to_string(sentinel_fd),
            std::to_string(geteuid() == 0 ? nproc_in_runner : 0),
            options_.lm_eval_guard ? "1" : "0"};
    return args;
  }
  const std::string tmpfs_size = std::to_string(options_.file_size_bytes);
  args = {options_.bwrap,
          "--unshare-all",
          "--unshare-user",
          "--disable-userns",
          "--die-with-parent",
          "--new-session",
          "--cap-drop",
          "ALL",
          "--uid",
          std::to_string(kSandboxUid),
          "--gid",
          std::to_string(kSandboxUid),
          "--hostname",
          "rvec-sandbox",
          "--ro-bind",
          "/usr",
          "/usr"};
  // Mirror the host's /bin, /lib... (symlinks into /usr on merged-/usr systems).
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      const ssize_t n = readlink(top, target, sizeof(target) - 1);
      if (n <= 0) continue;
      args.insert(args.end(), {"--symlink", std::string(target, n), top});
    } else if (S_ISDIR(st.st_mode)) {
      args.insert(args.end(), {"--ro-bind", top, top});
    }
  }
  for (const char* etc : {"/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"}) {
    args.insert(args.end(), {"--ro-bind-try", etc, etc});
  }
  if (!python_prefix_.empty())
    args.insert(args.end(), {"--ro-bind", python_prefix_, python_prefix_});
  args.insert(args.end(), {"--proc",
                           "/proc",
                           "--dev",
                           "/dev",
                           "--size",
                           tmpfs_size,
                           "--tmpfs",
                           "/tmp",
                           "--size",
                           tmpfs_size,
                           "--tmpfs",
                           "/sandbox",
                           "--dir",
                           "/rvec",
                           "--ro-bind-data",
                           std::to_string(program_fd),
                           "/rvec/program.py",
                           "--remount-ro",
                           "/",
                           "--chdir",
                           "/sandbox",
                           "--clearenv"});
  const std::pair<const char*, const char*> env[] = {{"PATH", "/usr/bin:/bin"},
                                                     {"HOME", "/sandbox"},
                                                     {"LANG", "C.UTF-8"},
                                                     {"PYTHONHASHSEED", "0"},
                                                     {"PYTHONDONTWRITEBYTECODE", "1"},
                                                     {"OMP_NUM_THREADS", "1"}};
  for (const auto& [key, value] : env) args.insert(args.end(), {"--setenv", key, value});
  args.insert(args.end(), {"--", options_.python, "-s", "-c", kRunner, "/rvec/program.py",
                           std::to_string(sentinel_fd), std::to_string(nproc_in_runner),
                           options_.lm_eval_guard ? "1" : "0"});
  return args;
}

ExecResult Sandbox::Run(const std::string& program, size_t slot) const {
  ExecResult result;
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](std::string reason) {
    result.outcome = ExecOutcome::kFailed;
    result.reason = std::move(reason);
    result.elapsed_ms = MsSince(start);
    return result;
  };

  RunFds fds;
  if (std::string error = OpenRunFds(program, &fds); !error.empty()) {
    return fail(std::move(error));
  }

  // Unsafe mode still gets a private, empty working directory.
  std::string workdir;
  if (!sandboxed()) {
    std::string templ = (fs::temp_directory_path() / "rvec-unsafe-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) return fail("mkdtemp failed");
    workdir = templ;
  }
  WorkdirCleanup workdir_cleanup{workdir};

  const bool as_root = geteuid() == 0;
  const uid_t slot_uid = kSlotUidBase + static_cast<uid_t>(slot % kMaxSlots);
  if (as_root && !workdir.empty()) {
    if (chown(workdir.c_str(), slot_uid, slot_uid) != 0) return fail("chown of workdir failed");
  }
  CArgs argv(BuildCommand(fds.program.fd, fds.ok_w.fd));
  CArgs envp(sandboxed()
                 ? std::vector<std::string>{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
                 : std::vector<std::string>{"PATH=/usr/bin:/bin", "HOME=" + workdir, "LANG=C.UTF-8",
                                            "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1",
                                            "OMP_NUM_THREADS=1"});
  const uint64_t cpu_s = static_cast<uint64_t>(std::ceil(options_.cpu_s));
  const ChildPlan plan{&fds, &options_, cpu_s, as_root, slot_uid, &workdir, &argv, &envp};

  const pid_t pid = fork();
  if (pid < 0) return fail(fmt::format("fork: {}", strerror(errno)));
  if (pid == 0) RunChild(plan);
  fds.out_w.Close();
  fds.err_w.Close();
  fds.ok_w.Close();
  fds.program.Close();
  fds.null.Close();
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));

  const WatchEnd end = Watch(pid, fds, pidfd, options_, start, &result);
  // Whatever is still in the process group goes (in the sandbox the pid namespace dies with
  // bwrap through --die-with-parent; this also covers unsafe mode's stragglers).
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!end.exited) result.elapsed_ms = MsSince(start);
  SetOutcome(options_, end, status, &result);
  return result;
}

std::vector<ExecResult> Sandbox::RunAll(const std::vector<std::string>& programs, size_t jobs,
                                        Progress* progress) const {
  std::vector<ExecResult> results(programs.size());
  ThreadPool pool(std::max<size_t>(1, std::min(jobs, kMaxSlots)));
  pool.ParallelFor(programs.size(), [&](size_t task, size_t worker) {
    results[task] = Run(programs[task], worker);
    if (progress) progress->Advance();
  });
  return results;
}

StatusOr<double> PassAtK(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    return InvalidArgument("pass@k needs 0 <= c <= n and 1 <= k <= n, got n={} c={} k={}", n, c, k);
  }
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) {
    prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  }
  return 1.0 - prod;
}

}  // namespace rvec::eval
