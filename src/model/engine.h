// The inference engine's public API: load a Hugging Face model directory, generate text and score
// log-likelihoods with continuous batching. Used by the CLI and the evaluation harness.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/dtype.h"
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
  // KV-cache dtype for generation (kBF16 or kF32): bf16 halves the memory and the bytes attention
  // reads. Log-likelihoods and Logits() always use f32 KV, so that scores stay reproducible
  // across backends (docs/status.md has the measured logits difference).
  DType kv_dtype = DType::kBF16;
};

// Peak memory a generation batch is forecast to need, and the batch it runs at: the engine lowers
// the batch until the KV fits kv_cache_bytes and KV plus scratch fit in MemAvailable.
struct MemoryForecast {
  size_t requested_batch = 0;    // max_batch, capped by the number of prompts
  size_t batch = 0;              // sequences stepped together after lowering
  uint64_t weight_bytes = 0;     // mapped weights (file-backed, shared with the page cache)
  uint64_t kv_bytes = 0;         // bound on the KV of any `batch` sequences, shared prompts once
  uint64_t kv_saved_bytes = 0;   // KV the shared prompts save there over private copies
  uint64_t scratch_bytes = 0;    // activations, attention scores and logits
  uint64_t total_bytes = 0;      // weights + KV + scratch
  uint64_t kv_budget_bytes = 0;  // EngineOptions::kv_cache_bytes
  uint64_t available_bytes = 0;  // /proc/meminfo MemAvailable (0 = unknown)
  std::string kv_dtype;
  std::string ToString() const;  // one line for logs
};

// Counters since Load, for logs and benchmarks.
struct EngineStats {
  uint64_t kv_budget_bytes = 0;
  uint64_t kv_peak_bytes = 0;    // most KV memory held at once (active + prefix cache)
  uint64_t tokens_computed = 0;  // positions run through the model
  uint64_t tokens_reused = 0;    // prompt positions taken from a shared prefix, not recomputed
  uint64_t tokens_shared = 0;    // of those, positions referenced in place rather than copied
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
  // Random stream of each prompt (sampling draws depend only on seed, stream and step). Empty: the
  // prompt's index. Callers that batch differently (the evaluation harness: one stream per
  // document and sample) set it so that samples do not depend on batching or order.
  std::vector<uint64_t> streams;
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

// ---- Serving: continuous batching across independent callers (rvec serve) ----------------------

// A token's log-probability under the model's raw distribution (log-softmax of the logits, before
// temperature or top-p, as vLLM and OpenAI report it) and the most likely tokens at its position.
struct TokenLogprob {
  int32_t id = 0;
  double logprob = 0.0;
  std::vector<std::pair<int32_t, double>> top;  // most likely first, ties by lower id
};

// Receives one streamed request's events, on the engine's thread: keep them short and never call
// back into the engine. OnDone is always the last call, exactly once.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // When StreamRequest::prompt_logprobs >= 0: one entry per prompt token after the first (the
  // first has no context to be scored from), before any OnToken.
  virtual void OnPromptLogprobs(std::vector<TokenLogprob> /*logprobs*/) {}
  // One generated token (the eos or stop id that ends the sequence included, as vLLM reports it)
  // and the text that became final with it: may be empty while a possible stop string or an
  // incomplete UTF-8 sequence is held back. `token.top` is filled when StreamRequest::logprobs > 0.
  virtual void OnToken(const TokenLogprob& /*token*/, const std::string& /*text*/) {}
  // The finished result ("stop", "length", or "cancelled" after Cancelled()), or why it failed.
  // result.text is the whole text: a tail held back until the end (a partial stop string that
  // did not complete) is the part OnToken has not delivered. result.tokens ends with the stop id
  // when one ended the sequence (unlike GenerateBatch's), so it matches the OnToken calls.
  virtual void OnDone(StatusOr<GenerateResult> result) = 0;
  // Polled between steps (from the engine's thread): true frees the request's slot and KV at once.
  virtual bool Cancelled() const { return false; }
};

struct StreamRequest {
  std::vector<int32_t> prompt;
  // Sampling and stops. options.streams, when set, holds this request's one random stream.
  GenerateOptions options;
  int logprobs = -1;         // -1: none; N >= 0: each generated token's logprob and the top N
  int prompt_logprobs = -1;  // -1: none; N >= 0: prompt tokens' logprobs (f32 KV) and the top N
  std::shared_ptr<StreamSink> sink;
};

// The thread-safe hand-over between callers and Engine::Serve.
class StreamQueue {
 public:
  // Queues a request; FailedPrecondition once closed. Requests are admitted in submission order.
  Status Submit(StreamRequest request);
  // Stops accepting. drain: in-flight and queued requests finish, then Serve returns; otherwise
  // they end at the next step with finish_reason "cancelled" and Serve returns.
  void Close(bool drain);
  size_t Waiting() const;  // queued, not yet taken by the engine

  // For Engine::Serve: moves queued requests into `out`; blocks while there are none and the queue
  // is open when `block` is set. Returns false once the queue is closed and empty.
  bool Take(std::vector<StreamRequest>* out, bool block);
  bool Closed() const;
  bool Draining() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamRequest> queue_;
  bool closed_ = false;
  bool drain_ = true;
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
  // The memory forecast GenerateBatch would act on for these prompts (InvalidArgument, with the
  // numbers, when not even one sequence fits), and the one the last GenerateBatch used.
  virtual StatusOr<MemoryForecast> ForecastGenerate(const std::vector<std::vector<int32_t>>&,
                                                    const GenerateOptions&) const {
    return Unimplemented("no memory forecast for this engine");
  }
  virtual MemoryForecast LastForecast() const { return {}; }
  virtual EngineStats Stats() const { return {}; }

  // Runs requests from `queue` with continuous batching until it is closed (and, when draining,
  // idle). A request joins the running batch at the next step; one that cannot be served (bad ids,
  // prompt + max_new_tokens over the context, KV budget) fails alone through its sink. Serve is the
  // only engine call allowed while it runs; it returns an error only for a failure of the engine
  // itself, after failing every request in flight.
  virtual Status Serve(StreamQueue& /*queue*/) {
    return Unimplemented("this engine cannot serve streamed requests");
  }
  // Model context length (max_position_embeddings).
  virtual size_t MaxPositions() const { return 0; }
};

}  // namespace rvec
