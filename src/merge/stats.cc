// Vector statistics and cosine similarity with deterministic double accumulation, JSON, text and
// SVG rendering.
#include "merge/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/svg.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "merge/compact.h"
#include "merge/compat.h"
#include "merge/kernels.h"
#include "merge/provenance.h"
#include "merge/stream.h"
#include "ops/elementwise.h"

namespace rvec::merge {

void NormAccum::Add(const NormAccum& o) {
  sum_sq += o.sum_sq;
  target_sum_sq += o.target_sum_sq;
  max_abs = std::max(max_abs, o.max_abs);
  zeros += o.zeros;
  nonfinite += o.nonfinite;
  numel += o.numel;
}

double CosineAccum::Cosine() const {
  if (a_sq <= 0 || b_sq <= 0) return std::numeric_limits<double>::quiet_NaN();
  return dot / (std::sqrt(a_sq) * std::sqrt(b_sq));
}

namespace {

nlohmann::json Num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

double Relative(const NormAccum& a) {
  if (a.target_sum_sq <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(a.sum_sq) / std::sqrt(a.target_sum_sq);
}

nlohmann::json AccumJson(const NormAccum& a, bool with_target) {
  nlohmann::json j;
  j["l2_norm"] = Num(std::sqrt(a.sum_sq));
  if (with_target) {
    j["target_l2_norm"] = Num(std::sqrt(a.target_sum_sq));
    j["relative_norm"] = Num(Relative(a));
  }
  j["max_abs"] = Num(a.max_abs);
  j["zero_fraction"] = a.numel ? Num(static_cast<double>(a.zeros) / a.numel) : nullptr;
  j["elements"] = a.numel;
  if (a.nonfinite) j["nonfinite"] = a.nonfinite;
  return j;
}

constexpr ModuleGroup kGroups[] = {ModuleGroup::kAttention, ModuleGroup::kMlp, ModuleGroup::kNorm,
                                   ModuleGroup::kEmbedding, ModuleGroup::kOther};

// One vector tensor to measure, with the model tensor its relative norm divides by.
struct StatsItem {
  std::string name;
  std::vector<int64_t> shape;
  std::optional<TensorView> t;
  uint64_t target_limit = 0;  // elements of the model tensor that line up with the vector's
  uint64_t NumElements() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
  }
};

// The report's identity: paths, kind, and a warning when the "vector" looks like a model.
StatsReport StatsHeader(const VectorReader& vec, const std::filesystem::path& vector_path,
                        const std::optional<std::filesystem::path>& model_path) {
  StatsReport report;
  report.vector_path = vector_path.string();
  report.model_path = model_path ? model_path->string() : "";
  report.kind = vec.dense() ? MetadataValue(*vec.dense(), "rvec.kind").value_or("")
                            : std::string(CompactKindName(vec.compact()->kind())) + "_vector";
  if (report.kind.empty() && vec.dense() && vec.dense()->config()) {
    report.warnings.push_back(
        "this checkpoint has a config.json and no rvec vector metadata: it looks like a model, "
        "so the statistics describe its weights, not a difference");
  }
  return report;
}

// Lines `item` up with model tensor `t` where the shapes allow (same shape, or 2-D with the
// same row width: the shared rows), warning otherwise.
void MatchTarget(const TensorView& t, uint64_t numel, StatsItem* item,
                 std::vector<std::string>* warnings) {
  if (!IsSupportedFloat(t.dtype())) return;
  const std::vector<int64_t>& shape = item->shape;
  if (t.shape() == shape) {
    item->t = t;
    item->target_limit = numel;
  } else if (t.shape().size() == 2 && shape.size() == 2 && t.shape()[1] == shape[1]) {
    item->t = t;
    item->target_limit = std::min(t.NumElements(), numel);
    warnings->push_back(fmt::format(
        "{}: rows differ ({} in the vector, {} in the model); relative norm uses the {} "
        "shared rows of the model",
        item->name, shape[0], t.shape()[0], std::min(shape[0], t.shape()[0])));
  } else {
    warnings->push_back(
        fmt::format("{}: shape {} in the vector vs {} in the model; "
                    "no relative norm",
                    item->name, ShapeString(shape), ShapeString(t.shape())));
  }
}

StatusOr<std::vector<StatsItem>> PlanItems(const VectorReader& vec, const Checkpoint* model,
                                           std::vector<std::string>* warnings) {
  std::vector<StatsItem> items;
  std::vector<std::string> missing_in_model;
  for (const std::string& name : vec.TensorNames()) {
    StatsItem item{name, vec.Shape(name), std::nullopt, 0};
    if (model && !model->Has(name)) {
      missing_in_model.push_back(name);
    } else if (model) {
      ASSIGN_OR_RETURN(TensorView t, model->View(name));
      MatchTarget(t, vec.NumElements(name), &item, warnings);
    }
    items.push_back(item);
  }
  if (!missing_in_model.empty()) {
    warnings->push_back(fmt::format("{} vector tensor(s) are not in the model: {}",
                                    missing_in_model.size(), AbbreviatedList(missing_in_model)));
  }
  return items;
}

// Norms of elements [begin, end) of `it`, read through scratch buffers `v` and `t`. Non-finite
// values are counted and left out of the sums.
StatusOr<NormAccum> ChunkNorms(const VectorReader& vec, const StatsItem& it, uint64_t begin,
                               uint64_t end, float* v, float* t) {
  NormAccum acc;
  for (uint64_t pos = begin; pos < end; pos += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
    RETURN_IF_ERROR(vec.Read(it.name, pos, n, v));
    for (size_t e = 0; e < n; ++e) {
      const float x = v[e];
      if (!std::isfinite(x)) {
        ++acc.nonfinite;
        v[e] = 0.0f;
        continue;
      }
      acc.zeros += x == 0.0f;
      acc.max_abs = std::max(acc.max_abs, static_cast<double>(std::fabs(x)));
    }
    acc.sum_sq += SumSquaresF64(v, n);
    if (it.t && pos < it.target_limit) {
      const size_t m = static_cast<size_t>(std::min<uint64_t>(n, it.target_limit - pos));
      ReadF32(*it.t, pos, m, t);
      acc.target_sum_sq += SumSquaresF64(t, m);
    }
  }
  acc.numel = end - begin;
  return acc;
}

// Streams every tensor once in fixed chunks; the chunks' sums are added in chunk order, so the
// numbers do not depend on the thread count.
Status MeasureTensors(const VectorReader& vec, const Checkpoint* model,
                      const std::vector<StatsItem>& items, size_t threads, Progress* progress,
                      StatsReport* report) {
  ThreadPool pool(threads);
  Scratch scratch(pool.NumWorkers(), 2, kBlock);
  report->tensors.resize(items.size());
  std::vector<std::vector<NormAccum>> partial(items.size());
  std::vector<TensorJob> jobs(items.size());
  uint64_t total_bytes = 0;
  for (const auto& it : items) total_bytes += it.NumElements();
  if (progress) progress->SetTotal(total_bytes);
  for (size_t i = 0; i < items.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = items[i].NumElements();
    job.progress_units = items[i].NumElements();
    partial[i].resize(job.NumChunks());
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const StatsItem& it = items[i];
      ASSIGN_OR_RETURN(partial[i][chunk], ChunkNorms(vec, it, begin, end, scratch.Get(worker, 0),
                                                     scratch.Get(worker, 1)));
      vec.Release(it.name, begin, end);
      if (it.t && begin < it.target_limit) {
        ReleaseElements(*model, *it.t, begin, std::min(end, it.target_limit));
      }
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      TensorStats& ts = report->tensors[i];
      ts.name = items[i].name;
      ts.shape = items[i].shape;
      ts.dtype = vec.StorageName(items[i].name);
      ts.layer = LayerIndex(ts.name);
      ts.group = GroupOf(ts.name);
      ts.has_target = items[i].t.has_value();
      for (const NormAccum& a : partial[i]) ts.acc.Add(a);
      partial[i].clear();
      return OkStatus();
    };
  }
  return RunJobs(pool, jobs, progress);
}

// Totals by group and by layer, and a warning per tensor with non-finite values.
void Aggregate(StatsReport* report) {
  std::map<int64_t, LayerStats> layers;
  for (const TensorStats& ts : report->tensors) {
    report->total.Add(ts.acc);
    report->groups[ts.group].Add(ts.acc);
    if (ts.layer) {
      LayerStats& l = layers[*ts.layer];
      l.layer = *ts.layer;
      l.total.Add(ts.acc);
      l.groups[ts.group].Add(ts.acc);
    }
    if (ts.acc.nonfinite) {
      report->warnings.push_back(fmt::format("{}: {} non-finite value(s) (excluded from norms)",
                                             ts.name, ts.acc.nonfinite));
    }
  }
  for (auto& [k, l] : layers) report->layers.push_back(std::move(l));
}

}  // namespace

