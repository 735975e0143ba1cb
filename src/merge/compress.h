// `rvec compress`: a reasoning vector made small — low-rank (truncated SVD, written as a PEFT LoRA
// adapter), sparse (largest magnitudes, or DARE's random drop with rescale) or sign (BitDelta: one
// bit per element and an L2-optimal scale per row) — with what each form retains, measured.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/progress.h"
#include "base/status.h"
#include "merge/compact.h"

namespace rvec::merge {

struct CompressOptions {
  std::filesystem::path vector;  // a dense vector (rvec extract) or any float checkpoint
  std::filesystem::path out;
  CompactKind method = CompactKind::kLowRank;
  // lowrank: a fixed rank per matrix, or the smallest rank keeping `energy` of each matrix's
  // squared norm (needs the exact spectrum). `exact` uses the exact SVD for --rank too; otherwise
  // a randomized SVD with `power_iters` power iterations and `oversample` extra columns.
  int64_t rank = 0;
  double energy = 0.0;
  bool exact = false;
  int power_iters = 4;
  int oversample = 16;
  bool keep_rest = false;  // write what LoRA cannot carry as a dense rest/ beside it
  std::string base_model;  // adapter_config.json base_model_name_or_path
  // sparse: fraction of each tensor kept; `dare` drops at random (keep probability = density)
  // and rescales the survivors by 1/density instead of keeping the largest magnitudes.
  double density = 0.0;
  bool dare = false;
  // sign: one scale per row (default) or per tensor.
  bool per_tensor_scale = false;
  DType dtype = DType::kBF16;  // stored factors / values (F32 or BF16)
  uint64_t seed = 0;           // randomized SVD test matrices and DARE draws, keyed by tensor name
  bool force = false;
  size_t threads = 0;
  std::string version = "unknown";
};

// How much of ‖v‖² a group of tensors holds, and how much of it the compact form keeps.
struct RetentionGroup {
  std::string group;   // module kind ("q_proj", ..., "embeddings", "norms") or "layer N"
  double norm2 = 0;    // ‖v‖² of the group
  double err2 = 0;     // ‖v − ṽ‖²
  double dot = 0;      // <v, ṽ>
  double approx2 = 0;  // ‖ṽ‖²
  // 1 − ‖v − ṽ‖²/‖v‖²: the share of the group's squared norm the compact form reproduces.
  double Captured() const { return norm2 > 0 ? 1.0 - err2 / norm2 : 1.0; }
};

struct CompressReport {
  std::filesystem::path out;
  CompactKind method = CompactKind::kLowRank;
  nlohmann::json parameters;
  uint64_t tensors = 0;
  uint64_t bytes_on_disk = 0;
  uint64_t dense_bf16_bytes = 0;  // the same vector stored densely in bf16
  RetentionGroup total;
  std::vector<RetentionGroup> by_kind;
  std::vector<RetentionGroup> by_layer;
  // Low-rank: tensors outside the adapter (norms, biases, embeddings) and their share of ‖v‖².
  std::vector<std::string> not_in_adapter;
  double not_in_adapter_share = 0;
  bool rest_written = false;
  int64_t min_rank = 0, max_rank = 0;  // low-rank: ranks chosen
  std::vector<std::string> warnings;

  double RelativeError() const;
  double Cosine() const;
  nlohmann::json ToJson() const;
};

StatusOr<CompressReport> Compress(const CompressOptions& options, Progress* progress);

// Retention of any compact vector against its dense source (what Compress reports): streamed in
// chunks, deterministic for any thread count.
Status MeasureRetention(const Checkpoint& dense, const CompactVector& compact, size_t threads,
                        CompressReport* report, Progress* progress = nullptr);

// Module kind of a tensor name for the retention table ("q_proj", "embeddings", "norms", ...).
std::string ModuleKindOf(const std::string& tensor_name);

}  // namespace rvec::merge
