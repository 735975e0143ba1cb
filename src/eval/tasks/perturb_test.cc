// Perturbation tests: each kind changes what it should and nothing else, deterministically.
#include "eval/tasks/perturb.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "base/fs.h"
#include "eval/backend.h"
#include "eval/runner.h"
#include "eval/tasks/gsm8k.h"
#include "eval/tasks/robustness.h"

namespace rvec::eval {
namespace {

const std::string kQuestion =
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer:";

std::filesystem::path DataDir() {
  const auto dir = TestDataDir(RVEC_TEST_DATA_DEFAULT);
  EXPECT_TRUE(DataFileExists(dir / "gsm8k" / "test.jsonl"))
      << "test data missing under " << dir << " (the repository's testdata/, or RVEC_TEST_DATA)";
  return dir;
}

// All integers in a text, in order (to check that answers' numbers survive).
std::vector<std::string> Numbers(const std::string& s) {
  std::vector<std::string> out;
  std::regex re("[0-9]+");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back(it->str());
  }
  return out;
}

TEST(PerturbTest, ParsesSpecs) {
  auto spec = ParsePerturbation("distractor");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, PerturbKind::kDistractor);
  EXPECT_EQ(spec->seed, 0u);
  EXPECT_EQ(spec->ToString(), "distractor:0");
  spec = ParsePerturbation("typos=0.1:7");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, PerturbKind::kTypos);
  EXPECT_EQ(spec->seed, 7u);
  EXPECT_DOUBLE_EQ(spec->rate, 0.1);
  EXPECT_EQ(spec->ToString(), "typos=0.1:7");
  EXPECT_EQ(ParsePerturbation("hint:3")->kind, PerturbKind::kMisleadingHint);
  EXPECT_EQ(ParsePerturbation("number_words")->kind, PerturbKind::kNumberWords);
  EXPECT_EQ(ParsePerturbation("shuffle_fewshot:2")->kind, PerturbKind::kShuffleFewshot);
  EXPECT_FALSE(ParsePerturbation("paraphrase").ok());
  EXPECT_NE(ParsePerturbation("paraphrase").status().message().find("distractor"),
            std::string::npos);
  EXPECT_FALSE(ParsePerturbation("typos=2").ok());
  EXPECT_FALSE(ParsePerturbation("hint=0.1").ok());
  EXPECT_FALSE(ParsePerturbation("hint:x").ok());
  EXPECT_FALSE(ParsePerturbation("hint:-1").ok());
}

TEST(PerturbTest, AnswerCueIsKept) {
  auto [body, cue] = SplitAnswerCue(kQuestion);
  EXPECT_EQ(cue, "\nAnswer:");
  EXPECT_EQ(body + cue, kQuestion);
  EXPECT_EQ(SplitAnswerCue("Q: x?\nA: Let's think step by step.").second,
            "\nA: Let's think step by step.");
  EXPECT_EQ(SplitAnswerCue("def f():\n    \"\"\"doc\"\"\"\n").second, "");
}

TEST(PerturbTest, DistractorGoesBeforeTheQuestionAndKeepsNumbers) {
  const PerturbedText p = InsertDistractor(kQuestion, 11);
  const std::string sentence = p.detail["inserted"];
  EXPECT_NE(p.text.find(sentence + " How many clips"), std::string::npos) << p.text;
  EXPECT_TRUE(p.text.rfind("Question: Natalia sold clips to 48", 0) == 0);
  EXPECT_TRUE(p.text.size() > kQuestion.size());
  EXPECT_EQ(p.text.substr(p.text.size() - 8), "\nAnswer:");
  // Removing the inserted sentence gives the original back.
  std::string restored = p.text;
  restored.erase(restored.find(sentence), sentence.size() + 1);
  EXPECT_EQ(restored, kQuestion);
  // Deterministic per seed, different across seeds (over a few seeds at least one differs).
  EXPECT_EQ(InsertDistractor(kQuestion, 11).text, p.text);
  bool differs = false;
  for (uint64_t s = 0; s < 5; ++s) differs |= InsertDistractor(kQuestion, s).text != p.text;
  EXPECT_TRUE(differs);
}

