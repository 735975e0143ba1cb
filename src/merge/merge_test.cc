// Every merge method against a whole-tensor scalar reference (sorting for top-k, the same keyed
// randomness for DARE) on tiny models in bf16/f16/f32, the paper's config end to end, and DARE
// determinism across thread counts.
#include "merge/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/fs.h"
#include "base/rng.h"
#include "merge/merge_config.h"
#include "merge/merge_test_util.h"
#include "merge/schedule.h"
#include "merge/vector.h"

namespace rvec::merge {
namespace {

using testing::Family;
using testing::ReadBytes;
using testing::ReadF32Scalar;
using testing::ScratchDir;
using testing::TensorNames;

std::vector<uint8_t> TopK(const std::vector<float>& v, uint64_t k) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return (F32Bits(v[a]) & 0x7FFFFFFFu) > (F32Bits(v[b]) & 0x7FFFFFFFu);
  });
  std::vector<uint8_t> keep(v.size(), 0);
  for (size_t i = 0; i < k && i < v.size(); ++i) keep[idx[i]] = 1;
  return keep;
}

struct RefModel {
  std::filesystem::path path;
  std::vector<double> weight;  // gradient values
  double density;
};

// The documented rvec semantics, written plainly over whole tensors.
std::vector<float> ReferenceGta(MergeMethod method, const std::string& name,
                                const std::vector<float>& base,
                                const std::vector<std::vector<float>>& models,
                                const std::vector<RefModel>& params, double t, double lambda,
                                uint64_t seed, double gamma) {
  const MethodDefaults d = DefaultsFor(method);
  const size_t n = base.size();
  std::vector<std::vector<float>> wd(models.size(), std::vector<float>(n));
  std::vector<float> weights;
  for (size_t m = 0; m < models.size(); ++m) {
    const float w = static_cast<float>(InterpolateGradient(params[m].weight, t));
    weights.push_back(w);
    const double density = params[m].density;
    std::vector<float> delta(n);
    for (size_t e = 0; e < n; ++e) delta[e] = models[m][e] - base[e];
    std::vector<uint8_t> keep(n, 1);
    float scale = 1.0f;
    bool divide = false;
    if (d.sparsify != MethodDefaults::Sparsify::kNone && density < 1.0) {
      const uint64_t target = static_cast<uint64_t>(std::floor(density * n));
      if (d.sparsify == MethodDefaults::Sparsify::kMagnitude) {
        keep = TopK(delta, target);
      } else if (d.sparsify == MethodDefaults::Sparsify::kOutliers) {
        int64_t n_top = static_cast<int64_t>(std::floor(gamma * n));
        int64_t n_bot = static_cast<int64_t>(n) - static_cast<int64_t>(target) - n_top;
        if (n_bot < 0) {
          n_top += n_bot;
          n_bot = 0;
        }
        const auto hi = TopK(delta, n - n_bot);
        const auto lo = TopK(delta, n_top);
        for (size_t e = 0; e < n; ++e) keep[e] = hi[e] && !lo[e];
      } else {
        const CounterRng rng(seed, name, m);
        for (size_t e = 0; e < n; ++e) keep[e] = rng.Uniform(e) < density;
        divide = d.rescale;
      }
    }
    for (size_t e = 0; e < n; ++e) {
      float v = delta[e];
      if (divide) v = v / static_cast<float>(density);
      v = v * scale;
      wd[m][e] = w * (keep[e] ? v : 0.0f);
    }
  }
  float wsum = 0;
  for (float w : weights) wsum += w;
  std::vector<float> out(n);
  for (size_t e = 0; e < n; ++e) {
    float mixed = 0, div = 0;
    if (d.consensus) {
      float s = 0;
      for (auto& x : wd) s = s + x[e];
      const float sign = s >= 0 ? 1.0f : -1.0f;
      for (size_t m = 0; m < wd.size(); ++m) {
        const float v = wd[m][e];
        if ((v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f)) == sign) {
          mixed = mixed + v;
          div = div + weights[m];
        }
      }
      if (div == 0) div = 1;
    } else {
      for (auto& x : wd) mixed = mixed + x[e];
      div = std::fabs(wsum) < 1e-8f ? 1.0f : wsum;
    }
    if (d.normalize) mixed = mixed / div;
    if (static_cast<float>(lambda) != 1.0f) mixed = mixed * static_cast<float>(lambda);
    out[e] = mixed == 0.0f ? base[e] : base[e] + mixed;
  }
  return out;
}