StatusOr<StatsReport> ComputeStats(const std::filesystem::path& vector_path,
                                   const std::optional<std::filesystem::path>& model_path,
                                   size_t threads, Progress* progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<VectorReader> reader, VectorReader::Open(vector_path));
  std::optional<Checkpoint> model;
  if (model_path) {
    ASSIGN_OR_RETURN(Checkpoint m, Checkpoint::Open(*model_path));
    model = std::move(m);
  }
  const Checkpoint* target = model ? &*model : nullptr;
  StatsReport report = StatsHeader(*reader, vector_path, model_path);
  ASSIGN_OR_RETURN(std::vector<StatsItem> items, PlanItems(*reader, target, &report.warnings));
  RETURN_IF_ERROR(MeasureTensors(*reader, target, items, threads, progress, &report));
  Aggregate(&report);
  return report;
}

std::string StatsJson(const StatsReport& r) {
  const bool with_target = !r.model_path.empty();
  nlohmann::json j;
  j["vector"] = r.vector_path;
  j["model"] = with_target ? nlohmann::json(r.model_path) : nlohmann::json(nullptr);
  j["kind"] = r.kind;
  j["total"] = AccumJson(r.total, with_target);
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [g, a] : r.groups) groups[ModuleGroupName(g)] = AccumJson(a, with_target);
  j["groups"] = groups;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerStats& l : r.layers) {
    nlohmann::json lj = AccumJson(l.total, with_target);
    lj["layer"] = l.layer;
    nlohmann::json gj = nlohmann::json::object();
    for (const auto& [g, a] : l.groups) gj[ModuleGroupName(g)] = AccumJson(a, with_target);
    lj["groups"] = gj;
    layers.push_back(lj);
  }
  j["layers"] = layers;
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorStats& t : r.tensors) {
    nlohmann::json tj = AccumJson(t.acc, with_target && t.has_target);
    tj["name"] = t.name;
    tj["shape"] = t.shape;
    tj["dtype"] = t.dtype;
    tj["layer"] = t.layer ? nlohmann::json(*t.layer) : nlohmann::json(nullptr);
    tj["group"] = ModuleGroupName(t.group);
    tensors.push_back(tj);
  }
  j["tensors"] = tensors;
  j["warnings"] = r.warnings;
  return j.dump(2);
}

