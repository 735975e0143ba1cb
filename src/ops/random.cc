// Highway kernel behind ops/random.h: Box-Muller in f64 with series for ln, cos and sin, written
// with IEEE basic operations only so that every target produces the scalar reference's bits.
#include "ops/random.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

// Scalar definitions, compiled once (this file is re-included for every Highway target).
#ifndef RVEC_OPS_RANDOM_SCALAR_
#define RVEC_OPS_RANDOM_SCALAR_
namespace rvec::random_detail {

inline constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
inline constexpr double kLn2 = 0.6931471805599453;
inline constexpr double kSqrt2 = 1.4142135623730951;
inline constexpr double kHalfPi = 1.5707963267948966;
// Series coefficients, highest order first: 2 atanh(s) / (2 s) in s^2 up to s^18, cos x up to
// x^16 and sin x / x up to x^16; |s| < 0.172 and |x| <= pi/4 keep the error below 1e-16.
inline constexpr double kLn[] = {1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11,
                                 1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3,  1.0};
inline constexpr double kCos[] = {1.0 / 20922789888000.0,
                                  -1.0 / 87178291200.0,
                                  1.0 / 479001600.0,
                                  -1.0 / 3628800.0,
                                  1.0 / 40320.0,
                                  -1.0 / 720.0,
                                  1.0 / 24.0,
                                  -1.0 / 2.0,
                                  1.0};
inline constexpr double kSin[] = {1.0 / 355687428096000.0,
                                  -1.0 / 1307674368000.0,
                                  1.0 / 6227020800.0,
                                  -1.0 / 39916800.0,
                                  1.0 / 362880.0,
                                  -1.0 / 5040.0,
                                  1.0 / 120.0,
                                  -1.0 / 6.0,
                                  1.0};

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint64_t PairBits(uint64_t key, uint64_t pair) { return Mix64(key + (pair + 1) * kGolden); }

// One Box-Muller pair from 64 random bits: u1 from the high half; the angle is a quarter turn
// (bits 30-31) plus psi uniform in [-pi/4, pi/4) (bits 0-29), which is uniform on the circle.
inline void NormalPairScalar(uint64_t bits, double* z0, double* z1) {
  const double u1 = (static_cast<double>(bits >> 32) + 0.5) * 0x1.0p-32;  // (0, 1)
  uint64_t ub;
  std::memcpy(&ub, &u1, 8);
  double e = static_cast<double>(ub >> 52) - 1023.0;
  const uint64_t mb = (ub & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;
  double m;
  std::memcpy(&m, &mb, 8);
  if (m > kSqrt2) {
    m = m * 0.5;
    e = e + 1.0;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = kLn[0];
  for (size_t k = 1; k < std::size(kLn); ++k) p = p * s2 + kLn[k];
  const double ln = e * kLn2 + 2.0 * s * p;
  const double r = std::sqrt(-2.0 * ln);

  const double psi = (static_cast<double>(bits & 0x3FFFFFFFULL) * 0x1.0p-30 - 0.5) * kHalfPi;
  const double x2 = psi * psi;
  double c = kCos[0], sn = kSin[0];
  for (size_t k = 1; k < std::size(kCos); ++k) {
    c = c * x2 + kCos[k];
    sn = sn * x2 + kSin[k];
  }
  sn = sn * psi;
  const bool q0 = (bits >> 30) & 1, q1 = (bits >> 31) & 1;
  const double a = q0 ? sn : c;
  const double b = q0 ? c : sn;
  *z0 = (q0 != q1) ? -(r * a) : r * a;
  *z1 = q1 ? -(r * b) : r * b;
}

}  // namespace rvec::random_detail
#endif  // RVEC_OPS_RANDOM_SCALAR_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/random.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Pairs first_pair .. first_pair + num_pairs - 1 (num_pairs <= 512) into z0[], z1[].
void RandNormalPairs(uint64_t key, uint64_t first_pair, size_t num_pairs, double* HWY_RESTRICT z0,
                     double* HWY_RESTRICT z1) {
  namespace rd = random_detail;
  alignas(64) uint64_t bits[512];
  for (size_t i = 0; i < num_pairs; ++i) bits[i] = rd::PairBits(key, first_pair + i);
  size_t i = 0;
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const size_t N = hn::Lanes(d);
  // 2^52 + k has k in its low mantissa bits: an exact integer -> double for k < 2^52.
  const auto magic_bits = hn::Set(du, 0x4330000000000000ULL);
  const auto magic = hn::Set(d, 4503599627370496.0);
  for (; i + N <= num_pairs; i += N) {
    const auto b = hn::LoadU(du, bits + i);
    const auto hi = hn::Sub(hn::BitCast(d, hn::Or(hn::ShiftRight<32>(b), magic_bits)), magic);
    const auto u1 = hn::Mul(hn::Add(hi, hn::Set(d, 0.5)), hn::Set(d, 0x1.0p-32));
    const auto ub = hn::BitCast(du, u1);
    auto e = hn::Sub(hn::BitCast(d, hn::Or(hn::ShiftRight<52>(ub), magic_bits)),
                     hn::Set(d, 4503599627370496.0 + 1023.0));
    auto m = hn::BitCast(d, hn::Or(hn::And(ub, hn::Set(du, 0x000FFFFFFFFFFFFFULL)),
                                   hn::Set(du, 0x3FF0000000000000ULL)));
    const auto big = hn::Gt(m, hn::Set(d, rd::kSqrt2));
    m = hn::IfThenElse(big, hn::Mul(m, hn::Set(d, 0.5)), m);
    e = hn::IfThenElse(big, hn::Add(e, hn::Set(d, 1.0)), e);
    const auto one = hn::Set(d, 1.0);
    const auto s = hn::Sub(m, one) / hn::Add(m, one);
    const auto s2 = hn::Mul(s, s);
    auto p = hn::Set(d, rd::kLn[0]);
    for (size_t k = 1; k < std::size(rd::kLn); ++k) {
      p = hn::Add(hn::Mul(p, s2), hn::Set(d, rd::kLn[k]));
    }
    const auto ln =
        hn::Add(hn::Mul(e, hn::Set(d, rd::kLn2)), hn::Mul(hn::Mul(hn::Set(d, 2.0), s), p));
    const auto r = hn::Sqrt(hn::Mul(hn::Set(d, -2.0), ln));

    const auto lo =
        hn::Sub(hn::BitCast(d, hn::Or(hn::And(b, hn::Set(du, 0x3FFFFFFFULL)), magic_bits)), magic);
    const auto psi = hn::Mul(hn::Sub(hn::Mul(lo, hn::Set(d, 0x1.0p-30)), hn::Set(d, 0.5)),
                             hn::Set(d, rd::kHalfPi));
    const auto x2 = hn::Mul(psi, psi);
    auto c = hn::Set(d, rd::kCos[0]);
    auto sn = hn::Set(d, rd::kSin[0]);
    for (size_t k = 1; k < std::size(rd::kCos); ++k) {
      c = hn::Add(hn::Mul(c, x2), hn::Set(d, rd::kCos[k]));
      sn = hn::Add(hn::Mul(sn, x2), hn::Set(d, rd::kSin[k]));
    }
    sn = hn::Mul(sn, psi);
    const auto q0 = hn::RebindMask(d, hn::TestBit(b, hn::Set(du, 1ULL << 30)));
    const auto q1 = hn::RebindMask(d, hn::TestBit(b, hn::Set(du, 1ULL << 31)));
    // bit 30 of b ^ (b >> 1) is q0 xor q1.
    const auto q01 =
        hn::RebindMask(d, hn::TestBit(hn::Xor(b, hn::ShiftRight<1>(b)), hn::Set(du, 1ULL << 30)));
    const auto ra = hn::Mul(r, hn::IfThenElse(q0, sn, c));
    const auto rb = hn::Mul(r, hn::IfThenElse(q0, c, sn));
    hn::StoreU(hn::IfThenElse(q01, hn::Neg(ra), ra), d, z0 + i);
    hn::StoreU(hn::IfThenElse(q1, hn::Neg(rb), rb), d, z1 + i);
  }
#endif
  for (; i < num_pairs; ++i) rd::NormalPairScalar(bits[i], z0 + i, z1 + i);
}

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(RandNormalPairs);

uint64_t RandomStreamKey(uint64_t seed, const char* name, size_t name_length) {
  uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a of the name
  for (size_t i = 0; i < name_length; ++i) {
    h = (h ^ static_cast<unsigned char>(name[i])) * 0x100000001B3ULL;
  }
  return random_detail::Mix64(random_detail::Mix64(seed + random_detail::kGolden) ^ h);
}

void StandardNormals(uint64_t key, uint64_t first, float* out, size_t n) {
  constexpr size_t kBlock = 512;
  alignas(64) double z0[kBlock];
  alignas(64) double z1[kBlock];
  uint64_t next = first;  // element index of out[i]
  size_t i = 0;
  while (i < n) {
    const uint64_t p0 = next / 2;
    const uint64_t last_pair = (first + n - 1) / 2;
    const size_t pairs = static_cast<size_t>(std::min<uint64_t>(kBlock, last_pair - p0 + 1));
    HWY_DYNAMIC_DISPATCH(RandNormalPairs)(key, p0, pairs, z0, z1);
    for (size_t k = 0; k < pairs; ++k) {
      const uint64_t e0 = 2 * (p0 + k);
      if (e0 >= next && i < n) {
        out[i++] = static_cast<float>(z0[k]);
        ++next;
      }
      if (i < n) {
        out[i++] = static_cast<float>(z1[k]);
        ++next;
      }
    }
  }
}

void StandardNormalsReference(uint64_t key, uint64_t first, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t e = first + i;
    double z0, z1;
    random_detail::NormalPairScalar(random_detail::PairBits(key, e / 2), &z0, &z1);
    out[i] = static_cast<float>(e % 2 == 0 ? z0 : z1);
  }
}

}  // namespace rvec
#endif  // HWY_ONCE
