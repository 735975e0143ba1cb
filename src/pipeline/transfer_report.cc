// Transfer report rendering: tables in Markdown and HTML (with SVG bar charts), and report.json.
#include "pipeline/transfer_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/fs.h"
#include "eval/runner.h"
#include "eval/stats.h"

namespace rvec::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

StatusOr<json> ReadJson(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return DataLoss("{}: not valid JSON", path.string());
  return j;
}

// The entry of a task or group in results.json.
const json* ResultEntry(const json& results, const std::string& task) {
  if (results.contains("groups") && results["groups"].contains(task)) {
    return &results["groups"][task];
  }
  if (results.contains("results") && results["results"].contains(task)) {
    return &results["results"][task];
  }
  return nullptr;
}

std::vector<std::string> MetricKeys(const json& entry) {
  std::vector<std::string> keys;
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (it.key() == "alias" || it.key().find("_stderr") != std::string::npos) continue;
    if (!it.value().is_number()) continue;
    keys.push_back(it.key());
  }
  return keys;
}

std::string StderrKey(const std::string& key) {
  const size_t comma = key.find(',');
  if (comma == std::string::npos) return key + "_stderr";
  return key.substr(0, comma) + "_stderr" + key.substr(comma);
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
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

std::string FormatP(double p) {
  if (std::isnan(p)) return "n/a";
  if (p < 0.001) return "<0.001";
  return fmt::format("{:.3f}", p);
}

struct Column {
  std::string task;
  std::string metric;  // "exact_match,strict-match"
  std::string label;   // "gsm8k exact_match (strict-match)"
};

struct Cell {
  bool present = false;
  double value = 0;
  std::optional<double> stderr_value;
  std::optional<double> delta;  // vs the target
  double p = std::nan("");
  size_t n = 0;
};

// Markdown cells " +1.2 (p=0.034) |" (or " — |" where nothing was compared) of a comparison row.
std::string DeltaCells(const json& cells) {
  std::string md;
  for (const auto& cj : cells) {
    if (cj.is_null() || cj["delta"].is_null()) {
      md += " — |";
    } else {
      md += fmt::format(
          " {:+.1f} (p={}) |", 100 * cj["delta"].get<double>(),
          FormatP(cj["p_value"].is_null() ? std::nan("") : cj["p_value"].get<double>()));
    }
  }
  return md;
}

json CellJson(const Cell& c) {
  if (!c.present) return nullptr;
  json j = {{"value", c.value}, {"n", c.n}};
  j["stderr"] = c.stderr_value ? json(*c.stderr_value) : json(nullptr);
  j["delta"] = c.delta ? json(*c.delta) : json(nullptr);
  j["p_value"] = std::isnan(c.p) ? json(nullptr) : json(c.p);
  return j;
}

std::string CellText(const Cell& c, bool is_target) {
  if (!c.present) return "—";
  std::string s = fmt::format("{:.1f}", 100 * c.value);
  if (c.stderr_value) s += fmt::format(" ± {:.1f}", 100 * *c.stderr_value);
  if (!is_target && c.delta) {
    s += fmt::format(" ({:+.1f}, p={})", 100 * *c.delta, FormatP(c.p));
  }
  return s;
}

// A horizontal bar chart of one column: one bar per variant, stderr whiskers.
std::string BarChartSvg(const Column& col, const std::vector<std::string>& labels,
                        const std::vector<Cell>& cells) {
  const int row_h = 26, left = 230, width = 640, top = 34;
  const int height = top + static_cast<int>(labels.size()) * row_h + 30;
  const int plot_w = width - left - 70;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
      width, height, HtmlEscape(col.label));
  for (int t = 0; t <= 4; ++t) {
    const int x = left + plot_w * t / 4;
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/>"
        "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#666\">{4}%</text>\n",
        x, top - 4, height - 24, height - 10, 25 * t);
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = top + static_cast<int>(i) * row_h;
    const Cell& c = cells[i];
    const char* color = i == 0 ? "#7f7f7f" : (c.delta && *c.delta >= 0 ? "#2b8cbe" : "#e34a33");
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 8, y + 16,
                       HtmlEscape(labels[i]));
    if (!c.present) continue;
    const double v = std::clamp(c.value, 0.0, 1.0);
    const int w = static_cast<int>(std::lround(v * plot_w));
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"18\" fill=\"{}\"/>\n", left,
                       y + 3, w, color);
    if (c.stderr_value) {
      const int x0 =
          left +
          static_cast<int>(std::lround(std::clamp(c.value - *c.stderr_value, 0.0, 1.0) * plot_w));
      const int x1 =
          left +
          static_cast<int>(std::lround(std::clamp(c.value + *c.stderr_value, 0.0, 1.0) * plot_w));
      svg += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#222\"/>\n",
                         x0, x1, y + 12);
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{:.1f}%</text>\n", left + w + 6, y + 16,
                       100 * c.value);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace

