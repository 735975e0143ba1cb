// Run comparison tables (Markdown / HTML with SVG bar charts / JSON) with deltas and exact
// McNemar tests on paired per-sample correctness, and the results.json reading and paired
// comparison that the transfer report shares.
#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/fs.h"
#include "base/html.h"
#include "base/svg.h"
#include "eval/runner.h"
#include "eval/stats.h"

namespace rvec::eval {

namespace fs = std::filesystem;

namespace {

// The per-document scores of one leaf task in one run: doc_id -> metric key -> score, and
// whether they summarise K > 1 samples (records with "sample_metrics").
struct DocScores {
  std::map<size_t, std::map<std::string, double>> docs;
  bool sampled = false;
};

StatusOr<DocScores> ReadDocScores(const fs::path& dir, const std::string& task) {
  DocScores scores;
  ASSIGN_OR_RETURN(auto records, ReadSamples(dir, task));  // none without a samples file
  for (const auto& r : records) {
    if (!r.contains("doc_id") || !r.contains("metrics")) continue;
    if (r.contains("sample_metrics")) scores.sampled = true;
    auto& dst = scores.docs[r["doc_id"].get<size_t>()];
    for (const auto& [k, v] : r["metrics"].items()) {
      if (v.is_number()) dst[k] = v.get<double>();
    }
  }
  return scores;
}

// Adds the documents of one leaf task scored on `metric` in both A and B; `diffs` gets A - B.
void AddPairs(const DocScores& a, const DocScores& b, const std::string& metric,
              PairedComparison* pc, std::vector<double>* diffs) {
  if (a.sampled || b.sampled) pc->sampled = true;
  for (const auto& [doc, ma] : a.docs) {
    auto it = b.docs.find(doc);
    if (it == b.docs.end()) continue;
    auto ka = ma.find(metric);
    auto kb = it->second.find(metric);
    if (ka == ma.end() || kb == it->second.end()) continue;
    const double x = ka->second, y = kb->second;
    if ((x != 0.0 && x != 1.0) || (y != 0.0 && y != 1.0)) pc->binary = false;
    ++pc->paired;
    if (x > y) ++pc->only_a;
    if (y > x) ++pc->only_b;
    diffs->push_back(x - y);
  }
}

// Applies the rule of report.h: the exact McNemar test on paired 0/1 scores, the sign-flip
// permutation test on per-document means of sampled runs, otherwise no p-value.
void FinishPairs(const std::vector<double>& diffs, PairedComparison* pc) {
  if (pc->paired == 0) return;
  if (pc->binary) {
    pc->p_value = McNemarExactP(pc->only_a, pc->only_b);
    pc->test = "mcnemar";
  } else if (pc->sampled) {
    pc->p_value = PairedPermutationP(diffs);
    pc->test = "permutation";
  }
}

struct RunData {
  fs::path dir;
  nlohmann::json results;
  std::map<std::string, DocScores> samples;  // by leaf task, read on first use

