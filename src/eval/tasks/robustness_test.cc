// Tests of gsm_plus_mini / gsm_symbolic_p2, the refusal rule, the breakdown and the report rows.
#include "eval/tasks/robustness.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "base/fs.h"

namespace rvec::eval {
namespace {

std::filesystem::path DataDir() {
  const auto dir = TestDataDir(RVEC_TEST_DATA_DEFAULT);
  EXPECT_TRUE(DataFileExists(dir / "gsm_plus" / "gsmplus_testmini.jsonl"))
      << "test data missing under " << dir << " (the repository's testdata/, or RVEC_TEST_DATA)";
  return dir;
}

TEST(GsmPlusTest, LoadsTestminiWithEightPerturbationTypes) {
  EvalTask task(GsmPlusMiniConfig());
  ASSERT_TRUE(task.Load(DataDir()).ok());
  ASSERT_EQ(task.size(), 2400u);
  std::map<std::string, int> per_type;
  for (size_t i = 0; i < task.size(); ++i) ++per_type[task.doc(i)["perturbation_type"]];
  EXPECT_EQ(per_type.size(), 8u);
  for (const auto& [type, n] : per_type) EXPECT_EQ(n, 300) << type;
  EXPECT_EQ(per_type.count("critical thinking"), 1u);
  EXPECT_EQ(task.config().version, "1.0");
  EXPECT_EQ(task.config().num_fewshot, 5);
  EXPECT_TRUE(task.config().fewshot_from_test_split);
}

TEST(GsmPlusTest, PromptAndScoringFollowGsm8k) {
  EvalTask task(GsmPlusMiniConfig());
  ASSERT_TRUE(task.Load(DataDir()).ok());
  auto prompts = task.BuildPrompts(3, PromptOptions());
  ASSERT_TRUE(prompts.ok());
  const std::string q = task.doc(0)["question"];
  const std::string& ctx = (*prompts)[0].context;
  EXPECT_EQ(ctx.substr(ctx.size() - q.size() - 18), "Question: " + q + "\nAnswer:");
  EXPECT_EQ(ctx.rfind("Question: ", 0), 0u);
  for (size_t j : (*prompts)[0].fewshot_indices) EXPECT_NE(j, 0u);  // never the doc itself
  // Row 0: gold 4.33.
  DocResponse right{"... so the average is 4.33 inches.\n#### 4.33", {}, {}};
  auto s = task.Score(0, right);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metrics["exact_match,strict-match"], 1.0);
  EXPECT_EQ(s->metrics["exact_match,flexible-extract"], 1.0);
  // Critical-thinking rows score 0 under lm-eval's numeric filters, even for a refusal.
  for (size_t i = 0; i < task.size(); ++i) {
    if (task.doc(i)["perturbation_type"] != "critical thinking") continue;
    DocResponse refusal{
        "The question does not say how many, so it cannot be determined.\n#### None", {}, {}};
    auto ct = task.Score(i, refusal);
    ASSERT_TRUE(ct.ok());
    EXPECT_EQ(ct->metrics["exact_match,strict-match"], 0.0);
    EXPECT_EQ(ct->metrics["exact_match,flexible-extract"], 0.0);
    break;
  }
}

TEST(GsmSymbolicTest, P2ScoredLikeGsm8k) {
  EvalTask task(GsmSymbolicP2Config());
  ASSERT_TRUE(task.Load(DataDir()).ok());
  ASSERT_EQ(task.size(), 2500u);
  EXPECT_EQ(task.fewshot_docs().size(), 7473u);  // GSM8K train
  auto prompts = task.BuildPrompts(2, PromptOptions());
  ASSERT_TRUE(prompts.ok());
  EXPECT_EQ((*prompts)[0].fewshot_indices.size(), 5u);
  const std::string ctx = (*prompts)[0].context;
  EXPECT_NE(ctx.find("Question: Yara saw a 32-foot whale"), std::string::npos);
  auto s = task.Score(0, DocResponse{"The average is 32.5%.\n#### 32.5", {}, {}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metrics["exact_match,strict-match"], 1.0);
  EXPECT_EQ(s->metrics["exact_match,flexible-extract"], 1.0);
  auto wrong = task.Score(0, DocResponse{"#### 40", {}, {}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->metrics["exact_match,strict-match"], 0.0);

  EvalTask cot(GsmSymbolicP2CotConfig());
  ASSERT_TRUE(cot.Load(DataDir()).ok());
  auto cs = cot.Score(0, DocResponse{"... The answer is 32.5.", {}, {}});
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->metrics["exact_match,strict-match"], 1.0);
}

TEST(RefusalTest, Rule) {
  EXPECT_TRUE(
      IsRefusal("We are not told how many apples she had, so there is not enough "
                "information to answer."));
  EXPECT_TRUE(IsRefusal("The price of the hat cannot be determined from the question."));
  EXPECT_TRUE(IsRefusal("Some reasoning.\n#### None"));
  EXPECT_TRUE(IsRefusal("The answer is unknown."));
  EXPECT_TRUE(IsRefusal("\\boxed{N/A}"));
  EXPECT_TRUE(IsRefusal("The number of boys is not specified."));
  // A numeric final answer wins over hedging words.
  EXPECT_FALSE(IsRefusal("The weight is not given directly, but 3 * 4 = 12.\n#### 12"));
  EXPECT_FALSE(IsRefusal("The answer is 42."));
  EXPECT_FALSE(IsRefusal("She has 5 + 3 = 8 apples.\n#### 8"));
  EXPECT_FALSE(IsRefusal(""));
  EXPECT_FALSE(IsRefusal("The answer is nonetheless 7"));  // "none" must be a whole word... 7 wins
}

TEST(GsmPlusTest, BreakdownPerTypeAndCriticalThinking) {
  std::vector<Doc> docs = {{{"perturbation_type", "digit expansion"}},
                           {{"perturbation_type", "digit expansion"}},
                           {{"perturbation_type", "critical thinking"}},
                           {{"perturbation_type", "critical thinking"}},
                           {{"perturbation_type", "distraction insertion"}}};
  std::vector<std::string> gens = {"#### 1", "#### 2", "It cannot be determined.", "#### 5",
                                   "#### 3"};
  std::vector<std::map<std::string, double>> scores = {{{"exact_match,strict-match", 1}},
                                                       {{"exact_match,strict-match", 0}},
                                                       {{"exact_match,strict-match", 0}},
                                                       {{"exact_match,strict-match", 0}},
                                                       {{"exact_match,strict-match", 1}}};
  auto b = GsmPlusBreakdown(docs, gens, scores);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ((*b)["per_type"]["digit expansion"]["n"], 2);
  EXPECT_DOUBLE_EQ((*b)["per_type"]["digit expansion"]["exact_match,strict-match"], 0.5);
  EXPECT_DOUBLE_EQ((*b)["per_type"]["distraction insertion"]["exact_match,strict-match"], 1.0);
  EXPECT_EQ((*b)["excluding_critical_thinking"]["n"], 3);
  EXPECT_DOUBLE_EQ((*b)["excluding_critical_thinking"]["exact_match,strict-match"], 2.0 / 3.0);
  EXPECT_EQ((*b)["critical_thinking"]["n"], 2);
  EXPECT_EQ((*b)["critical_thinking"]["refused"], 1);
  EXPECT_DOUBLE_EQ((*b)["critical_thinking"]["refusal_rate"], 0.5);
  EXPECT_FALSE(GsmPlusBreakdown(docs, {}, scores).ok());
}

TEST(ReportTest, CleanVersusPerturbedRows) {
  const nlohmann::json base = {
      {"model_name", "qwen-merged"},
      {"results",
       {{"gsm8k",
         {{"exact_match,flexible-extract", 0.60}, {"exact_match_stderr,flexible-extract", 0.01}}},
        {"gsm8k@distractor:0", {{"exact_match,flexible-extract", 0.45}}},
        {"gsm_plus_mini", {{"exact_match,flexible-extract", 0.40}, {"alias", 0}}},
        {"sciq", {{"acc,none", 0.9}}}}}};
  auto scores = ScoresFromResults(base);
  ASSERT_TRUE(scores.ok());
  auto other =
      ScoresFromResults({{"results",
                          {{"gsm8k", {{"exact_match,flexible-extract", 0.5}}},
                           {"gsm8k@distractor:0", {{"exact_match,flexible-extract", 0.5}}}}}},
                        "instruct");
  ASSERT_TRUE(other.ok());
  scores->insert(scores->end(), other->begin(), other->end());
  const auto rows = BuildRobustnessRows(*scores);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].model, "instruct");
  EXPECT_DOUBLE_EQ(rows[0].drop, 0.0);
  EXPECT_EQ(rows[1].model, "qwen-merged");
  EXPECT_EQ(rows[1].perturbed_task, "gsm8k@distractor:0");
  EXPECT_NEAR(rows[1].drop, 0.15, 1e-12);
  EXPECT_NEAR(rows[1].relative_drop, 0.25, 1e-12);
  EXPECT_EQ(rows[2].perturbed_task, "gsm_plus_mini");
  EXPECT_NEAR(rows[2].drop, 0.20, 1e-12);
  const std::string table = FormatRobustnessTable(rows);
  EXPECT_NE(table.find("gsm8k@distractor:0"), std::string::npos);
  EXPECT_NE(table.find("60.0"), std::string::npos);
  EXPECT_NE(table.find("15.0"), std::string::npos);
  EXPECT_EQ(RobustnessJson(rows).size(), 3u);
  EXPECT_NE(FormatRobustnessTable({}).find("No perturbed results"), std::string::npos);
  EXPECT_FALSE(ScoresFromResults(nlohmann::json::array()).ok());
}

