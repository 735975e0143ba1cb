// Model backends for evaluation: batched generation and log-likelihood requests, answered by the
// rvec engine (local), an OpenAI-compatible server (openai) or saved responses (replay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "eval/task.h"

namespace rvec {
class Engine;
class Tokenizer;
}  // namespace rvec

namespace rvec::eval {

// Where a request comes from: replay looks responses up by (task, doc_id, index).
struct RequestKey {
  std::string task;
  size_t doc_id = 0;
  size_t index = 0;  // choice index for log-likelihood requests, sample index for generation
};

struct GenerationRequest {
  RequestKey key;
  std::string prompt;
  GenerationKwargs kwargs;  // until, max_gen_toks, temperature (0 = greedy), top_p, do_sample
  // Sampling (kwargs.do_sample): the run's --sampling-seed and this (task, doc, sample)'s random
  // stream, SampleStream(key). A draw depends on nothing else, so samples do not change with
  // batching, chunking, thread count or request order.
  uint64_t seed = 0;
  uint64_t stream = 0;
};

// The random stream of one generation sample: a 64-bit hash of (task name, doc_id, sample index).
uint64_t SampleStream(const RequestKey& key);

struct GenerationResult {
  std::string text;           // cut before the first stop string
  std::string finish_reason;  // "stop", "length" or "" when unknown (replay)
};

struct LoglikelihoodRequest {
  RequestKey key;
  std::string context;
  std::string continuation;
};

struct LoglikelihoodResult {
  double logprob = 0.0;    // sum of log-probabilities of the continuation tokens
  bool is_greedy = false;  // every continuation token is the argmax
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "local", "openai", "replay".
  virtual std::string Kind() const = 0;
  // Provenance recorded in results.json (endpoint, served model, engine description...).
  virtual nlohmann::json Config() const = 0;

  // Results in request order. All requests of a task arrive together so that a backend can batch
  // them; `progress` (may be null) advances once per finished request.
  virtual StatusOr<std::vector<GenerationResult>> Generate(
      const std::vector<GenerationRequest>& requests, Progress* progress) = 0;
  virtual StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) = 0;
};

// ---- replay ------------------------------------------------------------------------------------
// Reads saved responses: JSON Lines whose objects carry "task", "doc_id" and either
//   "output" (generation; with --samples K, "outputs": [K answers] or one line per sample with
//   "sample": s), or "loglikelihoods": [..] (+ optional "is_greedy": [..]) per doc, or
//   "index" + "loglikelihood" per choice.
// rvec's own samples_<task>.jsonl files ("raw_output" / "raw_outputs" / "loglikelihoods") are
// accepted, and a directory means all samples_*.jsonl of a run directory, so a finished run can be
// re-scored. A request with no saved response is an error naming it.
StatusOr<std::unique_ptr<Backend>> MakeReplayBackend(const std::filesystem::path& responses);

// ---- OpenAI-compatible completions API ----------------------------------------------------------
// Log-likelihoods go through /v1/completions with echo + logprobs (vLLM, SGLang, rvec serve) after
// a one-time probe checks that the server echoes one logprob per prompt token; llama.cpp's
// llama-server, which does not, is scored through its native /completion, one forced token per
// request. A server that can do neither is an error naming the task and the server.
struct OpenAiOptions {
  std::string endpoint;      // "http://127.0.0.1:8000/v1" (the /completions path is appended)
  std::string served_model;  // "model" field of each request
  std::string api_key;       // sent as "Authorization: Bearer ..." when non-empty
  size_t concurrency = 4;    // requests in flight
  size_t batch_size = 1;     // prompts per request
  double timeout_s = 300.0;
  int max_retries = 3;  // attempts per request (lm-eval: 3), exponential backoff 1..10 s
  double backoff_initial_s = 1.0;
  double backoff_max_s = 10.0;
  uint64_t seed = 1234;
  // When set, log-likelihood requests are tokenized locally (lm-eval _encode_pair) and sent as
  // token ids, and the continuation slice is taken by token count. Without it the text is sent and
  // the split is found from the echoed text offsets.
  const Tokenizer* tokenizer = nullptr;
  bool add_bos = false;  // local-completions default: no BOS
  // The server software: "auto" asks it (GET /v1/models owned_by, llama.cpp's /props, TGI's
  // /info); or vllm, llamacpp, sglang, tgi, rvec, openai (a server rvec knows nothing about).
  // It picks the sampler fields sent and the log-likelihood route, and is recorded in Config().
  std::string server_kind = "auto";
  // The model's context in tokens (0: no truncation). With a tokenizer, prompts are cut from the
  // left as lm-eval does: generation keeps max_length - max_gen_toks context tokens;
  // log-likelihood keeps the last max_length + 1 tokens of context + continuation on llama.cpp's
  // native route (lm-eval's _loglikelihood_tokens, as the local backend) and the last
  // max_length - 1 on the echo route (so that the echoed prompt and the generated token fit).
  size_t max_length = 0;
  // llama.cpp native route: reuse the KV cache of the previous request's prompt. Much faster for
  // multi-token continuations; llama.cpp says results may then differ in the last bits.
  bool llamacpp_cache_prompt = true;
};
StatusOr<std::unique_ptr<Backend>> MakeOpenAiBackend(const OpenAiOptions& options);

// ---- local rvec engine ----
// Each call's requests go into one Engine::GenerateBatch / Engine::LogLikelihood (the evaluation
// runner hands over a task's requests in resumable chunks). The engine is borrowed. With
// `max_length` (the model's context, e.g. max_position_embeddings) generation prompts are
// left-truncated to max_length - max_gen_toks tokens, as lm-eval's HF backend does.
StatusOr<std::unique_ptr<Backend>> MakeLocalBackend(Engine* engine, size_t max_length = 0);

}  // namespace rvec::eval
