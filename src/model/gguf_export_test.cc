// Tests of the Hugging Face -> GGUF mapping: tensor names per architecture, Llama's q/k row
// order, llama3 rope factors, dtypes, pre-tokenizer detection and the tokenizer metadata.
#include "model/gguf_export.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "base/dtype.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "model/model_test_util.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using testing_util::ScratchRoot;
using testing_util::SynthModel;

ModelConfig ConfigOf(const fs::path& dir) {
  auto ckpt = Checkpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok());
  auto c = ModelConfig::FromHf(*ckpt->config(), dir.string());
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

StatusOr<GgufFile> Export(const fs::path& model, const std::string& name, GgmlType dtype,
                          GgufExportReport* report = nullptr) {
  GgufExportOptions o;
  o.dtype = dtype;
  o.force = true;
  const fs::path out = ScratchRoot() / name;
  ASSIGN_OR_RETURN(GgufExportReport r, ExportGguf(model, out, o, nullptr));
  if (report != nullptr) *report = r;
  return GgufFile::Open(out);
}

TEST(GgufExportTest, LlamaRopeRowsInterleaveTheTwoHalves) {
  std::vector<uint64_t> rows;
  for (uint64_t r = 0; r < 8; ++r) rows.push_back(LlamaRopeSourceRow(r, 8));
  EXPECT_EQ(rows, (std::vector<uint64_t>{0, 4, 1, 5, 2, 6, 3, 7}));
}

TEST(GgufExportTest, NamesTensorsAsLlamaCppLoadsThem) {
  ModelConfig qwen2 = ConfigOf(SynthModel("tiny-qwen2", DType::kBF16));
  ModelConfig olmo2 = ConfigOf(SynthModel("tiny-olmo2", DType::kBF16));
  auto name = [](const ModelConfig& c, std::string_view hf) {
    auto r = GgufTensorName(c, hf);
    return r.ok() ? *r : "error: " + r.status().message();
  };
  EXPECT_EQ(name(qwen2, "model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(name(qwen2, "lm_head.weight"), "output.weight");
  EXPECT_EQ(name(qwen2, "model.layers.11.self_attn.k_proj.bias"), "blk.11.attn_k.bias");
  EXPECT_EQ(name(qwen2, "model.layers.0.post_attention_layernorm.weight"), "blk.0.ffn_norm.weight");
  EXPECT_EQ(name(olmo2, "model.layers.0.post_attention_layernorm.weight"),
            "blk.0.post_attention_norm.weight");
  EXPECT_EQ(name(olmo2, "model.layers.3.post_feedforward_layernorm.weight"),
            "blk.3.post_ffw_norm.weight");
  EXPECT_EQ(name(olmo2, "model.layers.1.self_attn.q_norm.weight"), "blk.1.attn_q_norm.weight");
  EXPECT_EQ(name(qwen2, "model.layers.0.self_attn.rotary_emb.inv_freq"), "");
  // Tensors llama.cpp's graph would not load are errors naming the tensor.
  EXPECT_EQ(name(qwen2, "model.layers.0.self_attn.o_proj.bias"),
            "error: tensor model.layers.0.self_attn.o_proj.bias: llama.cpp's qwen2 graph has no "
            "such bias");
  EXPECT_NE(name(qwen2, "model.vision_tower.weight").find("model.vision_tower.weight"),
            std::string::npos);
}

TEST(GgufExportTest, LlamaExportPermutesQkAndKeepsEveryValue) {
  const fs::path dir = SynthModel("tiny-llama", DType::kBF16);
  const ModelConfig c = ConfigOf(dir);
  GgufExportReport report;
  auto g = Export(dir, "llama-f32.gguf", GgmlType::kF32, &report);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(report.architecture, "llama");
  EXPECT_EQ(g->Find("general.architecture")->s, "llama");
  EXPECT_EQ(g->Find("llama.block_count")->u, c.layers);
  EXPECT_EQ(g->Find("llama.attention.head_count_kv")->u, c.kv_heads);
  EXPECT_EQ(g->Find("llama.rope.dimension_count")->u, c.head_dim);
  EXPECT_EQ(g->FindTensor("rope_freqs.weight"), nullptr);  // no rope_scaling
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok());
  for (const auto& [hf, gg, heads] :
       {std::tuple{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", c.heads},
        std::tuple{"model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", c.kv_heads},
        std::tuple{"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", size_t{0}},
        std::tuple{"model.embed_tokens.weight", "token_embd.weight", size_t{0}}}) {
    auto view = ckpt->View(hf);
    ASSERT_TRUE(view.ok());
    const GgufTensorInfo* t = g->FindTensor(gg);
    ASSERT_NE(t, nullptr) << gg;
    const uint64_t rows = view->shape()[0], cols = view->shape()[1];
    EXPECT_EQ(t->dims, (std::vector<uint64_t>{cols, rows}));
    const std::vector<float> got = g->TensorAsF32(*t);
    for (uint64_t r = 0; r < rows; ++r) {
      const uint64_t src =
          heads == 0 ? r
                     : r / c.head_dim * c.head_dim + LlamaRopeSourceRow(r % c.head_dim, c.head_dim);
      for (uint64_t k = 0; k < cols; ++k) {
        ASSERT_EQ(got[r * cols + k], LoadAsF32(DType::kBF16, view->data, src * cols + k))
            << gg << " row " << r;
      }
    }
  }
}

TEST(GgufExportTest, HalfDtypesRoundOnceAndKeepOneDimensionalTensorsF32) {
  const fs::path dir = SynthModel("tiny-qwen3", DType::kF32);
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok());
  for (GgmlType type : {GgmlType::kF16, GgmlType::kBF16}) {
    auto g = Export(dir, "qwen3.gguf", type);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->Find("general.file_type")->u, type == GgmlType::kF16 ? 1u : 32u);
    EXPECT_EQ(g->Find("qwen3.attention.key_length")->u, 32u);
    EXPECT_EQ(g->FindTensor("output.weight"), nullptr);  // tied: llama.cpp reuses token_embd
    for (const GgufTensorInfo& t : g->tensors()) {
      EXPECT_EQ(t.type, t.dims.size() == 1 ? GgmlType::kF32 : type) << t.name;
    }
    auto view = ckpt->View("model.layers.0.mlp.down_proj.weight");
    ASSERT_TRUE(view.ok());
    const GgufTensorInfo* t = g->FindTensor("blk.0.ffn_down.weight");
    ASSERT_NE(t, nullptr);
    const uint8_t* raw = g->TensorData(*t);
    for (uint64_t k = 0; k < view->NumElements(); ++k) {
      const float x = LoadAsF32(DType::kF32, view->data, k);
      uint16_t h;
      std::memcpy(&h, raw + 2 * k, 2);
      ASSERT_EQ(h, type == GgmlType::kF16 ? F32ToF16(x) : F32ToBF16(x)) << k;
    }
    auto norm = ckpt->View("model.layers.0.self_attn.q_norm.weight");
    ASSERT_TRUE(norm.ok());
    const std::vector<float> got = g->TensorAsF32(*g->FindTensor("blk.0.attn_q_norm.weight"));
    for (uint64_t k = 0; k < got.size(); ++k)
      EXPECT_EQ(got[k], LoadAsF32(DType::kF32, norm->data, k));
  }
}

