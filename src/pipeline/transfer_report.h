// The transfer report: a paper-style table (rows: target and its variants; columns: task
// metrics; cells: score ± stderr, delta vs the target with its exact McNemar p-value), the control
// comparison, the vector's statistics and the commands that reproduce it, as Markdown, HTML and
// JSON. Cells pair documents and test them as eval/report.h says (p-value "n/a" / null for
// metrics that are not 0/1).
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

// Writes WORKDIR/report.{md,html,json} and returns report.json's content.
StatusOr<nlohmann::json> WriteTransferReport(const ReportInputs& inputs);

}  // namespace rvec::pipeline
