// Extract and apply: per-tensor plans checked up front, then streamed chunk by chunk into a
// CheckpointWriter that only publishes the output when every byte is written.
#include "merge/vector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <regex>

#include "base/fs.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "merge/compact.h"
#include "merge/kernels.h"
#include "merge/model_card.h"
#include "merge/provenance.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace {

std::string Abs(const std::filesystem::path& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return (ec ? p : abs).string();
}

Status CheckFloat(const TensorInfo& info, const Checkpoint& ckpt) {
  if (!IsSupportedFloat(info.dtype)) {
    return Unimplemented("{}: tensor {} has dtype {}, which rvec cannot do arithmetic on",
                         ckpt.path().string(), info.name, DTypeName(info.dtype));
  }
  return OkStatus();
}

// Per-chunk double accumulators for the narrowing report, combined in chunk order.
struct NarrowingStats {
  uint64_t changed = 0;
  double err2 = 0;
  double norm2 = 0;
};

}  // namespace

// ---- extract ------------------------------------------------------------------------------------

namespace {

// A compact vector against the target: every tensor it changes must exist with the same shape
// (a tied target's lm_head is reported in `extra` and left alone, as for dense vectors).
StatusOr<CompatResult> CheckCompactAgainst(const Checkpoint& target, const CompactVector& cv,
                                           bool tied_target) {
  CompatResult r;
  std::vector<std::string> problems;
  for (const std::string& name : cv.TensorNames()) {
    const TensorInfo* info = target.Info(name);
    if (info == nullptr) {
      if (tied_target && name == "lm_head.weight") {
        r.extra.push_back(name);
      } else {
        problems.push_back(name + " is not in the target");
      }
      continue;
    }
    if (info->shape != cv.Shape(name)) {
      problems.push_back(fmt::format("{} is {} in the target, {} in the vector", name,
                                     ShapeString(info->shape), ShapeString(cv.Shape(name))));
    }
  }
  if (!problems.empty()) {
    return FailedPrecondition("{} vector {} does not fit TARGET {}: {}", CompactKindName(cv.kind()),
                              cv.path().string(), target.path().string(),
                              AbbreviatedList(problems));
  }
  for (const std::string& name : target.TensorNames()) {
    if (!cv.Has(name)) r.missing.push_back(name);
  }
  return r;
}

}  // namespace

