// Tests for CheckpointWriter: shard planning and naming, the index file, completeness checks,
// atomic appearance of the output, and multi-threaded writes.
#include "io/checkpoint_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "io/io_test_util.h"
#include "io/safetensors.h"

namespace rvec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ListDir;
using testing::PatternBytes;
using testing::ReadBytes;
using testing::ScratchDir;

std::vector<TensorSpec> SmallPlan() {
  return {
      {"model.embed_tokens.weight", DType::kBF16, {16, 8}},  // 256 bytes
      {"model.norm.weight", DType::kF32, {8}},               // 32 bytes
      {"lm_head.weight", DType::kBF16, {16, 8}},             // 256 bytes
      {"scalar", DType::kF32, {}},                           // 4 bytes
      {"empty", DType::kF16, {0, 3}},                        // 0 bytes
  };
}

// Writes every tensor of `writer` with PatternBytes(bytes, index), in `chunk`-byte pieces.
void WriteAll(CheckpointWriter& writer, uint64_t chunk = 1 << 20) {
  for (size_t i = 0; i < writer.tensors().size(); ++i) {
    const auto bytes = PatternBytes(writer.tensors()[i].NumBytes(), static_cast<uint32_t>(i));
    for (uint64_t off = 0; off < bytes.size(); off += chunk) {
      const uint64_t n = std::min<uint64_t>(chunk, bytes.size() - off);
      ASSERT_TRUE(writer.Write(i, off, bytes.data() + off, n).ok());
    }
  }
}

TEST(CheckpointWriterTest, SingleShardDirectory) {
  ScratchDir dir;
  const auto out = dir / "model";
  auto writer = CheckpointWriter::Create(out, SmallPlan(), {});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_THAT((*writer)->ShardNames(), ElementsAre("model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(out)) << "output must not appear before Finish";
  WriteAll(**writer);
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_THAT(ListDir(out), ElementsAre("model.safetensors"));
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("model")) << "no temporary left behind";

  auto file = SafetensorsFile::Open(out / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->tensors().size(), 5u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  // Plan order is file order; the header is padded to a multiple of 8.
  EXPECT_EQ(file->data_offset() % 8, 0u);
  const auto plan = SmallPlan();
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorInfo* info = file->Find(plan[i].name);
    ASSERT_NE(info, nullptr) << plan[i].name;
    EXPECT_EQ(info->dtype, plan[i].dtype);
    EXPECT_EQ(info->shape, plan[i].shape);
    const TensorView view = file->View(*info);
    const auto expect = PatternBytes(plan[i].NumBytes(), static_cast<uint32_t>(i));
    ASSERT_EQ(view.NumBytes(), expect.size());
    if (!expect.empty()) {
      EXPECT_EQ(0, std::memcmp(view.data, expect.data(), expect.size())) << plan[i].name;
    }
  }
  // The header is compact JSON with __metadata__ first and the tensors in plan order.
  const std::string_view raw = file->RawHeader();
  EXPECT_EQ(raw.substr(0, 40), R"({"__metadata__":{"format":"pt"},"model.e)");
  EXPECT_LT(raw.find("model.norm.weight"), raw.find("lm_head.weight"));
}

TEST(CheckpointWriterTest, ShardsGreedilyWithHfNamesAndIndex) {
  ScratchDir dir;
  const auto out = dir / "sharded";
  CheckpointWriterOptions options;
  options.max_shard_bytes = 300;  // embed(256)+norm(32) | lm_head(256)+scalar(4)+empty(0)
  options.metadata = {{"producer", "rvec-test"}};
  auto writer = CheckpointWriter::Create(out, SmallPlan(), options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_THAT((*writer)->ShardNames(),
              ElementsAre("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"));
  WriteAll(**writer, 7);
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_THAT(ListDir(out),
              ElementsAre("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json"));
  const std::string index_text = ReadBytes(out / "model.safetensors.index.json");
  // transformers' layout: indent 2, sorted keys, trailing newline.
  EXPECT_EQ(index_text,
            "{\n"
            "  \"metadata\": {\n"
            "    \"total_size\": 548\n"
            "  },\n"
            "  \"weight_map\": {\n"
            "    \"empty\": \"model-00002-of-00002.safetensors\",\n"
            "    \"lm_head.weight\": \"model-00002-of-00002.safetensors\",\n"
            "    \"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\",\n"
            "    \"model.norm.weight\": \"model-00001-of-00002.safetensors\",\n"
            "    \"scalar\": \"model-00002-of-00002.safetensors\"\n"
            "  }\n"
            "}\n");
  auto shard1 = SafetensorsFile::Open(out / "model-00001-of-00002.safetensors");
  ASSERT_TRUE(shard1.ok()) << shard1.status().ToString();
  EXPECT_EQ(shard1->tensors().size(), 2u);
  EXPECT_EQ(shard1->metadata().at("producer"), "rvec-test");
  EXPECT_EQ(shard1->metadata().at("format"), "pt");
}

TEST(CheckpointWriterTest, OversizedTensorGetsItsOwnShard) {
  ScratchDir dir;
  CheckpointWriterOptions options;
  options.max_shard_bytes = 100;
  std::vector<TensorSpec> plan = {{"a", DType::kU8, {40}},
                                  {"big", DType::kU8, {500}},
                                  {"b", DType::kU8, {40}},
                                  {"c", DType::kU8, {40}},
                                  {"d", DType::kU8, {40}}};
  auto writer = CheckpointWriter::Create(dir / "m", plan, options);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->ShardNames().size(), 4u);  // a | big | b c | d
  WriteAll(**writer);
  ASSERT_TRUE((*writer)->Finish().ok());
  auto shard3 = SafetensorsFile::Open(dir / "m" / "model-00003-of-00004.safetensors");
  ASSERT_TRUE(shard3.ok());
  ASSERT_EQ(shard3->tensors().size(), 2u);
  EXPECT_EQ(shard3->tensors()[0].name, "b");
  EXPECT_EQ(shard3->tensors()[1].name, "c");
}

TEST(CheckpointWriterTest, IncompleteWriteFailsAndLeavesNothing) {
  ScratchDir dir;
  const auto out = dir / "model";
  auto writer = CheckpointWriter::Create(out, SmallPlan(), {});
  ASSERT_TRUE(writer.ok());
  const auto bytes = PatternBytes(256, 0);
  ASSERT_TRUE((*writer)->Write(0, 0, bytes.data(), 100).ok());
  ASSERT_TRUE((*writer)->Write(0, 200, bytes.data() + 200, 56).ok());
  const Status st = (*writer)->Finish();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("model.embed_tokens.weight"));
  EXPECT_THAT(st.message(), HasSubstr("[100, 200)"));
  writer->reset();
  EXPECT_TRUE(ListDir(dir.path()).empty()) << "a failed write must leave no output or temporary";
}

