// Unit tests for base: Status, scalar dtype conversions, threads, SHA-256, pending outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/dtype.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/threading.h"

namespace rvec {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("{} is odd", x);
  return x / 2;
}

Status UseHalf(int x, int* out) {
  ASSIGN_OR_RETURN(*out, Half(x));
  return OkStatus();
}

TEST(Status, PropagatesErrors) {
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  const Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.WithContext("file.bin").message(), "file.bin: 3 is odd");
}

TEST(DType, NamesRoundTrip) {
  for (const char* n : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
                        "F8_E4M3", "F8_E5M2"}) {
    auto d = ParseDType(n);
    ASSERT_TRUE(d.has_value()) << n;
    EXPECT_EQ(DTypeName(*d), n);
  }
  EXPECT_FALSE(ParseDType("F128").has_value());
  EXPECT_EQ(ParseUserDType("bfloat16"), DType::kBF16);
}

// Every bf16 and f16 bit pattern widens exactly and narrows back to itself.
TEST(DType, Bf16AndF16RoundTripAllPatterns) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    const float fb = BF16ToF32(h);
    if (std::isnan(fb)) {
      EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(fb))));
    } else {
      EXPECT_EQ(F32ToBF16(fb), h);
    }
    const float fh = F16ToF32(h);
    if (std::isnan(fh)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(fh))));
    } else {
      EXPECT_EQ(F32ToF16(fh), h) << b;
    }
  }
}

// Narrowing rounds to nearest even: compare with a double-precision reference on midpoints.
TEST(DType, F16RoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x7C00; ++b) {
    const double lo = F16ToF32(static_cast<uint16_t>(b));
    const double hi = F16ToF32(static_cast<uint16_t>(b + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    if (static_cast<double>(mid) != (lo + hi) / 2) continue;  // midpoint not representable
    const uint16_t expect = (b & 1) ? static_cast<uint16_t>(b + 1) : static_cast<uint16_t>(b);
    EXPECT_EQ(F32ToF16(mid), expect) << b;
  }
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // rounds up to infinity
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(1e-8f), 0x0000);
  EXPECT_EQ(F32ToBF16(1.0f + 1.0f / 256), 0x3F80);  // tie to even
}

TEST(DType, F8AllPatterns) {
  for (uint32_t b = 0; b < 256; ++b) {
    const float e4 = F8E4M3ToF32(static_cast<uint8_t>(b));
    if (std::isnan(e4)) {
      EXPECT_TRUE((b & 0x7F) == 0x7F);
    } else {
      EXPECT_EQ(F32ToF8E4M3(e4), b);
    }
    const float e5 = F8E5M2ToF32(static_cast<uint8_t>(b));
    if (!std::isnan(e5)) {
      EXPECT_EQ(F32ToF8E5M2(e5), b);
    }
  }
  EXPECT_EQ(F8E4M3ToF32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(F8E4M3ToF32(F32ToF8E4M3(1000.0f))));
  EXPECT_TRUE(std::isinf(F8E5M2ToF32(F32ToF8E5M2(1e6f))));
}

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (size_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<int> hits(1000, 0);
    for (int rep = 0; rep < 5; ++rep) {
      pool.ParallelFor(hits.size(), [&](size_t t, size_t w) {
        EXPECT_LT(w, pool.NumWorkers());
        hits[t]++;
      });
    }
    for (int h : hits) EXPECT_EQ(h, 5);
  }
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string million(1000000, 'a');
  EXPECT_EQ(Sha256Hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(PendingOutput, AppearsOnlyOnCommit) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rvec_pending_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path out = dir / "out";
  {
    auto p = PendingOutput::Create(out, false, true);
    ASSERT_TRUE(p.ok());
    std::ofstream(p->temp_path() / "x") << "partial";
  }  // dropped without commit
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0);
  {
    auto p = PendingOutput::Create(out, false, true);
    ASSERT_TRUE(p.ok());
    std::ofstream(p->temp_path() / "x") << "done";
    ASSERT_TRUE(p->Commit().ok());
  }
  EXPECT_TRUE(fs::exists(out / "x"));
  EXPECT_EQ(PendingOutput::Create(out, false, true).status().code(), StatusCode::kAlreadyExists);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rvec
