// Bulk dtype conversion against the scalar reference in base/dtype.h, on every compiled target.
#include "ops/convert.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "ops/ops_test_util.h"

namespace rvec {
namespace {

using testing::ForEachOpsTarget;

std::vector<uint16_t> AllU16() {
  std::vector<uint16_t> v(65536);
  for (uint32_t i = 0; i < 65536; ++i) v[i] = static_cast<uint16_t>(i);
  return v;
}

// f32 bit patterns that hit every rounding class of a narrowing to bf16 or f16: for each sign
// and exponent, and each bit position where f16 (normal: 13, subnormal: 14..24) or bf16 (16)
// rounds, the low part below that position is 0, 1, just below half, exactly half, just above
// half and all ones, with the kept part odd and even. Plus the range edges, NaNs and random bits.
std::vector<uint32_t> NarrowingPatterns() {
  std::vector<uint32_t> out;
  std::mt19937 rng(12345);
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t exp = 0; exp < 256; ++exp) {
      for (uint32_t p = 13; p <= 24; ++p) {
        const uint32_t half = 1u << (p - 1);
        const uint32_t lows[] = {0, 1, half - 1, half, half + 1, (1u << p) - 1};
        const uint32_t highs[] = {
            0u, 1u, 2u, 3u, uint32_t(rng()), uint32_t(rng()), uint32_t(rng()), uint32_t(rng())};
        for (uint32_t lo : lows) {
          for (uint32_t hi : highs) {
            const uint32_t man = ((hi << p) | (lo & ((1u << p) - 1))) & 0x7FFFFFu;
            out.push_back((sign << 31) | (exp << 23) | man);
          }
        }
      }
    }
  }
  const uint32_t edges[] = {0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x32FFFFFF,
                            0x33000000, 0x33000001, 0x337FFFFF, 0x33800000, 0x387FEFFF, 0x387FF000,
                            0x387FFFFF, 0x38800000, 0x477FEFFF, 0x477FF000, 0x477FFFFF, 0x47800000,
                            0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x7F801FFF,
                            0x7F802000, 0x7F810000, 0x7FBFFFFF, 0x7FC00000, 0x7FFFFFFF, 0xFF800000,
                            0xFF800001, 0xFFC00000, 0xFFFFFFFF};
  for (uint32_t e : edges) {
    out.push_back(e);
    out.push_back(e | 0x80000000u);
  }
  for (int i = 0; i < 1 << 20; ++i) out.push_back(static_cast<uint32_t>(rng()));
  return out;
}

std::vector<float> AsFloats(const std::vector<uint32_t>& bits) {
  std::vector<float> f(bits.size());
  std::memcpy(f.data(), bits.data(), bits.size() * 4);
  return f;
}

// First mismatching index, for readable failures on million-element comparisons.
template <class T>
void ExpectSameBits(const std::vector<T>& expected, const std::vector<T>& actual,
                    const std::vector<uint32_t>* inputs = nullptr) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::memcmp(&expected[i], &actual[i], sizeof(T)) != 0) {
      uint32_t e = 0, a = 0;
      std::memcpy(&e, &expected[i], sizeof(T));
      std::memcpy(&a, &actual[i], sizeof(T));
      FAIL() << "index " << i << std::hex << " input 0x" << (inputs ? (*inputs)[i] : i)
             << " expected 0x" << e << " got 0x" << a;
    }
  }
}

TEST(ConvertTest, BF16ToF32AllPatterns) {
  const std::vector<uint16_t> in = AllU16();
  std::vector<float> expected(in.size());
  for (size_t i = 0; i < in.size(); ++i) expected[i] = BF16ToF32(in[i]);
  ForEachOpsTarget([&] {
    std::vector<float> out(in.size(), -1.0f);
    ConvertBF16ToF32(in.data(), out.data(), in.size());
    ExpectSameBits(expected, out);
    std::vector<float> out2(in.size(), -1.0f);
    ConvertToF32(DType::kBF16, in.data(), out2.data(), in.size());
    ExpectSameBits(expected, out2);
  });
}

TEST(ConvertTest, F16ToF32AllPatterns) {
  const std::vector<uint16_t> in = AllU16();
  std::vector<float> expected(in.size());
  for (size_t i = 0; i < in.size(); ++i) expected[i] = F16ToF32(in[i]);
  ForEachOpsTarget([&] {
    std::vector<float> out(in.size(), -1.0f);
    ConvertF16ToF32(in.data(), out.data(), in.size());
    ExpectSameBits(expected, out);
    std::vector<float> out2(in.size(), -1.0f);
    ConvertToF32(DType::kF16, in.data(), out2.data(), in.size());
    ExpectSameBits(expected, out2);
  });
}

