// Tests of the GGUF v3 writer and reader: byte layout, every metadata type, dtype conversion
// against the scalar conversions, chunked streaming, and errors on damaged files.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/dtype.h"
#include "io/io_test_util.h"

namespace rvec {
namespace {

using ::rvec::testing::ReadBytes;
using ::rvec::testing::ScratchDir;
using ::rvec::testing::WriteBytes;

// Element k of a test tensor: varied magnitudes and signs, some not representable in 16 bits.
float Value(uint64_t k) {
  return static_cast<float>((static_cast<double>(k % 1013) - 500.25) * 1.0001e-3 *
                            (k % 7 == 0 ? 1000.0 : 1.0));
}

GgufTensorSource Tensor(std::string name, std::vector<uint64_t> dims, GgmlType type) {
  GgufTensorSource t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.type = type;
  t.fill = [](uint64_t first, size_t count, float* out) -> Status {
    for (size_t k = 0; k < count; ++k) out[k] = Value(first + k);
    return OkStatus();
  };
  return t;
}

std::vector<GgufKv> EveryTypeKvs() {
  return {
      {"u8", GgufValue::Uint(GgufType::kUint8, 200)},
      {"i8", GgufValue::Int(GgufType::kInt8, -100)},
      {"u16", GgufValue::Uint(GgufType::kUint16, 60000)},
      {"i16", GgufValue::Int(GgufType::kInt16, -30000)},
      {"u32", GgufValue::U32(4000000000u)},
      {"i32", GgufValue::I32(-2000000000)},
      {"u64", GgufValue::Uint(GgufType::kUint64, uint64_t{1} << 60)},
      {"i64", GgufValue::Int(GgufType::kInt64, -(int64_t{1} << 60))},
      {"f32", GgufValue::F32(0.1f)},
      {"f64", GgufValue::Float(GgufType::kFloat64, 0.1)},
      {"yes", GgufValue::Bool(true)},
      {"no", GgufValue::Bool(false)},
      {"text", GgufValue::String("héllo\nwörld")},
      {"empty", GgufValue::String("")},
      {"strings", GgufValue::StringArray({"a", "", "Ġthe"})},
      {"ints", GgufValue::I32Array({1, -2, 3})},
      {"nested",
       GgufValue::Array(GgufType::kArray, {GgufValue::I32Array({7}), GgufValue::I32Array({})})},
  };
}

TEST(GgufTest, RoundTripsEveryMetadataTypeAndTensorType) {
  ScratchDir dir;
  const auto kvs = EveryTypeKvs();
  const std::vector<GgufTensorSource> tensors = {Tensor("a.weight", {5, 3}, GgmlType::kF32),
                                                 Tensor("b.weight", {7, 2}, GgmlType::kF16),
                                                 Tensor("c.weight", {3}, GgmlType::kBF16)};
  auto size = WriteGguf(dir / "m.gguf", kvs, tensors, nullptr);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, std::filesystem::file_size(dir / "m.gguf"));
  auto g = GgufFile::Open(dir / "m.gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version(), 3u);
  ASSERT_EQ(g->kvs().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(g->kvs()[i].first, kvs[i].first);
    EXPECT_TRUE(g->kvs()[i].second == kvs[i].second) << kvs[i].first;
  }
  EXPECT_EQ(g->Find("u8")->u, 200u);
  EXPECT_EQ(g->Find("i64")->i, -(int64_t{1} << 60));
  EXPECT_EQ(g->Find("strings")->array[2].s, "Ġthe");
  EXPECT_EQ(g->Find("missing"), nullptr);
  ASSERT_EQ(g->tensors().size(), 3u);
  EXPECT_EQ(g->data_offset() % kGgufAlignment, 0u);
  for (const GgufTensorSource& src : tensors) {
    const GgufTensorInfo* t = g->FindTensor(src.name);
    ASSERT_NE(t, nullptr) << src.name;
    EXPECT_EQ(t->dims, src.dims);
    EXPECT_EQ(t->type, src.type);
    EXPECT_EQ(t->offset % kGgufAlignment, 0u);
    const std::vector<float> got = g->TensorAsF32(*t);
    const uint8_t* raw = g->TensorData(*t);
    for (uint64_t k = 0; k < src.NumElements(); ++k) {
      // The scalar reference: one rounding from f32, to nearest even.
      float want = Value(k);
      uint16_t half = 0;
      std::memcpy(&half, raw + 2 * k, t->type == GgmlType::kF32 ? 0 : 2);
      if (t->type == GgmlType::kF16) {
        EXPECT_EQ(half, F32ToF16(Value(k)));
        want = F16ToF32(F32ToF16(want));
      } else if (t->type == GgmlType::kBF16) {
        EXPECT_EQ(half, F32ToBF16(Value(k)));
        want = BF16ToF32(F32ToBF16(want));
      }
      EXPECT_EQ(F32Bits(got[k]), F32Bits(want)) << src.name << " element " << k;
    }
  }
  // Offsets are packed in order, each padded to the alignment.
  EXPECT_EQ(g->tensors()[0].offset, 0u);
  EXPECT_EQ(g->tensors()[1].offset, 64u);  // 15 f32 = 60 bytes -> 64
  EXPECT_EQ(g->tensors()[2].offset, 96u);  // 14 f16 = 28 bytes -> 32
  EXPECT_EQ(*size, g->data_offset() + 96 + 32);
}

TEST(GgufTest, HeaderBytesFollowTheSpecification) {
  ScratchDir dir;
  ASSERT_TRUE(WriteGguf(dir / "h.gguf", {{"k", GgufValue::U32(7)}},
                        {Tensor("t", {2}, GgmlType::kF32)}, nullptr)
                  .ok());
  const std::string b = ReadBytes(dir / "h.gguf");
  std::string want("GGUF", 4);
  auto put = [&](const void* p, size_t n) { want.append(static_cast<const char*>(p), n); };
  const uint32_t version = 3, u32_type = 4, value = 7, n_dims = 1, f32_type = 0;
  const uint64_t n_tensors = 1, n_kv = 1, key_len = 1, name_len = 1, dim = 2, offset = 0;
  put(&version, 4);
  put(&n_tensors, 8);
  put(&n_kv, 8);
  put(&key_len, 8);
  want += "k";
  put(&u32_type, 4);
  put(&value, 4);
  put(&name_len, 8);
  want += "t";
  put(&n_dims, 4);
  put(&dim, 8);
  put(&f32_type, 4);
  put(&offset, 8);
  want.resize(96, '\0');  // padding to the 32-byte aligned data section
  const float data[2] = {Value(0), Value(1)};
  put(data, 8);
  want.resize(128, '\0');
  EXPECT_EQ(b, want);
}

TEST(GgufTest, StreamsLargeTensorsInChunks) {
  ScratchDir dir;
  const uint64_t n = (uint64_t{1} << 20) * 2 + 77;
  GgufTensorSource t = Tensor("big", {n}, GgmlType::kBF16);
  std::vector<std::pair<uint64_t, size_t>> calls;
  auto inner = t.fill;
  t.fill = [&calls, inner](uint64_t first, size_t count, float* out) {
    calls.emplace_back(first, count);
    return inner(first, count, out);
  };
  Progress progress("test", 0, false);
  ASSERT_TRUE(WriteGguf(dir / "big.gguf", {}, {t}, &progress).ok());
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].first, uint64_t{1} << 20);
  EXPECT_EQ(calls[2].second, 77u);
  auto g = GgufFile::Open(dir / "big.gguf");
  ASSERT_TRUE(g.ok());
  const std::vector<float> got = g->TensorAsF32(g->tensors()[0]);
  for (uint64_t k : {uint64_t{0}, uint64_t{1} << 20, n - 1}) {
    EXPECT_EQ(got[k], BF16ToF32(F32ToBF16(Value(k))));
  }
}

