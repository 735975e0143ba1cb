// Tests for the safetensors header parser/validator and serialiser against the reference
// implementation's behaviour (byte vectors from huggingface/safetensors' own tests).
#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/io_test_util.h"

namespace rvec {
namespace {

using ::testing::HasSubstr;
using testing::RawSafetensors;
using testing::ScratchDir;

StatusOr<SafetensorsHeader> Parse(const std::string& image) {
  return ParseSafetensorsBuffer(reinterpret_cast<const uint8_t*>(image.data()), image.size(),
                                "test.safetensors");
}

std::string F32Bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

TEST(SafetensorsSerializeTest, MatchesReferenceBytes) {
  // huggingface/safetensors test_serialization: one F32 [1,2,3] tensor "attn.0", no metadata.
  TensorInfo t{"attn.0", DType::kF32, {1, 2, 3}, 0, 24};
  const std::string header = SerializeSafetensorsHeader({t}, {});
  EXPECT_EQ(header, R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})");
  EXPECT_EQ(header.size(), 64u);
  // test_serialization_forced_alignement: 63 bytes of JSON padded with one... seven spaces.
  TensorInfo t2{"attn0", DType::kF32, {1, 1, 2, 3}, 0, 24};
  const std::string header2 = SerializeSafetensorsHeader({t2}, {});
  EXPECT_EQ(header2.size(), 72u);
  EXPECT_EQ(header2.substr(65), std::string(7, ' '));
  // test_empty: "{}" + 6 spaces; with metadata {"framework":"pt"}: 35 bytes + 5 spaces.
  EXPECT_EQ(SerializeSafetensorsHeader({}, {}), "{}      ");
  EXPECT_EQ(SerializeSafetensorsHeader({}, {{"framework", "pt"}}),
            R"({"__metadata__":{"framework":"pt"}}     )");
}

TEST(SafetensorsParseTest, ParsesReferenceFile) {
  const std::string data = F32Bytes({0, 1, 2, 3, 4, 5});
  const std::string image =
      RawSafetensors(R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})", data);
  auto header = Parse(image);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->tensors.size(), 1u);
  EXPECT_EQ(header->tensors[0].name, "attn.0");
  EXPECT_EQ(header->tensors[0].dtype, DType::kF32);
  EXPECT_EQ(header->tensors[0].shape, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(header->tensors[0].NumElements(), 6u);
  EXPECT_EQ(header->header_size, 64u);
  EXPECT_TRUE(header->metadata.empty());
}

TEST(SafetensorsParseTest, SortsByOffsetAndKeepsMetadata) {
  const std::string image =
      RawSafetensors(R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                     R"("__metadata__":{"format":"pt","note":"x"},)"
                     R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                     std::string(8, '\x01'));
  auto header = Parse(image);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->tensors.size(), 2u);
  EXPECT_EQ(header->tensors[0].name, "a");
  EXPECT_EQ(header->tensors[1].name, "b");
  EXPECT_EQ(header->metadata.at("note"), "x");
}

TEST(SafetensorsParseTest, AcceptsWhatTheReferenceAccepts) {
  // Scalars, zero-length tensors (several at the same offset), whitespace padding on both sides,
  // unknown extra fields, null metadata, an empty file body.
  const std::string header =
      "  {\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8],\"extra\":1},\n"
      "\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
      "\"z2\":{\"dtype\":\"I64\",\"shape\":[3,0,2],\"data_offsets\":[8,8]},"
      "\"__metadata__\":null}\t\r\n   ";
  auto parsed = Parse(RawSafetensors(header, std::string(8, '\0')));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->tensors.size(), 3u);
  EXPECT_EQ(parsed->tensors[0].name, "s");
  EXPECT_EQ(parsed->tensors[0].NumElements(), 1u);

  auto empty = Parse(RawSafetensors("{}", ""));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->tensors.empty());

  // Every dtype the issue lists.
  for (const char* dtype : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
                            "F8_E4M3", "F8_E5M2"}) {
    const auto size = DTypeSize(*ParseDType(dtype));
    const std::string h = fmt::format(
        R"({{"t":{{"dtype":"{}","shape":[3],"data_offsets":[0,{}]}}}})", dtype, 3 * size);
    auto p = Parse(RawSafetensors(h, std::string(3 * size, '\0')));
    EXPECT_TRUE(p.ok()) << dtype << ": " << p.status().ToString();
  }
}

struct BadCase {
  const char* name;
  std::string image;
  const char* expect;  // substring of the error message
};

