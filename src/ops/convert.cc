// Highway kernels behind ops/convert.h: bf16/f16 <-> f32 bit-exact with base/dtype.h.
#include "ops/convert.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/convert.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Highway's f16 conversions use the F16C instructions (exact, round to nearest even) on AVX2 and
// AVX-512; its emulation on other targets truncates, so those use the integer path below.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
#define RVEC_HAVE_F16C 1
#else
#define RVEC_HAVE_F16C 0
#endif

inline uint16_t CvtLoadU16(const uint16_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void CvtStoreU16(uint16_t v, uint16_t* p) { std::memcpy(p, &v, 2); }

void CvtBF16ToF32(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto w0 = hn::PromoteTo(du32, hn::LoadU(du16, in + i));
    const auto w1 = hn::PromoteTo(du32, hn::LoadU(du16, in + i + N));
    hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(w0)), df, out + i);
    hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(w1)), df, out + i + N);
  }
  for (; i < n; ++i) out[i] = BF16ToF32(CvtLoadU16(in + i));
}

// Same rounding as rvec::F32ToBF16: add 0x7FFF plus the lsb of the kept half, except NaN, whose
// top half gets the quiet bit so that truncation cannot turn it into an infinity.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> CvtDemoteBF16(DF df, hn::Vec<DF> v) {
  (void)df;
  const hn::RebindToUnsigned<DF> du32;
  const hn::RebindToSigned<DF> di32;
  const hn::Rebind<uint16_t, DF> du16;
  const auto u = hn::BitCast(du32, v);
  const auto abs = hn::BitCast(di32, hn::And(u, hn::Set(du32, 0x7FFFFFFFu)));
  const auto is_nan = hn::RebindMask(du32, hn::Gt(abs, hn::Set(di32, 0x7F800000)));
  const auto hi = hn::ShiftRight<16>(u);
  const auto lsb = hn::And(hi, hn::Set(du32, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(u, hn::Set(du32, 0x7FFFu)), lsb));
  const auto bits = hn::IfThenElse(is_nan, hn::Or(hi, hn::Set(du32, 0x40u)), rounded);
  // Every lane is <= 0xFFFF, so the saturating demotion is a plain truncation.
  return hn::DemoteTo(du16, hn::BitCast(di32, bits));
}

void CvtF32ToBF16(const float* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto h0 = CvtDemoteBF16(df, hn::LoadU(df, in + i));
    const auto h1 = CvtDemoteBF16(df, hn::LoadU(df, in + i + N));
    hn::StoreU(h0, du16, out + i);
    hn::StoreU(h1, du16, out + i + N);
  }
  for (; i < n; ++i) CvtStoreU16(F32ToBF16(in[i]), out + i);
}

template <class DF>
HWY_INLINE hn::Vec<DF> CvtPromoteF16(DF df, hn::Vec<hn::Rebind<uint16_t, DF>> h) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::RebindToSigned<DF> di32;
  const auto w = hn::PromoteTo(du32, h);
  const auto em = hn::BitCast(di32, hn::And(w, hn::Set(du32, 0x7FFFu)));
  const auto sign = hn::ShiftLeft<16>(hn::And(w, hn::Set(du32, 0x8000u)));
  // Infinities and NaNs keep their payload bits (F16C would set a signalling NaN's quiet bit).
  const auto inf_nan = hn::Or(hn::ShiftLeft<13>(hn::BitCast(du32, em)), hn::Set(du32, 0x7F800000u));
#if RVEC_HAVE_F16C
  const hn::Rebind<hwy::float16_t, DF> df16;
  const auto finite = hn::BitCast(du32, hn::PromoteTo(df, hn::BitCast(df16, h)));
  const auto is_nan = hn::RebindMask(du32, hn::Gt(em, hn::Set(di32, 0x7C00)));
  return hn::BitCast(df, hn::IfThenElse(is_nan, hn::Or(inf_nan, sign), finite));
#else
  const auto normal = hn::Add(hn::ShiftLeft<13>(hn::BitCast(du32, em)), hn::Set(du32, 0x38000000u));
  // Zero and subnormals are mantissa * 2^-24, exact in f32.
  const auto sub =
      hn::BitCast(du32, hn::Mul(hn::ConvertTo(df, em), hn::Set(df, 5.9604644775390625e-8f)));
  const auto is_sub = hn::RebindMask(du32, hn::Lt(em, hn::Set(di32, 0x400)));
  const auto is_inf_nan = hn::RebindMask(du32, hn::Gt(em, hn::Set(di32, 0x7BFF)));
  const auto mag = hn::IfThenElse(is_sub, sub, hn::IfThenElse(is_inf_nan, inf_nan, normal));
  return hn::BitCast(df, hn::Or(mag, sign));
