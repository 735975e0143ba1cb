// Competition-math task tests on the vendored data: gold answers per data set, questions, prompt
// styles and their stop strings, scoring through the grader, data layouts and the `math` group.
#include "eval/tasks/math.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "eval/data.h"

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

// The math folder itself (DATA/NAME/test.jsonl); the tests also read DATA/math/NAME/test.jsonl.
fs::path MathDataDir() {
  const fs::path dir = TestDataDir(RVEC_TEST_DATA_DEFAULT) / "math";
  EXPECT_TRUE(DataFileExists(dir / "amc23" / "test.jsonl"))
      << "test data missing under " << dir << " (the repository's testdata/, or RVEC_TEST_DATA)";
  return dir;
}

std::unique_ptr<EvalTask> Loaded(const std::string& name, const fs::path& dir = MathDataDir()) {
  auto task = TaskRegistry::Global().Create(name);
  EXPECT_TRUE(task.ok()) << name;
  const Status s = (*task)->Load(dir);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(task).value();
}

TEST(MathTasks, LoadsEveryRowOfTheFiveSetsWithAGoldAnswer) {
  const std::map<std::string, size_t> rows = {{"math500", 500},
                                              {"aime24", 30},
                                              {"amc23", 40},
                                              {"minerva_math", 272},
                                              {"olympiadbench", 675}};
  for (const auto& [name, n] : rows) {
    auto task = Loaded(name);
    ASSERT_EQ(task->size(), n) << name;
    for (size_t i = 0; i < task->size(); ++i) {
      EXPECT_FALSE(task->Target(i).empty()) << name << " doc " << i;
      EXPECT_FALSE(MathQuestion(name, task->doc(i)).empty()) << name << " doc " << i;
    }
  }
}

TEST(MathTasks, GoldAnswersAreParsedPerDataSetAsTheReferenceDoes) {
  // MATH-500: the `answer` field.
  EXPECT_EQ(Loaded("math500")->Target(0), "\\left( 3, \\frac{\\pi}{2} \\right)");
  // AIME: `answer`, a string kept as written (leading zeros included).
  auto aime = Loaded("aime24");
  EXPECT_EQ(aime->Target(0), "204");
  EXPECT_EQ(aime->Target(7), "025");
  // AMC: `answer` is a float (27.0); integral values read as integers, signs kept.
  auto amc = Loaded("amc23");
  EXPECT_EQ(amc->Target(0), "27");
  EXPECT_EQ(amc->Target(15), "-1");
  // Minerva: the last \boxed{} of `solution` (here followed by a unit outside the box).
  auto minerva = Loaded("minerva_math");
  EXPECT_EQ(minerva->Target(0), "1.6");
  // OlympiadBench: the first `final_answer`, "$" signs removed, the unit not appended.
  auto olymp = Loaded("olympiadbench");
  EXPECT_EQ(olymp->Target(0), "2");
  EXPECT_EQ(olymp->Target(1), "\\frac{1}{2 n+2}");
  EXPECT_EQ(olymp->Target(13), "69,84");
}

TEST(MathTasks, GoldAnswersOfHandMadeRows) {
  EXPECT_EQ(MathGoldAnswer("amc23", {{"answer", 2.5}}), "2.5");
  EXPECT_EQ(MathGoldAnswer("aime24", {{"answer", 33}}), "33");
  EXPECT_EQ(MathGoldAnswer("minerva_math", {{"solution", "a \\boxed{1} then \\boxed{x^{2}}."}}),
            "x^{2}");
  EXPECT_EQ(MathGoldAnswer("olympiadbench", {{"final_answer", {"$x=1$"}}}), "x=1");
}

TEST(MathTasks, QuestionsTakeQuestionThenProblemAndGetTheYesNoHint) {
  EXPECT_EQ(MathQuestion("amc23", {{"question", " Q? "}, {"problem", "P?"}, {"answer", 1.0}}),
            "Q?");
  EXPECT_EQ(MathQuestion("math500", {{"problem", "P?\n"}, {"answer", "5"}}), "P?");
  EXPECT_EQ(MathQuestion("math500", {{"problem", "Is it?"}, {"answer", "Yes"}}),
            "Is it? (Yes or No)");
  EXPECT_EQ(MathQuestion("math500", {{"problem", "True?"}, {"answer", "false"}}),
            "True? (True or False)");
}

TEST(MathTasks, GenerationSettingsFollowMathEval) {
  const TaskConfig c = MathTaskConfig("math500");
  EXPECT_EQ(c.generation.max_gen_toks, 2048);
  EXPECT_FALSE(c.generation.do_sample);
  EXPECT_EQ(c.generation.temperature, 0.0);
  EXPECT_EQ(c.generation.until, (std::vector<std::string>{"</s>", "<|im_end|>", "<|endoftext|>"}));
  EXPECT_EQ(c.num_fewshot, 0);
  ASSERT_EQ(c.filters.size(), 1u);
  EXPECT_EQ(c.filters[0].name, "boxed");
}

