// Golden HumanEval check through the replay backend and the sandbox: the canonical solutions pass
// all 164 problems, an empty completion passes none (328 sandboxed programs, --jobs 2).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "base/fs.h"
#include "eval/backend.h"
#include "eval/runner.h"
#include "eval/tasks/humaneval.h"

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  const fs::path dir = TestDataDir(RVEC_TEST_DATA_DEFAULT);
  EXPECT_TRUE(fs::exists(dir / "humaneval" / "HumanEval.jsonl.gz"))
      << "test data missing under " << dir << " (the repository's testdata/, or RVEC_TEST_DATA)";
  return dir;
}

class HumanEvalReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CodeExecutionOptions options;
    options.allow = true;
    options.jobs = 2;  // CI has 2 cores
    SetCodeExecutionOptions(options);
    scratch_ = fs::temp_directory_path() / ("rvec-humaneval-replay-" + std::to_string(getpid()));
    fs::remove_all(scratch_);
    fs::create_directories(scratch_);
  }
  void TearDown() override {
    SetCodeExecutionOptions(CodeExecutionOptions());
    fs::remove_all(scratch_);
  }

  // Replays `completion(doc)` for every problem; returns the number of problems passed.
  size_t PassCount(const std::function<std::string(const Doc&)>& completion, double* seconds) {
    EvalTask task(HumanEvalConfig());
    const Status loaded = task.Load(DataDir());
    EXPECT_TRUE(loaded.ok()) << loaded.message();
    if (!loaded.ok()) return 0;
    EXPECT_EQ(task.size(), 164u);
    const fs::path responses = scratch_ / "responses.jsonl";
    {
      std::ofstream out(responses);
      for (size_t i = 0; i < task.size(); ++i) {
        out << nlohmann::json(
                   {{"task", "humaneval"}, {"doc_id", i}, {"output", completion(task.doc(i))}})
                   .dump()
            << "\n";
      }
    }
    auto backend = MakeReplayBackend(responses);
    EXPECT_TRUE(backend.ok()) << backend.status().message();
    if (!backend.ok()) return 0;
    auto prompts = task.BuildPrompts(task.size(), PromptOptions());
    EXPECT_TRUE(prompts.ok());
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < task.size(); ++i) {
      GenerationRequest r;
      r.key = {"humaneval", i, 0};
      r.prompt = (*prompts)[i].context;
      r.kwargs = task.config().generation;
      requests.push_back(r);
    }
    auto gens = (*backend)->Generate(requests, nullptr);
    EXPECT_TRUE(gens.ok()) << gens.status().message();
    if (!gens.ok()) return 0;
    std::vector<size_t> ids;
    std::vector<DocResponse> responses_by_doc;
    for (size_t i = 0; i < task.size(); ++i) {
      ids.push_back(i);
      responses_by_doc.push_back({(*gens)[i].text, {}, {}});
    }
    const auto start = std::chrono::steady_clock::now();
    const Status run = PrecomputeCodeExecution(task, ids, responses_by_doc, nullptr);
    EXPECT_TRUE(run.ok()) << run.message();
    size_t passed = 0;
    for (size_t i = 0; i < task.size(); ++i) {
      auto score = task.Score(i, responses_by_doc[i]);
      EXPECT_TRUE(score.ok()) << score.status().message();
      if (!score.ok()) continue;
      const double v = score->metrics["pass@1,create_test"];
      if (v == 1.0) ++passed;
      if (v != 1.0) {
        const auto record = CodeExecutionRecord(task, i, responses_by_doc[i].generation);
        failures_.push_back(task.doc(i)["task_id"].get<std::string>() + ": " + record.dump());
      }
    }
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return passed;
  }

  fs::path scratch_;
  std::vector<std::string> failures_;
};

TEST_F(HumanEvalReplayTest, CanonicalSolutionsPassAll) {
  double seconds = 0;
  const size_t passed =
      PassCount([](const Doc& d) { return d["canonical_solution"].get<std::string>(); }, &seconds);
  EXPECT_EQ(passed, 164u);
  for (size_t i = 0; i < failures_.size() && i < 10; ++i) ADD_FAILURE() << failures_[i];
  std::cout << "[ timing ] 164 canonical HumanEval programs in " << seconds << " s with --jobs 2\n";
  RecordProperty("humaneval_canonical_seconds", std::to_string(seconds));
}

TEST_F(HumanEvalReplayTest, EmptyCompletionPassesNone) {
  double seconds = 0;
  const size_t passed = PassCount([](const Doc&) { return std::string(); }, &seconds);
  EXPECT_EQ(passed, 0u);
  EXPECT_EQ(failures_.size(), 164u);
  std::cout << "[ timing ] 164 empty-completion HumanEval programs in " << seconds
            << " s with --jobs 2\n";
}

TEST_F(HumanEvalReplayTest, RunnerWritesPassAt1ToResults) {
  // Through the registry and the evaluation runner, as `rvec eval --backend replay` runs it.
  const fs::path responses = scratch_ / "responses.jsonl";
  auto docs = LoadHumanEval(DataDir());
  ASSERT_TRUE(docs.ok());
  {
    std::ofstream out(responses);
    for (size_t i = 0; i < 10; ++i) {
      // Even problems get the canonical solution, odd ones a wrong body.
      const std::string output =
          i % 2 == 0 ? (*docs)[i]["canonical_solution"].get<std::string>() : "    return None\n";
      out << nlohmann::json({{"task", "humaneval"}, {"doc_id", i}, {"output", output}}).dump()
          << "\n";
    }
  }
  auto backend = MakeReplayBackend(responses);
  ASSERT_TRUE(backend.ok()) << backend.status().message();
  EvalOptions options;
  options.tasks = {"humaneval"};
  options.data_dir = DataDir();
  options.limit = 10;
  options.output_dir = scratch_ / "run";
  auto results = RunEvaluation(**backend, options);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_DOUBLE_EQ((*results)["results"]["humaneval"]["pass@1,create_test"].get<double>(), 0.5);
  auto samples = ReadSamples(scratch_ / "run", "humaneval");
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 10u);
  EXPECT_EQ((*samples)[0]["metrics"]["pass@1,create_test"], 1.0);
  EXPECT_EQ((*samples)[1]["metrics"]["pass@1,create_test"], 0.0);
  // Without the opt-in the task refuses before any generation.
  SetCodeExecutionOptions(CodeExecutionOptions());
  options.output_dir = scratch_ / "run2";
  auto refused = RunEvaluation(**backend, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--allow-code-execution"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace rvec::eval