namespace {

struct ExtractItem {
  TensorView base;
  TensorView tuned;
  uint64_t numel;  // the shared vocabulary rows only, with --vocab-mismatch=common
};

struct ExtractPlan {
  std::vector<ExtractItem> items;
  std::vector<TensorSpec> specs;  // one per item
};

Status CheckVectorDType(DType dtype) {
  if (!IsSupportedFloat(dtype) ||
      (dtype != DType::kF32 && dtype != DType::kBF16 && dtype != DType::kF16)) {
    return InvalidArgument("--dtype {}: a vector is stored as F32, BF16 or F16", DTypeName(dtype));
  }
  return OkStatus();
}

// The float tensors selected by --include/--exclude; the rest are counted as skipped.
StatusOr<ExtractPlan> PlanExtract(const ExtractOptions& options, const Checkpoint& base,
                                  const Checkpoint& tuned, const CompatResult& check,
                                  ExtractReport& report) {
  std::optional<std::regex> include, exclude;
  if (!options.include.empty()) {
    ASSIGN_OR_RETURN(include, CompileRegex(options.include, "--include"));
  }
  if (!options.exclude.empty()) {
    ASSIGN_OR_RETURN(exclude, CompileRegex(options.exclude, "--exclude"));
  }
  ExtractPlan plan;
  std::vector<std::string> non_float;
  for (const std::string& name : base.TensorNames()) {
    if ((include && !std::regex_search(name, *include)) ||
        (exclude && std::regex_search(name, *exclude))) {
      ++report.skipped_tensors;
      continue;
    }
    ASSIGN_OR_RETURN(TensorView b, base.View(name));
    ASSIGN_OR_RETURN(TensorView t, tuned.View(name));
    if (!IsSupportedFloat(b.dtype()) || !IsSupportedFloat(t.dtype())) {
      non_float.push_back(name);
      ++report.skipped_tensors;
      continue;
    }
    std::vector<int64_t> shape = b.shape();
    uint64_t numel = b.NumElements();
    if (auto it = check.common_elements.find(name); it != check.common_elements.end()) {
      numel = it->second;
      shape[0] = static_cast<int64_t>(numel / static_cast<uint64_t>(shape[1]));
    }
    plan.items.push_back({b, t, numel});
    plan.specs.push_back({name, options.dtype, shape});
  }
  if (!non_float.empty()) {
    report.warnings.push_back(fmt::format(
        "{} non-float tensor(s) are not part of the vector (they have no meaningful difference): "
        "{}",
        non_float.size(), AbbreviatedList(non_float)));
  }
  if (plan.specs.empty()) {
    return InvalidArgument("no tensor of {} is selected (check --include/--exclude)",
                           options.base.string());
  }
  return plan;
}

// Sharded like BASE (scaled to the stored dtype), with the vector's provenance.
CheckpointWriterOptions ExtractWriterOptions(const ExtractOptions& options, const Checkpoint& base,
                                             const Checkpoint& tuned, const ExtractPlan& plan) {
  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  uint64_t in_size = 2;
  if (!plan.items.empty()) in_size = DTypeSize(plan.items[0].base.dtype());
  wopts.max_shard_bytes = ShardBudgetLike(
      base, static_cast<double>(DTypeSize(options.dtype)) / static_cast<double>(in_size));
  if (wopts.max_shard_bytes == 0) wopts.max_shard_bytes = 5'000'000'000ULL;
  auto& md = wopts.metadata;
  AddCommonMetadata(md, "reasoning_vector", base, options.version);
  AddInputMetadata(md, "base", base);
  AddInputMetadata(md, "tuned", tuned);
  md["rvec.formula"] = "tuned - base";
  md["rvec.dtype"] = std::string(DTypeName(options.dtype));
  md["rvec.include"] = options.include;
  md["rvec.exclude"] = options.exclude;
  md["rvec.vocab_mismatch"] = options.vocab == VocabMode::kCommon ? "common" : "error";
  return wopts;
}

// v = fl32(tuned − base) over [begin, end), encoded into `bytes`, with what narrowing loses.
NarrowingStats ExtractChunk(const ExtractItem& it, DType out, uint64_t begin, uint64_t end,
                            Scratch& scratch, size_t worker) {
  const size_t out_size = DTypeSize(out);
  const bool narrowing = out != DType::kF32;
  std::vector<uint8_t>& bytes = scratch.Bytes(worker);
  bytes.resize((end - begin) * out_size);
  float* a = scratch.Get(worker, 0);
  float* b = scratch.Get(worker, 1);
  float* d = scratch.Get(worker, 2);
  float* back = scratch.Get(worker, 3);
  NarrowingStats stats;
  for (uint64_t pos = begin; pos < end; pos += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
    ReadF32(it.tuned, pos, n, a);
    ReadF32(it.base, pos, n, b);
    Subtract(a, b, n, d);
    uint8_t* dst = bytes.data() + (pos - begin) * out_size;
    EncodeFromF32(out, d, n, dst);
    double norm2 = 0;
    for (size_t e = 0; e < n; ++e) norm2 += static_cast<double>(d[e]) * d[e];
    stats.norm2 += norm2;
    if (narrowing) {
      DecodeToF32(out, dst, n, back);
      for (size_t e = 0; e < n; ++e) {
        if (F32Bits(back[e]) != F32Bits(d[e])) {
          ++stats.changed;
          const double diff = static_cast<double>(back[e]) - d[e];
          stats.err2 += diff * diff;
        }
      }
    }
  }
  return stats;
}

// Streams every tensor through ExtractChunk; per-chunk sums are combined in chunk order.
Status RunExtractJobs(const ExtractOptions& options, const Checkpoint& base,
                      const Checkpoint& tuned, const ExtractPlan& plan, CheckpointWriter& writer,
                      Progress* progress, ExtractReport& report) {
  ThreadPool pool(options.threads);
  Scratch scratch(pool.NumWorkers(), 4, kBlock);
  const size_t out_size = DTypeSize(options.dtype);
  if (progress) progress->SetTotal(TotalBytes(plan.specs));
  NarrowingStats totals;
  std::vector<TensorJob> jobs(plan.items.size());
  std::vector<std::vector<NarrowingStats>> per_chunk(plan.items.size());
  for (size_t i = 0; i < plan.items.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = plan.items[i].numel;
    job.progress_units = plan.specs[i].NumBytes();
    per_chunk[i].resize(job.NumChunks());
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const ExtractItem& it = plan.items[i];
      per_chunk[i][chunk] = ExtractChunk(it, options.dtype, begin, end, scratch, worker);
      const std::vector<uint8_t>& bytes = scratch.Bytes(worker);
      RETURN_IF_ERROR(writer.Write(i, begin * out_size, bytes.data(), bytes.size()));
      ReleaseElements(tuned, it.tuned, begin, end);
      ReleaseElements(base, it.base, begin, end);
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      for (const NarrowingStats& s : per_chunk[i]) {
        totals.changed += s.changed;
        totals.err2 += s.err2;
        totals.norm2 += s.norm2;
      }
      per_chunk[i].clear();
      per_chunk[i].shrink_to_fit();
      return OkStatus();
    };
  }
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));
  report.tensors = plan.specs.size();
  for (const auto& it : plan.items) report.elements += it.numel;
  report.changed_elements = totals.changed;
  report.l2_norm = std::sqrt(totals.norm2);
  report.relative_l2_error = totals.norm2 > 0 ? std::sqrt(totals.err2 / totals.norm2) : 0.0;
  return OkStatus();
}

