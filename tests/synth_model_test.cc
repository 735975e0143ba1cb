// A synthetic model directory is complete for the rest of rvec: its tokenizer.json loads in the
// Hugging Face-exact tokenizer and round-trips text, and its ChatML template renders as Qwen2's.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "synth/synth.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;

class SynthModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("rvec-synth-model-test-" + std::to_string(rd()));
    SynthOptions o;
    o.preset = "tiny-qwen2";
    o.seed = 1;
    o.out = dir_ / "m";
    StatusOr<SynthResult> r = WriteSyntheticModel(o, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path model() const { return dir_ / "m"; }
  fs::path dir_;
};

TEST_F(SynthModelTest, TokenizerLoadsAndRoundTrips) {
  StatusOr<Tokenizer> tok = Tokenizer::FromModelDir(model());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const SynthTokenizerFiles& files = SynthTokenizer();
  EXPECT_EQ(tok->VocabSize(), static_cast<size_t>(files.size));
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->pad_token(), "<|endoftext|>");
  for (const std::string text : {"The farmer has 12 apples and gives three of them away.",
                                 "  spaces\n\nand lines\t!", "Ünïcödé ✓ 数学 🙂", ""}) {
    const std::vector<int32_t> ids = tok->Encode(text);
    EXPECT_EQ(tok->Decode(ids), text);
  }
  // Learned merges shorten common English: " the" and " apples" are not spelled byte by byte.
  const std::string english = "the apples and the cups of the farmer";
  EXPECT_LT(tok->Encode(english).size(), english.size() / 2);
  const std::vector<int32_t> chat = tok->Encode("<|im_start|>user\nHi<|im_end|>");
  ASSERT_GE(chat.size(), 3u);
  EXPECT_EQ(chat.front(), files.im_start_id);
  EXPECT_EQ(chat.back(), files.im_end_id);
  EXPECT_TRUE(tok->IsSpecial(files.endoftext_id));
}

TEST_F(SynthModelTest, ChatTemplateRendersChatML) {
  StatusOr<ChatTemplate> tmpl = ChatTemplate::FromModelDir(model());
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  ChatTemplateInputs in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", "Hi"}}});
  in.add_generation_prompt = true;
  StatusOr<std::string> out = tmpl->Render(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // What Jinja2 (transformers' settings) renders for this template.
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  in.messages = nlohmann::json::array({{{"role", "system"}, {"content", "S"}},
                                       {{"role", "user"}, {"content", "Hi"}},
                                       {{"role", "assistant"}, {"content", "Yo"}}});
  in.add_generation_prompt = false;
  out = tmpl->Render(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nYo<|im_end|>\n");
}

}  // namespace
}  // namespace rvec