#endif
}

void CvtF16ToF32(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto f0 = CvtPromoteF16(df, hn::LoadU(du16, in + i));
    const auto f1 = CvtPromoteF16(df, hn::LoadU(du16, in + i + N));
    hn::StoreU(f0, df, out + i);
    hn::StoreU(f1, df, out + i + N);
  }
  for (; i < n; ++i) out[i] = F16ToF32(CvtLoadU16(in + i));
}

template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> CvtDemoteF16(DF df, hn::Vec<DF> v) {
  const hn::Rebind<uint16_t, DF> du16;
#if RVEC_HAVE_F16C
  const hn::Rebind<hwy::float16_t, DF> df16;
  (void)df;
  return hn::BitCast(du16, hn::DemoteTo(df16, v));
#else
  const hn::RebindToUnsigned<DF> du32;
  const hn::RebindToSigned<DF> di32;
  const auto u = hn::BitCast(du32, v);
  const auto abs_u = hn::And(u, hn::Set(du32, 0x7FFFFFFFu));
  const auto abs = hn::BitCast(di32, abs_u);
  const auto sign = hn::And(hn::ShiftRight<16>(u), hn::Set(du32, 0x8000u));
  // Normal results: drop 13 mantissa bits with round to nearest even, rebias the exponent.
  const auto lsb = hn::And(hn::ShiftRight<13>(abs_u), hn::Set(du32, 1u));
  const auto normal = hn::ShiftRight<13>(
      hn::Sub(hn::Add(hn::Add(abs_u, hn::Set(du32, 0xFFFu)), lsb), hn::Set(du32, 0x38000000u)));
  // Subnormal results (|v| < 2^-14): adding 0.5 makes the FPU round at 2^-24, the f16 subnormal
  // step, to nearest even; the low bits of the sum are then the f16 bits (0x400 when it rounds
  // up to the smallest normal, which is also right).
  const auto sub = hn::Sub(hn::BitCast(du32, hn::Add(hn::BitCast(df, abs_u), hn::Set(df, 0.5f))),
                           hn::Set(du32, 0x3F000000u));
  const auto nan =
      hn::Or(hn::And(hn::ShiftRight<13>(abs_u), hn::Set(du32, 0x3FFu)), hn::Set(du32, 0x7E00u));
  const auto is_normal = hn::RebindMask(du32, hn::Gt(abs, hn::Set(di32, 0x387FFFFF)));
  const auto is_inf = hn::RebindMask(du32, hn::Gt(abs, hn::Set(di32, 0x477FEFFF)));
  const auto is_nan = hn::RebindMask(du32, hn::Gt(abs, hn::Set(di32, 0x7F800000)));
  auto bits = hn::IfThenElse(is_normal, normal, sub);
  bits = hn::IfThenElse(is_inf, hn::Set(du32, 0x7C00u), bits);
  bits = hn::IfThenElse(is_nan, nan, bits);
  return hn::DemoteTo(du16, hn::BitCast(di32, hn::Or(bits, sign)));
#endif
}

void CvtF32ToF16(const float* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto h0 = CvtDemoteF16(df, hn::LoadU(df, in + i));
    const auto h1 = CvtDemoteF16(df, hn::LoadU(df, in + i + N));
    hn::StoreU(h0, du16, out + i);
    hn::StoreU(h1, du16, out + i + N);
  }
  for (; i < n; ++i) CvtStoreU16(F32ToF16(in[i]), out + i);
}

const char* CvtTargetName() { return hwy::TargetName(HWY_TARGET); }

#undef RVEC_HAVE_F16C

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(CvtBF16ToF32);
HWY_EXPORT(CvtF32ToBF16);
HWY_EXPORT(CvtF16ToF32);
HWY_EXPORT(CvtF32ToF16);
HWY_EXPORT(CvtTargetName);

namespace {

[[noreturn]] void DieNotFloat(const char* what, DType dtype) {
  // A caller bug (integer tensors are never converted), not a user error.
  std::fprintf(stderr, "rvec: internal error: %s called with non-float dtype %.*s\n", what,
               static_cast<int>(DTypeName(dtype).size()), DTypeName(dtype).data());
  std::abort();
}

}  // namespace

