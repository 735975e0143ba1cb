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
#include "merge/provenance.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace {

// Largest shard (in tensor bytes) of `ckpt`, scaled by `ratio`, or 0 when it is one file: the
// output is sharded like its model.
uint64_t ShardBudgetLike(const Checkpoint& ckpt, double ratio) {
  if (!ckpt.is_sharded()) return 0;
  uint64_t largest = 0;
  for (size_t i = 0; i < ckpt.num_shards(); ++i) {
    uint64_t bytes = 0;
    for (const TensorInfo& t : ckpt.shard(i).tensors()) bytes += t.NumBytes();
    largest = std::max(largest, bytes);
  }
  return static_cast<uint64_t>(static_cast<double>(largest) * ratio) + 1;
}

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

StatusOr<ExtractReport> Extract(const ExtractOptions& options, Progress* progress) {
  if (!IsSupportedFloat(options.dtype) ||
      (options.dtype != DType::kF32 && options.dtype != DType::kBF16 &&
       options.dtype != DType::kF16)) {
    return InvalidArgument("--dtype {}: a vector is stored as F32, BF16 or F16",
                           DTypeName(options.dtype));
  }
  ASSIGN_OR_RETURN(Checkpoint base, Checkpoint::Open(options.base));
  ASSIGN_OR_RETURN(Checkpoint tuned, Checkpoint::Open(options.tuned));
  CompatOptions compat;
  compat.vocab = options.vocab;
  ASSIGN_OR_RETURN(CompatResult check, CheckCompatible(base, "BASE", tuned, "TUNED", compat));

  ExtractReport report;
  report.dtype = options.dtype;
  report.warnings = check.warnings;
  if (std::string w = MixedDTypeWarning(base, tuned); !w.empty()) report.warnings.push_back(w);

  std::optional<std::regex> include, exclude;
  if (!options.include.empty()) {
    ASSIGN_OR_RETURN(include, CompileRegex(options.include, "--include"));
  }
  if (!options.exclude.empty()) {
    ASSIGN_OR_RETURN(exclude, CompileRegex(options.exclude, "--exclude"));
  }

  struct Item {
    TensorView base;
    TensorView tuned;
    uint64_t numel;
  };
  std::vector<Item> items;
  std::vector<TensorSpec> specs;
  std::vector<std::string> non_float;
  for (const std::string& name : base.TensorNames()) {
    if (include && !std::regex_search(name, *include)) {
      ++report.skipped_tensors;
      continue;
    }
    if (exclude && std::regex_search(name, *exclude)) {
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
    items.push_back({b, t, numel});
    specs.push_back({name, options.dtype, shape});
  }
  if (!non_float.empty()) {
    report.warnings.push_back(fmt::format(
        "{} non-float tensor(s) are not part of the vector (they have no meaningful difference): "
        "{}",
        non_float.size(), AbbreviatedList(non_float)));
  }
  if (specs.empty()) {
    return InvalidArgument("no tensor of {} is selected (check --include/--exclude)",
                           options.base.string());
  }

  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  uint64_t in_size = 2;
  if (!items.empty()) in_size = DTypeSize(items[0].base.dtype());
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

  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, specs, wopts));

  ThreadPool pool(options.threads);
  const size_t workers = pool.NumWorkers();
  Scratch scratch(workers, 4, kBlock);
  const DType out = options.dtype;
  const size_t out_size = DTypeSize(out);
  const bool narrowing = out != DType::kF32;
  uint64_t total_bytes = 0;
  for (const auto& s : specs) total_bytes += s.NumBytes();
  if (progress) progress->SetTotal(total_bytes);

  NarrowingStats totals;
  double norm2_total = 0;
  std::vector<TensorJob> jobs(items.size());
  std::vector<std::vector<NarrowingStats>> per_chunk(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    TensorJob& job = jobs[i];
    job.numel = item.numel;
    job.progress_units = specs[i].NumBytes();
    per_chunk[i].resize(job.NumChunks());
    job.prepare = nullptr;
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const Item& it = items[i];
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
      per_chunk[i][chunk] = stats;
      RETURN_IF_ERROR(writer->Write(i, begin * out_size, bytes.data(), bytes.size()));
      ReleaseElements(tuned, it.tuned, begin, end);
      ReleaseElements(base, it.base, begin, end);
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      for (const NarrowingStats& s : per_chunk[i]) {
        totals.changed += s.changed;
        totals.err2 += s.err2;
        norm2_total += s.norm2;
      }
      per_chunk[i].clear();
      per_chunk[i].shrink_to_fit();
      return OkStatus();
    };
  }
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));

  report.tensors = specs.size();
  for (const auto& it : items) report.elements += it.numel;
  report.changed_elements = totals.changed;
  report.l2_norm = std::sqrt(norm2_total);
  report.relative_l2_error = norm2_total > 0 ? std::sqrt(totals.err2 / norm2_total) : 0.0;

  // A short card so a vector directory explains itself.
  std::string card = fmt::format(
      "# Reasoning vector\n\nWritten by rvec {} (`rvec extract`) on {}.\n\n"
      "v = θ_tuned − θ_base, computed exactly in f32 from the decoded inputs and stored as {}"
      "{}.\n\nThis is not a model: apply it with `rvec apply --model TARGET --vector {}:ALPHA`.\n\n"
      "| role | path | dtypes |\n|---|---|---|\n| base | {} | {} |\n| tuned | {} | {} |\n\n"
      "{} tensors, {} elements, L2 norm {:.6g}.\n",
      options.version, md["rvec.created"], DTypeName(out),
      narrowing ? fmt::format(" (rounded once to nearest even: {} elements changed, relative L2 "
                              "error {:.3g})",
                              report.changed_elements, report.relative_l2_error)
                : "",
      options.out.filename().string(), Abs(options.base), DTypesOf(base), Abs(options.tuned),
      DTypesOf(tuned), report.tensors, report.elements, report.l2_norm);
  if (!options.include.empty() || !options.exclude.empty()) {
    card +=
        fmt::format("\nFilters: include `{}`, exclude `{}`.\n", options.include, options.exclude);
  }
  for (const auto& w : report.warnings) card += "\n> warning: " + w + "\n";
  RETURN_IF_ERROR(WriteFileAtomic(writer->staging_dir() / "README.md", card));
  report.shards = writer->ShardNames();
  RETURN_IF_ERROR(writer->Finish());
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

