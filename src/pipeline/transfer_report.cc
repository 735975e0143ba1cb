// Transfer report rendering: tables in Markdown and HTML (with SVG bar charts), and report.json.
#include "pipeline/transfer_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "base/fs.h"
#include "base/html.h"
#include "base/svg.h"
#include "eval/report.h"

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

std::string FormatP(const std::optional<double>& p) {
  if (!p) return "n/a";
  if (*p < 0.001) return "<0.001";
  return fmt::format("{:.3f}", *p);
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
  std::optional<double> delta;    // vs the baseline
  std::optional<double> p_value;  // eval/report.h's rule
  std::string test;               // "mcnemar", "permutation" or ""
  size_t n = 0;
};

// The finished evaluations, by variant id.
struct Runs {
  std::map<std::string, fs::path> dir;
  std::map<std::string, json> results;

  bool Has(const std::string& id) const { return results.count(id) > 0; }

  // Variant `id`'s cell in `col`, compared with variant `baseline` when both were evaluated.
  StatusOr<Cell> CellFor(const std::string& id, const Column& col,
                         const std::string& baseline) const {
    Cell c;
    if (!Has(id)) return c;
    const json* entry = eval::ResultEntry(results.at(id), col.task);
    const std::optional<double> value =
        entry ? eval::MetricValue(*entry, col.metric) : std::nullopt;
    if (!value) return c;
    c.present = true;
    c.value = *value;
    c.stderr_value = eval::MetricValue(*entry, eval::StderrKey(col.metric));
    if (id == baseline || !Has(baseline)) return c;
    const json* base = eval::ResultEntry(results.at(baseline), col.task);
    const std::optional<double> base_value =
        base ? eval::MetricValue(*base, col.metric) : std::nullopt;
    if (!base_value) return c;
    c.delta = c.value - *base_value;
    ASSIGN_OR_RETURN(eval::PairedComparison pc,
                     eval::ComparePaired(dir.at(baseline), dir.at(id), col.task, col.metric));
    c.p_value = pc.p_value;
    c.test = pc.test;
    c.n = pc.paired;
    return c;
  }
};

// What the Markdown and HTML renderers read besides report.json.
struct Tables {
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;  // [variant][column]
  std::vector<std::string> labels;      // per variant
  std::vector<std::string> specific_sentences;
};

constexpr const char* kSampledNote =
    "With K > 1 sampled answers per document (--samples K), avg@K is the mean accuracy over "
    "samples and its p-value is a two-sided paired sign-flip permutation test on per-document "
    "mean accuracy (as for pass@k with k < K); pass@K and maj@K are 0/1 per document and keep "
    "McNemar.";

bool UsesPermutation(const Tables& t) {
  for (const auto& row : t.rows) {
    for (const Cell& c : row) {
      if (c.test == "permutation") return true;
    }
  }
  return false;
}

json CellJson(const Cell& c) {
  if (!c.present) return nullptr;
  json j = {{"value", c.value}, {"n", c.n}};
  j["stderr"] = c.stderr_value ? json(*c.stderr_value) : json(nullptr);
  j["delta"] = c.delta ? json(*c.delta) : json(nullptr);
  j["p_value"] = c.p_value ? json(*c.p_value) : json(nullptr);
  if (c.test == "permutation") j["test"] = c.test;  // McNemar otherwise, as before
  return j;
}

std::string CellText(const Cell& c, bool is_target) {
  if (!c.present) return "—";
  std::string s = fmt::format("{:.1f}", 100 * c.value);
  if (c.stderr_value) s += fmt::format(" ± {:.1f}", 100 * *c.stderr_value);
  if (!is_target && c.delta) {
    s += fmt::format(" ({:+.1f}, p={})", 100 * *c.delta, FormatP(c.p_value));
  }
  return s;
}

// ---- report.json, stage by stage

// The eval flags of --samples / --temperature / --top-p / --sampling-seed ("" without sampling).
std::string SamplingArgs(const TransferOptions& o) {
  std::string args;
  if (o.samples > 1) args += fmt::format(" --samples {}", o.samples);
  if (o.temperature) args += fmt::format(" --temperature {}", *o.temperature);
  if (o.top_p) args += fmt::format(" --top-p {}", *o.top_p);
  if (!args.empty() && o.sampling_seed)
    args += fmt::format(" --sampling-seed {}", *o.sampling_seed);
  return args;
}

