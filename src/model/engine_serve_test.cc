// Engine::Serve: requests submitted from other threads, and while others run, give exactly what
// GenerateBatch gives; prompt log-probabilities equal LogLikelihood's; cancellation, closing and
// bad requests end only the requests concerned.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "model/engine.h"
#include "model/logprobs.h"
#include "model/model_test_util.h"

namespace rvec {
namespace {

using testing_util::SynthModel;

std::unique_ptr<Engine> Load(EngineOptions o = {}) {
  o.threads = 2;
  auto e = Engine::Load(SynthModel("tiny-qwen2", DType::kBF16), o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

// Records every event; Wait() blocks until OnDone.
class RecordingSink : public StreamSink {
 public:
  void OnPromptLogprobs(std::vector<TokenLogprob> lps) override {
    std::lock_guard<std::mutex> lock(mu_);
    prompt = std::move(lps);
    ++prompt_calls;
  }
  void OnToken(const TokenLogprob& t, const std::string& text) override {
    std::lock_guard<std::mutex> lock(mu_);
    tokens.push_back(t);
    streamed += text;
    if (on_token) on_token(tokens.size());
  }
  void OnDone(StatusOr<GenerateResult> r) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_calls;
    result = std::move(r);
    cv_.notify_all();
  }
  bool Cancelled() const override { return cancel.load(); }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_calls > 0; });
  }

  std::vector<TokenLogprob> prompt;
  int prompt_calls = 0;
  std::vector<TokenLogprob> tokens;
  std::string streamed;
  int done_calls = 0;
  StatusOr<GenerateResult> result = Internal("not done");
  std::atomic<bool> cancel{false};
  std::function<void(size_t)> on_token;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

StreamRequest Request(std::vector<int32_t> prompt, const GenerateOptions& g,
                      std::shared_ptr<StreamSink> sink) {
  StreamRequest r;
  r.prompt = std::move(prompt);
  r.options = g;
  r.sink = std::move(sink);
  return r;
}

const char* const kTexts[] = {"The quick brown fox", "Once upon a time, in a land far away,", "A",
                              "Numbers: 1, 2, 3, 4,"};

TEST(EngineServe, ConcurrentSubmissionsEqualGenerateBatch) {
  auto e = Load();
  ASSERT_TRUE(e);
  std::vector<std::vector<int32_t>> prompts;
  for (const char* t : kTexts) prompts.push_back(e->tokenizer().Encode(t));
  for (const float temperature : {0.0f, 0.9f}) {
    GenerateOptions g;
    g.max_new_tokens = 10;
    g.temperature = temperature;
    g.seed = 11;
    g.stop_strings = {"\n\n"};
    auto want = e->GenerateBatch(prompts, g, nullptr, nullptr);
    ASSERT_TRUE(want.ok()) << want.status().ToString();

    StreamQueue queue;
    std::thread engine([&] { EXPECT_TRUE(e->Serve(queue).ok()); });
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    std::vector<std::thread> clients;
    for (size_t i = 0; i < prompts.size(); ++i) {
      sinks.push_back(std::make_shared<RecordingSink>());
      GenerateOptions gi = g;
      gi.streams = {i};  // GenerateBatch's stream of prompt i
      clients.emplace_back([&, i, gi] {
        ASSERT_TRUE(queue.Submit(Request(prompts[i], gi, sinks[i])).ok());
        sinks[i]->Wait();
      });
    }
    for (auto& c : clients) c.join();
    queue.Close(/*drain=*/true);
    engine.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const RecordingSink& s = *sinks[i];
      ASSERT_TRUE(s.result.ok()) << s.result.status().ToString();
      EXPECT_EQ(s.done_calls, 1);
      // Served results also carry the stop id that ended them.
      std::vector<int32_t> tokens = (*want)[i].tokens;
      if (s.result->tokens.size() == tokens.size() + 1) {
        const auto eos = e->EosTokenIds();
        EXPECT_NE(std::find(eos.begin(), eos.end(), s.result->tokens.back()), eos.end());
        tokens.push_back(s.result->tokens.back());
      }
      EXPECT_EQ(s.result->tokens, tokens) << "prompt " << i << " T=" << temperature;
      EXPECT_EQ(s.result->text, (*want)[i].text);
      EXPECT_EQ(s.result->finish_reason, (*want)[i].finish_reason);
      // Streamed text is a prefix of the whole text; the rest is the held-back tail.
      EXPECT_EQ(s.result->text.compare(0, s.streamed.size(), s.streamed), 0);
      ASSERT_EQ(s.tokens.size(), s.result->tokens.size());
      for (size_t k = 0; k < s.tokens.size(); ++k) EXPECT_EQ(s.tokens[k].id, s.result->tokens[k]);
    }
  }
}