std::string StatsText(const StatsReport& r, bool per_tensor) {
  const bool with_target = !r.model_path.empty();
  std::string out = fmt::format("vector  {}{}\n", r.vector_path,
                                r.kind.empty() ? "" : fmt::format("  ({})", r.kind));
  if (with_target) out += fmt::format("model   {}\n", r.model_path);
  auto row = [&](const std::string& label, const NormAccum& a) {
    std::string s = fmt::format("{:<44} {:>12.5g}", label, std::sqrt(a.sum_sq));
    if (with_target) s += fmt::format(" {:>10.4g}", Relative(a));
    s += fmt::format(" {:>11.4g} {:>7.2f}%\n", a.max_abs,
                     a.numel ? 100.0 * static_cast<double>(a.zeros) / a.numel : 0.0);
    return s;
  };
  const std::string header =
      fmt::format("{:<44} {:>12}{} {:>11} {:>8}\n", "", "L2 norm",
                  with_target ? fmt::format(" {:>10}", "relative") : "", "max |v|", "zeros");
  out += "\n" + header;
  out += row("total", r.total);
  for (const auto& [g, a] : r.groups) out += row(std::string("  ") + ModuleGroupName(g), a);
  out += "\nper layer\n" + header;
  for (const LayerStats& l : r.layers) out += row(fmt::format("layer {}", l.layer), l.total);
  if (per_tensor) {
    out += "\nper tensor\n" + header;
    for (const TensorStats& t : r.tensors) out += row(t.name, t.acc);
  }
  for (const auto& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

namespace {

// A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `v`.
double NiceCeil(double v) {
  if (!(v > 0)) return 1.0;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= v * (1 - 1e-12)) return m * p;
  }
  return 10 * p;
}

struct Series {
  ModuleGroup group;
  const char* label;
  const char* color;
  const char* dash;  // stroke-dasharray, "" for a solid line
};
constexpr Series kSeries[] = {{ModuleGroup::kAttention, "attention", "#2563eb", ""},
                              {ModuleGroup::kMlp, "MLP", "#ea580c", ""},
                              {ModuleGroup::kNorm, "norms", "#16a34a", "6 4"}};

svg::Num F1(double v) { return svg::Num::Fixed(v, 1); }

// The per-layer chart's geometry: plot area, scales, and the value plotted for a group.
class LayerChart {
 public:
  explicit LayerChart(const StatsReport& r) : r_(r), relative_(!r.model_path.empty()) {
    double ymax = 0;
    for (const LayerStats& l : r.layers) {
      for (const Series& s : kSeries) {
        if (auto v = GroupValue(l, s.group)) ymax = std::max(ymax, *v);
      }
    }
    if (auto e = EmbeddingValue()) ymax = std::max(ymax, *e);
    ymax_ = NiceCeil(ymax);
    nl_ = r.layers.empty() ? 1 : r.layers.back().layer + 1;
  }

  static constexpr double kWidth = 860, kHeight = 440;
  static constexpr double kLeft = 84, kRight = 190, kTop = 56, kBottom = 64;
  static constexpr double kPw = kWidth - kLeft - kRight, kPh = kHeight - kTop - kBottom;

  bool relative() const { return relative_; }
  int64_t layers() const { return nl_; }
  double ymax() const { return ymax_; }
  double X(double layer) const { return kLeft + (nl_ <= 1 ? kPw / 2 : kPw * layer / (nl_ - 1)); }
  double Y(double v) const { return kTop + kPh - kPh * v / ymax_; }
  double Value(const NormAccum& a) const { return relative_ ? Relative(a) : std::sqrt(a.sum_sq); }

  // A group's value in one layer, when it has a finite one.
  std::optional<double> GroupValue(const LayerStats& l, ModuleGroup g) const {
    auto it = l.groups.find(g);
    if (it == l.groups.end() || !std::isfinite(Value(it->second))) return std::nullopt;
    return Value(it->second);
  }
  std::optional<double> EmbeddingValue() const {
    auto it = r_.groups.find(ModuleGroup::kEmbedding);
    if (it == r_.groups.end() || !std::isfinite(Value(it->second))) return std::nullopt;
    return Value(it->second);
  }

 private:
  const StatsReport& r_;
  bool relative_;
  double ymax_ = 1;
  int64_t nl_ = 1;
};

std::string ChartTitle(const StatsReport& r, const LayerChart& c) {
  std::string svg = svg::Document(LayerChart::kWidth, LayerChart::kHeight, /*view_box=*/true)
                        .Attr("font-family", "Helvetica, Arial, sans-serif")
                        .Attr("font-size", 12)
                        .Open() +
                    "\n" +
                    svg::Element("rect")
                        .Attr("width", "100%")
                        .Attr("height", "100%")
                        .Attr("fill", "#ffffff")
                        .Empty() +
                    "\n";
  std::string title = std::filesystem::path(r.vector_path).filename().string();
  if (title.empty()) title = r.vector_path;
  svg += svg::Text(LayerChart::kLeft, 26)
             .Attr("font-size", 16)
             .Attr("font-weight", "bold")
             .Attr("fill", "#111827")
             .WithText(fmt::format("{} per layer: {}",
                                   c.relative() ? "Relative norm ‖v‖/‖θ‖" : "L2 norm ‖v‖", title)) +
         "\n";
  if (c.relative()) {
    svg += svg::Text(LayerChart::kLeft, 44)
               .Attr("fill", "#6b7280")
               .WithText("target: " + std::filesystem::path(r.model_path).filename().string()) +
           "\n";
  }
  return svg;
}

// Grid with y ticks, x ticks (at most ~12 labels), the frame and the axis titles.
std::string ChartAxes(const LayerChart& c) {
  using C = LayerChart;
  std::string svg;
  for (int i = 0; i <= 5; ++i) {
    const double v = c.ymax() * i / 5;
    svg += svg::Line(F1(C::kLeft), F1(c.Y(v)), F1(C::kLeft + C::kPw), F1(c.Y(v)))
               .Attr("stroke", "#e5e7eb")
               .Empty() +
           "\n" +
           svg::Text(F1(C::kLeft - 8), F1(c.Y(v) + 4))
               .Attr("text-anchor", "end")
               .Attr("fill", "#374151")
               .WithText(fmt::format("{:.3g}", v)) +
           "\n";
  }
  const int64_t step = std::max<int64_t>(1, (c.layers() + 11) / 12);
  const double base = C::kTop + C::kPh;
  for (int64_t l = 0; l < c.layers(); l += step) {
    const double x = c.X(static_cast<double>(l));
    svg += svg::Line(F1(x), F1(base), F1(x), F1(base + 5)).Attr("stroke", "#9ca3af").Empty() +
           "\n" +
           svg::Text(F1(x), F1(base + 20))
               .Attr("text-anchor", "middle")
               .Attr("fill", "#374151")
               .WithText(std::to_string(l)) +
           "\n";
  }
  svg += svg::Rect(C::kLeft, C::kTop, C::kPw, C::kPh)
             .Attr("fill", "none")
             .Attr("stroke", "#9ca3af")
             .Empty() +
         "\n";
  svg += svg::Text(F1(C::kLeft + C::kPw / 2), F1(C::kHeight - 18))
             .Attr("text-anchor", "middle")
             .Attr("fill", "#111827")
             .WithText("layer") +
         "\n";
  return svg +
         svg::Element("text")
             .Attr("transform",
                   fmt::format("translate(22 {:.1f}) rotate(-90)", C::kTop + C::kPh / 2))
             .Attr("text-anchor", "middle")
             .Attr("fill", "#111827")
             .WithText(c.relative() ? "‖v‖ / ‖θ_target‖" : "‖v‖") +
         "\n";
}

// The dotted line of the embeddings' value, across the plot or as a legend sample.
svg::Element EmbeddingLine(double x1, double x2, double y) {
  return svg::Line(F1(x1), F1(y), F1(x2), F1(y))
      .Attr("stroke", "#7c3aed")
      .Attr("stroke-dasharray", "2 3")
      .Attr("stroke-width", "1.5");
}

// One module group's line (with points when there are few layers), or "" when it has none.
std::string SeriesLine(const StatsReport& r, const LayerChart& c, const Series& s) {
  std::string points, dots;
  for (const LayerStats& l : r.layers) {
    const std::optional<double> v = c.GroupValue(l, s.group);
    if (!v) continue;
    const double x = c.X(static_cast<double>(l.layer)), y = c.Y(*v);
    points += fmt::format("{:.1f},{:.1f} ", x, y);
    dots += svg::Circle(F1(x), F1(y), 2.5).Attr("fill", s.color).Empty() + "\n";
  }
  if (points.empty()) return "";
  svg::Element line("polyline");
  line.Attr("points", points).Attr("fill", "none").Attr("stroke", s.color).Attr("stroke-width", 2);
  if (*s.dash) line.Attr("stroke-dasharray", s.dash);
  return line.Empty() + "\n" + (r.layers.size() <= 64 ? dots : "");
}

// The lines, then the legend beside the plot: each series, the embeddings, the total.
std::string ChartSeries(const StatsReport& r, const LayerChart& c) {
  using C = LayerChart;
  const std::optional<double> emb = c.EmbeddingValue();
  std::string svg;
  if (emb) svg += EmbeddingLine(C::kLeft, C::kLeft + C::kPw, c.Y(*emb)).Empty() + "\n";
  const double lx = C::kLeft + C::kPw;
  double ly = C::kTop + 8;
  auto legend_text = [&](const std::string& text) {
    return svg::Text(F1(lx + 46), F1(ly + 4)).Attr("fill", "#111827").WithText(text) + "\n";
  };
  for (const Series& s : kSeries) {
    const std::string line = SeriesLine(r, c, s);
    if (line.empty()) continue;
    svg::Element sample = svg::Line(F1(lx + 16), F1(ly), F1(lx + 40), F1(ly));
    sample.Attr("stroke", s.color).Attr("stroke-width", 2);
    if (*s.dash) sample.Attr("stroke-dasharray", s.dash);
    svg += line + sample.Empty() + "\n" + legend_text(s.label);
    ly += 22;
  }
  if (emb) {
    svg += EmbeddingLine(lx + 16, lx + 40, ly).Empty() + "\n" +
           legend_text(fmt::format("embeddings ({:.3g})", *emb));
    ly += 22;
  }
  return svg +
         svg::Text(F1(lx + 16), F1(ly + 8))
             .Attr("fill", "#6b7280")
             .WithText(fmt::format("total {:.4g}", c.Value(r.total))) +
         "\n";
}

}  // namespace