void ConvertBF16ToF32(const uint16_t* in, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(CvtBF16ToF32)(in, out, n);
}
void ConvertF32ToBF16(const float* in, uint16_t* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(CvtF32ToBF16)(in, out, n);
}
void ConvertF16ToF32(const uint16_t* in, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(CvtF16ToF32)(in, out, n);
}
void ConvertF32ToF16(const float* in, uint16_t* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(CvtF32ToF16)(in, out, n);
}

void ConvertToF32(DType src, const void* in, float* out, size_t n) {
  switch (src) {
    case DType::kF32:
      if (n != 0) std::memcpy(out, in, n * 4);
      return;
    case DType::kBF16:
      return ConvertBF16ToF32(static_cast<const uint16_t*>(in), out, n);
    case DType::kF16:
      return ConvertF16ToF32(static_cast<const uint16_t*>(in), out, n);
    case DType::kF64: {
      const char* p = static_cast<const char*>(in);
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    }
    case DType::kF8E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(in);
      for (size_t i = 0; i < n; ++i) out[i] = F8E4M3ToF32(p[i]);
      return;
    }
    case DType::kF8E5M2: {
      const uint8_t* p = static_cast<const uint8_t*>(in);
      for (size_t i = 0; i < n; ++i) out[i] = F8E5M2ToF32(p[i]);
      return;
    }
    default:
      DieNotFloat("ConvertToF32", src);
  }
}

void ConvertFromF32(DType dst, const float* in, void* out, size_t n) {
  switch (dst) {
    case DType::kF32:
      if (n != 0) std::memcpy(out, in, n * 4);
      return;
    case DType::kBF16:
      return ConvertF32ToBF16(in, static_cast<uint16_t*>(out), n);
    case DType::kF16:
      return ConvertF32ToF16(in, static_cast<uint16_t*>(out), n);
    case DType::kF64: {
      char* p = static_cast<char*>(out);
      for (size_t i = 0; i < n; ++i) {
        const double d = in[i];
        std::memcpy(p + 8 * i, &d, 8);
      }
      return;
    }
    case DType::kF8E4M3: {
      uint8_t* p = static_cast<uint8_t*>(out);
      for (size_t i = 0; i < n; ++i) p[i] = F32ToF8E4M3(in[i]);
      return;
    }
    case DType::kF8E5M2: {
      uint8_t* p = static_cast<uint8_t*>(out);
      for (size_t i = 0; i < n; ++i) p[i] = F32ToF8E5M2(in[i]);
      return;
    }
    default:
      DieNotFloat("ConvertFromF32", dst);
  }
}

void ConvertDType(DType src, const void* in, DType dst, void* out, size_t n) {
  if (!IsFloat(src)) DieNotFloat("ConvertDType", src);
  if (!IsFloat(dst)) DieNotFloat("ConvertDType", dst);
  if (src == dst) {
    if (n != 0) std::memcpy(out, in, n * DTypeSize(src));
    return;
  }
  if (src == DType::kF32) return ConvertFromF32(dst, static_cast<const float*>(in), out, n);
  if (dst == DType::kF32) return ConvertToF32(src, in, static_cast<float*>(out), n);
  constexpr size_t kChunk = 2048;  // 8 KiB of f32 on the stack: stays in L1
  float buffer[kChunk];
  const size_t src_size = DTypeSize(src);
  const size_t dst_size = DTypeSize(dst);
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = n - i < kChunk ? n - i : kChunk;
    ConvertToF32(src, static_cast<const char*>(in) + i * src_size, buffer, m);
    ConvertFromF32(dst, buffer, static_cast<char*>(out) + i * dst_size, m);
  }
}

void RoundTripF32(DType dtype, float* values, size_t n) {
  if (!IsFloat(dtype)) DieNotFloat("RoundTripF32", dtype);
  if (dtype == DType::kF32) return;
  constexpr size_t kChunk = 2048;
  alignas(64) unsigned char buffer[kChunk * 8];
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = n - i < kChunk ? n - i : kChunk;
    ConvertFromF32(dtype, values + i, buffer, m);
    ConvertToF32(dtype, buffer, values + i, m);
  }
}

const char* OpsTargetName() { return HWY_DYNAMIC_DISPATCH(CvtTargetName)(); }

}  // namespace rvec
#endif  // HWY_ONCE
