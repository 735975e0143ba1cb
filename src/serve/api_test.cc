// Request parsing and validation of `rvec serve`: accepted shapes, and every rejected request's
// HTTP status and named field.
#include "serve/api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rvec::serve {
namespace {

RequestLimits Limits() {
  RequestLimits l;
  l.model_name = "tiny";
  l.vocab_size = 100;
  l.max_positions = 64;
  l.max_n = 4;
  return l;
}

TEST(ServeApi, CompletionPromptShapes) {
  CompletionRequest r;
  ApiError e;
  ASSERT_TRUE(ParseCompletionRequest(R"({"prompt": "hi", "model": "tiny"})", Limits(), &r, &e));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_TRUE(r.prompts[0].is_text);
  EXPECT_EQ(r.prompts[0].text, "hi");
  EXPECT_FALSE(r.sampling.max_tokens.has_value());
  EXPECT_FALSE(r.sampling.temperature.has_value());

  r = {};
  ASSERT_TRUE(ParseCompletionRequest(R"({"prompt": ["a", "b"]})", Limits(), &r, &e));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].text, "b");

  r = {};
  ASSERT_TRUE(ParseCompletionRequest(R"({"prompt": [1, 2, 99]})", Limits(), &r, &e));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_FALSE(r.prompts[0].is_text);
  EXPECT_EQ(r.prompts[0].ids, (std::vector<int32_t>{1, 2, 99}));

  r = {};
  ASSERT_TRUE(ParseCompletionRequest(R"({"prompt": [[1, 2], [3]]})", Limits(), &r, &e));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].ids, (std::vector<int32_t>{3}));
}

TEST(ServeApi, LmEvalLoglikelihoodRequest) {
  // lm-eval local-completions' payload for log-likelihood requests.
  CompletionRequest r;
  ApiError e;
  ASSERT_TRUE(ParseCompletionRequest(
      R"({"model": "tiny", "prompt": [[5, 6, 7]], "temperature": 0, "max_tokens": 1,
          "logprobs": 1, "seed": 1234, "echo": true})",
      Limits(), &r, &e))
      << e.message;
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.logprobs, 1);
  EXPECT_EQ(*r.sampling.max_tokens, 1);
  EXPECT_EQ(*r.sampling.seed, 1234u);
  EXPECT_EQ(*r.sampling.temperature, 0.0f);
  // Scoring only: max_tokens 0 with echo.
  r = {};
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt": [5, 6], "max_tokens": 0, "echo": true,
                                         "logprobs": 0})",
                                     Limits(), &r, &e));
}

TEST(ServeApi, SamplingFieldsAndNulls) {
  CompletionRequest r;
  ApiError e;
  ASSERT_TRUE(ParseCompletionRequest(
      R"({"prompt": "x", "max_tokens": 5, "temperature": 0.7, "top_p": 0.9, "top_k": -1,
          "seed": -3, "stop": ["a", "bc"], "n": 3, "stream": true,
          "stream_options": {"include_usage": true}, "stop_token_ids": [4],
          "suffix": null, "logit_bias": null, "presence_penalty": 0, "user": "ignored"})",
      Limits(), &r, &e))
      << e.message;
  EXPECT_EQ(*r.sampling.max_tokens, 5);
  EXPECT_FLOAT_EQ(*r.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(*r.sampling.top_p, 0.9f);
  EXPECT_EQ(*r.sampling.top_k, -1);
  EXPECT_EQ(*r.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.sampling.n, 3);
  EXPECT_TRUE(r.sampling.stream);
  EXPECT_TRUE(r.sampling.include_usage);
  EXPECT_EQ(r.sampling.stop_token_ids, (std::vector<int32_t>{4}));
  // null means "not given", as OpenAI's clients send unset fields.
  r = {};
  ASSERT_TRUE(ParseCompletionRequest(
      R"({"prompt": "x", "max_tokens": null, "temperature": null, "stop": null, "seed": null,
          "n": null, "logprobs": null})",
      Limits(), &r, &e))
      << e.message;
  EXPECT_FALSE(r.sampling.max_tokens.has_value());
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_EQ(r.sampling.n, 1);
  r = {};
  ASSERT_TRUE(ParseCompletionRequest(R"({"prompt": "x", "stop": "END"})", Limits(), &r, &e));
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"END"}));
}

