// Run comparison tables (Markdown / HTML with hand-written SVG bar charts / JSON) with deltas and
// exact McNemar tests on paired per-sample correctness.
#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/fs.h"
#include "eval/runner.h"
#include "eval/stats.h"

namespace rvec::eval {

namespace fs = std::filesystem;

namespace {

struct RunData {
  nlohmann::json results;
  // (task, doc_id) -> metric key -> value, for the leaf tasks of a column.
  std::map<std::string, std::map<size_t, std::map<std::string, double>>> samples;
};

StatusOr<RunData> LoadRun(const fs::path& dir) {
  RunData run;
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

Status LoadSamples(const fs::path& dir, const std::string& task, RunData* run) {
  if (run->samples.count(task)) return OkStatus();
  auto& m = run->samples[task];
  if (!fs::exists(dir / ("samples_" + task + ".jsonl"))) return OkStatus();
  ASSIGN_OR_RETURN(auto records, ReadSamples(dir, task));
  for (const auto& r : records) {
    if (!r.contains("doc_id") || !r.contains("metrics")) continue;
    auto& dst = m[r["doc_id"].get<size_t>()];
    for (const auto& [k, v] : r["metrics"].items()) {
      if (v.is_number()) dst[k] = v.get<double>();
    }
  }
  return OkStatus();
}

std::vector<std::string> LeafTasks(const nlohmann::json& results, const std::string& task) {
  const auto& gs = results.value("group_subtasks", nlohmann::json::object());
  if (gs.contains(task) && gs[task].is_array() && !gs[task].empty()) {
    return gs[task].get<std::vector<std::string>>();
  }
  return {task};
}

std::optional<double> Num(const nlohmann::json& obj, const std::string& key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_number()) return obj[key].get<double>();
  return std::nullopt;
}

std::string StderrKey(const std::string& metric_key) {
  const size_t comma = metric_key.find(',');
  if (comma == std::string::npos) return metric_key + "_stderr";
  return metric_key.substr(0, comma) + "_stderr" + metric_key.substr(comma);
}

std::string Pct(double v, int digits = 1) { return fmt::format("{:.{}f}", 100.0 * v, digits); }

std::string Signed(double v) { return fmt::format("{:+.1f}", 100.0 * v); }

std::string PValue(double p) {
  if (p < 0.001) return fmt::format("{:.1e}", p);
  return fmt::format("{:.3f}", p);
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
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
  // Columns: top-level entries of the first run (subtasks of a group are folded into it).
  const nlohmann::json& first = runs[0].results;
  std::set<std::string> subtasks;
  const nlohmann::json group_subtasks = first.value("group_subtasks", nlohmann::json::object());
  for (const auto& [g, subs] : group_subtasks.items()) {
    if (subs.is_array()) {
      for (const auto& s : subs) subtasks.insert(s.get<std::string>());
    }
  }
  for (const auto& [task, entry] : first["results"].items()) {
    if (subtasks.count(task)) continue;
    for (const auto& [key, v] : entry.items()) {
      if (key == "alias" || key.find("_stderr") != std::string::npos || !v.is_number()) continue;
      report.columns.push_back({task, key});
    }
  }
  report.cells.assign(runs.size(), std::vector<ReportCell>(report.columns.size()));
  for (size_t c = 0; c < report.columns.size(); ++c) {
    const auto& col = report.columns[c];
    const auto leaves = LeafTasks(first, col.task);
    for (size_t r = 0; r < runs.size(); ++r) {
      ReportCell& cell = report.cells[r][c];
      const auto& entry = runs[r].results["results"].value(col.task, nlohmann::json());
      cell.value = Num(entry, col.metric);
      cell.stderr_ = Num(entry, StderrKey(col.metric));
      if (r == 0 || !cell.value || !report.cells[0][c].value) continue;
      cell.delta = *cell.value - *report.cells[0][c].value;
      // Paired exact McNemar on 0/1 per-sample scores, by (leaf task, doc_id).
      bool binary = true;
      for (const auto& leaf : leaves) {
        RETURN_IF_ERROR(LoadSamples(run_dirs[0], leaf, &runs[0]));
        RETURN_IF_ERROR(LoadSamples(run_dirs[r], leaf, &runs[r]));
        const auto& a = runs[0].samples[leaf];
        const auto& b = runs[r].samples[leaf];
        for (const auto& [doc, ma] : a) {
          auto it = b.find(doc);
          if (it == b.end()) continue;
          auto ka = ma.find(col.metric);
          auto kb = it->second.find(col.metric);
          if (ka == ma.end() || kb == it->second.end()) continue;
          const double x = ka->second, y = kb->second;
          if ((x != 0.0 && x != 1.0) || (y != 0.0 && y != 1.0)) binary = false;
          ++cell.paired;
          if (y > x) ++cell.only_this;
          if (x > y) ++cell.only_first;
        }
      }
      if (binary && cell.paired > 0) cell.p_value = McNemarExactP(cell.only_this, cell.only_first);
    }
  }
  return report;
}

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
      if (cell.delta) s += " (" + Signed(*cell.delta) + ")";
      if (cell.p_value) s += fmt::format(" p={}", PValue(*cell.p_value));
      out += " " + s + " |";
    }
    out += "\n";
  }
  out +=
      "\nValues in %, ± lm-eval's standard error; (Δ) in points against the first run; p = exact "
      "two-sided McNemar test on per-sample correctness paired by document.\n";
  return out;
}

