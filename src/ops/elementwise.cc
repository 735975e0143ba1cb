// Highway kernels behind ops/elementwise.h: unfused f32 arithmetic and 16-way f64 reductions.
#include "ops/elementwise.h"

#include <cstddef>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

// Built with -ffp-contract=off (src/ops/CMakeLists.txt): a * b + c must not become an FMA.

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kOp: 0 add, 1 sub, 2 add scaled, 3 scale.
template <int kOp>
HWY_INLINE void EltBinary(float* out, const float* a, const float* b, float alpha, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const auto valpha = hn::Set(df, alpha);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto va = hn::LoadU(df, a + i);
    hn::Vec<decltype(df)> r;
    if constexpr (kOp == 0) {
      r = hn::Add(va, hn::LoadU(df, b + i));
    } else if constexpr (kOp == 1) {
      r = hn::Sub(va, hn::LoadU(df, b + i));
    } else if constexpr (kOp == 2) {
      r = hn::Add(va, hn::Mul(valpha, hn::LoadU(df, b + i)));
    } else {
      r = hn::Mul(valpha, va);
    }
    hn::StoreU(r, df, out + i);
  }
  for (; i < n; ++i) {
    if constexpr (kOp == 0) {
      out[i] = a[i] + b[i];
    } else if constexpr (kOp == 1) {
      out[i] = a[i] - b[i];
    } else if constexpr (kOp == 2) {
      const float scaled = alpha * b[i];
      out[i] = a[i] + scaled;
    } else {
      out[i] = alpha * a[i];
    }
  }
}

void EltAdd(float* out, const float* a, const float* b, size_t n) {
  EltBinary<0>(out, a, b, 0.0f, n);
}
void EltSub(float* out, const float* a, const float* b, size_t n) {
  EltBinary<1>(out, a, b, 0.0f, n);
}
void EltApplyDifferenceBF16(const uint16_t* HWY_RESTRICT t, const uint16_t* HWY_RESTRICT a,
                            const uint16_t* HWY_RESTRICT b, float alpha, size_t n,
                            uint16_t* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(df)> d16;  // as many bf16 lanes as f32 lanes
  const size_t N = hn::Lanes(df);
  const auto valpha = hn::Set(df, alpha);
  const auto k7fff = hn::Set(du, 0x7FFFu), kOne = hn::Set(du, 1u), kQuiet = hn::Set(du, 0x40u);
  const auto kAbs = hn::Set(di, 0x7FFFFFFF), kInf = hn::Set(di, 0x7F800000);
  const auto kInf16 = hn::Set(di, 0x7F80);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto t16 = hn::PromoteTo(du, hn::LoadU(d16, t + i));
    const auto tf = hn::BitCast(df, hn::ShiftLeft<16>(t16));
    const auto af = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, a + i))));
    const auto bf = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, b + i))));
    const auto d = hn::Mul(valpha, hn::Sub(af, bf));
    const auto u = hn::BitCast(du, hn::Add(tf, d));
    const auto high = hn::ShiftRight<16>(u);
    const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(u, k7fff), hn::And(high, kOne)));
    const auto is_nan = hn::RebindMask(du, hn::Gt(hn::And(hn::BitCast(di, u), kAbs), kInf));
    auto enc = hn::IfThenElse(is_nan, hn::Or(high, kQuiet), rounded);
    enc = hn::IfThenElse(hn::RebindMask(du, hn::Gt(hn::BitCast(di, hn::And(t16, k7fff)), kInf16)),
                         hn::Or(t16, kQuiet), enc);
    enc = hn::IfThenElse(hn::RebindMask(du, hn::Eq(d, hn::Zero(df))), t16, enc);
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, enc)), d16, out + i);
  }
  if (i < n) ApplyDifferenceBF16Reference(t + i, a + i, b + i, alpha, n - i, out + i);
}

void EltAddScaled(float* out, const float* a, const float* b, float alpha, size_t n) {
  EltBinary<2>(out, a, b, alpha, n);
}
void EltScale(float* out, const float* a, float alpha, size_t n) {
  EltBinary<3>(out, a, nullptr, alpha, n);
}

// Adds the terms of `blocks` whole 16-element blocks into acc16[i % 16], in index order.
// kKind: 0 dot, 1 sum of squares, 2 sum.
template <int kKind>
HWY_INLINE void EltReduceBlocks(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b,
                                size_t blocks, double* HWY_RESTRICT acc16) {
#if HWY_HAVE_SCALABLE || !HWY_HAVE_FLOAT64
  for (size_t blk = 0; blk < blocks; ++blk) {
    for (size_t j = 0; j < 16; ++j) {
      const double x = a[16 * blk + j];
      if constexpr (kKind == 0) {
        acc16[j] += x * static_cast<double>(b[16 * blk + j]);
      } else if constexpr (kKind == 1) {
        acc16[j] += x * x;
      } else {
        acc16[j] += x;
      }
    }
  }
#else
  const hn::ScalableTag<double> d64;
  const hn::Rebind<float, decltype(d64)> df;
  constexpr size_t kNd = HWY_LANES(double);
  constexpr size_t kVecs = 16 / kNd;
  static_assert(kNd * kVecs == 16, "vector width must divide 16 doubles");
  using V = hn::Vec<decltype(d64)>;
  V acc[kVecs];
  for (size_t v = 0; v < kVecs; ++v) acc[v] = hn::Zero(d64);
  for (size_t blk = 0; blk < blocks; ++blk) {
    const float* pa = a + 16 * blk;
    for (size_t v = 0; v < kVecs; ++v) {
      const V x = hn::PromoteTo(d64, hn::LoadU(df, pa + v * kNd));
      if constexpr (kKind == 0) {
        const V y = hn::PromoteTo(d64, hn::LoadU(df, b + 16 * blk + v * kNd));
        acc[v] = hn::Add(acc[v], hn::Mul(x, y));  // the product is exact: fusing cannot differ
      } else if constexpr (kKind == 1) {
        acc[v] = hn::Add(acc[v], hn::Mul(x, x));
      } else {
        acc[v] = hn::Add(acc[v], x);
      }
    }
  }
  for (size_t v = 0; v < kVecs; ++v) hn::StoreU(acc[v], d64, acc16 + v * kNd);
#endif
}