StatusOr<PairedComparison> ComparePaired(const fs::path& run_a, const fs::path& run_b,
                                         const std::string& task, const std::string& metric_key) {
  ASSIGN_OR_RETURN(json results_a, ReadJson(run_a / "results.json"));
  std::vector<std::string> subtasks;
  if (results_a.contains("group_subtasks") && results_a["group_subtasks"].contains(task) &&
      !results_a["group_subtasks"][task].empty()) {
    for (const auto& s : results_a["group_subtasks"][task]) subtasks.push_back(s);
  } else {
    subtasks.push_back(task);
  }
  PairedComparison out;
  for (const std::string& sub : subtasks) {
    ASSIGN_OR_RETURN(std::vector<json> sa, eval::ReadSamples(run_a, sub));
    ASSIGN_OR_RETURN(std::vector<json> sb, eval::ReadSamples(run_b, sub));
    std::map<size_t, double> by_doc;
    for (const json& r : sa) {
      if (r.contains("metrics") && r["metrics"].contains(metric_key)) {
        by_doc[r["doc_id"].get<size_t>()] = r["metrics"][metric_key].get<double>();
      }
    }
    for (const json& r : sb) {
      if (!r.contains("metrics") || !r["metrics"].contains(metric_key)) continue;
      auto it = by_doc.find(r["doc_id"].get<size_t>());
      if (it == by_doc.end()) continue;
      const double a = it->second, b = r["metrics"][metric_key].get<double>();
      if ((a != 0 && a != 1) || (b != 0 && b != 1)) {
        out.p_value = std::nan("");  // not a per-sample correctness metric
        return out;
      }
      ++out.n;
      if (a == 1 && b == 0) ++out.only_a;
      if (a == 0 && b == 1) ++out.only_b;
    }
  }
  out.p_value = eval::McNemarExactP(out.only_a, out.only_b);
  return out;
}

