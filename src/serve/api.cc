// Parsing and validation of OpenAI completions and chat requests into plain structs.
#include "serve/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace rvec::serve {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// The parsers stop at the first error: each step returns false after filling `err`.
struct Ctx {
  const RequestLimits& limits;
  ApiError* err;
  bool Fail(std::string param, std::string message) {
    *err = BadRequest(std::move(param), std::move(message));
    return false;
  }
};

// JSON null is "not given", as OpenAI's clients send unset fields.
const ordered_json* Field(const ordered_json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool ReadInt(Ctx& c, const ordered_json& body, const char* name, std::optional<int>* out) {
  const ordered_json* v = Field(body, name);
  if (v == nullptr) return true;
  if (!v->is_number_integer()) return c.Fail(name, fmt::format("{} must be an integer", name));
  const int64_t x = v->get<int64_t>();
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) {
    return c.Fail(name, fmt::format("{} = {} is out of range", name, x));
  }
  *out = static_cast<int>(x);
  return true;
}

bool ReadFloat(Ctx& c, const ordered_json& body, const char* name, std::optional<float>* out) {
  const ordered_json* v = Field(body, name);
  if (v == nullptr) return true;
  if (!v->is_number()) return c.Fail(name, fmt::format("{} must be a number", name));
  const double x = v->get<double>();
  if (!std::isfinite(x)) return c.Fail(name, fmt::format("{} must be finite", name));
  *out = static_cast<float>(x);
  return true;
}

bool ReadBool(Ctx& c, const ordered_json& body, const char* name, bool* out) {
  const ordered_json* v = Field(body, name);
  if (v == nullptr) return true;
  if (!v->is_boolean()) return c.Fail(name, fmt::format("{} must be true or false", name));
  *out = v->get<bool>();
  return true;
}

bool ReadModel(Ctx& c, const ordered_json& body, std::string* out) {
  const ordered_json* v = Field(body, "model");
  if (v == nullptr) return true;
  if (!v->is_string()) return c.Fail("model", "model must be a string");
  *out = v->get<std::string>();
  if (!c.limits.model_name.empty() && *out != c.limits.model_name) {
    c.Fail("model", fmt::format("The model `{}` does not exist (this server serves `{}`)", *out,
                                c.limits.model_name));
    c.err->status = 404;
    return false;
  }
  return true;
}

// Fields this server cannot honour are refused rather than silently ignored, unless they hold
// their neutral value.
bool RefuseUnsupported(Ctx& c, const ordered_json& body) {
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    const ordered_json* v = Field(body, name);
    if (v != nullptr && !(v->is_number() && v->get<double>() == 0.0)) {
      return c.Fail(name, fmt::format("{} is not supported by rvec serve (only 0)", name));
    }
  }
  const ordered_json* bias = Field(body, "logit_bias");
  if (bias != nullptr && !(bias->is_object() && bias->empty())) {
    return c.Fail("logit_bias", "logit_bias is not supported by rvec serve");
  }
  const ordered_json* suffix = Field(body, "suffix");
  if (suffix != nullptr && !(suffix->is_string() && suffix->get<std::string>().empty())) {
    return c.Fail("suffix", "suffix is not supported by rvec serve");
  }
  const ordered_json* best_of = Field(body, "best_of");
  if (best_of != nullptr && !(best_of->is_number_integer() && best_of->get<int64_t>() == 1)) {
    return c.Fail("best_of", "best_of is not supported by rvec serve (only 1)");
  }
  return true;
}

bool ReadStop(Ctx& c, const ordered_json& body, SamplingFields* s) {
  if (const ordered_json* v = Field(body, "stop")) {
    if (v->is_string()) {
      s->stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const auto& e : *v) {
        if (!e.is_string()) return c.Fail("stop", "stop must be a string or a list of strings");
        s->stop.push_back(e.get<std::string>());
      }
    } else {
      return c.Fail("stop", "stop must be a string or a list of strings");
    }
    for (const std::string& stop : s->stop) {
      if (stop.empty()) return c.Fail("stop", "stop strings must not be empty");
    }
  }
  if (const ordered_json* v = Field(body, "stop_token_ids")) {
    if (!v->is_array()) return c.Fail("stop_token_ids", "stop_token_ids must be a list of ids");
    for (const auto& e : *v) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
          (c.limits.vocab_size > 0 && e.get<uint64_t>() >= c.limits.vocab_size)) {
        return c.Fail("stop_token_ids",
                      fmt::format("stop_token_ids: {} is not a token id (vocabulary size {})",
                                  e.dump(), c.limits.vocab_size));
      }
      s->stop_token_ids.push_back(e.get<int32_t>());
    }
  }
  return true;
}