std::string StatsSvg(const StatsReport& r) {
  const LayerChart chart(r);
  return ChartTitle(r, chart) + ChartAxes(chart) + ChartSeries(r, chart) + std::string(svg::kEnd) +
         "\n";
}

// ---- similarity ---------------------------------------------------------------------------------

StatusOr<SimilarityReport> ComputeSimilarity(const std::filesystem::path& a_path,
                                             const std::filesystem::path& b_path, size_t threads,
                                             Progress* progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<VectorReader> ra, VectorReader::Open(a_path));
  ASSIGN_OR_RETURN(std::unique_ptr<VectorReader> rb, VectorReader::Open(b_path));
  const VectorReader& a = *ra;
  const VectorReader& b = *rb;
  SimilarityReport report;
  report.a_path = a_path.string();
  report.b_path = b_path.string();
  struct Item {
    std::string name;
    uint64_t limit;
  };
  std::vector<Item> items;
  for (const std::string& name : a.TensorNames()) {
    if (!b.Has(name)) {
      report.only_in_a.push_back(name);
      continue;
    }
    const std::vector<int64_t>& sa = a.Shape(name);
    const std::vector<int64_t>& sb = b.Shape(name);
    uint64_t limit = a.NumElements(name);
    if (sa != sb) {
      if (sa.size() == 2 && sb.size() == 2 && sa[1] == sb[1]) {
        limit = std::min(a.NumElements(name), b.NumElements(name));
        report.warnings.push_back(
            fmt::format("{}: rows differ ({} vs {}); compared on the shared "
                        "rows",
                        name, sa[0], sb[0]));
      } else {
        return FailedPrecondition("{}: shape {} in {} vs {} in {}", name, ShapeString(sa),
                                  a_path.string(), ShapeString(sb), b_path.string());
      }
    }
    items.push_back({name, limit});
  }
  for (const std::string& name : b.TensorNames()) {
    if (!a.Has(name)) report.only_in_b.push_back(name);
  }
  if (!report.only_in_a.empty() || !report.only_in_b.empty()) {
    report.warnings.push_back(fmt::format(
        "tensors present in only one vector are left out: {} only in the first, {} only in the "
        "second",
        report.only_in_a.size(), report.only_in_b.size()));
  }
  ThreadPool pool(threads);
  Scratch scratch(pool.NumWorkers(), 2, kBlock);
  std::vector<std::vector<CosineAccum>> partial(items.size());
  report.tensors.resize(items.size());
  std::vector<TensorJob> jobs(items.size());
  uint64_t total = 0;
  for (const auto& it : items) total += it.limit;
  if (progress) progress->SetTotal(total);
  for (size_t i = 0; i < items.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = items[i].limit;
    job.progress_units = items[i].limit;
    partial[i].resize(job.NumChunks());
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      float* x = scratch.Get(worker, 0);
      float* y = scratch.Get(worker, 1);
      CosineAccum acc;
      for (uint64_t pos = begin; pos < end; pos += kBlock) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
        RETURN_IF_ERROR(a.Read(items[i].name, pos, n, x));
        RETURN_IF_ERROR(b.Read(items[i].name, pos, n, y));
        acc.dot += DotF64(x, y, n);
        acc.a_sq += SumSquaresF64(x, n);
        acc.b_sq += SumSquaresF64(y, n);
      }
      acc.numel = end - begin;
      partial[i][chunk] = acc;
      a.Release(items[i].name, begin, end);
      b.Release(items[i].name, begin, end);
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      CosineAccum acc;
      for (const CosineAccum& c : partial[i]) acc.Add(c);
      report.tensors[i] = {items[i].name, acc};
      return OkStatus();
    };
  }
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));
  for (const auto& [name, acc] : report.tensors) {
    report.total.Add(acc);
    report.layers[LayerIndex(name).value_or(-1)].Add(acc);
    report.groups[GroupOf(name)].Add(acc);
  }
  return report;
}