json Header(const ReportInputs& in) {
  const TransferOptions& o = *in.options;
  json report;
  report["title"] = o.demo_facts ? "rvec demo: reasoning-vector transfer on miniature random models"
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
  // Only when sampling, so that greedy reports keep their report.json.
  if (!SamplingArgs(o).empty()) {
    report["inputs"]["sampling"] = {
        {"samples", o.samples},
        {"temperature", o.temperature ? json(*o.temperature) : json(nullptr)},
        {"top_p", o.top_p ? json(*o.top_p) : json(nullptr)},
        {"seed", o.sampling_seed.value_or(o.seed)}};
  }
  report["compatibility"] = in.compat;
  if (in.vector_stats.is_object()) {
    json v = in.vector_stats;
    v.erase("tensors");  // per-tensor numbers stay in vector_stats.json
    report["vector"] = v;
  }
  return report;
}

StatusOr<Runs> LoadRuns(const ReportInputs& in) {
  Runs runs;
  for (const auto& [variant, dir] : in.runs) {
    ASSIGN_OR_RETURN(json r, ReadJson(dir / "results.json"));
    runs.dir[variant.id] = dir;
    runs.results[variant.id] = std::move(r);
  }
  return runs;
}

// One column per metric of each task the target was evaluated on.
std::vector<Column> Columns(const std::vector<std::string>& tasks, const Runs& runs) {
  std::vector<Column> columns;
  if (!runs.Has("target")) return columns;
  for (const std::string& task : tasks) {
    // With --samples K the plain metric repeats avg@K and is left out.
    for (const std::string& key : eval::ReportMetricKeys(runs.results.at("target"), task)) {
      const size_t comma = key.find(',');
      std::string label = task + " " + key.substr(0, comma);
      if (comma != std::string::npos && key.substr(comma + 1) != "none") {
        label += " (" + key.substr(comma + 1) + ")";
      }
      columns.push_back({task, key, label});
    }
  }
  return columns;
}

json ColumnsJson(const std::vector<Column>& columns) {
  json cols = json::array();
  for (const Column& c : columns) {
    cols.push_back({{"task", c.task}, {"metric", c.metric}, {"label", c.label}});
  }
  return cols;
}

// One row per variant, each cell against the target; fills tables->rows and labels.
StatusOr<json> ResultRows(const ReportInputs& in, const Runs& runs, Tables* tables) {
  json rows = json::array();
  for (const Variant& v : in.all_variants) {
    json row = {{"variant", v.id},
                {"label", v.label},
                {"alpha", v.alpha},
                {"control", v.control},
                {"model", v.model_dir.string()},
                {"evaluated", runs.Has(v.id)}};
    json cells = json::array();
    std::vector<Cell> row_cells;
    for (const Column& col : tables->columns) {
      ASSIGN_OR_RETURN(Cell c, runs.CellFor(v.id, col, "target"));
      cells.push_back(CellJson(c));
      row_cells.push_back(c);
    }
    row["cells"] = cells;
    rows.push_back(row);
    tables->rows.push_back(row_cells);
    tables->labels.push_back(v.label);
  }
  return rows;
}

