// Sandbox tests: hostile programs are contained and fail, the host is unchanged; pass@k estimator.
#include "eval/sandbox/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Sandbox> MakeSandbox(double timeout_s = 2.0) {
  SandboxOptions options;
  options.timeout_s = timeout_s;
  auto sandbox = Sandbox::Create(options);
  EXPECT_TRUE(sandbox.ok()) << "the sandbox tests need a working bubblewrap (Debian package "
                               "'bubblewrap', user namespaces allowed): "
                            << sandbox.status().message();
  if (!sandbox.ok()) return nullptr;
  return std::move(sandbox).value();
}

std::string UniqueMarker(const std::string& what) {
  std::random_device rd;
  return "rvecmarker-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(rd());
}

// Number of live (non-zombie) host processes whose command line contains `marker`.
int CountProcesses(const std::string& marker) {
  int count = 0;
  DIR* dir = opendir("/proc");
  if (!dir) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    // Plain read(): a process may exit between readdir and the read (ESRCH), which libstdc++'s
    // stream buffers report by throwing.
    std::string cmdline;
    const int fd = open((std::string("/proc/") + entry->d_name + "/cmdline").c_str(), O_RDONLY);
    if (fd >= 0) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) cmdline.append(buf, static_cast<size_t>(n));
      close(fd);
    }
    if (cmdline.find(marker) != std::string::npos) ++count;
  }
  closedir(dir);
  return count;
}

