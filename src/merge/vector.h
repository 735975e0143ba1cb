// Reasoning vectors: extract v = θ_tuned − θ_base to its own checkpoint, and apply
// θ_target + Σ α_i·v_i (from stored vectors or directly from a base/tuned pair) to a target.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/progress.h"
#include "base/status.h"
#include "merge/compat.h"
#include "merge/schedule.h"

namespace rvec::merge {

struct ExtractOptions {
  std::filesystem::path base;
  std::filesystem::path tuned;
  std::filesystem::path out;
  DType dtype = DType::kF32;
  std::string include;  // regex searched in tensor names; empty = all
  std::string exclude;  // regex; empty = none
  VocabMode vocab = VocabMode::kError;
  bool force = false;
  size_t threads = 0;
  std::string version = "unknown";  // rvec version recorded in the metadata
};

struct ExtractReport {
  std::filesystem::path out;
  std::filesystem::path base;
  std::filesystem::path tuned;
  std::vector<std::string> warnings;
  std::vector<std::string> shards;
  uint64_t tensors = 0;
  uint64_t elements = 0;
  uint64_t skipped_tensors = 0;  // filtered out or not float
  DType dtype = DType::kF32;
  // Loss of a narrower dtype versus the exact f32 difference (zero for f32 output).
  uint64_t changed_elements = 0;
  double relative_l2_error = 0.0;
  double l2_norm = 0.0;  // of the exact difference

  // What `rvec extract --json` prints (the CLI adds the run time).
  nlohmann::json ToJson() const;
};

StatusOr<ExtractReport> Extract(const ExtractOptions& options, Progress* progress);

struct VectorTerm {
  std::filesystem::path path;
  double alpha = 1.0;
};
// "PATH" or "PATH:ALPHA" (the last colon followed by a number splits).
StatusOr<VectorTerm> ParseVectorTerm(const std::string& spec);

struct ApplyOptions {
  std::filesystem::path model;  // the target
  std::filesystem::path out;
  std::vector<VectorTerm> vectors;
  // Direct form: the vector tuned − base is computed on the fly and never stored.
  std::optional<std::filesystem::path> base;
  std::optional<std::filesystem::path> tuned;
  double direct_alpha = 1.0;  // per-term coefficient of the direct form
  // Global schedule; multiplies each term's own coefficient.
  AlphaSchedule schedule;
  std::optional<DType> dtype;  // output dtype of float tensors; default: the target's
  VocabMode vocab = VocabMode::kError;
  bool force = false;
  size_t threads = 0;
  std::string version = "unknown";
  std::string command_line;  // recorded in the model card
};

struct ApplyReport {
  std::filesystem::path out;
  std::filesystem::path model;  // the target
  std::vector<std::string> warnings;
  std::vector<std::string> shards;
  uint64_t tensors = 0;
  uint64_t tensors_changed = 0;
  uint64_t tensors_copied = 0;  // no term touches them (or every coefficient is 0)
  uint64_t bytes_written = 0;
  std::string formula;

  // What `rvec apply --json` prints (the CLI adds the run time).
  nlohmann::json ToJson() const;
};

StatusOr<ApplyReport> Apply(const ApplyOptions& options, Progress* progress);

}  // namespace rvec::merge
