// Golden test of the competition-math prompts: for every --prompt-style, the first docs of each
// data set render, plain and through the real Qwen2.5 chat template, byte for byte as the
// Qwen2.5-Math evaluation builds them (tests/golden/math_prompts, from gen_math_prompts.py).
#include <gtest/gtest.h>

#include "base/fs.h"
#include "eval/task.h"
#include "eval/tasks/math.h"
#include "text/chat_template.h"

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() { return TestDataDir(RVEC_TEST_DATA_DEFAULT); }

TEST(MathGolden, PromptsMatchTheQwenMathEvaluationForEveryStyle) {
  auto tmpl = ChatTemplate::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  const fs::path golden_dir = fs::path(RVEC_SOURCE_DIR) / "tests" / "golden" / "math_prompts";
  size_t compared = 0;
  for (const auto& style : MathPromptStyles()) {
    const fs::path path = golden_dir / (style + ".json");
    auto text = ReadFileToString(path);
    ASSERT_TRUE(text.ok()) << path << " missing: run tests/golden/gen_math_prompts.py";
    const auto golden = nlohmann::json::parse(*text);
    for (const auto& name : MathTaskNames()) {
      auto task = TaskRegistry::Global().Create(name);
      ASSERT_TRUE(task.ok()) << name;
      ASSERT_TRUE((*task)->Load(DataDir()).ok()) << name;
      for (const bool chat : {false, true}) {
        const auto& want = golden.at(chat ? "chat" : "plain").at(name);
        ASSERT_TRUE((*task)->SetPromptStyle(style, chat).ok()) << style;
        PromptOptions options;
        if (chat) options.chat_template = &*tmpl;
        auto prompts = (*task)->BuildPrompts(want.size(), options);
        ASSERT_TRUE(prompts.ok()) << prompts.status().ToString();
        ASSERT_EQ(prompts->size(), want.size());
        for (size_t i = 0; i < want.size(); ++i, ++compared) {
          EXPECT_EQ((*prompts)[i].context, want[i].get<std::string>())
              << style << " " << name << " doc " << i << (chat ? " chat" : " plain");
        }
      }
    }
  }
  EXPECT_EQ(compared, MathPromptStyles().size() * MathTaskNames().size() * 2 * 2);
}

}  // namespace
}  // namespace rvec::eval
