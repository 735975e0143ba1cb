// `rvec serve` responses: the OpenAI/vLLM JSON shapes of completions, chat completions, their
// streamed chunks and log-probabilities, and server-sent-event framing. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/engine.h"
#include "text/tokenizer.h"

namespace rvec::serve {

// vLLM writes -inf log-probabilities as -9999.0 (JSON has no infinity).
double ClampLogprob(double logprob);

// "cmpl-<24 hex>" / "chatcmpl-<24 hex>": unique per response.
std::string NewResponseId(const std::string& prefix);

struct Usage {
  size_t prompt_tokens = 0;
  size_t completion_tokens = 0;
  nlohmann::json ToJson() const;
};

// The legacy completions logprobs object {tokens, token_logprobs, top_logprobs, text_offset}.
// With echo, `prompt` holds the prompt ids and `prompt_logprobs` the engine's entries for
// positions 1.. (the first position gets null, as in vLLM); `generated` follows. top_logprobs
// maps decoded token text to logprob: the top `top_n` plus the token itself. text_offset counts
// characters (code points) from `offset0`.
nlohmann::json CompletionLogprobs(const Tokenizer& tok, const std::vector<int32_t>& prompt,
                                  const std::vector<TokenLogprob>& prompt_logprobs,
                                  const std::vector<TokenLogprob>& generated, int top_n,
                                  size_t offset0);

// The chat shape {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
nlohmann::json ChatLogprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& generated,
                            int top_n);

// One finished choice of either endpoint.
struct Choice {
  size_t index = 0;
  std::string text;
  std::string finish_reason;
  nlohmann::json logprobs;  // null when not requested
};

struct ResponseHeader {
  std::string id;
  int64_t created = 0;  // unix seconds
  std::string model;
};

nlohmann::json CompletionResponse(const ResponseHeader& h, const std::vector<Choice>& choices,
                                  const Usage& usage);
nlohmann::json ChatResponse(const ResponseHeader& h, const std::vector<Choice>& choices,
                            const Usage& usage);

// Streamed chunks. finish_reason "" is written as null; `logprobs` null when not requested.
nlohmann::json CompletionChunk(const ResponseHeader& h, size_t index, const std::string& text,
                               const std::string& finish_reason, const nlohmann::json& logprobs);
// `delta` is {"role": "assistant", "content": ""} first, then {"content": text}, then {}.
nlohmann::json ChatChunk(const ResponseHeader& h, size_t index, const nlohmann::json& delta,
                         const std::string& finish_reason, const nlohmann::json& logprobs);
// The final usage-only chunk of stream_options.include_usage (choices empty).
nlohmann::json UsageChunk(const ResponseHeader& h, const char* object, const Usage& usage);

// GET /v1/models.
nlohmann::json ModelList(const std::string& name, size_t max_model_len, int64_t created);

// JSON text for a response body (invalid UTF-8 replaced, never an exception).
std::string Dump(const nlohmann::json& j);
// "data: <json>\n\n", and the terminating "data: [DONE]\n\n".
std::string SseEvent(const nlohmann::json& j);
std::string SseDone();

}  // namespace rvec::serve
