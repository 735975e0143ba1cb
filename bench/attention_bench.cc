// Decode attention at depth: the 7 query heads of one kv head (the Qwen2.5-0.5B shape, head_dim
// 64, two kv heads per row) over a 4k or 16k cache, one head at a time against the grouped kernel,
// with f32 and bf16 caches. Bytes per second count the cache bytes of that kv head once.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "ops/nn.h"

namespace rvec {
namespace {

constexpr size_t kHeadDim = 64, kKvHeads = 2, kGroup = 7;

struct Cache {
  size_t n;
  std::vector<float> k32, v32, q;
  std::vector<uint16_t> k16, v16;
  explicit Cache(size_t ctx) : n(ctx) {
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    k32.resize(n * kHeadDim);  // one kv head's key tiles
    v32.resize(n * kHeadDim * kKvHeads);
    q.resize(kGroup * kHeadDim);
    for (auto* v : {&k32, &v32, &q}) {
      for (float& x : *v) x = dist(rng);
    }
    for (const auto& [src, dst] : {std::pair{&k32, &k16}, std::pair{&v32, &v16}}) {
      dst->resize(src->size());
      for (size_t i = 0; i < src->size(); ++i) (*dst)[i] = F32ToBF16((*src)[i]);
    }
  }
};

Cache& Get(size_t ctx) {
  static Cache c4(4096), c16(16384);
  return ctx == 4096 ? c4 : c16;
}

// args: context, bf16 (0/1), grouped (0/1)
void BM_DecodeAttention(benchmark::State& state) {
  const size_t ctx = state.range(0);
  const bool bf16 = state.range(1) != 0, grouped = state.range(2) != 0;
  Cache& c = Get(ctx);
  const KvSegment seg{bf16 ? static_cast<const void*>(c.k16.data()) : c.k32.data(),
                      bf16 ? static_cast<const void*>(c.v16.data()) : c.v32.data(), ctx};
  std::vector<float> scores(kGroup * ctx), out(kGroup * kHeadDim);
  for (auto _ : state) {
    if (grouped) {
      AttentionGroupSegments(c.q.data(), kGroup, &seg, 1, bf16, kHeadDim * kKvHeads, kHeadDim,
                             0.125f, scores.data(), ctx, out.data());
    } else {
      for (size_t h = 0; h < kGroup; ++h) {
        AttentionHeadSegments(c.q.data() + h * kHeadDim, &seg, 1, bf16, kHeadDim * kKvHeads,
                              kHeadDim, 0.125f, scores.data(), out.data() + h * kHeadDim);
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  const int64_t bytes = int64_t(ctx) * kHeadDim * 2 * (bf16 ? 2 : 4);
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_DecodeAttention)
    ->ArgNames({"ctx", "bf16", "grouped"})
    ->ArgsProduct({{4096, 16384}, {0, 1}, {0, 1}});

}  // namespace
}  // namespace rvec

BENCHMARK_MAIN();
