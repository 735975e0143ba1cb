// Elementwise loops written so the compiler vectorises them (no fused
// multiply-add: the results must equal the scalar reference bit for bit), plus top-k selection.
#include "merge/kernels.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "ops/convert.h"
#include "ops/elementwise.h"

namespace rvec::merge {

bool IsSupportedFloat(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kBF16:
    case DType::kF16:
    case DType::kF64:
    case DType::kF8E4M3:
    case DType::kF8E5M2:
      return true;
    default:
      return false;
  }
}

void DecodeToF32(DType dtype, const void* src, size_t n, float* dst) {
  ConvertToF32(dtype, src, dst, n);
}

void EncodeFromF32(DType dtype, const float* src, size_t n, void* dst) {
  ConvertFromF32(dtype, src, dst, n);
}

void AddDelta(const float* t, const float* d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const float sum = t[i] + d[i];
    out[i] = d[i] == 0.0f ? t[i] : sum;
  }
}

void AccumulateScaledDifference(float alpha, const float* a, const float* b, size_t n, float* acc) {
  // Through a stack block so the SIMD kernels do the work: (a - b) rounded, then alpha * that
  // rounded, then the sum rounded, exactly like the scalar expression.
  float diff[kBlock];
  for (size_t done = 0; done < n; done += kBlock) {
    const size_t m = std::min(kBlock, n - done);
    Sub(diff, a + done, b + done, m);
    AddScaled(acc + done, acc + done, diff, alpha, m);
  }
}

void AccumulateScaled(float alpha, const float* v, size_t n, float* acc) {
  AddScaled(acc, acc, v, alpha, n);
}

void ApplyDifferenceBF16(const uint16_t* t, const uint16_t* a, const uint16_t* b, float alpha,
                         size_t n, uint16_t* out) {
  rvec::ApplyDifferenceBF16(t, a, b, alpha, n, out);
}

void Subtract(const float* a, const float* b, size_t n, float* out) { Sub(out, a, b, n); }

// ---- TopKSelector -------------------------------------------------------------------------------

TopKSelector TopKSelector::Build(uint64_t k, size_t num_chunks, const ChunkKeysFn& chunk_keys,
                                 const ParallelFn& parallel) {
  TopKSelector sel;
  sel.k_ = k;
  // Integer histograms merged under a lock: addition commutes, so the result is deterministic.
  std::vector<uint64_t> hist(65536, 0);
  std::mutex mutex;
  parallel(num_chunks, [&](size_t c) {
    std::vector<uint32_t> keys;
    chunk_keys(c, keys);
    std::vector<uint32_t> h(65536, 0);
    for (uint32_t key : keys) ++h[key >> 16];
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t b = 0; b < 65536; ++b) hist[b] += h[b];
  });
  uint64_t total = 0;
  for (uint64_t v : hist) total += v;
  if (k >= total) return sel;  // keep all
  sel.keep_all_ = false;
  if (k == 0) {
    sel.keep_none_ = true;
    return sel;
  }
  // Bucket holding the k-th largest key.
  uint64_t above = 0;
  uint32_t bucket = 65535;
  for (int b = 65535; b >= 0; --b) {
    if (above + hist[b] >= k) {
      bucket = static_cast<uint32_t>(b);
      break;
    }
    above += hist[b];
  }
  // Pass 2: low 16 bits inside that bucket.
  std::fill(hist.begin(), hist.end(), 0);
  parallel(num_chunks, [&](size_t c) {
    std::vector<uint32_t> keys;
    chunk_keys(c, keys);
    std::vector<uint32_t> h(65536, 0);
    for (uint32_t key : keys) {
      if ((key >> 16) == bucket) ++h[key & 0xFFFFu];
    }
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t b = 0; b < 65536; ++b) hist[b] += h[b];
  });
  uint32_t low_bits = 0;
  for (int b = 65535; b >= 0; --b) {
    if (above + hist[b] >= k) {
      low_bits = static_cast<uint32_t>(b);
      break;
    }
    above += hist[b];
  }
  sel.threshold_ = (bucket << 16) | low_bits;
  const uint64_t equal = hist[low_bits];
  sel.ties_kept_ = k - above;
  sel.ties_before_chunk_.assign(num_chunks + 1, 0);
  if (sel.ties_kept_ < equal) {
    // Pass 3: threshold-equal elements per chunk, so ties are ranked by flat index.
    std::vector<uint64_t> per_chunk(num_chunks, 0);
    const uint32_t threshold = sel.threshold_;
    parallel(num_chunks, [&](size_t c) {
      std::vector<uint32_t> keys;
      chunk_keys(c, keys);
      uint64_t count = 0;
      for (uint32_t key : keys) count += key == threshold;
      per_chunk[c] = count;
    });
    for (size_t c = 0; c < num_chunks; ++c) {
      sel.ties_before_chunk_[c + 1] = sel.ties_before_chunk_[c] + per_chunk[c];
    }
  } else {
    // Every tie is kept: rank bookkeeping is unnecessary.
    sel.ties_kept_ = UINT64_MAX;
  }
  return sel;
}

void TopKSelector::Mark(size_t chunk, const uint32_t* keys, size_t n, uint8_t* keep) const {
  if (keep_all_) {
    std::memset(keep, 1, n);
    return;
  }
  if (keep_none_) {
    std::memset(keep, 0, n);
    return;
  }
  if (ties_kept_ == UINT64_MAX) {
    for (size_t i = 0; i < n; ++i) keep[i] = keys[i] >= threshold_;
    return;
  }
  uint64_t rank = ties_before_chunk_[chunk];
  for (size_t i = 0; i < n; ++i) {
    if (keys[i] > threshold_) {
      keep[i] = 1;
    } else if (keys[i] == threshold_) {
      keep[i] = rank < ties_kept_;
      ++rank;
    } else {
      keep[i] = 0;
    }
  }
}

}  // namespace rvec::merge