// Variant `vv` against control `cv`; sets *sentence when any metric was compared.
StatusOr<json> ControlComparison(const Variant& vv, const Variant& cv, const Runs& runs,
                                 const std::vector<Column>& columns, std::string* sentence) {
  json cmp = {{"variant", vv.id}, {"control", cv.id}, {"cells", json::array()}};
  bool all_specific = !columns.empty();
  bool any_evaluated = false;
  for (const Column& col : columns) {
    ASSIGN_OR_RETURN(Cell c, runs.CellFor(vv.id, col, cv.id));
    cmp["cells"].push_back(CellJson(c));
    if (!c.present || !c.delta) {
      all_specific = false;
      continue;
    }
    any_evaluated = true;
    ASSIGN_OR_RETURN(Cell vt, runs.CellFor(vv.id, col, "target"));
    const bool same_direction =
        vt.delta && *vt.delta != 0 && std::signbit(*vt.delta) == std::signbit(*c.delta);
    if (!(same_direction && c.p_value && *c.p_value < 0.05)) all_specific = false;
  }
  if (!any_evaluated) return cmp;
  *sentence = all_specific ? fmt::format(
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
  cmp["sentence"] = *sentence;
  return cmp;
}

// Each v-row at a control's α against each control row of that α.
StatusOr<json> ControlComparisons(const ReportInputs& in, const Runs& runs, Tables* tables) {
  json control_cmp = json::array();
  for (const Variant& cv : in.all_variants) {
    if (cv.control.empty()) continue;
    for (const Variant& vv : in.all_variants) {
      if (!vv.control.empty() || !vv.compact.empty() || vv.id == "target" || vv.alpha != cv.alpha) {
        continue;
      }
      std::string sentence;
      ASSIGN_OR_RETURN(json cmp, ControlComparison(vv, cv, runs, tables->columns, &sentence));
      if (!sentence.empty()) tables->specific_sentences.push_back(sentence);
      control_cmp.push_back(cmp);
    }
  }
  return control_cmp;
}

// Each compact form against the exact v's row at the same α, with its compression figures.
StatusOr<json> CompactComparisons(const ReportInputs& in, const Runs& runs,
                                  const std::vector<Column>& columns) {
  json compact_cmp = json::array();
  for (const Variant& cv : in.all_variants) {
    if (cv.compact.empty()) continue;
    const std::string exact = "alpha_" + AlphaName(cv.alpha);
    json cmp = {
        {"variant", cv.id}, {"compact", cv.compact}, {"exact", exact}, {"cells", json::array()}};
    for (const Column& col : columns) {
      ASSIGN_OR_RETURN(Cell c, runs.CellFor(cv.id, col, exact));
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
  return compact_cmp;
}

// `rvec compress` and `rvec apply` lines of one compact variant (none if its spec is unreadable).
void AddCompactCommands(const TransferOptions& o, const Variant& v, json* reproduce) {
  auto spec = ParseCompactSpec(v.compact);
  if (!spec.ok()) return;
  std::string args;
  if (spec->rank) args = fmt::format("--method lowrank --rank {}", spec->rank);
  if (spec->energy > 0) args = fmt::format("--method lowrank --energy {}", spec->energy);
  if (spec->density > 0) {
    args =
        fmt::format("--method sparse --density {}{}", spec->density, spec->dare ? " --dare" : "");
  }
  if (args.empty()) args = "--method sign";
  reproduce->push_back(fmt::format("rvec compress {} -o {} {}", (o.workdir / "vector").string(),
                                   v.compact_dir.string(), args));
  reproduce->push_back(fmt::format("rvec apply --model {} --vector {}:{} -o {}", o.target.string(),
                                   v.compact_dir.string(), AlphaName(v.alpha),
                                   v.model_dir.string()));
}

std::string EvalCommand(const TransferOptions& o, const Variant& v) {
  std::string cmd = fmt::format("rvec eval {} --tasks {} --seed {}", v.model_dir.string(),
                                fmt::join(o.tasks, ","), o.seed);
  if (o.limit) cmd += fmt::format(" --limit {}", *o.limit);
  cmd += SamplingArgs(o);
  if (o.chat) cmd += " --chat";
  // The data directory is part of what was measured: name it, so the line runs anywhere.
  if (!o.data_dir.empty()) cmd += fmt::format(" --data-dir {}", o.data_dir.string());
  cmd += fmt::format(" --backend {} -o {}", o.backend, (o.workdir / "runs" / v.id).string());
  return cmd;
}

json ReproduceCommands(const TransferOptions& o, const std::vector<Variant>& variants) {
  json reproduce = json::array();
  if (!o.command_line.empty()) reproduce.push_back(o.command_line);
  reproduce.push_back(fmt::format(
      "rvec extract --base {} --tuned {} --dtype {} -o {}", o.sft.string(), o.grpo.string(),
      DTypeName(o.vector_dtype) == "F32" ? "f32" : "bf16", (o.workdir / "vector").string()));
  for (const Variant& v : variants) {
    if (!v.compact.empty()) AddCompactCommands(o, v, &reproduce);
  }
  for (const Variant& v : variants) {
    if (v.id == "target" || !v.control.empty() || !v.compact.empty()) continue;
    reproduce.push_back(fmt::format("rvec apply --model {} --base {} --tuned {} --alpha {} -o {}",
                                    o.target.string(), o.sft.string(), o.grpo.string(),
                                    AlphaName(v.alpha), v.model_dir.string()));
  }
  for (const Variant& v : variants) reproduce.push_back(EvalCommand(o, v));
  return reproduce;
}

// ---- Markdown

// A table's header row and rule: `head` and `rule` start them, then one column per metric.
std::string MarkdownHeader(const std::string& head, const std::string& rule,
                           const std::vector<Column>& columns) {
  std::string md = head;
  for (const Column& c : columns) md += " " + c.label + " |";
  md += "\n" + rule;
  for (size_t i = 0; i < columns.size(); ++i) md += "---:|";
  return md + "\n";
}

// Markdown cells " +1.2 (p=0.034) |" (or " — |" where nothing was compared) of a comparison row.
std::string DeltaCells(const json& cells) {
  std::string md;
  for (const auto& cj : cells) {
    if (cj.is_null() || cj["delta"].is_null()) {
      md += " — |";
    } else {
      md += fmt::format(
          " {:+.1f} (p={}) |", 100 * cj["delta"].get<double>(),
          FormatP(cj["p_value"].is_null() ? std::nullopt
                                          : std::optional<double>(cj["p_value"].get<double>())));
    }
  }
  return md;
}

std::string MarkdownIntro(const json& report, const TransferOptions& o) {
  std::string md = "# " + report["title"].get<std::string>() + "\n\n";
  if (o.demo_facts) {
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
  return md;
}

std::string MarkdownResults(const ReportInputs& in, const Runs& runs, const Tables& t) {
  std::string md =
      "## Results\n\nCells: score % ± stderr, then (Δ vs target in points, exact McNemar "
      "p-value on paired samples).\n\n";
  if (UsesPermutation(t)) md += std::string(kSampledNote) + "\n\n";
  md += MarkdownHeader("| variant |", "|---|", t.columns);
  for (size_t r = 0; r < in.all_variants.size(); ++r) {
    md += "| " + t.labels[r] + (runs.Has(in.all_variants[r].id) ? "" : " (not evaluated)") + " |";
    for (const Cell& c : t.rows[r]) md += fmt::format(" {} |", CellText(c, r == 0));
    md += "\n";
  }
  return md;
}

std::string MarkdownCompact(const json& compact_cmp, const Tables& t) {
  if (compact_cmp.empty()) return "";
  std::string md =
      "\n## What compression costs\n\nEach compact form of v (`rvec compress`) against the "
      "exact v at the same α: size as a share of the dense bf16 vector, relative error "
      "‖v − ṽ‖/‖v‖, then the change in each score in points (McNemar p).\n\n";
  md += MarkdownHeader("| form | size | rel. error |", "|---|---:|---:|", t.columns);
  for (const auto& cmp : compact_cmp) {
    md += fmt::format(
        "| {} vs {} | {} | {} |", cmp["variant"].get<std::string>(),
        cmp["exact"].get<std::string>(),
        cmp.contains("size_fraction_of_dense_bf16")
            ? fmt::format("{:.2f}%", 100 * cmp["size_fraction_of_dense_bf16"].get<double>())
            : "—",
        cmp.contains("relative_error") ? fmt::format("{:.3f}", cmp["relative_error"].get<double>())
                                       : "—");
    md += DeltaCells(cmp["cells"]) + "\n";
  }
  return md + "\n";
}

std::string MarkdownControls(const json& control_cmp, const Tables& t) {
  if (control_cmp.empty()) return "";
  std::string md =
      "\n## Is the effect specific to v?\n\nEach row compares target + α·v with target + "
      "α·(a control of the same per-tensor norms but no learned direction).\n\n";
  md += MarkdownHeader("| comparison |", "|---|", t.columns);
  for (const auto& cmp : control_cmp) {
    md += "| " + cmp["variant"].get<std::string>() + " vs " + cmp["control"].get<std::string>() +
          " |";
    md += DeltaCells(cmp["cells"]) + "\n";
  }
  md += "\n";
  for (const auto& s : t.specific_sentences) md += s + "\n\n";
  return md;
}

std::string MarkdownVector(const json& report) {
  if (!report.contains("vector")) return "";
  const json& v = report["vector"];
  std::string md = "## The vector\n\n";
  if (v.contains("total")) {
    const json& t = v["total"];
    const double l2 = t.contains("l2_norm") ? t["l2_norm"].get<double>() : 0.0;
    md += fmt::format("- ‖v‖₂ = {:.6g}", l2);
    if (t.contains("relative_norm") && t["relative_norm"].is_number()) {
      md += fmt::format(", ‖v‖/‖θ_target‖ = {:.4g}", t["relative_norm"].get<double>());
    }
    if (t.contains("max_abs")) md += fmt::format(", max |v| = {:.4g}", t["max_abs"].get<double>());
    if (t.contains("zero_fraction")) {
      md += fmt::format(", exact zeros {:.2f}%", 100 * t["zero_fraction"].get<double>());
    }
    md += "\n";
  }
  return md +
         "- Per-layer relative norm by module: `vector_layers.svg`; every tensor: "
         "`vector_stats.json`.\n\n![per-layer norms](vector_layers.svg)\n\n";
}

std::string MarkdownReport(const ReportInputs& in, const Runs& runs, const Tables& t,
                           const json& report) {
  const TransferOptions& o = *in.options;
  std::string md = MarkdownIntro(report, o) + MarkdownResults(in, runs, t) +
                   MarkdownCompact(report["compact"], t) + MarkdownControls(report["controls"], t) +
                   MarkdownVector(report);
  if (o.demo_facts && o.demo_facts->contains("known_vector_check")) {
    md += "## Known-vector check\n\n" + (*o.demo_facts)["known_vector_check"].get<std::string>() +
          "\n\n";
  }
  md += "## Reproduce\n\n```sh\n";
  for (const auto& c : report["reproduce"]) md += c.get<std::string>() + "\n";
  return md + "```\n";
}

// ---- HTML

// A horizontal bar chart of one column: one bar per variant, stderr whiskers.
std::string BarChartSvg(const Column& col, const std::vector<std::string>& labels,
                        const std::vector<Cell>& cells) {
  const int row_h = 26, left = 230, width = 640, top = 34;
  const int height = top + static_cast<int>(labels.size()) * row_h + 30;
  const int plot_w = width - left - 70;
  auto x_of = [&](double v) { return static_cast<int>(std::lround(v * plot_w)); };
  std::string svg = svg::Document(width, height, /*view_box=*/false)
                        .Attr("font-family", "Helvetica, Arial, sans-serif")
                        .Attr("font-size", 12)
                        .Open() +
                    "\n";
  svg += svg::Text(10, 20).Attr("font-size", 14).Attr("font-weight", "bold").WithText(col.label);
  svg += "\n";
  for (int t = 0; t <= 4; ++t) {
    const int x = left + plot_w * t / 4;
    svg += svg::Line(x, top - 4, x, height - 24).Attr("stroke", "#ddd").Empty() +
           svg::Text(x, height - 10)
               .Attr("text-anchor", "middle")
               .Attr("fill", "#666")
               .WithText(fmt::format("{}%", 25 * t)) +
           "\n";
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = top + static_cast<int>(i) * row_h;
    const Cell& c = cells[i];
    const char* color = i == 0 ? "#7f7f7f" : (c.delta && *c.delta >= 0 ? "#2b8cbe" : "#e34a33");
    svg += svg::Text(left - 8, y + 16).Attr("text-anchor", "end").WithText(labels[i]) + "\n";
    if (!c.present) continue;
    const int w = x_of(std::clamp(c.value, 0.0, 1.0));
    svg += svg::Rect(left, y + 3, w, 18).Attr("fill", color).Empty() + "\n";
    if (c.stderr_value) {
      const int x0 = left + x_of(std::clamp(c.value - *c.stderr_value, 0.0, 1.0));
      const int x1 = left + x_of(std::clamp(c.value + *c.stderr_value, 0.0, 1.0));
      svg += svg::Line(x0, y + 12, x1, y + 12).Attr("stroke", "#222").Empty() + "\n";
    }
    svg += svg::Text(left + w + 6, y + 16).WithText(fmt::format("{:.1f}%", 100 * c.value)) + "\n";
  }
  return svg + std::string(svg::kEnd) + "\n";
}

std::string HtmlReport(const ReportInputs& in, const Tables& t, const json& report) {
  const TransferOptions& o = *in.options;
  const std::string title = HtmlEscape(report["title"].get<std::string>());
  std::string html =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
      "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em "
      "auto;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid "
      "#ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".note{background:#fff4d6;padding:.6em 1em;border-left:4px solid #f0b429}"
      "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>\n";
  html += "<h1>" + title + "</h1>\n";
  if (o.demo_facts) {
    html +=
        "<p class=\"note\"><b>These are random-weight miniature models.</b> The scores show "
        "that the pipeline works end to end, not the effect of a reasoning vector.</p>\n";
  }
  html +=
      "<h2>Results</h2>\n<p>Score % ± stderr, (Δ vs target in points, exact McNemar "
      "p).</p>\n";
  if (UsesPermutation(t)) html += "<p>" + HtmlEscape(kSampledNote) + "</p>\n";
  html += "<table><tr><th>variant</th>";
  for (const Column& c : t.columns) html += "<th>" + HtmlEscape(c.label) + "</th>";
  html += "</tr>\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    html += "<tr><td>" + HtmlEscape(t.labels[r]) + "</td>";
    for (const Cell& c : t.rows[r]) html += "<td>" + HtmlEscape(CellText(c, r == 0)) + "</td>";
    html += "</tr>\n";
  }
  html += "</table>\n";
  for (size_t ci = 0; ci < t.columns.size(); ++ci) {
    std::vector<Cell> col_cells;
    for (const auto& row : t.rows) col_cells.push_back(row[ci]);
    html += BarChartSvg(t.columns[ci], t.labels, col_cells);
  }
  for (const auto& s : t.specific_sentences) html += "<p>" + HtmlEscape(s) + "</p>\n";
  const fs::path svg_path = o.workdir / "vector_layers.svg";
  if (fs::exists(svg_path)) {
    auto svg = ReadFileToString(svg_path);
    if (svg.ok()) html += "<h2>The vector</h2>\n" + *svg + "\n";
  }
  if (o.demo_facts && o.demo_facts->contains("known_vector_check")) {
    html += "<h2>Known-vector check</h2>\n<p>" +
            HtmlEscape((*o.demo_facts)["known_vector_check"].get<std::string>()) + "</p>\n";
  }
  html += "<h2>Reproduce</h2>\n<pre>";
  for (const auto& c : report["reproduce"]) html += HtmlEscape(c.get<std::string>()) + "\n";
  return html + "</pre>\n</body></html>\n";
}

}  // namespace

StatusOr<json> WriteTransferReport(const ReportInputs& in) {
  const TransferOptions& o = *in.options;
  json report = Header(in);
  ASSIGN_OR_RETURN(const Runs runs, LoadRuns(in));
  Tables tables;
  tables.columns = Columns(o.tasks, runs);
  report["columns"] = ColumnsJson(tables.columns);
  ASSIGN_OR_RETURN(report["rows"], ResultRows(in, runs, &tables));
  ASSIGN_OR_RETURN(report["controls"], ControlComparisons(in, runs, &tables));
  ASSIGN_OR_RETURN(report["compact"], CompactComparisons(in, runs, tables.columns));
  if (o.demo_facts) report["demo"] = *o.demo_facts;
  report["reproduce"] = ReproduceCommands(o, in.all_variants);

  RETURN_IF_ERROR(
      WriteFileAtomic(o.workdir / "report.md", MarkdownReport(in, runs, tables, report)));
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "report.html", HtmlReport(in, tables, report)));
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "report.json", report.dump(2) + "\n"));
  return report;
}

}  // namespace rvec::pipeline
