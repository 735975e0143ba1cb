// Read-bandwidth probe: per-worker slices summed with four independent vector accumulators.
#include "ops/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/bandwidth.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float SumSliceT(const float* p, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(df, p + i));
    a1 = hn::Add(a1, hn::LoadU(df, p + i + N));
    a2 = hn::Add(a2, hn::LoadU(df, p + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(df, p + i + 3 * N));
  }
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(SumSliceT);

BandwidthResult MeasureReadBandwidth(ThreadPool* pool, size_t bytes, int repeats) {
  const size_t workers = pool ? pool->NumWorkers() : 1;
  const size_t n = bytes / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
  // Touch every page from its reading worker (first-touch placement), with small values.
  auto fill = [&](size_t w, size_t) {
    const size_t b = n * w / workers, e = n * (w + 1) / workers;
    for (size_t i = b; i < e; ++i) buf[i] = static_cast<float>(i & 7);
  };
  if (pool) {
    pool->ParallelFor(workers, fill);
  } else {
    fill(0, 0);
  }
  std::vector<float> sums(workers);
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto read = [&](size_t w, size_t) {
      const size_t b = n * w / workers, e = n * (w + 1) / workers;
      sums[w] = HWY_DYNAMIC_DISPATCH(SumSliceT)(buf.get() + b, e - b);
    };
    if (pool) {
      pool->ParallelFor(workers, read);
    } else {
      read(0, 0);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(n * sizeof(float)) / s / 1e9);
  }
  // Keep the sums observable so the reads are not optimised away.
  volatile float sink = 0;
  for (float v : sums) sink = sink + v;
  return {best, n * sizeof(float), workers};
}

}  // namespace rvec
#endif  // HWY_ONCE
