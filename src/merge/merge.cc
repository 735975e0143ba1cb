// mergekit-compatible merges: per-tensor parameter evaluation, magnitude/random sparsification
// with streaming pre-passes, sign election and one final rounding.
#include "merge/merge.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "base/fs.h"
#include "base/rng.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "merge/kernels.h"
#include "merge/model_card.h"
#include "merge/provenance.h"
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

// ---- inputs -------------------------------------------------------------------------------------

// Every checkpoint a merge reads (each opened once), the models combined, and how each fits the
// donor of shapes and side files.
struct MergeInputs {
  struct Model {
    const ModelEntry* entry = nullptr;
    const Checkpoint* ckpt = nullptr;
  };
  std::map<std::string, std::unique_ptr<Checkpoint>> opened;
  const Checkpoint* base = nullptr;
  const Checkpoint* donor = nullptr;
  std::vector<Model> models;
  std::vector<CompatResult> checks;  // per model
};

// The config's notes (once each) and a note on a compute dtype rvec does not use.
void AddConfigNotes(const MergeConfig& config, std::vector<std::string>& warnings) {
  for (const auto& n : config.notes) {
    if (std::find(warnings.begin(), warnings.end(), n) == warnings.end()) warnings.push_back(n);
  }
  if (config.dtype && *config.dtype != DType::kF32) {
    warnings.push_back(fmt::format(
        "dtype: {} is mergekit's compute dtype; rvec always computes in f32 from the exact "
        "inputs and rounds once into the output dtype (see docs/merge.md)",
        TorchDTypeName(*config.dtype)));
  }
}

StatusOr<const Checkpoint*> OpenOnce(MergeInputs& in, const std::string& name,
                                     const std::filesystem::path& config_dir) {
  auto it = in.opened.find(name);
  if (it != in.opened.end()) return it->second.get();
  ASSIGN_OR_RETURN(std::filesystem::path path, ResolveModel(name, config_dir));
  ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(path));
  auto owned = std::make_unique<Checkpoint>(std::move(ckpt));
  const Checkpoint* raw = owned.get();
  in.opened[name] = std::move(owned);
  return raw;
}

// Every model against the donor (names, shapes, vocabulary rows), then dtype mixes against base.
Status CheckInputs(const MergeConfig& config, const MergeOptions& options, MergeInputs& in,
                   std::vector<std::string>& warnings) {
  CompatOptions compat;
  compat.vocab = options.vocab;
  for (const MergeInputs::Model& m : in.models) {
    ASSIGN_OR_RETURN(CompatResult r,
                     CheckCompatible(*in.donor, config.base_model ? "BASE" : "DONOR", *m.ckpt,
                                     m.entry->model, compat));
    if (config.method == MergeMethod::kLinear && !r.common_elements.empty()) {
      return Unimplemented(
          "linear merges need equal vocabulary rows (a weighted sum is undefined on rows only "
          "some models have); use task_arithmetic with base_model, or resize first");
    }
    for (auto& w : r.warnings) warnings.push_back(w);
    in.checks.push_back(std::move(r));
  }
  if (in.base) {
    for (const MergeInputs::Model& m : in.models) {
      if (std::string w = MixedDTypeWarning(*in.base, *m.ckpt); !w.empty()) {
        warnings.push_back(m.entry->model + ": " + w);
      }
    }
  }
  return OkStatus();
}

StatusOr<MergeInputs> OpenInputs(const MergeConfig& config, const MergeOptions& options,
                                 const MethodDefaults& defaults,
                                 std::vector<std::string>& warnings) {
  MergeInputs in;
  if (config.base_model) {
    ASSIGN_OR_RETURN(in.base, OpenOnce(in, *config.base_model, options.config_dir));
  }
  for (const ModelEntry& m : config.models) {
    if (defaults.needs_base && config.base_model && m.model == *config.base_model) continue;
    ASSIGN_OR_RETURN(const Checkpoint* c, OpenOnce(in, m.model, options.config_dir));
    in.models.push_back({&m, c});
  }
  if (in.models.empty()) return InvalidArgument("no model to merge besides base_model");
  // Side files: base_model if given, else the first model listed (mergekit picks an arbitrary
  // one when there is no base_model).
  in.donor = in.base ? in.base : in.models[0].ckpt;
  RETURN_IF_ERROR(CheckInputs(config, options, in, warnings));
  return in;
}

// ---- plan ---------------------------------------------------------------------------------------

