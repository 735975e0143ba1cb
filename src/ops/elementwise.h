// Elementwise f32 kernels and deterministic reductions for tensor arithmetic (merge, stats).
//
// Elementwise results are bit-identical to the plain C++ expression in the comment, evaluated
// in f32 with one rounding per operation (never fused into an FMA), on every CPU and target.
// `out` may be the same pointer as an input (in place), but must not otherwise overlap it.
//
// Reductions accumulate in f64 and return exactly the same double on every CPU, target and
// vector width: element i is added, in index order, to accumulator i % 16 and the 16 partial
// sums are combined in a fixed tree. Products of two f32 are exact in f64, so only the sums
// round. To parallelise, split the range into fixed chunks (independent of the thread count)
// and add the chunk results in chunk order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rvec {

// out[i] = a[i] + b[i]
void Add(float* out, const float* a, const float* b, size_t n);
// out[i] = a[i] - b[i]   (task vector: fine-tuned minus base)
void Sub(float* out, const float* a, const float* b, size_t n);
// out[i] = a[i] + alpha * b[i]   (alpha * b[i] rounded to f32 first, then the sum)
void AddScaled(float* out, const float* a, const float* b, float alpha, size_t n);
// out[i] = alpha * a[i]
void Scale(float* out, const float* a, float alpha, size_t n);

// The fused bf16 task-vector application, bf16 in and out (bf16 values as their uint16 bits):
//   d = alpha * (a[i] - b[i]);  out[i] = d == 0 ? t[i] : bf16(t[i] + d)
// in f32 with one rounding per operation, the final bf16 rounding to nearest even, NaN kept NaN
// (quiet; a NaN target keeps its own payload). Where the delta is zero the target's bits pass
// through unchanged (-0.0 included).
void ApplyDifferenceBF16(const uint16_t* t, const uint16_t* a, const uint16_t* b, float alpha,
                         size_t n, uint16_t* out);
// Its scalar definition (what the SIMD version must return exactly).
void ApplyDifferenceBF16Reference(const uint16_t* t, const uint16_t* a, const uint16_t* b,
                                  float alpha, size_t n, uint16_t* out);

// Sum of a[i] * b[i].
double DotF64(const float* a, const float* b, size_t n);
// Sum of a[i]^2.
double SumSquaresF64(const float* a, size_t n);
// Sum of a[i].
double SumF64(const float* a, size_t n);

// The scalar definitions of the reductions above (what the SIMD versions must return exactly).
double DotF64Reference(const float* a, const float* b, size_t n);
double SumSquaresF64Reference(const float* a, size_t n);
double SumF64Reference(const float* a, size_t n);

}  // namespace rvec