bool ReadStream(Ctx& c, const ordered_json& body, SamplingFields* s) {
  if (!ReadBool(c, body, "stream", &s->stream)) return false;
  if (const ordered_json* v = Field(body, "stream_options")) {
    if (!v->is_object()) return c.Fail("stream_options", "stream_options must be an object");
    if (!s->stream) return c.Fail("stream_options", "stream_options needs stream: true");
    if (!ReadBool(c, *v, "include_usage", &s->include_usage)) {
      c.err->param = "stream_options.include_usage";
      return false;
    }
  }
  return true;
}

// The sampling fields both endpoints share; `max_tokens_name` is the budget field already read.
bool ReadSampling(Ctx& c, const ordered_json& body, SamplingFields* s) {
  if (!ReadFloat(c, body, "temperature", &s->temperature)) return false;
  if (s->temperature && *s->temperature < 0) {
    return c.Fail("temperature", fmt::format("temperature must be >= 0 (got {})",
                                             static_cast<double>(*s->temperature)));
  }
  if (!ReadFloat(c, body, "top_p", &s->top_p)) return false;
  if (s->top_p && !(*s->top_p > 0 && *s->top_p <= 1)) {
    return c.Fail("top_p",
                  fmt::format("top_p must be in (0, 1] (got {})", static_cast<double>(*s->top_p)));
  }
  if (!ReadInt(c, body, "top_k", &s->top_k)) return false;
  if (s->top_k && *s->top_k < -1) {
    return c.Fail("top_k",
                  fmt::format("top_k must be -1, 0 (off) or positive (got {})", *s->top_k));
  }
  if (const ordered_json* v = Field(body, "seed")) {
    if (!v->is_number_integer()) return c.Fail("seed", "seed must be an integer");
    s->seed =
        v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  std::optional<int> n;
  if (!ReadInt(c, body, "n", &n)) return false;
  if (n) {
    if (*n < 1) return c.Fail("n", fmt::format("n must be at least 1 (got {})", *n));
    if (*n > c.limits.max_n) {
      return c.Fail("n", fmt::format("n = {} is over this server's limit of {} (--max-n)", *n,
                                     c.limits.max_n));
    }
    s->n = *n;
  }
  return ReadStop(c, body, s) && ReadStream(c, body, s) && RefuseUnsupported(c, body);
}

bool ReadMaxTokens(Ctx& c, const ordered_json& body, const char* name, SamplingFields* s) {
  std::optional<int> v;
  if (!ReadInt(c, body, name, &v)) return false;
  if (!v) return true;
  if (*v < 0) return c.Fail(name, fmt::format("{} must be >= 0 (got {})", name, *v));
  s->max_tokens = v;
  return true;
}

bool ReadIds(Ctx& c, const ordered_json& list, std::vector<int32_t>* ids) {
  for (const auto& e : list) {
    if (!e.is_number_integer()) {
      return c.Fail("prompt", "prompt: a token-id list must hold only integers");
    }
    const bool negative = e.is_number_integer() && !e.is_number_unsigned() && e.get<int64_t>() < 0;
    if (negative || (c.limits.vocab_size > 0 && e.get<uint64_t>() >= c.limits.vocab_size) ||
        e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return c.Fail("prompt", fmt::format("prompt: token id {} is outside the vocabulary (size {})",
                                          e.dump(), c.limits.vocab_size));
    }
    ids->push_back(e.get<int32_t>());
  }
  if (ids->empty()) return c.Fail("prompt", "prompt: a token-id list must not be empty");
  return true;
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...].
bool ReadPrompts(Ctx& c, const ordered_json& body, std::vector<PromptInput>* out) {
  const ordered_json* p = Field(body, "prompt");
  if (p == nullptr) return c.Fail("prompt", "prompt is required");
  if (p->is_string()) {
    out->push_back({true, p->get<std::string>(), {}});
    return true;
  }
  const char* shapes =
      "prompt must be a string, a list of strings, a list of token ids or a list of token-id lists";
  if (!p->is_array()) return c.Fail("prompt", shapes);
  if (p->empty()) return c.Fail("prompt", "prompt must not be an empty list");
  if (p->front().is_number()) {
    PromptInput in;
    in.is_text = false;
    if (!ReadIds(c, *p, &in.ids)) return false;
    out->push_back(std::move(in));
    return true;
  }
  if (p->size() > c.limits.max_prompts) {
    return c.Fail("prompt", fmt::format("prompt: {} prompts in one request, over the limit of {}",
                                        p->size(), c.limits.max_prompts));
  }
  const bool strings = p->front().is_string();
  for (const auto& e : *p) {
    if (strings && e.is_string()) {
      out->push_back({true, e.get<std::string>(), {}});
    } else if (!strings && e.is_array()) {
      PromptInput in;
      in.is_text = false;
      if (!ReadIds(c, e, &in.ids)) return false;
      out->push_back(std::move(in));
    } else {
      return c.Fail("prompt", shapes);
    }
  }
  return true;
}

bool ParseObject(std::string_view body, ordered_json* out, ApiError* error) {
  *out = ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    *error = BadRequest("", "the request body is not valid JSON");
    return false;
  }
  if (!out->is_object()) {
    *error = BadRequest("", "the request body must be a JSON object");
    return false;
  }
  return true;
}