TEST(EngineServe, LateRequestJoinsTheRunningBatch) {
  auto e = Load();
  ASSERT_TRUE(e);
  GenerateOptions g;
  g.max_new_tokens = 24;
  g.stop_token_ids = {};
  const auto pa = e->tokenizer().Encode(kTexts[1]);
  const auto pb = e->tokenizer().Encode(kTexts[0]);
  auto want = e->GenerateBatch({pa, pb}, g, nullptr, nullptr);
  ASSERT_TRUE(want.ok());

  StreamQueue queue;
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  std::atomic<size_t> a_tokens_when_b_started{0};
  b->on_token = [&](size_t n) {
    if (n == 1) a_tokens_when_b_started = a->tokens.size();
  };
  // B is submitted from A's third token, while A is running.
  a->on_token = [&](size_t n) {
    if (n == 3) {
      EXPECT_TRUE(queue.Submit(Request(pb, g, b)).ok());
    }
  };
  GenerateOptions ga = g;
  ASSERT_TRUE(queue.Submit(Request(pa, ga, a)).ok());
  std::thread engine([&] { EXPECT_TRUE(e->Serve(queue).ok()); });
  a->Wait();
  b->Wait();
  queue.Close(true);
  engine.join();
  ASSERT_TRUE(a->result.ok() && b->result.ok());
  EXPECT_EQ(a->result->tokens, (*want)[0].tokens);
  // B runs under stream 0 here (its own request), GenerateBatch gave it stream 1: greedy, so equal.
  EXPECT_EQ(b->result->tokens, (*want)[1].tokens);
  // B's first token came while A was still generating: they shared steps.
  EXPECT_GT(a_tokens_when_b_started.load(), 3u);
  EXPECT_LT(a_tokens_when_b_started.load(), a->result->tokens.size());
}

TEST(EngineServe, PromptLogprobsEqualLogLikelihoodAndTokenLogprobsAreRaw) {
  auto e = Load();
  ASSERT_TRUE(e);
  const std::string context = "Question: what is two plus two?\nAnswer:";
  const std::string cont = " four";
  auto ll = e->LogLikelihood({{context, cont}}, nullptr);
  ASSERT_TRUE(ll.ok());
  const auto ctx_ids = e->tokenizer().Encode(context, false);
  const auto whole = e->tokenizer().Encode(context + cont, false);
  ASSERT_GT(whole.size(), ctx_ids.size());

  StreamQueue queue;
  std::thread engine([&] { EXPECT_TRUE(e->Serve(queue).ok()); });
  auto sink = std::make_shared<RecordingSink>();
  GenerateOptions g;
  g.max_new_tokens = 1;
  StreamRequest r = Request(whole, g, sink);
  r.prompt_logprobs = 1;
  r.logprobs = 3;
  ASSERT_TRUE(queue.Submit(std::move(r)).ok());
  sink->Wait();
  // Prompt scoring only (max_tokens 0).
  auto only = std::make_shared<RecordingSink>();
  g.max_new_tokens = 0;
  r = Request(whole, g, only);
  r.prompt_logprobs = 0;
  ASSERT_TRUE(queue.Submit(std::move(r)).ok());
  only->Wait();
  queue.Close(true);
  engine.join();

  ASSERT_TRUE(sink->result.ok()) << sink->result.status().ToString();
  EXPECT_EQ(sink->prompt_calls, 1);
  ASSERT_EQ(sink->prompt.size(), whole.size() - 1);
  double sum = 0;
  bool greedy = true;
  for (size_t t = ctx_ids.size(); t < whole.size(); ++t) {
    const TokenLogprob& lp = sink->prompt[t - 1];
    EXPECT_EQ(lp.id, whole[t]);
    ASSERT_EQ(lp.top.size(), 1u);
    sum += lp.logprob;
    if (lp.top[0].first != whole[t]) greedy = false;
  }
  EXPECT_NEAR(sum, (*ll)[0].logprob, 1e-9);
  EXPECT_EQ(greedy, (*ll)[0].is_greedy);
  ASSERT_EQ(sink->tokens.size(), 1u);
  const TokenLogprob& t = sink->tokens[0];
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].first, t.id);  // greedy: the sampled token is the most likely
  EXPECT_DOUBLE_EQ(t.top[0].second, t.logprob);
  EXPECT_GE(t.top[0].second, t.top[1].second);
  EXPECT_GE(t.top[1].second, t.top[2].second);
  EXPECT_LT(t.logprob, 0.0);

  ASSERT_TRUE(only->result.ok());
  EXPECT_TRUE(only->result->tokens.empty());
  EXPECT_EQ(only->result->finish_reason, "length");
  ASSERT_EQ(only->prompt.size(), whole.size() - 1);
  for (size_t k = 0; k < only->prompt.size(); ++k) {
    EXPECT_EQ(only->prompt[k].logprob, sink->prompt[k].logprob);
    EXPECT_TRUE(only->prompt[k].top.empty());
  }
}

