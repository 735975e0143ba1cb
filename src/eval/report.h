// Comparison reports over evaluation run directories: one table (rows = runs, columns = task
// metrics), deltas against the first run, exact McNemar p-values on per-sample correctness,
// rendered as Markdown, HTML with SVG bar charts, or JSON. Used by `rvec report` (`rvec transfer`
// writes its own report in pipeline/transfer_report.cc).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace rvec::eval {

struct ReportCell {
  std::optional<double> value;    // metric in [0, 1]
  std::optional<double> stderr_;  // lm-eval's stderr
  std::optional<double> delta;    // value - first run's value (rows after the first)
  std::optional<double> p_value;  // exact McNemar vs the first run, paired by (task, doc_id)
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
// group). `labels` (optional) names the rows.
StatusOr<Report> BuildReport(const std::vector<std::filesystem::path>& run_dirs,
                             const std::vector<std::string>& labels = {});

std::string RenderMarkdown(const Report& report);
std::string RenderHtml(const Report& report);
nlohmann::json ReportToJson(const Report& report);

}  // namespace rvec::eval