TEST(PerturbTest, MisleadingHintIsWrong) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const PerturbedText p = AddMisleadingHint(kQuestion, "Natalia sold ...\n#### 72", {}, seed);
    const std::string wrong = p.detail["wrong_answer"];
    EXPECT_NE(wrong, "72");
    EXPECT_GE(std::stol(wrong), 0);
    EXPECT_NE(p.text.find("May? I think the answer is " + wrong + ".\nAnswer:"), std::string::npos)
        << p.text;
  }
  // Decimal gold keeps its decimals; option letters pick another offered option.
  const std::string decimal = AddMisleadingHint("Q: x\nA:", "4.33", {}, 1).detail["wrong_answer"];
  EXPECT_NE(decimal, "4.33");
  EXPECT_EQ(decimal.substr(decimal.size() - 3), ".33") << decimal;
  const PerturbedText opt =
      AddMisleadingHint("Q: pick (A) red (B) blue (C) green\nA:", "(B)", {}, 3);
  const std::string w = opt.detail["wrong_answer"];
  EXPECT_TRUE(w == "(A)" || w == "(C)") << w;
  EXPECT_EQ(AddMisleadingHint("Q: x\nA:", "True", {}, 0).detail["wrong_answer"], "False");
}

TEST(PerturbTest, TyposTouchOnlyLettersAtTheRate) {
  const PerturbedText p = AddTypos(kQuestion, 0.1, 5);
  EXPECT_NE(p.text, kQuestion);
  EXPECT_EQ(Numbers(p.text), Numbers(kQuestion));  // digits never change
  EXPECT_EQ(p.text.substr(p.text.size() - 8), "\nAnswer:");
  const size_t count = p.detail["count"];
  size_t letters = 0;
  for (char c : SplitAnswerCue(kQuestion).first)
    letters += std::isalpha(static_cast<unsigned char>(c)) != 0;
  EXPECT_GT(count, letters / 40);
  EXPECT_LT(count, letters / 4);
  EXPECT_EQ(AddTypos(kQuestion, 0.1, 5).text, p.text);
  EXPECT_NE(AddTypos(kQuestion, 0.1, 6).text, p.text);
  EXPECT_EQ(AddTypos(kQuestion, 1e-9, 5).text, kQuestion);
}

TEST(PerturbTest, IntegerWords) {
  EXPECT_EQ(IntegerToWords(0), "zero");
  EXPECT_EQ(IntegerToWords(13), "thirteen");
  EXPECT_EQ(IntegerToWords(48), "forty-eight");
  EXPECT_EQ(IntegerToWords(100), "one hundred");
  EXPECT_EQ(IntegerToWords(123), "one hundred twenty-three");
  EXPECT_EQ(IntegerToWords(1000), "one thousand");
  EXPECT_EQ(IntegerToWords(1005), "one thousand five");
  EXPECT_EQ(IntegerToWords(2500000), "two million five hundred thousand");
  EXPECT_EQ(IntegerToWords(1000000000001ull), "one trillion one");
}

TEST(PerturbTest, NumbersBecomeWords) {
  const PerturbedText p = NumbersToWords(
      "Question: Tom paid $5 for 12 apples, 3.5 kg of rice, a 20% tip and 1,200 stamps in "
      "the 3rd week.\nAnswer:");
  EXPECT_EQ(p.text,
            "Question: Tom paid five dollars for twelve apples, 3.5 kg of rice, a twenty percent "
            "tip and one thousand two hundred stamps in the 3rd week.\nAnswer:");
  EXPECT_EQ(p.detail["count"], 4);
  EXPECT_EQ(NumbersToWords(kQuestion).text.find("48"), std::string::npos);
}

