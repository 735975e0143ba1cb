// The fast forward pass against the scalar f64 reference on synth models (Qwen2, Llama, Qwen3;
// f32, bf16, f16), and the invariants batching relies on: KV-cache decoding equals full
// recomputation, a sequence in a batch equals it alone, any thread count gives the same bits.
#include "model/transformer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "model/model_test_util.h"
#include "model/reference_forward.h"
#include "model/sampler.h"

namespace rvec {
namespace {

using testing_util::LoadModel;
using testing_util::SynthModel;

std::vector<int32_t> RandomIds(size_t n, size_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
  return ids;
}

// All positions of `ids` in one Forward call; returns [n][vocab].
std::vector<std::vector<float>> FastAllPositions(Transformer& tf, KvPool& pool,
                                                 const std::vector<int32_t>& ids) {
  auto kv = pool.TryAllocate(ids.size());
  std::vector<TokenInput> in;
  for (size_t p = 0; p < ids.size(); ++p) in.push_back({ids[p], p, kv.get(), true});
  std::vector<float> logits;
  tf.Forward(in, &logits);
  const size_t V = tf.config().vocab;
  std::vector<std::vector<float>> out(ids.size());
  for (size_t p = 0; p < ids.size(); ++p) out[p].assign(&logits[p * V], &logits[(p + 1) * V]);
  return out;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

struct Case {
  const char* preset;
  DType dtype;
};

class ReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceTest, FastPathMatchesF64Reference) {
  const Case c = GetParam();
  auto m = LoadModel(SynthModel(c.preset, c.dtype));
  ASSERT_TRUE(m);
  ThreadPool threads(2);
  Transformer tf(m->config, m->weights, &threads);
  KvPool pool(m->config, 1ull << 30);
  const auto ids = RandomIds(19, m->config.vocab, 3);
  const auto fast = FastAllPositions(tf, pool, ids);
  const auto ref = ReferenceForward(m->config, m->weights, ids);
  double worst = 0;
  for (size_t p = 0; p < ids.size(); ++p) {
    for (size_t v = 0; v < m->config.vocab; ++v) {
      worst = std::max(worst, std::fabs(double(fast[p][v]) - ref[p][v]));
    }
    // Greedy tokens identical.
    size_t ref_best = 0;
    for (size_t v = 1; v < ref[p].size(); ++v) {
      if (ref[p][v] > ref[p][ref_best]) ref_best = v;
    }
    EXPECT_EQ(Argmax(fast[p].data(), m->config.vocab), int32_t(ref_best)) << "position " << p;
  }
  // The weights are read exactly whatever their dtype, so every dtype meets the f32 bound.
  EXPECT_LE(worst, 1e-4) << c.preset << " " << DTypeName(c.dtype);
  double largest = 0;
  for (const auto& row : ref) {
    for (double v : row) largest = std::max(largest, std::fabs(v));
  }
  // Synth logits are O(1): the bound is not trivially met.
  EXPECT_GT(largest, 0.1);
  RecordProperty("max_abs_logit_diff", fmt::format("{:.3g}", worst));
  RecordProperty("max_abs_logit", fmt::format("{:.3g}", largest));
}

INSTANTIATE_TEST_SUITE_P(
    Presets, ReferenceTest,
    ::testing::Values(Case{"tiny-qwen2", DType::kF32}, Case{"tiny-qwen2", DType::kBF16},
                      Case{"tiny-qwen2", DType::kF16}, Case{"tiny-llama", DType::kF32},
                      Case{"tiny-llama", DType::kBF16}, Case{"tiny-llama", DType::kF16},
                      Case{"tiny-qwen3", DType::kF32}, Case{"tiny-qwen3", DType::kBF16},
                      Case{"tiny-qwen3", DType::kF16}, Case{"tiny-olmo2", DType::kF32},
                      Case{"tiny-olmo2", DType::kBF16}, Case{"tiny-olmo2", DType::kF16}),
    [](const auto& info) {
      std::string n =
          std::string(info.param.preset) + "_" + std::string(DTypeName(info.param.dtype));
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

TEST(Transformer, Llama3RopeScalingMatchesReferenceAndFormula) {
  auto dir = SynthModel("tiny-llama", DType::kBF16, 7, "-llama3", [](nlohmann::json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 64}};
    j["rope_theta"] = 500000.0;
  });
  auto m = LoadModel(dir);
  ASSERT_TRUE(m);
  // transformers' _compute_llama3_parameters, written out in double.
  const size_t d = m->config.head_dim;
  size_t changed = 0;
  for (size_t i = 0; i < d / 2; ++i) {
    const double f = 1.0 / std::pow(500000.0, double(2 * i) / d);
    const double wavelen = 2 * std::numbers::pi / f;
    double expect = f;
    if (wavelen > 64.0 / 1.0) {
      expect = f / 8.0;
    } else if (wavelen >= 64.0 / 4.0) {
      const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
      expect = (1 - smooth) * f / 8.0 + smooth * f;
    }
    if (std::fabs(expect - f) > 1e-9 * f) ++changed;
    EXPECT_NEAR(m->config.inv_freq[i], expect, 1e-6 * expect) << i;
  }
  EXPECT_GT(changed, 0u) << "the scaling must change some frequencies for this test to mean much";
  ThreadPool threads(2);
  Transformer tf(m->config, m->weights, &threads);
  KvPool pool(m->config, 1ull << 30);
  const auto ids = RandomIds(40, m->config.vocab, 5);
  const auto fast = FastAllPositions(tf, pool, ids);
  const auto ref = ReferenceForward(m->config, m->weights, ids);
  double worst = 0;
  for (size_t p = 0; p < ids.size(); ++p) {
    for (size_t v = 0; v < m->config.vocab; ++v) {
      worst = std::max(worst, std::fabs(double(fast[p][v]) - ref[p][v]));
    }
  }
  EXPECT_LE(worst, 1e-4);
}

TEST(Transformer, UnsupportedRopeScalingIsAnError) {
  auto dir = SynthModel("tiny-llama", DType::kBF16, 7, "-yarn", [](nlohmann::json& j) {
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  });
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok());
  auto config = ModelConfig::FromHf(*ckpt->config(), "config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("yarn"), std::string::npos);
}

TEST(Transformer, KvCacheDecodingEqualsFullRecomputation) {
  for (const char* preset : {"tiny-qwen2", "tiny-qwen3", "tiny-olmo2"}) {
    auto m = LoadModel(SynthModel(preset, DType::kBF16));
    ASSERT_TRUE(m);
    ThreadPool threads(2);
    Transformer tf(m->config, m->weights, &threads);
    KvPool pool(m->config, 1ull << 30);
    const auto ids = RandomIds(24, m->config.vocab, 11);
    const auto full = FastAllPositions(tf, pool, ids);
    // Prefill 7 tokens in chunks of 3, then decode one token at a time.
    auto kv = pool.TryAllocate(ids.size());
    std::vector<float> logits;
    size_t p = 0;
    while (p < ids.size()) {
      const size_t take = p < 7 ? std::min<size_t>(3, 7 - p) : 1;
      std::vector<TokenInput> in;
      for (size_t i = p; i < p + take; ++i) in.push_back({ids[i], i, kv.get(), true});
      tf.Forward(in, &logits);
      for (size_t i = 0; i < take; ++i) {
        std::vector<float> row(&logits[i * m->config.vocab], &logits[(i + 1) * m->config.vocab]);
        ASSERT_LE(MaxAbsDiff(row, full[p + i]), 1e-5) << preset << " position " << p + i;
      }
      p += take;
    }
  }
}

class BatchInvariance : public ::testing::TestWithParam<MatMulPrecision> {};

TEST_P(BatchInvariance, SequenceInBatchEqualsAloneAndThreadCountInvariant) {
  const MatMulPrecision precision = GetParam();
  auto m = LoadModel(SynthModel("tiny-qwen2", DType::kBF16));
  ASSERT_TRUE(m);
  const size_t V = m->config.vocab;
  const std::vector<std::vector<int32_t>> seqs = {RandomIds(9, V, 21), RandomIds(14, V, 22),
                                                  RandomIds(5, V, 23)};
  // Alone, single-threaded.
  std::vector<std::vector<std::vector<float>>> alone;
  {
    ThreadPool one(1);
    Transformer tf(m->config, m->weights, &one, precision);
    KvPool pool(m->config, 1ull << 30);
    for (const auto& s : seqs) alone.push_back(FastAllPositions(tf, pool, s));
  }
  for (size_t threads : {1, 2, 3}) {
    ThreadPool tp(threads);
    Transformer tf(m->config, m->weights, &tp, precision);
    KvPool pool(m->config, 1ull << 30);
    std::vector<std::unique_ptr<SequenceKv>> kvs;
    for (const auto& s : seqs) kvs.push_back(pool.TryAllocate(s.size()));
    // Step all sequences together: two prompt tokens each, then one per step, mixing
    // prefilling and decoding sequences of different lengths in one batch.
    std::vector<size_t> done(seqs.size(), 0);
    std::vector<float> logits;
    for (bool any = true; any;) {
      any = false;
      std::vector<TokenInput> in;
      std::vector<std::pair<size_t, size_t>> rows;
      for (size_t s = 0; s < seqs.size(); ++s) {
        const size_t take = std::min<size_t>(done[s] < 2 ? 2 : 1, seqs[s].size() - done[s]);
        for (size_t i = done[s]; i < done[s] + take; ++i) {
          in.push_back({seqs[s][i], i, kvs[s].get(), true});
          rows.emplace_back(s, i);
        }
        done[s] += take;
      }
      if (in.empty()) break;
      any = true;
      tf.Forward(in, &logits);
      for (size_t r = 0; r < rows.size(); ++r) {
        std::vector<float> row(&logits[r * V], &logits[(r + 1) * V]);
        const auto& ref = alone[rows[r].first][rows[r].second];
        ASSERT_LE(MaxAbsDiff(row, ref), 1e-5);
        // The kernels are batch- and thread-invariant by construction: the bits match too.
        ASSERT_EQ(row, ref) << "threads " << threads << " seq " << rows[r].first << " pos "
                            << rows[r].second;
      }
    }
  }
}

// The bf16 path picks its kernel by batch size (register transposes for up to 4 tokens, packed
// panels above); both must give the same bits.
INSTANTIATE_TEST_SUITE_P(Precisions, BatchInvariance,
                         ::testing::Values(MatMulPrecision::kExact,
                                           MatMulPrecision::kBF16Activations));

TEST(Transformer, Bf16ActivationsStayClose) {
  auto m = LoadModel(SynthModel("tiny-qwen2", DType::kBF16));
  ASSERT_TRUE(m);
  ThreadPool threads(2);
  Transformer exact(m->config, m->weights, &threads, MatMulPrecision::kExact);
  Transformer fast(m->config, m->weights, &threads, MatMulPrecision::kBF16Activations);
  KvPool pool(m->config, 1ull << 30);
  const auto ids = RandomIds(16, m->config.vocab, 31);
  const auto a = FastAllPositions(exact, pool, ids);
  const auto b = FastAllPositions(fast, pool, ids);
  double worst = 0;
  for (size_t p = 0; p < ids.size(); ++p) worst = std::max(worst, MaxAbsDiff(a[p], b[p]));
  EXPECT_LE(worst, 5e-2);
  RecordProperty("bf16_activation_max_abs_logit_diff", std::to_string(worst));
}

// Logits of every tail position of `tails` decoded together (one token per sequence per step)
// after `prompt`: each sequence either has a private copy of the prompt's KV or references one
// prefilled copy. Returns [sequence][position][vocab].
std::vector<std::vector<std::vector<float>>> DecodeTails(
    const ModelConfig& config, const ModelWeights& weights, size_t threads, DType kv_dtype,
    bool share, const std::vector<int32_t>& prompt,
    const std::vector<std::vector<int32_t>>& tails) {
  ThreadPool tp(threads);
  Transformer tf(config, weights, &tp);
  KvPool pool(config, 1ull << 30);
  std::vector<float> logits;
  auto prompt_kv = pool.TryAllocate(prompt.size(), kv_dtype);
  std::vector<TokenInput> in;
  for (size_t p = 0; p < prompt.size(); ++p) in.push_back({prompt[p], p, prompt_kv.get(), false});
  tf.Forward(in, &logits);
  std::vector<std::unique_ptr<SequenceKv>> kvs;
  for (const auto& t : tails) {
    kvs.push_back(
        pool.TryAllocateWithPrefix(prompt.size() + t.size(), *prompt_kv, prompt.size(), share));
    EXPECT_EQ(kvs.back()->shared_positions(), share ? prompt.size() / 16 * 16 : 0);
  }
  std::vector<std::vector<std::vector<float>>> out(tails.size());
  const size_t V = config.vocab;
  for (size_t step = 0; step < tails[0].size(); ++step) {
    in.clear();
    for (size_t s = 0; s < tails.size(); ++s) {
      in.push_back({tails[s][step], prompt.size() + step, kvs[s].get(), true});
    }
    tf.Forward(in, &logits);
    for (size_t s = 0; s < tails.size(); ++s)
      out[s].emplace_back(&logits[s * V], &logits[(s + 1) * V]);
  }
  return out;
}

// K samples of one prompt: referencing the prompt's KV gives the same bits as copying it, for
// f32 and bf16 caches and any thread count; bf16 KV stays close to f32 KV.
TEST(Transformer, SharedPromptKvEqualsCopiesAndBf16KvStaysClose) {
  auto m = LoadModel(SynthModel("tiny-qwen2", DType::kBF16));
  ASSERT_TRUE(m);
  const size_t V = m->config.vocab;
  const auto prompt = RandomIds(37, V, 41);
  const std::vector<std::vector<int32_t>> tails = {RandomIds(20, V, 42), RandomIds(20, V, 43),
                                                   RandomIds(20, V, 44)};
  std::vector<std::vector<std::vector<float>>> f32_ref;
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    const auto ref = DecodeTails(m->config, m->weights, 1, dtype, false, prompt, tails);
    for (size_t threads : {1, 3}) {
      EXPECT_EQ(DecodeTails(m->config, m->weights, threads, dtype, true, prompt, tails), ref)
          << DTypeName(dtype) << " threads " << threads;
    }
    if (dtype == DType::kF32) {
      f32_ref = ref;
      continue;
    }
    double worst = 0;
    for (size_t s = 0; s < tails.size(); ++s) {
      for (size_t p = 0; p < ref[s].size(); ++p)
        worst = std::max(worst, MaxAbsDiff(ref[s][p], f32_ref[s][p]));
    }
    EXPECT_GT(worst, 0.0);  // the cache really is rounded
    EXPECT_LT(worst, 2e-2);
  }
}

}  // namespace
}  // namespace rvec