StatusOr<json> WriteTransferReport(const ReportInputs& in) {
  const TransferOptions& o = *in.options;
  json report;
  const bool demo = o.demo_facts.has_value();
  report["title"] = demo ? "rvec demo: reasoning-vector transfer on miniature random models"
                         : "Reasoning-vector transfer";
  report["inputs"] = {{"sft", o.sft.string()},
                      {"grpo", o.grpo.string()},
                      {"target", o.target.string()},
                      {"alphas", o.alphas},
                      {"tasks", o.tasks},
                      {"limit", o.limit ? json(*o.limit) : json(nullptr)},
                      {"backend", o.backend},
                      {"seed", o.seed},
                      {"chat", o.chat},
                      {"vector_dtype", std::string(DTypeName(o.vector_dtype))}};
  report["compatibility"] = in.compat;
  if (in.vector_stats.is_object()) {
    json v = in.vector_stats;
    v.erase("tensors");  // per-tensor numbers stay in vector_stats.json
    report["vector"] = v;
  }

  // Find the runs: target first.
  std::map<std::string, fs::path> run_of;
  std::map<std::string, json> results_of;
  for (const auto& [variant, dir] : in.runs) {
    ASSIGN_OR_RETURN(json r, ReadJson(dir / "results.json"));
    run_of[variant.id] = dir;
    results_of[variant.id] = std::move(r);
  }
  std::vector<Column> columns;
  if (results_of.count("target")) {
    for (const std::string& task : o.tasks) {
      const json* entry = ResultEntry(results_of["target"], task);
      if (!entry) continue;
      for (const std::string& key : MetricKeys(*entry)) {
        const size_t comma = key.find(',');
        std::string label = task + " " + key.substr(0, comma);
        if (comma != std::string::npos && key.substr(comma + 1) != "none") {
          label += " (" + key.substr(comma + 1) + ")";
        }
        columns.push_back({task, key, label});
      }
    }
  }
  json cols = json::array();
  for (const Column& c : columns) {
    cols.push_back({{"task", c.task}, {"metric", c.metric}, {"label", c.label}});
  }
  report["columns"] = cols;

  auto cell_for = [&](const std::string& id, const Column& col,
                      const std::string& baseline) -> StatusOr<Cell> {
    Cell c;
    if (!results_of.count(id)) return c;
    const json* entry = ResultEntry(results_of[id], col.task);
    if (!entry || !entry->contains(col.metric)) return c;
    c.present = true;
    c.value = (*entry)[col.metric].get<double>();
    const std::string sk = StderrKey(col.metric);
    if (entry->contains(sk) && (*entry)[sk].is_number())
      c.stderr_value = (*entry)[sk].get<double>();
    if (id != baseline && results_of.count(baseline)) {
      const json* base = ResultEntry(results_of[baseline], col.task);
      if (base && base->contains(col.metric)) {
        c.delta = c.value - (*base)[col.metric].get<double>();
        ASSIGN_OR_RETURN(PairedComparison pc,
                         ComparePaired(run_of[baseline], run_of[id], col.task, col.metric));
        c.p = pc.p_value;
        c.n = pc.n;
      }
    }
    return c;
  };

  json rows = json::array();
  std::vector<std::vector<Cell>> table;  // [variant][column]
  std::vector<std::string> labels;
  for (const Variant& v : in.all_variants) {
    json row = {{"variant", v.id},
                {"label", v.label},
                {"alpha", v.alpha},
                {"control", v.control},
                {"model", v.model_dir.string()},
                {"evaluated", results_of.count(v.id) > 0}};
    json cells = json::array();
    std::vector<Cell> row_cells;
    for (const Column& col : columns) {
      ASSIGN_OR_RETURN(Cell c, cell_for(v.id, col, "target"));
      cells.push_back(CellJson(c));
      row_cells.push_back(c);
    }
    row["cells"] = cells;
    rows.push_back(row);
    table.push_back(row_cells);
    labels.push_back(v.label);
  }
  report["rows"] = rows;

  // Controls: each v-row at the control's α against each control row of that α.
  json control_cmp = json::array();
  std::vector<std::string> specific_sentences;
  for (const Variant& cv : in.all_variants) {
    if (cv.control.empty()) continue;
    for (const Variant& vv : in.all_variants) {
      if (!vv.control.empty() || !vv.compact.empty() || vv.id == "target" || vv.alpha != cv.alpha) {
        continue;
      }
      json cmp = {{"variant", vv.id}, {"control", cv.id}, {"cells", json::array()}};
      bool all_specific = !columns.empty();
      bool any_evaluated = false;
      for (const Column& col : columns) {
        ASSIGN_OR_RETURN(Cell c, cell_for(vv.id, col, cv.id));
        cmp["cells"].push_back(CellJson(c));
        if (!c.present || !c.delta) {
          all_specific = false;
          continue;
        }
        any_evaluated = true;
        ASSIGN_OR_RETURN(Cell vt, cell_for(vv.id, col, "target"));
        const bool same_direction =
            vt.delta && *vt.delta != 0 && std::signbit(*vt.delta) == std::signbit(*c.delta);
        if (!(same_direction && !std::isnan(c.p) && c.p < 0.05)) all_specific = false;
      }
      if (any_evaluated) {
        const std::string sentence =
            all_specific ? fmt::format(
                               "The effect of {} is specific to v: on every metric it differs "
                               "from the norm-matched {} control in the same direction as from "
                               "the target (McNemar p < 0.05).",
                               vv.label, cv.control)
                         : fmt::format(
                               "The effect of {} is not shown to be specific to v: on at least "
                               "one metric it is not distinguishable (McNemar p ≥ 0.05, or "
                               "opposite direction) from the norm-matched {} control ({}).",
                               vv.label, cv.control, cv.label);
        cmp["specific"] = all_specific;
        cmp["sentence"] = sentence;
        specific_sentences.push_back(sentence);
      }
      control_cmp.push_back(cmp);
    }
  }
  report["controls"] = control_cmp;

  // Compact forms: each against the exact v's row at the same α, with its compression figures.
  json compact_cmp = json::array();
  for (const Variant& cv : in.all_variants) {
    if (cv.compact.empty()) continue;
    const std::string exact = "alpha_" + AlphaName(cv.alpha);
    json cmp = {
        {"variant", cv.id}, {"compact", cv.compact}, {"exact", exact}, {"cells", json::array()}};
    for (const Column& col : columns) {
      ASSIGN_OR_RETURN(Cell c, cell_for(cv.id, col, exact));
      cmp["cells"].push_back(CellJson(c));
    }
    auto text = ReadFileToString(cv.compact_dir / "compress.json");
    if (text.ok()) {
      const json cz = json::parse(*text, nullptr, false);
      if (cz.is_object()) {
        for (const char* k :
             {"size_fraction_of_dense_bf16", "relative_error", "cosine", "bytes_on_disk"}) {
          if (cz.contains(k)) cmp[k] = cz[k];
        }
      }
    }
    compact_cmp.push_back(cmp);
  }
  report["compact"] = compact_cmp;
  if (demo) report["demo"] = *o.demo_facts;

  // Reproduce.
  json reproduce = json::array();
  if (!o.command_line.empty()) reproduce.push_back(o.command_line);
  reproduce.push_back(fmt::format(
      "rvec extract --base {} --tuned {} --dtype {} -o {}", o.sft.string(), o.grpo.string(),
      DTypeName(o.vector_dtype) == "F32" ? "f32" : "bf16", (o.workdir / "vector").string()));
  for (const Variant& v : in.all_variants) {
    if (v.compact.empty()) continue;
    auto spec = ParseCompactSpec(v.compact);
    if (!spec.ok()) continue;
    std::string args;
    if (spec->rank) args = fmt::format("--method lowrank --rank {}", spec->rank);
    if (spec->energy > 0) args = fmt::format("--method lowrank --energy {}", spec->energy);
    if (spec->density > 0) {
      args =
          fmt::format("--method sparse --density {}{}", spec->density, spec->dare ? " --dare" : "");
    }
    if (args.empty()) args = "--method sign";
    reproduce.push_back(fmt::format("rvec compress {} -o {} {}", (o.workdir / "vector").string(),
                                    v.compact_dir.string(), args));
    reproduce.push_back(fmt::format("rvec apply --model {} --vector {}:{} -o {}", o.target.string(),
                                    v.compact_dir.string(), AlphaName(v.alpha),
                                    v.model_dir.string()));
  }
  for (const Variant& v : in.all_variants) {
    if (v.id == "target" || !v.control.empty() || !v.compact.empty()) continue;
    reproduce.push_back(fmt::format("rvec apply --model {} --base {} --tuned {} --alpha {} -o {}",
                                    o.target.string(), o.sft.string(), o.grpo.string(),
                                    AlphaName(v.alpha), v.model_dir.string()));
  }
  for (const Variant& v : in.all_variants) {
    std::string cmd = fmt::format("rvec eval {} --tasks {} --seed {}", v.model_dir.string(),
                                  fmt::join(o.tasks, ","), o.seed);
    if (o.limit) cmd += fmt::format(" --limit {}", *o.limit);
    if (o.chat) cmd += " --chat";
    // The data directory is part of what was measured: name it, so the line runs anywhere.
    if (!o.data_dir.empty()) cmd += fmt::format(" --data-dir {}", o.data_dir.string());
    cmd += fmt::format(" --backend {} -o {}", o.backend, (o.workdir / "runs" / v.id).string());
    reproduce.push_back(cmd);
  }
  report["reproduce"] = reproduce;

  // ---- Markdown.
  std::string md = "# " + report["title"].get<std::string>() + "\n\n";
  if (demo) {
    md +=
        "> **These are random-weight miniature models.** The scores show that the pipeline "
        "works end to end, not the effect of a reasoning vector. Run `rvec transfer` on real "
        "checkpoints for that.\n\n";
  }
  md += fmt::format(
      "- SFT: `{}`\n- GRPO: `{}`\n- target: `{}`\n- tasks: {}{}; backend `{}`; "
      "few-shot seed {}{}\n\n",
      o.sft.string(), o.grpo.string(), o.target.string(), fmt::join(o.tasks, ", "),
      o.limit ? fmt::format(" (first {} docs each)", *o.limit) : "", o.backend, o.seed,
      o.chat ? "; chat template applied" : "");
  md +=
      "## Results\n\nCells: score % ± stderr, then (Δ vs target in points, exact McNemar "
      "p-value on paired samples).\n\n";
  md += "| variant |";
  for (const Column& c : columns) md += " " + c.label + " |";
  md += "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) md += "---:|";
  md += "\n";
  for (size_t r = 0; r < in.all_variants.size(); ++r) {
    md += "| " + labels[r] + (results_of.count(in.all_variants[r].id) ? "" : " (not evaluated)") +
          " |";
    for (const Cell& c : table[r]) md += " " + CellText(c, r == 0) + " |";
    md += "\n";
  }
  if (!compact_cmp.empty()) {
    md +=
        "\n## What compression costs\n\nEach compact form of v (`rvec compress`) against the "
        "exact v at the same α: size as a share of the dense bf16 vector, relative error "
        "‖v − ṽ‖/‖v‖, then the change in each score in points (McNemar p).\n\n";
    md += "| form | size | rel. error |";
    for (const Column& c : columns) md += " " + c.label + " |";
    md += "\n|---|---:|---:|";
    for (size_t i = 0; i < columns.size(); ++i) md += "---:|";
    md += "\n";
    for (const auto& cmp : compact_cmp) {
      md += fmt::format(
          "| {} vs {} | {} | {} |", cmp["variant"].get<std::string>(),
          cmp["exact"].get<std::string>(),
          cmp.contains("size_fraction_of_dense_bf16")
              ? fmt::format("{:.2f}%", 100 * cmp["size_fraction_of_dense_bf16"].get<double>())
              : "—",
          cmp.contains("relative_error")
              ? fmt::format("{:.3f}", cmp["relative_error"].get<double>())
              : "—");
      md += DeltaCells(cmp["cells"]) + "\n";
    }
    md += "\n";
  }
  if (!control_cmp.empty()) {
    md +=
        "\n## Is the effect specific to v?\n\nEach row compares target + α·v with target + "
        "α·(a control of the same per-tensor norms but no learned direction).\n\n";
    md += "| comparison |";
    for (const Column& c : columns) md += " " + c.label + " |";
    md += "\n|---|";
    for (size_t i = 0; i < columns.size(); ++i) md += "---:|";
    md += "\n";
    for (const auto& cmp : control_cmp) {
      md += "| " + cmp["variant"].get<std::string>() + " vs " + cmp["control"].get<std::string>() +
            " |";
      md += DeltaCells(cmp["cells"]) + "\n";
    }
    md += "\n";
    for (const auto& s : specific_sentences) md += s + "\n\n";
  }
  if (report.contains("vector")) {
    const json& v = report["vector"];
    md += "## The vector\n\n";
    if (v.contains("total")) {
      const json& t = v["total"];
      const double l2 = t.contains("l2_norm") ? t["l2_norm"].get<double>() : 0.0;
      md += fmt::format("- ‖v‖₂ = {:.6g}", l2);
      if (t.contains("relative_norm") && t["relative_norm"].is_number()) {
        md += fmt::format(", ‖v‖/‖θ_target‖ = {:.4g}", t["relative_norm"].get<double>());
      }
      if (t.contains("max_abs"))
        md += fmt::format(", max |v| = {:.4g}", t["max_abs"].get<double>());
      if (t.contains("zero_fraction")) {
        md += fmt::format(", exact zeros {:.2f}%", 100 * t["zero_fraction"].get<double>());
      }
      md += "\n";
    }
    md +=
        "- Per-layer relative norm by module: `vector_layers.svg`; every tensor: "
        "`vector_stats.json`.\n\n![per-layer norms](vector_layers.svg)\n\n";
  }
  if (demo && o.demo_facts->contains("known_vector_check")) {
    md += "## Known-vector check\n\n" + (*o.demo_facts)["known_vector_check"].get<std::string>() +
          "\n\n";
  }
  md += "## Reproduce\n\n```sh\n";
  for (const auto& c : reproduce) md += c.get<std::string>() + "\n";
  md += "```\n";

  // ---- HTML.
  std::string html =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" +
      HtmlEscape(report["title"].get<std::string>()) +
      "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em "
      "auto;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid "
      "#ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".note{background:#fff4d6;padding:.6em 1em;border-left:4px solid #f0b429}"
      "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>\n";
  html += "<h1>" + HtmlEscape(report["title"].get<std::string>()) + "</h1>\n";
  if (demo) {
    html +=
        "<p class=\"note\"><b>These are random-weight miniature models.</b> The scores show "
        "that the pipeline works end to end, not the effect of a reasoning vector.</p>\n";
  }
  html +=
      "<h2>Results</h2>\n<p>Score % ± stderr, (Δ vs target in points, exact McNemar "
      "p).</p>\n<table><tr><th>variant</th>";
  for (const Column& c : columns) html += "<th>" + HtmlEscape(c.label) + "</th>";
  html += "</tr>\n";
  for (size_t r = 0; r < in.all_variants.size(); ++r) {
    html += "<tr><td>" + HtmlEscape(labels[r]) + "</td>";
    for (const Cell& c : table[r]) html += "<td>" + HtmlEscape(CellText(c, r == 0)) + "</td>";
    html += "</tr>\n";
  }
  html += "</table>\n";
  for (size_t ci = 0; ci < columns.size(); ++ci) {
    std::vector<Cell> col_cells;
    for (const auto& row : table) col_cells.push_back(row[ci]);
    html += BarChartSvg(columns[ci], labels, col_cells);
  }
  for (const auto& s : specific_sentences) html += "<p>" + HtmlEscape(s) + "</p>\n";
  const fs::path svg_path = o.workdir / "vector_layers.svg";
  if (fs::exists(svg_path)) {
    auto svg = ReadFileToString(svg_path);
    if (svg.ok()) html += "<h2>The vector</h2>\n" + *svg + "\n";
  }
  if (demo && o.demo_facts->contains("known_vector_check")) {
    html += "<h2>Known-vector check</h2>\n<p>" +
            HtmlEscape((*o.demo_facts)["known_vector_check"].get<std::string>()) + "</p>\n";
  }
  html += "<h2>Reproduce</h2>\n<pre>";
  for (const auto& c : reproduce) html += HtmlEscape(c.get<std::string>()) + "\n";
  html += "</pre>\n</body></html>\n";

  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "report.md", md));
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "report.html", html));
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "report.json", report.dump(2) + "\n"));
  return report;
}

}  // namespace rvec::pipeline
