// Extract/apply against scalar references on tiny synthetic models, the bit-exact identities,
// compatibility errors, tied embeddings, padded vocabularies and crash safety.
#include "merge/vector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "base/fs.h"
#include "merge/merge_test_util.h"
#include "merge/provenance.h"

namespace rvec::merge {
namespace {

using testing::Family;
using testing::MakeFamily;
using testing::ReadBytes;
using testing::ReadF32Scalar;
using testing::ScratchDir;
using testing::TensorNames;

std::string FileText(const std::filesystem::path& p) {
  auto s = ReadFileToString(p);
  return s.ok() ? *s : "";
}

class VectorTest : public ::testing::TestWithParam<DType> {};

TEST_P(VectorTest, ExtractIsTheExactDifference) {
  const DType dtype = GetParam();
  const auto dir = ScratchDir("extract");
  const Family f = MakeFamily(dir, "tiny-llama", dtype);
  ExtractOptions o;
  o.base = f.sft;
  o.tuned = f.grpo;
  o.out = dir / "vec";
  o.version = "test";
  auto r = Extract(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->changed_elements, 0u);
  const auto names = TensorNames(f.sft);
  EXPECT_EQ(TensorNames(o.out), names);
  for (const auto& name : names) {
    DType vdt;
    const auto v = ReadF32Scalar(o.out, name, &vdt);
    const auto a = ReadF32Scalar(f.grpo, name);
    const auto b = ReadF32Scalar(f.sft, name);
    ASSERT_EQ(vdt, DType::kF32);
    ASSERT_EQ(v.size(), a.size());
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(F32Bits(v[i]), F32Bits(a[i] - b[i])) << name << "[" << i << "]";
    }
  }
  auto ckpt = Checkpoint::Open(o.out);
  ASSERT_TRUE(ckpt.ok());
  const auto& md = ckpt->shard(0).metadata();
  EXPECT_EQ(md.at("format"), "pt");
  EXPECT_EQ(md.at("rvec.kind"), "reasoning_vector");
  EXPECT_EQ(md.at("rvec.version"), "test");
  EXPECT_EQ(md.at("rvec.base.path"), std::filesystem::absolute(f.sft).string());
  EXPECT_EQ(md.at("rvec.tuned.config_sha256"), ConfigSha256(*Checkpoint::Open(f.grpo)));
  EXPECT_EQ(md.at("rvec.tuned.header_sha256").size(), 64u);
  EXPECT_EQ(md.at("rvec.base.dtypes"), std::string(DTypeName(dtype)));
  EXPECT_EQ(md.at("rvec.architecture"), "LlamaForCausalLM");
  EXPECT_FALSE(md.at("rvec.created").empty());
  // A vector is not a model: no config.json, but a README.
  EXPECT_FALSE(std::filesystem::exists(o.out / "config.json"));
  EXPECT_TRUE(std::filesystem::exists(o.out / "README.md"));
}

TEST_P(VectorTest, ApplyMatchesScalarReference) {
  const DType dtype = GetParam();
  const auto dir = ScratchDir("apply");
  const Family f = MakeFamily(dir, "tiny-llama", dtype);
  for (auto [tuned, name] : {std::pair{f.grpo, "v1"}, std::pair{f.instruct, "v2"}}) {
    ExtractOptions e;
    e.base = name == std::string("v1") ? f.sft : f.base;
    e.tuned = tuned;
    e.out = dir / name;
    ASSERT_TRUE(Extract(e, nullptr).ok());
  }
  ApplyOptions o;
  o.model = f.instruct;
  o.out = dir / "out";
  o.vectors = {{dir / "v1", 0.3}, {dir / "v2", -0.7}};
  ASSERT_TRUE(o.schedule.AddOverride("mlp\\.up_proj=2.5").ok());
  ASSERT_TRUE(o.schedule.SetLayerGradient("0.5,1.5").ok());
  o.threads = 2;
  auto r = Apply(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  AlphaSchedule s;
  ASSERT_TRUE(s.AddOverride("mlp\\.up_proj=2.5").ok());
  ASSERT_TRUE(s.SetLayerGradient("0.5,1.5").ok());
  s.set_num_layers(2);
  for (const auto& name : TensorNames(f.instruct)) {
    const auto t = ReadF32Scalar(f.instruct, name);
    const auto v1 = ReadF32Scalar(dir / "v1", name);
    const auto v2 = ReadF32Scalar(dir / "v2", name);
    DType odt;
    const auto out = ReadF32Scalar(o.out, name, &odt);
    ASSERT_EQ(odt, dtype);
    const double k = s.For(name);
    const float a1 = static_cast<float>(0.3 * k), a2 = static_cast<float>(-0.7 * k);
    for (size_t i = 0; i < t.size(); ++i) {
      float d = 0.0f;
      d = d + a1 * v1[i];
      d = d + a2 * v2[i];
      const float sum = d == 0.0f ? t[i] : t[i] + d;
      std::vector<uint8_t> ref(4);
      StoreFromF32(dtype, ref.data(), 0, sum);
      ASSERT_EQ(F32Bits(out[i]), F32Bits(LoadAsF32(dtype, ref.data(), 0)))
          << name << "[" << i << "]";
    }
  }
  // Side files come from the target.
  EXPECT_EQ(FileText(o.out / "config.json"), FileText(f.instruct / "config.json"));
  EXPECT_EQ(FileText(o.out / "tokenizer_config.json"),
            FileText(f.instruct / "tokenizer_config.json"));
  const std::string card = FileText(o.out / "README.md");
  EXPECT_NE(card.find("θ_target"), std::string::npos);
  EXPECT_NE(card.find((dir / "v2").string()), std::string::npos);
}

TEST_P(VectorTest, AlphaZeroReproducesTargetBitForBit) {
  const DType dtype = GetParam();
  const auto dir = ScratchDir("alpha0");
  const Family f = MakeFamily(dir, "tiny-qwen2", dtype);
  ApplyOptions o;
  o.model = f.instruct;
  o.out = dir / "out";
  o.base = f.sft;
  o.tuned = f.grpo;
  o.schedule.set_alpha(0.0);
  ASSERT_TRUE(Apply(o, nullptr).ok());
  for (const auto& name : TensorNames(f.instruct)) {
    EXPECT_EQ(ReadBytes(o.out, name), ReadBytes(f.instruct, name)) << name;
  }
}

TEST_P(VectorTest, SftPlusVectorReproducesTuned) {
  const DType dtype = GetParam();
  const auto dir = ScratchDir("identity");
  const Family f = MakeFamily(dir, "tiny-llama", dtype);
  ExtractOptions e;
  e.base = f.sft;
  e.tuned = f.grpo;
  e.out = dir / "vec";
  ASSERT_TRUE(Extract(e, nullptr).ok());
  ApplyOptions o;
  o.model = f.sft;
  o.out = dir / "out";
  o.vectors = {{e.out, 1.0}};
  ASSERT_TRUE(Apply(o, nullptr).ok());
  ApplyOptions d = o;
  d.vectors.clear();
  d.base = f.sft;
  d.tuned = f.grpo;
  d.out = dir / "direct";
  ASSERT_TRUE(Apply(d, nullptr).ok());
  for (const auto& name : TensorNames(f.sft)) {
    EXPECT_EQ(ReadBytes(o.out, name), ReadBytes(d.out, name)) << name;
    if (dtype != DType::kF32) {
      // bf16/f16 inputs: exact (see docs/merge.md for the condition; synthetic fine-tunes meet it).
      EXPECT_EQ(ReadBytes(o.out, name), ReadBytes(f.grpo, name)) << name;
    } else {
      // f32 inputs: sft + fl(grpo − sft) may differ from grpo in the last bit.
      const auto g = ReadF32Scalar(f.grpo, name);
      const auto out = ReadF32Scalar(o.out, name);
      for (size_t i = 0; i < g.size(); ++i) {
        ASSERT_LE(std::fabs(out[i] - g[i]), std::ldexp(std::fabs(g[i]) + 0.1f, -22)) << name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, VectorTest,
                         ::testing::Values(DType::kBF16, DType::kF16, DType::kF32),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(VectorErrors, IncompatibleModelsFailBeforeWriting) {
  const auto dir = ScratchDir("incompat");
  testing::MakeModel("tiny-llama", 1, DType::kBF16, dir / "llama");
  testing::MakeModel("tiny-qwen2", 1, DType::kBF16, dir / "qwen");
  ExtractOptions e;
  e.base = dir / "llama";
  e.tuned = dir / "qwen";
  e.out = dir / "vec";
  auto r = Extract(e, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("architectures differ"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("self_attn.q_proj.bias"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(e.out));
  // Nothing half-written next to it either.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".vec"), std::string::npos);
  }

  ApplyOptions a;
  a.model = dir / "qwen";
  a.base = dir / "llama";
  a.tuned = dir / "llama";
  a.out = dir / "out";
  EXPECT_FALSE(Apply(a, nullptr).ok());
  EXPECT_FALSE(std::filesystem::exists(a.out));
}

TEST(VectorErrors, ShapeMismatchIsNamed) {
  const auto dir = ScratchDir("shape");
  using testing::RawTensor;
  testing::WriteTensors(dir / "a.safetensors", {{"w", {2, 3}, std::vector<float>(6, 1.0f)}},
                        DType::kF32);
  testing::WriteTensors(dir / "b.safetensors", {{"w", {3, 2}, std::vector<float>(6, 2.0f)}},
                        DType::kF32);
  ExtractOptions e;
  e.base = dir / "a.safetensors";
  e.tuned = dir / "b.safetensors";
  e.out = dir / "vec";
  auto r = Extract(e, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("w: shape [2, 3] in BASE vs [3, 2] in TUNED"),
            std::string::npos)
      << r.status().message();
}

TEST(VectorErrors, ExistingOutputNeedsForce) {
  const auto dir = ScratchDir("force");
  const Family f = MakeFamily(dir, "tiny-qwen2", DType::kBF16);
  ApplyOptions o;
  o.model = f.instruct;
  o.base = f.sft;
  o.tuned = f.grpo;
  o.out = dir / "out";
  ASSERT_TRUE(Apply(o, nullptr).ok());
  auto again = Apply(o, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  o.force = true;
  EXPECT_TRUE(Apply(o, nullptr).ok());
}

TEST(VectorVocab, RowMismatchNeedsCommonAndKeepsTargetRows) {
  const auto dir = ScratchDir("vocab");
  auto ramp = [](size_t n, float scale) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i + 1);
    return v;
  };
  testing::WriteTensors(dir / "target.safetensors",
                        {{"model.embed_tokens.weight", {8, 4}, ramp(32, 1.0f)},
                         {"model.norm.weight", {4}, ramp(4, 1.0f)}},
                        DType::kBF16);
  testing::WriteTensors(dir / "vec.safetensors",
                        {{"model.embed_tokens.weight", {6, 4}, ramp(24, 0.5f)},
                         {"model.norm.weight", {4}, ramp(4, 0.25f)}},
                        DType::kF32);
  ApplyOptions o;
  o.model = dir / "target.safetensors";
  o.vectors = {{dir / "vec.safetensors", 1.0}};
  o.out = dir / "out";
  auto r = Apply(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--vocab-mismatch=common"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(o.out));
  o.vocab = VocabMode::kCommon;
  r = Apply(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->warnings.empty());
  const auto out = ReadF32Scalar(o.out, "model.embed_tokens.weight");
  ASSERT_EQ(out.size(), 32u);
  for (size_t i = 0; i < 32; ++i) {
    const float t = BF16ToF32(F32ToBF16(static_cast<float>(i + 1)));
    const float expected = i < 24 ? BF16ToF32(F32ToBF16(t + 0.5f * (i + 1))) : t;
    EXPECT_EQ(out[i], expected) << i;
  }
}

TEST(VectorTied, LmHeadDeltaOnTiedTargetIsReportedNotApplied) {
  const auto dir = ScratchDir("tied");
  testing::MakeModel("tiny-qwen2", 3, DType::kBF16, dir / "target");  // tied, no lm_head
  auto target = Checkpoint::Open(dir / "target");
  ASSERT_TRUE(target.ok());
  ASSERT_FALSE(target->Has("lm_head.weight"));
  std::vector<testing::RawTensor> tensors;
  for (const auto& name : target->TensorNames()) {
    const TensorInfo* info = target->Info(name);
    tensors.push_back({name, info->shape, std::vector<float>(info->NumElements(), 0.001f)});
  }
  const TensorInfo* emb = target->Info("model.embed_tokens.weight");
  tensors.push_back({"lm_head.weight", emb->shape, std::vector<float>(emb->NumElements(), 1.0f)});
  testing::WriteTensors(dir / "vec.safetensors", tensors, DType::kF32);
  ApplyOptions o;
  o.model = dir / "target";
  o.vectors = {{dir / "vec.safetensors", 1.0}};
  o.out = dir / "out";
  auto r = Apply(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  bool warned = false;
  for (const auto& w : r->warnings)
    warned |=
        w.find("lm_head.weight") != std::string::npos && w.find("NOT applied") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_EQ(TensorNames(o.out), target->TensorNames());
  const auto e_in = ReadF32Scalar(dir / "target", "model.embed_tokens.weight");
  const auto e_out = ReadF32Scalar(o.out, "model.embed_tokens.weight");
  for (size_t i = 0; i < e_in.size(); ++i) {
    ASSERT_EQ(e_out[i], BF16ToF32(F32ToBF16(e_in[i] + 0.001f))) << i;
  }
  EXPECT_NE(FileText(o.out / "README.md").find("lm_head.weight"), std::string::npos);
}

TEST(VectorTied, UntiedTargetWithVectorFromTiedModelsCopiesLmHead) {
  const auto dir = ScratchDir("untied");
  testing::MakeModel("tiny-llama", 3, DType::kBF16, dir / "target");
  auto target = Checkpoint::Open(dir / "target");
  ASSERT_TRUE(target.ok());
  std::vector<testing::RawTensor> tensors;
  for (const auto& name : target->TensorNames()) {
    if (name == "lm_head.weight") continue;
    const TensorInfo* info = target->Info(name);
    tensors.push_back({name, info->shape, std::vector<float>(info->NumElements(), 0.001f)});
  }
  testing::WriteTensors(dir / "vec.safetensors", tensors, DType::kF32);
  ApplyOptions o;
  o.model = dir / "target";
  o.vectors = {{dir / "vec.safetensors", 1.0}};
  o.out = dir / "out";
  auto r = Apply(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  bool warned = false;
  for (const auto& w : r->warnings) warned |= w.find("lm_head.weight") != std::string::npos;
  EXPECT_TRUE(warned) << "a target tensor without delta must be reported";
  EXPECT_EQ(ReadBytes(o.out, "lm_head.weight"), ReadBytes(dir / "target", "lm_head.weight"));
}

TEST(VectorDtypes, MixedInputDtypesWarn) {
  const auto dir = ScratchDir("mixed");
  testing::MakeModel("tiny-qwen2", 5, DType::kF32, dir / "sft");
  testing::MakeModel("tiny-qwen2", 6, DType::kBF16, dir / "grpo");
  ExtractOptions e;
  e.base = dir / "sft";
  e.tuned = dir / "grpo";
  e.out = dir / "vec";
  auto r = Extract(e, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  bool warned = false;
  for (const auto& w : r->warnings) warned |= w.find("rounding residual") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(VectorDeterminism, ThreadsAndShardsDoNotChangeBytes) {
  const auto dir = ScratchDir("threads");
  testing::MakeModel("tiny-llama", 7, DType::kBF16, dir / "base", /*shards=*/2);
  testing::Perturb(dir / "base", 8, 0.01, dir / "tuned");
  ApplyOptions o;
  o.model = dir / "base";
  o.base = dir / "base";
  o.tuned = dir / "tuned";
  o.schedule.set_alpha(0.37);
  o.threads = 1;
  o.out = dir / "one";
  ASSERT_TRUE(Apply(o, nullptr).ok());
  o.threads = 2;
  o.out = dir / "two";
  ASSERT_TRUE(Apply(o, nullptr).ok());
  auto one = Checkpoint::Open(dir / "one");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->num_shards(), 2u);  // sharded like the target
  EXPECT_TRUE(std::filesystem::exists(dir / "two" / "model.safetensors.index.json"));
  for (const auto& name : one->TensorNames()) {
    EXPECT_EQ(ReadBytes(dir / "one", name), ReadBytes(dir / "two", name)) << name;
  }
}

TEST(VectorCrashSafety, WriterDestroyedBeforeFinishLeavesNothing) {
  const auto dir = ScratchDir("crash");
  {
    auto w = CheckpointWriter::Create(dir / "out", {{"w", DType::kF32, {4}}}, {});
    ASSERT_TRUE(w.ok());
    const float x[2] = {1, 2};
    ASSERT_TRUE((*w)->Write(0, 0, x, sizeof(x)).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 0u) << "a temporary sibling was left behind";
}

TEST(VectorTerms, ParseVectorTerm) {
  auto t = ParseVectorTerm("/a/b:0.5");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/a/b");
  EXPECT_EQ(t->alpha, 0.5);
  t = ParseVectorTerm("vec:-1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->alpha, -1.0);
  t = ParseVectorTerm("dir:with:colon");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "dir:with:colon");
  EXPECT_EQ(t->alpha, 1.0);
}

}  // namespace
}  // namespace rvec::merge
