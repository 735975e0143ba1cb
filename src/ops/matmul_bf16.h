// AVX512_BF16 dot-product kernels (vdpbf16ps), internal to matmul.cc: Highway 1.0.3 does not emit
// this instruction, so it is written with intrinsics behind a run-time CPU check.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rvec {

// Rounds rows of f32 activations to bf16 (nearest even) into a dense [n, cols] array.
void RoundRowsToBF16(const float* x, size_t n, size_t x_stride, size_t cols, uint16_t* out);

// As MatMulRows for bf16 weights and bf16 activations `xb` ([n, xb_stride]), rows [r0, r1).
// Only call when HasBF16DotProduct().
void MatMulRowsBF16Dot(const uint16_t* xb, size_t n, size_t xb_stride, const uint16_t* w,
                       size_t cols, size_t r0, size_t r1, const float* bias, float* out,
                       size_t out_stride);

}  // namespace rvec
