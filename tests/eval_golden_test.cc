// Golden and integration tests of the evaluation harness on the real data sets: prompts (plain and
// Qwen2.5 chat) equal hand-derived lm-eval prompts, CPython few-shot choices, gold replays score
// 100%, SciQ through a fake log-likelihood, resume, the OpenAI backend against a scripted local
// server, `data pull` from a local mirror, reports, and an end-to-end run on a synthetic model.
#include <gtest/gtest.h>
#include <httplib.h>
#include <zlib.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "base/sha256.h"
#include "eval/backend.h"
#include "eval/data.h"
#include "eval/python/pyre.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/task.h"
#include "eval/tasks/humaneval.h"
#include "model/engine.h"
#include "synth/synth.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  const fs::path d = TestDataDir(RVEC_TEST_DATA_DEFAULT);
  if (!DataFileExists(d / "gsm8k" / "test.jsonl")) {
    ADD_FAILURE() << "test data missing: " << (d / "gsm8k" / "test.jsonl[.gz]")
                  << " (the repository's testdata/, or RVEC_TEST_DATA)";
  }
  return d;
}

fs::path GoldenDir() { return fs::path(RVEC_SOURCE_DIR) / "tests" / "golden"; }

fs::path Scratch(const std::string& name) {
  fs::path p = fs::path(RVEC_BINARY_DIR) / "eval_test_scratch" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

nlohmann::json ReadJson(const fs::path& p) {
  auto text = ReadFileToString(p);
  EXPECT_TRUE(text.ok()) << p;
  return nlohmann::json::parse(*text);
}

const ChatTemplate& QwenTemplate() {
  static ChatTemplate* t = [] {
    auto r = ChatTemplate::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return new ChatTemplate(std::move(r).value());
  }();
  return *t;
}

std::unique_ptr<EvalTask> LoadTask(const std::string& name) {
  auto t = TaskRegistry::Global().Create(name);
  EXPECT_TRUE(t.ok()) << name;
  Status s = (*t)->Load(DataDir());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(t).value();
}

// ---- prompts ----------------------------------------------------------------------------------

TEST(EvalGolden, PromptsMatchHandDerivedLmEvalPrompts) {
  // humaneval_instruct loads only with code execution allowed; building prompts runs nothing.
  const CodeExecutionOptions saved = GetCodeExecutionOptions();
  CodeExecutionOptions exec = saved;
  exec.allow = true;
  SetCodeExecutionOptions(exec);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(GoldenDir() / "eval_prompts")) {
    const nlohmann::json golden = ReadJson(e.path());
    const std::string task_name = golden["task"];
    SCOPED_TRACE(task_name);
    auto task = LoadTask(task_name);
    const size_t n = golden["docs"].size();
    PromptOptions plain;
    auto p = task->BuildPrompts(n, plain);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    PromptOptions chat;
    chat.chat_template = &QwenTemplate();
    auto c = task->BuildPrompts(n, chat);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    for (size_t i = 0; i < n; ++i) {
      const auto& g = golden["docs"][i];
      EXPECT_EQ((*p)[i].context, g["plain"].get<std::string>()) << "plain doc " << i;
      EXPECT_EQ((*c)[i].context, g["chat"].get<std::string>()) << "chat doc " << i;
      if (g.contains("fewshot_indices")) {
        EXPECT_EQ((*p)[i].fewshot_indices, g["fewshot_indices"].get<std::vector<size_t>>());
      }
      if (g.contains("continuations_plain")) {
        EXPECT_EQ((*p)[i].continuations, g["continuations_plain"].get<std::vector<std::string>>());
        EXPECT_EQ((*c)[i].continuations, g["continuations_chat"].get<std::vector<std::string>>());
      }
      if (g.contains("target")) {
        EXPECT_EQ(task->Target(i), g["target"].get<std::string>());
      }
    }
    ++files;
  }
  SetCodeExecutionOptions(saved);
  EXPECT_GE(files, 13u);
}

TEST(EvalGolden, SystemInstructionJoinsDescriptionLikeLmEval) {
  auto task = LoadTask("bbh_cot_fewshot_boolean_expressions");
  PromptOptions o;
  o.system_instruction = "Be brief.";
  auto p = task->BuildPrompts(1, o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)[0].context.rfind("Be brief.\n\nEvaluate the result of a random Boolean", 0), 0u);
  o.chat_template = &QwenTemplate();
  p = task->BuildPrompts(1, o);
  EXPECT_EQ((*p)[0].context.rfind(
                "<|im_start|>system\nBe brief.\n\nEvaluate the result of a random Boolean", 0),
            0u);
  // No description: the system instruction replaces Qwen's default system prompt.
  auto gsm = LoadTask("gsm8k_cot_zeroshot");
  p = gsm->BuildPrompts(1, o);
  EXPECT_EQ(
      (*p)[0].context.rfind("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ: ", 0),
      0u);
}