TEST(EngineServe, CancelBadRequestsAndClosing) {
  auto e = Load();
  ASSERT_TRUE(e);
  const auto prompt = e->tokenizer().Encode(kTexts[0]);
  GenerateOptions g;
  g.max_new_tokens = 40;
  g.stop_token_ids = {};
  StreamQueue queue;
  auto cancelled = std::make_shared<RecordingSink>();
  cancelled->on_token = [&](size_t n) {
    if (n == 2) cancelled->cancel = true;
  };
  auto bad = std::make_shared<RecordingSink>();
  auto too_long = std::make_shared<RecordingSink>();
  auto fine = std::make_shared<RecordingSink>();
  ASSERT_TRUE(queue.Submit(Request(prompt, g, cancelled)).ok());
  ASSERT_TRUE(queue.Submit(Request({1, 2, 1 << 30}, g, bad)).ok());
  ASSERT_TRUE(queue.Submit(Request(std::vector<int32_t>(e->MaxPositions(), 1), g, too_long)).ok());
  GenerateOptions short_g = g;
  short_g.max_new_tokens = 3;
  ASSERT_TRUE(queue.Submit(Request(prompt, short_g, fine)).ok());
  std::thread engine([&] { EXPECT_TRUE(e->Serve(queue).ok()); });
  for (auto* s : {cancelled.get(), bad.get(), too_long.get(), fine.get()}) s->Wait();

  ASSERT_TRUE(cancelled->result.ok());
  EXPECT_EQ(cancelled->result->finish_reason, "cancelled");
  EXPECT_LE(cancelled->result->tokens.size(), 3u);
  EXPECT_FALSE(bad->result.ok());
  EXPECT_NE(bad->result.status().message().find("outside the vocabulary"), std::string::npos);
  EXPECT_FALSE(too_long->result.ok());
  EXPECT_NE(too_long->result.status().message().find("positions"), std::string::npos);
  ASSERT_TRUE(fine->result.ok());
  EXPECT_EQ(fine->result->tokens.size(), 3u);

  // A cancelling close ends a long request in flight; later submissions are refused.
  auto running = std::make_shared<RecordingSink>();
  std::atomic<bool> started{false};
  running->on_token = [&](size_t) { started = true; };
  g.max_new_tokens = 10000;
  ASSERT_TRUE(queue.Submit(Request(prompt, g, running)).ok());
  while (!started) std::this_thread::yield();
  queue.Close(/*drain=*/false);
  running->Wait();
  engine.join();
  ASSERT_TRUE(running->result.ok());
  EXPECT_EQ(running->result->finish_reason, "cancelled");
  EXPECT_EQ(running->done_calls, 1);
  EXPECT_FALSE(queue.Submit(Request(prompt, g, std::make_shared<RecordingSink>())).ok());
}

TEST(EngineServe, TheStopIdIsReportedAsAToken) {
  auto e = Load();
  ASSERT_TRUE(e);
  const auto prompt = e->tokenizer().Encode(kTexts[3]);
  GenerateOptions g;
  g.max_new_tokens = 8;
  g.stop_token_ids = {};
  g.max_new_tokens = 32;
  g.temperature = 1.0f;  // greedy runs of this model repeat one token
  g.seed = 5;
  auto free_run = e->GenerateBatch({prompt}, g, nullptr, nullptr);
  ASSERT_TRUE(free_run.ok());
  // The first token that did not occur before it becomes the stop id.
  const std::vector<int32_t>& run = (*free_run)[0].tokens;
  size_t k = 1;
  while (k < run.size() && std::find(run.begin(), run.begin() + k, run[k]) != run.begin() + k) ++k;
  ASSERT_LT(k, run.size()) << "the sampled run repeats one token";
  const int32_t stop = run[k];
  g.stop_token_ids = {stop};
  StreamQueue queue;
  auto sink = std::make_shared<RecordingSink>();
  StreamRequest r = Request(prompt, g, sink);
  r.logprobs = 2;
  ASSERT_TRUE(queue.Submit(std::move(r)).ok());
  queue.Close(true);
  ASSERT_TRUE(e->Serve(queue).ok());
  ASSERT_TRUE(sink->result.ok());
  EXPECT_EQ(sink->result->finish_reason, "stop");
  // k generated tokens, then the stop id: reported by OnToken (with its logprob) and counted.
  const std::vector<int32_t> want(run.begin(), run.begin() + k + 1);
  EXPECT_EQ(sink->result->tokens, want);
  ASSERT_EQ(sink->tokens.size(), k + 1);
  EXPECT_EQ(sink->tokens[k].id, stop);
  EXPECT_EQ(sink->tokens[k].top.size(), 2u);
  EXPECT_LT(sink->tokens[k].logprob, 0.0);
  EXPECT_EQ(sink->streamed, sink->result->text);
}

TEST(EngineServe, ComputeLogprobMatchesAScalarLogSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
  const TokenLogprob t = ComputeLogprob(logits.data(), logits.size(), 4, 3);
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  EXPECT_NEAR(t.logprob, 0.5 - std::log(z), 1e-12);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].first, 1);  // tie with 2: the lower id first
  EXPECT_EQ(t.top[1].first, 2);
  EXPECT_EQ(t.top[2].first, 0);
  EXPECT_NEAR(t.top[2].second, 1.0 - std::log(z), 1e-12);
  EXPECT_TRUE(ComputeLogprob(logits.data(), logits.size(), 0, 0).top.empty());
}

}  // namespace
}  // namespace rvec
