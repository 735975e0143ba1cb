// Adversarial-robustness tasks (gsm_plus_mini, gsm_symbolic_p2), GSM-Plus per-perturbation
// breakdown with the critical-thinking refusal rule, and the clean-vs-perturbed report table.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "eval/task.h"

namespace rvec::eval {

// lm-eval gsm_plus_mini (v1.0): HF qintongli/GSM-Plus "testmini" (2,400 rows = 300 seed questions
// x 8 perturbation types), 5 shots drawn from the same split (excluding the doc itself), gsm8k's
// prompt, filters and exact_match. "critical thinking" rows have gold "None" and score 0 under
// the numeric filters, as in lm-eval; GsmPlusBreakdown reports them separately.
TaskConfig GsmPlusMiniConfig();
// GSM-Symbolic-P2 (apple/ml-gsm-symbolic, 2,500 rows) scored exactly like lm-eval gsm8k: 5 seeded
// random shots from GSM8K train, "Question: ...\nAnswer:", strict-match and flexible-extract.
TaskConfig GsmSymbolicP2Config();
// The protocol of the GSM-Symbolic paper: gsm8k_cot's 8 fixed exemplars, greedy, last number.
TaskConfig GsmSymbolicP2CotConfig();
void RegisterRobustnessTasks(TaskRegistry& registry);

// The rule for recognising that a model declined to answer a question that lacks a premise
// (GSM-Plus "critical thinking"): after lower-casing, the response says so in words ("not enough
// information", "cannot be determined", "missing", "not specified", ... see kRefusalPhrases in
// robustness.cc), or its final answer is none/unknown/N/A ("#### None", "The answer is none",
// "\boxed{none}"). A response with a numeric final answer after "####" or "The answer is" is
// never a refusal, whatever else it says.
bool IsRefusal(const std::string& response);

// Per-perturbation-type breakdown of a gsm_plus_mini run: docs (with "perturbation_type"),
// the raw generations and each doc's scores ("exact_match,strict-match" -> 0/1 ...). Returns
//   {"per_type": {type: {"n", "<metric>": mean...}},
//    "excluding_critical_thinking": {"n", "<metric>": mean...},
//    "critical_thinking": {"n", "refusal_rate", "rule"}}.
StatusOr<nlohmann::json> GsmPlusBreakdown(const std::vector<Doc>& docs,
                                          const std::vector<std::string>& generations,
                                          const std::vector<std::map<std::string, double>>& scores);

// ---- rvec report: clean vs perturbed
// -------------------------------------------------------------

// One aggregated number of one run: model, task, "metric,filter" and its value.
struct ScoreEntry {
  std::string model;
  std::string task;
  std::string metric;
  double value = 0.0;
};

// A perturbed task next to its clean counterpart, for one model and metric.
struct RobustnessRow {
  std::string model;
  std::string clean_task;
  std::string perturbed_task;
  std::string metric;
  double clean = 0.0;
  double perturbed = 0.0;
  double drop = 0.0;           // clean - perturbed (accuracy points as fractions)
  double relative_drop = 0.0;  // drop / clean (0 when clean is 0)
};

// Pairs every perturbed score with the clean one of the same model and metric:
//   "<task>@<perturbation>" with "<task>" (built-in --perturb runs),
//   gsm_plus_mini, gsm_symbolic_p2 with gsm8k; gsm_symbolic_p2_cot with gsm8k_cot.
// Rows are sorted by model, clean task, perturbed task, metric.
std::vector<RobustnessRow> BuildRobustnessRows(const std::vector<ScoreEntry>& scores);

// Scores from an lm-eval-shaped results document: {"results": {task: {"metric,filter": v}}} with
// the model named by `model` (or, if empty, results' "model_name" / "config.model"). "_stderr"
// entries and non-numbers are skipped.
StatusOr<std::vector<ScoreEntry>> ScoresFromResults(const nlohmann::json& results,
                                                    const std::string& model = "");

// Text table ("model  clean task  perturbed task  metric  clean  perturbed  drop") and JSON.
std::string FormatRobustnessTable(const std::vector<RobustnessRow>& rows);
nlohmann::json RobustnessJson(const std::vector<RobustnessRow>& rows);

// ---- run directories (what `rvec report` calls)
// ---------------------------------------------------

// The robustness view of several `rvec eval` run directories: clean-vs-perturbed rows, pairing
// runs by model (results.json config.model's directory name; else `labels[i]`, else the run
// directory's name), plus the GSM-Plus breakdown of every run that has samples_gsm_plus_mini.jsonl.
struct RobustnessReport {
  std::vector<RobustnessRow> rows;
  std::vector<std::pair<std::string, nlohmann::json>> gsm_plus;  // (run label, breakdown)
  bool empty() const { return rows.empty() && gsm_plus.empty(); }
};
StatusOr<RobustnessReport> BuildRobustnessReport(const std::vector<std::filesystem::path>& run_dirs,
                                                 const std::vector<std::string>& labels = {});
// Markdown section ("## Robustness: clean vs perturbed" + "## GSM-Plus by perturbation type");
// "" when the runs hold no perturbed task.
std::string RenderRobustnessMarkdown(const RobustnessReport& report);
nlohmann::json RobustnessReportToJson(const RobustnessReport& report);

}  // namespace rvec::eval
