// FMA throughput probe: 12 independent multiply-add chains per worker, kept in registers (12 + 2
// constants fit AVX2's 16 registers and cover 2 FMA pipes of latency 4 or more).
#include "ops/fma_peak.h"

#include <algorithm>
#include <chrono>
#include <vector>

// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/fma_peak.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// `iters` rounds of 12 FMAs on distinct accumulators; returns a value depending on all of them.
float FmaChainsT(size_t iters, float seed) {
  const hn::ScalableTag<float> df;
  const auto m = hn::Set(df, 0.999999f), a = hn::Set(df, 1e-7f);
  hn::Vec<decltype(df)> acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = hn::Set(df, seed + static_cast<float>(i));
  for (size_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = hn::MulAdd(acc[i], m, a);
  }
  for (int i = 1; i < 12; ++i) acc[0] = hn::Add(acc[0], acc[i]);
  return hn::GetLane(hn::SumOfLanes(df, acc[0]));
}

size_t LanesT() { return hn::Lanes(hn::ScalableTag<float>()); }

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(FmaChainsT);
HWY_EXPORT(LanesT);

FmaPeakResult MeasureFmaPeak(ThreadPool* pool, double seconds_per_repeat, int repeats) {
  const size_t workers = pool ? pool->NumWorkers() : 1;
  const size_t lanes = HWY_DYNAMIC_DISPATCH(LanesT)();
  std::vector<float> sums(workers);
  auto run = [&](size_t iters) {
    const auto t0 = std::chrono::steady_clock::now();
    auto work = [&](size_t w, size_t) {
      sums[w] = HWY_DYNAMIC_DISPATCH(FmaChainsT)(iters, static_cast<float>(w));
    };
    if (pool) {
      pool->ParallelFor(workers, work);
    } else {
      work(0, 0);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  // Size the run from a short calibration so each repeat takes about seconds_per_repeat.
  size_t iters = 1 << 16;
  const double calib = std::max(run(iters), 1e-6);
  iters = std::max<size_t>(iters, static_cast<size_t>(iters * seconds_per_repeat / calib));
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const double s = run(iters);
    best = std::max(best, 2.0 * 12 * lanes * double(iters) * workers / s / 1e9);
  }
  volatile float sink = 0;
  for (float v : sums) sink = sink + v;
  return {best, workers, lanes};
}

}  // namespace rvec
#endif  // HWY_ONCE