// A short card so a vector directory explains itself.
ModelCard ExtractCard(const ExtractOptions& options, const Checkpoint& base,
                      const Checkpoint& tuned, const ExtractReport& report,
                      const std::string& created) {
  const std::string narrowing =
      options.dtype != DType::kF32
          ? fmt::format(
                " (rounded once to nearest even: {} elements changed, relative L2 "
                "error {:.3g})",
                report.changed_elements, report.relative_l2_error)
          : "";
  ModelCard card;
  card.Title("Reasoning vector")
      .WrittenBy(options.version, "`rvec extract`", "on " + created)
      .Paragraph(fmt::format(
          "v = θ_tuned − θ_base, computed exactly in f32 from the decoded inputs and stored as {}"
          "{}.",
          DTypeName(options.dtype), narrowing))
      .Paragraph(fmt::format(
          "This is not a model: apply it with `rvec apply --model TARGET --vector {}:ALPHA`.",
          options.out.filename().string()))
      .Table({"role", "path", "dtypes"}, {{"base", Abs(options.base), DTypesOf(base)},
                                          {"tuned", Abs(options.tuned), DTypesOf(tuned)}})
      .Paragraph(fmt::format("{} tensors, {} elements, L2 norm {:.6g}.", report.tensors,
                             report.elements, report.l2_norm));
  if (!options.include.empty() || !options.exclude.empty()) {
    card.Paragraph(
        fmt::format("Filters: include `{}`, exclude `{}`.", options.include, options.exclude));
  }
  for (const auto& w : report.warnings) card.Paragraph("> warning: " + w);
  return card;
}

}  // namespace

nlohmann::json ExtractReport::ToJson() const {
  return nlohmann::json{{"output", out.string()},
                        {"base", base.string()},
                        {"tuned", tuned.string()},
                        {"dtype", std::string(DTypeName(dtype))},
                        {"tensors", tensors},
                        {"elements", elements},
                        {"skipped_tensors", skipped_tensors},
                        {"l2_norm", l2_norm},
                        {"narrowing_changed_elements", changed_elements},
                        {"narrowing_relative_l2_error", relative_l2_error},
                        {"shards", shards},
                        {"warnings", warnings}};
}

StatusOr<ExtractReport> Extract(const ExtractOptions& options, Progress* progress) {
  RETURN_IF_ERROR(CheckVectorDType(options.dtype));
  ASSIGN_OR_RETURN(Checkpoint base, Checkpoint::Open(options.base));
  ASSIGN_OR_RETURN(Checkpoint tuned, Checkpoint::Open(options.tuned));
  CompatOptions compat;
  compat.vocab = options.vocab;
  ASSIGN_OR_RETURN(CompatResult check, CheckCompatible(base, "BASE", tuned, "TUNED", compat));

  ExtractReport report;
  report.base = options.base;
  report.tuned = options.tuned;
  report.dtype = options.dtype;
  report.warnings = check.warnings;
  if (std::string w = MixedDTypeWarning(base, tuned); !w.empty()) report.warnings.push_back(w);
  ASSIGN_OR_RETURN(ExtractPlan plan, PlanExtract(options, base, tuned, check, report));

  const CheckpointWriterOptions wopts = ExtractWriterOptions(options, base, tuned, plan);
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, plan.specs, wopts));
  RETURN_IF_ERROR(RunExtractJobs(options, base, tuned, plan, *writer, progress, report));

  const std::string& created = wopts.metadata.at("rvec.created");
  ASSIGN_OR_RETURN(report.shards,
                   FinishWithCard(*writer, ExtractCard(options, base, tuned, report, created)));
  report.out = options.out;
  return report;
}

// ---- apply --------------------------------------------------------------------------------------

