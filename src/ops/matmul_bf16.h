// AVX512_BF16 GEMM (vdpbf16ps) for bf16 weights times bf16-rounded activations, internal to
// matmul.cc: Highway 1.0.3 does not emit this instruction, so it is written with intrinsics behind
// a run-time CPU check.
//
// Each output lane accumulates one weight row against one token, pair of elements by pair of
// elements in k order (vdpbf16ps: acc += x[2p+1]*w[2p+1], then acc += x[2p]*w[2p], each rounded
// to f32, denormals flushed), then adds the bias. That sequence does not depend on the tile, the
// batch size or the thread count, so every output is bit-identical however it is computed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rvec {

// Tokens per activation tile: the kernel broadcasts one element pair of each of these tokens.
inline constexpr size_t kBF16TokenTile = 8;

// Element pairs per row: ceil(cols / 2) (an odd last column is paired with a zero).
inline size_t BF16Pairs(size_t cols) { return (cols + 1) / 2; }

// uint32 words PackActivationsBF16 writes for n tokens of `cols` elements.
inline size_t PackedActivationsWords(size_t n, size_t cols) {
  return (n + kBF16TokenTile - 1) / kBF16TokenTile * kBF16TokenTile * BF16Pairs(cols);
}

// Rounds tokens [t0, t1) of f32 activations to bf16 (nearest even, as F32ToBF16) into the
// interleaved layout the kernel reads: word (tile * pairs + p) * 8 + j holds elements 2p and 2p+1
// of token tile * 8 + j. t0 must be a multiple of 8; missing tokens of the last tile are zeros.
void PackActivationsBF16(const float* x, size_t n, size_t x_stride, size_t cols, size_t t0,
                         size_t t1, uint32_t* packed);

// out[t * out_stride + r] = sum_k xb[t, k] * w[r, k] (+ bias[r]) for t < n and r in [r0, r1),
// with xb packed by PackActivationsBF16 and w the bf16 weights [rows, cols] read in place. Only
// call when HasBF16DotProduct().
void MatMulRowsBF16Dot(const uint32_t* packed, size_t n, const uint16_t* w, size_t cols, size_t r0,
                       size_t r1, const float* bias, float* out, size_t out_stride);

// Scalar model of the kernel's arithmetic (same operation order and rounding), for tests.
float DotBF16Reference(const uint16_t* x, const uint16_t* w, size_t cols);

}  // namespace rvec