std::vector<BadCase> BadCases() {
  auto tensor = [](const char* dtype, const char* shape, const char* offsets) {
    return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":{}}})", dtype, shape, offsets);
  };
  std::string huge(8, '\0');
  huge[3] = 0x10;  // 2^27 > 100,000,000
  return {
      {"too short", "abc", "too short"},
      {"huge header length", huge + "{}", "exceeds the safetensors limit"},
      {"header past end", RawSafetensors("{}", "").substr(0, 9), "runs past the end"},
      {"not json", RawSafetensors("{\"a\":", ""), "not valid JSON"},
      {"array", RawSafetensors("[1,2]", ""), "must be a JSON object"},
      {"trailing garbage", RawSafetensors("{}x", ""), "not valid JSON"},
      {"trailing nul padding", RawSafetensors(std::string("{}\0\0", 4), ""), "not valid JSON"},
      {"bad utf8", RawSafetensors("{\"\xff\":1}", ""), "UTF-8"},
      {"bom", RawSafetensors("\xEF\xBB\xBF{}", ""), "byte order mark"},
      {"duplicate",
       RawSafetensors("{\"a\":" + tensor("U8", "[1]", "[0,1]") +
                          ",\"a\":" + tensor("U8", "[1]", "[0,1]") + "}",
                      "x"),
       "duplicate key \"a\""},
      {"unknown dtype", RawSafetensors("{\"w\":" + tensor("F12", "[1]", "[0,2]") + "}", "xx"),
       "tensor \"w\": unknown dtype \"F12\""},
      {"unsupported dtype", RawSafetensors("{\"w\":" + tensor("U32", "[1]", "[0,4]") + "}", "xxxx"),
       "not supported by rvec"},
      {"missing shape", RawSafetensors(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "x"),
       "tensor \"w\": missing field \"shape\""},
      {"negative dim", RawSafetensors("{\"w\":" + tensor("U8", "[-1]", "[0,1]") + "}", "x"),
       "non-negative"},
      {"float dim", RawSafetensors("{\"w\":" + tensor("U8", "[1.0]", "[0,1]") + "}", "x"),
       "non-negative"},
      {"three offsets", RawSafetensors("{\"w\":" + tensor("U8", "[1]", "[0,1,2]") + "}", "x"),
       "[begin, end]"},
      {"shape mismatch", RawSafetensors("{\"w\":" + tensor("BF16", "[3]", "[0,4]") + "}", "xxxx"),
       "needs 6 bytes but data_offsets [0, 4] span 4"},
      {"hole", RawSafetensors("{\"w\":" + tensor("U8", "[2]", "[2,4]") + "}", "xxxx"), "hole"},
      {"overlap",
       RawSafetensors("{\"a\":" + tensor("U8", "[4]", "[0,4]") +
                          ",\"b\":" + tensor("U8", "[2]", "[2,4]") + "}",
                      "xxxx"),
       "overlap"},
      {"reversed", RawSafetensors("{\"w\":" + tensor("U8", "[0]", "[4,0]") + "}", "xxxx"),
       "end before they begin"},
      {"overflow",
       RawSafetensors("{\"w\":" + tensor("F32", "[4294967296,4294967296]", "[0,4]") + "}", "xxxx"),
       "64 bits"},
      {"truncated data", RawSafetensors("{\"w\":" + tensor("U8", "[4]", "[0,4]") + "}", "xx"),
       "truncated"},
      {"trailing data", RawSafetensors("{\"w\":" + tensor("U8", "[2]", "[0,2]") + "}", "xxxx"),
       "trailing"},
      {"metadata number", RawSafetensors(R"({"__metadata__":{"n":1}})", ""),
       "__metadata__ entry \"n\""},
      {"metadata array", RawSafetensors(R"({"__metadata__":["a"]})", ""), "__metadata__ must be"},
      {"tensor not object", RawSafetensors(R"({"w":[1,2]})", ""),
       "tensor \"w\": expected an object"},
      {"deep nesting",
       RawSafetensors("{\"w\":" + std::string(200, '[') + std::string(200, ']') + "}", ""),
       "nested too deeply"},
  };
}

TEST(SafetensorsParseTest, RejectsMalformedHeadersWithClearMessages) {
  for (const BadCase& c : BadCases()) {
    auto parsed = Parse(c.image);
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_THAT(parsed.status().message(), HasSubstr("test.safetensors: ")) << c.name;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.expect)) << c.name;
  }
}

TEST(SafetensorsFileTest, OpensMappedFileAndViewsTensors) {
  ScratchDir dir;
  const std::string data = F32Bytes({1, 2, 3, 4});
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  testing::WriteBytes(dir / "x.safetensors", RawSafetensors(header, data));
  auto file = SafetensorsFile::Open(dir / "x.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->RawHeader(), header);
  EXPECT_EQ(file->data_offset(), 8 + header.size());
  const TensorInfo* b = file->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(file->Find("c"), nullptr);
  const TensorView view = file->View(*b);
  float values[2];
  std::memcpy(values, view.data, 8);
  EXPECT_EQ(values[0], 3.0f);
  EXPECT_EQ(values[1], 4.0f);
  file->Prefetch(*b);
  file->Release(*b);  // dropping pages of a file mapping never loses data
  std::memcpy(values, file->View(*b).data, 8);
  EXPECT_EQ(values[1], 4.0f);
}

TEST(SafetensorsFileTest, ErrorsNameTheFile) {
  ScratchDir dir;
  auto missing = SafetensorsFile::Open(dir / "nope.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.safetensors"));
  testing::WriteBytes(dir / "empty.safetensors", "");
  auto empty = SafetensorsFile::Open(dir / "empty.safetensors");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("empty.safetensors: file is empty"));
  auto directory = SafetensorsFile::Open(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(directory.status().message(), HasSubstr("directory"));
}

}  // namespace
}  // namespace rvec
