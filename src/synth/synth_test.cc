// Synthetic models: preset shapes and parameter counts, config/tokenizer files, determinism across
// thread counts, sharding, value scales and perturbed copies.
#include "synth/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/fs.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/io_test_util.h"
#include "ops/convert.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using testing::ReadBytes;
using testing::ScratchDir;

SynthPreset Resolved(const std::string& name) {
  StatusOr<SynthPreset> p = GetSynthPreset(name);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  SynthPreset preset = *p;
  if (preset.vocab_size == 0) preset.vocab_size = (SynthTokenizer().size + 63) / 64 * 64;
  return preset;
}

std::map<std::string, std::vector<int64_t>> Shapes(const SynthPreset& p) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const SynthTensor& t : SynthTensors(p, DType::kBF16)) {
    EXPECT_TRUE(m.emplace(t.spec.name, t.spec.shape).second) << "duplicate " << t.spec.name;
    EXPECT_EQ(t.spec.dtype, DType::kBF16);
  }
  return m;
}

// Parameter count from the architecture, written independently of SynthTensors.
uint64_t ExpectedParams(const SynthPreset& p) {
  const uint64_t h = p.hidden_size, q = p.num_attention_heads * p.head_dim,
                 kv = p.num_key_value_heads * p.head_dim, im = p.intermediate_size,
                 v = p.vocab_size;
  uint64_t layer = h * q + 2 * h * kv + q * h + 3 * h * im + 2 * h;
  if (p.qkv_bias) layer += q + 2 * kv;
  if (p.qk_norm) layer += 2 * p.head_dim;
  if (p.olmo2_norms) layer += q + kv;  // q_norm, k_norm; post_feedforward replaces input_layernorm
  return v * h * (p.tie_word_embeddings ? 1 : 2) + p.num_hidden_layers * layer + h;
}

