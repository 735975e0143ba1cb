// Vector statistics and cosine similarity with deterministic double accumulation, JSON, text and
// SVG rendering.
#include "merge/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

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

}  // namespace

StatusOr<StatsReport> ComputeStats(const std::filesystem::path& vector_path,
                                   const std::optional<std::filesystem::path>& model_path,
                                   size_t threads, Progress* progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<VectorReader> reader, VectorReader::Open(vector_path));
  const VectorReader& vec = *reader;
  std::optional<Checkpoint> model;
  if (model_path) {
    ASSIGN_OR_RETURN(Checkpoint m, Checkpoint::Open(*model_path));
    model = std::move(m);
  }
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

  struct Item {
    std::string name;
    std::vector<int64_t> shape;
    std::optional<TensorView> t;
    uint64_t target_limit = 0;
    uint64_t NumElements() const {
      uint64_t n = 1;
      for (int64_t d : shape) n *= static_cast<uint64_t>(d);
      return n;
    }
  };
  std::vector<Item> items;
  std::vector<std::string> missing_in_model;
  for (const std::string& name : vec.TensorNames()) {
    const std::vector<int64_t>& shape = vec.Shape(name);
    const uint64_t numel = vec.NumElements(name);
    Item item{name, shape, std::nullopt, 0};
    if (model) {
      if (!model->Has(name)) {
        missing_in_model.push_back(name);
      } else {
        ASSIGN_OR_RETURN(TensorView t, model->View(name));
        if (IsSupportedFloat(t.dtype())) {
          if (t.shape() == shape) {
            item.t = t;
            item.target_limit = numel;
          } else if (t.shape().size() == 2 && shape.size() == 2 && t.shape()[1] == shape[1]) {
            item.t = t;
            item.target_limit = std::min(t.NumElements(), numel);
            report.warnings.push_back(fmt::format(
                "{}: rows differ ({} in the vector, {} in the model); relative norm uses the {} "
                "shared rows of the model",
                name, shape[0], t.shape()[0], std::min(shape[0], t.shape()[0])));
          } else {
            report.warnings.push_back(
                fmt::format("{}: shape {} in the vector vs {} in the model; "
                            "no relative norm",
                            name, ShapeString(shape), ShapeString(t.shape())));
          }
        }
      }
    }
    items.push_back(item);
  }
  if (!missing_in_model.empty()) {
    report.warnings.push_back(fmt::format("{} vector tensor(s) are not in the model: {}",
                                          missing_in_model.size(),
                                          AbbreviatedList(missing_in_model)));
  }

  ThreadPool pool(threads);
  Scratch scratch(pool.NumWorkers(), 2, kBlock);
  report.tensors.resize(items.size());
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
      const Item& it = items[i];
      float* v = scratch.Get(worker, 0);
      float* t = scratch.Get(worker, 1);
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
      partial[i][chunk] = acc;
      vec.Release(it.name, begin, end);
      if (it.t && begin < it.target_limit) {
        ReleaseElements(*model, *it.t, begin, std::min(end, it.target_limit));
      }
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      TensorStats& ts = report.tensors[i];
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
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));

  std::map<int64_t, LayerStats> layers;
  for (const TensorStats& ts : report.tensors) {
    report.total.Add(ts.acc);
    report.groups[ts.group].Add(ts.acc);
    if (ts.layer) {
      LayerStats& l = layers[*ts.layer];
      l.layer = *ts.layer;
      l.total.Add(ts.acc);
      l.groups[ts.group].Add(ts.acc);
    }
    if (ts.acc.nonfinite) {
      report.warnings.push_back(fmt::format("{}: {} non-finite value(s) (excluded from norms)",
                                            ts.name, ts.acc.nonfinite));
    }
  }
  for (auto& [k, l] : layers) report.layers.push_back(std::move(l));
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

std::string Escape(const std::string& s) {
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

// A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `v`.
double NiceCeil(double v) {
  if (!(v > 0)) return 1.0;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= v * (1 - 1e-12)) return m * p;
  }
  return 10 * p;
}

}  // namespace