TEST(MathTasks, PromptStylesRenderTheReferenceTemplates) {
  auto task = Loaded("amc23");
  const std::string q = MathQuestion("amc23", task->doc(0));
  const auto first_prompt = [&](const std::string& style, bool chat) {
    EXPECT_TRUE(task->SetPromptStyle(style, chat).ok()) << style;
    auto prompts = task->BuildPrompts(1, PromptOptions());
    EXPECT_TRUE(prompts.ok());
    return (*prompts)[0];
  };
  EXPECT_EQ(first_prompt("", false).context,
            "<|im_start|>system\nPlease reason step by step, and put your final answer within "
            "\\boxed{}.<|im_end|>\n<|im_start|>user\n" +
                q + "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(first_prompt("cot", false).context, "Question: " + q + "\nAnswer:");
  EXPECT_EQ(task->config().generation.until.back(), "\n\nQuestion:");
  // cot-fewshot: the reference's 5 MATH exemplars (4 Minerva ones for minerva_math) first.
  const std::string fewshot = first_prompt("cot-fewshot", false).context;
  EXPECT_EQ(fewshot.rfind("Question: Kevin Kangaroo begins hopping", 0), 0u) << fewshot;
  EXPECT_TRUE(fewshot.ends_with("The answer is 6z^5+15z^4-22z^3-8z^2+17z-6\n\n\nQuestion: " + q +
                                "\nAnswer:"))
      << fewshot;
  EXPECT_EQ(task->config().generation.until.back(), "\n\nQuestion:");
  EXPECT_EQ(first_prompt("mathstral", false).context,
            q + "\nPlease reason step by step, and put your final answer within \\boxed{}.");
  EXPECT_EQ(task->config().generation.until.back(), "<|endoftext|>");
  // Chat styles: a system turn and the user's turn for the chat template to render.
  const auto turns = first_prompt("qwen25-math-cot", true).structured.turns;
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[0].role, "system");
  EXPECT_EQ(turns[0].content,
            "Please reason step by step, and put your final answer within \\boxed{}.");
  EXPECT_EQ(turns[1].content, q);
  // Base styles under a chat template: the whole prompt, stripped, as the one user turn.
  const auto base_turns = first_prompt("deepseek-math", true).structured.turns;
  ASSERT_EQ(base_turns.size(), 1u);
  EXPECT_EQ(base_turns[0].content,
            "User: " + q +
                "\nPlease reason step by step, and put your final answer within "
                "\\boxed{}.\n\nAssistant:");
  const Status bad = task->SetPromptStyle("pal", false);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("qwen25-math-cot"), std::string::npos) << bad.message();
  TaskConfig derived = MathTaskConfig("amc23");
  derived.name = "amc23@typos";
  EXPECT_EQ(ApplyMathPromptStyle("", false, &derived).code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(ValidateMathPromptStyle("qwen-boxed").ok());
  EXPECT_FALSE(ValidateMathPromptStyle("tora").ok());
}

DocResponse Generated(const std::string& text) {
  DocResponse r;
  r.generation = text;
  return r;
}

TEST(MathTasks, ScoresTheLastBoxedAnswerAgainstTheGold) {
  auto aime = Loaded("aime24");
  auto right = aime->Score(0, Generated("So the walk takes \\boxed{5} hours... no: \\boxed{204}."));
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->metrics.at("exact_match,boxed"), 1.0);
  EXPECT_EQ(right->filtered.at("boxed"), "204");
  EXPECT_EQ(right->target, "204");
  auto wrong = aime->Score(0, Generated("\\boxed{999}"));
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->metrics.at("exact_match,boxed"), 0.0);
  auto none = aime->Score(0, Generated(""));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->metrics.at("exact_match,boxed"), 0.0);
  EXPECT_EQ(aime->MetricKeys(), (std::vector<std::string>{"exact_match,boxed"}));
}

TEST(MathTasks, ReadsBothDataLayoutsAndNamesDataPullWhenMissing) {
  // `rvec data pull` and testdata/ keep DATA/math/math500/...; DATA/math500/... is read too.
  EXPECT_EQ(Loaded("math500", MathDataDir().parent_path())->size(), 500u);
  EXPECT_EQ(Loaded("math500", MathDataDir())->size(), 500u);
  auto task = TaskRegistry::Global().Create("minerva_math");
  ASSERT_TRUE(task.ok());
  const Status s = (*task)->Load("/nonexistent-rvec-data");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("math/minerva_math/test.jsonl"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rvec data pull math"), std::string::npos) << s.message();
}

TEST(MathTasks, TheMathGroupHoldsTheFiveSets) {
  auto resolved = ResolveTaskList({"math"});
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->leaves, MathTaskNames());
  ASSERT_EQ(resolved->groups.size(), 1u);
  EXPECT_EQ(resolved->groups[0]->aggregate_metrics,
            (std::vector<std::string>{"exact_match,boxed"}));
}

TEST(MathTasks, DataPullMapsEveryMathTaskToTheMathDataSet) {
  auto sets = DataSetsFor({"aime24", "olympiadbench", "math"});
  ASSERT_TRUE(sets.ok()) << sets.status().ToString();
  EXPECT_EQ(*sets, (std::vector<std::string>{"math"}));
  size_t files = 0;
  for (const auto& f : DataManifest()) files += f.dataset == "math";
  EXPECT_EQ(files, 5u);
}

}  // namespace
}  // namespace rvec::eval