struct MergePlan {
  std::vector<Plan> plans;
  std::vector<TensorSpec> specs;  // one per plan
};

// Model i's parameters for one tensor at gradient position t.
StatusOr<ModelTensor> PlanModelTensor(const MergeConfig& config, const MethodDefaults& defaults,
                                      const MergeInputs& in, size_t i, const Plan& plan, double t) {
  const std::string& name = plan.name;
  ModelTensor m;
  m.ckpt = in.models[i].ckpt;
  m.label = in.models[i].entry->model;
  ASSIGN_OR_RETURN(m.view, m.ckpt->View(name));
  if (!IsSupportedFloat(m.view.dtype())) {
    return Unimplemented("{}: tensor {} has dtype {}", m.label, name, DTypeName(m.view.dtype()));
  }
  ASSIGN_OR_RETURN(double w, Param(config, in.models[i].entry, "weight", name, t, std::nullopt));
  m.weight = static_cast<float>(w);
  ASSIGN_OR_RETURN(m.density, Param(config, in.models[i].entry, "density", name, t, 1.0));
  ASSIGN_OR_RETURN(m.gamma, Param(config, in.models[i].entry, "gamma", name, t, 0.01));
  if (m.density < 0 || m.density > 1) {
    return InvalidArgument("{}: density {} for tensor {} is outside [0, 1]", m.label, m.density,
                           name);
  }
  auto it = in.checks[i].common_elements.find(name);
  m.limit = it != in.checks[i].common_elements.end() ? it->second : plan.donor.NumElements();
  m.rng_stream = i;
  m.sparsify = defaults.sparsify != MethodDefaults::Sparsify::kNone && m.density < 1.0;
  if (m.sparsify && defaults.sparsify == MethodDefaults::Sparsify::kRandom && plan.rescale) {
    m.divide_by_density = true;
  }
  return m;
}

StatusOr<Plan> PlanTensor(const MergeConfig& config, const MethodDefaults& defaults,
                          const MergeInputs& in, const std::string& name, int64_t num_layers,
                          std::vector<std::string>& warnings) {
  Plan plan;
  plan.name = name;
  ASSIGN_OR_RETURN(plan.donor, in.donor->View(name));
  const bool is_float = IsSupportedFloat(plan.donor.dtype());
  plan.out = plan.donor.dtype();
  if (is_float && config.out_dtype) {
    plan.out = *config.out_dtype;
  } else if (is_float && config.dtype) {
    plan.out = *config.dtype;
  }
  if (!is_float) {
    plan.copy = true;
    warnings.push_back(fmt::format("{}: non-float tensor ({}) copied from {}", name,
                                   DTypeName(plan.donor.dtype()), in.donor->path().string()));
    return plan;
  }
  const double t = GradientPosition(name, num_layers);
  if (in.base) {
    plan.base = plan.donor;
    plan.base_ckpt = in.base;
  }
  ASSIGN_OR_RETURN(plan.normalize, BoolParam(config, "normalize", name, t, defaults.normalize));
  ASSIGN_OR_RETURN(plan.rescale, BoolParam(config, "rescale", name, t, defaults.rescale));
  ASSIGN_OR_RETURN(double lambda, Param(config, nullptr, "lambda", name, t, 1.0));
  plan.lambda = static_cast<float>(lambda);
  for (size_t i = 0; i < in.models.size(); ++i) {
    ASSIGN_OR_RETURN(ModelTensor m, PlanModelTensor(config, defaults, in, i, plan, t));
    plan.models.push_back(std::move(m));
  }
  return plan;
}

StatusOr<MergePlan> PlanMerge(const MergeConfig& config, const MethodDefaults& defaults,
                              const MergeInputs& in, std::vector<std::string>& warnings) {
  MergePlan mp;
  const int64_t num_layers = NumLayersOf(*in.donor);
  for (const std::string& name : in.donor->TensorNames()) {
    ASSIGN_OR_RETURN(Plan plan, PlanTensor(config, defaults, in, name, num_layers, warnings));
    mp.specs.push_back({name, plan.out, plan.donor.shape()});
    mp.plans.push_back(std::move(plan));
  }
  return mp;
}

// ---- sparsification pre-pass --------------------------------------------------------------------

// Magnitude and breadcrumbs methods rank whole tensors before their chunks run.
bool NeedsPrepare(const Plan& plan, const MethodDefaults& defaults) {
  return !plan.copy && defaults.sparsify != MethodDefaults::Sparsify::kNone &&
         std::any_of(plan.models.begin(), plan.models.end(), [&](const ModelTensor& m) {
           return m.sparsify && defaults.sparsify != MethodDefaults::Sparsify::kRandom;
         });
}