TEST(EvalGolden, Gsm8kFewshotIndicesEqualCPythonRandom) {
  const nlohmann::json golden = ReadJson(GoldenDir() / "gsm8k_fewshot_seed1234.json");
  auto task = LoadTask("gsm8k");
  for (const auto& [seed, key] : std::vector<std::pair<uint64_t, std::string>>{
           {1234, "indices"}, {42, "indices_seed42"}, {0, "indices_seed0"}}) {
    PromptOptions o;
    o.fewshot_seed = seed;
    auto p = task->BuildPrompts(20, o);
    ASSERT_TRUE(p.ok());
    for (size_t i = 0; i < 20; ++i) {
      EXPECT_EQ((*p)[i].fewshot_indices, golden[key][i].get<std::vector<size_t>>())
          << "seed " << seed << " doc " << i;
    }
  }
}

// ---- replay of gold answers ---------------------------------------------------------------------

// Writes a replay file where every doc's output is its gold answer in the task's answer format.
fs::path WriteGoldReplay(const fs::path& dir, const std::vector<std::string>& tasks,
                         const std::function<std::string(const EvalTask&, size_t)>& format) {
  std::string lines;
  auto resolved = ResolveTaskList(tasks);
  EXPECT_TRUE(resolved.ok());
  for (const auto& name : resolved->leaves) {
    auto task = LoadTask(name);
    for (size_t i = 0; i < task->size(); ++i) {
      lines +=
          nlohmann::json({{"task", name}, {"doc_id", i}, {"output", format(*task, i)}}).dump() +
          "\n";
    }
  }
  const fs::path p = dir / "gold.jsonl";
  EXPECT_TRUE(WriteFileAtomic(p, lines).ok());
  return p;
}

StatusOr<nlohmann::json> RunEval(Backend& backend, const std::vector<std::string>& tasks,
                                 const fs::path& out, std::optional<size_t> limit = std::nullopt) {
  EvalOptions o;
  o.tasks = tasks;
  o.data_dir = DataDir();
  o.output_dir = out;
  o.limit = limit;
  o.provenance = {{"model", "test"}};
  return RunEvaluation(backend, o);
}

TEST(EvalGolden, ReplayOfGoldAnswersScoresFullMarksOnGsm8k) {
  const fs::path dir = Scratch("gold_gsm8k");
  const fs::path gold =
      WriteGoldReplay(dir, {"gsm8k", "gsm8k_cot_zeroshot"}, [](const EvalTask& t, size_t i) {
        // The reference rationale, ending "#### N".
        return t.doc(i)["answer"].get<std::string>();
      });
  auto backend = MakeReplayBackend(gold);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto r = RunEval(**backend, {"gsm8k", "gsm8k_cot_zeroshot"}, dir / "run");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& g = (*r)["results"]["gsm8k"];
  EXPECT_EQ(g["exact_match,strict-match"].get<double>(), 1.0);
  EXPECT_EQ(g["exact_match,flexible-extract"].get<double>(), 1.0);
  EXPECT_EQ(g["exact_match_stderr,strict-match"].get<double>(), 0.0);
  EXPECT_EQ((*r)["n-samples"]["gsm8k"]["effective"].get<size_t>(), 1319u);
  EXPECT_EQ((*r)["versions"]["gsm8k"].get<double>(), 3.0);
  EXPECT_EQ((*r)["n-shot"]["gsm8k"].get<int>(), 5);
  EXPECT_EQ((*r)["results"]["gsm8k_cot_zeroshot"]["exact_match,flexible-extract"].get<double>(),
            1.0);
  // gsm8k_cot: "The answer is N." after the final number.
  const fs::path cot = WriteGoldReplay(dir, {"gsm8k_cot"}, [](const EvalTask& t, size_t i) {
    return "Some reasoning. The answer is " + t.Target(i) + ".";
  });
  auto b2 = MakeReplayBackend(cot);
  ASSERT_TRUE(b2.ok());
  r = RunEval(**b2, {"gsm8k_cot"}, dir / "run_cot");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["results"]["gsm8k_cot"]["exact_match,strict-match"].get<double>(), 1.0);
  EXPECT_EQ((*r)["results"]["gsm8k_cot"]["exact_match,flexible-extract"].get<double>(), 1.0);
}

TEST(EvalGolden, ReplayOfGoldAnswersScoresFullMarksOnBbh) {
  const fs::path dir = Scratch("gold_bbh");
  const fs::path cot = WriteGoldReplay(dir, {"bbh_cot_fewshot"}, [](const EvalTask& t, size_t i) {
    return "Let us reason.\nSo the answer is " + t.Target(i) + ".";
  });
  auto b = MakeReplayBackend(cot);
  ASSERT_TRUE(b.ok());
  auto r = RunEval(**b, {"bbh_cot_fewshot"}, dir / "cot");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["results"]["bbh_cot_fewshot"]["exact_match,get-answer"].get<double>(), 1.0);
  EXPECT_EQ((*r)["n-samples"]["bbh_cot_fewshot"]["effective"].get<size_t>(), 6511u);
  EXPECT_EQ((*r)["group_subtasks"]["bbh_cot_fewshot"].size(), 27u);
  const fs::path zero = WriteGoldReplay(dir, {"bbh_zeroshot"},
                                        [](const EvalTask& t, size_t i) { return t.Target(i); });
  auto b2 = MakeReplayBackend(zero);
  ASSERT_TRUE(b2.ok());
  r = RunEval(**b2, {"bbh_zeroshot"}, dir / "zero");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // lm-eval's own flexible-extract cannot score 3 gold answers that are option texts rather than
  // letters (movie_recommendation 163, ruin_names 99 and 144): it maps them to an option letter.
  EXPECT_DOUBLE_EQ((*r)["results"]["bbh_zeroshot"]["exact_match,flexible-extract"].get<double>(),
                   6508.0 / 6511.0);
  for (const auto& s : (*r)["group_subtasks"]["bbh_zeroshot"]) {
    EXPECT_EQ((*r)["results"][s.get<std::string>()]["exact_match,strict-match"].get<double>(), 1.0)
        << s;
  }
}

