// A multi-threaded f32 FMA throughput probe, so prefill speed can be reported as a fraction of
// what the cores can compute right now (as decode is against the measured read bandwidth).
#pragma once

#include <cstddef>

#include "base/threading.h"

namespace rvec {

struct FmaPeakResult {
  double gflops = 0;  // best of the repeats, counting a fused multiply-add as 2 FLOPs
  size_t threads = 0;
  size_t lanes = 0;  // f32 lanes of the dispatched target's vectors
};

// Every worker of `pool` runs independent register-resident FMA chains (enough to cover the FMA
// latency on every x86 target) for about `seconds_per_repeat`; the best of `repeats` counts.
FmaPeakResult MeasureFmaPeak(ThreadPool* pool, double seconds_per_repeat = 0.1, int repeats = 3);

}  // namespace rvec
