// MatMul kernels against the scalar f64 reference, for every weight dtype, odd shapes, both
// precisions; bit-identical results across batch sizes and thread counts.
#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "base/threading.h"
#include "ops/matmul_bf16.h"

namespace rvec {
namespace {

struct Matrix {
  DType dtype;
  size_t rows, cols;
  std::vector<uint8_t> bytes;
  WeightMatrix view() const { return {dtype, bytes.data(), rows, cols}; }
};

Matrix RandomMatrix(DType dtype, size_t rows, size_t cols, uint32_t seed) {
  Matrix m{dtype, rows, cols, std::vector<uint8_t>(rows * cols * DTypeSize(dtype))};
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  for (size_t i = 0; i < rows * cols; ++i) StoreFromF32(dtype, m.bytes.data(), i, dist(rng));
  return m;
}

std::vector<float> RandomVector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

class MatMulShapes : public ::testing::TestWithParam<DType> {};

TEST_P(MatMulShapes, MatchesReference) {
  const DType dtype = GetParam();
  ThreadPool pool(2);
  const size_t shapes[][3] = {{1, 1, 1},   {1, 7, 5},    {3, 13, 17},  {4, 16, 64},
                              {5, 33, 96}, {9, 21, 130}, {17, 40, 31}, {70, 12, 48}};
  uint32_t seed = 1;
  for (const auto& s : shapes) {
    const size_t n = s[0], rows = s[1], cols = s[2];
    const Matrix w = RandomMatrix(dtype, rows, cols, seed++);
    const std::vector<float> bias = RandomVector(rows, seed++);
    // x has a stride larger than cols, out a stride larger than rows.
    const size_t xs = cols + 3, os = rows + 2;
    const std::vector<float> x = RandomVector(n * xs, seed++);
    for (const bool with_bias : {false, true}) {
      for (const MatMulPrecision p : {MatMulPrecision::kExact, MatMulPrecision::kBF16Activations}) {
        std::vector<float> out(n * os, -7.0f);
        MatMul(x.data(), n, xs, w.view(), with_bias ? bias.data() : nullptr, out.data(), os, &pool,
               p);
        std::vector<double> ref(n * os);
        MatMulReference(x.data(), n, xs, w.view(), with_bias ? bias.data() : nullptr, ref.data(),
                        os);
        const bool rounded =
            p == MatMulPrecision::kBF16Activations && dtype == DType::kBF16 && HasBF16DotProduct();
        for (size_t t = 0; t < n; ++t) {
          for (size_t r = 0; r < rows; ++r) {
            // |x| ~ 1, |w| ~ 0.5: f32 accumulation error stays far below 1e-4 * sqrt(cols);
            // bf16 rounding of x adds relative 2^-9 per product.
            const double tol =
                rounded ? 0.02 * std::sqrt(double(cols)) : 2e-5 * std::sqrt(double(cols));
            ASSERT_NEAR(out[t * os + r], ref[t * os + r], tol)
                << DTypeName(dtype) << " n=" << n << " rows=" << rows << " cols=" << cols
                << " t=" << t << " r=" << r;
          }
          for (size_t r = rows; r < os; ++r) ASSERT_EQ(out[t * os + r], -7.0f) << "wrote padding";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatMulShapes,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

// Every output element must be the same bits whatever the batch it is computed in and however
// many threads run: decoding a sequence inside a batch equals decoding it alone.
TEST(MatMul, BatchAndThreadInvariant) {
  for (const DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (const MatMulPrecision p : {MatMulPrecision::kExact, MatMulPrecision::kBF16Activations}) {
      const size_t rows = 67, cols = 200, n = 23;
      const Matrix w = RandomMatrix(dtype, rows, cols, 42);
      const std::vector<float> x = RandomVector(n * cols, 43);
      const std::vector<float> bias = RandomVector(rows, 44);
      ThreadPool one(1), two(2), three(3);
      std::vector<float> all1(n * rows), all2(n * rows), all3(n * rows);
      MatMul(x.data(), n, cols, w.view(), bias.data(), all1.data(), rows, &one, p);
      MatMul(x.data(), n, cols, w.view(), bias.data(), all2.data(), rows, &two, p);
      MatMul(x.data(), n, cols, w.view(), bias.data(), all3.data(), rows, &three, p);
      EXPECT_EQ(all1, all2);
      EXPECT_EQ(all1, all3);
      for (size_t t = 0; t < n; ++t) {
        std::vector<float> single(rows);
        MatMul(x.data() + t * cols, 1, cols, w.view(), bias.data(), single.data(), rows, &two, p);
        for (size_t r = 0; r < rows; ++r) {
          ASSERT_EQ(single[r], all1[t * rows + r]) << "t=" << t << " r=" << r;
        }
      }
    }
  }
}

// The AVX512_BF16 kernels (register transposes for up to 4 tokens, packed panels above) against
// a scalar model of the same arithmetic: every output bit for bit, for shapes with partial
// 16-row vectors, 48-row panels, 8-token tiles and odd column counts.
TEST(MatMul, BF16DotMatchesScalarModelBitForBit) {
  if (!HasBF16DotProduct()) GTEST_SKIP() << "this CPU has no AVX512_BF16; kernel not used";
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (const size_t rows : {1, 15, 16, 17, 47, 48, 49, 100, 145}) {
    for (const size_t cols : {1, 2, 31, 32, 33, 64, 95, 130}) {
      const Matrix w = RandomMatrix(DType::kBF16, rows, cols, seed++);
      const std::vector<float> bias = RandomVector(rows, seed++);
      for (const size_t n : {1, 2, 3, 4, 5, 8, 9, 12, 16, 17}) {
        const std::vector<float> x = RandomVector(n * cols, seed++);
        std::vector<float> out(n * rows);
        MatMul(x.data(), n, cols, w.view(), bias.data(), out.data(), rows, &pool,
               MatMulPrecision::kBF16Activations);
        const auto* wb = reinterpret_cast<const uint16_t*>(w.bytes.data());
        std::vector<uint16_t> xb(cols);
        for (size_t t = 0; t < n; ++t) {
          for (size_t k = 0; k < cols; ++k) xb[k] = F32ToBF16(x[t * cols + k]);
          for (size_t r = 0; r < rows; ++r) {
            const float want = DotBF16Reference(xb.data(), wb + r * cols, cols) + bias[r];
            ASSERT_EQ(out[t * rows + r], want)
                << "rows=" << rows << " cols=" << cols << " n=" << n << " t=" << t << " r=" << r;
          }
        }
      }
    }
  }
}

TEST(MatMul, MultiEqualsSeparate) {
  const Matrix a = RandomMatrix(DType::kBF16, 40, 64, 1);
  const Matrix b = RandomMatrix(DType::kBF16, 24, 64, 2);
  const std::vector<float> x = RandomVector(5 * 64, 3);
  const std::vector<float> bias = RandomVector(40, 4);
  ThreadPool pool(2);
  std::vector<float> oa(5 * 40), ob(5 * 24), ra(5 * 40), rb(5 * 24);
  const MatMulJob jobs[] = {{a.view(), bias.data(), oa.data(), 40},
                            {b.view(), nullptr, ob.data(), 24}};
  MatMulMulti(x.data(), 5, 64, jobs, 2, &pool);
  MatMul(x.data(), 5, 64, a.view(), bias.data(), ra.data(), 40, &pool);
  MatMul(x.data(), 5, 64, b.view(), nullptr, rb.data(), 24, nullptr);
  EXPECT_EQ(oa, ra);
  EXPECT_EQ(ob, rb);
}

TEST(MatMul, TargetNameIsReported) { EXPECT_FALSE(MatMulTargetName().empty()); }

}  // namespace
}  // namespace rvec
