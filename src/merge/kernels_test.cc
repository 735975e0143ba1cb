// Unit tests of the merge inner loops, top-k selection, keyed randomness and alpha schedules
// against scalar references, and the exactness facts the docs state.
#include "merge/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "base/rng.h"
#include "merge/schedule.h"

namespace rvec::merge {
namespace {

std::vector<float> RandomFloats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

TEST(Kernels, DecodeEncodeMatchScalar) {
  const auto v = RandomFloats(10007, 1, 3.0f);
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    std::vector<uint8_t> bytes(v.size() * DTypeSize(dt)), ref(bytes.size());
    EncodeFromF32(dt, v.data(), v.size(), bytes.data());
    for (size_t i = 0; i < v.size(); ++i) StoreFromF32(dt, ref.data(), i, v[i]);
    EXPECT_EQ(bytes, ref) << DTypeName(dt);
    std::vector<float> back(v.size());
    DecodeToF32(dt, bytes.data(), v.size(), back.data());
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(F32Bits(back[i]), F32Bits(LoadAsF32(dt, bytes.data(), i))) << i;
    }
  }
}

TEST(Kernels, AccumulateAndAddDeltaMatchScalar) {
  const size_t n = 3 * kBlock + 17;
  const auto a = RandomFloats(n, 2), b = RandomFloats(n, 3), t = RandomFloats(n, 4);
  const float alpha = 0.3f;
  std::vector<float> acc(n, 0.0f), ref(n, 0.0f);
  AccumulateScaledDifference(alpha, a.data(), b.data(), n, acc.data());
  AccumulateScaled(-1.5f, t.data(), n, acc.data());
  for (size_t i = 0; i < n; ++i) {
    volatile float diff = a[i] - b[i];
    volatile float scaled = alpha * diff;
    volatile float s1 = ref[i] + scaled;
    volatile float scaled2 = -1.5f * t[i];
    ref[i] = s1 + scaled2;
  }
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(F32Bits(acc[i]), F32Bits(ref[i])) << i;

  // AddDelta keeps the target's exact bits where the delta is zero (-0.0 targets included).
  std::vector<float> tt = {-0.0f, 1.0f, -0.0f, 2.0f}, d = {0.0f, -0.0f, 1.0f, 0.5f}, o(4);
  AddDelta(tt.data(), d.data(), 4, o.data());
  EXPECT_EQ(F32Bits(o[0]), F32Bits(-0.0f));
  EXPECT_EQ(F32Bits(o[1]), F32Bits(1.0f));
  EXPECT_EQ(o[2], 1.0f);
  EXPECT_EQ(o[3], 2.5f);
}

TEST(Kernels, FusedBf16DifferenceMatchesGeneralPath) {
  const size_t n = 2 * kBlock + 5;
  std::vector<uint16_t> t(n), a(n), b(n), fused(n), general(n);
  const auto ft = RandomFloats(n, 7), fa = RandomFloats(n, 8, 0.01f), fb = RandomFloats(n, 9);
  for (size_t i = 0; i < n; ++i) {
    t[i] = F32ToBF16(ft[i]);
    b[i] = F32ToBF16(ft[i] + fb[i] * 0.001f);
    a[i] = F32ToBF16(BF16ToF32(b[i]) + fa[i]);
  }
  // Special values: equal inputs (zero delta), -0 target, infinities and NaN.
  a[0] = b[0];
  t[1] = 0x8000;
  a[1] = b[1];
  a[2] = 0x7F80;
  t[3] = 0x7FC1;
  for (float alpha : {1.0f, 0.3f, -1.0f, 0.0f}) {
    ApplyDifferenceBF16(t.data(), a.data(), b.data(), alpha, n, fused.data());
    std::vector<float> tf(n), af(n), bf(n), d(n, 0.0f), o(n);
    DecodeToF32(DType::kBF16, t.data(), n, tf.data());
    DecodeToF32(DType::kBF16, a.data(), n, af.data());
    DecodeToF32(DType::kBF16, b.data(), n, bf.data());
    AccumulateScaledDifference(alpha, af.data(), bf.data(), n, d.data());
    AddDelta(tf.data(), d.data(), n, o.data());
    EncodeFromF32(DType::kBF16, o.data(), n, general.data());
    EXPECT_EQ(fused, general) << "alpha " << alpha;
  }
}

// The reference top-k: sort indices by (magnitude key descending, index ascending).
std::vector<uint8_t> ReferenceTopK(const std::vector<float>& v, uint64_t k) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return MagnitudeKey(v[a]) > MagnitudeKey(v[b]); });
  std::vector<uint8_t> keep(v.size(), 0);
  for (size_t i = 0; i < k && i < idx.size(); ++i) keep[idx[i]] = 1;
  return keep;
}