// Chat content: a string, or a list of {"type": "text", "text": ...} parts joined by newlines
// (vLLM's "string" content format); null only where a message carries tool calls instead.
bool NormalizeContent(Ctx& c, ordered_json& message, const std::string& where) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) {
    if (message.contains("tool_calls")) return true;
    return c.Fail("messages", where + ".content is required");
  }
  if (it->is_string()) return true;
  if (!it->is_array()) {
    return c.Fail("messages", where + ".content must be a string or a list of text parts");
  }
  std::string joined;
  for (size_t k = 0; k < it->size(); ++k) {
    const ordered_json& part = (*it)[k];
    const std::string at = fmt::format("{}.content[{}]", where, k);
    if (!part.is_object() || !part.contains("type") || part["type"] != "text") {
      return c.Fail("messages", at + ": only {\"type\": \"text\"} parts are supported");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return c.Fail("messages", at + ".text must be a string");
    }
    if (k) joined.push_back('\n');
    joined += part["text"].get<std::string>();
  }
  *it = joined;
  return true;
}

bool ReadMessages(Ctx& c, const ordered_json& body, ordered_json* out) {
  const ordered_json* m = Field(body, "messages");
  if (m == nullptr) return c.Fail("messages", "messages is required");
  if (!m->is_array()) return c.Fail("messages", "messages must be a list of message objects");
  if (m->empty()) return c.Fail("messages", "messages must not be empty");
  *out = *m;
  for (size_t i = 0; i < out->size(); ++i) {
    ordered_json& msg = (*out)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) return c.Fail("messages", where + " must be an object");
    if (!msg.contains("role") || !msg["role"].is_string()) {
      return c.Fail("messages", where + ".role must be a string");
    }
    const std::string role = msg["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
        role != "developer") {
      return c.Fail("messages",
                    fmt::format("{}.role: unknown role \"{}\" (expected system, user, assistant, "
                                "tool or developer)",
                                where, role));
    }
    if (!NormalizeContent(c, msg, where)) return false;
  }
  return true;
}

