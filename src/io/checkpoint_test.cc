// Tests for Checkpoint (single, sharded, index cross-checks, config and side files) and for
// read -> write -> read round trips through CheckpointWriter.
#include "io/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/checkpoint_summary.h"
#include "io/checkpoint_writer.h"
#include "io/io_test_util.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ListDir;
using testing::PatternBytes;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

const char* kQwenConfig = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 64,
  "initializer_range": 0.02,
  "intermediate_size": 160,
  "max_position_embeddings": 32768,
  "max_window_layers": 21,
  "model_type": "qwen2",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 256
})";

std::vector<TensorSpec> TinyPlan() {
  std::vector<TensorSpec> plan = {{"model.embed_tokens.weight", DType::kBF16, {256, 64}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    plan.push_back({p + "input_layernorm.weight", DType::kBF16, {64}});
    plan.push_back({p + "self_attn.q_proj.weight", DType::kBF16, {64, 64}});
    plan.push_back({p + "self_attn.q_proj.bias", DType::kBF16, {64}});
    plan.push_back({p + "self_attn.k_proj.weight", DType::kBF16, {32, 64}});
    plan.push_back({p + "mlp.down_proj.weight", DType::kBF16, {64, 160}});
  }
  plan.push_back({"model.norm.weight", DType::kF32, {64}});
  return plan;
}

// Writes `plan` with pattern data (seeded by tensor index) plus config.json and a tokenizer file.
void WriteModel(const fs::path& out, uint64_t max_shard_bytes,
                const std::vector<TensorSpec>& plan = TinyPlan()) {
  CheckpointWriterOptions options;
  options.max_shard_bytes = max_shard_bytes;
  auto writer = CheckpointWriter::Create(out, plan, options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto bytes = PatternBytes(plan[i].NumBytes(), static_cast<uint32_t>(i));
    ASSERT_TRUE((*writer)->Write(i, 0, bytes.data(), bytes.size()).ok());
  }
  WriteBytes((*writer)->staging_dir() / "config.json", kQwenConfig);
  WriteBytes((*writer)->staging_dir() / "tokenizer.json", "{}");
  ASSERT_TRUE((*writer)->Finish().ok());
}

// Copies every tensor of `in` (file order, same metadata, same shard budget) to `out`.
Status Rewrite(const Checkpoint& in, const fs::path& out, uint64_t max_shard_bytes) {
  std::vector<TensorSpec> plan;
  for (const std::string& name : in.TensorNames()) {
    const TensorInfo* info = in.Info(name);
    plan.push_back({name, info->dtype, info->shape});
  }
  CheckpointWriterOptions options;
  options.max_shard_bytes = max_shard_bytes;
  options.metadata = in.shard(0).metadata();
  ASSIGN_OR_RETURN(auto writer, CheckpointWriter::Create(out, plan, options));
  for (size_t i = 0; i < plan.size(); ++i) {
    ASSIGN_OR_RETURN(TensorView view, in.View(plan[i].name));
    // Two halves, to exercise offsets.
    const uint64_t half = view.NumBytes() / 2;
    RETURN_IF_ERROR(writer->Write(i, 0, view.data, half));
    RETURN_IF_ERROR(writer->Write(i, half, view.data + half, view.NumBytes() - half));
  }
  for (const std::string& side : in.side_files()) {
    fs::copy_file(in.dir() / side, writer->staging_dir() / side);
  }
  return writer->Finish();
}

TEST(CheckpointTest, OpensSingleFileDirectoryWithConfigAndSideFiles) {
  ScratchDir dir;
  WriteModel(dir / "m", 0);
  auto ckpt = Checkpoint::Open(dir / "m");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_FALSE(ckpt->is_sharded());
  EXPECT_EQ(ckpt->num_shards(), 1u);
  EXPECT_EQ(ckpt->TensorNames().size(), TinyPlan().size());
  EXPECT_EQ(ckpt->TensorNames().front(), "model.embed_tokens.weight");
  EXPECT_EQ(ckpt->TensorNames().back(), "model.norm.weight");
  uint64_t params = 0, bytes = 0;
  for (const TensorSpec& t : TinyPlan()) {
    params += t.NumBytes() / DTypeSize(t.dtype);
    bytes += t.NumBytes();
  }
  EXPECT_EQ(ckpt->TotalParameters(), params);
  EXPECT_EQ(ckpt->TotalTensorBytes(), bytes);
  ASSERT_TRUE(ckpt->config().has_value());
  EXPECT_EQ(ckpt->config()->Architecture(), "Qwen2ForCausalLM");
  EXPECT_THAT(ckpt->side_files(), ElementsAre("config.json", "tokenizer.json"));
  auto view = ckpt->View("model.layers.1.mlp.down_proj.weight");
  ASSERT_TRUE(view.ok());
  const auto expect = PatternBytes(64 * 160 * 2, 10);
  EXPECT_EQ(0, std::memcmp(view->data, expect.data(), expect.size()));
  auto missing = ckpt->View("lm_head.weight");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("lm_head.weight"));
  EXPECT_EQ(ckpt->ShardOf("lm_head.weight"), SIZE_MAX);
  EXPECT_EQ(ckpt->ShardOf("model.norm.weight"), 0u);
  ckpt->Release("model.norm.weight");

  // The same file opened directly, and the model.safetensors path (which also reads the config).
  auto file = Checkpoint::Open(dir / "m" / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->dir(), dir / "m");
  EXPECT_TRUE(file->config().has_value());
}

