// `rvec control`: a norm-matched random vector shaped like a reasoning vector, to test whether a
// gain comes from v's direction or from any perturbation of its size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"

namespace rvec::merge {

enum class ControlMatch { kTensor, kRows };

struct ControlOptions {
  std::filesystem::path like;  // the vector whose names, shapes, dtypes and norms are matched
  std::filesystem::path out;
  uint64_t seed = 0;
  ControlMatch match = ControlMatch::kTensor;
  // Instead of Gaussian noise: a keyed permutation of each tensor's own values.
  bool shuffle = false;
  bool force = false;
  size_t threads = 0;
  std::string version = "unknown";
};

struct ControlReport {
  std::filesystem::path out;
  std::filesystem::path like;
  uint64_t seed = 0;
  std::string kind;   // "gaussian" or "shuffle"
  std::string match;  // "tensor", "rows", or "values" (shuffle)
  std::vector<std::string> warnings;
  std::vector<std::string> shards;
  uint64_t tensors = 0;
  uint64_t elements = 0;
  // Largest relative difference between a written tensor's (or row's) L2 norm and VEC's, after
  // rounding into the stored dtype.
  double max_relative_norm_error = 0;

  // What `rvec control --json` prints (the CLI adds the run time).
  nlohmann::json ToJson() const;
};

StatusOr<ControlReport> MakeControl(const ControlOptions& options, Progress* progress);

// The Gaussian draws of elements [begin, begin + n) of a tensor (pairs of Box-Muller normals
// keyed by (seed, name, element index)), exposed for tests.
void GaussianBlock(uint64_t seed, const std::string& name, uint64_t begin, size_t n, double* out);

}  // namespace rvec::merge