StatusOr<VectorTerm> ParseVectorTerm(const std::string& spec) {
  VectorTerm term;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    auto alpha = ParseNumber(std::string_view(spec).substr(colon + 1), "--vector " + spec);
    if (alpha.ok()) {
      term.path = spec.substr(0, colon);
      term.alpha = *alpha;
      return term;
    }
  }
  term.path = spec;
  if (term.path.empty()) return InvalidArgument("--vector: empty path");
  return term;
}

namespace {

// One term of the sum: a stored vector, a compact vector, or the base/tuned pair.
struct Source {
  std::unique_ptr<Checkpoint> a;           // vector or tuned
  std::unique_ptr<Checkpoint> b;           // base (direct form) or null
  std::unique_ptr<CompactVector> compact;  // a compact vector (LoRA, sparse, sign) instead of a
  double alpha = 1.0;
  std::string label;
  CompatResult check;
};

// A source's contribution to one tensor, with its coefficient already rounded to f32.
struct Term {
  TensorView a;
  const Checkpoint* a_ckpt = nullptr;
  const CompactVector* compact = nullptr;  // decoded per chunk instead of read
  std::optional<TensorView> b;
  const Checkpoint* b_ckpt = nullptr;
  float alpha = 0;
  uint64_t limit = 0;  // elements covered (shared vocabulary rows)
};

struct TensorPlan {
  TensorView target;
  DType out;
  std::vector<Term> terms;
  bool raw_copy = false;
};

struct ApplyPlan {
  std::vector<TensorPlan> plans;
  std::vector<TensorSpec> specs;  // one per plan
};

Status CheckApplyOptions(const ApplyOptions& options, bool direct) {
  if (direct && !(options.base && options.tuned)) {
    return InvalidArgument("the direct form needs both --base and --tuned");
  }
  if (!direct && options.vectors.empty()) {
    return InvalidArgument("nothing to apply: give --vector VEC[:ALPHA] or --base and --tuned");
  }
  if (options.dtype && (*options.dtype != DType::kF32 && *options.dtype != DType::kBF16 &&
                        *options.dtype != DType::kF16)) {
    return InvalidArgument("--dtype {}: the output is stored as F32, BF16 or F16",
                           DTypeName(*options.dtype));
  }
  return OkStatus();
}

// A tied target has no lm_head of its own: a vector's lm_head delta is tolerated and left out.
bool IsTiedTarget(const Checkpoint& target) {
  return target.config() && target.config()->tie_word_embeddings && !target.Has("lm_head.weight");
}

StatusOr<Source> OpenDirectSource(const ApplyOptions& options, const Checkpoint& target,
                                  const CompatOptions& compat, std::vector<std::string>& warnings) {
  Source s;
  ASSIGN_OR_RETURN(Checkpoint b, Checkpoint::Open(*options.base));
  ASSIGN_OR_RETURN(Checkpoint a, Checkpoint::Open(*options.tuned));
  CompatOptions pair;
  pair.vocab = options.vocab;
  ASSIGN_OR_RETURN(CompatResult pair_check, CheckCompatible(b, "BASE", a, "TUNED", pair));
  for (auto& w : pair_check.warnings) warnings.push_back(w);
  if (!pair_check.common_elements.empty()) {
    return Unimplemented(
        "BASE and TUNED have different vocabulary rows; extract the vector first with "
        "`rvec extract --vocab-mismatch=common`, then apply it");
  }
  if (std::string w = MixedDTypeWarning(b, a); !w.empty()) warnings.push_back(w);
  ASSIGN_OR_RETURN(s.check, CheckCompatible(target, "TARGET", a, "TUNED", compat));
  s.a = std::make_unique<Checkpoint>(std::move(a));
  s.b = std::make_unique<Checkpoint>(std::move(b));
  s.alpha = options.direct_alpha;
  s.label = fmt::format("({} − {})", Abs(*options.tuned), Abs(*options.base));
  return s;
}

StatusOr<Source> OpenVectorSource(const VectorTerm& term, const Checkpoint& target,
                                  const CompatOptions& compat, std::vector<std::string>& warnings) {
  Source s;
  s.alpha = term.alpha;
  s.label = Abs(term.path);
  if (IsCompactVector(term.path)) {
    ASSIGN_OR_RETURN(s.compact, CompactVector::Open(term.path));
    ASSIGN_OR_RETURN(s.check, CheckCompactAgainst(target, *s.compact, IsTiedTarget(target)));
    return s;
  }
  ASSIGN_OR_RETURN(Checkpoint v, Checkpoint::Open(term.path));
  ASSIGN_OR_RETURN(s.check, CheckCompatible(target, "TARGET", v, "VECTOR", compat));
  if (auto kind = MetadataValue(v, "rvec.kind"); kind && *kind == "control_vector") {
    warnings.push_back(fmt::format("{} is a norm-matched random control vector, not a learned one",
                                   term.path.string()));
  }
  s.a = std::make_unique<Checkpoint>(std::move(v));
  return s;
}

// What each source leaves out of the target: missing deltas, and a tied target's lm_head.
void AddSourceWarnings(const std::vector<Source>& sources, std::vector<std::string>& warnings) {
  for (const Source& s : sources) {
    for (auto& w : s.check.warnings) warnings.push_back(w);
    if (!s.check.missing.empty()) {
      warnings.push_back(
          fmt::format("{} tensor(s) of the target have no delta in {} and are copied unchanged: {}",
                      s.check.missing.size(), s.label, AbbreviatedList(s.check.missing)));
    }
    for (const std::string& name : s.check.extra) {
      warnings.push_back(fmt::format(
          "the target ties lm_head to embed_tokens (tie_word_embeddings: true, no lm_head.weight), "
          "so the {} delta from {} is NOT applied; embed_tokens gets only its own delta. Untie "
          "the target first if you want the output head changed",
          name, s.label));
    }
  }
}

// Sources: the base/tuned pair, or one per --vector, each checked against the target.
StatusOr<std::vector<Source>> OpenSources(const ApplyOptions& options, bool direct,
                                          const Checkpoint& target,
                                          std::vector<std::string>& warnings) {
  CompatOptions compat;
  compat.vocab = options.vocab;
  compat.allow_missing = true;
  if (IsTiedTarget(target)) compat.tolerated_extra.push_back("lm_head.weight");
  std::vector<Source> sources;
  if (direct) {
    ASSIGN_OR_RETURN(Source s, OpenDirectSource(options, target, compat, warnings));
    sources.push_back(std::move(s));
  } else {
    for (const VectorTerm& term : options.vectors) {
      ASSIGN_OR_RETURN(Source s, OpenVectorSource(term, target, compat, warnings));
      sources.push_back(std::move(s));
    }
  }
  AddSourceWarnings(sources, warnings);
  return sources;
}

// Source s's term for tensor `name` (scale: the schedule there); nullopt when it contributes
// exactly nothing.
StatusOr<std::optional<Term>> PlanTerm(const Source& s, const std::string& name,
                                       const TensorView& tv, double scale) {
  Term term;
  // The coefficient is formed in double and rounded to f32 once.
  term.alpha = static_cast<float>(s.alpha * scale);
  if (s.compact) {
    term.compact = s.compact.get();
    term.limit = tv.NumElements();
    if (term.alpha == 0.0f) return std::optional<Term>();
    return std::optional<Term>(term);
  }
  ASSIGN_OR_RETURN(term.a, s.a->View(name));
  RETURN_IF_ERROR(CheckFloat(*term.a.info, *s.a));
  term.a_ckpt = s.a.get();
  if (s.b) {
    ASSIGN_OR_RETURN(TensorView bv, s.b->View(name));
    RETURN_IF_ERROR(CheckFloat(*bv.info, *s.b));
    term.b = bv;
    term.b_ckpt = s.b.get();
  }
  auto it = s.check.common_elements.find(name);
  term.limit = it != s.check.common_elements.end() ? it->second : tv.NumElements();
  if (term.alpha == 0.0f) return std::optional<Term>();
  return std::optional<Term>(term);
}

bool HasDelta(const Source& s, const std::string& name) {
  if (!s.compact) return s.a->Has(name);
  return s.compact->Has(name) &&
         std::find(s.check.extra.begin(), s.check.extra.end(), name) == s.check.extra.end();
}

StatusOr<ApplyPlan> PlanApply(const ApplyOptions& options, const Checkpoint& target,
                              const std::vector<Source>& sources, const AlphaSchedule& schedule,
                              ApplyReport& report) {
  ApplyPlan ap;
  for (const std::string& name : target.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView tv, target.View(name));
    TensorPlan plan;
    plan.target = tv;
    const bool is_float = IsSupportedFloat(tv.dtype());
    plan.out = (is_float && options.dtype) ? *options.dtype : tv.dtype();
    const double scale = schedule.For(name);
    for (const Source& s : sources) {
      if (!HasDelta(s, name)) continue;
      if (!is_float) {
        return Unimplemented("{}: target tensor {} has dtype {} but {} has a delta for it",
                             options.model.string(), name, DTypeName(tv.dtype()), s.label);
      }
      ASSIGN_OR_RETURN(std::optional<Term> term, PlanTerm(s, name, tv, scale));
      if (term) plan.terms.push_back(*term);
    }
    plan.raw_copy = plan.terms.empty() && plan.out == tv.dtype();
    if (plan.terms.empty()) {
      ++report.tensors_copied;
    } else {
      ++report.tensors_changed;
    }
    ap.specs.push_back({name, plan.out, tv.shape()});
    ap.plans.push_back(std::move(plan));
  }
  return ap;
}

