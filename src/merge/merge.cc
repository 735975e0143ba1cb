// mergekit-compatible merges: per-tensor parameter evaluation, magnitude/random sparsification
// with streaming pre-passes, sign election and one final rounding.
#include "merge/merge.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "base/fs.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "merge/kernels.h"
#include "merge/provenance.h"
#include "merge/rng.h"
#include "merge/schedule.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace {

// Smaller chunks than apply: each worker holds one f32 copy per model of its chunk.
constexpr uint64_t kMergeChunk = uint64_t{1} << 18;

StatusOr<std::filesystem::path> ResolveModel(const std::string& name,
                                             const std::filesystem::path& config_dir) {
  std::error_code ec;
  if (std::filesystem::exists(name, ec)) return std::filesystem::path(name);
  if (!config_dir.empty() && std::filesystem::exists(config_dir / name, ec)) {
    return config_dir / name;
  }
  return NotFound(
      "model '{}' not found (looked in the working directory{}); rvec reads local checkpoints "
      "only, so download Hugging Face repositories first",
      name, config_dir.empty() ? "" : " and " + config_dir.string());
}

struct ModelTensor {
  const Checkpoint* ckpt = nullptr;
  TensorView view;
  std::string label;
  float weight = 0;
  double density = 1;
  double gamma = 0.01;
  uint64_t limit = 0;
  TopKSelector hi = TopKSelector::All();  // kept: top-hi ...
  TopKSelector lo = TopKSelector::All();  // ... minus top-lo (breadcrumbs outliers)
  bool use_lo = false;
  bool sparsify = false;
  float scale = 1.0f;  // rescale factor for kept elements
  bool divide_by_density = false;
  uint64_t rng_stream = 0;
};

struct Plan {
  std::string name;
  std::optional<TensorView> base;
  const Checkpoint* base_ckpt = nullptr;
  TensorView donor;  // for copies and shapes
  DType out;
  std::vector<ModelTensor> models;
  bool copy = false;
  bool normalize = false;
  bool rescale = false;
  float lambda = 1.0f;
};

StatusOr<double> Param(const MergeConfig& config, const ModelEntry* model, const std::string& key,
                       std::string_view tensor, double t, std::optional<double> fallback) {
  if (model) {
    auto it = model->parameters.find(key);
    if (it != model->parameters.end()) {
      ASSIGN_OR_RETURN(std::optional<double> v, EvalNumber(it->second, tensor, t, key));
      if (v) return *v;
    }
  }
  auto it = config.parameters.find(key);
  if (it != config.parameters.end()) {
    ASSIGN_OR_RETURN(std::optional<double> v, EvalNumber(it->second, tensor, t, key));
    if (v) return *v;
  }
  if (fallback) return *fallback;
  return InvalidArgument("missing required parameter '{}'{} for tensor {}", key,
                         model ? " of model " + model->model : "", tensor);
}

StatusOr<bool> BoolParam(const MergeConfig& config, const std::string& key, std::string_view tensor,
                         double t, bool fallback) {
  auto it = config.parameters.find(key);
  if (it == config.parameters.end()) return fallback;
  ASSIGN_OR_RETURN(std::optional<bool> v, EvalBool(it->second, tensor, t, key));
  return v.value_or(fallback);
}

// |θ_i − θ_b| keys of chunk c of a model's tensor.
void DeltaKeys(const ModelTensor& m, const TensorView& base, uint64_t chunk,
               std::vector<uint32_t>& keys) {
  const uint64_t begin = chunk * kMergeChunk;
  const uint64_t end = std::min(m.limit, begin + kMergeChunk);
  keys.resize(end > begin ? end - begin : 0);
  std::vector<float> a(kBlock), b(kBlock);
  for (uint64_t pos = begin; pos < end; pos += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
    ReadF32(m.view, pos, n, a.data());
    ReadF32(base, pos, n, b.data());
    for (size_t e = 0; e < n; ++e) keys[pos - begin + e] = MagnitudeKey(a[e] - b[e]);
  }
}

}  // namespace

