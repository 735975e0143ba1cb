// Element types of safetensors checkpoints and exact scalar conversions to and from f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace rvec {

enum class DType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kF8E4M3,  // float8_e4m3fn: no infinities, 0x7F/0xFF are NaN, max 448
  kF8E5M2,  // float8_e5m2: IEEE-like, with infinities
};

// Safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view DTypeName(DType dtype);
std::optional<DType> ParseDType(std::string_view name);
// User spelling on the command line ("f32", "bf16", "float16", "bfloat16", ...).
std::optional<DType> ParseUserDType(std::string_view name);
size_t DTypeSize(DType dtype);
bool IsFloat(DType dtype);

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- bf16 -------------------------------------------------------------------------------------
inline float BF16ToF32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays NaN (quiet bit forced so truncation cannot make it inf).
inline uint16_t F32ToBF16(float f) {
  uint32_t u = F32Bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---- f16 (IEEE binary16) ----------------------------------------------------------------------
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return F32FromBits(sign | 0x7F800000u | (man << 13));  // inf / NaN
  if (exp != 0) return F32FromBits(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24, exact in f32.
  const float mag = static_cast<float>(man) * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
}

// Round to nearest even, with IEEE subnormals and overflow to infinity; NaN stays NaN.
inline uint16_t F32ToF16(float f) {
  const uint32_t u = F32Bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((abs >> 13) & 0x3FFu);
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65536: infinity
  if (abs >= 0x38800000u) {                       // normal in f16 (>= 2^-14)
    uint32_t r = abs + 0xFFFu + ((abs >> 13) & 1u);
    return sign | static_cast<uint16_t>((r - 0x38000000u) >> 13);
  }
  if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal (2^-25)
  // Subnormal: shift the full significand so the result's lsb is 2^-24, rounding to even.
  const uint32_t exp = abs >> 23;
  const uint32_t man = (abs & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - exp;  // 14..24 for exp in 102..112
  const uint32_t half = 1u << (shift - 1);
  const uint32_t rest = man & ((1u << shift) - 1);
  uint32_t q = man >> shift;
  if (rest > half || (rest == half && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

// ---- f8 ---------------------------------------------------------------------------------------
float F8E4M3ToF32(uint8_t b);
float F8E5M2ToF32(uint8_t b);
// e4m3fn: round to nearest even; values beyond 448 after rounding and NaN become NaN (0x7F).
uint8_t F32ToF8E4M3(float f);
// e5m2: round to nearest even; overflow becomes infinity; NaN stays NaN.
uint8_t F32ToF8E5M2(float f);

// Reads element `i` of a float-typed buffer as f32 (scalar reference path; SIMD lives in ops).
float LoadAsF32(DType dtype, const void* data, size_t i);
// Writes `value` rounded once to nearest even into element `i` of a float-typed buffer.
void StoreFromF32(DType dtype, void* data, size_t i, float value);

}  // namespace rvec
