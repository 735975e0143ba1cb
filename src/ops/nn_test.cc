// Transformer building blocks against scalar double-precision references, over sizes that
// exercise vector bodies and scalar tails.
#include "ops/nn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/dtype.h"
#include "ops/ops_test_util.h"

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

// Keys of `n` positions ([n][stride] rows) in the kernel's tile layout, as f32 and as bf16; lanes
// past n hold `pad`.
struct TiledKeys {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
};
TiledKeys TileKeys(const std::vector<float>& k, size_t n, size_t stride, size_t head_dim,
                   float pad) {
  const size_t tiles = (n + 15) / 16;
  TiledKeys t{std::vector<float>(tiles * 16 * head_dim, pad),
              std::vector<uint16_t>(tiles * 16 * head_dim, F32ToBF16(pad))};
  for (size_t j = 0; j < n; ++j) {
    for (size_t d = 0; d < head_dim; ++d) {
      const size_t at = (j / 16) * 16 * head_dim + d * 16 + j % 16;
      t.bf16[at] = F32ToBF16(k[j * stride + d]);
      t.f32[at] = k[j * stride + d];
    }
  }
  return t;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The scalar reference for the bf16 cache is the f32 kernel on the exactly widened cache: bf16
// keys and values must give the same bits, on every compiled target.
TEST(Nn, AttentionBf16CacheEqualsF32KernelOnWidenedCache) {
  testing::ForEachOpsTarget([] {
    for (size_t head_dim : {4, 24, 64, 128}) {
      for (size_t n_ctx : {1, 5, 33, 64, 100, 300}) {
        const size_t stride = head_dim * 2;
        const auto q = RandomVector(head_dim, 21);
        const auto k = RandomVector(n_ctx * stride, 22);
        const auto v = RandomVector(n_ctx * stride, 23);
        std::vector<uint16_t> v16(v.size());
        std::vector<float> v_wide(v.size());
        for (size_t i = 0; i < v.size(); ++i) v_wide[i] = BF16ToF32(v16[i] = F32ToBF16(v[i]));
        const TiledKeys keys = TileKeys(k, n_ctx, stride, head_dim, 0.0f);
        std::vector<float> k_wide(keys.bf16.size());
        for (size_t i = 0; i < k_wide.size(); ++i) k_wide[i] = BF16ToF32(keys.bf16[i]);
        const float scale = 1.0f / std::sqrt(float(head_dim));
        std::vector<float> scores((n_ctx + 15) / 16 * 16), ref(head_dim), got(head_dim);
        AttentionHead(q.data(), k_wide.data(), v_wide.data(), stride, n_ctx, head_dim, scale,
                      scores.data(), ref.data());
        const KvSegment seg{keys.bf16.data(), v16.data(), n_ctx};
        AttentionHeadSegments(q.data(), &seg, 1, true, stride, head_dim, scale, scores.data(),
                              got.data());
        ASSERT_TRUE(SameBits(got, ref)) << head_dim << " " << n_ctx;
        // And bf16 rounding of the cache stays close to the f32 result.
        std::vector<float> exact(head_dim);
        AttentionHead(q.data(), keys.f32.data(), v.data(), stride, n_ctx, head_dim, scale,
                      scores.data(), exact.data());
        for (size_t d = 0; d < head_dim; ++d) ASSERT_NEAR(got[d], exact[d], 0.05) << d;
      }
    }
  });
}

// A shared prefix of whole tiles followed by a private tail gives the same bits as one run.
TEST(Nn, AttentionSegmentsEqualOneContiguousRun) {
  testing::ForEachOpsTarget([] {
    for (bool bf16 : {false, true}) {
      for (size_t head_dim : {8, 64}) {
        for (size_t n_ctx : {17, 40, 129}) {
          for (size_t split : {16, 32}) {
            if (split >= n_ctx) continue;
            const auto q = RandomVector(head_dim, 31);
            const auto k = RandomVector(n_ctx * head_dim, 32);
            const auto v = RandomVector(n_ctx * head_dim, 33);
            std::vector<uint16_t> v16(v.size());
            for (size_t i = 0; i < v.size(); ++i) v16[i] = F32ToBF16(v[i]);
            const TiledKeys whole = TileKeys(k, n_ctx, head_dim, head_dim, 0.0f);
            const std::vector<float> k_tail(k.begin() + split * head_dim, k.end());
            const TiledKeys tail = TileKeys(k_tail, n_ctx - split, head_dim, head_dim, 0.0f);
            auto key_ptr = [&](const TiledKeys& t) -> const void* {
              return bf16 ? static_cast<const void*>(t.bf16.data()) : t.f32.data();
            };
            const void* vals = bf16 ? static_cast<const void*>(v16.data()) : v.data();
            const size_t elem = bf16 ? 2 : 4;
            const KvSegment one{key_ptr(whole), vals, n_ctx};
            const KvSegment two[2] = {
                {key_ptr(whole), vals, split},
                {key_ptr(tail), static_cast<const char*>(vals) + split * head_dim * elem,
                 n_ctx - split}};
            const float scale = 0.125f;
            std::vector<float> scores((n_ctx + 15) / 16 * 16 + 16), a(head_dim), b(head_dim);
            AttentionHeadSegments(q.data(), &one, 1, bf16, head_dim, head_dim, scale, scores.data(),
                                  a.data());
            AttentionHeadSegments(q.data(), two, 2, bf16, head_dim, head_dim, scale, scores.data(),
                                  b.data());
            ASSERT_TRUE(SameBits(a, b)) << bf16 << " " << head_dim << " " << n_ctx << " " << split;
          }
        }
      }
    }
  });
}

// Query heads sharing a kv head, computed together: each head's output equals the single-head
// kernel's bit for bit, for both cache dtypes, split segments and group sizes past the block of 8.
TEST(Nn, AttentionGroupEqualsOneHeadAtATime) {
  testing::ForEachOpsTarget([] {
    for (bool bf16 : {false, true}) {
      for (size_t heads : {1, 2, 7, 11}) {
        for (size_t head_dim : {8, 20, 64}) {
          for (size_t n_ctx : {3, 40, 161}) {
            const size_t split = n_ctx > 32 ? 32 : 0;
            const auto q = RandomVector(heads * head_dim, 51);
            const auto k = RandomVector(n_ctx * head_dim, 52);
            const auto v = RandomVector(n_ctx * head_dim, 53);
            std::vector<uint16_t> v16(v.size());
            for (size_t i = 0; i < v.size(); ++i) v16[i] = F32ToBF16(v[i]);
            const TiledKeys head = TileKeys(k, split, head_dim, head_dim, 0.0f);
            const std::vector<float> k_tail(k.begin() + split * head_dim, k.end());
            const TiledKeys tail = TileKeys(k_tail, n_ctx - split, head_dim, head_dim, 0.0f);
            auto key_ptr = [&](const TiledKeys& t) -> const void* {
              return bf16 ? static_cast<const void*>(t.bf16.data()) : t.f32.data();
            };
            const void* vals = bf16 ? static_cast<const void*>(v16.data()) : v.data();
            std::vector<KvSegment> segs;
            if (split > 0) segs.push_back({key_ptr(head), vals, split});
            segs.push_back({key_ptr(tail),
                            static_cast<const char*>(vals) + split * head_dim * (bf16 ? 2 : 4),
                            n_ctx - split});
            const size_t stride = (n_ctx + 15) / 16 * 16;
            std::vector<float> scores(heads * stride), got(heads * head_dim),
                want(heads * head_dim);
            AttentionGroupSegments(q.data(), heads, segs.data(), segs.size(), bf16, head_dim,
                                   head_dim, 0.3f, scores.data(), stride, got.data());
            for (size_t h = 0; h < heads; ++h) {
              AttentionHeadSegments(q.data() + h * head_dim, segs.data(), segs.size(), bf16,
                                    head_dim, head_dim, 0.3f, scores.data(),
                                    want.data() + h * head_dim);
            }
            ASSERT_TRUE(SameBits(got, want))
                << bf16 << " heads " << heads << " head_dim " << head_dim << " n_ctx " << n_ctx;
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace rvec
