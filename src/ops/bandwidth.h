// A multi-threaded memory read-bandwidth probe, so decode speed can be reported as a fraction of
// what this machine can stream right now.
#pragma once

#include <cstddef>

#include "base/threading.h"

namespace rvec {

struct BandwidthResult {
  double gb_per_s = 0;  // best of the repeats, 1e9 bytes per second
  size_t bytes = 0;     // buffer size read per repeat
  size_t threads = 0;
};

// Reads a `bytes` buffer (much larger than the caches) `repeats` times with every worker of
// `pool`, each streaming its own contiguous slice with vector loads.
BandwidthResult MeasureReadBandwidth(ThreadPool* pool, size_t bytes = size_t(1) << 30,
                                     int repeats = 5);

}  // namespace rvec
