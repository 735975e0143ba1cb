// Control vectors: Gaussian noise rescaled to VEC's per-tensor or per-row L2 norms (two streaming
// passes: norms, then scaled draws), or a keyed permutation of VEC's own values.
#include "merge/control.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "base/fs.h"
#include "base/rng.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "merge/compat.h"
#include "merge/kernels.h"
#include "merge/model_card.h"
#include "merge/provenance.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace {
constexpr uint64_t kGaussianStream = 1;
constexpr uint64_t kShuffleStream = 2;
}  // namespace

void GaussianBlock(uint64_t seed, const std::string& name, uint64_t begin, size_t n, double* out) {
  const CounterRng rng(seed, name, kGaussianStream);
  size_t i = 0;
  uint64_t e = begin;
  double z0, z1;
  if (n > 0 && (e & 1)) {
    rng.Normal2(e >> 1, &z0, &z1);
    out[i++] = z1;
    ++e;
  }
  for (; i + 1 < n; i += 2, e += 2) {
    rng.Normal2(e >> 1, &z0, &z1);
    out[i] = z0;
    out[i + 1] = z1;
  }
  if (i < n) {
    rng.Normal2(e >> 1, &z0, &z1);
    out[i] = z0;
  }
}

namespace {

struct ControlItem {
  TensorView v;
  uint64_t numel;
  uint64_t row_len;
  uint64_t rows;
  uint64_t chunk;
  std::vector<double> scale;      // per row (or one for the tensor)
  std::vector<double> target_sq;  // per row (or one)
};

struct ControlPlan {
  std::vector<ControlItem> items;
  std::vector<TensorSpec> specs;  // one per item
};

// Every float tensor of VEC, chunked in whole rows when rows are matched.
StatusOr<ControlPlan> PlanControl(const ControlOptions& options, const Checkpoint& like,
                                  std::vector<std::string>& warnings) {
  ControlPlan plan;
  std::vector<std::string> skipped;
  for (const std::string& name : like.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView v, like.View(name));
    if (!IsSupportedFloat(v.dtype())) {
      skipped.push_back(name);
      continue;
    }
    ControlItem it;
    it.v = v;
    it.numel = v.NumElements();
    const bool rows =
        options.match == ControlMatch::kRows && v.shape().size() >= 2 && v.shape()[0] > 0;
    it.row_len =
        rows ? it.numel / static_cast<uint64_t>(v.shape()[0]) : std::max<uint64_t>(it.numel, 1);
    if (it.row_len == 0) it.row_len = 1;
    it.rows = rows ? static_cast<uint64_t>(v.shape()[0]) : 1;
    // Chunks hold whole rows so each row's sums come from one task (fixed order).
    it.chunk =
        rows ? it.row_len * std::max<uint64_t>(1, kChunkElements / it.row_len) : kChunkElements;
    plan.items.push_back(std::move(it));
    plan.specs.push_back({name, v.dtype(), v.shape()});
  }
  if (!skipped.empty()) {
    warnings.push_back(fmt::format("{} non-float tensor(s) are left out: {}", skipped.size(),
                                   AbbreviatedList(skipped)));
  }
  if (plan.specs.empty()) return InvalidArgument("{} has no float tensor", options.like.string());
  return plan;
}

CheckpointWriterOptions ControlWriterOptions(const ControlOptions& options, const Checkpoint& like,
                                             const ControlReport& report) {
  CheckpointWriterOptions wopts;
  wopts.force = options.force;
  wopts.max_shard_bytes = ShardBudgetLike(like);
  auto& md = wopts.metadata;
  AddCommonMetadata(md, "control_vector", like, options.version);
  AddInputMetadata(md, "like", like);
  md["rvec.seed"] = std::to_string(options.seed);
  md["rvec.control"] = report.kind;
  md["rvec.match"] = report.match;
  md["rvec.dtype"] = DTypesOf(like);
  return wopts;
}

// Shuffle: chunk [begin, end) of a keyed permutation of the tensor's own stored values.
void ShuffleChunk(const ControlItem& it, uint64_t seed, uint64_t begin, uint64_t end,
                  std::vector<uint8_t>& bytes) {
  const size_t size = DTypeSize(it.v.dtype());
  const KeyedPermutation perm(it.numel, CounterRng(seed, it.v.name(), kShuffleStream).key());
  bytes.resize((end - begin) * size);
  for (uint64_t e = begin; e < end; ++e) {
    std::memcpy(bytes.data() + (e - begin) * size, it.v.data + perm(e) * size, size);
  }
}

// Row slot of element e of a chunk starting at `begin` (0 when the tensor is matched whole).
size_t SlotOf(const ControlItem& it, uint64_t begin, uint64_t e) {
  return it.rows > 1 ? static_cast<size_t>((e - begin) / it.row_len) : 0;
}

