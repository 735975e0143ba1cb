// Matrix products of f32 activations with weight matrices stored as Hugging Face Linear weights
// ([out_features, in_features], row-major, f32/bf16/f16), read in place from the mmap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/dtype.h"
#include "base/threading.h"

namespace rvec {

// A non-owning row-major matrix [rows, cols] of f32, bf16 or f16 elements.
struct WeightMatrix {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
};

enum class MatMulPrecision {
  // Activations stay f32; weights are widened to f32 and multiplied with f32 FMA. Every output
  // element is computed by the same instruction sequence whatever the batch size, tiling or thread
  // count, so results are bit-identical across batching and threads.
  kExact,
  // Activations are rounded once to bf16 (nearest even) and multiplied with bf16 weights by the
  // AVX512_BF16 dot-product instruction (2x the FMA throughput). Only used for bf16 weights on CPUs
  // that have it; otherwise the same as kExact. Changes logits by ~1e-3..3e-2 (measured, see
  // bench/), still deterministic and batch-invariant.
  kBF16Activations,
};

// out[t * out_stride + r] = bias[r] + sum_k x[t * x_stride + k] * w[r, k]
// for t < n, r < w.rows. `bias` may be null. Rows are split over `pool` in fixed chunks (pool may
// be null: single-threaded). `x` must not alias `out`.
void MatMul(const float* x, size_t n, size_t x_stride, const WeightMatrix& w, const float* bias,
            float* out, size_t out_stride, ThreadPool* pool,
            MatMulPrecision precision = MatMulPrecision::kExact);

// Several products sharing the same input (q/k/v, or gate/up), run as one parallel loop so that
// small matrices still keep every core busy.
struct MatMulJob {
  WeightMatrix w;
  const float* bias = nullptr;
  float* out = nullptr;
  size_t out_stride = 0;
};
void MatMulMulti(const float* x, size_t n, size_t x_stride, const MatMulJob* jobs, size_t num_jobs,
                 ThreadPool* pool, MatMulPrecision precision = MatMulPrecision::kExact);

// Scalar reference with f64 accumulation (tests only).
void MatMulReference(const float* x, size_t n, size_t x_stride, const WeightMatrix& w,
                     const float* bias, double* out, size_t out_stride);

// True when the CPU runs kBF16Activations with the AVX512_BF16 dot-product instruction.
bool HasBF16DotProduct();

// The Highway target the dispatched kernels use ("AVX3", "AVX2", ...), plus "+AVX512_BF16" when
// the bf16 dot-product path is available.
std::string MatMulTargetName();

}  // namespace rvec
