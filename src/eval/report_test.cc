// Unit tests of the run comparison: results.json reading, paired documents, and the rule that
// the exact McNemar test applies only to 0/1 per-document scores (sampled runs' per-document
// means get the permutation test).
#include "eval/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A run directory with one task "t" (metrics "acc,none" 0/1 and "f1,none" graded) and a group
// "g" of subtasks "s1" and "s2" ("acc,none").
class RunComparisonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("rvec-report-test-" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Scores per document: acc[i], f1[i] for "t"; sub[i] for both subtasks.
  fs::path WriteRun(const std::string& name, const std::vector<double>& acc,
                    const std::vector<double>& f1, const std::vector<double>& sub,
                    bool with_samples = true) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    auto mean = [](const std::vector<double>& xs) {
      double s = 0;
      for (double x : xs) s += x;
      return s / static_cast<double>(xs.size());
    };
    json results = {{"results",
                     {{"t",
                       {{"alias", "t"},
                        {"acc,none", mean(acc)},
                        {"acc_stderr,none", 0.1},
                        {"f1,none", mean(f1)},
                        {"f1_stderr,none", "N/A"}}},
                      {"s1", {{"alias", " - s1"}, {"acc,none", mean(sub)}}},
                      {"s2", {{"alias", " - s2"}, {"acc,none", mean(sub)}}},
                      {"g", {{"alias", "g"}, {"acc,none", mean(sub)}}}}},
                    {"groups", {{"g", {{"alias", "g"}, {"acc,none", mean(sub)}}}}},
                    {"group_subtasks", {{"t", json::array()}, {"g", {"s1", "s2"}}}}};
    std::ofstream(dir / "results.json") << results.dump();
    if (!with_samples) return dir;
    std::ofstream t(dir / "samples_t.jsonl");
    for (size_t i = 0; i < acc.size(); ++i) {
      t << json{{"doc_id", i}, {"metrics", {{"acc,none", acc[i]}, {"f1,none", f1[i]}}}}.dump()
        << "\n";
    }
    for (const char* s : {"s1", "s2"}) {
      std::ofstream out(dir / (std::string("samples_") + s + ".jsonl"));
      for (size_t i = 0; i < sub.size(); ++i) {
        out << json{{"doc_id", i}, {"metrics", {{"acc,none", sub[i]}}}}.dump() << "\n";
      }
    }
    return dir;
  }

  fs::path root_;
};

TEST_F(RunComparisonTest, ReadsResultsJson) {
  EXPECT_EQ(StderrKey("acc,none"), "acc_stderr,none");
  EXPECT_EQ(StderrKey("acc"), "acc_stderr");
  const json entry = {{"alias", "x"}, {"acc,none", 0.5}, {"acc_stderr,none", 0.1}, {"n", "?"}};
  EXPECT_EQ(MetricKeys(entry), std::vector<std::string>{"acc,none"});
  EXPECT_EQ(MetricValue(entry, "acc,none"), 0.5);
  EXPECT_EQ(MetricValue({{"acc_stderr,none", "N/A"}}, "acc_stderr,none"), std::nullopt);
  const json results = {{"results", {{"t", {{"a", 1}}}, {"g", {{"a", 2}}}}},
                        {"groups", {{"g", {{"a", 3}}}}},
                        {"group_subtasks", {{"g", {"s1", "s2"}}, {"t", json::array()}}}};
  EXPECT_EQ((*ResultEntry(results, "g"))["a"], 3);  // the group's own entry first
  EXPECT_EQ((*ResultEntry(results, "t"))["a"], 1);
  EXPECT_EQ(ResultEntry(results, "missing"), nullptr);
  EXPECT_EQ(LeafTasks(results, "g"), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(LeafTasks(results, "t"), std::vector<std::string>{"t"});
}

TEST_F(RunComparisonTest, McNemarOnZeroOneScores) {
  const fs::path a = WriteRun("a", {1, 1, 0, 0, 1}, {0.5, 0.2, 0.1, 0.9, 0.4}, {1, 0, 0});
  const fs::path b = WriteRun("b", {1, 0, 1, 1, 1}, {0.6, 0.2, 0.3, 0.1, 0.4}, {1, 1, 1});
  auto pc = ComparePaired(a, b, "t", "acc,none");
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  EXPECT_EQ(pc->paired, 5u);
  EXPECT_EQ(pc->only_a, 1u);
  EXPECT_EQ(pc->only_b, 2u);
  EXPECT_TRUE(pc->binary);
  ASSERT_TRUE(pc->p_value.has_value());
  EXPECT_DOUBLE_EQ(*pc->p_value, 1.0);  // 2 * P[Bin(3, .5) <= 1] = 1
  // A group pools its subtasks' documents.
  auto g = ComparePaired(a, b, "g", "acc,none");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->paired, 6u);
  EXPECT_EQ(g->only_b, 4u);
  EXPECT_NEAR(*g->p_value, 0.125, 1e-12);  // 2 * P[Bin(4, .5) <= 0]
}