TEST(ServeApi, ChatMessagesAndFields) {
  ChatRequest r;
  ApiError e;
  ASSERT_TRUE(ParseChatRequest(
      R"({"model": "tiny", "messages": [{"role": "system", "content": "Be brief"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 7, "max_tokens": 3, "logprobs": true, "top_logprobs": 2,
          "chat_template_kwargs": {"enable_thinking": false}, "add_generation_prompt": true})",
      Limits(), &r, &e))
      << e.message;
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "a\nb");  // text parts joined as vLLM does
  EXPECT_EQ(*r.sampling.max_tokens, 7);         // max_completion_tokens wins over max_tokens
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
  r = {};
  ASSERT_TRUE(ParseChatRequest(R"({"messages": [{"role": "user", "content": "hi"},
      {"role": "assistant", "content": null, "tool_calls": []}]})",
                               Limits(), &r, &e))
      << e.message;
}

struct BadCase {
  const char* name;
  bool chat;
  const char* body;
  int status;
  const char* param;  // "" = null
};

// Every rejected request names its field and gets the status OpenAI/vLLM use.
TEST(ServeApi, RejectedRequestsNameTheField) {
  const std::vector<BadCase> cases = {
      {"malformed JSON", false, R"({"prompt": )", 400, ""},
      {"not an object", false, R"([1, 2])", 400, ""},
      {"empty body", false, "", 400, ""},
      {"missing prompt", false, R"({"max_tokens": 3})", 400, "prompt"},
      {"prompt wrong type", false, R"({"prompt": 5})", 400, "prompt"},
      {"prompt empty list", false, R"({"prompt": []})", 400, "prompt"},
      {"prompt mixed list", false, R"({"prompt": ["a", [1]]})", 400, "prompt"},
      {"prompt float id", false, R"({"prompt": [1, 2.5]})", 400, "prompt"},
      {"token id out of vocab", false, R"({"prompt": [1, 100]})", 400, "prompt"},
      {"negative token id", false, R"({"prompt": [[-1]]})", 400, "prompt"},
      {"empty id list", false, R"({"prompt": [[]]})", 400, "prompt"},
      {"unknown model", false, R"({"prompt": "x", "model": "gpt-4"})", 404, "model"},
      {"model wrong type", false, R"({"prompt": "x", "model": 3})", 400, "model"},
      {"negative max_tokens", false, R"({"prompt": "x", "max_tokens": -1})", 400, "max_tokens"},
      {"max_tokens string", false, R"({"prompt": "x", "max_tokens": "5"})", 400, "max_tokens"},
      {"max_tokens 0 without echo", false, R"({"prompt": "x", "max_tokens": 0})", 400,
       "max_tokens"},
      {"huge max_tokens", false, R"({"prompt": "x", "max_tokens": 99999999999})", 400,
       "max_tokens"},
      {"negative temperature", false, R"({"prompt": "x", "temperature": -0.5})", 400,
       "temperature"},
      {"temperature string", false, R"({"prompt": "x", "temperature": "hot"})", 400, "temperature"},
      {"top_p 0", false, R"({"prompt": "x", "top_p": 0})", 400, "top_p"},
      {"top_p over 1", false, R"({"prompt": "x", "top_p": 1.5})", 400, "top_p"},
      {"top_k -2", false, R"({"prompt": "x", "top_k": -2})", 400, "top_k"},
      {"n 0", false, R"({"prompt": "x", "n": 0})", 400, "n"},
      {"n over --max-n", false, R"({"prompt": "x", "n": 5})", 400, "n"},
      {"seed float", false, R"({"prompt": "x", "seed": 1.5})", 400, "seed"},
      {"stop wrong type", false, R"({"prompt": "x", "stop": 3})", 400, "stop"},
      {"stop empty string", false, R"({"prompt": "x", "stop": [""]})", 400, "stop"},
      {"logprobs over limit", false, R"({"prompt": "x", "logprobs": 21})", 400, "logprobs"},
      {"logprobs bool", false, R"({"prompt": "x", "logprobs": true})", 400, "logprobs"},
      {"echo string", false, R"({"prompt": "x", "echo": "yes"})", 400, "echo"},
      {"echo with stream", false, R"({"prompt": "x", "echo": true, "stream": true})", 400, "echo"},
      {"stream string", false, R"({"prompt": "x", "stream": 1})", 400, "stream"},
      {"stream_options without stream", false,
       R"({"prompt": "x", "stream_options": {"include_usage": true}})", 400, "stream_options"},
      {"presence_penalty", false, R"({"prompt": "x", "presence_penalty": 0.5})", 400,
       "presence_penalty"},
      {"logit_bias", false, R"({"prompt": "x", "logit_bias": {"5": 1}})", 400, "logit_bias"},
      {"suffix", false, R"({"prompt": "x", "suffix": "end"})", 400, "suffix"},
      {"best_of", false, R"({"prompt": "x", "best_of": 3})", 400, "best_of"},
      {"stop_token_ids out of vocab", false, R"({"prompt": "x", "stop_token_ids": [100]})", 400,
       "stop_token_ids"},
      {"missing messages", true, R"({"model": "tiny"})", 400, "messages"},
      {"messages not a list", true, R"({"messages": "hi"})", 400, "messages"},
      {"messages empty", true, R"({"messages": []})", 400, "messages"},
      {"message not an object", true, R"({"messages": ["hi"]})", 400, "messages"},
      {"unknown role", true, R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400,
       "messages"},
      {"role missing", true, R"({"messages": [{"content": "hi"}]})", 400, "messages"},
      {"content wrong type", true, R"({"messages": [{"role": "user", "content": 5}]})", 400,
       "messages"},
      {"content missing", true, R"({"messages": [{"role": "user"}]})", 400, "messages"},
      {"image part", true,
       R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
       400, "messages"},
      {"chat unknown model", true,
       R"({"model": "x", "messages": [{"role": "user", "content": "hi"}]})", 404, "model"},
      {"chat negative max_completion_tokens", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": -4})", 400,
       "max_completion_tokens"},
      {"chat max_tokens 0", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0})", 400, "max_tokens"},
      {"top_logprobs without logprobs", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 3})", 400,
       "top_logprobs"},
      {"top_logprobs over 20", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 50})",
       400, "top_logprobs"},
      {"chat logprobs int", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": 2})", 400, "logprobs"},
      {"chat_template_kwargs list", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": []})", 400,
       "chat_template_kwargs"},
      {"chat temperature negative", true,
       R"({"messages": [{"role": "user", "content": "hi"}], "temperature": -1})", 400,
       "temperature"},
  };
  for (const BadCase& c : cases) {
    ApiError e;
    bool ok;
    if (c.chat) {
      ChatRequest r;
      ok = ParseChatRequest(c.body, Limits(), &r, &e);
    } else {
      CompletionRequest r;
      ok = ParseCompletionRequest(c.body, Limits(), &r, &e);
    }
    EXPECT_FALSE(ok) << c.name;
    EXPECT_EQ(e.status, c.status) << c.name << ": " << e.message;
    EXPECT_EQ(e.param, c.param) << c.name << ": " << e.message;
    EXPECT_FALSE(e.message.empty()) << c.name;
    if (*c.param) {
      EXPECT_NE(e.message.find(c.param), std::string::npos) << c.name << ": " << e.message;
    }
    const nlohmann::json j = e.ToJson();
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"]["code"].is_null());
    EXPECT_EQ(j["error"]["param"].is_null(), *c.param == '\0') << c.name;
  }
}

TEST(ServeApi, ContextLengthNamesBothNumbers) {
  EXPECT_FALSE(CheckContextLength(60, 4, Limits(), "max_tokens").has_value());
  const auto e = CheckContextLength(60, 5, Limits(), "max_tokens");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->param, "max_tokens");
  EXPECT_NE(e->message.find("64"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("60"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("max_tokens = 5"), std::string::npos) << e->message;
}

}  // namespace
}  // namespace rvec::serve
