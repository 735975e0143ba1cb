// The inference engine's public API: load a Hugging Face model directory, generate text and score
// log-likelihoods with continuous batching. Used by the CLI and the evaluation harness.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "text/tokenizer.h"

namespace rvec {

struct EngineOptions {
  size_t threads = 0;                    // 0 = all cores
  size_t max_batch = 16;                 // sequences stepped together
  uint64_t kv_cache_bytes = 1ULL << 30;  // bound on KV-cache memory
  size_t prefill_chunk = 256;            // tokens per prefill step
  // Round activations to bf16 for the AVX512_BF16 dot product on bf16 weights (faster prefill,
  // logits change by ~1e-3..3e-2). Off by default: results then match the f64 reference to f32
  // rounding.
  bool bf16_activations = false;
  // Keep finished sequences' KV (within kv_cache_bytes) to reuse shared prompt prefixes.
  bool prefix_cache = true;
};

// Counters since Load, for logs and benchmarks.
struct EngineStats {
  uint64_t kv_budget_bytes = 0;
  uint64_t kv_peak_bytes = 0;    // most KV memory held at once (active + prefix cache)
  uint64_t tokens_computed = 0;  // positions run through the model
  uint64_t tokens_reused = 0;    // prompt positions copied from a cached shared prefix
  uint64_t forward_steps = 0;
};

struct GenerateOptions {
  int max_new_tokens = 256;
  std::vector<std::string> stop_strings;  // the output is cut before the first one
  std::vector<int32_t> stop_token_ids;    // in addition to every eos id of generation_config.json
  float temperature = 0.0f;               // 0 = greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0 = off
  uint64_t seed = 0;
};

struct GenerateResult {
  std::string text;             // decoded continuation, cut at the stop string (excluded)
  std::vector<int32_t> tokens;  // generated ids
  std::string finish_reason;    // "stop" (eos or stop string) or "length"
};

struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
};

struct LoglikelihoodResult {
  double logprob = 0.0;    // sum of log-probabilities of the continuation tokens
  bool is_greedy = false;  // every continuation token is the argmax
};

class Engine {
 public:
  static StatusOr<std::unique_ptr<Engine>> Load(const std::filesystem::path& model_dir,
                                                const EngineOptions& options);
  virtual ~Engine() = default;

  virtual const Tokenizer& tokenizer() const = 0;
  // Model directory, architecture and the SIMD target in use, for logs and reports.
  virtual std::string Describe() const = 0;

  // Runs all prompts (token ids) through the batched engine. `on_token(i, text)` streams newly
  // final text of prompt i when set. Results are in prompt order and do not depend on batching.
  virtual StatusOr<std::vector<GenerateResult>> GenerateBatch(
      const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
      const std::function<void(size_t, const std::string&)>& on_token, Progress* progress) = 0;

  // lm-eval semantics: the context and continuation are tokenized so that the continuation's
  // tokens are those of encode(context + continuation) after encode(context).
  virtual StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) = 0;

  // Raw logits (vocab_size floats per position): the last position, or every position.
  virtual StatusOr<std::vector<std::vector<float>>> Logits(const std::vector<int32_t>& ids,
                                                           bool all_positions) = 0;

  // Token ids that end generation: every eos id of generation_config.json, config.json and the
  // tokenizer's eos_token.
  virtual std::vector<int32_t> EosTokenIds() const { return {}; }
  virtual EngineStats Stats() const { return {}; }
};

}  // namespace rvec