TEST(CheckpointTest, LoneFileHasNoConfig) {
  ScratchDir dir;
  WriteModel(dir / "m", 0);
  fs::copy_file(dir / "m" / "model.safetensors", dir / "m" / "vector.safetensors");
  auto ckpt = Checkpoint::Open(dir / "m" / "vector.safetensors");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_FALSE(ckpt->config().has_value());
  EXPECT_TRUE(ckpt->side_files().empty());
}

TEST(CheckpointTest, OpensShardedDirectoryAndIndexFile) {
  ScratchDir dir;
  WriteModel(dir / "m", 20000);
  auto ckpt = Checkpoint::Open(dir / "m");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_TRUE(ckpt->is_sharded());
  ASSERT_GT(ckpt->num_shards(), 2u);
  EXPECT_EQ(ckpt->index_path(), dir / "m" / "model.safetensors.index.json");
  EXPECT_EQ(ckpt->TensorNames().size(), TinyPlan().size());
  // File order = plan order, because the writer fills shards in plan order.
  std::vector<std::string> plan_names;
  for (const auto& t : TinyPlan()) plan_names.push_back(t.name);
  EXPECT_EQ(ckpt->TensorNames(), plan_names);
  EXPECT_EQ(ckpt->ShardOf("model.embed_tokens.weight"), 0u);
  EXPECT_EQ(ckpt->ShardOf("model.norm.weight"), ckpt->num_shards() - 1);
  auto via_index = Checkpoint::Open(dir / "m" / "model.safetensors.index.json");
  ASSERT_TRUE(via_index.ok()) << via_index.status().ToString();
  EXPECT_EQ(via_index->num_shards(), ckpt->num_shards());

  const nlohmann::json d = DescribeCheckpoint(*ckpt, true);
  EXPECT_EQ(d["architecture"], "Qwen2ForCausalLM");
  EXPECT_EQ(d["parameters"].get<uint64_t>(), ckpt->TotalParameters());
  EXPECT_EQ(d["dtypes"]["BF16"]["tensors"], TinyPlan().size() - 1);
  EXPECT_EQ(d["dtypes"]["F32"]["tensors"], 1);
  EXPECT_EQ(d["shards"].size(), ckpt->num_shards());
  EXPECT_EQ(d["tensors"].size(), TinyPlan().size());
  EXPECT_EQ(d["tensors"][0]["shard"],
            "model-00001-of-0000" + std::to_string(ckpt->num_shards()) + ".safetensors");
  EXPECT_EQ(d["metadata"]["format"], "pt");
  EXPECT_EQ(d["config"]["num_key_value_heads"], 2);
}