TEST(GgufExportTest, Llama3RopeScalingBecomesRopeFreqs) {
  const fs::path dir = SynthModel("tiny-llama", DType::kBF16, 7, "-llama3", [](nlohmann::json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 64}};
  });
  const ModelConfig c = ConfigOf(dir);
  auto g = Export(dir, "llama3.gguf", GgmlType::kF32);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const GgufTensorInfo* t = g->FindTensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  const std::vector<float> factors = g->TensorAsF32(*t);
  ASSERT_EQ(factors.size(), c.head_dim / 2);
  const double theta = g->Find("llama.rope.freq_base")->f;
  // llama.cpp divides each unscaled frequency by its factor; that must give the engine's.
  bool scaled = false;
  for (size_t i = 0; i < factors.size(); ++i) {
    const double base = 1.0 / std::pow(theta, 2.0 * i / c.head_dim);
    EXPECT_NEAR(base / factors[i], c.inv_freq[i], 1e-6 * c.inv_freq[i]) << i;
    scaled = scaled || factors[i] != 1.0f;
  }
  EXPECT_TRUE(scaled);
  EXPECT_FLOAT_EQ(factors.back(), 8.0f);  // the lowest frequency is divided by the full factor
}

TEST(GgufExportTest, TokenizerMetadataFollowsTokenizerJson) {
  const fs::path dir = SynthModel("tiny-qwen2", DType::kBF16);
  const ModelConfig c = ConfigOf(dir);
  auto g = Export(dir, "qwen2.gguf", GgmlType::kF32);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto tok_text = ReadFileToString(dir / "tokenizer.json");
  ASSERT_TRUE(tok_text.ok());
  const nlohmann::json tok = nlohmann::json::parse(*tok_text);
  const auto& tokens = g->Find("tokenizer.ggml.tokens")->array;
  const auto& types = g->Find("tokenizer.ggml.token_type")->array;
  ASSERT_EQ(tokens.size(), c.vocab);
  ASSERT_EQ(types.size(), c.vocab);
  for (const auto& [text, id] : tok["model"]["vocab"].items()) {
    ASSERT_EQ(tokens[id.get<size_t>()].s, text);
    ASSERT_EQ(types[id.get<size_t>()].i, 1);
  }
  size_t real = tok["model"]["vocab"].size();
  for (const auto& a : tok["added_tokens"]) {
    EXPECT_EQ(tokens[a["id"].get<size_t>()].s, a["content"].get<std::string>());
    EXPECT_EQ(types[a["id"].get<size_t>()].i, 3);  // control
    ++real;
  }
  ASSERT_LT(real, c.vocab);  // the synth vocabulary is padded to a multiple of 64
  EXPECT_EQ(tokens[real].s, "[PAD" + std::to_string(real) + "]");
  EXPECT_EQ(types[real].i, 5);  // unused
  const auto& merges = g->Find("tokenizer.ggml.merges")->array;
  ASSERT_EQ(merges.size(), tok["model"]["merges"].size());
  EXPECT_EQ(merges[0].s, tok["model"]["merges"][0].get<std::string>());
  EXPECT_EQ(g->Find("tokenizer.ggml.pre")->s, "qwen2");
  EXPECT_EQ(tokens[g->Find("tokenizer.ggml.eos_token_id")->u].s, "<|im_end|>");
  EXPECT_EQ(tokens[g->Find("tokenizer.ggml.padding_token_id")->u].s, "<|endoftext|>");
  EXPECT_FALSE(g->Find("tokenizer.ggml.add_bos_token")->b);
  EXPECT_NE(g->Find("tokenizer.chat_template")->s.find("<|im_start|>"), std::string::npos);
}