TEST(PerturbTest, PerturbedGsm8kTaskLogsEveryChangeAndKeepsShotsClean) {
  const auto dir = DataDir();
  auto spec = ParsePerturbation("distractor:4");
  ASSERT_TRUE(spec.ok());
  auto config = PerturbTask(Gsm8kConfig(), *spec);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->name, "gsm8k@distractor:4");
  EvalTask perturbed(*config), clean(Gsm8kConfig());
  ASSERT_TRUE(perturbed.Load(dir).ok());
  ASSERT_TRUE(clean.Load(dir).ok());
  ASSERT_EQ(perturbed.size(), 1319u);
  PromptOptions options;
  auto pp = perturbed.BuildPrompts(20, options);
  auto cp = clean.BuildPrompts(20, options);
  ASSERT_TRUE(pp.ok() && cp.ok());
  for (size_t i = 0; i < 20; ++i) {
    const auto& record = perturbed.doc(i)["rvec_perturbation"];
    EXPECT_EQ(record["kind"], "distractor");
    EXPECT_EQ(record["seed"], 4);
    const std::string sentence = record["detail"]["inserted"];
    // Same shots, same order; only the test question changed, by exactly the sentence.
    EXPECT_EQ((*pp)[i].fewshot_indices, (*cp)[i].fewshot_indices);
    std::string restored = (*pp)[i].context;
    const size_t at = restored.rfind(sentence);
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(at, (*cp)[i].context.rfind("Question: "));  // in the test question, not a shot
    restored.erase(at, sentence.size() + 1);
    EXPECT_EQ(restored, (*cp)[i].context);
    // The reference answer is untouched.
    EXPECT_EQ(perturbed.Target(i), clean.Target(i));
  }
  // Deterministic: a second load gives identical prompts.
  EvalTask again(*config);
  ASSERT_TRUE(again.Load(dir).ok());
  auto ap = again.BuildPrompts(20, options);
  ASSERT_TRUE(ap.ok());
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ((*ap)[i].context, (*pp)[i].context);
}

TEST(PerturbTest, GsmPlusKeepsExcludingTheTestDocFromItsShots) {
  const auto dir = DataDir();
  auto config = PerturbTask(GsmPlusMiniConfig(), *ParsePerturbation("typos=0.05:1"));
  ASSERT_TRUE(config.ok());
  EvalTask perturbed(*config), clean(GsmPlusMiniConfig());
  ASSERT_TRUE(perturbed.Load(dir).ok());
  ASSERT_TRUE(clean.Load(dir).ok());
  PromptOptions options;
  auto pp = perturbed.BuildPrompts(30, options);
  auto cp = clean.BuildPrompts(30, options);
  ASSERT_TRUE(pp.ok() && cp.ok());
  for (size_t i = 0; i < 30; ++i) {
    EXPECT_EQ((*pp)[i].fewshot_indices, (*cp)[i].fewshot_indices) << i;
    EXPECT_EQ((*pp)[i].fewshot_indices.size(), 5u);
  }
}

TEST(PerturbTest, ShuffleFewshotReordersFixedExemplars) {
  const auto dir = DataDir();
  auto config = PerturbTask(Gsm8kCotConfig(), *ParsePerturbation("shuffle_fewshot:9"));
  ASSERT_TRUE(config.ok()) << config.status().message();
  EvalTask perturbed(*config), clean(Gsm8kCotConfig());
  ASSERT_TRUE(perturbed.Load(dir).ok());
  ASSERT_TRUE(clean.Load(dir).ok());
  PromptOptions options;
  auto pp = perturbed.BuildPrompts(2, options);
  auto cp = clean.BuildPrompts(2, options);
  ASSERT_TRUE(pp.ok() && cp.ok());
  EXPECT_NE((*pp)[0].context, (*cp)[0].context);
  EXPECT_EQ((*pp)[0].context.size(), (*cp)[0].context.size());  // same shots, other order
  const auto order = perturbed.doc(0)["rvec_perturbation"]["detail"]["fewshot_order"];
  ASSERT_EQ(order.size(), 8u);
  const auto exemplars = Gsm8kCotExemplars();
  const std::string first_shot_question = exemplars[order[0].get<size_t>()]["question"];
  EXPECT_EQ((*pp)[0].context.rfind("Q: " + first_shot_question, 0), 0u);
  // Tasks that already draw shots at random per doc refuse.
  auto refused = PerturbTask(Gsm8kConfig(), *ParsePerturbation("shuffle_fewshot"));
  EXPECT_FALSE(refused.ok());
}

TEST(PerturbTest, NumberWordsAndHintOnRealTask) {
  const auto dir = DataDir();
  for (const char* kind : {"number_words:0", "hint:2"}) {
    auto config = PerturbTask(Gsm8kConfig(), *ParsePerturbation(kind));
    ASSERT_TRUE(config.ok());
    EvalTask task(*config);
    ASSERT_TRUE(task.Load(dir).ok());
    auto prompts = task.BuildPrompts(5, PromptOptions());
    ASSERT_TRUE(prompts.ok());
    for (size_t i = 0; i < 5; ++i) {
      const auto& record = task.doc(i)["rvec_perturbation"];
      EXPECT_NE(record["perturbed"], record["original"]) << kind << " " << i;
      EXPECT_NE((*prompts)[i].context.find(record["perturbed"].get<std::string>()),
                std::string::npos);
    }
  }
}