TEST(SynthPresetTest, RealQwenParameterCounts) {
  // The published sizes of Qwen2.5-0.5B and Qwen2.5-1.5B (safetensors parameter totals).
  EXPECT_EQ(SynthParameterCount(Resolved("qwen2.5-0.5b")), 494'032'768u);
  EXPECT_EQ(SynthParameterCount(Resolved("qwen2.5-1.5b")), 1'543'714'304u);
  const auto s = Shapes(Resolved("qwen2.5-1.5b"));
  EXPECT_EQ(s.size(), 1u + 28 * 12 + 1);
  EXPECT_EQ(s.at("model.embed_tokens.weight"), (std::vector<int64_t>{151936, 1536}));
  EXPECT_EQ(s.at("model.layers.27.self_attn.k_proj.weight"), (std::vector<int64_t>{256, 1536}));
  EXPECT_EQ(s.at("model.layers.27.self_attn.k_proj.bias"), (std::vector<int64_t>{256}));
  EXPECT_EQ(s.at("model.layers.0.mlp.down_proj.weight"), (std::vector<int64_t>{1536, 8960}));
  EXPECT_EQ(s.count("lm_head.weight"), 0u);  // tied
}

TEST(SynthPresetTest, EveryPresetHasTransformersLayout) {
  ASSERT_EQ(SynthPresetNames(),
            (std::vector<std::string>{"tiny-qwen2", "tiny-llama", "tiny-qwen3", "tiny-olmo2",
                                      "qwen2.5-0.5b", "qwen2.5-1.5b"}));
  for (const std::string& name : SynthPresetNames()) {
    SCOPED_TRACE(name);
    const SynthPreset p = Resolved(name);
    const auto s = Shapes(p);
    EXPECT_EQ(SynthParameterCount(p), ExpectedParams(p));
    const int64_t h = p.hidden_size, q = p.num_attention_heads * p.head_dim,
                  kv = p.num_key_value_heads * p.head_dim;
    EXPECT_EQ(s.at("model.embed_tokens.weight"), (std::vector<int64_t>{p.vocab_size, h}));
    EXPECT_EQ(s.at("model.norm.weight"), (std::vector<int64_t>{h}));
    EXPECT_EQ(s.count("lm_head.weight"), p.tie_word_embeddings ? 0u : 1u);
    for (int64_t l = 0; l < p.num_hidden_layers; ++l) {
      const std::string pre = "model.layers." + std::to_string(l) + ".";
      EXPECT_EQ(s.at(pre + "self_attn.q_proj.weight"), (std::vector<int64_t>{q, h}));
      EXPECT_EQ(s.at(pre + "self_attn.k_proj.weight"), (std::vector<int64_t>{kv, h}));
      EXPECT_EQ(s.at(pre + "self_attn.v_proj.weight"), (std::vector<int64_t>{kv, h}));
      EXPECT_EQ(s.at(pre + "self_attn.o_proj.weight"), (std::vector<int64_t>{h, q}));
      EXPECT_EQ(s.count(pre + "self_attn.q_proj.bias"), p.qkv_bias ? 1u : 0u);
      EXPECT_EQ(s.count(pre + "self_attn.o_proj.bias"), 0u);
      if (p.olmo2_norms) {  // over the whole projections
        EXPECT_EQ(s.at(pre + "self_attn.q_norm.weight"), (std::vector<int64_t>{q}));
        EXPECT_EQ(s.at(pre + "self_attn.k_norm.weight"), (std::vector<int64_t>{kv}));
      } else {
        EXPECT_EQ(s.count(pre + "self_attn.q_norm.weight"), p.qk_norm ? 1u : 0u);
      }
      EXPECT_EQ(s.at(pre + "mlp.gate_proj.weight"), (std::vector<int64_t>{p.intermediate_size, h}));
      EXPECT_EQ(s.at(pre + "mlp.up_proj.weight"), (std::vector<int64_t>{p.intermediate_size, h}));
      EXPECT_EQ(s.at(pre + "mlp.down_proj.weight"), (std::vector<int64_t>{h, p.intermediate_size}));
      EXPECT_EQ(s.count(pre + "input_layernorm.weight"), p.olmo2_norms ? 0u : 1u);
      EXPECT_EQ(s.at(pre + "post_attention_layernorm.weight"), (std::vector<int64_t>{h}));
      EXPECT_EQ(s.count(pre + "post_feedforward_layernorm.weight"), p.olmo2_norms ? 1u : 0u);
    }
  }
  EXPECT_EQ(Resolved("tiny-qwen2").architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(Resolved("tiny-llama").architecture, "LlamaForCausalLM");
  EXPECT_FALSE(Resolved("tiny-llama").qkv_bias);
  EXPECT_EQ(Resolved("tiny-qwen3").head_dim, 32);  // explicit, not hidden / heads = 16
  EXPECT_EQ(Shapes(Resolved("tiny-qwen3")).at("model.layers.1.self_attn.k_norm.weight"),
            (std::vector<int64_t>{32}));
  EXPECT_FALSE(GetSynthPreset("gpt-5").ok());
}

TEST(SynthPresetTest, ConfigJsonParsesAsHfConfig) {
  for (const std::string& name : SynthPresetNames()) {
    SCOPED_TRACE(name);
    const SynthPreset p = Resolved(name);
    const std::string text = SynthConfigJson(p, DType::kBF16, 7, 9);
    StatusOr<HfConfig> c = ParseHfConfig(text, name);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->Architecture(), p.architecture);
    EXPECT_EQ(c->model_type, p.model_type);
    EXPECT_EQ(c->hidden_size, p.hidden_size);
    EXPECT_EQ(c->num_hidden_layers, p.num_hidden_layers);
    EXPECT_EQ(c->num_attention_heads, p.num_attention_heads);
    EXPECT_EQ(c->num_key_value_heads, p.num_key_value_heads);
    EXPECT_EQ(c->head_dim, p.head_dim);
    EXPECT_EQ(c->intermediate_size, p.intermediate_size);
    EXPECT_EQ(c->vocab_size, p.vocab_size);
    EXPECT_EQ(c->tie_word_embeddings, p.tie_word_embeddings);
    EXPECT_EQ(c->rope_theta, p.rope_theta);
    EXPECT_EQ(c->rms_norm_eps, p.rms_norm_eps);
    EXPECT_EQ(c->torch_dtype, "bfloat16");
    const nlohmann::json j = nlohmann::json::parse(text);
    EXPECT_EQ(j["bos_token_id"], 7);
    EXPECT_EQ(j["eos_token_id"], 9);
    EXPECT_EQ(j["hidden_act"], "silu");
    EXPECT_TRUE(j.contains("transformers_version"));
    const bool qwen = p.model_type == "qwen2" || p.model_type == "qwen3";  // sliding-window fields
    EXPECT_EQ(j.contains("sliding_window"), qwen);
    EXPECT_EQ(j.contains("use_sliding_window"), qwen);
    EXPECT_EQ(j.contains("attention_bias"), p.model_type != "qwen2");
  }
  const nlohmann::json q =
      nlohmann::json::parse(SynthConfigJson(Resolved("qwen2.5-0.5b"), DType::kF16, 151643, 151643));
  EXPECT_EQ(q["torch_dtype"], "float16");
  EXPECT_EQ(q["max_window_layers"], 24);
  EXPECT_EQ(q["sliding_window"], 32768);
  EXPECT_EQ(q["use_sliding_window"], false);
  EXPECT_EQ(q["rope_theta"], 1000000.0);
}

TEST(SynthTokenizerTest, TokenizerJsonHasQwen2Structure) {
  const SynthTokenizerFiles& t = SynthTokenizer();
  const nlohmann::json j = nlohmann::json::parse(t.tokenizer_json, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_EQ(j["normalizer"]["type"], "NFC");
  const auto& pre = j["pre_tokenizer"];
  EXPECT_EQ(pre["type"], "Sequence");
  ASSERT_EQ(pre["pretokenizers"].size(), 2u);
  EXPECT_EQ(pre["pretokenizers"][0]["type"], "Split");
  EXPECT_EQ(pre["pretokenizers"][0]["behavior"], "Isolated");
  EXPECT_NE(pre["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().find("\\p{L}+"),
            std::string::npos);
  EXPECT_EQ(pre["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(pre["pretokenizers"][1]["use_regex"], false);
  EXPECT_EQ(j["decoder"]["type"], "ByteLevel");
  const auto& model = j["model"];
  EXPECT_EQ(model["type"], "BPE");
  const auto& vocab = model["vocab"];
  const auto& merges = model["merges"];
  // 256 byte tokens (GPT-2 byte-to-unicode order), then one token per merge.
  ASSERT_EQ(vocab.size(), 256u + merges.size());
  EXPECT_GE(merges.size(), 100u);
  EXPECT_EQ(vocab["!"], 0);
  EXPECT_EQ(vocab["\xC4\xA0"], 220);  // "Ġ", the space byte
  EXPECT_EQ(vocab["\xC4\x80"], 188);  // "Ā", byte 0
  std::set<int64_t> ids;
  for (const auto& [tok, id] : vocab.items()) ids.insert(id.get<int64_t>());
  EXPECT_EQ(ids.size(), vocab.size());
  EXPECT_EQ(*ids.rbegin(), static_cast<int64_t>(vocab.size()) - 1);
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string m = merges[i];
    const size_t space = m.find(' ');
    ASSERT_NE(space, std::string::npos) << m;
    const std::string a = m.substr(0, space), b = m.substr(space + 1);
    ASSERT_TRUE(vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) << m;
    EXPECT_EQ(vocab[a + b], static_cast<int64_t>(256 + i)) << m;
  }
  EXPECT_TRUE(vocab.contains("\xC4\xA0the"));  // " the" is learned from the built-in text
  const auto& added = j["added_tokens"];
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added[0]["content"], "<|endoftext|>");
  EXPECT_EQ(added[0]["id"], t.endoftext_id);
  EXPECT_EQ(added[1]["content"], "<|im_start|>");
  EXPECT_EQ(added[2]["content"], "<|im_end|>");
  EXPECT_EQ(added[2]["id"], t.im_end_id);
  EXPECT_EQ(added[2]["special"], true);
  EXPECT_EQ(t.size, static_cast<int64_t>(vocab.size()) + 3);

  const nlohmann::json c = nlohmann::json::parse(t.tokenizer_config_json, nullptr, false);
  ASSERT_FALSE(c.is_discarded());
  EXPECT_EQ(c["eos_token"], "<|im_end|>");
  EXPECT_EQ(c["pad_token"], "<|endoftext|>");
  EXPECT_EQ(c["tokenizer_class"], "Qwen2Tokenizer");
  const std::string tmpl = c["chat_template"];
  EXPECT_NE(tmpl.find("{%- for message in messages %}"), std::string::npos);
  EXPECT_NE(tmpl.find("<|im_start|>"), std::string::npos);
  EXPECT_NE(tmpl.find("add_generation_prompt"), std::string::npos);
  EXPECT_EQ(c["added_tokens_decoder"][std::to_string(t.im_end_id)]["content"], "<|im_end|>");
  // Tiny presets fit the vocabulary to the tokenizer, with a little padding as Qwen has.
  const SynthPreset tiny = Resolved("tiny-qwen2");
  EXPECT_GE(tiny.vocab_size, t.size);
  EXPECT_LT(tiny.vocab_size, t.size + 64);
}

TEST(SynthNormalsTest, ChunkingDoesNotChangeValues) {
  std::vector<float> whole(1001);
  SynthNormals(5, "w", 0, whole.data(), whole.size());
  std::vector<float> parts(1001);
  const size_t cuts[] = {0, 1, 2, 7, 500, 999, 1001};
  for (size_t k = 0; k + 1 < std::size(cuts); ++k) {
    SynthNormals(5, "w", cuts[k], parts.data() + cuts[k], cuts[k + 1] - cuts[k]);
  }
  EXPECT_EQ(whole, parts);
  std::vector<float> other(1001);
  SynthNormals(6, "w", 0, other.data(), other.size());
  EXPECT_NE(whole, other);
  SynthNormals(5, "v", 0, other.data(), other.size());
  EXPECT_NE(whole, other);
}

TEST(SynthNormalsTest, StandardNormalMoments) {
  const size_t n = 1 << 20;
  std::vector<float> z(n);
  SynthNormals(1, "moments", 0, z.data(), n);
  double m1 = 0, m2 = 0, m4 = 0, beyond3 = 0;
  for (float x : z) {
    m1 += x;
    m2 += double{x} * x;
    m4 += double{x} * x * x * x;
    beyond3 += std::fabs(x) > 3.0f;
  }
  m1 /= n;
  m2 /= n;
  m4 /= n;
  EXPECT_NEAR(m1, 0.0, 0.005);
  EXPECT_NEAR(m2, 1.0, 0.01);
  EXPECT_NEAR(m4 / (m2 * m2), 3.0, 0.05);       // Gaussian kurtosis
  EXPECT_NEAR(beyond3 / n, 0.0026998, 0.0004);  // two-sided tail beyond 3 sigma
}

TEST(ShardBudgetTest, ExactShardCounts) {
  std::vector<TensorSpec> specs;
  for (int i = 0; i < 10; ++i) {
    TensorSpec t;
    t.name = fmt::format("t{}", i);  // (operator+ here trips GCC 12's -Wrestrict)
    t.shape = {100 + i};
    specs.push_back(t);
  }
  EXPECT_EQ(*ShardBudgetFor(specs, 1), 0u);
  for (size_t k = 2; k <= 10; ++k) {
    StatusOr<uint64_t> b = ShardBudgetFor(specs, k);
    ASSERT_TRUE(b.ok()) << k;
    // Simulate CheckpointWriter's greedy split.
    size_t shards = 1;
    uint64_t cur = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (i > 0 && cur + specs[i].NumBytes() > *b) {
        ++shards;
        cur = 0;
      }
      cur += specs[i].NumBytes();
    }
    EXPECT_EQ(shards, k);
  }
  EXPECT_FALSE(ShardBudgetFor(specs, 11).ok());
  EXPECT_FALSE(ShardBudgetFor(specs, 0).ok());
}

std::map<std::string, std::string> DirFiles(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    files[e.path().filename().string()] = ReadBytes(e.path());
  }
  return files;
}

SynthOptions TinyOptions(const fs::path& out, const std::string& preset = "tiny-qwen2") {
  SynthOptions o;
  o.preset = preset;
  o.seed = 42;
  o.out = out;
  return o;
}

TEST(WriteSyntheticModelTest, IdenticalBytesForAnyThreadCount) {
  ScratchDir dir;
  for (const std::string preset : {"tiny-qwen2", "tiny-llama", "tiny-qwen3", "tiny-olmo2"}) {
    SCOPED_TRACE(preset);
    SynthOptions one = TinyOptions(dir / (preset + "-1"), preset);
    one.threads = 1;
    SynthOptions two = TinyOptions(dir / (preset + "-2"), preset);
    two.threads = 2;
    ASSERT_TRUE(WriteSyntheticModel(one, nullptr).ok());
    ASSERT_TRUE(WriteSyntheticModel(two, nullptr).ok());
    const auto a = DirFiles(one.out);
    EXPECT_EQ(a, DirFiles(two.out));
    std::set<std::string> names;
    for (const auto& [name, bytes] : a) names.insert(name);
    EXPECT_EQ(names,
              (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                     "tokenizer.json", "tokenizer_config.json"}));
  }
  SynthOptions other = TinyOptions(dir / "seed43");
  other.seed = 43;
  ASSERT_TRUE(WriteSyntheticModel(other, nullptr).ok());
  EXPECT_NE(ReadBytes(dir / "seed43" / "model.safetensors"),
            ReadBytes(dir / "tiny-qwen2-1" / "model.safetensors"));
}