TEST(GgufExportTest, DetectsPreTokenizersAndNamesUnknownPatterns) {
  auto detect = [](const nlohmann::json& tok) {
    auto r = DetectGgufPreTokenizer(tok, "tok.json");
    return r.ok() ? *r : "error: " + r.status().message();
  };
  auto split = [](const std::string& regex) {
    return nlohmann::json{
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}},
            {{"type", "ByteLevel"}, {"use_regex", false}}}}}},
        {"model", {{"type", "BPE"}}}};
  };
  const std::string qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string cl100k =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  EXPECT_EQ(detect(split(qwen2)), "qwen2");
  nlohmann::json llama3 = split(cl100k);
  llama3["model"]["ignore_merges"] = true;
  EXPECT_EQ(detect(llama3), "llama-bpe");
  EXPECT_EQ(detect(split(cl100k)), "dbrx");
  EXPECT_EQ(detect({{"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", true}}}}), "gpt-2");
  const std::string odd = detect(split(R"(\p{L}+|\s+)"));
  EXPECT_NE(odd.find(R"(\\p{L}+|\\s+)"), std::string::npos) << odd;
  EXPECT_NE(odd.find("tok.json"), std::string::npos);
  EXPECT_NE(odd.find("--pre"), std::string::npos);

  // The real OLMo 2 tokenizer (tiktoken's cl100k pattern, Split with invert) is llama.cpp's dbrx.
  const fs::path dolma =
      TestDataDir(RVEC_TEST_DATA_DEFAULT) / "olmo2-tokenizer" / "allenai_dolma2.json";
  auto text = ReadDataFile(dolma);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(detect(nlohmann::json::parse(*text)), "dbrx");
}

TEST(GgufExportTest, RefusesToReplaceWithoutForce) {
  const fs::path dir = SynthModel("tiny-qwen2", DType::kBF16);
  const fs::path out = ScratchRoot() / "exists.gguf";
  GgufExportOptions o;
  ASSERT_TRUE(ExportGguf(dir, out, o, nullptr).ok());
  auto again = ExportGguf(dir, out, o, nullptr);
  EXPECT_FALSE(again.ok());
  o.force = true;
  EXPECT_TRUE(ExportGguf(dir, out, o, nullptr).ok());
}

}  // namespace
}  // namespace rvec