// fuzz/corpus/gguf_fuzz/valid was built by hand (Python struct), not by WriteGguf, and
// @huggingface/gguf reads it with the same values.
TEST(GgufTest, ReadsAHandBuiltFile) {
  const std::filesystem::path path = std::filesystem::path(RVEC_TEST_DATA_DEFAULT).parent_path() /
                                     "fuzz" / "corpus" / "gguf_fuzz" / "valid";
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->kvs().size(), 14u);
  EXPECT_EQ(g->Find("general.architecture")->s, "qwen2");
  EXPECT_EQ(g->Find("i8")->i, -100);
  EXPECT_EQ(g->Find("u16")->u, 60000u);
  EXPECT_EQ(g->Find("f32")->f, 0.5);
  EXPECT_TRUE(g->Find("b")->b);
  EXPECT_EQ(g->Find("u64")->u, uint64_t{1} << 40);
  EXPECT_EQ(g->Find("tokens")->array[1].s, "Ġb");
  EXPECT_EQ(g->Find("nested")->array[0].array[1].i, 2);
  ASSERT_EQ(g->tensors().size(), 3u);
  EXPECT_EQ(g->tensors()[0].dims, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(g->tensors()[2].type, GgmlType::kBF16);
  EXPECT_EQ(g->tensors()[2].offset, 64u);
  EXPECT_EQ(g->TensorData(g->tensors()[0])[5], 5);  // the data section holds bytes 0, 1, 2, ...
}

