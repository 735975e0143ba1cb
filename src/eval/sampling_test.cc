// Repeated sampling (--samples K): pass@k, majority vote and the paired permutation test against
// hand-computed values, per-sample scoring of a task, and local-backend samples that depend only
// on (seed, task, doc, sample) -- not on batch size, chunking, request order or threads.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "eval/backend.h"
#include "eval/sandbox/sandbox.h"
#include "eval/stats.h"
#include "eval/task.h"
#include "model/engine.h"
#include "model/model_test_util.h"

namespace rvec::eval {
namespace {

// pass@k is sandbox.h's estimator; these are the K-sample cases the sampled metrics use.
TEST(PassAtK, UnbiasedEstimatorByHand) {
  EXPECT_DOUBLE_EQ(*PassAtK(4, 1, 1), 0.25);
  EXPECT_DOUBLE_EQ(*PassAtK(4, 1, 2), 0.5);            // 1 - C(3,2)/C(4,2) = 1 - 3/6
  EXPECT_NEAR(*PassAtK(4, 2, 2), 5.0 / 6.0, 1e-15);    // 1 - C(2,2)/C(4,2)
  EXPECT_NEAR(*PassAtK(8, 3, 4), 13.0 / 14.0, 1e-15);  // 1 - C(5,4)/C(8,4) = 1 - 5/70
  EXPECT_EQ(*PassAtK(4, 0, 4), 0.0);
  EXPECT_EQ(*PassAtK(4, 1, 4), 1.0);  // k = n: any correct sample
  EXPECT_EQ(*PassAtK(8, 8, 2), 1.0);
}

TEST(MajorityVote, LargestGroupFirstOccurrenceBreaksTies) {
  auto eq = [](const std::string& a, const std::string& b) { return a == b; };
  EXPECT_EQ(MajorityIndex({"a", "b", "b", "a"}, eq), 0u);  // 2-2 tie: "a" came first
  EXPECT_EQ(MajorityIndex({"x", "b", "b", "a"}, eq), 1u);
  EXPECT_EQ(MajorityIndex({"x", "y", "z", "z"}, eq), 2u);
  EXPECT_EQ(MajorityIndex({}, eq), 0u);
  // A looser equivalence merges groups and changes the winner.
  auto numeric = [](const std::string& a, const std::string& b) {
    return std::stod(a) == std::stod(b);
  };
  EXPECT_EQ(MajorityIndex({"7", "5.0", "5", "7", "5.00"}, eq), 0u);
  EXPECT_EQ(MajorityIndex({"7", "5.0", "5", "7", "5.00"}, numeric), 1u);
}

TEST(PairedPermutation, ExactAndSampledByHand) {
  EXPECT_EQ(PairedPermutationP({0.0, 0.0}), 1.0);
  EXPECT_EQ(PairedPermutationP({1.0, -1.0}), 1.0);                    // every flip reaches |0|
  EXPECT_EQ(PairedPermutationP({1.0, 1.0, 1.0}), 0.25);               // 2 of 8 flips reach |3|
  EXPECT_EQ(PairedPermutationP({0.5, 0.25, 0.25, 1.0, 0.0}), 0.125);  // 2 of 16
  // {0.5, -0.25, 0.25}: |sum| = 0.5; flips giving |s| >= 0.5: (+,-,+),(+,+,-),(-,+,-),(-,-,+),
  // (+,+,+) = 1.0, (-,-,-) = 1.0 -> 6 of 8.
  EXPECT_EQ(PairedPermutationP({0.5, -0.25, 0.25}), 0.75);
  // Above 20 non-zero differences: fixed-seed Monte Carlo, the same p every call.
  std::vector<double> all_up(30, 0.125);
  const double p = PairedPermutationP(all_up);
  EXPECT_EQ(p, 1.0 / 20001.0);  // no random flip of 30 signs is all-same
  EXPECT_EQ(PairedPermutationP(all_up), p);
  std::vector<double> balanced;
  for (int i = 0; i < 30; ++i) balanced.push_back(i % 2 ? 0.25 : -0.25);
  EXPECT_EQ(PairedPermutationP(balanced), 1.0);
}

TEST(SampledStderr, MeanOfPerDocMeans) {
  const std::vector<double> per_doc = {0.25, 0.75, 0.5};  // avg@4 of three docs
  EXPECT_DOUBLE_EQ(Mean(per_doc), 0.5);
  // sd = sqrt((0.0625 + 0.0625 + 0) / 2) = 0.25; stderr = 0.25 / sqrt(3).
  EXPECT_NEAR(*MeanStderr(per_doc), 0.25 / std::sqrt(3.0), 1e-15);
}

// A generation task with one doc (target "5"), the whole output as the answer, and exact_match.
EvalTask OneDocTask(bool numeric_votes) {
  TaskConfig c;
  c.name = "t";
  c.version = "1.0";
  c.doc_to_text = [](const Doc&) { return std::string("q"); };
  c.doc_to_target = [](const Doc&) { return std::string("5"); };
  c.filters = {TakeFirstFilter("none")};
  c.metrics = {ExactMatchMetric({})};
  if (numeric_votes) {
    c.same_answer = [](const std::string& a, const std::string& b, const Doc&) {
      return std::stod(a) == std::stod(b);
    };
  }
  c.load = [](const std::filesystem::path&, std::vector<Doc>* test, std::vector<Doc>*) {
    *test = {Doc::object()};
    return OkStatus();
  };
  EvalTask t(std::move(c));
  EXPECT_TRUE(t.Load("/nonexistent").ok());
  return t;
}

TEST(SampledScore, PerSampleMetricsAvgPassMaj) {
  EvalTask t = OneDocTask(false);
  EXPECT_EQ(t.MetricKeys(), (std::vector<std::string>{"exact_match,none"}));
  EXPECT_EQ(t.MetricKeys(4),
            (std::vector<std::string>{"exact_match,none", "avg@4,none", "pass@2,none",
                                      "pass@4,none", "maj@4,none"}));
  EXPECT_EQ(t.MetricKeys(8)[3], "pass@4,none");
  DocResponse r{"5", {}, {}, {"7", "5", "x"}};
  auto s = t.Score(0, r);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->sample_metrics.size(), 4u);
  EXPECT_EQ(s->sample_metrics[1].at("exact_match,none"), 0.0);
  EXPECT_EQ(s->sample_filtered[3].at("none"), "x");
  EXPECT_EQ(s->filtered.at("none"), "5");  // sample 0's
  EXPECT_EQ(s->metrics.at("exact_match,none"), 0.5);
  EXPECT_EQ(s->metrics.at("avg@4,none"), 0.5);
  EXPECT_NEAR(s->metrics.at("pass@2,none"), 5.0 / 6.0, 1e-15);
  EXPECT_EQ(s->metrics.at("pass@4,none"), 1.0);
  EXPECT_EQ(s->metrics.at("maj@4,none"), 1.0);
  EXPECT_EQ(s->majority.at("none"), "5");
  // A 2-2 tie goes to the answer seen first: "7" is wrong.
  s = t.Score(0, DocResponse{"7", {}, {}, {"5", "5", "7"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metrics.at("maj@4,none"), 0.0);
  // One sample keeps today's score: no per-sample fields.
  s = t.Score(0, DocResponse{"5"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->sample_metrics.empty());
  EXPECT_EQ(s->metrics.size(), 1u);
}

TEST(SampledScore, TaskEquivalenceGroupsVotes) {
  // "5" and "5.0" vote together with the task's equivalence; maj@K scores the group's first
  // answer ("5", right) where string equality would let "7" win the tie... by count 2 vs 1.
  DocResponse r{"7", {}, {}, {"5", "7", "5.0"}};
  auto plain = OneDocTask(false).Score(0, r);
  auto numeric = OneDocTask(true).Score(0, r);
  ASSERT_TRUE(plain.ok() && numeric.ok());
  EXPECT_EQ(plain->majority.at("none"), "7");
  EXPECT_EQ(plain->metrics.at("maj@4,none"), 0.0);
  EXPECT_EQ(numeric->majority.at("none"), "7");  // 2-2 tie: "7" first
  DocResponse r2{"5.0", {}, {}, {"7", "5", "7"}};
  EXPECT_EQ(OneDocTask(false).Score(0, r2)->majority.at("none"), "7");
  EXPECT_EQ(OneDocTask(true).Score(0, r2)->majority.at("none"), "5.0");
}

TEST(SampleStream, DependsOnTaskDocAndSample) {
  const uint64_t a = SampleStream({"gsm8k", 3, 1});
  EXPECT_EQ(a, SampleStream({"gsm8k", 3, 1}));
  EXPECT_NE(a, SampleStream({"gsm8k", 3, 2}));
  EXPECT_NE(a, SampleStream({"gsm8k", 1, 3}));
  EXPECT_NE(a, SampleStream({"gsm8k_cot", 3, 1}));
}

// Generations of docs x samples through a local backend on a synth model; `order` permutes the
// requests and `chunk` splits them into separate Generate calls.
std::map<std::pair<size_t, size_t>, std::string> Sample(size_t max_batch, size_t threads,
                                                        bool reverse, size_t chunk) {
  EngineOptions o;
  o.threads = threads;
  o.max_batch = max_batch;
  auto engine = Engine::Load(testing_util::SynthModel("tiny-qwen2", DType::kBF16), o);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  auto backend = MakeLocalBackend(engine->get());
  EXPECT_TRUE(backend.ok());
  std::vector<GenerationRequest> reqs;
  const char* prompts[] = {"The quick brown fox", "Once upon a time", "Numbers: 1, 2, 3,"};
  for (size_t doc = 0; doc < 3; ++doc) {
    for (size_t s = 0; s < 4; ++s) {
      GenerationRequest r;
      r.key = {"t", doc, s};
      r.prompt = prompts[doc];
      r.kwargs.max_gen_toks = 12;
      r.kwargs.temperature = 1.0;
      r.kwargs.do_sample = true;
      r.seed = 7;
      r.stream = SampleStream(r.key);
      reqs.push_back(r);
    }
  }
  if (reverse) std::reverse(reqs.begin(), reqs.end());
  std::map<std::pair<size_t, size_t>, std::string> out;
  for (size_t begin = 0; begin < reqs.size(); begin += chunk) {
    std::vector<GenerationRequest> part(reqs.begin() + begin,
                                        reqs.begin() + std::min(reqs.size(), begin + chunk));
    auto gens = (*backend)->Generate(part, nullptr);
    EXPECT_TRUE(gens.ok()) << gens.status().ToString();
    if (!gens.ok()) return out;
    for (size_t i = 0; i < part.size(); ++i) {
      out[{part[i].key.doc_id, part[i].key.index}] = (*gens)[i].text;
    }
  }
  return out;
}

TEST(LocalSampling, ReproducibleForAnyBatchChunkOrderAndThreads) {
  const auto base = Sample(16, 2, false, 12);
  ASSERT_EQ(base.size(), 12u);
  EXPECT_EQ(Sample(16, 2, false, 12), base);  // rerun
  EXPECT_EQ(Sample(2, 2, false, 12), base);   // --max-batch 2
  EXPECT_EQ(Sample(3, 1, true, 5), base);     // reversed, 5 per call, one thread
  // The samples of a document are different draws, not copies.
  size_t distinct_docs = 0;
  for (size_t doc = 0; doc < 3; ++doc) {
    bool differ = false;
    for (size_t s = 1; s < 4; ++s) differ |= base.at({doc, s}) != base.at({doc, 0});
    distinct_docs += differ;
  }
  EXPECT_GT(distinct_docs, 0u);
}

// The OpenAI backend sends one request per sampled (doc, sample), n = 1, with a seed of its own
// that depends only on the sampling seed and the sample's stream; greedy requests still batch.
TEST(OpenAiSampling, OneRequestPerSampleWithItsOwnSeed) {
  httplib::Server server;
  std::mutex mu;
  std::vector<nlohmann::json> payloads;
  server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    const auto body = nlohmann::json::parse(req.body);
    const size_t n = body["prompt"].is_array() ? body["prompt"].size() : 1;
    nlohmann::json choices = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i) choices.push_back({{"index", i}, {"text", "x"}});
    {
      std::lock_guard<std::mutex> lock(mu);
      payloads.push_back(body);
    }
    res.set_content(nlohmann::json({{"choices", choices}}).dump(), "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  for (int i = 0; i < 2000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  OpenAiOptions o;
  o.endpoint = fmt::format("http://127.0.0.1:{}/v1", port);
  o.served_model = "m";
  o.batch_size = 4;
  o.concurrency = 2;
  auto backend = MakeOpenAiBackend(o);
  ASSERT_TRUE(backend.ok());
  auto requests = [](bool sample) {
    std::vector<GenerationRequest> reqs;
    for (size_t doc = 0; doc < 2; ++doc) {
      for (size_t s = 0; s < (sample ? 3 : 1); ++s) {
        GenerationRequest r;
        r.key = {"t", doc, s};
        r.prompt = fmt::format("p{}", doc);
        r.kwargs.do_sample = sample;
        r.kwargs.temperature = sample ? 1.0 : 0.0;
        r.kwargs.top_p = 0.9;
        r.seed = 7;
        r.stream = SampleStream(r.key);
        reqs.push_back(r);
      }
    }
    return reqs;
  };
  auto seeds = [&] {
    std::multiset<uint64_t> out;
    for (const auto& p : payloads) out.insert(p["seed"].get<uint64_t>());
    return out;
  };
  ASSERT_TRUE((*backend)->Generate(requests(true), nullptr).ok());
  ASSERT_EQ(payloads.size(), 6u);
  for (const auto& p : payloads) {
    EXPECT_EQ(p["n"], 1);
    EXPECT_EQ(p["top_p"], 0.9);
    EXPECT_EQ(p["temperature"], 1.0);
    EXPECT_TRUE(p["prompt"].is_string());
    EXPECT_LE(p["seed"].get<uint64_t>(), uint64_t{INT64_MAX});
  }
  const auto first = seeds();
  EXPECT_EQ(std::set<uint64_t>(first.begin(), first.end()).size(), 6u);
  payloads.clear();
  ASSERT_TRUE((*backend)->Generate(requests(true), nullptr).ok());
  EXPECT_EQ(seeds(), first);  // the same seeds on a rerun, whatever the arrival order
  payloads.clear();
  ASSERT_TRUE((*backend)->Generate(requests(false), nullptr).ok());
  ASSERT_EQ(payloads.size(), 1u);  // greedy: both prompts in one payload, the run's seed
  EXPECT_EQ(payloads[0]["seed"], o.seed);
  EXPECT_FALSE(payloads[0].contains("n"));
  server.stop();
  thread.join();
}

}  // namespace
}  // namespace rvec::eval
