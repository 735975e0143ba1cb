// Evaluation throughput: samples/s of gsm8k (5-shot, greedy, up to 256 new tokens) through the
// local backend on the synthetic qwen2.5-0.5b model. RVEC_EVAL_BENCH_LIMIT (default 50) sets
// --limit; RVEC_TEST_DATA locates the data. The model is written once into the build directory.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "base/fs.h"
#include "eval/backend.h"
#include "eval/runner.h"
#include "model/engine.h"
#include "synth/synth.h"

namespace {

namespace fs = std::filesystem;

void BM_Gsm8kLocal(benchmark::State& state) {
  const fs::path root = fs::temp_directory_path() / "rvec_eval_bench";
  const fs::path model = root / "qwen2.5-0.5b";
  if (!fs::exists(model / "config.json")) {
    rvec::SynthOptions so;
    so.preset = "qwen2.5-0.5b";
    so.seed = 1;
    so.out = model;
    so.force = true;
    auto r = rvec::WriteSyntheticModel(so, nullptr);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
  }
  rvec::EngineOptions eo;
  auto engine = rvec::Engine::Load(model, eo);
  if (!engine.ok()) {
    state.SkipWithError(engine.status().ToString().c_str());
    return;
  }
  auto backend = rvec::eval::MakeLocalBackend(engine->get(), 32768);
  const char* env = std::getenv("RVEC_EVAL_BENCH_LIMIT");
  const size_t limit = env ? std::strtoul(env, nullptr, 10) : 50;
  size_t samples = 0;
  for (auto _ : state) {
    rvec::eval::EvalOptions o;
    o.tasks = {"gsm8k"};
    o.data_dir = rvec::TestDataDir(RVEC_TEST_DATA_DEFAULT);
    o.limit = limit;
    o.output_dir = root / "run";
    o.force = true;
    o.chunk = 64;
    auto r = rvec::eval::RunEvaluation(**backend, o);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    samples += limit;
  }
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Gsm8kLocal)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