// First pass: VEC's and the noise's squared norms per row (per chunk, combined in chunk order),
// giving each row's scale.
void MatchNorms(ControlItem& it, uint64_t seed, ThreadPool& pool, uint64_t num_chunks) {
  const bool per_row = it.rows > 1;
  std::vector<std::vector<double>> vsq(num_chunks), zsq(num_chunks);
  ParallelTasks(pool, num_chunks, [&](size_t c) {
    const uint64_t begin = c * it.chunk;
    const uint64_t end = std::min(it.numel, begin + it.chunk);
    const size_t slots = per_row ? static_cast<size_t>((end - begin) / it.row_len) : 1;
    std::vector<double>& vs = vsq[c];
    std::vector<double>& zs = zsq[c];
    vs.assign(slots, 0.0);
    zs.assign(slots, 0.0);
    std::vector<float> v(kBlock);
    std::vector<double> z(kBlock);
    for (uint64_t pos = begin; pos < end; pos += kBlock) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
      ReadF32(it.v, pos, n, v.data());
      GaussianBlock(seed, it.v.name(), pos, n, z.data());
      for (size_t e = 0; e < n; ++e) {
        const size_t slot = SlotOf(it, begin, pos + e);
        const double x = v[e];
        vs[slot] += x * x;
        zs[slot] += z[e] * z[e];
      }
    }
  });
  it.scale.assign(it.rows, 0.0);
  it.target_sq.assign(it.rows, 0.0);
  std::vector<double> ztot(it.rows, 0.0);
  for (size_t c = 0; c < num_chunks; ++c) {
    const uint64_t first_row = per_row ? c * it.chunk / it.row_len : 0;
    for (size_t s = 0; s < vsq[c].size(); ++s) {
      it.target_sq[first_row + s] += vsq[c][s];
      ztot[first_row + s] += zsq[c][s];
    }
  }
  for (uint64_t r = 0; r < it.rows; ++r) {
    it.scale[r] = ztot[r] > 0 ? std::sqrt(it.target_sq[r]) / std::sqrt(ztot[r]) : 0.0;
  }
}

// Second pass: scaled draws rounded into VEC's dtype; returns the stored values' squared norm
// per row slot of the chunk.
std::vector<double> DrawChunk(const ControlItem& it, uint64_t seed, uint64_t begin, uint64_t end,
                              Scratch& scratch, double* z, size_t worker) {
  const bool per_row = it.rows > 1;
  const size_t size = DTypeSize(it.v.dtype());
  std::vector<uint8_t>& bytes = scratch.Bytes(worker);
  bytes.resize((end - begin) * size);
  float* out = scratch.Get(worker, 0);
  float* back = scratch.Get(worker, 1);
  const size_t slots = per_row ? static_cast<size_t>((end - begin) / it.row_len) : 1;
  std::vector<double> ach(slots, 0.0);
  for (uint64_t pos = begin; pos < end; pos += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, end - pos));
    GaussianBlock(seed, it.v.name(), pos, n, z);
    for (size_t e = 0; e < n; ++e) {
      const uint64_t row = per_row ? (pos + e) / it.row_len : 0;
      out[e] = static_cast<float>(z[e] * it.scale[row]);
    }
    uint8_t* dst = bytes.data() + (pos - begin) * size;
    EncodeFromF32(it.v.dtype(), out, n, dst);
    DecodeToF32(it.v.dtype(), dst, n, back);
    for (size_t e = 0; e < n; ++e) {
      ach[SlotOf(it, begin, pos + e)] += static_cast<double>(back[e]) * back[e];
    }
  }
  return ach;
}

// Largest relative error of a tensor's written row norms, from the chunks' sums in chunk order.
double NormError(const ControlItem& it, const std::vector<std::vector<double>>& achieved) {
  const bool per_row = it.rows > 1;
  std::vector<double> got(it.rows, 0.0);
  for (size_t c = 0; c < achieved.size(); ++c) {
    const uint64_t first_row = per_row ? c * it.chunk / it.row_len : 0;
    for (size_t s = 0; s < achieved[c].size(); ++s) got[first_row + s] += achieved[c][s];
  }
  double worst = 0;
  for (uint64_t r = 0; r < it.rows; ++r) {
    const double want = std::sqrt(it.target_sq[r]);
    if (want <= 0) continue;
    worst = std::max(worst, std::fabs(std::sqrt(got[r]) - want) / want);
  }
  return worst;
}