// ---- SciQ with a fake log-likelihood
// --------------------------------------------------------------

// ll of a choice by doc_id % 4: gold best; all equal (ties); -chars (acc_norm ties); gold worst.
class FakeLoglikelihood : public Backend {
 public:
  std::string Kind() const override { return "fake"; }
  nlohmann::json Config() const override { return nlohmann::json::object(); }
  StatusOr<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>&,
                                                   Progress*) override {
    return Unimplemented("fake");
  }
  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress*) override {
    std::vector<LoglikelihoodResult> out;
    for (const auto& r : requests) {
      if (r.continuation.empty() || r.continuation[0] != ' ') seen_bad_delimiter = true;
      const double chars = static_cast<double>(PyLen(r.continuation) - 1);
      LoglikelihoodResult x;
      switch (r.key.doc_id % 4) {
        case 0:
          x.logprob = r.key.index == 3 ? -1.0 : -5.0 - r.key.index;
          break;
        case 1:
          x.logprob = -2.0;
          break;
        case 2:
          x.logprob = -chars;
          break;
        default:
          x.logprob = r.key.index == 3 ? -50.0 : -1.0;
          break;
      }
      out.push_back(x);
    }
    return out;
  }
  bool seen_bad_delimiter = false;
};

TEST(EvalGolden, SciqAccAndAccNormThroughFakeLoglikelihood) {
  FakeLoglikelihood backend;
  const size_t n = 40;
  auto r = RunEval(backend, {"sciq"}, Scratch("sciq") / "run", n);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(backend.seen_bad_delimiter);  // continuation = " " + choice
  auto task = LoadTask("sciq");
  double acc = 0, acc_norm = 0;
  for (size_t i = 0; i < n; ++i) {
    const Doc& d = task->doc(i);
    std::vector<std::string> c = {d["distractor1"], d["distractor2"], d["distractor3"],
                                  d["correct_answer"]};
    switch (i % 4) {
      case 0:  // gold strictly best under both
        acc += 1;
        acc_norm += 1;
        break;
      case 1:  // exact ties: the first index wins, gold (3) loses acc; acc_norm prefers longer
      {
        size_t best = 0;
        for (size_t k = 1; k < 4; ++k) {
          if (-2.0 / PyLen(c[k]) > -2.0 / PyLen(c[best])) best = k;
        }
        acc_norm += best == 3;
        break;
      }
      case 2: {  // ll = -chars: acc picks the first shortest; acc_norm all -1: tie -> index 0
        size_t best = 0;
        for (size_t k = 1; k < 4; ++k) {
          if (PyLen(c[k]) < PyLen(c[best])) best = k;
        }
        acc += best == 3;
        break;
      }
      default:
        break;
    }
  }
  const auto& s = (*r)["results"]["sciq"];
  EXPECT_DOUBLE_EQ(s["acc,none"].get<double>(), acc / n);
  EXPECT_DOUBLE_EQ(s["acc_norm,none"].get<double>(), acc_norm / n);
  EXPECT_GT(s["acc_stderr,none"].get<double>(), 0.0);
}

// ---- resume
// --------------------------------------------------------------------------------------

class CountingReplay : public Backend {
 public:
  explicit CountingReplay(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string Kind() const override { return "replay"; }
  nlohmann::json Config() const override { return inner_->Config(); }
  StatusOr<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& r,
                                                   Progress* p) override {
    generated += r.size();
    return inner_->Generate(r, p);
  }
  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& r, Progress* p) override {
    return inner_->LogLikelihood(r, p);
  }
  size_t generated = 0;

 private:
  std::unique_ptr<Backend> inner_;
};

