// Log-probabilities of tokens under the raw distribution, for served logprobs and echo.
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/engine.h"

namespace rvec {

// log_softmax(logits)[id] in double (as the engine's log-likelihoods) and the `top_n` most likely
// tokens, most likely first, ties by lower id.
TokenLogprob ComputeLogprob(const float* logits, size_t vocab, int32_t id, int top_n);

}  // namespace rvec
