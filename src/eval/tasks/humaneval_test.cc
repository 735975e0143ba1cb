// HumanEval task tests: data, lm-eval prompt/stop/program shapes, the execution opt-in, scoring.
#include "eval/tasks/humaneval.h"

#include <gtest/gtest.h>

#include "base/fs.h"

namespace rvec::eval {
namespace {

std::filesystem::path DataDir() {
  const auto dir = TestDataDir(RVEC_TEST_DATA_DEFAULT);
  EXPECT_TRUE(std::filesystem::exists(dir / "humaneval" / "HumanEval.jsonl.gz"))
      << "test data missing under " << dir << " (the repository's testdata/, or RVEC_TEST_DATA)";
  return dir;
}

class HumanEvalTest : public ::testing::Test {
 protected:
  void TearDown() override { SetCodeExecutionOptions(CodeExecutionOptions()); }
};

TEST_F(HumanEvalTest, LoadsAll164Problems) {
  auto docs = LoadHumanEval(DataDir());
  ASSERT_TRUE(docs.ok()) << docs.status().message();
  ASSERT_EQ(docs->size(), 164u);
  EXPECT_EQ((*docs)[0]["task_id"], "HumanEval/0");
  EXPECT_EQ((*docs)[163]["task_id"], "HumanEval/163");
  EXPECT_EQ((*docs)[0]["entry_point"], "has_close_elements");
  auto missing = LoadHumanEval("/nonexistent-rvec-data");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("rvec data pull humaneval"), std::string::npos);
}

TEST_F(HumanEvalTest, ConfigMatchesLmEval) {
  const TaskConfig c = HumanEvalConfig();
  EXPECT_EQ(c.name, "humaneval");
  EXPECT_EQ(c.generation.until,
            (std::vector<std::string>{"\nclass", "\ndef", "\n#", "\nif", "\nprint"}));
  EXPECT_EQ(c.generation.max_gen_toks, 1024);
  EXPECT_FALSE(c.generation.do_sample);
  EXPECT_EQ(c.num_fewshot, 0);
  ASSERT_EQ(c.filters.size(), 1u);
  EXPECT_EQ(c.filters[0].name, "create_test");
  ASSERT_EQ(c.metrics.size(), 1u);
  EXPECT_EQ(c.metrics[0].name, "pass@1");
  EXPECT_TRUE(TaskExecutesCode(c));
  const TaskConfig i = HumanEvalInstructConfig();
  EXPECT_EQ(i.name, "humaneval_instruct");
  EXPECT_EQ(i.generation.until, c.generation.until);
  const Doc doc = {
      {"prompt", "def f():\n"}, {"test", "def check(c):\n    pass\n"}, {"entry_point", "f"}};
  EXPECT_EQ(i.doc_to_text(doc),
            "Write a solution to the following problem and make sure that it passes the "
            "tests:\n```python\ndef f():\n\n```\n");
  EXPECT_EQ(c.doc_to_text(doc), "def f():\n");
  EXPECT_EQ(HumanEvalReference(doc), "def check(c):\n    pass\n\ncheck(f)");
  EXPECT_EQ(HumanEvalPrediction(doc, "    return 1\n", false), "def f():\n    return 1\n");
  EXPECT_EQ(HumanEvalPrediction(doc, "    return 1\n```\nmore", true), "def f():\n    return 1\n");
  EXPECT_EQ(HumanEvalPrediction(doc, "    return 1\n", true), "def f():\n    return 1\n");
}

TEST_F(HumanEvalTest, RefusesWithoutOptIn) {
  SetCodeExecutionOptions(CodeExecutionOptions());  // allow = false
  EvalTask task(HumanEvalConfig());
  const Status status = task.Load(DataDir());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("--allow-code-execution"), std::string::npos) << status.message();
}

TEST_F(HumanEvalTest, ScoresCanonicalAndBrokenSolutions) {
  CodeExecutionOptions options;
  options.allow = true;
  options.jobs = 2;
  SetCodeExecutionOptions(options);
  EvalTask task(HumanEvalConfig());
  const Status loaded = task.Load(DataDir());
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  auto prompts = task.BuildPrompts(3, PromptOptions());
  ASSERT_TRUE(prompts.ok());
  EXPECT_EQ((*prompts)[0].context, task.doc(0)["prompt"].get<std::string>());  // raw prompt
  std::vector<size_t> ids = {0, 1, 2};
  std::vector<DocResponse> good, bad;
  for (size_t id : ids) {
    good.push_back({task.doc(id)["canonical_solution"].get<std::string>(), {}, {}});
    bad.push_back({"    return None\n", {}, {}});
  }
  ASSERT_TRUE(PrecomputeCodeExecution(task, ids, good, nullptr).ok());
  for (size_t k = 0; k < ids.size(); ++k) {
    auto s = task.Score(ids[k], good[k]);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->metrics["pass@1,create_test"], 1.0) << ids[k];
    const auto record = CodeExecutionRecord(task, ids[k], good[k].generation);
    ASSERT_TRUE(record.is_object());
    EXPECT_EQ(record["outcome"], "passed");
  }
  // Not precomputed: Score runs the program itself.
  for (size_t k = 0; k < ids.size(); ++k) {
    auto s = task.Score(ids[k], bad[k]);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->metrics["pass@1,create_test"], 0.0) << ids[k];
    EXPECT_EQ(CodeExecutionRecord(task, ids[k], bad[k].generation)["outcome"], "failed");
  }
  // The stop strings cut at "\nprint" etc. in the backend; a hanging completion times out.
  auto hang = task.Score(0, DocResponse{"    while True:\n        pass\n", {}, {}});
  ASSERT_TRUE(hang.ok());
  EXPECT_EQ(hang->metrics["pass@1,create_test"], 0.0);
  EXPECT_EQ(CodeExecutionRecord(task, 0, "    while True:\n        pass\n")["outcome"], "timeout");
}

}  // namespace
}  // namespace rvec::eval
