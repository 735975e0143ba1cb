// A plain scalar forward pass with f64 arithmetic and no KV cache, written independently of the
// fast path, to check it (tests and `rvec logits --reference`). Slow: tiny models only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/model_config.h"
#include "model/weights.h"

namespace rvec {

// Logits (vocab doubles) for every position of `ids`, recomputing the whole sequence.
std::vector<std::vector<double>> ReferenceForward(const ModelConfig& config,
                                                  const ModelWeights& weights,
                                                  std::span<const int32_t> ids);

}  // namespace rvec