TEST(WriteSyntheticModelTest, OpensAsCheckpointWithRealisticScales) {
  ScratchDir dir;
  SynthOptions o = TinyOptions(dir / "m", "tiny-llama");
  o.dtype = DType::kF32;
  StatusOr<SynthResult> r = WriteSyntheticModel(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  StatusOr<Checkpoint> ck = Checkpoint::Open(o.out);
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  ASSERT_TRUE(ck->config().has_value());
  EXPECT_EQ(ck->config()->Architecture(), "LlamaForCausalLM");
  EXPECT_EQ(ck->TotalParameters(), r->parameters);
  EXPECT_EQ(ck->TotalParameters(), SynthParameterCount(r->preset));
  EXPECT_EQ(r->preset.vocab_size, ck->config()->vocab_size);
  EXPECT_GE(r->preset.vocab_size, r->tokenizer_size);
  const std::vector<SynthTensor> expected = SynthTensors(r->preset, DType::kF32);
  ASSERT_EQ(ck->TensorNames().size(), expected.size());
  for (const SynthTensor& t : expected) {
    StatusOr<TensorView> v = ck->View(t.spec.name);
    ASSERT_TRUE(v.ok()) << t.spec.name;
    EXPECT_EQ(v->dtype(), DType::kF32);
    EXPECT_EQ(v->shape(), t.spec.shape);
    std::vector<float> x(v->NumElements());
    ConvertToF32(DType::kF32, v->data, x.data(), x.size());
    double mean = 0, var = 0;
    for (float f : x) mean += f;
    mean /= x.size();
    for (float f : x) var += (f - mean) * (f - mean);
    const double sd = std::sqrt(var / x.size());
    if (t.init == SynthInit::kNorm) {
      EXPECT_NEAR(mean, 1.0, 0.01) << t.spec.name;
      EXPECT_NEAR(sd, 0.02, 0.01) << t.spec.name;
    } else if (t.spec.name.find("embed") != std::string::npos ||
               t.spec.name.find("lm_head") != std::string::npos) {
      EXPECT_NEAR(mean, 0.0, 0.001) << t.spec.name;
      EXPECT_NEAR(sd, 0.02, 0.0005) << t.spec.name;
    }
  }
  const nlohmann::json gen =
      nlohmann::json::parse(ReadBytes(o.out / "generation_config.json"), nullptr, false);
  ASSERT_FALSE(gen.is_discarded());
  EXPECT_EQ(gen["eos_token_id"],
            (nlohmann::json{SynthTokenizer().im_end_id, SynthTokenizer().endoftext_id}));
  const nlohmann::json cfg = nlohmann::json::parse(ReadBytes(o.out / "config.json"));
  EXPECT_EQ(cfg["eos_token_id"], SynthTokenizer().im_end_id);
  EXPECT_EQ(cfg["torch_dtype"], "float32");
}

TEST(WriteSyntheticModelTest, ShardedMatchesSingleFile) {
  ScratchDir dir;
  SynthOptions single = TinyOptions(dir / "single");
  ASSERT_TRUE(WriteSyntheticModel(single, nullptr).ok());
  SynthOptions sharded = TinyOptions(dir / "sharded");
  sharded.shards = 3;
  StatusOr<SynthResult> r = WriteSyntheticModel(sharded, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shard_names, (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                                      "model-00002-of-00003.safetensors",
                                                      "model-00003-of-00003.safetensors"}));
  EXPECT_TRUE(fs::exists(sharded.out / "model.safetensors.index.json"));
  StatusOr<Checkpoint> a = Checkpoint::Open(single.out);
  StatusOr<Checkpoint> b = Checkpoint::Open(sharded.out);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->num_shards(), 3u);
  ASSERT_EQ(a->TensorNames(), b->TensorNames());
  for (const std::string& name : a->TensorNames()) {
    const TensorView va = *a->View(name), vb = *b->View(name);
    ASSERT_EQ(va.NumBytes(), vb.NumBytes());
    EXPECT_EQ(std::memcmp(va.data, vb.data, va.NumBytes()), 0) << name;
  }
  SynthOptions too_many = TinyOptions(dir / "too-many");
  too_many.shards = 1000;
  EXPECT_EQ(WriteSyntheticModel(too_many, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(too_many.out));
}