TEST(ReportTest, RunDirectoriesPairByModelAndShowGsmPlusBreakdown) {
  const auto root = std::filesystem::temp_directory_path() /
                    ("rvec-robustness-report-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  auto write = [](const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  };
  const nlohmann::json clean = {{"results", {{"gsm8k", {{"exact_match,strict-match", 0.5}}}}},
                                {"config", {{"model", "/models/qwen-merged/"}}}};
  const nlohmann::json perturbed = {{"results",
                                     {{"gsm8k@hint:0", {{"exact_match,strict-match", 0.3}}},
                                      {"gsm_plus_mini", {{"exact_match,strict-match", 0.25}}}}},
                                    {"config", {{"model", "/models/qwen-merged"}}}};
  write(root / "clean" / "results.json", clean.dump());
  write(root / "perturbed" / "results.json", perturbed.dump());
  std::string samples;
  const char* types[] = {"digit expansion", "critical thinking", "critical thinking",
                         "digit expansion"};
  const char* outputs[] = {"#### 3", "Not enough information is given.", "#### 4", "#### 1"};
  const double strict[] = {1, 0, 0, 0};
  for (int i = 0; i < 4; ++i) {
    samples += nlohmann::json({{"task", "gsm_plus_mini"},
                               {"doc_id", i},
                               {"doc", {{"perturbation_type", types[i]}}},
                               {"raw_output", outputs[i]},
                               {"metrics", {{"exact_match,strict-match", strict[i]}}}})
                   .dump() +
               "\n";
  }
  write(root / "perturbed" / "samples_gsm_plus_mini.jsonl", samples);
  auto report = BuildRobustnessReport({root / "clean", root / "perturbed"});
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->rows.size(), 2u);
  EXPECT_EQ(report->rows[0].model, "qwen-merged");
  EXPECT_EQ(report->rows[0].perturbed_task, "gsm8k@hint:0");
  EXPECT_NEAR(report->rows[0].drop, 0.2, 1e-12);
  EXPECT_EQ(report->rows[1].perturbed_task, "gsm_plus_mini");
  ASSERT_EQ(report->gsm_plus.size(), 1u);
  EXPECT_EQ(report->gsm_plus[0].first, "perturbed");
  const auto& b = report->gsm_plus[0].second;
  EXPECT_DOUBLE_EQ(b["per_type"]["digit expansion"]["exact_match,strict-match"], 0.5);
  EXPECT_DOUBLE_EQ(b["critical_thinking"]["refusal_rate"], 0.5);
  const std::string md = RenderRobustnessMarkdown(*report);
  EXPECT_NE(md.find("| qwen-merged | gsm8k | gsm8k@hint:0 | exact_match,strict-match | 50.0 | "
                    "30.0 | 20.0 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("1 of 2 responses recognised as refusals (50.0%)"), std::string::npos) << md;
  EXPECT_EQ(RobustnessReportToJson(*report)["rows"].size(), 2u);
  // A clean-only report renders nothing extra.
  auto only_clean = BuildRobustnessReport({root / "clean"});
  ASSERT_TRUE(only_clean.ok());
  EXPECT_EQ(RenderRobustnessMarkdown(*only_clean), "");
  EXPECT_FALSE(BuildRobustnessReport({root / "missing"}).ok());
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace rvec::eval
