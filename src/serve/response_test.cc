// Response shaping of `rvec serve`: vLLM's echo logprobs layout, the chat logprobs shape, chunks,
// usage and server-sent-event framing.
#include "serve/response.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "synth/synth.h"

namespace rvec::serve {
namespace {

using json = nlohmann::json;

const Tokenizer& Tok() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::FromJson(SynthTokenizer().tokenizer_json, "synth tokenizer");
    EXPECT_TRUE(t.ok());
    return new Tokenizer(std::move(t).value());
  }();
  return *tok;
}

TokenLogprob Lp(int32_t id, double logprob, std::vector<std::pair<int32_t, double>> top = {}) {
  TokenLogprob t;
  t.id = id;
  t.logprob = logprob;
  t.top = std::move(top);
  return t;
}

TEST(ServeResponse, EchoLogprobsFollowVllm) {
  const Tokenizer& tok = Tok();
  const std::vector<int32_t> prompt = tok.Encode("The cat sat");
  ASSERT_GE(prompt.size(), 2u);
  std::vector<TokenLogprob> prompt_lp;
  for (size_t i = 1; i < prompt.size(); ++i) {
    prompt_lp.push_back(Lp(prompt[i], -1.0 * static_cast<double>(i),
                           {{7, -0.5}, {prompt[i], -1.0 * static_cast<double>(i)}}));
  }
  const std::vector<TokenLogprob> gen = {Lp(9, -0.25, {{9, -0.25}})};
  const json j = CompletionLogprobs(tok, prompt, prompt_lp, gen, 1, 0);
  const size_t n = prompt.size() + 1;
  ASSERT_EQ(j["tokens"].size(), n);
  ASSERT_EQ(j["token_logprobs"].size(), n);
  ASSERT_EQ(j["top_logprobs"].size(), n);
  ASSERT_EQ(j["text_offset"].size(), n);
  EXPECT_TRUE(j["token_logprobs"][0].is_null());
  EXPECT_TRUE(j["top_logprobs"][0].is_null());
  EXPECT_DOUBLE_EQ(j["token_logprobs"][1].get<double>(), -1.0);
  EXPECT_DOUBLE_EQ(j["token_logprobs"][n - 1].get<double>(), -0.25);
  // top_logprobs: the top N (here 1) plus the token itself, keyed by text.
  const json& top1 = j["top_logprobs"][1];
  EXPECT_EQ(top1.size(), prompt[1] == 7 ? 1u : 2u);
  EXPECT_DOUBLE_EQ(top1[tok.Decode(std::vector<int32_t>{7})].get<double>(), -0.5);
  // Tokens concatenate to the echoed text; offsets are cumulative.
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(j["text_offset"][i].get<size_t>(), text.size());
    text += j["tokens"][i].get<std::string>();
  }
  EXPECT_EQ(text.substr(0, 11), "The cat sat");
  // lm-eval's use: sum(token_logprobs[ctxlen:-1]) over the prompt's continuation part.
  double sum = 0;
  for (size_t i = 1; i + 1 < n; ++i) sum += j["token_logprobs"][i].get<double>();
  EXPECT_LT(sum, 0);
}

TEST(ServeResponse, LogprobsWithoutEchoAndClamp) {
  const std::vector<TokenLogprob> gen = {Lp(5, -std::numeric_limits<double>::infinity(), {}),
                                         Lp(6, -0.5, {})};
  const json j = CompletionLogprobs(Tok(), {}, {}, gen, 0, 10);
  ASSERT_EQ(j["tokens"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["token_logprobs"][0].get<double>(), -9999.0);  // vLLM's clamp of -inf
  EXPECT_EQ(j["text_offset"][0], 10);
  EXPECT_EQ(j["top_logprobs"][1].size(), 1u);  // logprobs: 0 still reports the token itself
}

TEST(ServeResponse, ChatLogprobsShape) {
  const std::vector<TokenLogprob> gen = {Lp(72, -0.1, {{72, -0.1}, {73, -2.5}, {74, -3.0}})};
  const json j = ChatLogprobs(Tok(), gen, 2);
  ASSERT_EQ(j["content"].size(), 1u);
  const json& c = j["content"][0];
  EXPECT_EQ(c["token"], Tok().Decode(std::vector<int32_t>{72}));
  EXPECT_NEAR(c["logprob"].get<double>(), -0.1, 1e-6);
  ASSERT_TRUE(c["bytes"].is_array());
  EXPECT_EQ(c["bytes"].size(), Tok().DecodeBytes(std::vector<int32_t>{72}).size());
  ASSERT_EQ(c["top_logprobs"].size(), 2u);
  EXPECT_EQ(c["top_logprobs"][1]["token"], Tok().Decode(std::vector<int32_t>{73}));
  EXPECT_TRUE(c["top_logprobs"][1].contains("bytes"));
}

TEST(ServeResponse, CompletionAndChatObjects) {
  ResponseHeader h{"cmpl-x", 123, "tiny"};
  Usage u{5, 3};
  const json c = CompletionResponse(h, {{0, "abc", "length", nullptr}}, u);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["id"], "cmpl-x");
  EXPECT_EQ(c["created"], 123);
  EXPECT_EQ(c["model"], "tiny");
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(c["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(c["usage"]["total_tokens"], 8);
  const json chat = ChatResponse(h, {{1, "hi", "stop", nullptr}}, u);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(chat["choices"][0]["index"], 1);
}

TEST(ServeResponse, ChunksAndSseFraming) {
  ResponseHeader h{"chatcmpl-y", 1, "tiny"};
  const json first = ChatChunk(h, 0, {{"role", "assistant"}, {"content", ""}}, "", nullptr);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  const json last = ChatChunk(h, 0, json::object(), "stop", nullptr);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  const json c = CompletionChunk(h, 2, "x", "", nullptr);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["index"], 2);
  const json u = UsageChunk(h, "chat.completion.chunk", Usage{2, 1});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["completion_tokens"], 1);

  const std::string event = SseEvent(json{{"a", "b\nc"}});
  EXPECT_EQ(event, "data: {\"a\":\"b\\nc\"}\n\n");  // one line: newlines stay escaped
  EXPECT_EQ(SseDone(), "data: [DONE]\n\n");
  // Invalid UTF-8 never throws: it is replaced.
  EXPECT_NO_THROW(SseEvent(json{{"t", std::string("\xff\xfe")}}));
}

TEST(ServeResponse, IdsAndModelList) {
  const std::string a = NewResponseId("cmpl"), b = NewResponseId("cmpl");
  EXPECT_EQ(a.rfind("cmpl-", 0), 0u);
  EXPECT_NE(a, b);
  const json m = ModelList("tiny", 2048, 7);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "tiny");
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["owned_by"], "rvec");
  EXPECT_EQ(m["data"][0]["max_model_len"], 2048);
}

}  // namespace
}  // namespace rvec::serve