TEST(WriteSyntheticModelTest, RefusesToOverwriteWithoutForce) {
  ScratchDir dir;
  SynthOptions o = TinyOptions(dir / "m");
  ASSERT_TRUE(WriteSyntheticModel(o, nullptr).ok());
  const std::string before = ReadBytes(o.out / "model.safetensors");
  o.seed = 1;
  EXPECT_EQ(WriteSyntheticModel(o, nullptr).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadBytes(o.out / "model.safetensors"), before);
  o.force = true;
  ASSERT_TRUE(WriteSyntheticModel(o, nullptr).ok());
  EXPECT_NE(ReadBytes(o.out / "model.safetensors"), before);
}

TEST(WriteSyntheticModelTest, BadOptions) {
  ScratchDir dir;
  SynthOptions o = TinyOptions(dir / "m");
  o.preset = "nope";
  EXPECT_EQ(WriteSyntheticModel(o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = TinyOptions(dir / "m");
  o.dtype = DType::kI32;
  EXPECT_EQ(WriteSyntheticModel(o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = TinyOptions(dir / "m");
  o.tokenizer_dir = dir / "missing";
  EXPECT_EQ(WriteSyntheticModel(o, nullptr).status().code(), StatusCode::kNotFound);
  // A tokenizer larger than a fixed-vocabulary preset is refused before anything is written.
  fs::create_directories(dir / "big-tok");
  {
    nlohmann::json tok;
    tok["model"]["vocab"] = {{"a", 0}};
    tok["added_tokens"] = {{{"id", 200000}, {"content", "<|x|>"}}};
    ASSERT_TRUE(WriteFileAtomic(dir / "big-tok" / "tokenizer.json", tok.dump()).ok());
  }
  o = TinyOptions(dir / "big", "qwen2.5-0.5b");
  o.tokenizer_dir = dir / "big-tok";
  const Status s = WriteSyntheticModel(o, nullptr).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("200001 tokens"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(o.out));
  EXPECT_TRUE(fs::is_empty(dir.path() / "big-tok") == false);
}

TEST(WriteSyntheticModelTest, CopiesARealTokenizer) {
  const fs::path tok_dir = TestDataDir(RVEC_TEST_DATA_DEFAULT) / "qwen-tokenizer" / "qwen2.5";
  ASSERT_TRUE(DataFileExists(tok_dir / "tokenizer.json"))
      << "test data missing: " << tok_dir << "/tokenizer.json[.gz] (set RVEC_TEST_DATA)";
  ScratchDir dir;
  SynthOptions o = TinyOptions(dir / "m");
  o.tokenizer_dir = tok_dir;
  StatusOr<SynthResult> r = WriteSyntheticModel(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tokenizer_size, 151665);
  EXPECT_EQ(r->preset.vocab_size, 151680);  // fitted: multiple of 64
  // Written out uncompressed, byte for byte the source (which testdata/ keeps as .gz).
  EXPECT_EQ(ReadBytes(o.out / "tokenizer.json"), *ReadDataFile(tok_dir / "tokenizer.json"));
  EXPECT_EQ(ReadBytes(o.out / "tokenizer_config.json"),
            ReadBytes(tok_dir / "tokenizer_config.json"));
  const nlohmann::json cfg = nlohmann::json::parse(ReadBytes(o.out / "config.json"));
  EXPECT_EQ(cfg["bos_token_id"], 151643);
  EXPECT_EQ(cfg["eos_token_id"], 151645);  // <|im_end|>, the instruct tokenizer's eos
  EXPECT_EQ(cfg["vocab_size"], 151680);
}

TEST(WritePerturbedModelTest, PerturbsSelectedTensorsOnly) {
  ScratchDir dir;
  SynthOptions base = TinyOptions(dir / "base", "tiny-qwen2");
  base.dtype = DType::kF32;
  ASSERT_TRUE(WriteSyntheticModel(base, nullptr).ok());
  PerturbOptions p;
  p.base = base.out;
  p.out = dir / "pert";
  p.seed = 3;
  p.stddev = 0.01;
  p.only = {"mlp."};
  p.threads = 2;
  StatusOr<PerturbResult> r = WritePerturbedModel(p, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tensors_perturbed, 6u);  // 3 MLP matrices x 2 layers
  EXPECT_EQ(r->tensors_copied, 26u - 6u);
  for (const char* side :
       {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_EQ(ReadBytes(p.out / side), ReadBytes(base.out / side)) << side;
  }
  StatusOr<Checkpoint> a = Checkpoint::Open(base.out);
  StatusOr<Checkpoint> b = Checkpoint::Open(p.out);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->TensorNames(), b->TensorNames());
  for (const std::string& name : a->TensorNames()) {
    const TensorView va = *a->View(name), vb = *b->View(name);
    ASSERT_EQ(va.shape(), vb.shape());
    ASSERT_EQ(va.dtype(), vb.dtype());
    const bool same = std::memcmp(va.data, vb.data, va.NumBytes()) == 0;
    if (name.find("mlp.") == std::string::npos) {
      EXPECT_TRUE(same) << name;
      continue;
    }
    EXPECT_FALSE(same) << name;
    // The difference is the seeded noise: exactly, up to the one f32 rounding of the sum.
    const size_t n = va.NumElements();
    std::vector<float> x(n), y(n), z(n);
    ConvertToF32(DType::kF32, va.data, x.data(), n);
    ConvertToF32(DType::kF32, vb.data, y.data(), n);
    SynthNormals(3 ^ 0x7065727475726221ULL, name, 0, z.data(), n);
    double var = 0;
    for (size_t i = 0; i < n; ++i) {
      const float delta = 0.01f * z[i];
      ASSERT_EQ(y[i], x[i] + delta) << name << " " << i;
      var += double(y[i] - x[i]) * (y[i] - x[i]);
    }
    EXPECT_NEAR(std::sqrt(var / n), 0.01, 0.001) << name;
  }
  // Deterministic: the same options give the same bytes.
  p.out = dir / "pert2";
  p.threads = 1;
  ASSERT_TRUE(WritePerturbedModel(p, nullptr).ok());
  EXPECT_EQ(DirFiles(dir / "pert"), DirFiles(dir / "pert2"));
  p.out = dir / "pert3";
  p.only = {"no-such-tensor"};
  EXPECT_EQ(WritePerturbedModel(p, nullptr).status().code(), StatusCode::kInvalidArgument);
  p.only = {};
  p.stddev = -1;
  EXPECT_EQ(WritePerturbedModel(p, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(WritePerturbedModelTest, KeepsDtypeAndShardCount) {
  ScratchDir dir;
  SynthOptions base = TinyOptions(dir / "base", "tiny-qwen3");
  base.shards = 2;
  ASSERT_TRUE(WriteSyntheticModel(base, nullptr).ok());
  PerturbOptions p;
  p.base = base.out;
  p.out = dir / "pert";
  p.seed = 9;
  p.stddev = 0.001;
  ASSERT_TRUE(WritePerturbedModel(p, nullptr).ok());
  StatusOr<Checkpoint> b = Checkpoint::Open(p.out);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->num_shards(), 2u);
  for (const std::string& name : b->TensorNames()) {
    EXPECT_EQ(b->Info(name)->dtype, DType::kBF16) << name;
  }
  // Perturbing with stddev 0 reproduces the base exactly (bf16 -> f32 -> bf16 is lossless).
  p.out = dir / "zero";
  p.stddev = 0.0;
  ASSERT_TRUE(WritePerturbedModel(p, nullptr).ok());
  EXPECT_EQ(DirFiles(dir / "zero"), DirFiles(base.out));
}

}  // namespace
}  // namespace rvec
