// `rvec report`: compares evaluation run directories in one table (deltas vs the first run, exact
// McNemar p-values), as Markdown, HTML with SVG bar charts, or JSON.
#include "eval/report.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/fs.h"
#include "cli/command.h"
#include "eval/tasks/robustness.h"

namespace rvec::cli {
namespace {

struct ReportFlags {
  std::vector<std::string> runs;
  std::string out;
  std::string html;
  std::string labels;
};

Status RunReport(const ReportFlags& f) {
  std::vector<std::filesystem::path> dirs(f.runs.begin(), f.runs.end());
  std::vector<std::string> labels;
  for (size_t pos = 0; !f.labels.empty() && pos <= f.labels.size();) {
    size_t end = f.labels.find(',', pos);
    if (end == std::string::npos) end = f.labels.size();
    labels.push_back(f.labels.substr(pos, end - pos));
    pos = end + 1;
  }
  ASSIGN_OR_RETURN(eval::Report report, eval::BuildReport(dirs, labels));
  // Clean vs perturbed accuracy and the GSM-Plus breakdown, when the runs hold such tasks.
  ASSIGN_OR_RETURN(eval::RobustnessReport robust, eval::BuildRobustnessReport(dirs, labels));
  std::string md = eval::RenderMarkdown(report);
  if (!robust.empty()) md += "\n" + eval::RenderRobustnessMarkdown(robust);
  if (!f.out.empty()) RETURN_IF_ERROR(WriteFileAtomic(f.out, md));
  if (!f.html.empty()) RETURN_IF_ERROR(WriteFileAtomic(f.html, eval::RenderHtml(report)));
  if (Globals().json) {
    nlohmann::json j = eval::ReportToJson(report);
    if (!robust.empty()) j["robustness"] = eval::RobustnessReportToJson(robust);
    PrintJson(j.dump(2));
  } else if (f.out.empty()) {
    std::fwrite(md.data(), 1, md.size(), stdout);
  }
  return OkStatus();
}

const RegisterCommand kRegister(
    "report", "Compare evaluation runs: table, deltas, McNemar tests, charts", 61,
    [](CLI::App& app) {
      auto f = std::make_shared<ReportFlags>();
      app.description(
          "One table: rows = runs, columns = task metrics (value ± stderr), deltas against the "
          "first run and an exact McNemar test on per-sample correctness per task.\n\nExample:\n"
          "  rvec report runs/base runs/base+vector -o report.md --html report.html");
      app.add_option("runs", f->runs, "Run directories written by `rvec eval` (first = baseline)")
          ->required();
      app.add_option("-o,--output", f->out, "Write the Markdown table here (default: stdout)");
      app.add_option("--html", f->html, "Also write an HTML report with SVG bar charts");
      app.add_option("--labels", f->labels,
                     "Comma-separated row labels (default: directory names)");
      AddCommonFlags(app);
      return [f] { return RunReport(*f); };
    });

}  // namespace
}  // namespace rvec::cli