TEST(EvalGolden, InterruptedRunResumesFromScoredSamples) {
  const fs::path dir = Scratch("resume");
  const fs::path gold = WriteGoldReplay(dir, {"gsm8k"}, [](const EvalTask& t, size_t i) {
    return i % 3 ? t.doc(i)["answer"].get<std::string>() : std::string("no idea");
  });
  auto make = [&] {
    auto b = MakeReplayBackend(gold);
    EXPECT_TRUE(b.ok());
    return CountingReplay(std::move(b).value());
  };
  CountingReplay full = make();
  auto reference = RunEval(full, {"gsm8k"}, dir / "full", 30);
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(full.generated, 30u);
  // A second run into the finished directory is refused.
  CountingReplay again = make();
  auto refused = RunEval(again, {"gsm8k"}, dir / "full", 30);
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);

  // Simulate an interruption: 12 complete lines + a torn one, no results.json.
  fs::create_directories(dir / "cut");
  fs::copy_file(dir / "full" / "run.json", dir / "cut" / "run.json");
  auto text = ReadFileToString(dir / "full" / "samples_gsm8k.jsonl");
  size_t pos = 0;
  for (int i = 0; i < 12; ++i) pos = text->find('\n', pos) + 1;
  ASSERT_TRUE(WriteFileAtomic(dir / "cut" / "samples_gsm8k.jsonl",
                              text->substr(0, pos) + text->substr(pos, 40))
                  .ok());
  CountingReplay resumed = make();
  auto r = RunEval(resumed, {"gsm8k"}, dir / "cut", 30);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(resumed.generated, 18u);
  EXPECT_EQ((*r)["results"], (*reference)["results"]);
  auto lines = ReadSamples(dir / "cut", "gsm8k");
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), 30u);
  // Different settings are refused rather than mixed.
  fs::remove(dir / "cut" / "results.json");
  CountingReplay other = make();
  EXPECT_FALSE(RunEval(other, {"gsm8k"}, dir / "cut", 31).ok());
}

// ---- OpenAI backend against a scripted local server
// ----------------------------------------------

class ScriptedServer {
 public:
  ScriptedServer() {
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const auto body = nlohmann::json::parse(req.body);
      const size_t n = ++requests;
      {
        std::lock_guard<std::mutex> lock(mu);
        payloads.push_back(body);
      }
      if (fail_first && n == 1) {
        res.status = 503;
        res.set_content("overloaded", "text/plain");
        return;
      }
      if (body.value("model", "") != "served") {
        res.status = 404;
        res.set_content("{\"error\":\"no such model\"}", "application/json");
        return;
      }
      nlohmann::json prompts = body["prompt"];
      if (!prompts.is_array() || (!prompts.empty() && prompts[0].is_number())) {
        prompts = nlohmann::json::array({prompts});
      }
      nlohmann::json choices = nlohmann::json::array();
      // Answer in reverse order to check that choices are restored by index.
      for (size_t i = prompts.size(); i-- > 0;) {
        nlohmann::json c = {{"index", i}, {"finish_reason", "stop"}};
        if (body.value("echo", false)) {
          const auto& ids = prompts[i];
          nlohmann::json tlp = nlohmann::json::array({nullptr}),
                         top = nlohmann::json::array({nullptr});
          for (size_t t = 1; t <= ids.size(); ++t) {
            // Position t holds the generated token when t == ids.size().
            const int id = t < ids.size() ? ids[t].get<int>() : 0;
            const double lp = -static_cast<double>(id % 7 + 1) / 10.0;
            tlp.push_back(lp);
            top.push_back({{"x", (id % 2) ? lp : lp + 0.5}});
          }
          c["text"] = "";
          c["logprobs"] = {{"token_logprobs", tlp}, {"top_logprobs", top}};
        } else {
          // Token-id prompts (a tokenizer was given) are answered from their JSON text.
          const std::string p =
              prompts[i].is_string() ? prompts[i].get<std::string>() : prompts[i].dump();
          c["text"] = " Answer to [" + p.substr(p.size() - 3) + "] #### 42\n\nQuestion: more";
        }
        choices.push_back(c);
      }
      res.set_content(nlohmann::json({{"choices", choices}}).dump(), "application/json");
    });
    port = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 2000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~ScriptedServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }

  int port = 0;
  std::atomic<size_t> requests{0};
  bool fail_first = false;
  std::mutex mu;
  std::vector<nlohmann::json> payloads;

 private:
  httplib::Server server_;
  std::thread thread_;
};

TEST(EvalGolden, OpenAiBackendGenerationConcurrencyAndRetries) {
  ScriptedServer server;
  server.fail_first = true;
  OpenAiOptions o;
  o.endpoint = server.url();
  o.served_model = "served";
  o.concurrency = 4;
  o.batch_size = 2;
  o.backoff_initial_s = 0.01;
  auto backend = MakeOpenAiBackend(o);
  ASSERT_TRUE(backend.ok());
  std::vector<GenerationRequest> reqs(9);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].prompt = fmt::format("prompt {:03d}", i);
    reqs[i].kwargs.until = {"Question:", "</s>"};
    reqs[i].kwargs.max_gen_toks = 7;
  }
  auto out = (*backend)->Generate(reqs, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (size_t i = 0; i < reqs.size(); ++i) {
    // Order restored, and the text cut before the stop string.
    EXPECT_EQ((*out)[i].text, fmt::format(" Answer to [{:03d}] #### 42\n\n", i));
  }
  EXPECT_EQ(server.requests.load(), 6u);  // 5 batches + 1 retried 503
  for (const auto& p : server.payloads) {
    EXPECT_EQ(p["max_tokens"], 7);
    EXPECT_EQ(p["temperature"], 0.0);
    EXPECT_EQ(p["stop"], nlohmann::json({"Question:", "</s>"}));
  }
  // A deterministic 4xx is not retried.
  o.served_model = "missing";
  auto bad = MakeOpenAiBackend(o);
  const size_t before = server.requests.load();
  auto err = (*bad)->Generate({reqs[0]}, nullptr);
  EXPECT_FALSE(err.ok());
  EXPECT_EQ(server.requests.load(), before + 1);
  EXPECT_NE(err.status().message().find("404"), std::string::npos);
  // An unreachable server fails after the retries with a clear error.
  o.endpoint = "http://127.0.0.1:1/v1";
  o.max_retries = 2;
  o.timeout_s = 1;
  auto down = MakeOpenAiBackend(o);
  auto err2 = (*down)->Generate({reqs[0]}, nullptr);
  EXPECT_FALSE(err2.ok());
  EXPECT_NE(err2.status().message().find("2 attempt"), std::string::npos);
}