// The kept set of one model's delta: top density (magnitude), or breadcrumbs' band that drops the
// gamma fraction of largest magnitudes and the smallest ones.
void SelectKept(ModelTensor& m, const Plan& p, const MethodDefaults& defaults, ThreadPool& pool,
                size_t chunks, std::vector<std::string>& warnings) {
  const uint64_t n = m.limit;
  auto keys_fn = [&](size_t c, std::vector<uint32_t>& k) { DeltaKeys(m, *p.base, c, k); };
  auto par = [&](size_t count, const std::function<void(size_t)>& fn) {
    ParallelTasks(pool, count, fn);
  };
  const uint64_t target_n = static_cast<uint64_t>(std::floor(m.density * static_cast<double>(n)));
  if (defaults.sparsify == MethodDefaults::Sparsify::kMagnitude) {
    m.hi = TopKSelector::Build(target_n, chunks, keys_fn, par);
    if (target_n == 0) {
      warnings.push_back(
          fmt::format("{}: density {} keeps no element of {} ({} elements); its delta is dropped",
                      m.label, m.density, p.name, n));
    }
    return;
  }
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

// mergekit's rescale for magnitude methods: match the L1 norm of the kept part to the whole,
// summed in double in chunk order.
void RescaleKept(ModelTensor& m, const Plan& p, ThreadPool& pool, size_t chunks) {
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

Status PrepareSparsify(Plan& p, const MethodDefaults& defaults, ThreadPool& pool,
                       std::vector<std::string>& warnings) {
  for (ModelTensor& m : p.models) {
    if (!m.sparsify) continue;
    const size_t chunks = static_cast<size_t>((m.limit + kMergeChunk - 1) / kMergeChunk);
    SelectKept(m, p, defaults, pool, chunks, warnings);
    if (p.rescale) RescaleKept(m, p, pool, chunks);
  }
  return OkStatus();
}

// ---- per-chunk kernel ---------------------------------------------------------------------------

// One worker's buffers, reused across chunks. `floats` holds base, out, acc, then one delta per
// model, kMergeChunk each.
struct MergeScratch {
  std::vector<float> floats;
  std::vector<uint8_t> keep, drop;
  std::vector<uint32_t> keys;
  std::vector<uint8_t> bytes;
};

float* DeltaOf(float* acc, size_t model) { return acc + kMergeChunk * (model + 1); }

float WeightSum(const Plan& p) {
  float wsum = 0;
  for (const ModelTensor& m : p.models) wsum += m.weight;
  return wsum;
}

// linear: Σ w_i·θ_i (divided by Σ w_i when normalizing), in model order.
Status LinearChunk(const Plan& p, uint64_t begin, size_t n, float* acc, float* outv) {
  for (size_t m = 0; m < p.models.size(); ++m) ReadF32(p.models[m].view, begin, n, DeltaOf(acc, m));
  const float wsum = WeightSum(p);
  if (p.normalize && std::fabs(wsum) < 1e-8f) {
    return InvalidArgument(
        "{}: linear with normalize: true divides by the sum of weights, which is 0 for "
        "tensor {}; set 'normalize: false' for task-vector arithmetic",
        "merge", p.name);
  }
  for (size_t e = 0; e < n; ++e) {
    float s = p.models[0].weight * DeltaOf(acc, 0)[e];
    for (size_t m = 1; m < p.models.size(); ++m) s = s + p.models[m].weight * DeltaOf(acc, m)[e];
    outv[e] = p.normalize ? s / wsum : s;
  }
  return OkStatus();
}

// Zeroes the dropped elements of d[0, mn) and rescales the kept ones.
void SparsifyDelta(const ModelTensor& m, const Plan& p, const MethodDefaults& defaults,
                   uint64_t seed, uint64_t chunk, uint64_t begin, size_t mn, float* d,
                   MergeScratch& s) {
  std::vector<uint8_t>& keep = s.keep;
  keep.resize(mn);
  if (defaults.sparsify == MethodDefaults::Sparsify::kRandom) {
    const CounterRng rng(seed, p.name, m.rng_stream);
    for (size_t e = 0; e < mn; ++e) keep[e] = rng.Uniform(begin + e) < m.density;
  } else {
    std::vector<uint32_t>& k = s.keys;
    k.resize(mn);
    for (size_t e = 0; e < mn; ++e) k[e] = MagnitudeKey(d[e]);
    m.hi.Mark(chunk, k.data(), mn, keep.data());
    if (m.use_lo) {
      std::vector<uint8_t>& drop = s.drop;
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

// d = w·sparsify(θ_i − θ_b) over the model's shared rows, zero beyond them.
void ModelDelta(const ModelTensor& m, const Plan& p, const MethodDefaults& defaults, uint64_t seed,
                uint64_t chunk, uint64_t begin, uint64_t end, const float* basev, float* d,
                MergeScratch& s) {
  std::fill(d, d + (end - begin), 0.0f);
  const uint64_t lim_end = std::min(end, m.limit);
  if (lim_end <= begin) return;
  const size_t mn = static_cast<size_t>(lim_end - begin);
  ReadF32(m.view, begin, mn, d);
  for (size_t e = 0; e < mn; ++e) d[e] = d[e] - basev[e];
  if (m.sparsify) SparsifyDelta(m, p, defaults, seed, chunk, begin, mn, d, s);
  for (size_t e = 0; e < mn; ++e) d[e] = m.weight * d[e];
}

// acc = λ·(Σ agreeing deltas / divisor): TIES sign election when `consensus`, else all deltas.
void CombineDeltas(const Plan& p, const MethodDefaults& defaults, size_t n, float* acc) {
  const float wsum = WeightSum(p);
  for (size_t e = 0; e < n; ++e) {
    float mixed_delta = 0, divisor = 0;
    if (defaults.consensus) {
      float s = 0;
      for (size_t m = 0; m < p.models.size(); ++m) s = s + DeltaOf(acc, m)[e];
      const bool positive = s >= 0.0f;
      for (size_t m = 0; m < p.models.size(); ++m) {
        const float v = DeltaOf(acc, m)[e];
        const bool agree = positive ? v > 0.0f : v < 0.0f;
        if (agree) {
          mixed_delta = mixed_delta + v;
          divisor = divisor + p.models[m].weight;
        }
      }
      if (divisor == 0.0f) divisor = 1.0f;
    } else {
      for (size_t m = 0; m < p.models.size(); ++m) mixed_delta = mixed_delta + DeltaOf(acc, m)[e];
      divisor = std::fabs(wsum) < 1e-8f ? 1.0f : wsum;
    }
    if (p.normalize) mixed_delta = mixed_delta / divisor;
    if (p.lambda != 1.0f) mixed_delta = mixed_delta * p.lambda;
    acc[e] = mixed_delta;
  }
}

// What every chunk of a merge shares.
struct MergeRun {
  const MethodDefaults& defaults;
  bool linear = false;
  uint64_t seed = 0;
  CheckpointWriter& writer;
  std::vector<MergeScratch> scratch;  // per worker
};

Status MergeChunk(MergeRun& run, const Plan& p, size_t tensor, uint64_t chunk, uint64_t begin,
                  uint64_t end, size_t worker) {
  const size_t n = static_cast<size_t>(end - begin);
  if (p.copy) {
    const size_t sz = DTypeSize(p.donor.dtype());
    return run.writer.Write(tensor, begin * sz, p.donor.data + begin * sz, n * sz);
  }
  MergeScratch& s = run.scratch[worker];
  s.floats.resize(static_cast<size_t>(kMergeChunk) * (p.models.size() + 3));
  float* basev = s.floats.data();
  float* outv = basev + kMergeChunk;
  float* acc = outv + kMergeChunk;
  const size_t out_size = DTypeSize(p.out);
  s.bytes.resize(n * out_size);
  if (run.linear) {
    RETURN_IF_ERROR(LinearChunk(p, begin, n, acc, outv));
  } else {
    ReadF32(*p.base, begin, n, basev);
    for (size_t mi = 0; mi < p.models.size(); ++mi) {
      ModelDelta(p.models[mi], p, run.defaults, run.seed, chunk, begin, end, basev,
                 DeltaOf(acc, mi), s);
    }
    CombineDeltas(p, run.defaults, n, acc);
    AddDelta(basev, acc, n, outv);
  }
  EncodeFromF32(p.out, outv, n, s.bytes.data());
  RETURN_IF_ERROR(run.writer.Write(tensor, begin * out_size, s.bytes.data(), n * out_size));
  if (p.base) ReleaseElements(*p.base_ckpt, *p.base, begin, end);
  for (const ModelTensor& m : p.models) {
    ReleaseElements(*m.ckpt, m.view, begin, std::min(end, m.limit));
  }
  return OkStatus();
}

// Streams every tensor through the pre-pass (when needed) and the chunk kernel.
Status RunMergeJobs(const MergeConfig& config, const MergeOptions& options,
                    const MethodDefaults& defaults, MergePlan& mp, CheckpointWriter& writer,
                    Progress* progress, std::vector<std::string>& warnings) {
  ThreadPool pool(options.threads);
  MergeRun run{defaults, config.method == MergeMethod::kLinear, options.seed, writer,
               std::vector<MergeScratch>(pool.NumWorkers())};
  if (progress) progress->SetTotal(TotalBytes(mp.specs));
  std::vector<TensorJob> jobs(mp.plans.size());
  for (size_t i = 0; i < mp.plans.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = mp.plans[i].donor.NumElements();
    job.chunk_elements = kMergeChunk;
    job.progress_units = mp.specs[i].NumBytes();
    if (NeedsPrepare(mp.plans[i], defaults)) {
      job.prepare = [&, i]() { return PrepareSparsify(mp.plans[i], defaults, pool, warnings); };
    }
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) {
      return MergeChunk(run, mp.plans[i], i, chunk, begin, end, worker);
    };
  }
  return RunJobs(pool, jobs, progress);
}

// ---- write and finish ---------------------------------------------------------------------------

ModelCard MergeCard(const MergeConfig& config, const MergeOptions& options, const MergeInputs& in,
                    const MethodDefaults& defaults, const std::vector<std::string>& warnings) {
  const std::string method = MergeMethodName(config.method);
  std::vector<std::vector<std::string>> inputs;
  for (const auto& [name, ckpt] : in.opened) {
    inputs.push_back({name, ckpt->path().string(), ConfigSha256(*ckpt), DTypesOf(*ckpt)});
  }
  ModelCard card;
  card.FrontMatter(true, {"rvec", "merge", method})
      .Title(options.out.filename().string())
      .WrittenBy(options.version, fmt::format("`rvec merge`, method `{}`", method),
                 "on " + UtcNow())
      .Paragraph(fmt::format(
          "All inputs are decoded exactly to f32, combined in f32, and rounded once to nearest "
          "even into the output dtype. Config, tokenizer, generation config and chat template "
          "come from {}.",
          in.donor->path().string()))
      .Heading("Inputs")
      .Table({"model", "path", "config sha256", "dtypes"}, inputs);
  if (!options.config_text.empty()) card.Heading("Configuration").Code("yaml", options.config_text);
  if (defaults.sparsify == MethodDefaults::Sparsify::kRandom) {
    card.Paragraph(fmt::format("DARE random seed: {}.", options.seed));
  }
  if (!warnings.empty()) card.Heading("Notes").List(warnings);
  return card;
}

}  // namespace

nlohmann::json MergeReport::ToJson() const {
  return nlohmann::json{{"output", out.string()},
                        {"method", MergeMethodName(method)},
                        {"side_files_from", donor.string()},
                        {"tensors", tensors},
                        {"shards", shards},
                        {"warnings", warnings}};
}

StatusOr<MergeReport> RunMerge(const MergeConfig& config, const MergeOptions& options,
                               Progress* progress) {
  MergeReport report;
  report.method = config.method;
  const MethodDefaults defaults = DefaultsFor(config.method);
  AddConfigNotes(config, report.warnings);
  ASSIGN_OR_RETURN(MergeInputs in, OpenInputs(config, options, defaults, report.warnings));
  report.donor = in.donor->path();
  ASSIGN_OR_RETURN(MergePlan mp, PlanMerge(config, defaults, in, report.warnings));

  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  wopts.max_shard_bytes = ShardBudgetLike(*in.donor);
  wopts.metadata["format"] = "pt";
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, mp.specs, wopts));
  RETURN_IF_ERROR(RunMergeJobs(config, options, defaults, mp, *writer, progress, report.warnings));

  RETURN_IF_ERROR(CopySideFiles(*in.donor, writer->staging_dir(), UniformFloatDType(mp.specs)));
  report.tensors = mp.specs.size();
  ASSIGN_OR_RETURN(report.shards, FinishWithCard(*writer, MergeCard(config, options, in, defaults,
                                                                    report.warnings)));
  report.out = options.out;
  return report;
}

}  // namespace rvec::merge