std::string SimilarityJson(const SimilarityReport& r) {
  auto acc_json = [](const CosineAccum& a) {
    nlohmann::json j;
    j["cosine"] = Num(a.Cosine());
    j["norm_a"] = Num(std::sqrt(a.a_sq));
    j["norm_b"] = Num(std::sqrt(a.b_sq));
    j["elements"] = a.numel;
    return j;
  };
  nlohmann::json j;
  j["a"] = r.a_path;
  j["b"] = r.b_path;
  j["overall"] = acc_json(r.total);
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [g, a] : r.groups) groups[ModuleGroupName(g)] = acc_json(a);
  j["groups"] = groups;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& [l, a] : r.layers) {
    if (l < 0) continue;
    nlohmann::json lj = acc_json(a);
    lj["layer"] = l;
    layers.push_back(lj);
  }
  j["layers"] = layers;
  if (r.layers.count(-1)) j["outside_layers"] = acc_json(r.layers.at(-1));
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, a] : r.tensors) {
    nlohmann::json tj = acc_json(a);
    tj["name"] = name;
    tensors.push_back(tj);
  }
  j["tensors"] = tensors;
  j["only_in_a"] = r.only_in_a;
  j["only_in_b"] = r.only_in_b;
  j["warnings"] = r.warnings;
  return j.dump(2);
}

std::string SimilarityText(const SimilarityReport& r, bool per_tensor) {
  std::string out = fmt::format("a  {}\nb  {}\n\n", r.a_path, r.b_path);
  auto row = [](const std::string& label, const CosineAccum& a) {
    return fmt::format("{:<44} {:>9.5f} {:>12.5g} {:>12.5g}\n", label, a.Cosine(),
                       std::sqrt(a.a_sq), std::sqrt(a.b_sq));
  };
  const std::string header =
      fmt::format("{:<44} {:>9} {:>12} {:>12}\n", "", "cosine", "‖a‖", "‖b‖");
  out += header + row("overall", r.total);
  for (const auto& [g, a] : r.groups) out += row(std::string("  ") + ModuleGroupName(g), a);
  out += "\nper layer\n" + header;
  for (const auto& [l, a] : r.layers) {
    out += row(l < 0 ? std::string("outside layers") : fmt::format("layer {}", l), a);
  }
  if (per_tensor) {
    out += "\nper tensor\n" + header;
    for (const auto& [name, a] : r.tensors) out += row(name, a);
  }
  for (const auto& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace rvec::merge