Status RunControlJobs(const ControlOptions& options, const Checkpoint& like, ControlPlan& plan,
                      CheckpointWriter& writer, Progress* progress, ControlReport& report) {
  ThreadPool pool(options.threads);
  const size_t workers = pool.NumWorkers();
  Scratch scratch(workers, 2, kBlock);
  std::vector<std::vector<double>> gauss(workers, std::vector<double>(kBlock));
  if (progress) progress->SetTotal(TotalBytes(plan.specs));
  std::vector<ControlItem>& items = plan.items;
  std::vector<TensorJob> jobs(items.size());
  // Per chunk: sums per row inside the chunk (or one sum), filled by tasks, combined in order.
  std::vector<std::vector<std::vector<double>>> achieved(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    TensorJob& job = jobs[i];
    job.numel = items[i].numel;
    job.chunk_elements = items[i].chunk;
    job.progress_units = plan.specs[i].NumBytes();
    if (options.shuffle) {
      job.run = [&, i](uint64_t, uint64_t begin, uint64_t end, size_t worker) -> Status {
        std::vector<uint8_t>& bytes = scratch.Bytes(worker);
        ShuffleChunk(items[i], options.seed, begin, end, bytes);
        return writer.Write(i, begin * DTypeSize(items[i].v.dtype()), bytes.data(), bytes.size());
      };
      job.done = [&, i]() -> Status {
        ReleaseElements(like, items[i].v, 0, items[i].numel);
        return OkStatus();
      };
      continue;
    }
    const uint64_t num_chunks = job.NumChunks();
    job.prepare = [&, i, num_chunks]() -> Status {
      MatchNorms(items[i], options.seed, pool, num_chunks);
      achieved[i].assign(num_chunks, {});
      return OkStatus();
    };
    job.run = [&, i](uint64_t chunk, uint64_t begin, uint64_t end, size_t worker) -> Status {
      const ControlItem& it = items[i];
      achieved[i][chunk] =
          DrawChunk(it, options.seed, begin, end, scratch, gauss[worker].data(), worker);
      const std::vector<uint8_t>& bytes = scratch.Bytes(worker);
      RETURN_IF_ERROR(writer.Write(i, begin * DTypeSize(it.v.dtype()), bytes.data(), bytes.size()));
      ReleaseElements(like, it.v, begin, end);
      return OkStatus();
    };
    job.done = [&, i]() -> Status {
      report.max_relative_norm_error =
          std::max(report.max_relative_norm_error, NormError(items[i], achieved[i]));
      achieved[i].clear();
      achieved[i].shrink_to_fit();
      items[i].scale.clear();
      items[i].scale.shrink_to_fit();
      return OkStatus();
    };
  }
  return RunJobs(pool, jobs, progress);
}

ModelCard ControlCard(const ControlOptions& options, const ControlReport& report,
                      const std::string& created) {
  const char* unit = options.match == ControlMatch::kRows ? "row" : "tensor";
  ModelCard card;
  card.Title("Control vector")
      .WrittenBy(options.version, "`rvec control`", "on " + created)
      .Paragraph(options.shuffle
                     ? "Each tensor is a keyed pseudo-random permutation of the original tensor's "
                       "own values (same value distribution and norm, no learned structure)."
                     : fmt::format("Each {} is Gaussian noise scaled to the L2 norm of the same {} "
                                   "of the original vector (largest relative norm error after "
                                   "rounding: {:.3g}).",
                                   unit, unit, report.max_relative_norm_error))
      .Paragraph(fmt::format(
          "Same tensor names, shapes and dtypes as {}; seed {}. Use it exactly like the vector "
          "it imitates (`rvec apply --vector THIS:ALPHA`): a gain that this control also "
          "produces is not specific to the learned direction.",
          std::filesystem::absolute(options.like).string(), options.seed));
  return card;
}

}  // namespace

nlohmann::json ControlReport::ToJson() const {
  return nlohmann::json{
      {"output", out.string()}, {"like", like.string()},
      {"seed", seed},           {"kind", kind},
      {"match", match},         {"tensors", tensors},
      {"elements", elements},   {"max_relative_norm_error", max_relative_norm_error},
      {"shards", shards},       {"warnings", warnings}};
}

StatusOr<ControlReport> MakeControl(const ControlOptions& options, Progress* progress) {
  ASSIGN_OR_RETURN(Checkpoint like, Checkpoint::Open(options.like));
  ControlReport report;
  report.like = options.like;
  report.seed = options.seed;
  report.kind = options.shuffle ? "shuffle" : "gaussian";
  report.match =
      options.shuffle ? "values" : (options.match == ControlMatch::kRows ? "rows" : "tensor");
  if (like.config()) {
    report.warnings.push_back(fmt::format(
        "{} has a config.json: it looks like a model rather than a vector; the control then "
        "matches the model's weight norms",
        options.like.string()));
  }
  ASSIGN_OR_RETURN(ControlPlan plan, PlanControl(options, like, report.warnings));
  const CheckpointWriterOptions wopts = ControlWriterOptions(options, like, report);
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, plan.specs, wopts));
  RETURN_IF_ERROR(RunControlJobs(options, like, plan, *writer, progress, report));

  const std::string& created = wopts.metadata.at("rvec.created");
  report.tensors = plan.specs.size();
  for (const auto& it : plan.items) report.elements += it.numel;
  ASSIGN_OR_RETURN(report.shards, FinishWithCard(*writer, ControlCard(options, report, created)));
  report.out = options.out;
  return report;
}

}  // namespace rvec::merge
