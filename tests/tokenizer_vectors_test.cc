// Golden tokenizer tests: every reference vector (Hugging Face tokenizers 0.22, llama.cpp,
// tiktoken) for the Qwen2.5, Qwen3 and OLMo 2 tokenizer files must match exactly, ids and text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path DataDir() { return TestDataDir(RVEC_TEST_DATA_DEFAULT) / "qwen-tokenizer"; }

std::vector<json> ReadJsonl(const fs::path& path) {
  std::vector<json> rows;
  auto text = ReadDataFile(path);  // plain or PATH.gz
  EXPECT_TRUE(text.ok()) << "missing test data file: " << text.status().message();
  std::istringstream in(text.ok() ? *text : std::string());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json row = json::parse(line, nullptr, false);
    EXPECT_FALSE(row.is_discarded()) << path << ": bad JSON line";
    if (!row.is_discarded()) rows.push_back(std::move(row));
  }
  return rows;
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s.push_back(',');
    s.append(std::to_string(ids[i]));
  }
  return s + "]";
}

class TokenizerVectors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* name : {"qwen2.5", "qwen3"}) {
      const fs::path dir = DataDir() / name;
      auto t = Tokenizer::FromModelDir(dir);
      ASSERT_TRUE(t.ok()) << "cannot load " << dir << ": " << t.status().message()
                          << " (the repository's testdata/, or RVEC_TEST_DATA)";
      tokenizers_->emplace(name, std::move(t).value());
    }
  }
  static void TearDownTestSuite() { tokenizers_->clear(); }
  static const Tokenizer& Get(const std::string& name) { return tokenizers_->at(name); }
  static inline std::map<std::string, Tokenizer>* tokenizers_ =
      new std::map<std::string, Tokenizer>;
};

TEST_F(TokenizerVectors, EncodeDecodeVectorsBothTokenizers) {
  const auto rows = ReadJsonl(DataDir() / "vectors.jsonl");
  ASSERT_EQ(rows.size(), 669u);
  std::map<int64_t, json> qwen3_diff;
  for (json& row : ReadJsonl(DataDir() / "vectors_qwen3_diff.jsonl")) {
    const int64_t id = row.at("id").get<int64_t>();
    qwen3_diff.emplace(id, std::move(row));
  }
  ASSERT_EQ(qwen3_diff.size(), 18u);
  for (const std::string name : {"qwen2.5", "qwen3"}) {
    const Tokenizer& tok = Get(name);
    size_t passed = 0;
    for (const json& base : rows) {
      const json& row = (name == "qwen3" && qwen3_diff.count(base["id"].get<int64_t>()))
                            ? qwen3_diff[base["id"].get<int64_t>()]
                            : base;
      const std::string text = row["text"].get<std::string>();
      const auto want = row["ids"].get<std::vector<int32_t>>();
      const auto got = tok.Encode(text);
      bool ok = true;
      if (got != want) {
        ADD_FAILURE() << name << " row " << row["id"] << " (" << row["category"]
                      << "): encode mismatch\n text " << json(text).dump() << "\n want "
                      << Show(want) << "\n got  " << Show(got);
        ok = false;
      }
      std::vector<std::string> tokens;
      for (int32_t id : want) tokens.push_back(tok.IdToToken(id));
      if (tokens != row["tokens"].get<std::vector<std::string>>()) {
        ADD_FAILURE() << name << " row " << row["id"] << ": token strings differ";
        ok = false;
      }
      const std::string decoded = row["decoded"].get<std::string>();
      if (tok.Decode(want) != decoded) {
        ADD_FAILURE() << name << " row " << row["id"]
                      << ": decode mismatch: " << json(tok.Decode(want)).dump() << " vs "
                      << json(decoded).dump();
        ok = false;
      }
      const std::string skip = base.value("decoded_skip_special", decoded);
      if (row.contains("decoded_skip_special") || !qwen3_diff.count(base["id"].get<int64_t>())) {
        if (tok.Decode(want, /*skip_special_tokens=*/true) != skip) {
          ADD_FAILURE() << name << " row " << row["id"] << ": skip-special decode mismatch";
          ok = false;
        }
      }
      // Streaming decode yields the same text, never splitting a character.
      StreamDecoder stream(tok);
      std::string streamed;
      for (int32_t id : want) streamed += stream.Push(id);
      streamed += stream.Flush();
      if (streamed != decoded) {
        ADD_FAILURE() << name << " row " << row["id"] << ": streamed decode differs";
        ok = false;
      }
      passed += ok;
    }
    std::printf("[ vectors ] %s: %zu/%zu rows match\n", name.c_str(), passed, rows.size());
    EXPECT_EQ(passed, rows.size()) << name;
  }
}

