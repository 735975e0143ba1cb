// Elementwise kernels and reductions against scalar references, on every compiled target.
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "ops/ops_test_util.h"

namespace rvec {
namespace {

using testing::ForEachOpsTarget;

std::vector<float> RandomValues(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

void ExpectBitsEqual(const std::vector<float>& want, const std::vector<float>& got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(F32Bits(want[i]), F32Bits(got[i]))
        << "i=" << i << " want " << want[i] << " got " << got[i];
  }
}

TEST(ElementwiseTest, BinaryOpsMatchScalarExpressions) {
  constexpr size_t kMax = 100;
  // Mixed magnitudes so that a fused multiply-add would round differently somewhere.
  std::vector<float> a = RandomValues(kMax, 1, 1.0f);
  std::vector<float> b = RandomValues(kMax, 2, 0.01f);
  a[3] = std::numeric_limits<float>::infinity();
  b[5] = std::numeric_limits<float>::quiet_NaN();
  const float alpha = 0.7312345f;
  ForEachOpsTarget([&] {
    for (size_t n = 0; n <= kMax; n += (n < 40 ? 1 : 17)) {
      std::vector<float> want(kMax, -7.0f), got(kMax, -7.0f);
      for (size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
      Add(got.data(), a.data(), b.data(), n);
      ExpectBitsEqual(want, got, kMax);
      for (size_t i = 0; i < n; ++i) want[i] = a[i] - b[i];
      Sub(got.data(), a.data(), b.data(), n);
      ExpectBitsEqual(want, got, kMax);
      for (size_t i = 0; i < n; ++i) {
        const float scaled = alpha * b[i];
        want[i] = a[i] + scaled;
      }
      AddScaled(got.data(), a.data(), b.data(), alpha, n);
      ExpectBitsEqual(want, got, kMax);
      for (size_t i = 0; i < n; ++i) want[i] = alpha * a[i];
      Scale(got.data(), a.data(), alpha, n);
      ExpectBitsEqual(want, got, kMax);
    }
  });
}

// AddScaled must round the product before the sum: find inputs where that differs from an FMA.
TEST(ElementwiseTest, AddScaledIsNotFused) {
  const std::vector<float> a = RandomValues(4096, 3, 1.0f);
  const std::vector<float> b = RandomValues(4096, 4, 1.0f);
  const float alpha = 1.0f / 3.0f;
  size_t differs_from_fma = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const float scaled = alpha * b[i];
    if (F32Bits(a[i] + scaled) != F32Bits(std::fma(alpha, b[i], a[i]))) ++differs_from_fma;
  }
  ASSERT_GT(differs_from_fma, 0u);  // otherwise the check below proves nothing
  ForEachOpsTarget([&] {
    std::vector<float> got(a.size());
    AddScaled(got.data(), a.data(), b.data(), alpha, a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      const float scaled = alpha * b[i];
      ASSERT_EQ(F32Bits(a[i] + scaled), F32Bits(got[i])) << i;
    }
  });
}

TEST(ElementwiseTest, InPlace) {
  std::vector<float> a = RandomValues(77, 5, 1.0f);
  const std::vector<float> b = RandomValues(77, 6, 1.0f);
  std::vector<float> want(77);
  for (size_t i = 0; i < 77; ++i) {
    const float scaled = 2.5f * b[i];
    want[i] = a[i] + scaled;
  }
  AddScaled(a.data(), a.data(), b.data(), 2.5f, a.size());
  ExpectBitsEqual(want, a, 77);
}

TEST(ElementwiseTest, ReductionsBitExactOnEveryTarget) {
  const std::vector<float> a = RandomValues(10007, 7, 3.0f);
  const std::vector<float> b = RandomValues(10007, 8, 0.02f);
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{33},
                   size_t{1000}, size_t{10007}}) {
    const double dot = DotF64Reference(a.data(), b.data(), n);
    const double ss = SumSquaresF64Reference(a.data(), n);
    const double sum = SumF64Reference(a.data(), n);
    ForEachOpsTarget([&] {
      ASSERT_EQ(DotF64(a.data(), b.data(), n), dot) << "n=" << n;
      ASSERT_EQ(SumSquaresF64(a.data(), n), ss) << "n=" << n;
      ASSERT_EQ(SumF64(a.data(), n), sum) << "n=" << n;
    });
  }
}

