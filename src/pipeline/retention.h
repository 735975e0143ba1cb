// Functional retention of a compact reasoning vector: how closely target + ṽ behaves like
// target + v on real prompts (next-token KL divergence and greedy-continuation agreement).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/progress.h"
#include "base/status.h"

namespace rvec::pipeline {

struct RetentionOptions {
  std::filesystem::path target;   // the model both vectors are applied to (α = 1)
  std::filesystem::path dense;    // v
  std::filesystem::path compact;  // ṽ (any form `rvec apply` reads)
  size_t prompts = 16;            // the first N GSM8K test questions, lm-eval's zero-shot form
  size_t gen_tokens = 16;         // greedy tokens generated per prompt by each model
  std::string data_dir;           // default: $RVEC_DATA, else the bundled data
  size_t threads = 0;
};

struct FunctionalRetention {
  size_t prompts = 0;
  uint64_t positions = 0;  // prompt positions the KL is averaged over
  double mean_kl = 0;      // mean over positions of KL(p_{target+v} ‖ p_{target+ṽ}), nats
  double max_kl = 0;
  uint64_t generated = 0;       // tokens compared
  double greedy_agreement = 0;  // share of positions where both greedy continuations agree
  double first_divergence = 0;  // mean index of the first differing greedy token
  nlohmann::json ToJson() const;
};

// Applies v and ṽ to the target in a temporary directory (removed afterwards), loads both, and
// compares them. Deterministic for any thread count (the engine's forward pass is).
StatusOr<FunctionalRetention> MeasureFunctionalRetention(const RetentionOptions& options,
                                                         Progress* progress);

}  // namespace rvec::pipeline