TEST(Kernels, TopKSelectorMatchesSortWithTies) {
  // Quantised values make many ties at the threshold.
  auto v = RandomFloats(5000, 5);
  for (auto& x : v) x = std::round(x * 8) / 8;
  for (size_t chunk : {size_t{64}, size_t{1000}, size_t{5000}}) {
    const size_t chunks = (v.size() + chunk - 1) / chunk;
    auto keys_fn = [&](size_t c, std::vector<uint32_t>& keys) {
      const size_t b = c * chunk, e = std::min(v.size(), b + chunk);
      keys.resize(e - b);
      for (size_t i = b; i < e; ++i) keys[i - b] = MagnitudeKey(v[i]);
    };
    auto par = [](size_t n, const std::function<void(size_t)>& f) {
      for (size_t i = n; i-- > 0;) f(i);  // reverse order: results must not depend on it
    };
    for (uint64_t k : {uint64_t{0}, uint64_t{1}, uint64_t{777}, uint64_t{2500}, uint64_t{4999},
                       uint64_t{5000}, uint64_t{9000}}) {
      const TopKSelector sel = TopKSelector::Build(k, chunks, keys_fn, par);
      std::vector<uint8_t> keep(v.size());
      for (size_t c = 0; c < chunks; ++c) {
        std::vector<uint32_t> keys;
        keys_fn(c, keys);
        sel.Mark(c, keys.data(), keys.size(), keep.data() + c * chunk);
      }
      EXPECT_EQ(keep, ReferenceTopK(v, k)) << "k=" << k << " chunk=" << chunk;
    }
  }
}

// For bf16 inputs, target + (tuned − target) computed in f32 and rounded once gives back tuned
// whenever |target| < 2^16·|tuned| (checked exhaustively over all 2^32 pairs while writing
// docs/merge.md; here: every bf16 tuned value against a spread of targets).
TEST(Kernels, Bf16DifferenceRoundTripsExactly) {
  std::vector<float> targets;
  for (int e = -30; e <= 30; e += 3) {
    for (float m : {1.0f, 1.3f, -1.7f, -1.0f}) targets.push_back(std::ldexp(m, e));
  }
  uint64_t checked = 0;
  for (uint32_t g = 0; g < 65536; ++g) {
    const float tuned = BF16ToF32(static_cast<uint16_t>(g));
    if (!std::isfinite(tuned) || tuned == 0.0f) continue;
    for (float t0 : targets) {
      const float target = BF16ToF32(F32ToBF16(t0));
      if (std::fabs(target) >= 65536.0f * std::fabs(tuned)) continue;
      const float d = tuned - target;
      if (!std::isfinite(d)) continue;
      const float sum = target + d;
      ASSERT_EQ(F32ToBF16(sum), g) << target << " + (" << tuned << " - " << target << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000000u);
  // f16: the same holds when |target| < 2^13·|tuned|.
  for (uint32_t g = 0; g < 65536; ++g) {
    const float tuned = F16ToF32(static_cast<uint16_t>(g));
    if (!std::isfinite(tuned) || tuned == 0.0f) continue;
    for (float t0 : targets) {
      const float target = F16ToF32(F32ToF16(t0));
      if (!std::isfinite(target) || std::fabs(target) >= 8192.0f * std::fabs(tuned)) continue;
      const float d = tuned - target;
      if (!std::isfinite(d)) continue;
      ASSERT_EQ(F32ToF16(target + d), g) << target << " " << tuned;
    }
  }
  // f32 inputs are not exact in general: 1 + (1e-8 − 1) is 0 in f32, not 1e-8.
  const float a = 1.0f, b = 1e-8f;
  EXPECT_NE(a + (b - a), b);
}

TEST(Rng, CounterRngIsKeyedAndUniform) {
  const CounterRng a(1, "w"), b(1, "w"), c(2, "w"), d(1, "x");
  EXPECT_EQ(a.Bits(5), b.Bits(5));
  EXPECT_NE(a.Bits(5), c.Bits(5));
  EXPECT_NE(a.Bits(5), d.Bits(5));
  double sum = 0;
  for (int i = 0; i < 100000; ++i) sum += a.Uniform(i);
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
  double s1 = 0, s2 = 0;
  for (int i = 0; i < 50000; ++i) {
    double z0, z1;
    a.Normal2(i, &z0, &z1);
    s1 += z0 + z1;
    s2 += z0 * z0 + z1 * z1;
  }
  EXPECT_NEAR(s1 / 100000, 0.0, 0.02);
  EXPECT_NEAR(s2 / 100000, 1.0, 0.02);
}

TEST(Rng, KeyedPermutationIsABijection) {
  for (uint64_t n : {uint64_t{1}, uint64_t{2}, uint64_t{7}, uint64_t{1000}, uint64_t{4097}}) {
    const KeyedPermutation p(n, 12345);
    std::set<uint64_t> seen;
    size_t fixed = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t j = p(i);
      ASSERT_LT(j, n);
      seen.insert(j);
      fixed += j == i;
    }
    EXPECT_EQ(seen.size(), n);
    if (n >= 1000) {
      EXPECT_LT(fixed, n / 50);  // actually shuffles
    }
  }
}