TEST(ConvertTest, F32ToBF16RoundingClasses) {
  const std::vector<uint32_t> bits = NarrowingPatterns();
  const std::vector<float> in = AsFloats(bits);
  std::vector<uint16_t> expected(in.size());
  for (size_t i = 0; i < in.size(); ++i) expected[i] = F32ToBF16(in[i]);
  ForEachOpsTarget([&] {
    std::vector<uint16_t> out(in.size(), 0xDEAD);
    ConvertF32ToBF16(in.data(), out.data(), in.size());
    ExpectSameBits(expected, out, &bits);
    std::vector<uint16_t> out2(in.size(), 0xDEAD);
    ConvertFromF32(DType::kBF16, in.data(), out2.data(), in.size());
    ExpectSameBits(expected, out2, &bits);
  });
}

TEST(ConvertTest, F32ToF16RoundingClasses) {
  const std::vector<uint32_t> bits = NarrowingPatterns();
  const std::vector<float> in = AsFloats(bits);
  std::vector<uint16_t> expected(in.size());
  for (size_t i = 0; i < in.size(); ++i) expected[i] = F32ToF16(in[i]);
  ForEachOpsTarget([&] {
    std::vector<uint16_t> out(in.size(), 0xDEAD);
    ConvertF32ToF16(in.data(), out.data(), in.size());
    ExpectSameBits(expected, out, &bits);
    std::vector<uint16_t> out2(in.size(), 0xDEAD);
    ConvertFromF32(DType::kF16, in.data(), out2.data(), in.size());
    ExpectSameBits(expected, out2, &bits);
  });
}

// The reference values above must themselves be IEEE: spot-check the classes the SIMD paths
// special-case, so a wrong reference cannot make both sides agree.
TEST(ConvertTest, ReferenceSpotChecks) {
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65519.996f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // the tie rounds to even, i.e. overflows
  EXPECT_EQ(F32ToF16(5.9604644775390625e-8f), 0x0001);
  EXPECT_EQ(F32ToF16(2.98023223876953125e-8f), 0x0000);  // tie at 2^-25 goes to even (zero)
  EXPECT_EQ(F32ToF16(-6.103515625e-5f), 0x8400);
  EXPECT_EQ(F32ToBF16(F32FromBits(0x3F808000)), 0x3F80);           // tie, even stays
  EXPECT_EQ(F32ToBF16(F32FromBits(0x3F818000)), 0x3F82);           // tie, odd rounds up
  EXPECT_EQ(F32ToBF16(F32FromBits(0x7F7FFFFF)), 0x7F80);           // overflow to inf
  EXPECT_EQ(F32ToBF16(F32FromBits(0x7F800001)) & 0x7FC0, 0x7FC0);  // NaN stays NaN
}

// Sizes around the vector width and unaligned buffers (odd byte addresses on the 16-bit side),
// checking that nothing outside [0, n) is written.
TEST(ConvertTest, SizesAndMisalignment) {
  std::mt19937 rng(7);
  constexpr size_t kMaxN = 2 * 2 * 16 + 5;  // twice the unrolled AVX-512 step, plus a tail
  std::vector<float> src_f(kMaxN + 8);
  std::vector<uint16_t> src_h(kMaxN + 8);
  for (auto& f : src_f) f = F32FromBits(static_cast<uint32_t>(rng()));
  for (auto& h : src_h) h = static_cast<uint16_t>(rng());
  ForEachOpsTarget([&] {
    for (DType dt : {DType::kBF16, DType::kF16}) {
      for (size_t n = 0; n <= kMaxN; ++n) {
        for (size_t mis = 0; mis < 4; ++mis) {
          // Widening: 16-bit input at byte offset mis (odd for mis 1, 3), f32 output offset mis.
          std::vector<unsigned char> in_bytes(2 * kMaxN + 16);
          std::memcpy(in_bytes.data() + mis, src_h.data(), 2 * n);
          std::vector<float> out(kMaxN + 8, 1234.5f);
          ConvertToF32(dt, in_bytes.data() + mis, out.data() + mis, n);
          for (size_t i = 0; i < out.size(); ++i) {
            if (i < mis || i >= mis + n) {
              ASSERT_EQ(out[i], 1234.5f) << "wrote outside the range, n=" << n << " i=" << i;
            } else {
              const float e = LoadAsF32(dt, src_h.data(), i - mis);
              ASSERT_EQ(F32Bits(e), F32Bits(out[i])) << "n=" << n << " i=" << i;
            }
          }
          // Narrowing: f32 input at element offset mis, 16-bit output at byte offset mis.
          std::vector<unsigned char> out_bytes(2 * kMaxN + 16, 0xAB);
          ConvertFromF32(dt, src_f.data() + mis, out_bytes.data() + mis, n);
          for (size_t b = 0; b < out_bytes.size(); ++b) {
            if (b < mis || b >= mis + 2 * n) {
              ASSERT_EQ(out_bytes[b], 0xAB) << "wrote outside the range, n=" << n;
            }
          }
          for (size_t i = 0; i < n; ++i) {
            uint16_t got;
            std::memcpy(&got, out_bytes.data() + mis + 2 * i, 2);
            const uint16_t want =
                dt == DType::kBF16 ? F32ToBF16(src_f[mis + i]) : F32ToF16(src_f[mis + i]);
            ASSERT_EQ(got, want) << "n=" << n << " i=" << i;
          }
        }
      }
    }
  });
}

