// `rvec stats` and `rvec similarity`: norms, sparsity and cosines of vectors, per tensor, per
// layer and in total, accumulated in double in a fixed chunk order (same numbers at any thread
// count), plus a hand-written SVG chart of per-layer relative norms by module group.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "merge/schedule.h"

namespace rvec::merge {

struct NormAccum {
  double sum_sq = 0;         // Σ v²
  double target_sum_sq = 0;  // Σ θ² of the matching target tensor (0 without --model)
  double max_abs = 0;
  uint64_t zeros = 0;
  uint64_t nonfinite = 0;
  uint64_t numel = 0;
  void Add(const NormAccum& o);
};

struct TensorStats {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
  std::optional<int64_t> layer;
  ModuleGroup group = ModuleGroup::kOther;
  NormAccum acc;
  bool has_target = false;
};

struct LayerStats {
  int64_t layer = 0;
  NormAccum total;
  std::map<ModuleGroup, NormAccum> groups;
};

struct StatsReport {
  std::string vector_path;
  std::string model_path;  // empty without --model
  std::string kind;        // rvec.kind metadata ("reasoning_vector", "control_vector", "")
  std::vector<TensorStats> tensors;
  std::vector<LayerStats> layers;
  std::map<ModuleGroup, NormAccum> groups;  // all tensors by group, including non-layer ones
  NormAccum total;
  std::vector<std::string> warnings;
};

StatusOr<StatsReport> ComputeStats(const std::filesystem::path& vector,
                                   const std::optional<std::filesystem::path>& model,
                                   size_t threads, Progress* progress);
std::string StatsJson(const StatsReport& report);
std::string StatsText(const StatsReport& report, bool per_tensor);
std::string StatsSvg(const StatsReport& report);

struct CosineAccum {
  double dot = 0, a_sq = 0, b_sq = 0;
  uint64_t numel = 0;
  void Add(const CosineAccum& o) {
    dot += o.dot;
    a_sq += o.a_sq;
    b_sq += o.b_sq;
    numel += o.numel;
  }
  double Cosine() const;  // NaN when either norm is zero
};

struct SimilarityReport {
  std::string a_path, b_path;
  std::vector<std::pair<std::string, CosineAccum>> tensors;
  std::map<int64_t, CosineAccum> layers;  // -1: tensors outside the layers
  std::map<ModuleGroup, CosineAccum> groups;
  CosineAccum total;
  std::vector<std::string> only_in_a, only_in_b;
  std::vector<std::string> warnings;
};

StatusOr<SimilarityReport> ComputeSimilarity(const std::filesystem::path& a,
                                             const std::filesystem::path& b, size_t threads,
                                             Progress* progress);
std::string SimilarityJson(const SimilarityReport& report);
std::string SimilarityText(const SimilarityReport& report, bool per_tensor);

}  // namespace rvec::merge