TEST(PerturbTest, MultipleChoiceTasksRefuse) {
  TaskConfig mc;
  mc.name = "mc";
  mc.output_type = OutputType::kMultipleChoice;
  mc.doc_to_text = [](const Doc&) { return std::string("x"); };
  mc.load = [](const std::filesystem::path&, std::vector<Doc>*, std::vector<Doc>*) {
    return OkStatus();
  };
  EXPECT_FALSE(PerturbTask(mc, PerturbationSpec()).ok());
}

TEST(PerturbTest, RegistersPerturbedTasksByName) {
  TaskRegistry registry;
  registry.AddTask("gsm8k", Gsm8kConfig);
  registry.AddTask("gsm8k_cot", Gsm8kCotConfig);
  registry.AddGroup({"maths", "1.0", {"gsm8k", "gsm8k_cot"}, {}});
  auto names = RegisterPerturbedTasks(registry, {"maths", "gsm8k"}, *ParsePerturbation("hint:1"));
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"gsm8k@hint:1", "gsm8k_cot@hint:1"}));
  auto task = registry.Create("gsm8k_cot@hint:1");
  ASSERT_TRUE(task.ok());
  EXPECT_EQ((*task)->name(), "gsm8k_cot@hint:1");
  ASSERT_TRUE((*task)->Load(DataDir()).ok());
  EXPECT_EQ((*task)->doc(0)["rvec_perturbation"]["kind"], "hint");
  EXPECT_FALSE(
      RegisterPerturbedTasks(registry, {"gsm8k"}, *ParsePerturbation("shuffle_fewshot")).ok());
  EXPECT_FALSE(RegisterPerturbedTasks(registry, {"nope"}, *ParsePerturbation("hint")).ok());
}

TEST(PerturbTest, PerSampleLogShowsThePerturbation) {
  // `rvec eval --perturb hint:5 --tasks gsm8k` through the runner, answered by replay.
  auto names =
      RegisterPerturbedTasks(TaskRegistry::Global(), {"gsm8k"}, *ParsePerturbation("hint:5"));
  ASSERT_TRUE(names.ok()) << names.status().message();
  ASSERT_EQ(*names, std::vector<std::string>{"gsm8k@hint:5"});
  const auto scratch =
      std::filesystem::temp_directory_path() / ("rvec-perturb-run-" + std::to_string(::getpid()));
  std::filesystem::remove_all(scratch);
  std::filesystem::create_directories(scratch);
  {
    std::ofstream out(scratch / "responses.jsonl");
    for (int i = 0; i < 3; ++i) {
      out << nlohmann::json({{"task", "gsm8k@hint:5"}, {"doc_id", i}, {"output", "#### 1"}}).dump()
          << "\n";
    }
  }
  auto backend = MakeReplayBackend(scratch / "responses.jsonl");
  ASSERT_TRUE(backend.ok());
  EvalOptions options;
  options.tasks = *names;
  options.data_dir = DataDir();
  options.limit = 3;
  options.output_dir = scratch / "run";
  auto results = RunEvaluation(**backend, options);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_TRUE((*results)["results"].contains("gsm8k@hint:5"));
  auto samples = ReadSamples(scratch / "run", "gsm8k@hint:5");
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 3u);
  for (const auto& r : *samples) {
    const auto& p = r["doc"]["rvec_perturbation"];
    EXPECT_EQ(p["kind"], "hint");
    EXPECT_EQ(p["seed"], 5);
    const std::string hint = p["detail"]["hint"];
    EXPECT_NE(r["prompt"].get<std::string>().find(hint + "\nAnswer:"), std::string::npos);
  }
  std::filesystem::remove_all(scratch);
}

TEST(PerturbTest, SplitsPerturbedNames) {
  EXPECT_EQ(SplitPerturbedTaskName("gsm8k@typos=0.05:1"),
            std::make_pair(std::string("gsm8k"), std::string("typos=0.05:1")));
  EXPECT_EQ(SplitPerturbedTaskName("gsm8k").second, "");
}

}  // namespace
}  // namespace rvec::eval