// Waits briefly for processes to be reaped (a killed task may linger for a moment).
int CountProcessesAfter(const std::string& marker) {
  int count = 0;
  for (int i = 0; i < 40; ++i) {
    count = CountProcesses(marker);
    if (count == 0) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return count;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

fs::path HomeDir() {
  const char* home = std::getenv("HOME");
  return home && *home ? fs::path(home) : fs::path("/root");
}

TEST(SandboxTest, OrdinaryProgramPassesAndOutputIsCaptured) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const ExecResult r = sandbox->Run("print(1)\nimport sys\nprint('err', file=sys.stderr)\n");
  EXPECT_TRUE(r.passed()) << r.reason << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "1\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_GT(r.elapsed_ms, 0.0);
}

TEST(SandboxTest, FailuresAreReportedWithReasons) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  ExecResult r = sandbox->Run("assert 1 == 2, 'wrong answer'\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.reason.find("AssertionError: wrong answer"), std::string::npos) << r.reason;
  r = sandbox->Run("def f(:\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.reason.find("SyntaxError"), std::string::npos) << r.reason;
  // Like HF code_eval: leaving early is not success, whatever the exit status.
  r = sandbox->Run("import sys\nsys.exit(0)\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << r.reason;
  r = sandbox->Run("import os\nos._exit(0)\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_EQ(r.reason, "exited before finishing the program");
  // Empty globals, as code_eval's exec(program, {}).
  r = sandbox->Run("assert __name__ == '__main__'\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
}

TEST(SandboxTest, RunsAsUnprivilegedUserWithoutCapabilities) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const ExecResult r = sandbox->Run(
      "import os\n"
      "print(os.getuid(), os.geteuid())\n"
      "print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0], end='')\n"
      "print(sorted(os.listdir('/')))\n"
      "os.setuid(0)\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.stdout_text.find("65534 65534"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("CapEff:\t0000000000000000"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("'root'"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("'home'"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("'work'"), std::string::npos) << r.stdout_text;
  // EINVAL (uid 0 is not mapped in the user namespace) or EPERM, never success.
  EXPECT_NE(r.reason.find("Errno"), std::string::npos) << r.reason;
}

TEST(SandboxTest, InfiniteLoopTimesOut) {
  auto sandbox = MakeSandbox(/*timeout_s=*/1.0);
  ASSERT_NE(sandbox, nullptr);
  ExecResult r = sandbox->Run("while True:\n    pass\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kTimeout) << r.reason;
  EXPECT_GE(r.elapsed_ms, 900.0);
  EXPECT_LT(r.elapsed_ms, 5000.0);
  // Sleeping uses no CPU: only the wall clock stops it.
  r = sandbox->Run("import time\ntime.sleep(30)\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kTimeout) << r.reason;
  EXPECT_LT(r.elapsed_ms, 5000.0);
}

TEST(SandboxTest, CpuTimeLimitKillsBusyLoopEvenWithLongWallClock) {
  SandboxOptions options;
  options.timeout_s = 10.0;
  options.cpu_s = 1.0;
  auto sandbox = Sandbox::Create(options);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
  const ExecResult r = (*sandbox)->Run("while True:\n    pass\n");
  // On an idle machine SIGXCPU after ~1 s; on a heavily loaded one the wall clock may win.
  EXPECT_FALSE(r.passed());
  if (r.outcome == ExecOutcome::kFailed) {
    EXPECT_TRUE(r.reason.find("SIGXCPU") != std::string::npos ||
                r.reason.find("SIGKILL") != std::string::npos)
        << r.reason;
  }
}

TEST(SandboxTest, HugeAllocationFails) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const ExecResult r = sandbox->Run("x = bytearray(10 * 1024 ** 3)\nprint(len(x))\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.reason.find("MemoryError"), std::string::npos) << r.reason;
}

TEST(SandboxTest, ForkBombIsLimitedAndLeavesNoProcesses) {
  auto sandbox = MakeSandbox(/*timeout_s=*/2.0);
  ASSERT_NE(sandbox, nullptr);
  const std::string marker = UniqueMarker("forkbomb");
  const std::string program =
      "import os, sys\n"
      "bomb = 'import os\\nwhile True:\\n    try:\\n        os.fork()\\n"
      "    except OSError:\\n        pass\\n'\n"
      "os.execv(sys.executable, [sys.executable, '-c', bomb, '" +
      marker + "'])\n";
  std::atomic<bool> done{false};
  int peak = 0;
  std::thread watcher([&] {
    while (!done.load()) {
      peak = std::max(peak, CountProcesses(marker));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const ExecResult r = sandbox->Run(program);
  done = true;
  watcher.join();
  EXPECT_FALSE(r.passed());
  EXPECT_GT(peak, 0) << "the fork bomb never ran";
  EXPECT_LE(peak, static_cast<int>(sandbox->options().max_processes)) << "RLIMIT_NPROC not applied";
  EXPECT_EQ(CountProcessesAfter(marker), 0) << "fork bomb processes survived the sandbox";
}

TEST(SandboxTest, BackgroundProcessDoesNotOutliveTheProgram) {
  auto sandbox = MakeSandbox(/*timeout_s=*/20.0);  // generous: CI machines can be very loaded
  ASSERT_NE(sandbox, nullptr);
  const std::string marker = UniqueMarker("daemon");
  // A new session via Popen, and a classic double-forked daemon; both would outlive a plain
  // process-group kill. The program waits until both run, then fails.
  const std::string program =
      "import os, subprocess, sys, time\n"
      "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '" +
      marker +
      "'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        os.execv('/bin/sh', ['" +
      marker +
      "', '-c', 'sleep 60'])\n"
      "    os._exit(0)\n"
      "def running():\n"
      "    n = 0\n"
      "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
      "        try:\n"
      "            n += '" +
      marker +
      "' in open('/proc/%s/cmdline' % pid).read()\n"
      "        except OSError:\n"
      "            pass\n"
      "    return n\n"
      "while running() < 2:\n"
      "    time.sleep(0.02)\n"
      "print('both running', flush=True)\n"
      "raise RuntimeError('spawned background processes')\n";
  const ExecResult r = sandbox->Run(program);
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << r.reason;
  EXPECT_NE(r.reason.find("spawned background processes"), std::string::npos) << r.reason;
  EXPECT_EQ(r.stdout_text, "both running\n");
  EXPECT_EQ(CountProcessesAfter(marker), 0) << "a background process outlived the sandbox";
}

TEST(SandboxTest, HostFilesInHomeAndTmpCannotBeChanged) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const std::string marker = UniqueMarker("file");
  const fs::path home_file = HomeDir() / ("." + marker);
  const fs::path tmp_file = fs::temp_directory_path() / marker;
  const fs::path home_new = HomeDir() / ("." + marker + ".new");
  const fs::path tmp_new = fs::temp_directory_path() / (marker + ".new");
  WriteAll(home_file, "original home\n");
  WriteAll(tmp_file, "original tmp\n");
  ASSERT_EQ(ReadAll(home_file), "original home\n") << "cannot create " << home_file;
  for (const fs::path& target : {home_file, tmp_file}) {
    const std::string program =
        "import os\n"
        "p = '" +
        target.string() +
        "'\n"
        "new = p + '.new'\n"
        "for f in (p, new):\n"
        "    try:\n"
        "        with open(f, 'w') as out: out.write('pwned')\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    os.remove(p)\n"
        "except OSError:\n"
        "    pass\n"
        "os.system('rm -rf ' + os.path.dirname(p) + '/*')\n"
        "assert open(p).read() == 'original', 'could not see the host file'\n";
    const ExecResult r = sandbox->Run(program);
    EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << r.reason;
  }
  EXPECT_EQ(ReadAll(home_file), "original home\n");
  EXPECT_EQ(ReadAll(tmp_file), "original tmp\n");
  EXPECT_FALSE(fs::exists(home_new));
  EXPECT_FALSE(fs::exists(tmp_new));
  fs::remove(home_file);
  fs::remove(tmp_file);
}

TEST(SandboxTest, SecretsInSshAndModelDirectoriesCannotBeRead) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const std::string marker = UniqueMarker("secret");
  const std::string secret = "SECRET-" + marker;
  // A fake ~/.ssh (inside a test directory under the real home, to leave the real one alone)
  // and a fake model directory under /tmp.
  const fs::path fake_home = HomeDir() / ("." + marker);
  const fs::path ssh_key = fake_home / ".ssh" / "id_ed25519";
  const fs::path model_dir = fs::temp_directory_path() / (marker + "-model");
  fs::create_directories(ssh_key.parent_path());
  fs::create_directories(model_dir);
  WriteAll(ssh_key, secret);
  WriteAll(model_dir / "model.safetensors", secret);
  for (const fs::path& target : {ssh_key, model_dir / "model.safetensors",
                                 HomeDir() / ".ssh" / "id_rsa", fs::path("/etc/shadow")}) {
    const ExecResult r = sandbox->Run("print(open('" + target.string() + "').read())\n");
    EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << target;
    EXPECT_EQ(r.stdout_text.find(secret), std::string::npos) << target;
  }
  // Walking the whole visible file system finds nothing either.
  const ExecResult walk = sandbox->Run(
      "import os\n"
      "for root, dirs, files in os.walk('/'):\n"
      "    if root == '/': dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev', 'usr')]\n"
      "    for f in files:\n"
      "        if '" +
      marker +
      "' in os.path.join(root, f): print(os.path.join(root, f))\n"
      "raise SystemExit('walked')\n");
  EXPECT_EQ(walk.outcome, ExecOutcome::kFailed);
  EXPECT_EQ(walk.stdout_text.find(marker), std::string::npos) << walk.stdout_text;
  fs::remove_all(fake_home);
  fs::remove_all(model_dir);
}

TEST(SandboxTest, NoNetwork) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  const ExecResult r = sandbox->Run(
      "import socket\n"
      "s = socket.create_connection(('127.0.0.1', " +
      std::to_string(port) +
      "), timeout=1)\n"
      "s.sendall(b'exfiltrated')\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.reason.find("ConnectionRefusedError"), std::string::npos) << r.reason;
  const int conn = accept(listener, nullptr, nullptr);
  EXPECT_LT(conn, 0) << "a connection from the sandbox reached the host listener";
  if (conn >= 0) close(conn);
  close(listener);
  // Nothing outside either (no route, no DNS).
  const ExecResult outside =
      sandbox->Run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n");
  EXPECT_EQ(outside.outcome, ExecOutcome::kFailed);
}

TEST(SandboxTest, GigabyteOfOutputIsCappedAndKilled) {
  auto sandbox = MakeSandbox(/*timeout_s=*/5.0);
  ASSERT_NE(sandbox, nullptr);
  const ExecResult r = sandbox->Run(
      "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed);
  EXPECT_NE(r.reason.find("output limit"), std::string::npos) << r.reason;
  EXPECT_LE(r.stdout_text.size(), sandbox->options().output_capture_bytes);
  EXPECT_LT(r.stdout_bytes, uint64_t{1} << 30);
}

TEST(SandboxTest, LargeFileWriteIsLimited) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  const ExecResult r = sandbox->Run(
      "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
      "with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (64 << 20))\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << r.reason;
}

TEST(SandboxTest, RunAllKeepsOrderAcrossJobs) {
  auto sandbox = MakeSandbox();
  ASSERT_NE(sandbox, nullptr);
  std::vector<std::string> programs;
  for (int i = 0; i < 6; ++i)
    programs.push_back(i % 2 ? "assert False\n" : "print(" + std::to_string(i) + ")\n");
  const auto results = sandbox->RunAll(programs, 3);
  ASSERT_EQ(results.size(), programs.size());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(results[i].passed(), i % 2 == 0) << i;
    if (i % 2 == 0) {
      EXPECT_EQ(results[i].stdout_text, std::to_string(i) + "\n");
    }
  }
}

TEST(SandboxTest, LmEvalGuardDisablesWhatCodeEvalDisables) {
  SandboxOptions options;
  options.lm_eval_guard = true;
  auto guarded = Sandbox::Create(options);
  ASSERT_TRUE(guarded.ok()) << guarded.status().message();
  EXPECT_TRUE((*guarded)->Run("print(sum(range(10)))\n").passed());
  for (const char* program :
       {"import os\nos.getcwd()\n", "import subprocess\nsubprocess.Popen(['true'])\n",
        "import shutil\nshutil.rmtree('/tmp/x')\n", "exit(0)\n", "import resource\n"}) {
    const ExecResult r = (*guarded)->Run(program);
    EXPECT_EQ(r.outcome, ExecOutcome::kFailed) << program;
  }
  auto plain = MakeSandbox();
  ASSERT_NE(plain, nullptr);
  EXPECT_TRUE(plain->Run("import os\nassert os.getcwd() == '/sandbox'\n").passed());
}

TEST(SandboxTest, MissingBubblewrapRefusesUnlessUnsafe) {
  SandboxOptions options;
  options.bwrap = "/nonexistent/bwrap";
  auto refused = Sandbox::Create(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--unsafe-no-sandbox"), std::string::npos);
  EXPECT_NE(refused.status().message().find("bubblewrap"), std::string::npos);
  options.unsafe_no_sandbox = true;
  options.timeout_s = 2.0;
  auto unsafe = Sandbox::Create(options);
  ASSERT_TRUE(unsafe.ok()) << unsafe.status().message();
  EXPECT_FALSE((*unsafe)->sandboxed());
  EXPECT_NE((*unsafe)->Describe().find("UNSAFE"), std::string::npos);
  ExecResult r = (*unsafe)->Run("print(2 + 2)\n");
  EXPECT_TRUE(r.passed()) << r.reason;
  EXPECT_EQ(r.stdout_text, "4\n");
  r = (*unsafe)->Run("while True:\n    pass\n");
  EXPECT_EQ(r.outcome, ExecOutcome::kTimeout);
}

// Scalar reference: exact binomials for small n.
double BinomialRatio(int n, int c, int k) {
  if (n - c < k) return 0.0;
  double num = 1, den = 1;  // C(n-c,k) / C(n,k) = prod_{j<k} (n-c-j)/(n-j)
  for (int j = 0; j < k; ++j) {
    num *= n - c - j;
    den *= n - j;
  }
  return num / den;
}

TEST(PassAtKTest, MatchesExactBinomials) {
  for (int n = 1; n <= 30; ++n) {
    for (int c = 0; c <= n; ++c) {
      for (int k = 1; k <= n; ++k) {
        auto v = PassAtK(n, c, k);
        ASSERT_TRUE(v.ok());
        EXPECT_NEAR(*v, 1.0 - BinomialRatio(n, c, k), 1e-12) << n << " " << c << " " << k;
      }
    }
  }
  EXPECT_EQ(*PassAtK(1, 0, 1), 0.0);
  EXPECT_EQ(*PassAtK(1, 1, 1), 1.0);
  EXPECT_NEAR(*PassAtK(5, 2, 2), 0.7, 1e-15);
  EXPECT_NEAR(*PassAtK(10, 3, 1), 0.3, 1e-15);
}

TEST(PassAtKTest, LargeNIsStable) {
  // C(1000, 64) overflows doubles; the product form does not. Reference via lgamma.
  const int n = 1000, c = 37, k = 64;
  auto lchoose = [](double a, double b) {
    return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1);
  };
  const double ref = 1.0 - std::exp(lchoose(n - c, k) - lchoose(n, k));
  auto v = PassAtK(n, c, k);
  ASSERT_TRUE(v.ok());
  EXPECT_NEAR(*v, ref, 1e-9);
  EXPECT_TRUE(std::isfinite(*v));
}

TEST(PassAtKTest, RejectsInvalidCounts) {
  EXPECT_FALSE(PassAtK(0, 0, 1).ok());
  EXPECT_FALSE(PassAtK(5, 6, 1).ok());
  EXPECT_FALSE(PassAtK(5, -1, 1).ok());
  EXPECT_FALSE(PassAtK(5, 2, 0).ok());
  EXPECT_FALSE(PassAtK(5, 2, 6).ok());
}

}  // namespace
}  // namespace rvec::eval
