// Inner loops of the arithmetic: decode a block of stored values to f32, combine in f32, encode
// once with round-to-nearest-even. Scalar references for the tests live next to them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace rvec::merge {

// Elements per inner block: every input of a block fits in L1/L2 together.
inline constexpr size_t kBlock = 4096;

// Float dtypes rvec decodes and encodes: F32, BF16, F16, F64, F8_E4M3, F8_E5M2.
bool IsSupportedFloat(DType dtype);

// dst[i] = value of element i of `src` (stored as `dtype`), exactly.
void DecodeToF32(DType dtype, const void* src, size_t n, float* dst);
// dst element i = src[i] rounded once to nearest even in `dtype`.
void EncodeFromF32(DType dtype, const float* src, size_t n, void* dst);

// out[i] = t[i] + d[i], except that where d[i] == 0 (either sign) the target value is kept as is,
// so that -0.0 targets and untouched elements keep their exact bits.
void AddDelta(const float* t, const float* d, size_t n, float* out);
// acc[i] += alpha * (a[i] - b[i])   (alpha as given, in f32; no fused multiply-add)
void AccumulateScaledDifference(float alpha, const float* a, const float* b, size_t n, float* acc);
// acc[i] += alpha * v[i]
void AccumulateScaled(float alpha, const float* v, size_t n, float* acc);
// The direct form's hot path fused into one pass, all bf16:
// out[i] = bf16(d == 0 ? t : t + d) with d = alpha * (a[i] − b[i]), each operation in f32 —
// exactly what DecodeToF32 + AccumulateScaledDifference + AddDelta + EncodeFromF32 give.
void ApplyDifferenceBF16(const uint16_t* t, const uint16_t* a, const uint16_t* b, float alpha,
                         size_t n, uint16_t* out);
// out[i] = a[i] - b[i]
void Subtract(const float* a, const float* b, size_t n, float* out);

// The magnitude order used by TIES and breadcrumbs: the bits of |x| as an unsigned integer, which
// orders non-negative floats (NaN sorts above infinity).
inline uint32_t MagnitudeKey(float x) { return F32Bits(x) & 0x7FFFFFFFu; }

// Selects exactly the k elements of largest magnitude in a tensor processed in fixed chunks,
// breaking ties by lower flat index, without holding the tensor: two histogram passes over the
// 32-bit magnitude keys find the threshold key, and per-chunk counts of threshold-equal elements
// rank the ties. `chunk_keys(c, keys)` must fill the magnitude keys of chunk c (any thread).
class TopKSelector {
 public:
  using ChunkKeysFn = std::function<void(size_t chunk, std::vector<uint32_t>& keys)>;
  using ParallelFn = std::function<void(size_t num_tasks, const std::function<void(size_t)>&)>;

  // Computes the selection; `parallel(n, f)` runs f(0..n-1) (possibly concurrently).
  static TopKSelector Build(uint64_t k, size_t num_chunks, const ChunkKeysFn& chunk_keys,
                            const ParallelFn& parallel);
  static TopKSelector All() { return TopKSelector(); }

  // Marks keep[i] for the elements of chunk `chunk` whose keys are given.
  void Mark(size_t chunk, const uint32_t* keys, size_t n, uint8_t* keep) const;
  uint64_t k() const { return k_; }

 private:
  bool keep_all_ = true;
  bool keep_none_ = false;
  uint32_t threshold_ = 0;
  uint64_t k_ = 0;
  // Number of threshold-equal elements kept, and threshold-equal elements before each chunk.
  uint64_t ties_kept_ = 0;
  std::vector<uint64_t> ties_before_chunk_;
};

}  // namespace rvec::merge