StatusOr<ApplyReport> Apply(const ApplyOptions& options, Progress* progress) {
  const bool direct = options.base.has_value() || options.tuned.has_value();
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
  ASSIGN_OR_RETURN(Checkpoint target, Checkpoint::Open(options.model));
  ApplyReport report;

  // Sources: one checkpoint per vector, or the base/tuned pair.
  struct Source {
    std::unique_ptr<Checkpoint> a;           // vector or tuned
    std::unique_ptr<Checkpoint> b;           // base (direct form) or null
    std::unique_ptr<CompactVector> compact;  // a compact vector (LoRA, sparse, sign) instead of a
    double alpha = 1.0;
    std::string label;
    CompatResult check;
  };
  std::vector<Source> sources;
  const bool tied_target =
      target.config() && target.config()->tie_word_embeddings && !target.Has("lm_head.weight");
  CompatOptions compat;
  compat.vocab = options.vocab;
  compat.allow_missing = true;
  if (tied_target) compat.tolerated_extra.push_back("lm_head.weight");
  if (direct) {
    Source s;
    ASSIGN_OR_RETURN(Checkpoint b, Checkpoint::Open(*options.base));
    ASSIGN_OR_RETURN(Checkpoint a, Checkpoint::Open(*options.tuned));
    CompatOptions pair;
    pair.vocab = options.vocab;
    ASSIGN_OR_RETURN(CompatResult pair_check, CheckCompatible(b, "BASE", a, "TUNED", pair));
    for (auto& w : pair_check.warnings) report.warnings.push_back(w);
    if (!pair_check.common_elements.empty()) {
      return Unimplemented(
          "BASE and TUNED have different vocabulary rows; extract the vector first with "
          "`rvec extract --vocab-mismatch=common`, then apply it");
    }
    if (std::string w = MixedDTypeWarning(b, a); !w.empty()) report.warnings.push_back(w);
    ASSIGN_OR_RETURN(s.check, CheckCompatible(target, "TARGET", a, "TUNED", compat));
    s.a = std::make_unique<Checkpoint>(std::move(a));
    s.b = std::make_unique<Checkpoint>(std::move(b));
    s.alpha = options.direct_alpha;
    s.label = fmt::format("({} − {})", Abs(*options.tuned), Abs(*options.base));
    sources.push_back(std::move(s));
  } else {
    for (const VectorTerm& term : options.vectors) {
      Source s;
      if (IsCompactVector(term.path)) {
        ASSIGN_OR_RETURN(s.compact, CompactVector::Open(term.path));
        ASSIGN_OR_RETURN(s.check, CheckCompactAgainst(target, *s.compact, tied_target));
        s.alpha = term.alpha;
        s.label = Abs(term.path);
        sources.push_back(std::move(s));
        continue;
      }
      ASSIGN_OR_RETURN(Checkpoint v, Checkpoint::Open(term.path));
      const std::string role = fmt::format("VECTOR {}", term.path.string());
      ASSIGN_OR_RETURN(s.check, CheckCompatible(target, "TARGET", v, "VECTOR", compat));
      if (auto kind = MetadataValue(v, "rvec.kind"); kind && *kind == "control_vector") {
        report.warnings.push_back(fmt::format(
            "{} is a norm-matched random control vector, not a learned one", term.path.string()));
      }
      s.a = std::make_unique<Checkpoint>(std::move(v));
      s.alpha = term.alpha;
      s.label = Abs(term.path);
      sources.push_back(std::move(s));
    }
  }
  for (Source& s : sources) {
    for (auto& w : s.check.warnings) report.warnings.push_back(w);
    if (!s.check.missing.empty()) {
      report.warnings.push_back(
          fmt::format("{} tensor(s) of the target have no delta in {} and are copied unchanged: {}",
                      s.check.missing.size(), s.label, AbbreviatedList(s.check.missing)));
    }
    for (const std::string& name : s.check.extra) {
      report.warnings.push_back(fmt::format(
          "the target ties lm_head to embed_tokens (tie_word_embeddings: true, no lm_head.weight), "
          "so the {} delta from {} is NOT applied; embed_tokens gets only its own delta. Untie "
          "the target first if you want the output head changed",
          name, s.label));
    }
  }

  AlphaSchedule schedule = options.schedule;
  schedule.set_num_layers(NumLayersOf(target));

  struct Term {
    TensorView a;
    const Checkpoint* a_ckpt = nullptr;
    const CompactVector* compact = nullptr;  // decoded per chunk instead of read
    std::optional<TensorView> b;
    const Checkpoint* b_ckpt = nullptr;
    float alpha = 0;
    uint64_t limit = 0;  // elements covered (shared vocabulary rows)
  };
  struct Plan {
    TensorView target;
    DType out;
    std::vector<Term> terms;
    bool raw_copy = false;
  };
  std::vector<Plan> plans;
  std::vector<TensorSpec> specs;
  for (const std::string& name : target.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView tv, target.View(name));
    Plan plan;
    plan.target = tv;
    const bool is_float = IsSupportedFloat(tv.dtype());
    plan.out = (is_float && options.dtype) ? *options.dtype : tv.dtype();
    const double scale = schedule.For(name);
    for (Source& s : sources) {
      const bool has =
          s.compact ? (s.compact->Has(name) && std::find(s.check.extra.begin(), s.check.extra.end(),
                                                         name) == s.check.extra.end())
                    : s.a->Has(name);
      if (!has) continue;
      if (!is_float) {
        return Unimplemented("{}: target tensor {} has dtype {} but {} has a delta for it",
                             options.model.string(), name, DTypeName(tv.dtype()), s.label);
      }
      Term term;
      if (s.compact) {
        term.compact = s.compact.get();
        term.alpha = static_cast<float>(s.alpha * scale);
        term.limit = tv.NumElements();
        if (term.alpha == 0.0f) continue;
        plan.terms.push_back(term);
        continue;
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
      // The coefficient is formed in double and rounded to f32 once.
      term.alpha = static_cast<float>(s.alpha * scale);
      auto it = s.check.common_elements.find(name);
      term.limit = it != s.check.common_elements.end() ? it->second : tv.NumElements();
      if (term.alpha == 0.0f) continue;  // contributes exactly nothing
      plan.terms.push_back(term);
    }
    plan.raw_copy = plan.terms.empty() && plan.out == tv.dtype();
    if (plan.terms.empty()) {
      ++report.tensors_copied;
    } else {
      ++report.tensors_changed;
    }
    specs.push_back({name, plan.out, tv.shape()});
    plans.push_back(std::move(plan));
  }

  // Output dtype for config.json: the uniform dtype of the float outputs, if any.
  std::optional<DType> uniform;
  bool mixed = false;
  for (const auto& s : specs) {
    if (!IsSupportedFloat(s.dtype)) continue;
    if (!uniform) uniform = s.dtype;
    mixed |= *uniform != s.dtype;
  }

  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  double ratio = 1.0;
  if (options.dtype && !plans.empty()) {
    ratio = static_cast<double>(DTypeSize(*options.dtype)) /
            static_cast<double>(DTypeSize(plans[0].target.dtype()));
  }
  wopts.max_shard_bytes = ShardBudgetLike(target, ratio);
  wopts.metadata["format"] = "pt";
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, specs, wopts));

  ThreadPool pool(options.threads);
  const size_t workers = pool.NumWorkers();
  Scratch scratch(workers, 5, kBlock);
  // Inputs are read with pread into per-worker chunk buffers (see RawReader).
  RawReader reader;
  RETURN_IF_ERROR(reader.Add(target));
  for (const Source& s : sources) {
    if (s.a) RETURN_IF_ERROR(reader.Add(*s.a));
    if (s.b) RETURN_IF_ERROR(reader.Add(*s.b));
  }
  std::vector<std::vector<std::vector<uint8_t>>> raws(workers);
  std::vector<std::vector<std::vector<float>>> decoded(workers);  // compact terms, per chunk
  uint64_t total_bytes = 0;
  for (const auto& s : specs) total_bytes += s.NumBytes();
  report.bytes_written = total_bytes;
  if (progress) progress->SetTotal(total_bytes);

  std::vector<TensorJob> jobs(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = plans[i].target.NumElements();
    job.progress_units = specs[i].NumBytes();
    job.run = [&, i](uint64_t, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const Plan& plan = plans[i];
      const size_t in_size = DTypeSize(plan.target.dtype());
      std::vector<std::vector<uint8_t>>& raw = raws[worker];
      raw.resize(1 + 2 * plan.terms.size());
      raw[0].resize((end - begin) * in_size);
      RETURN_IF_ERROR(reader.Read(target, plan.target, begin, end - begin, raw[0].data()));
      if (plan.raw_copy) {
        return writer->Write(i, begin * in_size, raw[0].data(), raw[0].size());
      }
      std::vector<std::vector<float>>& dec = decoded[worker];
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
            reader.Read(*term.a_ckpt, term.a, begin, lim_end - begin, raw[1 + 2 * k].data()));
        if (term.b) {
          raw[2 + 2 * k].resize((lim_end - begin) * DTypeSize(term.b->dtype()));
          RETURN_IF_ERROR(
              reader.Read(*term.b_ckpt, *term.b, begin, lim_end - begin, raw[2 + 2 * k].data()));
        }
      }
      const size_t out_size = DTypeSize(plan.out);
      std::vector<uint8_t>& bytes = scratch.Bytes(worker);
      bytes.resize((end - begin) * out_size);
      if (plan.out == DType::kBF16 && plan.target.dtype() == DType::kBF16 &&
          plan.terms.size() == 1 && !plan.terms[0].compact && plan.terms[0].b &&
          plan.terms[0].limit >= end && plan.terms[0].a.dtype() == DType::kBF16 &&
          plan.terms[0].b->dtype() == DType::kBF16) {
        // The common direct form on bf16 models, in one fused pass.
        ApplyDifferenceBF16(reinterpret_cast<const uint16_t*>(raw[0].data()),
                            reinterpret_cast<const uint16_t*>(raw[1].data()),
                            reinterpret_cast<const uint16_t*>(raw[2].data()), plan.terms[0].alpha,
                            end - begin, reinterpret_cast<uint16_t*>(bytes.data()));
        return writer->Write(i, begin * out_size, bytes.data(), bytes.size());
      }
      float* t = scratch.Get(worker, 0);
      float* d = scratch.Get(worker, 1);
      float* a = scratch.Get(worker, 2);
      float* b = scratch.Get(worker, 3);
      float* o = scratch.Get(worker, 4);
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
          DecodeToF32(term.a.dtype(), raw[1 + 2 * k].data() + off * DTypeSize(term.a.dtype()), m,
                      a);
          if (term.b) {
            DecodeToF32(term.b->dtype(), raw[2 + 2 * k].data() + off * DTypeSize(term.b->dtype()),
                        m, b);
            AccumulateScaledDifference(term.alpha, a, b, m, d);
          } else {
            AccumulateScaled(term.alpha, a, m, d);
          }
        }
        AddDelta(t, d, n, o);
        EncodeFromF32(plan.out, o, n, bytes.data() + off * out_size);
      }
      return writer->Write(i, begin * out_size, bytes.data(), bytes.size());
    };
  }
  RETURN_IF_ERROR(RunJobs(pool, jobs, progress));

  // Side files come from the target only, never from the vector's sources.
  std::error_code ec;
  if (std::filesystem::is_directory(options.model, ec)) {
    RETURN_IF_ERROR(CopySideFiles(target, writer->staging_dir(), mixed ? std::nullopt : uniform));
  }

  // Model card with the exact formula.
  std::string terms_table;
  std::string formula = "θ_out = round(θ_target";
  for (size_t k = 0; k < sources.size(); ++k) {
    const Source& s = sources[k];
    formula += fmt::format(" + α_{}·v_{}", k + 1, k + 1);
    terms_table += fmt::format("| v_{} | {} | {} |\n", k + 1, s.label, s.alpha);
  }
  formula += ")";
  report.formula = formula;
  std::string card = fmt::format(
      "---\nlibrary_name: transformers\ntags:\n- rvec\n- task-arithmetic\n- reasoning-vector\n"
      "---\n\n# {}\n\nWritten by rvec {} (`rvec apply`) on {}.\n\n## Formula\n\n`{}`\n\n"
      "Every input is decoded exactly to f32; the sum is computed in f32 with each coefficient "
      "rounded once to f32 (α_k = term coefficient × schedule); the result is rounded once to "
      "nearest even into the output dtype ({}). Elements whose total delta is zero keep the "
      "target's exact bits.\n\nSchedule: {}.\n\n| term | vector | coefficient |\n|---|---|---|\n"
      "{}\n## Inputs\n\n| role | path | config sha256 | dtypes |\n|---|---|---|---|\n"
      "| target | {} | {} | {} |\n",
      options.out.filename().string(), options.version, UtcNow(), formula,
      mixed || !uniform ? "per tensor, as the target" : std::string(DTypeName(*uniform)),
      schedule.Describe(), terms_table, Abs(options.model), ConfigSha256(target), DTypesOf(target));
  for (const Source& s : sources) {
    if (s.b) {
      card += fmt::format("| base (SFT) | {} | {} | {} |\n", Abs(s.b->path()), ConfigSha256(*s.b),
                          DTypesOf(*s.b));
      card += fmt::format("| tuned | {} | {} | {} |\n", Abs(s.a->path()), ConfigSha256(*s.a),
                          DTypesOf(*s.a));
    } else if (s.compact) {
      card += fmt::format("| {} vector | {} | {} | compact |\n", CompactKindName(s.compact->kind()),
                          s.label,
                          s.compact->metadata().count("rvec.source.header_sha256")
                              ? s.compact->metadata().at("rvec.source.header_sha256")
                              : std::string("-"));
    } else {
      card +=
          fmt::format("| vector | {} | {} | {} |\n", Abs(s.a->path()),
                      MetadataValue(*s.a, "rvec.base.config_sha256").value_or("-"), DTypesOf(*s.a));
    }
  }
  card += "\nConfig, tokenizer, generation config and chat template are copied from the target.\n";
  if (!options.command_line.empty()) {
    card += fmt::format("\n## Command\n\n```\n{}\n```\n", options.command_line);
  }
  if (!report.warnings.empty()) {
    card += "\n## Warnings\n\n";
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
