// Transformer building blocks against scalar double-precision references, over sizes that
// exercise vector bodies and scalar tails.
#include "ops/nn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace rvec {
namespace {

std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

const size_t kSizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 64, 65, 127, 896};

TEST(Nn, Dot) {
  for (size_t n : kSizes) {
    const auto a = RandomVector(n, 1), b = RandomVector(n, 2);
    double ref = 0;
    for (size_t i = 0; i < n; ++i) ref += double(a[i]) * b[i];
    EXPECT_NEAR(Dot(a.data(), b.data(), n), ref, 1e-5 * std::sqrt(double(n)) + 1e-6) << n;
  }
}

TEST(Nn, RmsNorm) {
  for (size_t n : kSizes) {
    const auto x = RandomVector(n, 3), w = RandomVector(n, 4);
    std::vector<float> out(n);
    RmsNorm(x.data(), w.data(), n, 1e-6f, out.data());
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(out[i], x[i] * inv * w[i], 1e-5) << n << " " << i;
    // In place gives the same bits.
    std::vector<float> inplace = x;
    RmsNorm(inplace.data(), w.data(), n, 1e-6f, inplace.data());
    EXPECT_EQ(inplace, out);
  }
}

TEST(Nn, AddAndSiluMul) {
  for (size_t n : kSizes) {
    const auto g = RandomVector(n, 5, 3.0f), u = RandomVector(n, 6);
    std::vector<float> out(n);
    SiluMul(g.data(), u.data(), n, out.data());
    for (size_t i = 0; i < n; ++i) {
      const double ref = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
      ASSERT_NEAR(out[i], ref, 1e-5 * (1 + std::fabs(ref))) << n << " " << i;
    }
    std::vector<float> y = g;
    AddInPlace(y.data(), u.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], g[i] + u[i]);
  }
}

TEST(Nn, Softmax) {
  for (size_t n : kSizes) {
    auto x = RandomVector(n, 7, 5.0f);
    const auto orig = x;
    Softmax(x.data(), n);
    double mx = -1e30, sum = 0;
    for (float v : orig) mx = std::max(mx, double(v));
    for (float v : orig) sum += std::exp(v - mx);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(x[i], std::exp(orig[i] - mx) / sum, 1e-6) << n;
  }
}

TEST(Nn, RopeRotateHalf) {
  for (size_t d : {2, 8, 18, 32, 64, 128}) {
    auto x = RandomVector(d, 8);
    const auto orig = x;
    std::vector<float> c(d / 2), s(d / 2);
    for (size_t i = 0; i < d / 2; ++i) {
      c[i] = std::cos(0.3 * (i + 1));
      s[i] = std::sin(0.3 * (i + 1));
    }
    ApplyRope(x.data(), d, c.data(), s.data());
    for (size_t i = 0; i < d / 2; ++i) {
      EXPECT_NEAR(x[i], double(orig[i]) * c[i] - double(orig[i + d / 2]) * s[i], 1e-6);
      EXPECT_NEAR(x[i + d / 2], double(orig[i + d / 2]) * c[i] + double(orig[i]) * s[i], 1e-6);
    }
  }
}

TEST(Nn, AttentionHead) {
  for (size_t head_dim : {4, 16, 24, 64, 128}) {
    for (size_t n_ctx : {1, 2, 5, 33, 64, 65, 100}) {
      const size_t stride = head_dim * 3;  // keys of several heads interleaved
      const auto q = RandomVector(head_dim, 9);
      const auto k = RandomVector(n_ctx * stride, 10);
      const auto v = RandomVector(n_ctx * stride, 11);
      // The kernel's key layout: tiles of 16 positions, [tile][d][16]; lanes past n_ctx are
      // garbage the kernel must ignore.
      const size_t tiles = (n_ctx + 15) / 16;
      std::vector<float> k_tiles(tiles * 16 * head_dim, std::nanf(""));
      for (size_t j = 0; j < n_ctx; ++j) {
        for (size_t d = 0; d < head_dim; ++d) {
          k_tiles[(j / 16) * 16 * head_dim + d * 16 + j % 16] = k[j * stride + d];
        }
      }
      std::vector<float> scores(tiles * 16), out(head_dim);
      const float scale = 1.0f / std::sqrt(float(head_dim));
      AttentionHead(q.data(), k_tiles.data(), v.data(), stride, n_ctx, head_dim, scale,
                    scores.data(), out.data());
      std::vector<double> p(n_ctx);
      double mx = -1e30, sum = 0;
      for (size_t j = 0; j < n_ctx; ++j) {
        double s = 0;
        for (size_t d = 0; d < head_dim; ++d) s += double(q[d]) * k[j * stride + d];
        p[j] = s * scale;
        mx = std::max(mx, p[j]);
      }
      for (auto& e : p) sum += (e = std::exp(e - mx));
      for (size_t d = 0; d < head_dim; ++d) {
        double ref = 0;
        for (size_t j = 0; j < n_ctx; ++j) ref += p[j] / sum * v[j * stride + d];
        ASSERT_NEAR(out[d], ref, 1e-5) << head_dim << " " << n_ctx << " " << d;
      }
    }
  }
}

}  // namespace
}  // namespace rvec
