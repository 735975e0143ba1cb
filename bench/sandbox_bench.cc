// Sandbox cost: print(1) through bubblewrap vs plain python3, and HumanEval scoring time for the
// 164 canonical solutions (the number the evaluation notes quote).
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>

#include "base/fs.h"
#include "eval/sandbox/sandbox.h"
#include "eval/tasks/humaneval.h"

extern char** environ;

namespace rvec::eval {
namespace {

void BM_PlainPython(benchmark::State& state) {
  char arg0[] = "/usr/bin/python3", arg1[] = "-c", arg2[] = "print(1)";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", 1 /*O_WRONLY*/, 0);
  for (auto _ : state) {
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
  posix_spawn_file_actions_destroy(&actions);
}
BENCHMARK(BM_PlainPython)->Unit(benchmark::kMillisecond)->UseRealTime();

void RunThroughSandbox(benchmark::State& state, bool unsafe) {
  SandboxOptions options;
  options.unsafe_no_sandbox = unsafe;
  auto sandbox = Sandbox::Create(options);
  if (!sandbox.ok()) {
    state.SkipWithError(sandbox.status().message().c_str());
    return;
  }
  for (auto _ : state) {
    const ExecResult r = (*sandbox)->Run("print(1)\n");
    if (!r.passed()) {
      state.SkipWithError(r.reason.c_str());
      break;
    }
  }
}
void BM_SandboxPrint(benchmark::State& state) { RunThroughSandbox(state, false); }
BENCHMARK(BM_SandboxPrint)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_UnsafeNoSandboxPrint(benchmark::State& state) { RunThroughSandbox(state, true); }
BENCHMARK(BM_UnsafeNoSandboxPrint)->Unit(benchmark::kMillisecond)->UseRealTime();

// arg = --jobs.
void BM_HumanEvalCanonical164(benchmark::State& state) {
  CodeExecutionOptions options;
  options.allow = true;
  options.jobs = static_cast<size_t>(state.range(0));
  SetCodeExecutionOptions(options);
  EvalTask task(HumanEvalConfig());
  const Status loaded = task.Load(TestDataDir(RVEC_TEST_DATA_DEFAULT));
  if (!loaded.ok()) {
    state.SkipWithError(loaded.message().c_str());
    return;
  }
  std::vector<size_t> ids;
  std::vector<DocResponse> responses;
  for (size_t i = 0; i < task.size(); ++i) {
    ids.push_back(i);
    responses.push_back({task.doc(i)["canonical_solution"].get<std::string>(), {}, {}});
  }
  size_t passed = 0;
  for (auto _ : state) {
    SetCodeExecutionOptions(options);  // drops the cached outcomes: every iteration runs all 164
    if (!PrecomputeCodeExecution(task, ids, responses, nullptr).ok()) {
      state.SkipWithError("execution failed");
      break;
    }
    passed = 0;
    for (size_t i = 0; i < task.size(); ++i) {
      auto s = task.Score(i, responses[i]);
      if (s.ok() && s->metrics["pass@1,create_test"] == 1.0) ++passed;
    }
  }
  state.counters["passed"] = static_cast<double>(passed);
}
BENCHMARK(BM_HumanEvalCanonical164)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
}  // namespace rvec::eval

BENCHMARK_MAIN();
