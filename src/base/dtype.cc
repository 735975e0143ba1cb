// DType names, sizes and the f8 scalar conversions.
#include "base/dtype.h"

#include <cmath>
#include <string>

namespace rvec {

namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
  bool is_float;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF64, "F64", 8, true},        {DType::kF32, "F32", 4, true},
    {DType::kF16, "F16", 2, true},        {DType::kBF16, "BF16", 2, true},
    {DType::kI64, "I64", 8, false},       {DType::kI32, "I32", 4, false},
    {DType::kI16, "I16", 2, false},       {DType::kI8, "I8", 1, false},
    {DType::kU8, "U8", 1, false},         {DType::kBool, "BOOL", 1, false},
    {DType::kF8E4M3, "F8_E4M3", 1, true}, {DType::kF8E5M2, "F8_E5M2", 1, true},
};

const DTypeInfo& Info(DType d) { return kDTypes[static_cast<size_t>(d)]; }

// Generic round-to-nearest-even into a small float format with `man_bits` mantissa bits and
// exponent bias `bias`; returns the magnitude bits (no sign) before overflow handling.
uint32_t RoundToSmallFloat(float abs_value, int man_bits, int bias, bool* overflow_hint) {
  (void)overflow_hint;
  const uint32_t u = F32Bits(abs_value);
  const int exp = static_cast<int>(u >> 23) - 127;
  const int min_normal_exp = 1 - bias;
  uint32_t man = (u & 0x7FFFFFu) | 0x800000u;
  int shift;
  uint32_t base_exp_field;
  if (exp >= min_normal_exp) {
    shift = 23 - man_bits;
    base_exp_field = static_cast<uint32_t>(exp + bias);
    man &= 0x7FFFFFu;  // normal: drop the implicit bit; a carry increments the exponent
  } else {
    shift = 23 - man_bits + (min_normal_exp - exp);
    base_exp_field = 0;
    if (shift > 31) return 0;
  }
  const uint32_t half = 1u << (shift - 1);
  const uint32_t rest = man & ((1u << shift) - 1);
  uint32_t q = man >> shift;
  if (rest > half || (rest == half && (q & 1u))) ++q;
  return (base_exp_field << man_bits) + q;
}
}  // namespace

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }
size_t DTypeSize(DType dtype) { return Info(dtype).size; }
bool IsFloat(DType dtype) { return Info(dtype).is_float; }

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

std::optional<DType> ParseUserDType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "f32" || lower == "float32" || lower == "float") return DType::kF32;
  if (lower == "f16" || lower == "float16" || lower == "half" || lower == "fp16")
    return DType::kF16;
  if (lower == "bf16" || lower == "bfloat16") return DType::kBF16;
  if (lower == "f64" || lower == "float64") return DType::kF64;
  if (lower == "f8_e4m3" || lower == "float8_e4m3fn") return DType::kF8E4M3;
  if (lower == "f8_e5m2" || lower == "float8_e5m2") return DType::kF8E5M2;
  return std::nullopt;
}

float F8E4M3ToF32(uint8_t b) {
  const bool neg = b & 0x80;
  const uint32_t exp = (b >> 3) & 0xF;
  const uint32_t man = b & 0x7;
  float mag;
  if (exp == 0xF && man == 0x7) {
    mag = std::nanf("");
  } else if (exp == 0) {
    mag = static_cast<float>(man) * 0.001953125f;  // man * 2^-9
  } else {
    mag = F32FromBits(((exp + 120) << 23) | (man << 20));
  }
  return neg ? -mag : mag;
}

float F8E5M2ToF32(uint8_t b) {
  // e5m2 is the top byte of an f16.
  return F16ToF32(static_cast<uint16_t>(b) << 8);
}

uint8_t F32ToF8E4M3(float f) {
  const uint32_t u = F32Bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const float abs_value = F32FromBits(u & 0x7FFFFFFFu);
  if (std::isnan(abs_value)) return sign | 0x7F;
  if (abs_value == 0.0f) return sign;
  if (abs_value >= 464.0f) return sign | 0x7F;  // 464 is the midpoint of 448 and 480: NaN
  const uint32_t q = RoundToSmallFloat(abs_value, 3, 7, nullptr);
  return sign | static_cast<uint8_t>(q);
}

uint8_t F32ToF8E5M2(float f) {
  const uint32_t u = F32Bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const float abs_value = F32FromBits(u & 0x7FFFFFFFu);
  if (std::isnan(abs_value)) return sign | 0x7E;
  if (abs_value == 0.0f) return sign;
  if (abs_value >= 61440.0f) return sign | 0x7C;  // midpoint of 57344 and 65536: infinity
  const uint32_t q = RoundToSmallFloat(abs_value, 2, 15, nullptr);
  return sign | static_cast<uint8_t>(q);
}

float LoadAsF32(DType dtype, const void* data, size_t i) {
  switch (dtype) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, static_cast<const char*>(data) + 4 * i, 4);
      return v;
    }
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, static_cast<const char*>(data) + 2 * i, 2);
      return BF16ToF32(h);
    }
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, static_cast<const char*>(data) + 2 * i, 2);
      return F16ToF32(h);
    }
    case DType::kF64: {
      double v;
      std::memcpy(&v, static_cast<const char*>(data) + 8 * i, 8);
      return static_cast<float>(v);
    }
    case DType::kF8E4M3:
      return F8E4M3ToF32(static_cast<const uint8_t*>(data)[i]);
    case DType::kF8E5M2:
      return F8E5M2ToF32(static_cast<const uint8_t*>(data)[i]);
    default:
      return 0.0f;
  }
}

void StoreFromF32(DType dtype, void* data, size_t i, float value) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(static_cast<char*>(data) + 4 * i, &value, 4);
      break;
    case DType::kBF16: {
      const uint16_t h = F32ToBF16(value);
      std::memcpy(static_cast<char*>(data) + 2 * i, &h, 2);
      break;
    }
    case DType::kF16: {
      const uint16_t h = F32ToF16(value);
      std::memcpy(static_cast<char*>(data) + 2 * i, &h, 2);
      break;
    }
    case DType::kF64: {
      const double d = value;
      std::memcpy(static_cast<char*>(data) + 8 * i, &d, 8);
      break;
    }
    case DType::kF8E4M3:
      static_cast<uint8_t*>(data)[i] = F32ToF8E4M3(value);
      break;
    case DType::kF8E5M2:
      static_cast<uint8_t*>(data)[i] = F32ToF8E5M2(value);
      break;
    default:
      break;
  }
}

}  // namespace rvec
