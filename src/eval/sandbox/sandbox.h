// Runs untrusted Python programs (model-written code) inside bubblewrap with rlimits and timeouts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"

namespace rvec::eval {

struct SandboxOptions {
  // Interpreter run inside the sandbox. Empty: /usr/bin/python3, else /usr/local/bin/python3.
  // An interpreter outside /usr has its installation prefix bound read-only (never $HOME itself).
  std::string python;
  // bwrap executable; empty: searched on PATH.
  std::string bwrap;
  double timeout_s = 3.0;  // wall clock, per program; the whole process tree is killed after it
  double cpu_s = 0.0;      // RLIMIT_CPU; 0: ceil(timeout_s) + 1
  uint64_t address_space_bytes = uint64_t{1} << 30;  // RLIMIT_AS per process
  uint64_t file_size_bytes = uint64_t{16} << 20;     // RLIMIT_FSIZE and each tmpfs' size
  // RLIMIT_NPROC inside the sandbox's user namespace (threads count too). With RLIMIT_AS this
  // bounds one program to max_processes x address_space_bytes of memory (no cgroup is used).
  uint64_t max_processes = 8;
  uint64_t max_open_files = 256;
  size_t output_capture_bytes = 64 << 10;  // kept per stream (stdout, stderr); the rest is drained
  uint64_t output_kill_bytes = uint64_t{64} << 20;  // total output after which the run is killed
  // Disable inside the program what HF code_eval's reliability_guard disables (os.fork,
  // os.getcwd, subprocess.Popen, shutil.rmtree, exit, ...), so that pass/fail matches lm-eval's
  // humaneval. Off for plain sandboxed execution. Not a security measure.
  bool lm_eval_guard = false;
  // Runs python3 directly (rlimits, timeout, private temp dir, but no namespaces). Only for
  // machines where bubblewrap cannot work, and only with trusted code.
  bool unsafe_no_sandbox = false;
};

enum class ExecOutcome { kPassed, kFailed, kTimeout };
const char* ExecOutcomeName(ExecOutcome outcome);

struct ExecResult {
  ExecOutcome outcome = ExecOutcome::kFailed;
  // Why it failed: "exit code 1", "killed by signal 9", "output limit exceeded",
  // "wall-clock timeout after 3.0 s", "exited before finishing the program", ... Empty if passed.
  std::string reason;
  double elapsed_ms = 0.0;
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string stdout_text;  // first output_capture_bytes bytes
  std::string stderr_text;
  uint64_t stdout_bytes = 0;  // total bytes seen (including the dropped part)
  uint64_t stderr_bytes = 0;
  bool passed() const { return outcome == ExecOutcome::kPassed; }
};

// A program passes when it runs to its end without an exception: like HF `evaluate` code_eval
// (used by lm-eval's humaneval), the source is exec()'d with empty globals, and raising anything
// (SystemExit included), exiting early (os._exit), being killed, or timing out is a failure.
class Sandbox {
 public:
  // Finds bwrap and python3 and runs a probe program through the sandbox, so that a machine
  // where namespaces are forbidden is reported here, with bwrap's own message, rather than as
  // 164 failed problems. Without bwrap (or with a failing probe) this refuses unless
  // options.unsafe_no_sandbox is set.
  static StatusOr<std::unique_ptr<Sandbox>> Create(const SandboxOptions& options);

  // Runs one program; thread-safe. `slot` (< 4096) distinguishes concurrent runs: as root each
  // slot runs under its own unprivileged host uid, so process limits are per program.
  ExecResult Run(const std::string& program, size_t slot = 0) const;

  // Runs all programs, at most `jobs` at a time; results in input order.
  std::vector<ExecResult> RunAll(const std::vector<std::string>& programs, size_t jobs,
                                 Progress* progress = nullptr) const;

  bool sandboxed() const { return !options_.unsafe_no_sandbox; }
  const SandboxOptions& options() const { return options_; }
  // "bwrap 0.8.0 (/usr/bin/bwrap), python /usr/bin/python3, ..." for logs and results.
  std::string Describe() const;

 private:
  explicit Sandbox(SandboxOptions options) : options_(std::move(options)) {}
  std::vector<std::string> BuildCommand(int program_fd, int sentinel_fd) const;

  SandboxOptions options_;
  std::string python_prefix_;  // bound read-only when the interpreter lives outside /usr
  std::string bwrap_version_;
};

// Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), computed like HF
// code_eval as 1 - prod_{i=n-c+1}^{n} (1 - k / i) (no factorials, no overflow); 1 when n - c < k.
// Requires 0 <= c <= n and 1 <= k <= n (code_eval reports pass@k only where every problem has
// at least k samples).
StatusOr<double> PassAtK(int64_t n, int64_t c, int64_t k);

}  // namespace rvec::eval