TEST(EvalGolden, OpenAiBackendLoglikelihoodTokenizedLocally) {
  ScriptedServer server;
  auto tok = Tokenizer::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  OpenAiOptions o;
  o.endpoint = server.url();
  o.served_model = "served";
  o.tokenizer = &*tok;
  o.concurrency = 3;
  auto backend = MakeOpenAiBackend(o);
  ASSERT_TRUE(backend.ok());
  std::vector<LoglikelihoodRequest> reqs;
  for (const char* cont : {" mitochondria", " ribosome", " the nucleus", " Golgi"}) {
    LoglikelihoodRequest r;
    r.context = "Question: Which organelle makes ATP?\nAnswer:";
    r.continuation = cont;
    reqs.push_back(r);
  }
  LoglikelihoodRequest trailing;
  trailing.context = "Trailing space moves: ";
  trailing.continuation = "x";
  reqs.push_back(trailing);
  auto out = (*backend)->LogLikelihood(reqs, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::string ctx = reqs[i].context, cont = reqs[i].continuation;
    const std::string trimmed = PyRStrip(ctx);
    cont = ctx.substr(trimmed.size()) + cont;
    const auto whole = tok->Encode(trimmed + cont);
    const auto ctx_ids = tok->Encode(trimmed);
    double expected = 0;
    bool greedy = true;
    for (size_t t = ctx_ids.size(); t < whole.size(); ++t) {
      expected += -static_cast<double>(whole[t] % 7 + 1) / 10.0;
      if (whole[t] % 2 == 0) greedy = false;
    }
    EXPECT_NEAR((*out)[i].logprob, expected, 1e-12) << i;
    EXPECT_EQ((*out)[i].is_greedy, greedy) << i;
  }
  for (const auto& p : server.payloads) {
    EXPECT_TRUE(p["echo"].get<bool>());
    EXPECT_EQ(p["max_tokens"], 1);
    EXPECT_EQ(p["logprobs"], 1);
    EXPECT_TRUE(p["prompt"][0].is_array());  // token ids
  }
}

// ---- data pull from a local mirror
// ----------------------------------------------------------------

TEST(EvalGolden, DataPullFromLocalMirrorChecksHashes) {
  const fs::path data = DataDir();
  httplib::Server server;
  std::atomic<bool> corrupt{false};
  server.Get(R"(/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    auto text = ReadDataFile(data / req.matches[1].str());  // the mirror serves them plain
    if (!text.ok()) {
      res.status = 404;
      return;
    }
    std::string body = *text;
    if (corrupt) body[body.size() / 2] ^= 1;
    res.set_content(body, "application/octet-stream");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  for (int i = 0; i < 2000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const fs::path dir = Scratch("pull");
  PullOptions o;
  o.data_dir = dir / "data";
  o.mirror = "http://127.0.0.1:" + std::to_string(port);
  auto r = PullData({"gsm8k_cot", "bbh"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->downloaded.size(), 2u + 54u);
  auto problems = VerifyData({"gsm8k", "bbh"}, o.data_dir);
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
  r = PullData({"gsm8k"}, o);
  EXPECT_EQ(r->already_present.size(), 2u);
  // A corrupted download is refused and nothing is installed.
  corrupt = true;
  o.data_dir = dir / "bad";
  auto bad = PullData({"gsm8k"}, o);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SHA-256"), std::string::npos);
  EXPECT_FALSE(fs::exists(o.data_dir / "gsm8k" / "test.jsonl"));
  server.stop();
  t.join();
  // A missing data set is an error that says how to get it.
  auto task = TaskRegistry::Global().Create("sciq");
  Status s = (*task)->Load(dir / "data");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("rvec data pull sciq"), std::string::npos);
}

// Builds a ZIP with one stored and one deflated member (as SciQ.zip is deflated).
TEST(EvalGolden, ZipExtraction) {
  auto le16 = [](std::string& s, uint16_t v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>(v >> 8);
  };
  auto le32 = [&](std::string& s, uint32_t v) {
    le16(s, v & 0xFFFF);
    le16(s, v >> 16);
  };
  const std::string a = "stored member", b = std::string(5000, 'x') + "deflated member";
  std::string deflated(compressBound(b.size()), '\0');
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data()));
  zs.avail_in = b.size();
  zs.next_out = reinterpret_cast<Bytef*>(deflated.data());
  zs.avail_out = deflated.size();
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  deflated.resize(zs.total_out);
  deflateEnd(&zs);
  std::string zip, central;
  struct M {
    std::string name, data;
    uint16_t method;
    size_t usize;
  };
  uint16_t count = 0;
  for (const M& m : {M{"d/a.txt", a, 0, a.size()}, M{"d/b.txt", deflated, 8, b.size()}}) {
    const uint32_t offset = zip.size();
    le32(zip, 0x04034b50);
    le16(zip, 20);
    le16(zip, 0);
    le16(zip, m.method);
    le32(zip, 0);
    le32(zip, 0);
    le32(zip, m.data.size());
    le32(zip, m.usize);
    le16(zip, m.name.size());
    le16(zip, 0);
    zip += m.name + m.data;
    le32(central, 0x02014b50);
    le16(central, 20);
    le16(central, 20);
    le16(central, 0);
    le16(central, m.method);
    le32(central, 0);
    le32(central, 0);
    le32(central, m.data.size());
    le32(central, m.usize);
    le16(central, m.name.size());
    le16(central, 0);
    le16(central, 0);
    le16(central, 0);
    le16(central, 0);
    le32(central, 0);
    le32(central, offset);
    central += m.name;
    ++count;
  }
  const uint32_t cd = zip.size();
  zip += central;
  le32(zip, 0x06054b50);
  le16(zip, 0);
  le16(zip, 0);
  le16(zip, count);
  le16(zip, count);
  le32(zip, central.size());
  le32(zip, cd);
  le16(zip, 0);
  EXPECT_EQ(*ExtractZipMember(zip, "d/a.txt"), a);
  EXPECT_EQ(*ExtractZipMember(zip, "d/b.txt"), b);
  EXPECT_FALSE(ExtractZipMember(zip, "d/c.txt").ok());
  EXPECT_FALSE(ExtractZipMember(zip.substr(0, 40), "d/a.txt").ok());
}