StatusOr<MergeReport> RunMerge(const MergeConfig& config, const MergeOptions& options,
                               Progress* progress) {
  MergeReport report;
  const MethodDefaults defaults = DefaultsFor(config.method);
  for (const auto& n : config.notes) {
    if (std::find(report.warnings.begin(), report.warnings.end(), n) == report.warnings.end()) {
      report.warnings.push_back(n);
    }
  }
  if (config.dtype && *config.dtype != DType::kF32) {
    report.warnings.push_back(fmt::format(
        "dtype: {} is mergekit's compute dtype; rvec always computes in f32 from the exact "
        "inputs and rounds once into the output dtype (see docs/merge.md)",
        TorchDTypeName(*config.dtype)));
  }

  // Open every distinct input once.
  std::map<std::string, std::unique_ptr<Checkpoint>> opened;
  auto open = [&](const std::string& name) -> StatusOr<const Checkpoint*> {
    auto it = opened.find(name);
    if (it != opened.end()) return it->second.get();
    ASSIGN_OR_RETURN(std::filesystem::path path, ResolveModel(name, options.config_dir));
    ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(path));
    auto owned = std::make_unique<Checkpoint>(std::move(ckpt));
    const Checkpoint* raw = owned.get();
    opened[name] = std::move(owned);
    return raw;
  };
  const Checkpoint* base = nullptr;
  if (config.base_model) {
    ASSIGN_OR_RETURN(base, open(*config.base_model));
  }
  struct Input {
    const ModelEntry* entry;
    const Checkpoint* ckpt;
  };
  std::vector<Input> inputs;
  for (const ModelEntry& m : config.models) {
    if (defaults.needs_base && config.base_model && m.model == *config.base_model) continue;
    ASSIGN_OR_RETURN(const Checkpoint* c, open(m.model));
    inputs.push_back({&m, c});
  }
  if (inputs.empty()) return InvalidArgument("no model to merge besides base_model");
  // Side files: base_model if given, else the first model listed (mergekit picks an arbitrary
  // one when there is no base_model).
  const Checkpoint* donor = base ? base : inputs[0].ckpt;
  report.donor = donor->path();

  CompatOptions compat;
  compat.vocab = options.vocab;
  std::vector<CompatResult> checks;
  for (const Input& in : inputs) {
    ASSIGN_OR_RETURN(CompatResult r, CheckCompatible(*donor, config.base_model ? "BASE" : "DONOR",
                                                     *in.ckpt, in.entry->model, compat));
    if (config.method == MergeMethod::kLinear && !r.common_elements.empty()) {
      return Unimplemented(
          "linear merges need equal vocabulary rows (a weighted sum is undefined on rows only "
          "some models have); use task_arithmetic with base_model, or resize first");
    }
    for (auto& w : r.warnings) report.warnings.push_back(w);
    checks.push_back(std::move(r));
  }
  if (base) {
    for (const Input& in : inputs) {
      if (std::string w = MixedDTypeWarning(*base, *in.ckpt); !w.empty()) {
        report.warnings.push_back(in.entry->model + ": " + w);
      }
    }
  }

  const int64_t num_layers = NumLayersOf(*donor);
  std::vector<Plan> plans;
  std::vector<TensorSpec> specs;
  for (const std::string& name : donor->TensorNames()) {
    Plan plan;
    plan.name = name;
    ASSIGN_OR_RETURN(plan.donor, donor->View(name));
    const bool is_float = IsSupportedFloat(plan.donor.dtype());
    plan.out = plan.donor.dtype();
    if (is_float && config.out_dtype) {
      plan.out = *config.out_dtype;
    } else if (is_float && config.dtype) {
      plan.out = *config.dtype;
    }
    if (!is_float) {
      plan.copy = true;
      report.warnings.push_back(fmt::format("{}: non-float tensor ({}) copied from {}", name,
                                            DTypeName(plan.donor.dtype()), donor->path().string()));
      specs.push_back({name, plan.out, plan.donor.shape()});
      plans.push_back(std::move(plan));
      continue;
    }
    const double t = GradientPosition(name, num_layers);
    if (base) {
      plan.base = plan.donor;
      plan.base_ckpt = base;
    }
    ASSIGN_OR_RETURN(plan.normalize, BoolParam(config, "normalize", name, t, defaults.normalize));
    ASSIGN_OR_RETURN(plan.rescale, BoolParam(config, "rescale", name, t, defaults.rescale));
    ASSIGN_OR_RETURN(double lambda, Param(config, nullptr, "lambda", name, t, 1.0));
    plan.lambda = static_cast<float>(lambda);
    for (size_t i = 0; i < inputs.size(); ++i) {
      ModelTensor m;
      m.ckpt = inputs[i].ckpt;
      m.label = inputs[i].entry->model;
      ASSIGN_OR_RETURN(m.view, m.ckpt->View(name));
      if (!IsSupportedFloat(m.view.dtype())) {
        return Unimplemented("{}: tensor {} has dtype {}", m.label, name,
                             DTypeName(m.view.dtype()));
      }
      ASSIGN_OR_RETURN(double w, Param(config, inputs[i].entry, "weight", name, t, std::nullopt));
      m.weight = static_cast<float>(w);
      ASSIGN_OR_RETURN(m.density, Param(config, inputs[i].entry, "density", name, t, 1.0));
      ASSIGN_OR_RETURN(m.gamma, Param(config, inputs[i].entry, "gamma", name, t, 0.01));
      if (m.density < 0 || m.density > 1) {
        return InvalidArgument("{}: density {} for tensor {} is outside [0, 1]", m.label, m.density,
                               name);
      }
      auto it = checks[i].common_elements.find(name);
      m.limit = it != checks[i].common_elements.end() ? it->second : plan.donor.NumElements();
      m.rng_stream = i;
      m.sparsify = defaults.sparsify != MethodDefaults::Sparsify::kNone && m.density < 1.0;
      if (m.sparsify && defaults.sparsify == MethodDefaults::Sparsify::kRandom && plan.rescale) {
        m.divide_by_density = true;
      }
      plan.models.push_back(std::move(m));
    }
    specs.push_back({name, plan.out, plan.donor.shape()});
    plans.push_back(std::move(plan));
  }

  std::optional<DType> uniform;
  bool mixed = false;
  for (const auto& s : specs) {
    if (!IsSupportedFloat(s.dtype)) continue;
    if (!uniform) uniform = s.dtype;
    mixed |= *uniform != s.dtype;
  }

  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  if (donor->is_sharded()) {
    uint64_t largest = 0;
    for (size_t i = 0; i < donor->num_shards(); ++i) {
      uint64_t bytes = 0;
      for (const TensorInfo& ti : donor->shard(i).tensors()) bytes += ti.NumBytes();
      largest = std::max(largest, bytes);
    }
    wopts.max_shard_bytes = largest + 1;
  } else {
    wopts.max_shard_bytes = 0;
  }
  wopts.metadata["format"] = "pt";
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, specs, wopts));

  ThreadPool pool(options.threads);
  const size_t workers = pool.NumWorkers();
  const size_t num_models = inputs.size();
  // Per worker: base, out, acc, then one delta buffer per model; plus keep masks.
  std::vector<std::vector<float>> buffers(workers);
  std::vector<std::vector<uint8_t>> masks(workers);
  std::vector<std::vector<uint8_t>> masks2(workers);
  std::vector<std::vector<uint32_t>> keys(workers);
  std::vector<std::vector<uint8_t>> bytes(workers);
  uint64_t total_bytes = 0;
  for (const auto& s : specs) total_bytes += s.NumBytes();
  if (progress) progress->SetTotal(total_bytes);

  const bool linear = config.method == MergeMethod::kLinear;
  std::vector<TensorJob> jobs(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    Plan& plan = plans[i];
    TensorJob& job = jobs[i];
    job.numel = plan.donor.NumElements();
    job.chunk_elements = kMergeChunk;
    job.progress_units = specs[i].NumBytes();
    const bool needs_prepare =
        !plan.copy && defaults.sparsify != MethodDefaults::Sparsify::kNone &&
        std::any_of(plan.models.begin(), plan.models.end(), [&](const ModelTensor& m) {
          return m.sparsify && defaults.sparsify != MethodDefaults::Sparsify::kRandom;
        });
    if (needs_prepare) {
      job.prepare = [&, i]() -> Status {
        Plan& p = plans[i];
        for (ModelTensor& m : p.models) {
          if (!m.sparsify) continue;
          const uint64_t n = m.limit;
          const size_t chunks = static_cast<size_t>((n + kMergeChunk - 1) / kMergeChunk);
          auto keys_fn = [&](size_t c, std::vector<uint32_t>& k) { DeltaKeys(m, *p.base, c, k); };
          auto par = [&](size_t count, const std::function<void(size_t)>& fn) {
            ParallelTasks(pool, count, fn);
          };
          const uint64_t target_n =
              static_cast<uint64_t>(std::floor(m.density * static_cast<double>(n)));
          if (defaults.sparsify == MethodDefaults::Sparsify::kMagnitude) {
            m.hi = TopKSelector::Build(target_n, chunks, keys_fn, par);
            if (target_n == 0) {
              report.warnings.push_back(fmt::format(
                  "{}: density {} keeps no element of {} ({} elements); its delta is dropped",
                  m.label, m.density, p.name, n));
            }
          } else {
            // Breadcrumbs: drop the gamma fraction of largest magnitudes and the smallest ones.
            int64_t n_top = static_cast<int64_t>(std::floor(m.gamma * static_cast<double>(n)));
            int64_t n_bot = static_cast<int64_t>(n) - static_cast<int64_t>(target_n) - n_top;
            if (n_bot < 0) {
              n_top += n_bot;
              n_bot = 0;
            }
            m.hi = TopKSelector::Build(n - static_cast<uint64_t>(n_bot), chunks, keys_fn, par);
            m.lo = TopKSelector::Build(static_cast<uint64_t>(n_top), chunks, keys_fn, par);
            m.use_lo = n_top > 0;
          }
          if (p.rescale) {
            // mergekit's rescale for magnitude methods: match the L1 norm of the kept part to
            // the whole, summed in double in chunk order.
            std::vector<double> all(chunks, 0.0), kept(chunks, 0.0);
            ParallelTasks(pool, chunks, [&](size_t c) {
              std::vector<uint32_t> k;
              DeltaKeys(m, *p.base, c, k);
              std::vector<uint8_t> keep(k.size()), drop(k.size());
              m.hi.Mark(c, k.data(), k.size(), keep.data());
              if (m.use_lo) m.lo.Mark(c, k.data(), k.size(), drop.data());
              double sa = 0, sk = 0;
              for (size_t e = 0; e < k.size(); ++e) {
                const double v = F32FromBits(k[e]);
                sa += v;
                if (keep[e] && !(m.use_lo && drop[e])) sk += v;
              }
              all[c] = sa;
              kept[c] = sk;
            });
            double sa = 0, sk = 0;
            for (size_t c = 0; c < chunks; ++c) {
              sa += all[c];
              sk += kept[c];
            }
            if (sa >= 1e-7 && sk >= 1e-7) m.scale = static_cast<float>(sa / sk);
          }
        }
        return OkStatus();
      };
    }
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const Plan& p = plans[i];
      const size_t n = static_cast<size_t>(end - begin);
      if (p.copy) {
        const size_t sz = DTypeSize(p.donor.dtype());
        RETURN_IF_ERROR(writer->Write(i, begin * sz, p.donor.data + begin * sz, n * sz));
        return OkStatus();
      }
      std::vector<float>& buf = buffers[worker];
      buf.resize(static_cast<size_t>(kMergeChunk) * (num_models + 3));
      float* basev = buf.data();
      float* outv = basev + kMergeChunk;
      float* acc = outv + kMergeChunk;
      auto delta = [&](size_t m) { return acc + kMergeChunk * (m + 1); };
      const size_t out_size = DTypeSize(p.out);
      bytes[worker].resize(n * out_size);
      if (linear) {
        for (size_t m = 0; m < p.models.size(); ++m) {
          ReadF32(p.models[m].view, begin, n, delta(m));
        }
        float wsum = 0;
        for (const ModelTensor& m : p.models) wsum += m.weight;
        if (p.normalize && std::fabs(wsum) < 1e-8f) {
          return InvalidArgument(
              "{}: linear with normalize: true divides by the sum of weights, which is 0 for "
              "tensor {}; set 'normalize: false' for task-vector arithmetic",
              "merge", p.name);
        }
        for (size_t e = 0; e < n; ++e) {
          float s = p.models[0].weight * delta(0)[e];
          for (size_t m = 1; m < p.models.size(); ++m) s = s + p.models[m].weight * delta(m)[e];
          outv[e] = p.normalize ? s / wsum : s;
        }
      } else {
        ReadF32(*p.base, begin, n, basev);
        for (size_t mi = 0; mi < p.models.size(); ++mi) {
          const ModelTensor& m = p.models[mi];
          float* d = delta(mi);
          std::fill(d, d + n, 0.0f);
          const uint64_t lim_end = std::min(end, m.limit);
          if (lim_end <= begin) continue;
          const size_t mn = static_cast<size_t>(lim_end - begin);
          ReadF32(m.view, begin, mn, d);
          for (size_t e = 0; e < mn; ++e) d[e] = d[e] - basev[e];
          if (m.sparsify) {
            std::vector<uint8_t>& keep = masks[worker];
            keep.resize(mn);
            if (defaults.sparsify == MethodDefaults::Sparsify::kRandom) {
              const CounterRng rng(options.seed, p.name, m.rng_stream);
              for (size_t e = 0; e < mn; ++e) keep[e] = rng.Uniform(begin + e) < m.density;
            } else {
              std::vector<uint32_t>& k = keys[worker];
              k.resize(mn);
              for (size_t e = 0; e < mn; ++e) k[e] = MagnitudeKey(d[e]);
              m.hi.Mark(chunk, k.data(), mn, keep.data());
              if (m.use_lo) {
                std::vector<uint8_t>& drop = masks2[worker];
                drop.resize(mn);
                m.lo.Mark(chunk, k.data(), mn, drop.data());
                for (size_t e = 0; e < mn; ++e) keep[e] = keep[e] && !drop[e];
              }
            }
            const float density = static_cast<float>(m.density);
            for (size_t e = 0; e < mn; ++e) {
              float v = d[e];
              if (m.divide_by_density) v = v / density;
              if (m.scale != 1.0f) v = v * m.scale;
              d[e] = keep[e] ? v : 0.0f;
            }
          }
          for (size_t e = 0; e < mn; ++e) d[e] = m.weight * d[e];
        }
        float wsum = 0;
        for (const ModelTensor& m : p.models) wsum += m.weight;
        for (size_t e = 0; e < n; ++e) {
          float mixed_delta = 0, divisor = 0;
          if (defaults.consensus) {
            float s = 0;
            for (size_t m = 0; m < p.models.size(); ++m) s = s + delta(m)[e];
            const bool positive = s >= 0.0f;
            for (size_t m = 0; m < p.models.size(); ++m) {
              const float v = delta(m)[e];
              const bool agree = positive ? v > 0.0f : v < 0.0f;
              if (agree) {
                mixed_delta = mixed_delta + v;
                divisor = divisor + p.models[m].weight;
              }
            }
            if (divisor == 0.0f) divisor = 1.0f;
          } else {
            for (size_t m = 0; m < p.models.size(); ++m) mixed_delta = mixed_delta + delta(m)[e];
            divisor = std::fabs(wsum) < 1e-8f ? 1.0f : wsum;
          }
          if (p.normalize) mixed_delta = mixed_delta / divisor;
          if (p.lambda != 1.0f) mixed_delta = mixed_delta * p.lambda;
          acc[e] = mixed_delta;
        }
        AddDelta(basev, acc, n, outv);
      }
      EncodeFromF32(p.out, outv, n, bytes[worker].data());
      RETURN_IF_ERROR(writer->Write(i, begin * out_size, bytes[worker].data(), n * out_size));
      if (p.base) ReleaseElements(*p.base_ckpt, *p.base, begin, end);
      for (const ModelTensor& m : p.models) {
        ReleaseElements(*m.ckpt, m.view, begin, std::min(end, m.limit));
      }
      return OkStatus();
    };
  }
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));

  RETURN_IF_ERROR(CopySideFiles(*donor, writer->staging_dir(), mixed ? std::nullopt : uniform));
  std::string card = fmt::format(
      "---\nlibrary_name: transformers\ntags:\n- rvec\n- merge\n- {}\n---\n\n# {}\n\n"
      "Written by rvec {} (`rvec merge`, method `{}`) on {}.\n\nAll inputs are decoded exactly to "
      "f32, combined in f32, and rounded once to nearest even into the output dtype. Config, "
      "tokenizer, generation config and chat template come from {}.\n\n## Inputs\n\n"
      "| model | path | config sha256 | dtypes |\n|---|---|---|---|\n",
      MergeMethodName(config.method), options.out.filename().string(), options.version,
      MergeMethodName(config.method), UtcNow(), donor->path().string());
  for (const auto& [name, ckpt] : opened) {
    card += fmt::format("| {} | {} | {} | {} |\n", name, ckpt->path().string(), ConfigSha256(*ckpt),
                        DTypesOf(*ckpt));
  }
  if (!options.config_text.empty()) {
    card += fmt::format("\n## Configuration\n\n```yaml\n{}\n```\n", options.config_text);
  }
  if (defaults.sparsify == MethodDefaults::Sparsify::kRandom) {
    card += fmt::format("\nDARE random seed: {}.\n", options.seed);
  }
  if (!report.warnings.empty()) {
    card += "\n## Notes\n\n";
    for (const auto& w : report.warnings) card += "- " + w + "\n";
  }
  RETURN_IF_ERROR(WriteFileAtomic(writer->staging_dir() / "README.md", card));
  report.tensors = specs.size();
  report.shards = writer->ShardNames();
  RETURN_IF_ERROR(writer->Finish());
  report.out = options.out;
  return report;
}

}  // namespace rvec::merge
