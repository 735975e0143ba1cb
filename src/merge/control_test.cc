// Control vectors (norms, determinism, shuffle multiset) and stats/similarity against direct
// scalar computations.
#include "merge/control.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "merge/merge_test_util.h"
#include "merge/stats.h"
#include "merge/vector.h"

namespace rvec::merge {
namespace {

using testing::ReadBytes;
using testing::ReadF32Scalar;
using testing::ScratchDir;
using testing::TensorNames;

std::filesystem::path MakeVector(const std::filesystem::path& dir, DType dtype) {
  const auto f = testing::MakeFamily(dir, "tiny-llama", DType::kBF16);
  ExtractOptions e;
  e.base = f.sft;
  e.tuned = f.grpo;
  e.out = dir / "vec";
  e.dtype = dtype;
  auto r = Extract(e, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return e.out;
}

double Norm(const std::vector<float>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

TEST(Control, TensorNormsMatchToOnePartPerMillion) {
  const auto dir = ScratchDir("control");
  const auto vec = MakeVector(dir, DType::kF32);
  ControlOptions o;
  o.like = vec;
  o.out = dir / "ctl";
  o.seed = 42;
  auto r = MakeControl(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(r->max_relative_norm_error, 1e-6);
  EXPECT_EQ(TensorNames(o.out), TensorNames(vec));
  for (const auto& name : TensorNames(vec)) {
    DType dt;
    const auto v = ReadF32Scalar(vec, name);
    const auto c = ReadF32Scalar(o.out, name, &dt);
    EXPECT_EQ(dt, DType::kF32);
    ASSERT_EQ(v.size(), c.size());
    const double nv = Norm(v, 0, v.size()), nc = Norm(c, 0, c.size());
    EXPECT_NEAR(nc, nv, 1e-6 * nv) << name;
    if (v.size() > 1000) {
      double dot = 0;
      for (size_t i = 0; i < v.size(); ++i) dot += static_cast<double>(v[i]) * c[i];
      EXPECT_LT(std::fabs(dot / (nv * nc)), 0.1) << name << ": noise should be ~orthogonal";
    }
  }
  auto ckpt = Checkpoint::Open(o.out);
  ASSERT_TRUE(ckpt.ok());
  const auto& md = ckpt->shard(0).metadata();
  EXPECT_EQ(md.at("rvec.kind"), "control_vector");
  EXPECT_EQ(md.at("rvec.seed"), "42");
  EXPECT_EQ(md.at("rvec.match"), "tensor");
  EXPECT_EQ(md.at("rvec.like.path"), std::filesystem::absolute(vec).string());
  EXPECT_EQ(md.at("rvec.architecture"), "LlamaForCausalLM");
}

TEST(Control, RowNormsMatch) {
  const auto dir = ScratchDir("control_rows");
  const auto vec = MakeVector(dir, DType::kF32);
  ControlOptions o;
  o.like = vec;
  o.out = dir / "ctl";
  o.match = ControlMatch::kRows;
  auto r = MakeControl(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto ckpt = Checkpoint::Open(vec);
  for (const auto& name : TensorNames(vec)) {
    const auto& shape = ckpt->Info(name)->shape;
    const auto v = ReadF32Scalar(vec, name);
    const auto c = ReadF32Scalar(o.out, name);
    const size_t rows = shape.size() >= 2 ? static_cast<size_t>(shape[0]) : 1;
    const size_t len = v.size() / rows;
    for (size_t row = 0; row < rows; ++row) {
      const double nv = Norm(v, row * len, (row + 1) * len);
      EXPECT_NEAR(Norm(c, row * len, (row + 1) * len), nv, 1e-6 * nv + 1e-30)
          << name << " row " << row;
    }
  }
}

TEST(Control, Bf16VectorNormsMatchUpToRounding) {
  const auto dir = ScratchDir("control_bf16");
  const auto vec = MakeVector(dir, DType::kBF16);
  ControlOptions o;
  o.like = vec;
  o.out = dir / "ctl";
  auto r = MakeControl(o, nullptr);
  ASSERT_TRUE(r.ok());
  // bf16 rounding of each element moves a norm by far less than one bf16 ulp (2^-8 relative).
  EXPECT_LT(r->max_relative_norm_error, 2e-3);
  for (const auto& name : TensorNames(vec)) {
    DType dt;
    (void)ReadF32Scalar(o.out, name, &dt);
    EXPECT_EQ(dt, DType::kBF16);
  }
}

TEST(Control, SameBytesForOneAndTwoThreads) {
  const auto dir = ScratchDir("control_threads");
  const auto vec = MakeVector(dir, DType::kF32);
  for (bool shuffle : {false, true}) {
    for (auto match : {ControlMatch::kTensor, ControlMatch::kRows}) {
      if (shuffle && match == ControlMatch::kRows) continue;
      std::vector<std::filesystem::path> outs;
      for (size_t threads : {1, 2}) {
        ControlOptions o;
        o.like = vec;
        o.seed = 3;
        o.shuffle = shuffle;
        o.match = match;
        o.threads = threads;
        o.out = dir / ("ctl" + std::to_string(threads) + (shuffle ? "s" : "g") +
                       (match == ControlMatch::kRows ? "r" : "t"));
        ASSERT_TRUE(MakeControl(o, nullptr).ok());
        outs.push_back(o.out);
      }
      for (const auto& name : TensorNames(vec)) {
        EXPECT_EQ(ReadBytes(outs[0], name), ReadBytes(outs[1], name)) << name;
      }
    }
  }
  // A different seed gives a different control.
  ControlOptions o;
  o.like = vec;
  o.seed = 4;
  o.out = dir / "seed4";
  ASSERT_TRUE(MakeControl(o, nullptr).ok());
  EXPECT_NE(ReadBytes(o.out, "model.layers.0.mlp.up_proj.weight"),
            ReadBytes(dir / "ctl1gt", "model.layers.0.mlp.up_proj.weight"));
}

TEST(Control, MultiChunkTensorsAreThreadInvariant) {
  // Tensors larger than one chunk (kChunkElements) exercise cross-chunk sums and draws.
  const auto dir = ScratchDir("control_big");
  std::vector<float> big(1100 * 1024), small(3000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(static_cast<float>(i)) * 1e-3f;
  for (size_t i = 0; i < small.size(); ++i) small[i] = std::cos(static_cast<float>(i)) * 1e-2f;
  testing::WriteTensors(dir / "vec.safetensors",
                        {{"model.embed_tokens.weight", {1100, 1024}, big},
                         {"model.layers.0.mlp.up_proj.weight", {3, 1000}, small}},
                        DType::kF32);
  for (bool rows : {false, true}) {
    std::vector<std::filesystem::path> outs;
    for (size_t threads : {1, 2}) {
      ControlOptions o;
      o.like = dir / "vec.safetensors";
      o.seed = 11;
      o.match = rows ? ControlMatch::kRows : ControlMatch::kTensor;
      o.threads = threads;
      o.out = dir / ("ctl" + std::to_string(threads) + (rows ? "r" : "t"));
      auto r = MakeControl(o, nullptr);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_LT(r->max_relative_norm_error, 1e-6);
      outs.push_back(o.out);
    }
    EXPECT_EQ(ReadBytes(outs[0], "model.embed_tokens.weight"),
              ReadBytes(outs[1], "model.embed_tokens.weight"));
    const auto c = ReadF32Scalar(outs[0], "model.embed_tokens.weight");
    EXPECT_NEAR(Norm(c, 0, c.size()), Norm(big, 0, big.size()), 1e-6 * Norm(big, 0, big.size()));
  }
}

TEST(Control, ShufflePreservesTheMultisetOfValues) {
  const auto dir = ScratchDir("control_shuffle");
  const auto vec = MakeVector(dir, DType::kBF16);
  ControlOptions o;
  o.like = vec;
  o.out = dir / "ctl";
  o.shuffle = true;
  o.seed = 9;
  ASSERT_TRUE(MakeControl(o, nullptr).ok());
  for (const auto& name : TensorNames(vec)) {
    auto v = ReadF32Scalar(vec, name);
    auto c = ReadF32Scalar(o.out, name);
    const bool moved = v != c;
    std::sort(v.begin(), v.end());
    std::sort(c.begin(), c.end());
    EXPECT_EQ(v, c) << name;
    if (v.size() > 100) {
      EXPECT_TRUE(moved) << name;
    }
  }
}

TEST(Stats, NormsAndRelativeNormsMatchDirectComputation) {
  const auto dir = ScratchDir("stats");
  const auto f = testing::MakeFamily(dir, "tiny-llama", DType::kBF16);
  ExtractOptions e;
  e.base = f.sft;
  e.tuned = f.grpo;
  e.out = dir / "vec";
  ASSERT_TRUE(Extract(e, nullptr).ok());
  std::vector<StatsReport> runs;
  for (size_t threads : {1, 2}) {
    auto r = ComputeStats(e.out, f.instruct, threads, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    runs.push_back(*r);
  }
  const StatsReport& r = runs[0];
  EXPECT_EQ(StatsJson(runs[0]), StatsJson(runs[1]));
  EXPECT_EQ(r.kind, "reasoning_vector");
  double total_sq = 0;
  for (const TensorStats& t : r.tensors) {
    const auto v = ReadF32Scalar(e.out, t.name);
    const auto w = ReadF32Scalar(f.instruct, t.name);
    double sq = 0, wsq = 0, mx = 0;
    uint64_t zeros = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      sq += static_cast<double>(v[i]) * v[i];
      wsq += static_cast<double>(w[i]) * w[i];
      mx = std::max(mx, static_cast<double>(std::fabs(v[i])));
      zeros += v[i] == 0.0f;
    }
    total_sq += sq;
    EXPECT_NEAR(t.acc.sum_sq, sq, 1e-12 * sq + 1e-300) << t.name;
    EXPECT_NEAR(t.acc.target_sum_sq, wsq, 1e-12 * wsq) << t.name;
    EXPECT_EQ(t.acc.max_abs, mx);
    EXPECT_EQ(t.acc.zeros, zeros);
    EXPECT_EQ(t.acc.numel, v.size());
  }
  EXPECT_NEAR(r.total.sum_sq, total_sq, 1e-12 * total_sq);
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_TRUE(r.layers[0].groups.count(ModuleGroup::kAttention));
  EXPECT_TRUE(r.layers[0].groups.count(ModuleGroup::kMlp));
  const std::string svg = StatsSvg(r);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("attention"), std::string::npos);
  EXPECT_NE(svg.find("embeddings"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(StatsText(r, true).find("model.layers.1.mlp.down_proj.weight"), std::string::npos);
}

TEST(Similarity, CosinesMatchDirectComputation) {
  const auto dir = ScratchDir("similarity");
  const auto f = testing::MakeFamily(dir, "tiny-llama", DType::kBF16);
  ExtractOptions e;
  e.base = f.sft;
  e.tuned = f.grpo;
  e.out = dir / "v1";
  ASSERT_TRUE(Extract(e, nullptr).ok());
  e.base = f.base;
  e.tuned = f.instruct;
  e.out = dir / "v2";
  ASSERT_TRUE(Extract(e, nullptr).ok());
  auto self = ComputeSimilarity(dir / "v1", dir / "v1", 2, nullptr);
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(self->total.Cosine(), 1.0, 1e-12);
  auto r = ComputeSimilarity(dir / "v1", dir / "v2", 2, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  double dot_all = 0, a_all = 0, b_all = 0;
  for (const auto& [name, acc] : r->tensors) {
    const auto a = ReadF32Scalar(dir / "v1", name);
    const auto b = ReadF32Scalar(dir / "v2", name);
    double dot = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      dot += static_cast<double>(a[i]) * b[i];
      aa += static_cast<double>(a[i]) * a[i];
      bb += static_cast<double>(b[i]) * b[i];
    }
    dot_all += dot;
    a_all += aa;
    b_all += bb;
    EXPECT_NEAR(acc.Cosine(), dot / std::sqrt(aa * bb), 1e-9) << name;
  }
  EXPECT_NEAR(r->total.Cosine(), dot_all / std::sqrt(a_all * b_all), 1e-9);
  EXPECT_LT(std::fabs(r->total.Cosine()), 0.1);  // independent noise: nearly orthogonal
  EXPECT_FALSE(r->layers.empty());
  auto again = ComputeSimilarity(dir / "v1", dir / "v2", 1, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SimilarityJson(*r), SimilarityJson(*again));
}

}  // namespace
}  // namespace rvec::merge