// The per-chunk kernel of apply: inputs are read with pread into per-worker chunk buffers (see
// RawReader), decoded to f32 a block at a time, summed and rounded once.
class ApplyKernel {
 public:
  ApplyKernel(const Checkpoint& target, CheckpointWriter& writer, size_t workers)
      : target_(target),
        writer_(writer),
        scratch_(workers, 5, kBlock),
        raws_(workers),
        decoded_(workers) {}

  // Opens the files of every input before the parallel phase.
  Status AddInputs(const std::vector<Source>& sources) {
    RETURN_IF_ERROR(reader_.Add(target_));
    for (const Source& s : sources) {
      if (s.a) RETURN_IF_ERROR(reader_.Add(*s.a));
      if (s.b) RETURN_IF_ERROR(reader_.Add(*s.b));
    }
    return OkStatus();
  }

  Status Run(const TensorPlan& plan, size_t tensor, uint64_t begin, uint64_t end, size_t worker) {
    const size_t in_size = DTypeSize(plan.target.dtype());
    std::vector<std::vector<uint8_t>>& raw = raws_[worker];
    raw.resize(1 + 2 * plan.terms.size());
    raw[0].resize((end - begin) * in_size);
    RETURN_IF_ERROR(reader_.Read(target_, plan.target, begin, end - begin, raw[0].data()));
    if (plan.raw_copy) return writer_.Write(tensor, begin * in_size, raw[0].data(), raw[0].size());
    RETURN_IF_ERROR(ReadTerms(plan, begin, end, worker));
    const size_t out_size = DTypeSize(plan.out);
    std::vector<uint8_t>& bytes = scratch_.Bytes(worker);
    bytes.resize((end - begin) * out_size);
    if (IsFusedBF16(plan, end)) {
      // The common direct form on bf16 models, in one fused pass.
      ApplyDifferenceBF16(reinterpret_cast<const uint16_t*>(raw[0].data()),
                          reinterpret_cast<const uint16_t*>(raw[1].data()),
                          reinterpret_cast<const uint16_t*>(raw[2].data()), plan.terms[0].alpha,
                          end - begin, reinterpret_cast<uint16_t*>(bytes.data()));
    } else {
      SumBlocks(plan, begin, end, worker, bytes.data());
    }
    return writer_.Write(tensor, begin * out_size, bytes.data(), bytes.size());
  }

