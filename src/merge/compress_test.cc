// Compact vectors: low-rank error against an independent exact SVD (Eckart–Young), the PEFT files'
// names, shapes and config keys, the sign form's closed-form scale, the sparse form's kept set,
// DARE draws, apply of every form against its dense reconstruction, determinism and errors.
#include "merge/compress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "base/fs.h"
#include "merge/compact.h"
#include "merge/eigen.h"
#include "merge/merge_test_util.h"
#include "merge/stats.h"
#include "merge/vector.h"

namespace rvec::merge {
namespace {

namespace fs = std::filesystem;
using testing::RawTensor;
using testing::ReadF32Scalar;
using testing::ScratchDir;
using testing::WriteTensors;

constexpr char kUp[] = "model.layers.0.mlp.up_proj.weight";        // [96, 64], decaying spectrum
constexpr char kK[] = "model.layers.1.self_attn.k_proj.weight";    // [16, 64], flat spectrum
constexpr char kNorm[] = "model.layers.0.input_layernorm.weight";  // [64]
constexpr char kEmbed[] = "model.embed_tokens.weight";             // [50, 64]

std::vector<float> Gaussian(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// U·diag(0.8^i)·Vᵀ with random orthonormal U, V: a spectrum with a known tail.
std::vector<float> Decaying(int rows, int cols, uint32_t seed) {
  const auto g1 = Gaussian(rows * rows, seed, 1.0f), g2 = Gaussian(cols * cols, seed + 1, 1.0f);
  Eigen::MatrixXd a = Eigen::Map<const Eigen::MatrixXf>(g1.data(), rows, rows).cast<double>();
  Eigen::MatrixXd b = Eigen::Map<const Eigen::MatrixXf>(g2.data(), cols, cols).cast<double>();
  Eigen::MatrixXd u = Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ();
  Eigen::MatrixXd v = Eigen::HouseholderQR<Eigen::MatrixXd>(b).householderQ();
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(rows, cols);
  for (int i = 0; i < std::min(rows, cols); ++i) {
    m += std::pow(0.8, i) * 0.01 * u.col(i) * v.col(i).transpose();
  }
  std::vector<float> out(rows * cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) out[r * cols + c] = static_cast<float>(m(r, c));
  }
  return out;
}

fs::path MakeVector(const fs::path& dir) {
  const fs::path p = dir / "vector";
  WriteTensors(p,
               {{kEmbed, {50, 64}, Gaussian(50 * 64, 1, 0.002f)},
                {kNorm, {64}, Gaussian(64, 2, 0.003f)},
                {kUp, {96, 64}, Decaying(96, 64, 3)},
                {kK, {16, 64}, Gaussian(16 * 64, 4, 0.001f)}},
               DType::kF32);
  return p;
}

std::vector<float> DecodeAll(const CompactVector& cv, const std::string& name) {
  std::vector<float> out(cv.NumElements(name));
  // Odd-sized pieces: decoding must not depend on how a caller chunks the tensor.
  for (uint64_t b = 0; b < out.size(); b += 777) {
    const uint64_t n = std::min<uint64_t>(777, out.size() - b);
    const Status s = cv.Decode(name, b, n, out.data() + b);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return out;
}

// ‖M − M_r‖_F of the best rank-r approximation, from Eigen's Jacobi SVD (independent of the
// Gram / randomized code under test).
double OptimalError(const std::vector<float>& m, int rows, int cols, int r) {
  Eigen::MatrixXd a(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) a(i, j) = m[i * cols + j];
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(a);
  double tail = 0;
  for (int i = r; i < svd.singularValues().size(); ++i) {
    tail += svd.singularValues()(i) * svd.singularValues()(i);
  }
  return std::sqrt(tail);
}

double Error(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(e);
}

StatusOr<CompressReport> RunCompress(CompressOptions o) {
  o.threads = o.threads ? o.threads : 2;
  return Compress(o, nullptr);
}

TEST(Compress, LowRankReachesTheEckartYoungOptimum) {
  const fs::path dir = ScratchDir("lowrank");
  const fs::path vec = MakeVector(dir);
  for (bool exact : {false, true}) {
    CompressOptions o;
    o.vector = vec;
    o.out = dir / (exact ? "exact" : "randomized");
    o.method = CompactKind::kLowRank;
    o.rank = 6;
    o.exact = exact;
    o.dtype = DType::kF32;
    auto r = RunCompress(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto cv = CompactVector::Open(o.out);
    ASSERT_TRUE(cv.ok()) << cv.status().ToString();
    for (auto [name, rows, cols] : {std::tuple{kUp, 96, 64}, std::tuple{kK, 16, 64}}) {
      const auto m = ReadF32Scalar(vec, name);
      const double best = OptimalError(m, rows, cols, 6);
      const double got = Error(m, DecodeAll(**cv, name));
      EXPECT_LE(got, best * 1.01 + 1e-9) << name << (exact ? " exact" : " randomized");
      EXPECT_GE(got, best * (1 - 1e-4)) << name << ": better than optimal means a bug";
    }
    // Retention figures are the decoded form's, against the dense source (tensors outside the
    // adapter count as entirely lost).
    double norm2 = 0, err2 = 0, dot = 0, approx2 = 0;
    for (const char* name : {kEmbed, kNorm, kUp, kK}) {
      const auto m = ReadF32Scalar(vec, name);
      std::vector<float> d(m.size(), 0.0f);
      if ((*cv)->Has(name)) d = DecodeAll(**cv, name);
      const double e = Error(m, d);
      err2 += e * e;
      for (size_t i = 0; i < m.size(); ++i) {
        norm2 += double(m[i]) * m[i];
        dot += double(m[i]) * d[i];
        approx2 += double(d[i]) * d[i];
      }
    }
    EXPECT_NEAR(r->RelativeError(), std::sqrt(err2 / norm2), 1e-9);
    EXPECT_NEAR(r->Cosine(), dot / std::sqrt(norm2 * approx2), 1e-9);
    // The embedding (most of ‖v‖² here) is outside the adapter: the per-kind table says so.
    bool saw_embeddings = false;
    for (const auto& g : r->by_kind) {
      if (g.group == "embeddings") {
        saw_embeddings = true;
        EXPECT_NEAR(g.Captured(), 0.0, 1e-12);
      }
      if (g.group == "up_proj") {
        EXPECT_GT(g.Captured(), 0.9);
      }
    }
    EXPECT_TRUE(saw_embeddings);
  }
}

TEST(Compress, LowRankWritesAPeftAdapter) {
  const fs::path dir = ScratchDir("peft");
  CompressOptions o;
  o.vector = MakeVector(dir);
  o.out = dir / "adapter";
  o.method = CompactKind::kLowRank;
  o.rank = 32;  // more than k_proj's 16 rows: that module gets rank 16 through rank_pattern
  o.base_model = "Qwen/Qwen2.5-1.5B-Instruct";
  auto r = RunCompress(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto config = nlohmann::json::parse(*ReadFileToString(o.out / "adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["r"], 32);
  EXPECT_EQ(config["lora_alpha"], 32);
  EXPECT_EQ(config["base_model_name_or_path"], "Qwen/Qwen2.5-1.5B-Instruct");
  EXPECT_EQ(config["bias"], "none");
  EXPECT_EQ(config["fan_in_fan_out"], false);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"up_proj", "k_proj"}));
  EXPECT_EQ(config["rank_pattern"], nlohmann::json({{"model.layers.1.self_attn.k_proj", 16}}));
  EXPECT_EQ(config["alpha_pattern"], nlohmann::json({{"model.layers.1.self_attn.k_proj", 16}}));
  auto ckpt = Checkpoint::Open(o.out / "adapter_model.safetensors");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->TensorNames().size(), 4u);
  auto shape = [&](const std::string& n) { return ckpt->View(n)->shape(); };
  EXPECT_EQ(shape("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"),
            (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(shape("base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"),
            (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(shape("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight"),
            (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(ckpt->View("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight")->dtype(),
            DType::kBF16);
  // What LoRA does not carry is named with its share.
  EXPECT_EQ(r->not_in_adapter, (std::vector<std::string>{kEmbed, kNorm}));
  EXPECT_GT(r->not_in_adapter_share, 0.0);
  EXPECT_LT(r->not_in_adapter_share, 1.0);
  EXPECT_FALSE(fs::exists(o.out / "rest"));
  EXPECT_TRUE(fs::exists(o.out / "compress.json"));
  EXPECT_TRUE(fs::exists(o.out / "README.md"));
}

TEST(Compress, EnergyPicksTheSmallestSufficientRankAndKeepRestIsExact) {
  const fs::path dir = ScratchDir("energy");
  CompressOptions o;
  o.vector = MakeVector(dir);
  o.out = dir / "adapter";
  o.method = CompactKind::kLowRank;
  o.energy = 0.9;
  o.keep_rest = true;
  o.dtype = DType::kF32;
  auto r = RunCompress(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // up_proj: σ_i ∝ 0.8^i, so energy Σ 0.64^i; the smallest rank reaching 90% of it.
  double total = 0, kept = 0;
  for (int i = 0; i < 64; ++i) total += std::pow(0.64, i);
  int want = 0;
  while (kept < 0.9 * total) kept += std::pow(0.64, want++);
  auto ckpt = Checkpoint::Open(o.out / "adapter_model.safetensors");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->View("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight")->shape()[0],
            want);
  EXPECT_TRUE(r->rest_written);
  auto cv = CompactVector::Open(o.out);
  ASSERT_TRUE(cv.ok()) << cv.status().ToString();
  EXPECT_EQ(DecodeAll(**cv, kNorm), ReadF32Scalar(o.vector, kNorm));
  EXPECT_EQ(DecodeAll(**cv, kEmbed), ReadF32Scalar(o.vector, kEmbed));
}

TEST(Compress, SignScaleIsTheClosedFormL2Optimum) {
  const fs::path dir = ScratchDir("sign");
  const fs::path vec = MakeVector(dir);
  for (bool per_tensor : {false, true}) {
    CompressOptions o;
    o.vector = vec;
    o.out = dir / (per_tensor ? "tensor" : "row");
    o.method = CompactKind::kSign;
    o.per_tensor_scale = per_tensor;
    auto r = RunCompress(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto cv = CompactVector::Open(o.out);
    ASSERT_TRUE(cv.ok()) << cv.status().ToString();
    const auto m = ReadF32Scalar(vec, kUp);
    const auto got = DecodeAll(**cv, kUp);
    double all = 0;
    for (float x : m) all += std::fabs(x);
    for (int row = 0; row < 96; ++row) {
      double s = 0;
      for (int c = 0; c < 64; ++c) s += std::fabs(m[row * 64 + c]);
      const float scale = static_cast<float>(per_tensor ? all / m.size() : s / 64);
      for (int c = 0; c < 64; ++c) {
        const float want = m[row * 64 + c] < 0 ? -scale : scale;
        ASSERT_EQ(got[row * 64 + c], want) << row << "," << c;
      }
    }
    // Any other scale for these signs is worse (the optimum is a minimum of a parabola).
    const double at = Error(m, got);
    std::vector<float> bigger = got;
    for (auto& x : bigger) x *= 1.01f;
    EXPECT_LT(at, Error(m, bigger));
    // 1-D tensors are kept exactly.
    EXPECT_EQ(DecodeAll(**cv, kNorm), ReadF32Scalar(vec, kNorm));
  }
}

TEST(Compress, SparseKeepsExactlyTheLargestMagnitudes) {
  const fs::path dir = ScratchDir("sparse");
  const fs::path vec = MakeVector(dir);
  CompressOptions o;
  o.vector = vec;
  o.out = dir / "sparse";
  o.method = CompactKind::kSparse;
  o.density = 0.1;
  o.dtype = DType::kF32;
  auto r = RunCompress(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto cv = CompactVector::Open(o.out);
  ASSERT_TRUE(cv.ok()) << cv.status().ToString();
  for (const char* name : {kUp, kK, kEmbed, kNorm}) {
    const auto m = ReadF32Scalar(vec, name);
    const auto got = DecodeAll(**cv, name);
    std::vector<size_t> order(m.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return std::fabs(m[a]) > std::fabs(m[b]); });
    const size_t k = static_cast<size_t>(std::llround(0.1 * m.size()));
    std::vector<float> want(m.size(), 0.0f);
    for (size_t i = 0; i < k; ++i) want[order[i]] = m[order[i]];
    EXPECT_EQ(got, want) << name;
  }
}

TEST(Compress, DareDropsAtRandomAndRescalesDeterministically) {
  const fs::path dir = ScratchDir("dare");
  const fs::path vec = MakeVector(dir);
  std::vector<std::string> bytes;
  for (size_t threads : {1, 3}) {
    CompressOptions o;
    o.vector = vec;
    o.out = dir / ("dare" + std::to_string(threads));
    o.method = CompactKind::kSparse;
    o.density = 0.25;
    o.dare = true;
    o.seed = 7;
    o.dtype = DType::kF32;
    o.threads = threads;
    ASSERT_TRUE(RunCompress(o).ok());
    bytes.push_back(*ReadFileToString(o.out / "model.safetensors"));
    auto cv = CompactVector::Open(o.out);
    ASSERT_TRUE(cv.ok());
    const auto m = ReadF32Scalar(vec, kEmbed);
    const auto got = DecodeAll(**cv, kEmbed);
    size_t kept = 0;
    for (size_t i = 0; i < m.size(); ++i) {
      if (got[i] == 0.0f) continue;
      ++kept;
      EXPECT_EQ(got[i], m[i] * 4.0f);
    }
    EXPECT_NEAR(static_cast<double>(kept) / m.size(), 0.25, 0.03);
  }
  // The creation time differs; everything else (tensor bytes) must not.
  auto a = Checkpoint::Open(dir / "dare1"), b = Checkpoint::Open(dir / "dare3");
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& n : a->TensorNames()) {
    EXPECT_EQ(testing::ReadBytes(dir / "dare1", n), testing::ReadBytes(dir / "dare3", n)) << n;
  }
}

TEST(Compress, LowRankIsDeterministicForAnyThreadCount) {
  const fs::path dir = ScratchDir("lowrank_threads");
  const fs::path vec = MakeVector(dir);
  for (size_t threads : {1, 4}) {
    CompressOptions o;
    o.vector = vec;
    o.out = dir / ("t" + std::to_string(threads));
    o.method = CompactKind::kLowRank;
    o.rank = 4;
    o.threads = threads;
    ASSERT_TRUE(RunCompress(o).ok());
  }
  for (const auto& n : testing::TensorNames(dir / "t1" / "adapter_model.safetensors")) {
    EXPECT_EQ(testing::ReadBytes(dir / "t1" / "adapter_model.safetensors", n),
              testing::ReadBytes(dir / "t4" / "adapter_model.safetensors", n))
        << n;
  }
}

// apply of a compact form equals apply of its dense reconstruction, bit for bit (the same
// decode-to-f32, one rounding into the target's dtype).
TEST(Compress, ApplyOfEachFormEqualsApplyOfItsDenseReconstruction) {
  const fs::path dir = ScratchDir("apply");
  const fs::path vec = MakeVector(dir);
  const fs::path target = dir / "target";
  WriteTensors(target,
               {{kEmbed, {50, 64}, Gaussian(50 * 64, 11, 0.05f)},
                {kNorm, {64}, Gaussian(64, 12, 1.0f)},
                {kUp, {96, 64}, Gaussian(96 * 64, 13, 0.05f)},
                {kK, {16, 64}, Gaussian(16 * 64, 14, 0.05f)},
                {"model.layers.1.mlp.down_proj.weight", {64, 96}, Gaussian(96 * 64, 15, 0.05f)}},
               DType::kBF16);
  struct Form {
    std::string name;
    CompressOptions o;
  };
  std::vector<Form> forms(4);
  forms[0].o.method = CompactKind::kLowRank;
  forms[0].o.rank = 5;
  forms[0].o.keep_rest = true;
  forms[1].o.method = CompactKind::kLowRank;
  forms[1].o.rank = 5;  // without the rest: norms and embeddings keep the target's bits
  forms[2].o.method = CompactKind::kSparse;
  forms[2].o.density = 0.2;
  forms[3].o.method = CompactKind::kSign;
  for (size_t f = 0; f < forms.size(); ++f) {
    CompressOptions o = forms[f].o;
    o.vector = vec;
    o.out = dir / ("form" + std::to_string(f));
    ASSERT_TRUE(RunCompress(o).ok());
    auto cv = CompactVector::Open(o.out);
    ASSERT_TRUE(cv.ok());
    std::vector<RawTensor> dense;
    for (const auto& n : (*cv)->TensorNames()) {
      dense.push_back({n, (*cv)->Shape(n), DecodeAll(**cv, n)});
    }
    const fs::path recon = dir / ("recon" + std::to_string(f));
    WriteTensors(recon, dense, DType::kF32);
    std::vector<std::string> outputs;
    for (const fs::path& v : {o.out, recon}) {
      ApplyOptions ao;
      ao.model = target;
      ao.vectors = {{v, 0.7}};
      ao.out = dir / ("applied" + std::to_string(f) + v.filename().string());
      ao.threads = 2;
      auto r = Apply(ao, nullptr);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::string all;
      for (const auto& n : testing::TensorNames(ao.out)) all += testing::ReadBytes(ao.out, n);
      outputs.push_back(all);
    }
    EXPECT_EQ(outputs[0], outputs[1]) << "form " << f;
    // stats and similarity read the compact form as its dense reconstruction.
    auto sc = ComputeStats(o.out, std::nullopt, 2, nullptr);
    auto sr = ComputeStats(recon, std::nullopt, 2, nullptr);
    ASSERT_TRUE(sc.ok() && sr.ok()) << sc.status().ToString();
    EXPECT_EQ(sc->total.sum_sq, sr->total.sum_sq) << "form " << f;
    EXPECT_EQ(sc->kind, std::string(CompactKindName(o.method)) + "_vector");
    auto sim = ComputeSimilarity(o.out, recon, 2, nullptr);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    EXPECT_EQ(sim->total.a_sq, sim->total.b_sq);
    EXPECT_NEAR(sim->total.Cosine(), 1.0, 1e-12);
  }
}

TEST(Compress, ClearErrors) {
  const fs::path dir = ScratchDir("errors");
  const fs::path vec = MakeVector(dir);
  CompressOptions o;
  o.vector = vec;
  o.out = dir / "x";
  o.method = CompactKind::kLowRank;
  EXPECT_EQ(RunCompress(o).status().code(), StatusCode::kInvalidArgument);  // no rank/energy
  o.rank = 4;
  o.energy = 0.5;
  EXPECT_EQ(RunCompress(o).status().code(), StatusCode::kInvalidArgument);  // both
  o.method = CompactKind::kSparse;
  o.density = 1.5;
  EXPECT_EQ(RunCompress(o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(o.out));
  // A compact vector is not compressed again.
  o.method = CompactKind::kSign;
  ASSERT_TRUE(RunCompress(o).ok());
  o.vector = o.out;
  o.out = dir / "y";
  auto again = RunCompress(o);
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already a compact vector"), std::string::npos);
  // An adapter whose ranks disagree with its config is refused, naming the tensor.
  CompressOptions l;
  l.vector = vec;
  l.out = dir / "lora";
  l.method = CompactKind::kLowRank;
  l.rank = 4;
  ASSERT_TRUE(RunCompress(l).ok());
  auto config = nlohmann::json::parse(*ReadFileToString(l.out / "adapter_config.json"));
  config["r"] = 8;
  ASSERT_TRUE(WriteFileAtomic(l.out / "adapter_config.json", config.dump()).ok());
  auto bad = CompactVector::Open(l.out);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("lora_A.weight has rank 4"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace rvec::merge