struct MethodCase {
  MergeMethod method;
  DType dtype;
};

class MergeMethodTest : public ::testing::TestWithParam<MethodCase> {};

TEST_P(MergeMethodTest, MatchesScalarReference) {
  const auto [method, dtype] = GetParam();
  const auto dir = ScratchDir(MergeMethodName(method));
  const Family f = testing::MakeFamily(dir, "tiny-llama", dtype);
  const std::string yaml = fmt::format(R"(
merge_method: {}
base_model: {}
models:
  - model: {}
    parameters:
      weight: [0.4, 1.0]
      density: 0.5
  - model: {}
    parameters:
      weight: 0.7
      density: 0.8
  - model: {}
parameters:
  lambda: 1.25
  gamma: 0.05
)",
                                       MergeMethodName(method), f.base.string(), f.sft.string(),
                                       f.instruct.string(), f.base.string());
  auto config = ParseMergeConfig(yaml, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  MergeOptions o;
  o.out = dir / "out";
  o.seed = 99;
  o.threads = 2;
  auto r = RunMerge(*config, o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::vector<RefModel> params = {{f.sft, {0.4, 1.0}, 0.5}, {f.instruct, {0.7}, 0.8}};
  for (const auto& name : TensorNames(f.base)) {
    const auto base = ReadF32Scalar(f.base, name);
    const std::vector<std::vector<float>> models = {ReadF32Scalar(f.sft, name),
                                                    ReadF32Scalar(f.instruct, name)};
    const double t = GradientPosition(name, 2);
    const auto ref = ReferenceGta(method, name, base, models, params, t, 1.25, 99, 0.05);
    DType odt;
    const auto out = ReadF32Scalar(o.out, name, &odt);
    ASSERT_EQ(odt, dtype);
    size_t changed = 0;
    for (size_t e = 0; e < out.size(); ++e) {
      std::vector<uint8_t> b(4);
      StoreFromF32(dtype, b.data(), 0, ref[e]);
      ASSERT_EQ(F32Bits(out[e]), F32Bits(LoadAsF32(dtype, b.data(), 0)))
          << name << "[" << e << "] ref " << ref[e];
      changed += out[e] != base[e];
    }
    EXPECT_GT(changed, 0u) << name;
  }
}

std::vector<MethodCase> AllCases() {
  std::vector<MethodCase> cases;
  for (MergeMethod m :
       {MergeMethod::kTaskArithmetic, MergeMethod::kTies, MergeMethod::kDareLinear,
        MergeMethod::kDareTies, MergeMethod::kBreadcrumbs, MergeMethod::kBreadcrumbsTies}) {
    for (DType d : {DType::kBF16, DType::kF16, DType::kF32}) cases.push_back({m, d});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Methods, MergeMethodTest, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) {
                           return std::string(MergeMethodName(info.param.method)) + "_" +
                                  std::string(DTypeName(info.param.dtype));
                         });

TEST(MergeLinear, PaperConfigRunsUnchangedAndMatchesReference) {
  const auto dir = ScratchDir("paper");
  const Family f = testing::MakeFamily(dir, "tiny-qwen2", DType::kBF16);
  // The authors' file, with only the paths changed.
  const std::string yaml = fmt::format(R"(models:
  - model: {}
    parameters:
      weight: 1.0
  - model: {}
    parameters:
      weight: 1.0
  - model: {}
    parameters:
      weight: -1.0
merge_method: linear
parameters:
  normalize: false
dtype: bfloat16
)",
                                       f.instruct.string(), f.grpo.string(), f.sft.string());
  auto config = ParseMergeConfig(yaml, "paper.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  MergeOptions o;
  o.out = dir / "out";
  auto r = RunMerge(*config, o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->donor, f.instruct);  // side files from the first model, never SFT/GRPO
  EXPECT_EQ(*ReadFileToString(o.out / "config.json"),
            *ReadFileToString(f.instruct / "config.json"));
  // Also the same as apply --model INSTRUCT --base SFT --tuned GRPO on most elements.
  ApplyOptions a;
  a.model = f.instruct;
  a.base = f.sft;
  a.tuned = f.grpo;
  a.out = dir / "applied";
  ASSERT_TRUE(Apply(a, nullptr).ok());
  size_t total = 0, same_as_apply = 0;
  for (const auto& name : TensorNames(f.instruct)) {
    const auto i = ReadF32Scalar(f.instruct, name);
    const auto g = ReadF32Scalar(f.grpo, name);
    const auto s = ReadF32Scalar(f.sft, name);
    const auto out = ReadF32Scalar(o.out, name);
    const auto applied = ReadF32Scalar(a.out, name);
    for (size_t e = 0; e < out.size(); ++e) {
      const float ref = (1.0f * i[e] + 1.0f * g[e]) + -1.0f * s[e];
      ASSERT_EQ(out[e], BF16ToF32(F32ToBF16(ref))) << name << "[" << e << "]";
      same_as_apply += out[e] == applied[e];
      ++total;
    }
  }
  EXPECT_GT(same_as_apply, total * 99 / 100);
}

TEST(MergeLinear, NormalizeWithZeroWeightSumIsAnError) {
  const auto dir = ScratchDir("zerosum");
  const Family f = testing::MakeFamily(dir, "tiny-qwen2", DType::kBF16);
  const std::string yaml = fmt::format(
      "models:\n  - model: {}\n    parameters: {{weight: 1.0}}\n  - model: {}\n    parameters: "
      "{{weight: -1.0}}\nmerge_method: linear\n",
      f.grpo.string(), f.sft.string());
  auto config = ParseMergeConfig(yaml, "z.yaml");
  ASSERT_TRUE(config.ok());
  MergeOptions o;
  o.out = dir / "out";
  auto r = RunMerge(*config, o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("normalize: false"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(o.out));
}

TEST(MergeDare, BitIdenticalForOneAndTwoThreadsAndSeedMatters) {
  const auto dir = ScratchDir("dare");
  const Family f = testing::MakeFamily(dir, "tiny-llama", DType::kBF16);
  const std::string yaml = fmt::format(
      "merge_method: dare_ties\nbase_model: {}\nmodels:\n  - model: {}\n    parameters: "
      "{{weight: 1.0, density: 0.3}}\n  - model: {}\n    parameters: {{weight: 0.5, density: "
      "0.6}}\n",
      f.base.string(), f.sft.string(), f.instruct.string());
  auto config = ParseMergeConfig(yaml, "d.yaml");
  ASSERT_TRUE(config.ok());
  std::vector<std::filesystem::path> outs;
  for (auto [threads, seed] :
       {std::pair{size_t{1}, 5}, std::pair{size_t{2}, 5}, std::pair{size_t{2}, 6}}) {
    MergeOptions o;
    o.out = dir / fmt::format("out_{}_{}", threads, seed);
    o.threads = threads;
    o.seed = seed;
    ASSERT_TRUE(RunMerge(*config, o, nullptr).ok());
    outs.push_back(o.out);
  }
  bool any_differs = false;
  for (const auto& name : TensorNames(f.base)) {
    EXPECT_EQ(ReadBytes(outs[0], name), ReadBytes(outs[1], name)) << name;
    any_differs |= ReadBytes(outs[0], name) != ReadBytes(outs[2], name);
  }
  EXPECT_TRUE(any_differs);
}

TEST(MergeErrors, IncompatibleModelsAndMissingFiles) {
  const auto dir = ScratchDir("merge_errors");
  testing::MakeModel("tiny-llama", 1, DType::kBF16, dir / "llama");
  testing::MakeModel("tiny-qwen2", 1, DType::kBF16, dir / "qwen");
  auto config = ParseMergeConfig(
      fmt::format("merge_method: task_arithmetic\nbase_model: {}\nmodels:\n  - model: {}\n    "
                  "parameters: {{weight: 1}}\n",
                  (dir / "llama").string(), (dir / "qwen").string()),
      "e.yaml");
  ASSERT_TRUE(config.ok());
  MergeOptions o;
  o.out = dir / "out";
  auto r = RunMerge(*config, o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(o.out));
  config->models[0].model = (dir / "nope").string();
  r = RunMerge(*config, o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace rvec::merge