 private:
  static bool IsFusedBF16(const TensorPlan& plan, uint64_t end) {
    return plan.out == DType::kBF16 && plan.target.dtype() == DType::kBF16 &&
           plan.terms.size() == 1 && !plan.terms[0].compact && plan.terms[0].b &&
           plan.terms[0].limit >= end && plan.terms[0].a.dtype() == DType::kBF16 &&
           plan.terms[0].b->dtype() == DType::kBF16;
  }

  // Raw bytes of each term's inputs (compact terms: decoded f32) over its covered range.
  Status ReadTerms(const TensorPlan& plan, uint64_t begin, uint64_t end, size_t worker) {
    std::vector<std::vector<uint8_t>>& raw = raws_[worker];
    std::vector<std::vector<float>>& dec = decoded_[worker];
    dec.resize(plan.terms.size());
    for (size_t k = 0; k < plan.terms.size(); ++k) {
      const Term& term = plan.terms[k];
      const uint64_t lim_end = std::min(end, term.limit);
      if (lim_end <= begin) continue;
      if (term.compact) {
        dec[k].resize(lim_end - begin);
        RETURN_IF_ERROR(
            term.compact->Decode(plan.target.name(), begin, lim_end - begin, dec[k].data()));
        continue;
      }
      raw[1 + 2 * k].resize((lim_end - begin) * DTypeSize(term.a.dtype()));
      RETURN_IF_ERROR(
          reader_.Read(*term.a_ckpt, term.a, begin, lim_end - begin, raw[1 + 2 * k].data()));
      if (term.b) {
        raw[2 + 2 * k].resize((lim_end - begin) * DTypeSize(term.b->dtype()));
        RETURN_IF_ERROR(
            reader_.Read(*term.b_ckpt, *term.b, begin, lim_end - begin, raw[2 + 2 * k].data()));
      }
    }
    return OkStatus();
  }