// ---- report
// --------------------------------------------------------------------------------------

TEST(EvalGolden, ReportComparesRunsWithMcNemar) {
  const fs::path dir = Scratch("report");
  // Run A right on docs 0..19, run B right on docs 5..29 (A-only: 5, B-only: 10).
  auto replay = [&](const std::string& name, size_t lo, size_t hi) {
    return WriteGoldReplay(dir / name, {"gsm8k"}, [lo, hi](const EvalTask& t, size_t i) {
      return (i >= lo && i < hi) ? t.doc(i)["answer"].get<std::string>() : std::string("0");
    });
  };
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  auto ba = MakeReplayBackend(replay("a", 0, 20));
  auto bb = MakeReplayBackend(replay("b", 5, 30));
  ASSERT_TRUE(RunEval(**ba, {"gsm8k"}, dir / "run_a", 40).ok());
  ASSERT_TRUE(RunEval(**bb, {"gsm8k"}, dir / "run_b", 40).ok());
  auto report = BuildReport({dir / "run_a", dir / "run_b"}, {"base", "tuned"});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->columns.size(), 2u);
  const ReportCell& cell = report->cells[1][1];
  EXPECT_NEAR(*cell.delta, 25.0 / 40 - 20.0 / 40, 1e-12);
  EXPECT_EQ(cell.only_this, 10u);
  EXPECT_EQ(cell.only_first, 5u);
  EXPECT_NEAR(*cell.p_value, 0.30175781250, 1e-9);  // 2 * P[Bin(15, .5) <= 5]
  const std::string md = RenderMarkdown(*report);
  EXPECT_NE(md.find("62.5 ± 7.8 (+12.5) p=0.302 |"), std::string::npos) << md;
  const std::string html = RenderHtml(*report);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<rect"), std::string::npos);
  EXPECT_EQ(
      ReportToJson(
          *report)["runs"][1]["metrics"]["gsm8k"]["exact_match,strict-match"]["only_this_correct"],
      10);
}

// ---- end to end on a synthetic model
LoglikelihoodRequest LlRequest(const std::string& task, size_t doc, size_t index,
                               const std::string& context, const std::string& continuation) {
  LoglikelihoodRequest r;
  r.key.task = task;
  r.key.doc_id = doc;
  r.key.index = index;
  r.context = context;
  r.continuation = continuation;
  return r;
}

