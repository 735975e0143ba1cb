// Builds the OpenAI/vLLM response, chunk and logprobs JSON of `rvec serve`.
#include "serve/response.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <span>

namespace rvec::serve {
namespace {

using json = nlohmann::json;

json Nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string TokenText(const Tokenizer& tok, int32_t id) {
  return tok.Decode(std::span<const int32_t>(&id, 1));
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json Bytes(const Tokenizer& tok, int32_t id) {
  const std::string raw = tok.DecodeBytes(std::span<const int32_t>(&id, 1));
  json out = json::array();
  for (unsigned char c : raw) out.push_back(static_cast<int>(c));
  return out;
}

// The top `top_n` alternatives plus the token itself (vLLM always adds it), keyed by text.
json TopDict(const Tokenizer& tok, const TokenLogprob& t, int top_n) {
  json top = json::object();
  const size_t n = std::min(t.top.size(), static_cast<size_t>(std::max(top_n, 0)));
  for (size_t k = 0; k < n; ++k)
    top[TokenText(tok, t.top[k].first)] = ClampLogprob(t.top[k].second);
  top[TokenText(tok, t.id)] = ClampLogprob(t.logprob);
  return top;
}

}  // namespace

double ClampLogprob(double logprob) {
  if (std::isnan(logprob)) return -9999.0;
  return std::max(logprob, -9999.0);
}

std::string NewResponseId(const std::string& prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = prefix + "-";
  for (int i = 0; i < 24; ++i) id.push_back(kHex[rng() & 15]);
  return id;
}

json Usage::ToJson() const {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json CompletionLogprobs(const Tokenizer& tok, const std::vector<int32_t>& prompt,
                        const std::vector<TokenLogprob>& prompt_logprobs,
                        const std::vector<TokenLogprob>& generated, int top_n, size_t offset0) {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       text_offset = json::array();
  size_t offset = offset0;
  auto add = [&](int32_t id, const TokenLogprob* lp) {
    const std::string text = TokenText(tok, id);
    tokens.push_back(text);
    token_logprobs.push_back(lp ? json(ClampLogprob(lp->logprob)) : json(nullptr));
    top_logprobs.push_back(lp ? TopDict(tok, *lp, top_n) : json(nullptr));
    text_offset.push_back(offset);
    offset += CodePoints(text);
  };
  for (size_t i = 0; i < prompt.size(); ++i) {
    // Entry i-1 of the engine's list scores prompt position i; position 0 has no context.
    const TokenLogprob* lp =
        (i > 0 && i - 1 < prompt_logprobs.size()) ? &prompt_logprobs[i - 1] : nullptr;
    add(prompt[i], lp);
  }
  for (const TokenLogprob& t : generated) add(t.id, &t);
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(text_offset)}};
}

json ChatLogprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& generated, int top_n) {
  json content = json::array();
  for (const TokenLogprob& t : generated) {
    json top = json::array();
    const size_t n = std::min(t.top.size(), static_cast<size_t>(std::max(top_n, 0)));
    for (size_t k = 0; k < n; ++k) {
      const int32_t id = t.top[k].first;
      top.push_back({{"token", TokenText(tok, id)},
                     {"logprob", ClampLogprob(t.top[k].second)},
                     {"bytes", Bytes(tok, id)}});
    }
    content.push_back({{"token", TokenText(tok, t.id)},
                       {"logprob", ClampLogprob(t.logprob)},
                       {"bytes", Bytes(tok, t.id)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

json CompletionResponse(const ResponseHeader& h, const std::vector<Choice>& choices,
                        const Usage& usage) {
  json out_choices = json::array();
  for (const Choice& c : choices) {
    out_choices.push_back({{"index", c.index},
                           {"text", c.text},
                           {"logprobs", c.logprobs},
                           {"finish_reason", Nullable(c.finish_reason)}});
  }
  return {{"id", h.id},       {"object", "text_completion"}, {"created", h.created},
          {"model", h.model}, {"choices", out_choices},      {"usage", usage.ToJson()}};
}

json ChatResponse(const ResponseHeader& h, const std::vector<Choice>& choices, const Usage& usage) {
  json out_choices = json::array();
  for (const Choice& c : choices) {
    out_choices.push_back({{"index", c.index},
                           {"message", {{"role", "assistant"}, {"content", c.text}}},
                           {"logprobs", c.logprobs},
                           {"finish_reason", Nullable(c.finish_reason)}});
  }
  return {{"id", h.id},       {"object", "chat.completion"}, {"created", h.created},
          {"model", h.model}, {"choices", out_choices},      {"usage", usage.ToJson()}};
}

json CompletionChunk(const ResponseHeader& h, size_t index, const std::string& text,
                     const std::string& finish_reason, const json& logprobs) {
  json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", logprobs},
                 {"finish_reason", Nullable(finish_reason)}};
  return {{"id", h.id},
          {"object", "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array({choice})}};
}

json ChatChunk(const ResponseHeader& h, size_t index, const json& delta,
               const std::string& finish_reason, const json& logprobs) {
  json choice = {{"index", index},
                 {"delta", delta},
                 {"logprobs", logprobs},
                 {"finish_reason", Nullable(finish_reason)}};
  return {{"id", h.id},
          {"object", "chat.completion.chunk"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array({choice})}};
}

json UsageChunk(const ResponseHeader& h, const char* object, const Usage& usage) {
  return {{"id", h.id},       {"object", object},         {"created", h.created},
          {"model", h.model}, {"choices", json::array()}, {"usage", usage.ToJson()}};
}

json ModelList(const std::string& name, size_t max_model_len, int64_t created) {
  json model = {{"id", name},         {"object", "model"}, {"created", created},
                {"owned_by", "rvec"}, {"root", name},      {"max_model_len", max_model_len}};
  return {{"object", "list"}, {"data", json::array({model})}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string SseEvent(const json& j) { return "data: " + Dump(j) + "\n\n"; }

std::string SseDone() { return "data: [DONE]\n\n"; }

}  // namespace rvec::serve