  StatusOr<const DocScores*> Samples(const std::string& task) {
    auto it = samples.find(task);
    if (it == samples.end()) {
      ASSIGN_OR_RETURN(DocScores s, ReadDocScores(dir, task));
      it = samples.emplace(task, std::move(s)).first;
    }
    return &it->second;
  }
};

StatusOr<RunData> LoadRun(const fs::path& dir) {
  RunData run;
  run.dir = dir;
  const fs::path path = dir / "results.json";
  if (!fs::exists(path)) {
    return NotFound("{}: no results.json (not a finished rvec eval run directory)", dir.string());
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  run.results = nlohmann::json::parse(text, nullptr, false);
  if (run.results.is_discarded() || !run.results.contains("results")) {
    return DataLoss("{}: not an lm-eval style results file", path.string());
  }
  return run;
}

// Pairs `metric` of `task` between two loaded runs; groups resolve through A's results.json.
StatusOr<PairedComparison> ComparePairedRuns(RunData& a, RunData& b, const std::string& task,
                                             const std::string& metric) {
  PairedComparison pc;
  std::vector<double> diffs;
  for (const auto& leaf : LeafTasks(a.results, task)) {
    ASSIGN_OR_RETURN(const DocScores* sa, a.Samples(leaf));
    ASSIGN_OR_RETURN(const DocScores* sb, b.Samples(leaf));
    AddPairs(*sa, *sb, metric, &pc, &diffs);
  }
  FinishPairs(diffs, &pc);
  return pc;
}

std::string Pct(double v, int digits = 1) { return fmt::format("{:.{}f}", 100.0 * v, digits); }

std::string Signed(double v) { return fmt::format("{:+.1f}", 100.0 * v); }

// "0.034", "1.2e-05", or "n/a" where the exact test does not apply.
std::string PValue(const std::optional<double>& p) {
  if (!p) return "n/a";
  if (*p < 0.001) return fmt::format("{:.1e}", *p);
  return fmt::format("{:.3f}", *p);
}

// True for a plain "M,F" key of a task run with K > 1 samples: its value is avg@K's, which the
// entry also holds as "avg@K,F" (first metric) or "M_avg@K,F" (later metrics; runner.h names).
bool RepeatsAvgKey(const nlohmann::json& results, const std::string& task, const std::string& key) {
  const auto& configs = results.value("configs", nlohmann::json::object());
  if (!configs.contains(task) || !configs[task].value("repeats", nlohmann::json(1)).is_number()) {
    return false;
  }
  const size_t k = configs[task].value("repeats", size_t{1});
  const size_t comma = key.find(',');
  if (k <= 1 || comma == std::string::npos) return false;
  const std::string metric = key.substr(0, comma), filter = key.substr(comma);
  const std::string avg = fmt::format("avg@{}", k);
  // A derived key ("avg@8", "f1_pass@4", "maj@8") is never hidden.
  for (const std::string& derived : {avg, fmt::format("maj@{}", k), std::string("pass@")}) {
    const size_t at = metric.rfind(derived);
    if (at != std::string::npos && (at == 0 || metric[at - 1] == '_') &&
        (derived != "pass@" || metric.substr(at) != "pass@1")) {
      return false;
    }
  }
  const nlohmann::json* entry = ResultEntry(results, task);
  if (!entry) return false;
  if (entry->contains(metric + "_" + avg + filter)) return true;
  // The first metric: the one plain key without its own "M_avg@K" key.
  return entry->contains(avg + filter);
}

}  // namespace

std::string StderrKey(const std::string& metric_key) {
  const size_t comma = metric_key.find(',');
  if (comma == std::string::npos) return metric_key + "_stderr";
  return metric_key.substr(0, comma) + "_stderr" + metric_key.substr(comma);
}

std::vector<std::string> MetricKeys(const nlohmann::json& entry) {
  std::vector<std::string> keys;
  for (const auto& [key, v] : entry.items()) {
    if (key == "alias" || key.find("_stderr") != std::string::npos || !v.is_number()) continue;
    keys.push_back(key);
  }
  return keys;
}

std::vector<std::string> ReportMetricKeys(const nlohmann::json& results, const std::string& task) {
  const nlohmann::json* entry = ResultEntry(results, task);
  if (!entry) return {};
  std::vector<std::string> keys;
  for (const std::string& key : MetricKeys(*entry)) {
    if (!RepeatsAvgKey(results, task, key)) keys.push_back(key);
  }
  return keys;
}

const nlohmann::json* ResultEntry(const nlohmann::json& results, const std::string& task) {
  for (const char* section : {"groups", "results"}) {
    if (results.contains(section) && results[section].contains(task)) {
      return &results[section][task];
    }
  }
  return nullptr;
}

std::vector<std::string> LeafTasks(const nlohmann::json& results, const std::string& task) {
  const auto& gs = results.value("group_subtasks", nlohmann::json::object());
  if (gs.contains(task) && gs[task].is_array() && !gs[task].empty()) {
    return gs[task].get<std::vector<std::string>>();
  }
  return {task};
}

std::optional<double> MetricValue(const nlohmann::json& entry, const std::string& key) {
  if (entry.is_object() && entry.contains(key) && entry[key].is_number()) {
    return entry[key].get<double>();
  }
  return std::nullopt;
}

StatusOr<PairedComparison> ComparePaired(const fs::path& run_a, const fs::path& run_b,
                                         const std::string& task, const std::string& metric_key) {
  ASSIGN_OR_RETURN(RunData a, LoadRun(run_a));
  RunData b;  // only B's samples are read: groups resolve through A
  b.dir = run_b;
  return ComparePairedRuns(a, b, task, metric_key);
}

namespace {

// Columns: the metrics of the first run's top-level entries (subtasks fold into their group).
std::vector<ReportColumn> ReportColumns(const nlohmann::json& first) {
  std::set<std::string> subtasks;
  const nlohmann::json group_subtasks = first.value("group_subtasks", nlohmann::json::object());
  for (const auto& [g, subs] : group_subtasks.items()) {
    if (subs.is_array()) {
      for (const auto& s : subs) subtasks.insert(s.get<std::string>());
    }
  }
  std::vector<ReportColumn> columns;
  for (const auto& [task, entry] : first["results"].items()) {
    if (subtasks.count(task)) continue;
    for (const std::string& key : ReportMetricKeys(first, task)) columns.push_back({task, key});
  }
  return columns;
}

}  // namespace

StatusOr<Report> BuildReport(const std::vector<fs::path>& run_dirs,
                             const std::vector<std::string>& labels) {
  if (run_dirs.empty()) return InvalidArgument("no run directories given");
  Report report;
  std::vector<RunData> runs;
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    ASSIGN_OR_RETURN(RunData run, LoadRun(run_dirs[i]));
    runs.push_back(std::move(run));
    report.paths.push_back(run_dirs[i].string());
    std::string label = i < labels.size() ? labels[i] : run_dirs[i].filename().string();
    if (label.empty()) label = run_dirs[i].parent_path().filename().string();
    report.runs.push_back(label);
  }
  report.columns = ReportColumns(runs[0].results);
  report.cells.assign(runs.size(), std::vector<ReportCell>(report.columns.size()));
  for (size_t c = 0; c < report.columns.size(); ++c) {
    const auto& col = report.columns[c];
    for (size_t r = 0; r < runs.size(); ++r) {
      ReportCell& cell = report.cells[r][c];
      const auto& entry = runs[r].results["results"].value(col.task, nlohmann::json());
      cell.value = MetricValue(entry, col.metric);
      cell.stderr_ = MetricValue(entry, StderrKey(col.metric));
      if (r == 0 || !cell.value || !report.cells[0][c].value) continue;
      cell.delta = *cell.value - *report.cells[0][c].value;
      ASSIGN_OR_RETURN(PairedComparison pc,
                       ComparePairedRuns(runs[0], runs[r], col.task, col.metric));
      cell.p_value = pc.p_value;
      cell.test = pc.test;
      cell.paired = pc.paired;
      cell.only_this = pc.only_b;
      cell.only_first = pc.only_a;
    }
  }
  return report;
}

namespace {

constexpr const char* kPermutationNote =
    "Runs with K > 1 samples per document: where paired scores are per-document means (avg@K), "
    "p is a two-sided paired sign-flip permutation test on the per-document differences.";

bool UsesPermutation(const Report& report) {
  for (const auto& row : report.cells) {
    for (const auto& cell : row) {
      if (cell.test == "permutation") return true;
    }
  }
  return false;
}

}  // namespace

std::string RenderMarkdown(const Report& report) {
  std::string out = "| run |";
  std::string rule = "|---|";
  for (const auto& col : report.columns) {
    out += fmt::format(" {} `{}` |", col.task, col.metric);
    rule += "---:|";
  }
  out += "\n" + rule + "\n";
  for (size_t r = 0; r < report.runs.size(); ++r) {
    out += "| " + report.runs[r] + " |";
    for (size_t c = 0; c < report.columns.size(); ++c) {
      const ReportCell& cell = report.cells[r][c];
      if (!cell.value) {
        out += " – |";
        continue;
      }
      std::string s = Pct(*cell.value);
      if (cell.stderr_) s += " ± " + Pct(*cell.stderr_);
      if (cell.delta) s += fmt::format(" ({}) p={}", Signed(*cell.delta), PValue(cell.p_value));
      out += " " + s + " |";
    }
    out += "\n";
  }
  out +=
      "\nValues in %, ± lm-eval's standard error; (Δ) in points against the first run; p = exact "
      "two-sided McNemar test on per-sample correctness paired by document.\n";
  if (UsesPermutation(report)) out += std::string(kPermutationNote) + "\n";
  return out;
}

namespace {

// A grid line in this chart's attribute order (x1 x2 y1 y2), kept so reports stay byte-stable.
std::string GridLine(double x1, double x2, double y1, double y2, std::string_view stroke) {
  return svg::Element("line")
      .Attr("x1", svg::Num::Fixed(x1, 1))
      .Attr("x2", svg::Num::Fixed(x2, 1))
      .Attr("y1", svg::Num::Fixed(y1, 1))
      .Attr("y2", svg::Num::Fixed(y2, 1))
      .Attr("stroke", stroke)
      .Empty();
}

std::string MiddleText(double x, double y, const std::string& text) {
  return svg::Text(svg::Num::Fixed(x, 1), svg::Num::Fixed(y, 1))
      .Attr("text-anchor", "middle")
      .WithText(text);
}

// One column's bar chart: a bar per run with ±stderr whiskers, on a 0-100% axis.
std::string BarChart(const Report& report, size_t c) {
  static const char* kColors[] = {"#4c78a8", "#f58518", "#54a24b", "#e45756",
                                  "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"};
  const double width = 60.0 + 48.0 * static_cast<double>(report.runs.size()), height = 220.0;
  const double top = 16.0, bottom = 180.0, left = 40.0;
  auto y_of = [&](double v) { return bottom - (bottom - top) * v; };
  std::string svg = "<figure>" + svg::Document(svg::Num::Fixed(width, 0),
                                               svg::Num::Fixed(height, 0), /*view_box=*/true)
                                     .Attr("font-size", 10)
                                     .Open();
  for (int tick = 0; tick <= 100; tick += 25) {
    const double y = bottom - (bottom - top) * tick / 100.0;
    svg += GridLine(left, width - 8, y, y, "#ddd") +
           svg::Text(svg::Num::Fixed(left - 4, 1), svg::Num::Fixed(y + 3, 1))
               .Attr("text-anchor", "end")
               .WithText(fmt::format("{}%", tick));
  }
  for (size_t r = 0; r < report.runs.size(); ++r) {
    const ReportCell& cell = report.cells[r][c];
    const double x = left + 12.0 + 48.0 * static_cast<double>(r);
    if (cell.value) {
      const double v = std::clamp(*cell.value, 0.0, 1.0);
      const double y = y_of(v);
      svg += svg::Rect(svg::Num::Fixed(x, 1), svg::Num::Fixed(y, 1), 32,
                       svg::Num::Fixed(bottom - y, 1))
                 .Attr("fill", kColors[r % 8])
                 .WithMarkup(svg::Element("title").WithText(
                     fmt::format("{}: {}%", report.runs[r], Pct(*cell.value, 2))));
      if (cell.stderr_) {
        svg += GridLine(x + 16, x + 16, y_of(std::clamp(v - *cell.stderr_, 0.0, 1.0)),
                        y_of(std::clamp(v + *cell.stderr_, 0.0, 1.0)), "#222");
      }
      svg += MiddleText(x + 16, y - 3, Pct(*cell.value));
    }
    svg += MiddleText(x + 16, bottom + 14, svg::Shorten(report.runs[r], 10, 9));
  }
  return svg + std::string(svg::kEnd) + "<figcaption>" + HtmlEscape(report.columns[c].task) +
         " · " + HtmlEscape(report.columns[c].metric) + "</figcaption></figure>\n";
}

}  // namespace

std::string RenderHtml(const Report& report) {
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rvec evaluation report</title>\n"
      "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
      "text-align:right}th:first-child,td:first-child{text-align:left}.pos{color:#1a7f37}"
      ".neg{color:#cf222e}.sig{font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:24px}"
      "figure{margin:0}figcaption{font-size:13px;text-align:center}</style></head><body>\n"
      "<h1>rvec evaluation report</h1>\n<table><tr><th>run</th>";
  for (const auto& col : report.columns) {
    html +=
        "<th>" + HtmlEscape(col.task) + "<br><small>" + HtmlEscape(col.metric) + "</small></th>";
  }
  html += "</tr>\n";
  for (size_t r = 0; r < report.runs.size(); ++r) {
    html += "<tr><td title=\"" + HtmlEscape(report.paths[r]) + "\">" + HtmlEscape(report.runs[r]) +
            "</td>";
    for (size_t c = 0; c < report.columns.size(); ++c) {
      const ReportCell& cell = report.cells[r][c];
      if (!cell.value) {
        html += "<td>–</td>";
        continue;
      }
      std::string s = Pct(*cell.value);
      if (cell.stderr_) s += " ± " + Pct(*cell.stderr_);
      if (cell.delta) {
        const char* cls = *cell.delta > 0 ? "pos" : (*cell.delta < 0 ? "neg" : "");
        const bool sig = cell.p_value && *cell.p_value < 0.05;
        s += fmt::format(" <span class=\"{}{}\">({})</span><br><small>p={}</small>", cls,
                         sig ? " sig" : "", Signed(*cell.delta), PValue(cell.p_value));
      }
      html += "<td>" + s + "</td>";
    }
    html += "</tr>\n";
  }
  html +=
      "</table>\n<p><small>Values in %, ± lm-eval's standard error; (Δ) in points against the "
      "first run, bold when the exact McNemar test gives p &lt; 0.05.</small></p>\n";
  if (UsesPermutation(report)) {
    html += "<p><small>" + HtmlEscape(kPermutationNote) + "</small></p>\n";
  }
  html += "<div class=\"charts\">\n";
  for (size_t c = 0; c < report.columns.size(); ++c) html += BarChart(report, c);
  html += "</div>\n</body></html>\n";
  return html;
}

nlohmann::json ReportToJson(const Report& report) {
  nlohmann::json runs = nlohmann::json::array();
  for (size_t r = 0; r < report.runs.size(); ++r) {
    nlohmann::json metrics = nlohmann::json::object();
    for (size_t c = 0; c < report.columns.size(); ++c) {
      const ReportCell& cell = report.cells[r][c];
      auto opt = [](const std::optional<double>& v) {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
      };
      nlohmann::json j = {{"value", opt(cell.value)}, {"stderr", opt(cell.stderr_)}};
      if (r > 0) {
        j["delta"] = opt(cell.delta);
        // null where the exact test does not apply; sampled runs' means add "permutation_p".
        j["mcnemar_p"] = cell.test == "mcnemar" ? opt(cell.p_value) : nlohmann::json(nullptr);
        if (cell.test == "permutation") j["permutation_p"] = opt(cell.p_value);
        j["paired_samples"] = cell.paired;
        j["only_this_correct"] = cell.only_this;
        j["only_first_correct"] = cell.only_first;
      }
      metrics[report.columns[c].task][report.columns[c].metric] = j;
    }
    runs.push_back({{"label", report.runs[r]}, {"path", report.paths[r]}, {"metrics", metrics}});
  }
  return {{"runs", runs}};
}

}  // namespace rvec::eval
