// Engine behaviour on synth models: batching never changes results (any batch size, chunking,
// KV budget or prefix reuse), generation stops where asked, sampling is seeded, and
// LogLikelihood follows lm-eval's token split and greedy check. K samples of one prompt share its
// KV without changing a bit, and the memory forecast lowers the batch or refuses with numbers.
#include "model/engine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/kv_cache.h"
#include "model/model_test_util.h"
#include "model/sampler.h"

namespace rvec {
namespace {

using testing_util::SynthModel;

std::unique_ptr<Engine> LoadEngine(const std::string& preset, EngineOptions o = {}) {
  o.threads = o.threads ? o.threads : 2;
  auto e = Engine::Load(SynthModel(preset, DType::kBF16), o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<std::vector<int32_t>> Prompts(const Engine& e) {
  std::vector<std::vector<int32_t>> p;
  for (const char* text : {"The quick brown fox", "Once upon a time, in a land far away,", "A",
                           "Numbers: 1, 2, 3, 4,", "The quick brown fox jumps over"}) {
    p.push_back(e.tokenizer().Encode(text));
  }
  return p;
}

TEST(Engine, GreedyGenerationEqualsStepwiseArgmax) {
  EngineOptions o;
  o.kv_dtype = DType::kF32;  // as Logits() uses
  auto e = LoadEngine("tiny-qwen2", o);
  ASSERT_TRUE(e);
  const auto prompt = e->tokenizer().Encode("The quick brown fox");
  GenerateOptions g;
  g.max_new_tokens = 12;
  g.stop_token_ids = {};
  auto r = e->GenerateBatch({prompt}, g, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Recompute each step from scratch through Logits().
  std::vector<int32_t> ids = prompt;
  const auto eos = e->EosTokenIds();
  std::vector<int32_t> expect;
  for (int i = 0; i < g.max_new_tokens; ++i) {
    auto logits = e->Logits(ids, false);
    ASSERT_TRUE(logits.ok());
    const int32_t next = Argmax((*logits)[0].data(), (*logits)[0].size());
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    expect.push_back(next);
    ids.push_back(next);
  }
  EXPECT_EQ((*r)[0].tokens, expect);
  EXPECT_EQ((*r)[0].text, e->tokenizer().Decode(expect, true));
  EXPECT_EQ((*r)[0].finish_reason, expect.size() == size_t(g.max_new_tokens) ? "length" : "stop");
}

TEST(Engine, BatchingChunkingAndBudgetNeverChangeResults) {
  GenerateOptions g;
  g.max_new_tokens = 10;
  std::vector<GenerateResult> base;
  {
    EngineOptions o;
    o.max_batch = 1;
    o.prefix_cache = false;
    auto e = LoadEngine("tiny-qwen3", o);
    ASSERT_TRUE(e);
    auto r = e->GenerateBatch(Prompts(*e), g, nullptr, nullptr);
    ASSERT_TRUE(r.ok());
    base = *r;
  }
  struct Variant {
    size_t max_batch, chunk;
  };
  for (const Variant v : {Variant{16, 256}, Variant{3, 2}, Variant{16, 5}, Variant{2, 64}}) {
    EngineOptions o;
    o.max_batch = v.max_batch;
    o.prefill_chunk = v.chunk;
    auto e = LoadEngine("tiny-qwen3", o);
    ASSERT_TRUE(e);
    auto prompts = Prompts(*e);
    auto r = e->GenerateBatch(prompts, g, nullptr, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), base.size());
    for (size_t i = 0; i < base.size(); ++i) {
      EXPECT_EQ((*r)[i].tokens, base[i].tokens) << "prompt " << i << " batch " << v.max_batch;
      EXPECT_EQ((*r)[i].text, base[i].text);
    }
  }
}

TEST(Engine, SmallKvBudgetQueuesSequencesAndTooSmallFails) {
  GenerateOptions g;
  g.max_new_tokens = 6;
  auto ref_engine = LoadEngine("tiny-llama");
  ASSERT_TRUE(ref_engine);
  const auto prompts = Prompts(*ref_engine);
  auto ref = ref_engine->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_TRUE(ref.ok());
  // Bytes per position from the stats of a tiny run.
  EngineOptions probe;
  probe.kv_cache_bytes = 1ull << 40;
  auto p = LoadEngine("tiny-llama", probe);
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->GenerateBatch({prompts[2]}, g, nullptr, nullptr).ok());
  const uint64_t per_seq = p->Stats().kv_peak_bytes;  // prompts[2] is one token: 7 positions
  ASSERT_GT(per_seq, 0u);
  const uint64_t per_pos = per_seq / (prompts[2].size() + g.max_new_tokens);
  size_t longest = 0;
  for (const auto& pr : prompts) longest = std::max(longest, pr.size());
  EngineOptions tight;
  tight.kv_cache_bytes = per_pos * (longest + g.max_new_tokens) * 2;  // two at a time at most
  auto e = LoadEngine("tiny-llama", tight);
  ASSERT_TRUE(e);
  auto r = e->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ((*r)[i].tokens, (*ref)[i].tokens);
  EXPECT_LE(e->Stats().kv_peak_bytes, tight.kv_cache_bytes);
  EngineOptions tiny;
  tiny.kv_cache_bytes = per_pos * 3;
  auto f = LoadEngine("tiny-llama", tiny);
  ASSERT_TRUE(f);
  auto bad = f->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("KV cache budget"), std::string::npos);
}

TEST(Engine, StopStringsCutTextAndStreamingMatches) {
  auto e = LoadEngine("tiny-qwen2");
  ASSERT_TRUE(e);
  const auto prompt = e->tokenizer().Encode("Once upon a time");
  GenerateOptions g;
  g.max_new_tokens = 24;
  auto free_run = e->GenerateBatch({prompt}, g, nullptr, nullptr);
  ASSERT_TRUE(free_run.ok());
  const std::string full = (*free_run)[0].text;
  ASSERT_GE(full.size(), 6u) << "need some generated text to pick a stop string from";
  const std::string stop = full.substr(full.size() / 2, 2);
  g.stop_strings = {stop, "never-appears-xyz"};
  std::string streamed;
  auto r = e->GenerateBatch(
      {prompt}, g,
      [&](size_t i, const std::string& piece) {
        EXPECT_EQ(i, 0u);
        streamed += piece;
      },
      nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].text, full.substr(0, full.find(stop)));
  EXPECT_EQ((*r)[0].finish_reason, "stop");
  EXPECT_EQ(streamed, (*r)[0].text);
}

TEST(Engine, StopTokenIdsAndLength) {
  auto e = LoadEngine("tiny-qwen2");
  ASSERT_TRUE(e);
  const auto prompt = e->tokenizer().Encode("Numbers: 1, 2, 3");
  GenerateOptions g;
  g.max_new_tokens = 8;
  auto r = e->GenerateBatch({prompt}, g, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  const auto& toks = (*r)[0].tokens;
  if ((*r)[0].finish_reason == "length") {
    EXPECT_EQ(toks.size(), 8u);
  }
  ASSERT_GE(toks.size(), 3u);
  g.stop_token_ids = {toks[2]};
  auto s = e->GenerateBatch({prompt}, g, nullptr, nullptr);
  ASSERT_TRUE(s.ok());
  const size_t first = std::find(toks.begin(), toks.end(), toks[2]) - toks.begin();
  EXPECT_EQ((*s)[0].tokens, std::vector<int32_t>(toks.begin(), toks.begin() + first));
  EXPECT_EQ((*s)[0].finish_reason, "stop");
  // The synth generation_config.json's eos ids are all stop ids.
  EXPECT_FALSE(e->EosTokenIds().empty());
}

TEST(Engine, SeededSamplingIsReproducibleAndBatchIndependent) {
  auto e = LoadEngine("tiny-qwen2");
  ASSERT_TRUE(e);
  const auto prompts = Prompts(*e);
  GenerateOptions g;
  g.max_new_tokens = 12;
  g.temperature = 1.0f;
  g.top_p = 0.9f;
  g.top_k = 50;
  g.seed = 1234;
  auto a = e->GenerateBatch(prompts, g, nullptr, nullptr);
  auto b = e->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ((*a)[i].tokens, (*b)[i].tokens);
    auto alone = e->GenerateBatch({prompts[i]}, g, nullptr, nullptr);
    ASSERT_TRUE(alone.ok());
    // Prompt i's stream is keyed by its index in the batch; alone it is index 0, so compare
    // prompt 0 only for exact equality.
    if (i == 0) {
      EXPECT_EQ((*alone)[0].tokens, (*a)[0].tokens);
    }
  }
  g.seed = 99;
  auto c = e->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_TRUE(c.ok());
  bool any_diff = false;
  for (size_t i = 0; i < prompts.size(); ++i) any_diff |= (*c)[i].tokens != (*a)[i].tokens;
  EXPECT_TRUE(any_diff) << "a different seed should change some sample";
}

// Scores the continuation by hand from Logits() with lm-eval's split.
LoglikelihoodResult ManualScore(Engine& e, const std::string& ctx, const std::string& cont) {
  const auto whole = e.tokenizer().Encode(ctx + cont);
  const auto c = e.tokenizer().Encode(ctx);
  std::vector<int32_t> inp(whole.begin(), whole.end() - 1);
  auto logits = e.Logits(inp, true);
  EXPECT_TRUE(logits.ok());
  LoglikelihoodResult r;
  r.is_greedy = true;
  for (size_t t = c.size(); t < whole.size(); ++t) {
    const auto& row = (*logits)[t - 1];
    double mx = -1e30, sum = 0;
    for (float v : row) mx = std::max(mx, double(v));
    for (float v : row) sum += std::exp(double(v) - mx);
    r.logprob += double(row[whole[t]]) - mx - std::log(sum);
    if (Argmax(row.data(), row.size()) != whole[t]) r.is_greedy = false;
  }
  return r;
}

TEST(Engine, LogLikelihoodMatchesManualScoringAndPrefixReuse) {
  EngineOptions o;
  o.max_batch = 4;
  o.prefill_chunk = 16;
  auto e = LoadEngine("tiny-qwen2", o);
  ASSERT_TRUE(e);
  const std::string shots =
      "Question: what is two plus two? Answer: four.\nQuestion: what colour is the sky? "
      "Answer: blue.\nQuestion: how many legs does a cat have? Answer:";
  std::vector<LoglikelihoodRequest> reqs = {{shots, " four"},
                                            {shots, " three"},
                                            {shots + " ", "two"},
                                            {"The cat", " sat on the mat"},
                                            {shots, " a great many legs"}};
  auto r = e->LogLikelihood(reqs, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(e->Stats().tokens_reused, 0u) << "few-shot requests share a long prefix";
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::string ctx = reqs[i].context, cont = reqs[i].continuation;
    // lm-eval moves trailing context whitespace to the continuation.
    while (!ctx.empty() && ctx.back() == ' ') {
      cont = " " + cont;
      ctx.pop_back();
    }
    const auto m = ManualScore(*e, ctx, cont);
    EXPECT_NEAR((*r)[i].logprob, m.logprob, 1e-6) << i;
    EXPECT_EQ((*r)[i].is_greedy, m.is_greedy) << i;
    EXPECT_LT((*r)[i].logprob, 0.0);
  }
  // Without the prefix cache the numbers are the same bits.
  EngineOptions no_cache = o;
  no_cache.prefix_cache = false;
  auto e2 = LoadEngine("tiny-qwen2", no_cache);
  ASSERT_TRUE(e2);
  auto r2 = e2->LogLikelihood(reqs, nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(e2->Stats().tokens_reused, 0u);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ((*r)[i].logprob, (*r2)[i].logprob) << i;
}

TEST(Engine, GreedyContinuationIsGreedy) {
  auto e = LoadEngine("tiny-qwen3");
  ASSERT_TRUE(e);
  const std::string ctx = "The quick brown fox";
  const auto ids = e->tokenizer().Encode(ctx);
  // Build a continuation out of the model's own argmax tokens, as ids.
  std::vector<int32_t> all = ids;
  for (int i = 0; i < 4; ++i) {
    auto l = e->Logits(all, false);
    ASSERT_TRUE(l.ok());
    all.push_back(Argmax((*l)[0].data(), (*l)[0].size()));
  }
  const std::string cont =
      e->tokenizer().Decode(std::vector<int32_t>(all.begin() + ids.size(), all.end()));
  // Only meaningful when the text round-trips to the same tokens.
  if (e->tokenizer().Encode(ctx + cont) == all) {
    auto r = e->LogLikelihood({{ctx, cont}}, nullptr);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE((*r)[0].is_greedy);
  }
  auto r = e->LogLikelihood({{ctx, " zzzzqqqq"}}, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)[0].is_greedy);
}

TEST(Engine, RejectsBadInput) {
  auto e = LoadEngine("tiny-qwen2");
  ASSERT_TRUE(e);
  auto bad = e->Logits({1, 2, 1 << 30}, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("outside the vocabulary"), std::string::npos);
  EXPECT_FALSE(e->GenerateBatch({{}}, {}, nullptr, nullptr).ok());
  EXPECT_FALSE(e->Logits({}, false).ok());
  auto missing = Engine::Load("/nonexistent/model", {});
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(e->Describe().find("Qwen2ForCausalLM"), std::string::npos);
}

const char kLongPrompt[] =
    "Question: a farmer has 17 sheep and buys 23 more, then sells a third of the flock. How many "
    "sheep are left? Think step by step and give the final answer.";

// K samples of one prompt (distinct random streams, as the evaluation harness asks for them)
// reference the prompt's KV instead of copying it; the samples equal private, unbatched runs bit
// for bit, at any thread count, for either KV dtype.
TEST(Engine, KSamplesOfOnePromptShareItsKvAndMatchPrivateRuns) {
  for (DType kv : {DType::kBF16, DType::kF32}) {
    GenerateOptions g;
    g.max_new_tokens = 14;
    g.temperature = 0.9f;
    g.seed = 5;
    g.streams = {10, 11, 12, 13, 14, 15};
    std::vector<GenerateResult> base;
    {
      EngineOptions o;
      o.max_batch = 1;
      o.prefix_cache = false;
      o.kv_dtype = kv;
      auto e = LoadEngine("tiny-qwen2", o);
      ASSERT_TRUE(e);
      const auto prompt = e->tokenizer().Encode(kLongPrompt);
      ASSERT_GT(prompt.size(), 33u);
      auto r = e->GenerateBatch(std::vector(6, prompt), g, nullptr, nullptr);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(e->Stats().tokens_shared, 0u);
      base = *r;
    }
    for (size_t threads : {1, 3}) {
      EngineOptions o;
      o.threads = threads;
      o.max_batch = 8;
      o.kv_dtype = kv;
      auto e = LoadEngine("tiny-qwen2", o);
      ASSERT_TRUE(e);
      const auto prompt = e->tokenizer().Encode(kLongPrompt);
      auto r = e->GenerateBatch(std::vector(6, prompt), g, nullptr, nullptr);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      for (size_t i = 0; i < base.size(); ++i) {
        EXPECT_EQ((*r)[i].tokens, base[i].tokens) << "sample " << i << " threads " << threads;
      }
      // Five samples referenced the prompt's whole tiles instead of copying them.
      EXPECT_EQ(e->Stats().tokens_shared, 5 * ((prompt.size() - 1) / 16 * 16));
      const MemoryForecast f = e->LastForecast();
      EXPECT_EQ(f.batch, 6u);
      EXPECT_GT(f.kv_saved_bytes, 0u);
      EXPECT_LE(e->Stats().kv_peak_bytes, f.kv_bytes);
    }
  }
}

TEST(Engine, MemoryForecastCountsSharedPromptsOnceAndLowersTheBatchOrRefuses) {
  auto m = testing_util::LoadModel(SynthModel("tiny-llama", DType::kBF16));
  ASSERT_TRUE(m);
  KvPool bytes(m->config, 0);
  auto e = LoadEngine("tiny-llama");
  ASSERT_TRUE(e);
  GenerateOptions g;
  g.max_new_tokens = 10;
  const auto prompts = Prompts(*e);  // five short prompts: nothing worth sharing
  std::vector<uint64_t> kv;
  for (const auto& p : prompts) kv.push_back(bytes.BytesFor(p.size() + 10, DType::kBF16));
  auto all = e->ForecastGenerate(prompts, g);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->requested_batch, 5u);
  EXPECT_EQ(all->batch, 5u);
  EXPECT_EQ(all->kv_bytes, kv[0] + kv[1] + kv[2] + kv[3] + kv[4]);
  EXPECT_EQ(all->kv_saved_bytes, 0u);
  EXPECT_EQ(all->kv_dtype, "bf16");
  EXPECT_GT(all->scratch_bytes, 0u);
  EXPECT_EQ(all->total_bytes, all->weight_bytes + all->kv_bytes + all->scratch_bytes);
  EXPECT_NE(all->ToString().find("batch 5"), std::string::npos);