TEST_F(TokenizerVectors, DecodeVectorsBothTokenizers) {
  const auto rows = ReadJsonl(DataDir() / "decode_vectors.jsonl");
  ASSERT_EQ(rows.size(), 1076u);
  for (const std::string name : {"qwen2.5", "qwen3"}) {
    const Tokenizer& tok = Get(name);
    size_t passed = 0;
    for (const json& row : rows) {
      const auto ids = row["ids"].get<std::vector<int32_t>>();
      bool ok = tok.Decode(ids) == row["decoded"].get<std::string>();
      if (row.contains("decoded_skip_special")) {
        ok = ok && tok.Decode(ids, true) == row["decoded_skip_special"].get<std::string>();
      }
      if (row.contains("token"))
        ok = ok && tok.IdToToken(ids[0]) == row["token"].get<std::string>();
      if (row.contains("tokens")) {
        for (size_t i = 0; i < ids.size(); ++i) {
          ok = ok && tok.IdToToken(ids[i]) == row["tokens"][i].get<std::string>();
        }
      }
      // The stream never emits a partial character: each chunk is valid UTF-8 on its own, and
      // together they equal the whole decode.
      StreamDecoder stream(tok);
      std::string streamed;
      for (int32_t id : ids) {
        const std::string chunk = stream.Push(id);
        ok = ok && unicode::IsValidUtf8(chunk);
        streamed += chunk;
      }
      streamed += stream.Flush();
      ok = ok && streamed == row["decoded"].get<std::string>();
      if (!ok) ADD_FAILURE() << name << ": decode vector " << row.dump() << " mismatches";
      passed += ok;
    }
    std::printf("[ vectors ] %s: %zu/%zu decode rows match\n", name.c_str(), passed, rows.size());
    EXPECT_EQ(passed, rows.size()) << name;
  }
}