bool ReadChatExtras(Ctx& c, const ordered_json& body, ChatRequest* out) {
  if (!ReadBool(c, body, "add_generation_prompt", &out->add_generation_prompt)) return false;
  if (const ordered_json* v = Field(body, "chat_template_kwargs")) {
    if (!v->is_object()) {
      return c.Fail("chat_template_kwargs", "chat_template_kwargs must be an object");
    }
    out->template_kwargs = *v;
  }
  if (const ordered_json* v = Field(body, "tools")) {
    if (!v->is_array()) return c.Fail("tools", "tools must be a list");
    out->tools = *v;
  }
  if (!ReadBool(c, body, "logprobs", &out->logprobs)) return false;
  std::optional<int> top;
  if (!ReadInt(c, body, "top_logprobs", &top)) return false;
  if (top) {
    if (*top < 0 || *top > c.limits.max_logprobs) {
      return c.Fail("top_logprobs", fmt::format("top_logprobs must be in [0, {}] (got {})",
                                                c.limits.max_logprobs, *top));
    }
    if (!out->logprobs && *top > 0) {
      return c.Fail("top_logprobs", "top_logprobs needs logprobs: true");
    }
    out->top_logprobs = *top;
  }
  return true;
}

}  // namespace

nlohmann::json ApiError::ToJson() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", nullptr}}}};
}

ApiError BadRequest(std::string param, std::string message) {
  ApiError e;
  e.status = 400;
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

bool ParseCompletionRequest(std::string_view body, const RequestLimits& limits,
                            CompletionRequest* out, ApiError* error) {
  ordered_json j;
  if (!ParseObject(body, &j, error)) return false;
  Ctx c{limits, error};
  if (!ReadModel(c, j, &out->model) || !ReadPrompts(c, j, &out->prompts) ||
      !ReadMaxTokens(c, j, "max_tokens", &out->sampling) || !ReadSampling(c, j, &out->sampling) ||
      !ReadBool(c, j, "echo", &out->echo)) {
    return false;
  }
  std::optional<int> logprobs;
  if (const ordered_json* v = Field(j, "logprobs"); v != nullptr && v->is_boolean()) {
    return c.Fail("logprobs", "logprobs must be an integer (the number of top tokens), not a bool");
  }
  if (!ReadInt(c, j, "logprobs", &logprobs)) return false;
  if (logprobs) {
    if (*logprobs < 0 || *logprobs > limits.max_logprobs) {
      return c.Fail("logprobs", fmt::format("logprobs must be in [0, {}] (got {})",
                                            limits.max_logprobs, *logprobs));
    }
    out->logprobs = *logprobs;
  }
  // As vLLM: nothing to generate is only meaningful when the prompt is echoed (scoring).
  if (out->sampling.max_tokens && *out->sampling.max_tokens == 0 && !out->echo) {
    return c.Fail("max_tokens", "max_tokens must be at least 1 unless echo is true");
  }
  if (out->echo && out->sampling.stream) {
    return c.Fail("echo", "echo is not supported with stream: true");
  }
  return true;
}

bool ParseChatRequest(std::string_view body, const RequestLimits& limits, ChatRequest* out,
                      ApiError* error) {
  ordered_json j;
  if (!ParseObject(body, &j, error)) return false;
  Ctx c{limits, error};
  if (!ReadModel(c, j, &out->model) || !ReadMessages(c, j, &out->messages) ||
      !ReadMaxTokens(c, j, "max_tokens", &out->sampling) ||
      !ReadMaxTokens(c, j, "max_completion_tokens", &out->sampling) ||
      !ReadSampling(c, j, &out->sampling) || !ReadChatExtras(c, j, out)) {
    return false;
  }
  if (out->sampling.max_tokens && *out->sampling.max_tokens == 0) {
    const char* name = Field(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    return c.Fail(name, fmt::format("{} must be at least 1", name));
  }
  return true;
}

std::optional<ApiError> CheckContextLength(size_t prompt_tokens, int max_tokens,
                                           const RequestLimits& limits, const std::string& param) {
  if (limits.max_positions == 0) return std::nullopt;
  if (prompt_tokens + static_cast<size_t>(std::max(max_tokens, 0)) <= limits.max_positions) {
    return std::nullopt;
  }
  return BadRequest(
      param, fmt::format("This model's maximum context length is {} tokens; the prompt has {} "
                         "tokens and {} = {} more were requested ({} in all)",
                         limits.max_positions, prompt_tokens, param, max_tokens,
                         prompt_tokens + static_cast<size_t>(std::max(max_tokens, 0))));
}

}  // namespace rvec::serve