  // A budget for the two largest: any two may be active at once.
  std::vector<uint64_t> sorted = kv;
  std::sort(sorted.rbegin(), sorted.rend());
  const uint64_t pair = sorted[0] + sorted[1];
  EngineOptions o;
  o.kv_cache_bytes = pair;
  auto two = LoadEngine("tiny-llama", o);
  ASSERT_TRUE(two);
  auto f2 = two->ForecastGenerate(prompts, g);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->batch, 2u);
  EXPECT_EQ(f2->kv_bytes, pair);
  auto r2 = two->GenerateBatch(prompts, g, nullptr, nullptr);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(two->LastForecast().batch, 2u);

  // K copies of a long prompt: one full block, then only the tails past the shared tiles (less
  // the one tile a sample may be admitted without).
  const auto prompt = e->tokenizer().Encode(kLongPrompt);
  const size_t cap = prompt.size() + 10, shared = (prompt.size() - 1) / 16 * 16 - 16;
  ASSERT_GT(shared, 0u);
  const uint64_t full = bytes.BytesFor(cap, DType::kBF16);
  const uint64_t tail = bytes.BytesFor(RoundUpToKeyTile(cap) - shared, DType::kBF16);
  auto k4 = e->ForecastGenerate(std::vector(4, prompt), g);
  ASSERT_TRUE(k4.ok());
  EXPECT_EQ(k4->kv_bytes, full + 3 * tail);
  EXPECT_EQ(k4->kv_saved_bytes, 3 * (full - tail));

  // Not even one sequence fits: refused before running, with the numbers.
  o.kv_cache_bytes = kv[1] - 1;
  auto tiny = LoadEngine("tiny-llama", o);
  ASSERT_TRUE(tiny);
  auto bad = tiny->ForecastGenerate({prompts[1]}, g);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(HumanBytes(kv[1])), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("KV cache budget " + HumanBytes(kv[1] - 1)),
            std::string::npos)
      << bad.status().message();
  auto run = tiny->GenerateBatch({prompts[1]}, g, nullptr, nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rvec
