// The transfer report: a paper-style table (rows: target and its variants; columns: task
// metrics; cells: score ± stderr, delta vs the target with its exact McNemar p-value), the control
// comparison, the vector's statistics and the commands that reproduce it, as Markdown, HTML and
// JSON.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "pipeline/transfer.h"

namespace rvec::pipeline {

struct ReportInputs {
  const TransferOptions* options = nullptr;
  nlohmann::json compat;
  nlohmann::json vector_stats;
  std::vector<Variant> all_variants;
  std::vector<std::pair<Variant, std::filesystem::path>> runs;  // finished evaluations
};

// Per-sample comparison of two runs on one metric: paired by (task, doc_id).
struct PairedComparison {
  size_t n = 0;       // docs scored in both
  size_t only_a = 0;  // right in A only
  size_t only_b = 0;  // right in B only
  double p_value = 1.0;
};

// Compares a binary per-sample metric ("exact_match,strict-match") of `task` (a task or a group,
// whose subtasks are pooled) between two run directories.
StatusOr<PairedComparison> ComparePaired(const std::filesystem::path& run_a,
                                         const std::filesystem::path& run_b,
                                         const std::string& task, const std::string& metric_key);

// Writes WORKDIR/report.{md,html,json} and returns report.json's content.
StatusOr<nlohmann::json> WriteTransferReport(const ReportInputs& inputs);

}  // namespace rvec::pipeline
