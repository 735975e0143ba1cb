// Comparison reports over evaluation run directories: one table (rows = runs, columns = task
// metrics), deltas against the first run, exact McNemar p-values on per-sample correctness,
// rendered as Markdown, HTML with SVG bar charts, or JSON. Used by `rvec report`; the transfer
// report (pipeline/transfer_report.cc) builds on the same reading of results.json and the same
// paired comparison.
//
// The paired comparison, for both reports: documents are paired by (leaf task, doc_id), a group
// standing for its subtasks. The exact McNemar test applies only when at least one document is
// paired and every paired per-document score of both runs is 0 or 1 (per-sample correctness).
// Runs with K > 1 samples per document (`rvec eval --samples K`) whose paired scores are not all
// 0/1 (avg@K: per-document mean accuracy) get the two-sided paired sign-flip permutation test on
// the per-document differences (stats.h PairedPermutationP: exact up to 20 non-zero differences,
// else 20000 fixed-seed flips; deterministic). Otherwise (f1, BLEU and other graded metrics of
// single-sample runs, or no per-sample files) the p-value is absent: Markdown and HTML print
// "p=n/a" where a delta is shown, JSON writes null.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace rvec::eval {

// ---- Reading results.json

// "acc,none" -> "acc_stderr,none"; "acc" -> "acc_stderr".
std::string StderrKey(const std::string& metric_key);

// The metric keys of one task's results entry: numbers, without "alias" and the stderr keys.
std::vector<std::string> MetricKeys(const nlohmann::json& entry);

// The metric keys a report shows for `task` of a results.json: MetricKeys of its entry, less the
// plain "metric,filter" keys of a task run with K > 1 samples, which repeat "avg@K,filter".
std::vector<std::string> ReportMetricKeys(const nlohmann::json& results, const std::string& task);

// The entry of a task or group in results.json ("groups" first, then "results"); null if absent.
const nlohmann::json* ResultEntry(const nlohmann::json& results, const std::string& task);

// The leaf tasks whose samples make up `task`: a group's subtasks, else the task itself.
std::vector<std::string> LeafTasks(const nlohmann::json& results, const std::string& task);

// `entry[key]` when it is a number (lm-eval writes "N/A" for a stderr it cannot compute).
std::optional<double> MetricValue(const nlohmann::json& entry, const std::string& key);

// ---- Paired comparison (the rule is in the header comment above)

struct PairedComparison {
  size_t paired = 0;              // documents scored in both runs
  size_t only_a = 0;              // documents scoring higher in A (for 0/1 scores: right in A only)
  size_t only_b = 0;              // documents scoring higher in B
  bool binary = true;             // every paired score of both runs is 0 or 1
  bool sampled = false;           // either run scored K > 1 samples per document
  std::optional<double> p_value;  // exact McNemar or sign-flip permutation, as the rule says
  std::string test;               // "mcnemar", "permutation", or "" without a p-value
};

// Compares metric `metric_key` ("exact_match,strict-match") of `task` (a task, or a group whose
// subtasks are pooled as listed in run A's results.json) between run directories A and B.
StatusOr<PairedComparison> ComparePaired(const std::filesystem::path& run_a,
                                         const std::filesystem::path& run_b,
                                         const std::string& task, const std::string& metric_key);

// ---- The `rvec report` table

struct ReportCell {
  std::optional<double> value;    // metric in [0, 1]
  std::optional<double> stderr_;  // lm-eval's stderr
  std::optional<double> delta;    // value - first run's value (rows after the first)
  std::optional<double> p_value;  // paired test vs the first run (see the rule above)
  std::string test;               // PairedComparison::test
  size_t paired = 0;              // samples present in both runs
  size_t only_this = 0;           // right here, wrong in the first run
  size_t only_first = 0;          // right in the first run, wrong here
};

struct ReportColumn {
  std::string task;    // task or group name
  std::string metric;  // "exact_match,flexible-extract"
};

struct Report {
  std::vector<std::string> runs;  // labels (directory names unless given)
  std::vector<std::string> paths;
  std::vector<ReportColumn> columns;
  std::vector<std::vector<ReportCell>> cells;  // [run][column]
};

// Reads RUN_DIR/results.json (+ samples_*.jsonl for the paired test) of each run. Columns are the
// metrics of the first run's top-level tasks and groups (group subtasks are folded into their
// group); for a task run with K > 1 samples the plain "metric,filter" column is left out, since
// it repeats "avg@K,filter". `labels` (optional) names the rows.
StatusOr<Report> BuildReport(const std::vector<std::filesystem::path>& run_dirs,
                             const std::vector<std::string>& labels = {});

std::string RenderMarkdown(const Report& report);
std::string RenderHtml(const Report& report);
nlohmann::json ReportToJson(const Report& report);

}  // namespace rvec::eval