void EltDotBlocks(const float* a, const float* b, size_t blocks, double* acc16) {
  EltReduceBlocks<0>(a, b, blocks, acc16);
}
void EltSumSquaresBlocks(const float* a, size_t blocks, double* acc16) {
  EltReduceBlocks<1>(a, nullptr, blocks, acc16);
}
void EltSumBlocks(const float* a, size_t blocks, double* acc16) {
  EltReduceBlocks<2>(a, nullptr, blocks, acc16);
}

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(EltAdd);
HWY_EXPORT(EltApplyDifferenceBF16);
HWY_EXPORT(EltSub);
HWY_EXPORT(EltAddScaled);
HWY_EXPORT(EltScale);
HWY_EXPORT(EltDotBlocks);
HWY_EXPORT(EltSumSquaresBlocks);
HWY_EXPORT(EltSumBlocks);

namespace {

double CombineAccumulators(double* acc16) {
  for (size_t width = 8; width >= 1; width /= 2) {
    for (size_t j = 0; j < width; ++j) acc16[j] = acc16[j] + acc16[j + width];
  }
  return acc16[0];
}

}  // namespace

void Add(float* out, const float* a, const float* b, size_t n) {
  HWY_DYNAMIC_DISPATCH(EltAdd)(out, a, b, n);
}
void ApplyDifferenceBF16(const uint16_t* t, const uint16_t* a, const uint16_t* b, float alpha,
                         size_t n, uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(EltApplyDifferenceBF16)(t, a, b, alpha, n, out);
}
void Sub(float* out, const float* a, const float* b, size_t n) {
  HWY_DYNAMIC_DISPATCH(EltSub)(out, a, b, n);
}
void AddScaled(float* out, const float* a, const float* b, float alpha, size_t n) {
  HWY_DYNAMIC_DISPATCH(EltAddScaled)(out, a, b, alpha, n);
}
void Scale(float* out, const float* a, float alpha, size_t n) {
  HWY_DYNAMIC_DISPATCH(EltScale)(out, a, alpha, n);
}

double DotF64(const float* a, const float* b, size_t n) {
  double acc[16] = {};
  const size_t blocks = n / 16;
  HWY_DYNAMIC_DISPATCH(EltDotBlocks)(a, b, blocks, acc);
  for (size_t i = blocks * 16; i < n; ++i) {
    acc[i % 16] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return CombineAccumulators(acc);
}

double SumSquaresF64(const float* a, size_t n) {
  double acc[16] = {};
  const size_t blocks = n / 16;
  HWY_DYNAMIC_DISPATCH(EltSumSquaresBlocks)(a, blocks, acc);
  for (size_t i = blocks * 16; i < n; ++i) {
    acc[i % 16] += static_cast<double>(a[i]) * static_cast<double>(a[i]);
  }
  return CombineAccumulators(acc);
}

double SumF64(const float* a, size_t n) {
  double acc[16] = {};
  const size_t blocks = n / 16;
  HWY_DYNAMIC_DISPATCH(EltSumBlocks)(a, blocks, acc);
  for (size_t i = blocks * 16; i < n; ++i) acc[i % 16] += static_cast<double>(a[i]);
  return CombineAccumulators(acc);
}

void ApplyDifferenceBF16Reference(const uint16_t* t, const uint16_t* a, const uint16_t* b,
                                  float alpha, size_t n, uint16_t* out) {
  auto widen = [](uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
  };
  for (size_t i = 0; i < n; ++i) {
    const float diff = widen(a[i]) - widen(b[i]);
    const float d = alpha * diff;
    const float sum = widen(t[i]) + d;
    uint32_t u;
    std::memcpy(&u, &sum, sizeof(u));
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;
    uint16_t enc = static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
    // When both addends are NaN, which payload the addition returns depends on the operand order
    // the compiler picked; a NaN target keeping its own payload is the same everywhere.
    if ((t[i] & 0x7FFFu) > 0x7F80u) enc = static_cast<uint16_t>(t[i] | 0x40u);
    out[i] = d == 0.0f ? t[i] : enc;
  }
}

double DotF64Reference(const float* a, const float* b, size_t n) {
  double acc[16] = {};
  for (size_t i = 0; i < n; ++i) {
    acc[i % 16] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return CombineAccumulators(acc);
}

double SumSquaresF64Reference(const float* a, size_t n) {
  double acc[16] = {};
  for (size_t i = 0; i < n; ++i) acc[i % 16] += static_cast<double>(a[i]) * a[i];
  return CombineAccumulators(acc);
}

double SumF64Reference(const float* a, size_t n) {
  double acc[16] = {};
  for (size_t i = 0; i < n; ++i) acc[i % 16] += static_cast<double>(a[i]);
  return CombineAccumulators(acc);
}

}  // namespace rvec
#endif  // HWY_ONCE
