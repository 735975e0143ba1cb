// `rvec serve` requests: OpenAI-shaped JSON bodies parsed and validated into plain structs by pure
// functions (no engine, no sockets), so that unit tests and the fuzz target drive them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rvec::serve {

// An OpenAI-shaped error: {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the offending field; "" is written as null
  std::string type = "invalid_request_error";
  nlohmann::json ToJson() const;
};

ApiError BadRequest(std::string param, std::string message);

// What the parser checks requests against: the served model, not the engine itself.
struct RequestLimits {
  std::string model_name;     // requests naming another model get 404
  size_t vocab_size = 0;      // token ids must be below it (0: unchecked)
  size_t max_positions = 0;   // prompt + max_tokens must fit (0: unchecked)
  int max_n = 16;             // most choices per prompt
  int max_logprobs = 20;      // most top alternatives per position, as vLLM's --max-logprobs
  size_t max_prompts = 1024;  // most prompts in one completions request
};

// Sampling fields shared by both endpoints; unset optionals take the server's defaults.
struct SamplingFields {
  std::optional<int> max_tokens;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// One completions prompt: text to tokenize, or token ids used as they are.
struct PromptInput {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> ids;
};

struct CompletionRequest {
  std::string model;
  std::vector<PromptInput> prompts;
  SamplingFields sampling;
  int logprobs = -1;  // -1: none; N: the top N per token
  bool echo = false;
};

struct ChatRequest {
  std::string model;
  nlohmann::ordered_json messages;  // validated: [{"role": known role, "content": ...}, ...]
  nlohmann::ordered_json tools;     // null when absent
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  bool add_generation_prompt = true;
  SamplingFields sampling;
  bool logprobs = false;
  int top_logprobs = 0;
};

// Parse the JSON body of POST /v1/completions or /v1/chat/completions. On failure fill `error`
// (status and the field named) and return false; `out` is then unspecified.
bool ParseCompletionRequest(std::string_view body, const RequestLimits& limits,
                            CompletionRequest* out, ApiError* error);
bool ParseChatRequest(std::string_view body, const RequestLimits& limits, ChatRequest* out,
                      ApiError* error);

// The check that needs the prompt's length (after tokenizing): prompt + max_tokens within the
// context, naming both numbers. `param` is the field that set the token budget.
std::optional<ApiError> CheckContextLength(size_t prompt_tokens, int max_tokens,
                                           const RequestLimits& limits, const std::string& param);

}  // namespace rvec::serve