  // d = Σ α_k·v_k in term order, out = (d == 0) ? t : t + d, rounded once into `bytes`.
  void SumBlocks(const TensorPlan& plan, uint64_t begin, uint64_t end, size_t worker,
                 uint8_t* bytes) {
    const std::vector<std::vector<uint8_t>>& raw = raws_[worker];
    const std::vector<std::vector<float>>& dec = decoded_[worker];
    const size_t in_size = DTypeSize(plan.target.dtype());
    const size_t out_size = DTypeSize(plan.out);
    float* t = scratch_.Get(worker, 0);
    float* d = scratch_.Get(worker, 1);
    float* a = scratch_.Get(worker, 2);
    float* b = scratch_.Get(worker, 3);
    float* o = scratch_.Get(worker, 4);
    for (uint64_t pos = begin; pos < end; pos += kBlock) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
      const uint64_t off = pos - begin;
      DecodeToF32(plan.target.dtype(), raw[0].data() + off * in_size, n, t);
      std::fill(d, d + n, 0.0f);
      for (size_t k = 0; k < plan.terms.size(); ++k) {
        const Term& term = plan.terms[k];
        if (pos >= term.limit) continue;
        const size_t m = static_cast<size_t>(std::min<uint64_t>(n, term.limit - pos));
        if (term.compact) {
          AccumulateScaled(term.alpha, dec[k].data() + off, m, d);
          continue;
        }
        DecodeToF32(term.a.dtype(), raw[1 + 2 * k].data() + off * DTypeSize(term.a.dtype()), m, a);
        if (term.b) {
          DecodeToF32(term.b->dtype(), raw[2 + 2 * k].data() + off * DTypeSize(term.b->dtype()), m,
                      b);
          AccumulateScaledDifference(term.alpha, a, b, m, d);
        } else {
          AccumulateScaled(term.alpha, a, m, d);
        }
      }
      AddDelta(t, d, n, o);
      EncodeFromF32(plan.out, o, n, bytes + off * out_size);
    }
  }

  const Checkpoint& target_;
  CheckpointWriter& writer_;
  RawReader reader_;
  Scratch scratch_;
  std::vector<std::vector<std::vector<uint8_t>>> raws_;   // per worker: target, then a/b per term
  std::vector<std::vector<std::vector<float>>> decoded_;  // per worker: compact terms
};

Status RunApplyJobs(const ApplyOptions& options, const Checkpoint& target,
                    const std::vector<Source>& sources, const ApplyPlan& ap,
                    CheckpointWriter& writer, Progress* progress) {
  ThreadPool pool(options.threads);
  ApplyKernel kernel(target, writer, pool.NumWorkers());
  RETURN_IF_ERROR(kernel.AddInputs(sources));
  if (progress) progress->SetTotal(TotalBytes(ap.specs));
  std::vector<TensorJob> jobs(ap.plans.size());
  for (size_t i = 0; i < ap.plans.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = ap.plans[i].target.NumElements();
    job.progress_units = ap.specs[i].NumBytes();
    job.run = [&, i](uint64_t, uint64_t begin, uint64_t end, size_t worker) {
      return kernel.Run(ap.plans[i], i, begin, end, worker);
    };
  }
  return RunJobs(pool, jobs, progress);
}

std::string ApplyFormula(const std::vector<Source>& sources) {
  std::string formula = "θ_out = round(θ_target";
  for (size_t k = 0; k < sources.size(); ++k) formula += fmt::format(" + α_{}·v_{}", k + 1, k + 1);
  return formula + ")";
}