TEST(ElementwiseTest, ApplyDifferenceBF16MatchesScalarOnEveryTarget) {
  // Every bf16 pattern as the target, against deltas of every kind: random normals of several
  // scales, equal pairs (zero delta: the target's bits must pass through), NaN, infinities,
  // signed zeros, subnormals and values that overflow when added.
  const size_t n = 65536 + 7;  // a tail the vector loop does not cover
  std::vector<uint16_t> t(n), a(n), b(n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const uint16_t specials[] = {0x7FC0, 0xFFC1, 0x7F80, 0xFF80, 0x0000, 0x8000,
                               0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80};
  for (size_t i = 0; i < n; ++i) {
    t[i] = static_cast<uint16_t>(i);
    const float scale = i % 3 == 0 ? 1e-3f : i % 3 == 1 ? 1.0f : 1e4f;
    a[i] = F32ToBF16(dist(rng) * scale);
    b[i] = i % 11 == 0 ? a[i] : F32ToBF16(dist(rng) * scale);
    if (i % 13 == 0) a[i] = specials[(i / 13) % std::size(specials)];
    if (i % 17 == 0) b[i] = specials[(i / 17) % std::size(specials)];
  }
  for (const float alpha : {1.0f, 0.5f, -1.0f, 1e-3f, 0.0f, 3.0f}) {
    std::vector<uint16_t> want(n);
    ApplyDifferenceBF16Reference(t.data(), a.data(), b.data(), alpha, n, want.data());
    ForEachOpsTarget([&] {
      for (const size_t len : {size_t{0}, size_t{1}, size_t{15}, size_t{17}, n}) {
        std::vector<uint16_t> got(len + 1, 0xABCD);
        ApplyDifferenceBF16(t.data(), a.data(), b.data(), alpha, len, got.data());
        for (size_t i = 0; i < len; ++i) {
          ASSERT_EQ(got[i], want[i]) << "alpha " << alpha << " i=" << i << " len " << len;
        }
        ASSERT_EQ(got[len], 0xABCD) << "wrote past the end";
      }
    });
  }
  // The reference rounds once, to nearest even, and keeps the target where the delta is zero.
  uint16_t out = 0;
  const uint16_t one = 0x3F80, neg_zero = 0x8000, x = F32ToBF16(1.0f + 1.0f / 128);
  ApplyDifferenceBF16Reference(&neg_zero, &one, &one, 1.0f, 1, &out);
  EXPECT_EQ(out, neg_zero);
  ApplyDifferenceBF16Reference(&one, &x, &one, 0.5f, 1, &out);  // 1 + 1/256: a tie, to even
  EXPECT_EQ(out, one);
}

// The reference itself must be an accurate sum: compare with long double accumulation.
TEST(ElementwiseTest, ReductionsAreAccurate) {
  const size_t n = 1 << 20;
  const std::vector<float> a = RandomValues(n, 9, 1.0f);
  const std::vector<float> b = RandomValues(n, 10, 1.0f);
  long double dot = 0, ss = 0, sum = 0;
  for (size_t i = 0; i < n; ++i) {
    dot += static_cast<long double>(a[i]) * b[i];
    ss += static_cast<long double>(a[i]) * a[i];
    sum += a[i];
  }
  EXPECT_NEAR(DotF64(a.data(), b.data(), n), static_cast<double>(dot), 1e-9);
  EXPECT_NEAR(SumSquaresF64(a.data(), n), static_cast<double>(ss), 1e-9 * static_cast<double>(ss));
  EXPECT_NEAR(SumF64(a.data(), n), static_cast<double>(sum), 1e-9);
  // Hand-checkable values.
  const float ones[5] = {1, 2, 3, 4, 5};
  EXPECT_EQ(SumF64(ones, 5), 15.0);
  EXPECT_EQ(SumSquaresF64(ones, 5), 55.0);
  EXPECT_EQ(DotF64(ones, ones, 5), 55.0);
}

TEST(ElementwiseTest, NonFinitePropagates) {
  std::vector<float> a(40, 1.0f);
  a[37] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(SumF64(a.data(), a.size())));
  a[37] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(SumSquaresF64(a.data(), a.size())));
}

}  // namespace
}  // namespace rvec