TEST(GgufTest, FillErrorsAndBadArraysFailTheWrite) {
  ScratchDir dir;
  GgufTensorSource t = Tensor("t", {4}, GgmlType::kF32);
  t.fill = [](uint64_t, size_t, float*) -> Status { return DataLoss("source tensor t is bad"); };
  auto r = WriteGguf(dir / "e.gguf", {}, {t}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("source tensor t is bad"), std::string::npos);
  GgufValue mixed = GgufValue::Array(GgufType::kInt32, {GgufValue::I32(1), GgufValue::String("x")});
  r = WriteGguf(dir / "e2.gguf", {{"mixed", mixed}}, {}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mixed"), std::string::npos);
}

TEST(GgufTest, DamagedFilesAreRejectedNamingTheFile) {
  ScratchDir dir;
  ASSERT_TRUE(
      WriteGguf(dir / "ok.gguf", EveryTypeKvs(), {Tensor("t", {8, 8}, GgmlType::kF16)}, nullptr)
          .ok());
  const std::string good = ReadBytes(dir / "ok.gguf");
  // Cut inside the metadata, inside the tensor table, and inside the data.
  for (size_t cut : {size_t{30}, good.size() / 3, good.size() - 5}) {
    WriteBytes(dir / "cut.gguf", good.substr(0, cut));
    auto g = GgufFile::Open(dir / "cut.gguf");
    ASSERT_FALSE(g.ok()) << cut;
    EXPECT_NE(g.status().message().find("cut.gguf"), std::string::npos) << g.status().ToString();
  }
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  WriteBytes(dir / "magic.gguf", bad_magic);
  auto g = GgufFile::Open(dir / "magic.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("not a GGUF file"), std::string::npos);
  // A dimension whose byte size wraps a 64-bit counter to zero is still past the end.
  ASSERT_TRUE(WriteGguf(dir / "h.gguf", {{"k", GgufValue::U32(7)}},
                        {Tensor("t", {2}, GgmlType::kF32)}, nullptr)
                  .ok());
  std::string huge = ReadBytes(dir / "h.gguf");
  const uint64_t dim = uint64_t{1} << 62;  // 4 bytes each: 2^64 bytes
  std::memcpy(huge.data() + 54, &dim, 8);  // the dimension's place (see HeaderBytes...)
  WriteBytes(dir / "huge.gguf", huge);
  g = GgufFile::Open(dir / "huge.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("past the file's end"), std::string::npos)
      << g.status().ToString();
  std::string bad_version = good;
  bad_version[4] = 9;
  WriteBytes(dir / "version.gguf", bad_version);
  g = GgufFile::Open(dir / "version.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("version 9"), std::string::npos);
}

}  // namespace
}  // namespace rvec
