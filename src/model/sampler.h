// Next-token choice: greedy, or temperature -> top-k -> top-p sampling (transformers' warper
// order) from a counter-based random stream, so a draw depends only on (seed, stream, step).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rvec {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0: off
  uint64_t seed = 0;
};

// Index of the largest logit; the lowest index wins ties (as torch.argmax).
int32_t Argmax(const float* logits, size_t vocab);

// A uniform double in [0, 1) for (seed, stream, step), by SplitMix64 mixing.
double UniformAt(uint64_t seed, uint64_t stream, uint64_t step);

// Picks the next token. `stream` separates sequences, `step` is the token's index among the
// generated ones; the same arguments always give the same token.
int32_t SampleToken(const float* logits, size_t vocab, const SamplingParams& params,
                    uint64_t stream, uint64_t step);

}  // namespace rvec