std::string RenderHtml(const Report& report) {
  static const char* kColors[] = {"#4c78a8", "#f58518", "#54a24b", "#e45756",
                                  "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"};
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
        s += fmt::format(" <span class=\"{}{}\">({})</span>", cls, sig ? " sig" : "",
                         Signed(*cell.delta));
      }
      if (cell.p_value) s += "<br><small>p=" + PValue(*cell.p_value) + "</small>";
      html += "<td>" + s + "</td>";
    }
    html += "</tr>\n";
  }
  html +=
      "</table>\n<p><small>Values in %, ± lm-eval's standard error; (Δ) in points against the "
      "first run, bold when the exact McNemar test gives p &lt; 0.05.</small></p>\n"
      "<div class=\"charts\">\n";
  // One bar chart per column: a bar per run, with ±stderr whiskers, on a 0-100% axis.
  const double width = 60.0 + 48.0 * static_cast<double>(report.runs.size()), height = 220.0;
  const double top = 16.0, bottom = 180.0, left = 40.0;
  for (size_t c = 0; c < report.columns.size(); ++c) {
    std::string svg = fmt::format(
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
        "viewBox=\"0 0 {:.0f} {:.0f}\" font-size=\"10\">",
        width, height, width, height);
    for (int tick = 0; tick <= 100; tick += 25) {
      const double y = bottom - (bottom - top) * tick / 100.0;
      svg += fmt::format(
          "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}%</text>",
          left, width - 8, y, y, left - 4, y + 3, tick);
    }
    for (size_t r = 0; r < report.runs.size(); ++r) {
      const ReportCell& cell = report.cells[r][c];
      const double x = left + 12.0 + 48.0 * static_cast<double>(r);
      if (cell.value) {
        const double v = std::clamp(*cell.value, 0.0, 1.0);
        const double y = bottom - (bottom - top) * v;
        svg += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"32\" height=\"{:.1f}\" fill=\"{}\">"
            "<title>{}: {}%</title></rect>",
            x, y, bottom - y, kColors[r % 8], HtmlEscape(report.runs[r]), Pct(*cell.value, 2));
        if (cell.stderr_) {
          const double lo = bottom - (bottom - top) * std::clamp(v - *cell.stderr_, 0.0, 1.0);
          const double hi = bottom - (bottom - top) * std::clamp(v + *cell.stderr_, 0.0, 1.0);
          svg += fmt::format(
              "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#222\"/>",
              x + 16, x + 16, lo, hi);
        }
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                           x + 16, y - 3, Pct(*cell.value));
      }
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>", x + 16,
                         bottom + 14,
                         HtmlEscape(report.runs[r].size() > 10 ? report.runs[r].substr(0, 9) + "…"
                                                               : report.runs[r]));
    }
    svg += "</svg><figcaption>" + HtmlEscape(report.columns[c].task) + " · " +
           HtmlEscape(report.columns[c].metric) + "</figcaption></figure>\n";
    html += svg;
  }
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
        j["mcnemar_p"] = opt(cell.p_value);
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