TEST_F(TokenizerVectors, LlamaCppVectorsBothTokenizers) {
  std::ifstream inp(DataDir() / "llamacpp" / "ggml-vocab-qwen2.gguf.inp", std::ios::binary);
  std::ifstream outp(DataDir() / "llamacpp" / "ggml-vocab-qwen2.gguf.out", std::ios::binary);
  ASSERT_TRUE(inp.good() && outp.good()) << "llama.cpp vector files missing under " << DataDir();
  std::stringstream ss;
  ss << inp.rdbuf();
  const std::string all = ss.str();
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (true) {
    const size_t hit = all.find(sep, pos);
    if (hit == std::string::npos) break;
    inputs.push_back(all.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::vector<std::vector<int32_t>> expected;
  std::string line;
  while (std::getline(outp, line)) {
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    int32_t id;
    while (ls >> id) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(expected.size(), inputs.size());
  for (const std::string name : {"qwen2.5", "qwen3"}) {
    const Tokenizer& tok = Get(name);
    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto got = tok.Encode(inputs[i]);
      const bool ok = got == expected[i] && tok.Decode(got) == inputs[i];
      if (!ok) {
        ADD_FAILURE() << name << " llama.cpp input " << i << " " << json(inputs[i]).dump()
                      << "\n want " << Show(expected[i]) << "\n got  " << Show(got);
      }
      passed += ok;
    }
    std::printf("[ vectors ] %s: %zu/%zu llama.cpp rows match\n", name.c_str(), passed,
                inputs.size());
  }
}

TEST_F(TokenizerVectors, ChatTemplateRenderingsTokenize) {
  const auto rows = ReadJsonl(DataDir() / "chat_template_vectors.jsonl");
  ASSERT_FALSE(rows.empty());
  const Tokenizer& tok = Get("qwen2.5");
  size_t passed = 0;
  for (const json& row : rows) {
    const auto want = row["ids"].get<std::vector<int32_t>>();
    const auto got = tok.Encode(row["rendered"].get<std::string>());
    const bool ok = got == want;
    if (!ok)
      ADD_FAILURE() << "chat template rendering does not tokenize to its ids: " << row.dump();
    passed += ok;
  }
  std::printf("[ vectors ] qwen2.5: %zu/%zu chat-template renderings tokenize\n", passed,
              rows.size());
  EXPECT_EQ(passed, rows.size());
}

// OLMo 2's tokenizer (cl100k_base vocabulary and pattern, OLMo's added tokens): ids from OpenAI's
// tiktoken (testdata/olmo2-tokenizer/SOURCE.md).
fs::path Olmo2Json() {
  return TestDataDir(RVEC_TEST_DATA_DEFAULT) / "olmo2-tokenizer" / "allenai_dolma2.json";
}

TEST(Olmo2Tokenizer, EncodeDecodeVectors) {
  auto tok = Tokenizer::FromFile(Olmo2Json());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto rows = ReadJsonl(Olmo2Json().parent_path() / "vectors.jsonl");
  ASSERT_EQ(rows.size(), 628u);
  size_t passed = 0;
  for (const json& row : rows) {
    const std::string text = row["text"].get<std::string>();
    const auto want = row["ids"].get<std::vector<int32_t>>();
    const auto got = tok->Encode(text);
    bool ok = got == want;
    if (!ok) {
      ADD_FAILURE() << "olmo2 row " << row["id"] << " (" << row["category"]
                    << "): encode mismatch\n text " << json(text).dump() << "\n want " << Show(want)
                    << "\n got  " << Show(got);
    }
    std::vector<std::string> tokens;
    for (int32_t id : want) tokens.push_back(tok->IdToToken(id));
    if (tokens != row["tokens"].get<std::vector<std::string>>()) {
      ADD_FAILURE() << "olmo2 row " << row["id"] << ": token strings differ";
      ok = false;
    }
    if (tok->Decode(want) != row["decoded"].get<std::string>()) {
      ADD_FAILURE() << "olmo2 row " << row["id"]
                    << ": decode mismatch: " << json(tok->Decode(want)).dump();
      ok = false;
    }
    passed += ok;
  }
  std::printf("[ vectors ] olmo2: %zu/%zu rows match\n", passed, rows.size());
  EXPECT_EQ(passed, rows.size());
}

// Added tokens are matched whole inside text (special or not), as Hugging Face tokenizers does,
// and only the special ones are dropped by skip_special_tokens.
TEST(Olmo2Tokenizer, AddedTokensFromTheFileItself) {
  auto tok = Tokenizer::FromFile(Olmo2Json());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto text = ReadDataFile(Olmo2Json());
  ASSERT_TRUE(text.ok());
  const json file = json::parse(*text);
  const auto hello = tok->Encode("Hello");
  const auto world = tok->Encode(" world");
  size_t checked = 0;
  for (const json& added : file["added_tokens"]) {
    const std::string content = added["content"].get<std::string>();
    const int32_t id = added["id"].get<int32_t>();
    EXPECT_EQ(tok->Encode(content), std::vector<int32_t>{id}) << content;
    std::vector<int32_t> want = hello;
    want.push_back(id);
    want.insert(want.end(), world.begin(), world.end());
    EXPECT_EQ(tok->Encode("Hello" + content + " world"), want) << content;
    EXPECT_EQ(tok->IsSpecial(id), added["special"].get<bool>()) << content;
    EXPECT_EQ(tok->Decode(want, /*skip_special_tokens=*/true),
              added["special"].get<bool>() ? "Hello world" : "Hello" + content + " world")
        << content;
    ++checked;
  }
  EXPECT_EQ(checked, 22u);
  EXPECT_EQ(tok->TokenToId("<|endoftext|>"), 100257);
}

}  // namespace
}  // namespace rvec