TEST(CheckpointWriterTest, DestroyWithoutFinishLeavesNothing) {
  ScratchDir dir;
  {
    CheckpointWriterOptions options;
    options.max_shard_bytes = 300;
    auto writer = CheckpointWriter::Create(dir / "model", SmallPlan(), options);
    ASSERT_TRUE(writer.ok());
    WriteAll(**writer);
  }
  EXPECT_TRUE(ListDir(dir.path()).empty());
}

TEST(CheckpointWriterTest, RefusesExistingOutputUnlessForced) {
  ScratchDir dir;
  const auto out = dir / "model";
  std::filesystem::create_directories(out);
  testing::WriteBytes(out / "keep.txt", "old");
  auto refused = CheckpointWriter::Create(out, SmallPlan(), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr("--force"));
  EXPECT_TRUE(std::filesystem::exists(out / "keep.txt"));

  CheckpointWriterOptions options;
  options.force = true;
  auto writer = CheckpointWriter::Create(out, SmallPlan(), options);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE(std::filesystem::exists(out / "keep.txt")) << "replaced only on Finish";
  WriteAll(**writer);
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_THAT(ListDir(out), ElementsAre("model.safetensors"));
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("model"));
}

TEST(CheckpointWriterTest, SingleFileOutput) {
  ScratchDir dir;
  CheckpointWriterOptions options;
  options.single_file = true;
  options.max_shard_bytes = 10;  // ignored for single-file output
  const auto out = dir / "vector.safetensors";
  auto writer = CheckpointWriter::Create(out, SmallPlan(), options);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->staging_dir(), dir.path());
  WriteAll(**writer);
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("vector.safetensors"));
  auto file = SafetensorsFile::Open(out);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->tensors().size(), 5u);
}

