// The fast forward pass: a batch of tokens from any number of sequences, each at its own
// position, through every layer, writing K/V into the sequences' caches.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/threading.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/weights.h"
#include "ops/matmul.h"

namespace rvec {

struct TokenInput {
  int32_t token = 0;
  size_t pos = 0;            // position in its sequence
  SequenceKv* kv = nullptr;  // the sequence's cache; positions [0, pos) must be filled
  bool want_logits = false;  // compute this token's next-token logits
};

// Stateless apart from scratch buffers: the caller owns weights, caches and the pool. Not
// thread-safe (one Forward at a time).
class Transformer {
 public:
  Transformer(const ModelConfig& config, const ModelWeights& weights, ThreadPool* pool,
              MatMulPrecision precision = MatMulPrecision::kExact);

  // Tokens of one sequence must appear in increasing position order. Writes K/V of every token
  // at (kv, pos) and returns vocab floats per token with want_logits, in input order.
  void Forward(std::span<const TokenInput> tokens, std::vector<float>* logits);

  const ModelConfig& config() const { return c_; }
  void set_precision(MatMulPrecision p) { precision_ = p; }

 private:
  // Attention of every query head of every token in layer `l` over its sequence's cache (q_ in,
  // att_ out); `max_ctx` is the scores_ stride per worker.
  void Attend(std::span<const TokenInput> tokens, size_t l, size_t max_ctx);

  const ModelConfig& c_;
  const ModelWeights& w_;
  ThreadPool* pool_;
  MatMulPrecision precision_;
  // Activations, [tokens, width] each.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, tmp_, rope_;
  std::vector<float> scores_;  // per worker
};

}  // namespace rvec