TEST_F(RunComparisonTest, NoPValueWhereScoresAreNotZeroOne) {
  const fs::path a = WriteRun("a", {1, 1, 0, 0, 1}, {0.5, 0.2, 0.1, 0.9, 0.4}, {1, 0, 0});
  const fs::path b = WriteRun("b", {1, 0, 1, 1, 1}, {0.6, 0.2, 0.3, 0.1, 0.4}, {1, 1, 1});
  auto pc = ComparePaired(a, b, "t", "f1,none");
  ASSERT_TRUE(pc.ok());
  EXPECT_EQ(pc->paired, 5u);  // every paired document counts, graded or not
  EXPECT_EQ(pc->only_a, 1u);  // higher in A
  EXPECT_EQ(pc->only_b, 2u);
  EXPECT_FALSE(pc->binary);
  EXPECT_FALSE(pc->p_value.has_value());

  auto report = BuildReport({a, b});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->columns.size(), 3u);  // g acc, t acc, t f1
  EXPECT_EQ(report->columns[2].metric, "f1,none");
  const ReportCell& f1 = report->cells[1][2];
  EXPECT_TRUE(f1.delta.has_value());
  EXPECT_FALSE(f1.p_value.has_value());
  EXPECT_TRUE(report->cells[1][1].p_value.has_value());
  const std::string md = RenderMarkdown(*report);
  EXPECT_NE(md.find("(-10.0) p=n/a |"), std::string::npos) << md;
  EXPECT_NE(RenderHtml(*report).find("<small>p=n/a</small>"), std::string::npos);
  const json j = ReportToJson(*report)["runs"][1]["metrics"]["t"];
  EXPECT_TRUE(j["f1,none"]["mcnemar_p"].is_null());
  EXPECT_EQ(j["f1,none"]["paired_samples"], 5);
  EXPECT_DOUBLE_EQ(j["acc,none"]["mcnemar_p"].get<double>(), 1.0);
}

TEST_F(RunComparisonTest, NoPValueWithoutPairedDocuments) {
  const fs::path a = WriteRun("a", {1, 0}, {1, 0}, {1}, /*with_samples=*/false);
  const fs::path b = WriteRun("b", {1, 1}, {1, 1}, {1});
  auto pc = ComparePaired(a, b, "t", "acc,none");
  ASSERT_TRUE(pc.ok());
  EXPECT_EQ(pc->paired, 0u);
  EXPECT_FALSE(pc->p_value.has_value());
}

// A run of task "t" with K = 4 samples per document: per-document avg@4, pass@4 and the plain
// exact_match key (equal to avg@4), as `rvec eval --samples 4` writes them.
fs::path WriteSampledRun(const fs::path& dir, const std::vector<double>& avg) {
  fs::create_directories(dir);
  double mean = 0;
  for (double x : avg) mean += x / static_cast<double>(avg.size());
  json entry = {{"alias", "t"},
                {"exact_match,none", mean},
                {"avg@4,none", mean},
                {"pass@4,none", 0.5},
                {"maj@4,none", 0.5}};
  json results = {{"results", {{"t", entry}}},
                  {"configs", {{"t", {{"repeats", 4}}}}},
                  {"group_subtasks", {{"t", json::array()}}}};
  std::ofstream(dir / "results.json") << results.dump();
  std::ofstream out(dir / "samples_t.jsonl");
  for (size_t i = 0; i < avg.size(); ++i) {
    const json metrics = {{"exact_match,none", avg[i]},
                          {"avg@4,none", avg[i]},
                          {"pass@4,none", avg[i] > 0 ? 1.0 : 0.0}};
    out << json{{"doc_id", i}, {"metrics", metrics}, {"sample_metrics", json::array()}}.dump()
        << "\n";
  }
  return dir;
}

TEST_F(RunComparisonTest, PermutationTestOnSampledMeans) {
  const fs::path a = WriteSampledRun(root_ / "a", {0.25, 0.5, 0.0, 1.0});
  const fs::path b = WriteSampledRun(root_ / "b", {0.75, 0.5, 0.5, 1.0});
  auto pc = ComparePaired(a, b, "t", "avg@4,none");
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  EXPECT_TRUE(pc->sampled);
  EXPECT_FALSE(pc->binary);
  EXPECT_EQ(pc->test, "permutation");
  // Differences -0.5, 0, -0.5, 0: two non-zero, |sum| = 1 reached by 2 of 4 flips.
  EXPECT_EQ(pc->p_value, 0.5);
  // pass@4 is 0/1 per document: McNemar, as for single-sample runs.
  auto pass = ComparePaired(a, b, "t", "pass@4,none");
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->test, "mcnemar");
  EXPECT_DOUBLE_EQ(*pass->p_value, 1.0);  // one discordant document

  // The report shows avg@4, pass@4 and maj@4 but not the plain key that repeats avg@4.
  auto report = BuildReport({a, b});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::vector<std::string> metrics;
  for (const auto& c : report->columns) metrics.push_back(c.metric);
  EXPECT_EQ(metrics, (std::vector<std::string>{"avg@4,none", "maj@4,none", "pass@4,none"}));
  EXPECT_EQ(report->cells[1][0].test, "permutation");
  EXPECT_NE(RenderMarkdown(*report).find("permutation"), std::string::npos);
  const json j = ReportToJson(*report)["runs"][1]["metrics"]["t"]["avg@4,none"];
  EXPECT_TRUE(j["mcnemar_p"].is_null());
  EXPECT_EQ(j["permutation_p"], 0.5);
}

}  // namespace
}  // namespace rvec::eval