TEST(CheckpointWriterTest, SideFilesInStagingDirAreKept) {
  ScratchDir dir;
  auto writer = CheckpointWriter::Create(dir / "m", SmallPlan(), {});
  ASSERT_TRUE(writer.ok());
  testing::WriteBytes((*writer)->staging_dir() / "config.json", "{}");
  WriteAll(**writer);
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_THAT(ListDir(dir / "m"), ElementsAre("config.json", "model.safetensors"));
}

TEST(CheckpointWriterTest, RejectsBadPlans) {
  ScratchDir dir;
  auto dup =
      CheckpointWriter::Create(dir / "a", {{"x", DType::kF32, {2}}, {"x", DType::kF32, {2}}}, {});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("\"x\" is listed twice"));
  auto neg = CheckpointWriter::Create(dir / "b", {{"y", DType::kF32, {2, -1}}}, {});
  ASSERT_FALSE(neg.ok());
  EXPECT_THAT(neg.status().message(), HasSubstr("negative"));
  auto meta = CheckpointWriter::Create(dir / "c", {{"__metadata__", DType::kF32, {1}}}, {});
  ASSERT_FALSE(meta.ok());
  CheckpointWriterOptions bad_format;
  bad_format.metadata = {{"format", "numpy"}};
  auto format = CheckpointWriter::Create(dir / "d", {{"z", DType::kF32, {1}}}, bad_format);
  ASSERT_FALSE(format.ok());
  EXPECT_THAT(format.status().message(), HasSubstr("transformers"));
  EXPECT_TRUE(ListDir(dir.path()).empty());
}

TEST(CheckpointWriterTest, RejectsOutOfRangeWrites) {
  ScratchDir dir;
  auto writer = CheckpointWriter::Create(dir / "m", SmallPlan(), {});
  ASSERT_TRUE(writer.ok());
  uint8_t buf[64] = {};
  EXPECT_FALSE((*writer)->Write(1, 0, buf, 33).ok());  // norm has 32 bytes
  EXPECT_FALSE((*writer)->Write(1, 30, buf, 3).ok());
  EXPECT_FALSE((*writer)->Write(9, 0, buf, 1).ok());
  EXPECT_EQ((*writer)->IndexOf("lm_head.weight"), 2);
  EXPECT_EQ((*writer)->IndexOf("nope"), -1);
}

TEST(CheckpointWriterTest, ConcurrentWritesFromManyThreads) {
  ScratchDir dir;
  std::vector<TensorSpec> plan;
  for (int i = 0; i < 12; ++i) {
    plan.push_back({fmt::format("layer.{}.weight", i), DType::kBF16, {64, 48 + i}});
  }
  CheckpointWriterOptions options;
  options.max_shard_bytes = 20000;
  auto writer = CheckpointWriter::Create(dir / "m", plan, options);
  ASSERT_TRUE(writer.ok());
  CheckpointWriter& w = **writer;
  // Thread t writes every chunk c with c % 4 == t, across all tensors, in reverse order.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = plan.size(); i-- > 0;) {
        const auto bytes = PatternBytes(plan[i].NumBytes(), static_cast<uint32_t>(i));
        size_t chunk_index = 0;
        for (uint64_t off = 0; off < bytes.size(); off += 333, ++chunk_index) {
          if (chunk_index % 4 != static_cast<size_t>(t)) continue;
          const uint64_t n = std::min<uint64_t>(333, bytes.size() - off);
          if (!w.Write(i, off, bytes.data() + off, n).ok()) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(w.Finish().ok());
  for (const std::string& name : w.ShardNames()) {
    auto file = SafetensorsFile::Open(dir / "m" / name);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    for (const TensorInfo& info : file->tensors()) {
      const int64_t i = w.IndexOf(info.name);
      const auto expect = PatternBytes(info.NumBytes(), static_cast<uint32_t>(i));
      EXPECT_EQ(0, std::memcmp(file->View(info).data, expect.data(), expect.size())) << info.name;
    }
  }
}

}  // namespace
}  // namespace rvec