TEST(Schedule, LayerIndexAndGroups) {
  EXPECT_EQ(LayerIndex("model.layers.12.mlp.up_proj.weight"), 12);
  EXPECT_EQ(LayerIndex("model.layers.0.self_attn.q_proj.bias"), 0);
  EXPECT_EQ(LayerIndex("transformer.h.3.attn.c_attn.weight"), 3);
  EXPECT_FALSE(LayerIndex("model.embed_tokens.weight").has_value());
  EXPECT_FALSE(LayerIndex("model.norm.weight").has_value());
  EXPECT_FALSE(LayerIndex("lm_head.weight").has_value());
  EXPECT_EQ(GroupOf("model.layers.1.self_attn.k_proj.weight"), ModuleGroup::kAttention);
  EXPECT_EQ(GroupOf("model.layers.1.mlp.down_proj.weight"), ModuleGroup::kMlp);
  EXPECT_EQ(GroupOf("model.layers.1.input_layernorm.weight"), ModuleGroup::kNorm);
  EXPECT_EQ(GroupOf("model.embed_tokens.weight"), ModuleGroup::kEmbedding);
  EXPECT_EQ(GroupOf("lm_head.weight"), ModuleGroup::kEmbedding);
}

TEST(Schedule, GradientInterpolationLikeMergekit) {
  const std::vector<double> v = {0, 0.5, 1};
  EXPECT_DOUBLE_EQ(InterpolateGradient(v, 0), 0);
  EXPECT_DOUBLE_EQ(InterpolateGradient(v, 0.25), 0.25);
  EXPECT_DOUBLE_EQ(InterpolateGradient(v, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(InterpolateGradient(v, 0.75), 0.75);
  EXPECT_DOUBLE_EQ(InterpolateGradient(v, 1), 1);
  EXPECT_DOUBLE_EQ(InterpolateGradient({0.2, 1.0}, 0.5), 0.6);
  EXPECT_DOUBLE_EQ(InterpolateGradient({3.0}, 0.7), 3.0);
  // 5 layers: t = layer / 4.
  EXPECT_DOUBLE_EQ(GradientPosition("model.layers.2.mlp.up_proj.weight", 5), 0.5);
  EXPECT_DOUBLE_EQ(GradientPosition("model.embed_tokens.weight", 5), 0.0);
  EXPECT_DOUBLE_EQ(GradientPosition("model.layers.0.mlp.up_proj.weight", 1), 1.0);
}

TEST(Schedule, AlphaScheduleOverridesThenLayersThenGlobal) {
  AlphaSchedule s(0.7);
  EXPECT_DOUBLE_EQ(s.For("model.layers.1.mlp.up_proj.weight"), 0.7);
  ASSERT_TRUE(s.AddOverride("mlp\\.up=0.25").ok());
  ASSERT_TRUE(s.SetLayerGradient("0,1").ok());
  s.set_num_layers(3);
  EXPECT_DOUBLE_EQ(s.For("model.layers.1.mlp.up_proj.weight"), 0.25);
  EXPECT_DOUBLE_EQ(s.For("model.layers.1.mlp.down_proj.weight"), 0.5);
  EXPECT_DOUBLE_EQ(s.For("model.layers.2.self_attn.q_proj.weight"), 1.0);
  EXPECT_DOUBLE_EQ(s.For("model.embed_tokens.weight"), 0.0);
  EXPECT_FALSE(s.AddOverride("mlp").ok());
  EXPECT_FALSE(s.AddOverride("(=1").ok());
  EXPECT_FALSE(s.AddOverride("x=abc").ok());
  EXPECT_FALSE(s.SetLayerGradient("0,,1").ok());
}

}  // namespace
}  // namespace rvec::merge
