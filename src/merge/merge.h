// `rvec merge`: mergekit-style merges (linear, task arithmetic, TIES, DARE, breadcrumbs) of
// checkpoints, streamed tensor by tensor in f32 with one final rounding.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "merge/compat.h"
#include "merge/merge_config.h"

namespace rvec::merge {

struct MergeOptions {
  std::filesystem::path out;
  // Relative model paths are resolved against the working directory, then this directory.
  std::filesystem::path config_dir;
  bool force = false;
  size_t threads = 0;
  uint64_t seed = 0;  // DARE randomness
  VocabMode vocab = VocabMode::kError;
  std::string version = "unknown";
  std::string config_text;  // recorded in the model card
};

struct MergeReport {
  std::filesystem::path out;
  MergeMethod method = MergeMethod::kLinear;
  std::filesystem::path donor;  // where config and tokenizer came from
  std::vector<std::string> warnings;
  std::vector<std::string> shards;
  uint64_t tensors = 0;

  // What `rvec merge --json` prints (the CLI adds the run time).
  nlohmann::json ToJson() const;
};

StatusOr<MergeReport> RunMerge(const MergeConfig& config, const MergeOptions& options,
                               Progress* progress);

}  // namespace rvec::merge
