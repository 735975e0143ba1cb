// Conversion throughput (bf16/f16 <-> f32) against memcpy of the same bytes, in and out of cache.
// Bytes per second count what is read plus what is written, for memcpy too.
#include <benchmark/benchmark.h>
#include <hwy/targets.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "ops/convert.h"

namespace rvec {
namespace {

// 64 Ki elements stay in L2; 32 Mi elements (64-128 MiB per buffer) stream from memory.
constexpr int64_t kSmall = 1 << 16;
constexpr int64_t kLarge = 1 << 25;

struct Buffers {
  std::vector<float> f32;
  std::vector<uint16_t> h16;
  explicit Buffers(size_t n) : f32(n), h16(n) {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (size_t i = 0; i < n; ++i) {
      f32[i] = dist(rng);
      h16[i] = F32ToBF16(f32[i]);
    }
  }
};

Buffers& Get(size_t n) {
  static Buffers small(kSmall), large(kLarge);
  return n == static_cast<size_t>(kSmall) ? small : large;
}

void Finish(benchmark::State& state, size_t bytes_per_iter) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(bytes_per_iter));
  state.SetLabel(OpsTargetName());
}

void BM_BF16ToF32(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  for (auto _ : state) {
    ConvertBF16ToF32(b.h16.data(), b.f32.data(), n);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

void BM_F32ToBF16(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  for (auto _ : state) {
    ConvertF32ToBF16(b.f32.data(), b.h16.data(), n);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

void BM_F16ToF32(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  for (auto _ : state) {
    ConvertF16ToF32(b.h16.data(), b.f32.data(), n);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

void BM_F32ToF16(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  for (auto _ : state) {
    ConvertF32ToF16(b.f32.data(), b.h16.data(), n);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

// The scalar reference loop, to show what the SIMD path buys.
void BM_F32ToBF16Scalar(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) b.h16[i] = F32ToBF16(b.f32[i]);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

// memcpy of the f32 buffer's bytes (read 4n, write 4n) and of as many bytes as a conversion
// moves (3n copied: read 3n + write 3n = 6n, the same total as a bf16 <-> f32 conversion).
void BM_MemcpyF32(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  std::vector<float> dst(n);
  for (auto _ : state) {
    std::memcpy(dst.data(), b.f32.data(), n * 4);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 8);
}

void BM_MemcpySameTotal(benchmark::State& state) {
  Buffers& b = Get(state.range(0));
  const size_t n = b.f32.size();
  std::vector<unsigned char> dst(n * 3);
  for (auto _ : state) {
    std::memcpy(dst.data(), b.f32.data(), n * 3);
    benchmark::ClobberMemory();
  }
  Finish(state, n * 6);
}

#define RVEC_CONVERT_BENCH(fn) BENCHMARK(fn)->Arg(kSmall)->Arg(kLarge)->UseRealTime()
RVEC_CONVERT_BENCH(BM_BF16ToF32);
RVEC_CONVERT_BENCH(BM_F32ToBF16);
RVEC_CONVERT_BENCH(BM_F16ToF32);
RVEC_CONVERT_BENCH(BM_F32ToF16);
RVEC_CONVERT_BENCH(BM_F32ToBF16Scalar);
RVEC_CONVERT_BENCH(BM_MemcpyF32);
RVEC_CONVERT_BENCH(BM_MemcpySameTotal);

}  // namespace
}  // namespace rvec

BENCHMARK_MAIN();