// f8 and f64 go through the scalar reference; check the dispatch and every f8 byte.
TEST(ConvertTest, F8AndF64MatchReference) {
  std::vector<uint8_t> bytes(256);
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<uint8_t>(i);
  for (DType dt : {DType::kF8E4M3, DType::kF8E5M2}) {
    std::vector<float> out(256);
    ConvertToF32(dt, bytes.data(), out.data(), 256);
    for (int i = 0; i < 256; ++i) {
      ASSERT_EQ(F32Bits(out[i]), F32Bits(LoadAsF32(dt, bytes.data(), i))) << i;
    }
  }
  const std::vector<uint32_t> bits = NarrowingPatterns();
  const std::vector<float> in = AsFloats(bits);
  for (DType dt : {DType::kF8E4M3, DType::kF8E5M2, DType::kF64}) {
    std::vector<unsigned char> out(in.size() * DTypeSize(dt));
    std::vector<unsigned char> expected(out.size());
    ConvertFromF32(dt, in.data(), out.data(), in.size());
    for (size_t i = 0; i < in.size(); ++i) StoreFromF32(dt, expected.data(), i, in[i]);
    ASSERT_EQ(out, expected) << DTypeName(dt);
  }
  std::vector<double> d = {1.0, 1e300, -1e-300, 3.14159265358979, 0.1};
  std::vector<float> f(d.size());
  ConvertToF32(DType::kF64, d.data(), f.data(), d.size());
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(f[i], static_cast<float>(d[i]));
}

TEST(ConvertTest, ConvertDTypeBetweenAllFloatTypes) {
  const DType kinds[] = {DType::kF64,  DType::kF32,    DType::kF16,
                         DType::kBF16, DType::kF8E4M3, DType::kF8E5M2};
  std::mt19937 rng(99);
  const size_t n = 5000;  // more than one internal chunk
  std::vector<float> values(n);
  for (auto& v : values) v = std::normal_distribution<float>(0.0f, 3.0f)(rng);
  for (DType src : kinds) {
    std::vector<unsigned char> src_buf(n * DTypeSize(src));
    ConvertFromF32(src, values.data(), src_buf.data(), n);
    for (DType dst : kinds) {
      std::vector<unsigned char> got(n * DTypeSize(dst));
      ConvertDType(src, src_buf.data(), dst, got.data(), n);
      std::vector<unsigned char> want(got.size());
      for (size_t i = 0; i < n; ++i) {
        StoreFromF32(dst, want.data(), i, LoadAsF32(src, src_buf.data(), i));
      }
      if (src == dst) want = src_buf;
      ASSERT_EQ(got, want) << DTypeName(src) << " -> " << DTypeName(dst);
    }
  }
}

TEST(ConvertTest, RoundTripF32MatchesStoreAndLoad) {
  const std::vector<uint32_t> bits = NarrowingPatterns();
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF8E4M3, DType::kF32}) {
    std::vector<float> v = AsFloats(bits);
    RoundTripF32(dt, v.data(), v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      unsigned char tmp[8];
      StoreFromF32(dt, tmp, 0, F32FromBits(bits[i]));
      ASSERT_EQ(F32Bits(v[i]), F32Bits(LoadAsF32(dt, tmp, 0))) << DTypeName(dt) << " " << i;
    }
  }
}

TEST(ConvertTest, DispatchesToBestTargetByDefault) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  // Lower bits are better targets; the list is in increasing bit order.
  EXPECT_STREQ(OpsTargetName(), hwy::TargetName(targets.front()));
}

}  // namespace
}  // namespace rvec
