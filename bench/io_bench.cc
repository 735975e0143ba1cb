// Checkpoint I/O benchmarks: `rvec inspect` latency (Checkpoint::Open + summary, headers only) on a
// Qwen2.5-1.5B-shaped sharded bf16 checkpoint, and CheckpointWriter streaming throughput.
//
// The 3.1 GB model is written once to $RVEC_BENCH_DIR (default /tmp/rvec-io-bench) with the
// `qwen2.5-1.5b` synth preset's exact tensor names and shapes (zero-filled: header latency does not
// depend on the values) and reused on later runs.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/fs.h"
#include "io/checkpoint.h"
#include "io/checkpoint_summary.h"
#include "io/checkpoint_writer.h"
#include "synth/synth.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;

fs::path BenchDir() {
  const char* env = std::getenv("RVEC_BENCH_DIR");
  return fs::path(env && *env ? env : "/tmp/rvec-io-bench");
}

std::vector<TensorSpec> QwenTensors() {
  auto preset = GetSynthPreset("qwen2.5-1.5b");
  if (!preset.ok()) {
    std::fprintf(stderr, "%s\n", preset.status().ToString().c_str());
    std::exit(1);
  }
  if (preset->vocab_size == 0) preset->vocab_size = 151936;
  std::vector<TensorSpec> specs;
  for (const SynthTensor& t : SynthTensors(*preset, DType::kBF16)) specs.push_back(t.spec);
  return specs;
}

// Streams zeros into every tensor; returns bytes written.
uint64_t WriteModel(const fs::path& out, const std::vector<TensorSpec>& specs, uint64_t budget,
                    bool force) {
  CheckpointWriterOptions options;
  options.max_shard_bytes = budget;
  options.force = force;
  auto writer = CheckpointWriter::Create(out, specs, options);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<uint8_t> zeros(64 << 20, 0);
  uint64_t total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t bytes = specs[i].NumBytes();
    for (uint64_t off = 0; off < bytes; off += zeros.size()) {
      const uint64_t n = std::min<uint64_t>(zeros.size(), bytes - off);
      if (!(*writer)->Write(i, off, zeros.data(), n).ok()) std::exit(1);
    }
    total += bytes;
  }
  auto preset = GetSynthPreset("qwen2.5-1.5b");
  if (preset.ok()) {
    if (preset->vocab_size == 0) preset->vocab_size = 151936;
    if (!WriteFileAtomic((*writer)->staging_dir() / "config.json",
                         SynthConfigJson(*preset, DType::kBF16, 151643, 151645))
             .ok()) {
      std::exit(1);
    }
  }
  const Status st = (*writer)->Finish();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    std::exit(1);
  }
  return total;
}

// The sharded model, written on first use: 2 shards under transformers' 2 GB-ish budget.
const fs::path& ShardedModel() {
  static const fs::path dir = [] {
    const fs::path d = BenchDir() / "qwen2.5-1.5b-bf16";
    if (!Checkpoint::Open(d).ok()) {
      std::fprintf(stderr, "writing %s (once)...\n", d.string().c_str());
      WriteModel(d, QwenTensors(), 2'000'000'000ULL, /*force=*/true);
    }
    return d;
  }();
  return dir;
}

void DropPageCache(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void BM_CheckpointOpen(benchmark::State& state) {
  const fs::path& dir = ShardedModel();
  for (auto _ : state) {
    auto ckpt = Checkpoint::Open(dir);
    if (!ckpt.ok()) state.SkipWithError(ckpt.status().message().c_str());
    benchmark::DoNotOptimize(ckpt->TotalParameters());
  }
}
BENCHMARK(BM_CheckpointOpen)->Unit(benchmark::kMillisecond);

// What `rvec inspect --tensors --json` does, minus printing.
void BM_InspectEquivalent(benchmark::State& state) {
  const fs::path& dir = ShardedModel();
  const bool cold = state.range(0) != 0;
  uint64_t params = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      DropPageCache(dir);
      state.ResumeTiming();
    }
    auto ckpt = Checkpoint::Open(dir);
    if (!ckpt.ok()) state.SkipWithError(ckpt.status().message().c_str());
    const std::string text = DescribeCheckpoint(*ckpt, /*with_tensors=*/true).dump(2);
    params = ckpt->TotalParameters();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["parameters"] = static_cast<double>(params);
  state.counters["model_GB"] = static_cast<double>(Checkpoint::Open(dir)->TotalTensorBytes()) / 1e9;
}
BENCHMARK(BM_InspectEquivalent)->Arg(0)->Arg(1)->ArgName("cold")->Unit(benchmark::kMillisecond);

// CheckpointWriter streaming a 512 MB slice of the model (first tensors), zero-filled.
void BM_WriterThroughput(benchmark::State& state) {
  std::vector<TensorSpec> specs;
  uint64_t bytes = 0;
  for (const TensorSpec& t : QwenTensors()) {
    if (bytes > (512ULL << 20)) break;
    specs.push_back(t);
    bytes += t.NumBytes();
  }
  const fs::path out = BenchDir() / "writer-out";
  for (auto _ : state) {
    WriteModel(out, specs, 256ULL << 20, /*force=*/true);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  std::error_code ec;
  fs::remove_all(out, ec);
}
BENCHMARK(BM_WriterThroughput)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace
}  // namespace rvec

BENCHMARK_MAIN();
