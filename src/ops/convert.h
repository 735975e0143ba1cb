// Bulk dtype conversion between checkpoint storage types and f32 (SIMD, runtime-dispatched).
//
// Every function here gives exactly the result of the scalar reference in base/dtype.h applied
// element by element, on every CPU: widening (bf16, f16, f8 -> f32) is exact, narrowing
// (f32 -> bf16, f16, f8) rounds once to nearest even, keeps NaN a NaN (payload truncated, quiet
// bit set), produces IEEE subnormals and overflows to infinity (f8 e4m3fn: to NaN, it has no
// infinity). f64 <-> f32 is the C++ conversion (round to nearest even).
//
// Buffers may have any alignment (safetensors tensor data is not necessarily aligned) and must
// not overlap. Each call dispatches once to the best compiled Highway target and converts the
// whole range, so callers split large tensors into chunks (e.g. 1 MiB) for threads and progress.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace rvec {

// out[i] = in[i] as f32. `src` must be a float dtype (IsFloat(src)); f32 is a copy.
void ConvertToF32(DType src, const void* in, float* out, size_t n);

// out[i] = in[i] rounded to `dst`. `dst` must be a float dtype; f32 is a copy.
void ConvertFromF32(DType dst, const float* in, void* out, size_t n);

// Converts between two float dtypes through f32 (a byte copy when they are equal, so f64 -> f64
// is lossless; f64 -> bf16 rounds via f32, i.e. twice). Handles any n without a temporary
// larger than a few KiB.
void ConvertDType(DType src, const void* in, DType dst, void* out, size_t n);

// Typed entry points for the hot pairs (same semantics as above).
void ConvertBF16ToF32(const uint16_t* in, float* out, size_t n);
void ConvertF32ToBF16(const float* in, uint16_t* out, size_t n);
void ConvertF16ToF32(const uint16_t* in, float* out, size_t n);
void ConvertF32ToF16(const float* in, uint16_t* out, size_t n);

// Rounds f32 values in place to the precision of `dtype` (as if stored and reloaded), e.g. to
// compare a computed tensor with what will be written. f32 leaves the values unchanged.
void RoundTripF32(DType dtype, float* values, size_t n);

// Name of the Highway target the ops kernels dispatch to on this CPU ("AVX3", "AVX2", ...).
const char* OpsTargetName();

}  // namespace rvec