TEST(CheckpointTest, FollowsSymlinksLikeTheHfCache) {
  // snapshots/<rev>/model-*.safetensors -> ../../blobs/<hash>, as huggingface_hub lays out.
  ScratchDir dir;
  WriteModel(dir / "src", 20000);
  fs::create_directories(dir / "blobs");
  fs::create_directories(dir / "snapshots" / "rev");
  for (const std::string& name : ListDir(dir / "src")) {
    fs::rename(dir / "src" / name, dir / "blobs" / name);
    fs::create_symlink(fs::path("../../blobs") / name, dir / "snapshots" / "rev" / name);
  }
  auto ckpt = Checkpoint::Open(dir / "snapshots" / "rev");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_TRUE(ckpt->is_sharded());
  EXPECT_TRUE(ckpt->config().has_value());
}

TEST(CheckpointTest, PrefersModelSafetensorsOverIndexLikeTransformers) {
  ScratchDir dir;
  WriteModel(dir / "m", 0);
  WriteBytes(dir / "m" / "model.safetensors.index.json", "not even json");
  auto ckpt = Checkpoint::Open(dir / "m");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_FALSE(ckpt->is_sharded());
}

TEST(CheckpointTest, ErrorsForMissingAndUnindexedDirectories) {
  ScratchDir dir;
  auto missing = Checkpoint::Open(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope: no such file or directory"));

  WriteModel(dir / "m", 20000);
  fs::remove(dir / "m" / "model.safetensors.index.json");
  auto unindexed = Checkpoint::Open(dir / "m");
  ASSERT_FALSE(unindexed.ok());
  EXPECT_THAT(unindexed.status().message(), HasSubstr("model-00001-of-"));
  EXPECT_THAT(unindexed.status().message(), HasSubstr("add an index"));
}

// read -> write -> read must reproduce every byte of every file, single and sharded.
void ExpectRoundTrip(uint64_t max_shard_bytes) {
  ScratchDir dir;
  WriteModel(dir / "a", max_shard_bytes);
  auto a = Checkpoint::Open(dir / "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(Rewrite(*a, dir / "b", max_shard_bytes).ok());
  auto b = Checkpoint::Open(dir / "b");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(ListDir(dir / "a"), ListDir(dir / "b"));
  for (const std::string& name : ListDir(dir / "a")) {
    EXPECT_EQ(ReadBytes(dir / "a" / name), ReadBytes(dir / "b" / name)) << name;
  }
  ASSERT_EQ(a->num_shards(), b->num_shards());
  for (size_t s = 0; s < a->num_shards(); ++s) {
    EXPECT_EQ(a->shard(s).RawHeader(), b->shard(s).RawHeader());
  }
  EXPECT_EQ(a->TensorNames(), b->TensorNames());
}

TEST(CheckpointRoundTripTest, SingleFile) { ExpectRoundTrip(0); }
TEST(CheckpointRoundTripTest, Sharded) { ExpectRoundTrip(20000); }

TEST(CheckpointRoundTripTest, ReferenceOrderedFileIsReproducedExactly) {
  // A file laid out as huggingface/safetensors `serialize` does (descending dtype alignment,
  // then name) keeps its bytes when rewritten in file order.
  ScratchDir dir;
  const std::vector<TensorSpec> reference_order = {
      {"b.weight", DType::kF32, {3, 5}},
      {"a.bias", DType::kBF16, {7}},
      {"a.weight", DType::kBF16, {7, 3}},
      {"mask", DType::kBool, {5}},
  };
  WriteModel(dir / "a", 0, reference_order);
  auto a = Checkpoint::Open(dir / "a");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(Rewrite(*a, dir / "b", 0).ok());
  EXPECT_EQ(ReadBytes(dir / "a" / "model.safetensors"), ReadBytes(dir / "b" / "model.safetensors"));
}

TEST(CheckpointRoundTripTest, ShardedToSingleAndBackKeepsTensors) {
  ScratchDir dir;
  WriteModel(dir / "sharded", 20000);
  auto sharded = Checkpoint::Open(dir / "sharded");
  ASSERT_TRUE(sharded.ok());
  ASSERT_TRUE(Rewrite(*sharded, dir / "single", 0).ok());
  ASSERT_TRUE(Rewrite(*Checkpoint::Open(dir / "single"), dir / "again", 20000).ok());
  for (const std::string& name : ListDir(dir / "sharded")) {
    EXPECT_EQ(ReadBytes(dir / "sharded" / name), ReadBytes(dir / "again" / name)) << name;
  }
}

}  // namespace
}  // namespace rvec