// Model card with the exact formula, every input and the command line.
ModelCard ApplyCard(const ApplyOptions& options, const Checkpoint& target,
                    const std::vector<Source>& sources, const AlphaSchedule& schedule,
                    std::optional<DType> uniform, const ApplyReport& report) {
  std::vector<std::vector<std::string>> terms;
  for (size_t k = 0; k < sources.size(); ++k) {
    terms.push_back(
        {fmt::format("v_{}", k + 1), sources[k].label, fmt::format("{}", sources[k].alpha)});
  }
  std::vector<std::vector<std::string>> inputs = {
      {"target", Abs(options.model), ConfigSha256(target), DTypesOf(target)}};
  for (const Source& s : sources) {
    if (s.b) {
      inputs.push_back({"base (SFT)", Abs(s.b->path()), ConfigSha256(*s.b), DTypesOf(*s.b)});
      inputs.push_back({"tuned", Abs(s.a->path()), ConfigSha256(*s.a), DTypesOf(*s.a)});
    } else if (s.compact) {
      const auto& md = s.compact->metadata();
      auto sha = md.find("rvec.source.header_sha256");
      inputs.push_back({fmt::format("{} vector", CompactKindName(s.compact->kind())), s.label,
                        sha != md.end() ? sha->second : std::string("-"), "compact"});
    } else {
      inputs.push_back({"vector", Abs(s.a->path()),
                        MetadataValue(*s.a, "rvec.base.config_sha256").value_or("-"),
                        DTypesOf(*s.a)});
    }
  }
  ModelCard card;
  card.FrontMatter(true, {"rvec", "task-arithmetic", "reasoning-vector"})
      .Title(options.out.filename().string())
      .WrittenBy(options.version, "`rvec apply`", "on " + UtcNow())
      .Heading("Formula")
      .Paragraph(fmt::format("`{}`", report.formula))
      .Paragraph(fmt::format(
          "Every input is decoded exactly to f32; the sum is computed in f32 with each "
          "coefficient rounded once to f32 (α_k = term coefficient × schedule); the result is "
          "rounded once to nearest even into the output dtype ({}). Elements whose total delta "
          "is zero keep the target's exact bits.",
          uniform ? std::string(DTypeName(*uniform)) : "per tensor, as the target"))
      .Paragraph(fmt::format("Schedule: {}.", schedule.Describe()))
      .Table({"term", "vector", "coefficient"}, terms)
      .Heading("Inputs")
      .Table({"role", "path", "config sha256", "dtypes"}, inputs)
      .Paragraph(
          "Config, tokenizer, generation config and chat template are copied from the target.");
  if (!options.command_line.empty()) card.Heading("Command").Code("", options.command_line);
  if (!report.warnings.empty()) card.Heading("Warnings").List(report.warnings);
  return card;
}

}  // namespace

nlohmann::json ApplyReport::ToJson() const {
  return nlohmann::json{{"output", out.string()},
                        {"model", model.string()},
                        {"formula", formula},
                        {"tensors", tensors},
                        {"tensors_changed", tensors_changed},
                        {"tensors_copied", tensors_copied},
                        {"bytes_written", bytes_written},
                        {"shards", shards},
                        {"warnings", warnings}};
}

StatusOr<ApplyReport> Apply(const ApplyOptions& options, Progress* progress) {
  const bool direct = options.base.has_value() || options.tuned.has_value();
  RETURN_IF_ERROR(CheckApplyOptions(options, direct));
  ASSIGN_OR_RETURN(Checkpoint target, Checkpoint::Open(options.model));
  ApplyReport report;
  report.model = options.model;
  ASSIGN_OR_RETURN(std::vector<Source> sources,
                   OpenSources(options, direct, target, report.warnings));
  AlphaSchedule schedule = options.schedule;
  schedule.set_num_layers(NumLayersOf(target));
  ASSIGN_OR_RETURN(ApplyPlan ap, PlanApply(options, target, sources, schedule, report));
  // Output dtype for config.json: the uniform dtype of the float outputs, if any.
  const std::optional<DType> uniform = UniformFloatDType(ap.specs);

  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  double ratio = 1.0;
  if (options.dtype && !ap.plans.empty()) {
    ratio = static_cast<double>(DTypeSize(*options.dtype)) /
            static_cast<double>(DTypeSize(ap.plans[0].target.dtype()));
  }
  wopts.max_shard_bytes = ShardBudgetLike(target, ratio);
  wopts.metadata["format"] = "pt";
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, ap.specs, wopts));
  report.bytes_written = TotalBytes(ap.specs);
  RETURN_IF_ERROR(RunApplyJobs(options, target, sources, ap, *writer, progress));

  // Side files come from the target only, never from the vector's sources.
  std::error_code ec;
  if (std::filesystem::is_directory(options.model, ec)) {
    RETURN_IF_ERROR(CopySideFiles(target, writer->staging_dir(), uniform));
  }
  report.formula = ApplyFormula(sources);
  report.tensors = ap.specs.size();
  ASSIGN_OR_RETURN(report.shards, FinishWithCard(*writer, ApplyCard(options, target, sources,
                                                                    schedule, uniform, report)));
  report.out = options.out;
  return report;
}

}  // namespace rvec::merge