std::string StatsSvg(const StatsReport& r) {
  const bool relative = !r.model_path.empty();
  auto value = [&](const NormAccum& a) { return relative ? Relative(a) : std::sqrt(a.sum_sq); };
  struct Series {
    ModuleGroup group;
    const char* label;
    const char* color;
    const char* dash;
  };
  const Series series[] = {{ModuleGroup::kAttention, "attention", "#2563eb", ""},
                           {ModuleGroup::kMlp, "MLP", "#ea580c", ""},
                           {ModuleGroup::kNorm, "norms", "#16a34a", "6 4"}};
  const double width = 860, height = 440;
  const double left = 84, right = 190, top = 56, bottom = 64;
  const double pw = width - left - right, ph = height - top - bottom;
  double ymax = 0;
  for (const LayerStats& l : r.layers) {
    for (const Series& s : series) {
      auto it = l.groups.find(s.group);
      if (it != l.groups.end() && std::isfinite(value(it->second))) {
        ymax = std::max(ymax, value(it->second));
      }
    }
  }
  auto emb = r.groups.find(ModuleGroup::kEmbedding);
  const bool has_emb = emb != r.groups.end() && std::isfinite(value(emb->second));
  if (has_emb) ymax = std::max(ymax, value(emb->second));
  ymax = NiceCeil(ymax);
  const int64_t nl = r.layers.empty() ? 1 : r.layers.back().layer + 1;
  auto x = [&](double layer) { return left + (nl <= 1 ? pw / 2 : pw * layer / (nl - 1)); };
  auto y = [&](double v) { return top + ph - ph * v / ymax; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
      width, height);
  std::string title = std::filesystem::path(r.vector_path).filename().string();
  if (title.empty()) title = r.vector_path;
  svg += fmt::format(
      "<text x=\"{}\" y=\"26\" font-size=\"16\" font-weight=\"bold\" fill=\"#111827\">{} per "
      "layer: {}</text>\n",
      left, relative ? "Relative norm ‖v‖/‖θ‖" : "L2 norm ‖v‖", Escape(title));
  if (relative) {
    svg += fmt::format("<text x=\"{}\" y=\"44\" fill=\"#6b7280\">target: {}</text>\n", left,
                       Escape(std::filesystem::path(r.model_path).filename().string()));
  }
  // Grid and y ticks.
  for (int i = 0; i <= 5; ++i) {
    const double v = ymax * i / 5;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e7eb\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#374151\">{:.3g}</text>\n",
        left, y(v), left + pw, y(v), left - 8, y(v) + 4, v);
  }
  // X ticks: at most ~12 labels.
  const int64_t step = std::max<int64_t>(1, (nl + 11) / 12);
  for (int64_t l = 0; l < nl; l += step) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#9ca3af\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" fill=\"#374151\">{4}</text>\n",
        x(static_cast<double>(l)), top + ph, top + ph + 5, top + ph + 20, l);
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#9ca3af\"/>\n",
      left, top, pw, ph);
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#111827\">layer</text>\n",
      left + pw / 2, height - 18);
  svg += fmt::format(
      "<text transform=\"translate(22 {:.1f}) rotate(-90)\" text-anchor=\"middle\" "
      "fill=\"#111827\">{}</text>\n",
      top + ph / 2, relative ? "‖v‖ / ‖θ_target‖" : "‖v‖");
  if (has_emb) {
    const double ev = value(emb->second);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#7c3aed\" "
        "stroke-dasharray=\"2 3\" stroke-width=\"1.5\"/>\n",
        left, y(ev), left + pw, y(ev));
  }
  double ly = top + 8;
  for (const Series& s : series) {
    std::string points;
    for (const LayerStats& l : r.layers) {
      auto it = l.groups.find(s.group);
      if (it == l.groups.end() || !std::isfinite(value(it->second))) continue;
      points +=
          fmt::format("{:.1f},{:.1f} ", x(static_cast<double>(l.layer)), y(value(it->second)));
    }
    if (points.empty()) continue;
    svg += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", points,
        s.color, *s.dash ? fmt::format(" stroke-dasharray=\"{}\"", s.dash) : "");
    if (r.layers.size() <= 64) {
      for (const LayerStats& l : r.layers) {
        auto it = l.groups.find(s.group);
        if (it == l.groups.end() || !std::isfinite(value(it->second))) continue;
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n",
                           x(static_cast<double>(l.layer)), y(value(it->second)), s.color);
      }
    }
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/>\n<text x=\"{5:.1f}\" y=\"{6:.1f}\" fill=\"#111827\">{7}</text>\n",
        left + pw + 16, ly, left + pw + 40, s.color,
        *s.dash ? fmt::format(" stroke-dasharray=\"{}\"", s.dash) : "", left + pw + 46, ly + 4,
        s.label);
    ly += 22;
  }
  if (has_emb) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#7c3aed\" "
        "stroke-dasharray=\"2 3\" stroke-width=\"1.5\"/>\n<text x=\"{3:.1f}\" y=\"{4:.1f}\" "
        "fill=\"#111827\">embeddings ({5:.3g})</text>\n",
        left + pw + 16, ly, left + pw + 40, left + pw + 46, ly + 4, value(emb->second));
    ly += 22;
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#6b7280\">total {:.4g}</text>\n",
                     left + pw + 16, ly + 8, value(r.total));
  svg += "</svg>\n";
  return svg;
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