// Long prompts are cut from the left as lm-eval does, and the cuts are counted in Config().
TEST(EvalGolden, OpenAiBackendLeftTruncatesLongPrompts) {
  ScriptedServer server;
  auto tok = Tokenizer::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  OpenAiOptions o;
  o.endpoint = server.url();
  o.served_model = "served";
  o.tokenizer = &*tok;
  o.concurrency = 1;
  o.max_length = 12;
  auto backend = MakeOpenAiBackend(o);
  ASSERT_TRUE(backend.ok());
  const LoglikelihoodRequest shortr = LlRequest("t", 0, 0, "Question: 2+2?\nAnswer:", " 4");
  const LoglikelihoodRequest longr =
      LlRequest("t", 1, 0,
                "A long context that certainly has more than twelve tokens in it, so that it "
                "must be cut.\nAnswer:",
                " yes indeed");
  auto out = (*backend)->LogLikelihood({shortr, longr}, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // The echo route keeps the last max_length - 1 tokens (prompt + generated token fit).
  const auto whole = tok->Encode(longr.context + longr.continuation);
  const std::vector<int32_t> kept(whole.end() - 11, whole.end());
  ASSERT_EQ(server.payloads.size(), 3u);  // probe, then one request per prompt
  EXPECT_EQ(server.payloads[2]["prompt"][0], nlohmann::json(kept));
  const auto cont = tok->Encode(std::string(" yes indeed"));
  double expected = 0;
  for (int32_t id : cont) expected += -static_cast<double>(id % 7 + 1) / 10.0;
  EXPECT_NEAR((*out)[1].logprob, expected, 1e-12);
  // Generation keeps max_length - max_gen_toks context tokens and sends ids.
  GenerationRequest g;
  g.prompt = longr.context;
  g.kwargs.until = {"\n\n"};
  g.kwargs.max_gen_toks = 4;
  auto gen = (*backend)->Generate({g}, nullptr);
  ASSERT_TRUE(gen.ok()) << gen.status().ToString();
  const auto ids = tok->Encode(longr.context);
  EXPECT_EQ(server.payloads.back()["prompt"],
            nlohmann::json(std::vector<int32_t>(ids.end() - 8, ids.end())));
  const auto config = (*backend)->Config();
  EXPECT_EQ(config["left_truncated_prompts"]["loglikelihood"], 1);
  EXPECT_EQ(config["left_truncated_prompts"]["generation"], 1);
  EXPECT_EQ(config["loglikelihood_route"], "echo");
  // A continuation longer than the context is refused, not scored on a stub.
  const LoglikelihoodRequest hopeless =
      LlRequest("t", 2, 0, "Q:", " one two three four five six seven eight nine ten eleven twelve");
  auto bad = (*backend)->LogLikelihood({hopeless}, nullptr);
  EXPECT_FALSE(bad.ok());
}

// ---- The OpenAI backend against answers recorded from a real llama.cpp llama-server ----------
// tests/data/llama_server/README.md says how they were recorded. The replay server answers only
// the exact requests recorded, so any change to what rvec sends fails here.

struct RecordedExchange {
  std::string method, path;
  nlohmann::json request, response;
  int status = 200;
};

class ReplayServer {
 public:
  explicit ReplayServer(const fs::path& jsonl) {
    std::ifstream in(jsonl);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      exchanges_.push_back({j["method"], j["path"], j["request"], j["response"], j["status"]});
    }
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      const nlohmann::json body =
          req.body.empty() ? nlohmann::json() : nlohmann::json::parse(req.body, nullptr, false);
      for (const auto& e : exchanges_) {
        if (e.method == req.method && e.path == req.path && e.request == body) {
          res.status = e.status;
          res.set_content(e.response.dump(), "application/json");
          return;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (req.method == "POST") unmatched.push_back(req.path + " " + req.body);
      res.status = 404;
      res.set_content("{\"error\":\"not recorded\"}", "application/json");
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 2000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~ReplayServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  size_t size() const { return exchanges_.size(); }

  std::mutex mu;
  std::vector<std::string> unmatched;

 private:
  std::vector<RecordedExchange> exchanges_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

std::vector<LoglikelihoodRequest> RecordedLoglikelihoodRequests() {
  const std::string q = "Question: Which organelle makes most of a cell's ATP?\nAnswer:";
  return {LlRequest("sciq", 0, 0, q, " mitochondria"), LlRequest("sciq", 0, 1, q, " the ribosome"),
          LlRequest("sciq", 0, 2, q, " Golgi apparatus"),
          LlRequest("sciq", 1, 0, "Trailing space moves: ", "x")};
}

GenerationRequest RecordedGenerationRequest() {
  GenerationRequest g;
  g.key = {"gsm8k", 0, 0};
  g.prompt = "Question: What is 2+2?\nAnswer:";
  g.kwargs.until = {"\n\n", "Question:"};
  g.kwargs.max_gen_toks = 16;
  return g;
}

// The synthetic model the answers were recorded from (README.md), written here so that rvec's
// own engine can score the same requests.
StatusOr<fs::path> RecordedModel(const fs::path& dir) {
  SynthOptions so;
  so.preset = "tiny-qwen2";
  so.seed = 7;
  so.tokenizer_dir = DataDir() / "qwen-tokenizer" / "qwen2.5";
  so.out = dir / "base";
  RETURN_IF_ERROR(WriteSyntheticModel(so, nullptr).status());
  PerturbOptions po;
  po.base = dir / "base";
  po.out = dir / "model";
  po.seed = 3;
  po.stddev = 0.1;
  RETURN_IF_ERROR(WritePerturbedModel(po, nullptr).status());
  return dir / "model";
}

TEST(EvalGolden, OpenAiBackendOnRecordedLlamaServer) {
  const fs::path fixture =
      fs::path(RVEC_SOURCE_DIR) / "tests" / "data" / "llama_server" / "exchanges.jsonl";
  ReplayServer replay(fixture);
  // RVEC_LLAMA_SERVER_RECORD=http://HOST:PORT/v1 points this test at a live server (through
  // record.py) to record new answers instead.
  const char* record = std::getenv("RVEC_LLAMA_SERVER_RECORD");
  if (!record) {
    ASSERT_GT(replay.size(), 10u) << fixture;
  }
  auto tok = Tokenizer::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  OpenAiOptions o;
  o.endpoint = record ? record : replay.url();
  o.served_model = "gmodel";
  o.tokenizer = &*tok;
  o.concurrency = 1;
  o.max_length = 32768;
  auto backend = MakeOpenAiBackend(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  const auto ll_requests = RecordedLoglikelihoodRequests();
  auto ll = (*backend)->LogLikelihood(ll_requests, nullptr);
  ASSERT_TRUE(ll.ok()) << ll.status().ToString();
  auto gen = (*backend)->Generate({RecordedGenerationRequest()}, nullptr);
  ASSERT_TRUE(gen.ok()) << gen.status().ToString();
  if (record) GTEST_SKIP() << "recorded through " << record << "; replay not checked";
  EXPECT_TRUE(replay.unmatched.empty()) << replay.unmatched.front();
  // The server was recognised as llama.cpp and scored through its native route: its echo answer
  // (recorded) carries the generated token's logprob only.
  const auto config = (*backend)->Config();
  EXPECT_EQ(config["server"]["kind"], "llamacpp");
  EXPECT_EQ(config["server"]["detected_by"], "/v1/models owned_by");
  EXPECT_EQ(config["server"]["version"], "b1-80fb11a");
  EXPECT_EQ(config["server"]["context"], 4096);  // llama-server -c 4096
  EXPECT_EQ(config["loglikelihood_route"].get<std::string>().rfind("llamacpp /completion", 0), 0u);

  // rvec's engine on the same weights agrees with llama.cpp's f32 scores.
  const fs::path dir = Scratch("llama_server_replay");
  auto model = RecordedModel(dir);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EngineOptions eo;
  eo.threads = 2;
  eo.kv_dtype = DType::kF32;
  auto engine = Engine::Load(*model, eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto local = MakeLocalBackend(engine->get(), 32768);
  ASSERT_TRUE(local.ok());
  auto local_ll = (*local)->LogLikelihood(ll_requests, nullptr);
  ASSERT_TRUE(local_ll.ok()) << local_ll.status().ToString();
  for (size_t i = 0; i < ll_requests.size(); ++i) {
    EXPECT_NEAR((*ll)[i].logprob, (*local_ll)[i].logprob, 2e-3) << i;
    EXPECT_EQ((*ll)[i].is_greedy, (*local_ll)[i].is_greedy) << i;
    EXPECT_LT((*ll)[i].logprob, 0.0) << i;
  }
  auto local_gen = (*local)->Generate({RecordedGenerationRequest()}, nullptr);
  ASSERT_TRUE(local_gen.ok()) << local_gen.status().ToString();
  EXPECT_EQ((*gen)[0].text, (*local_gen)[0].text);
  EXPECT_FALSE((*gen)[0].text.empty());

  // Told it is vLLM, the same server fails the echo probe: an error naming the task and the
  // server, never a score computed from the generated token's logprob.
  o.server_kind = "vllm";
  auto wrong = MakeOpenAiBackend(o);
  ASSERT_TRUE(wrong.ok());
  auto refused = (*wrong)->LogLikelihood(ll_requests, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("task sciq"), std::string::npos);
  EXPECT_NE(refused.status().message().find("generated token only"), std::string::npos)
      << refused.status().message();
}

// --------------------------------------------------------------

TEST(EvalGolden, EndToEndLocalBackendOnTinySynthModel) {
  const fs::path dir = Scratch("e2e");
  SynthOptions so;
  so.preset = "tiny-qwen2";
  so.seed = 7;
  so.out = dir / "model";
  auto synth = WriteSyntheticModel(so, nullptr);
  ASSERT_TRUE(synth.ok()) << synth.status().ToString();
  EngineOptions eo;
  eo.threads = 2;
  auto engine = Engine::Load(dir / "model", eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto backend = MakeLocalBackend(engine->get(), 2048);  // tiny-qwen2's max_position_embeddings
  ASSERT_TRUE(backend.ok());
  auto chat = ChatTemplate::FromModelDir(dir / "model");
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EvalOptions o;
  o.tasks = {"gsm8k", "sciq"};
  o.data_dir = DataDir();
  o.output_dir = dir / "run";
  o.limit = 5;
  o.chat_template = &*chat;
  o.provenance = {{"model", (dir / "model").string()}};
  auto r = RunEvaluation(**backend, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["n-samples"]["gsm8k"]["effective"], 5);
  const double acc = (*r)["results"]["sciq"]["acc,none"].get<double>();
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  auto samples = ReadSamples(dir / "run", "sciq");
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 5u);
  for (const auto& s : *samples) {
    ASSERT_EQ(s["loglikelihoods"].size(), 4u);
    for (const auto& ll : s["loglikelihoods"]) EXPECT_LT(ll.get<double>(), 0.0);
  }
  // Same inputs, same outputs: a second run reproduces the generations exactly.
  o.output_dir = dir / "run2";
  auto r2 = RunEvaluation(**backend, o);
  ASSERT_TRUE(r2.ok());
  auto a = ReadSamples(dir / "run", "gsm8k"), b = ReadSamples(dir / "run2", "gsm8k");
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*a)[i]["raw_output"], (*b)[i]["raw_output"]);
}

}  // namespace
}  // namespace rvec::eval
