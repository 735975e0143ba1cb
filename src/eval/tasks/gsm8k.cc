// GSM8K tasks as lm-eval defines them: gsm8k (5 seeded random shots from train), gsm8k_cot (8 fixed
// Wei et al. exemplars) and gsm8k_cot_zeroshot, with strict-match and flexible-extract filters.
#include "eval/tasks/gsm8k.h"

#include "base/fs.h"
#include "eval/python/pyre.h"
#include "eval/task.h"

namespace rvec::eval {

namespace {

std::string Field(const Doc& d, const char* key) {
  auto it = d.find(key);
  return (it != d.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

// The file pair of the GSM8K data set (openai/grade-school-math).
Status LoadGsm8k(const std::filesystem::path& data_dir, bool with_train, std::vector<Doc>* test,
                 std::vector<Doc>* fewshot) {
  const auto test_path = data_dir / "gsm8k" / "test.jsonl";
  if (!DataFileExists(test_path)) return MissingDataError(test_path, "gsm8k");
  ASSIGN_OR_RETURN(*test, ReadJsonLines(test_path));
  for (size_t i = 0; i < test->size(); ++i) {
    if (!(*test)[i].contains("question") || !(*test)[i].contains("answer")) {
      return DataLoss("{}: line {} lacks question/answer", test_path.string(), i + 1);
    }
  }
  if (with_train) {
    const auto train_path = data_dir / "gsm8k" / "train.jsonl";
    if (!DataFileExists(train_path)) return MissingDataError(train_path, "gsm8k");
    ASSIGN_OR_RETURN(*fewshot, ReadJsonLines(train_path));
  }
  return OkStatus();
}

}  // namespace

ExactMatchOptions Gsm8kExactMatchOptions() {
  ExactMatchOptions o;
  o.regexes_to_ignore = {",", "\\$", "(?s).*#### ", "\\.$"};
  o.ignore_case = true;
  o.ignore_punctuation = false;
  return o;
}

Filter Gsm8kFlexibleExtract() {
  return RegexFilter("flexible-extract", "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1);
}

TaskConfig Gsm8kConfig() {
  TaskConfig c;
  c.name = "gsm8k";
  c.version = "3.0";
  c.dataset = "gsm8k";
  c.output_type = OutputType::kGenerateUntil;
  c.doc_to_text = [](const Doc& d) { return "Question: " + Field(d, "question") + "\nAnswer:"; };
  c.doc_to_target = [](const Doc& d) { return Field(d, "answer"); };
  c.num_fewshot = 5;
  c.sampler = TaskConfig::Sampler::kRandom;
  c.generation.until = {"Question:", "</s>", "<|im_end|>"};
  c.generation.max_gen_toks = 256;
  c.filters = {RegexFilter("strict-match", "#### (\\-?[0-9\\.\\,]+)", 0), Gsm8kFlexibleExtract()};
  c.metrics = {ExactMatchMetric(Gsm8kExactMatchOptions())};
  c.load = [](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>* fs) {
    return LoadGsm8k(dir, true, test, fs);
  };
  return c;
}

std::vector<Doc> Gsm8kCotExemplars() {
  static const char* kShots[8][2] = {
      {"There are 15 trees in the grove. Grove workers will plant trees in the grove today. After "
       "they are done, there will be 21 trees. How many trees did the grove workers plant today?",
       "There are 15 trees originally. Then there were 21 trees after some more were planted. So "
       "there must have been 21 - 15 = 6. The answer is 6."},
      {"If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the "
       "parking lot?",
       "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."},
      {"Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have "
       "left in total?",
       "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. "
       "After eating 35, they had 74 - 35 = 39. The answer is 39."},
      {"Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
       "lollipops did Jason give to Denny?",
       "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave "
       "Denny 20 - 12 = 8. The answer is 8."},
      {"Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many "
       "toys does he have now?",
       "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more "
       "toys. 5 + 4 = 9. The answer is 9."},
      {"There were nine computers in the server room. Five more computers were installed each "
       "day, from monday to thursday. How many computers are now in the server room?",
       "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 "
       "* 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."},
      {"Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 "
       "more. How many golf balls did he have at the end of wednesday?",
       "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After "
       "losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."},
      {"Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
       "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has "
       "23 - 15 dollars left. 23 - 15 is 8. The answer is 8."},
  };
  std::vector<Doc> out;
  for (const auto& s : kShots) out.push_back({{"question", s[0]}, {"target", s[1]}});
  return out;
}

TaskConfig Gsm8kCotConfig() {
  TaskConfig c;
  c.name = "gsm8k_cot";
  c.version = "3.0";
  c.dataset = "gsm8k";
  c.doc_to_text = [](const Doc& d) { return "Q: " + Field(d, "question") + "\nA:"; };
  // '{{answer.split('####')[-1].strip() if answer is defined else target}}'
  c.doc_to_target = [](const Doc& d) {
    if (!d.contains("answer")) return Field(d, "target");
    const std::string a = Field(d, "answer");
    const size_t at = a.rfind("####");
    return PyStrip(at == std::string::npos ? a : a.substr(at + 4));
  };
  c.num_fewshot = 8;
  c.sampler = TaskConfig::Sampler::kFirstN;
  c.generation.until = {"Q:", "</s>", "<|im_end|>"};
  c.generation.max_gen_toks = 256;
  // Upstream lm-eval's pattern (its final "." is any character; the paper authors' vendored copy
  // has "\.?" instead).
  c.filters = {RegexFilter("strict-match", "The answer is (\\-?[0-9\\.\\,]+).", 0),
               Gsm8kFlexibleExtract()};
  c.metrics = {ExactMatchMetric(Gsm8kExactMatchOptions())};
  c.load = [](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>* fs) {
    RETURN_IF_ERROR(LoadGsm8k(dir, false, test, fs));
    *fs = Gsm8kCotExemplars();
    return OkStatus();
  };
  return c;
}

TaskConfig Gsm8kCotZeroshotConfig() {
  TaskConfig c;
  c.name = "gsm8k_cot_zeroshot";
  c.version = "3.0";
  c.dataset = "gsm8k";
  c.doc_to_text = [](const Doc& d) {
    return "Q: " + Field(d, "question") + "\nA: Let's think step by step.";
  };
  c.doc_to_target = [](const Doc& d) { return Field(d, "answer"); };
  c.num_fewshot = 0;
  c.generation.until = {"Q:", "</s>", "<|im_end|>"};
  c.generation.max_gen_toks = 256;
  c.filters = {RegexFilter("strict-match", "The answer is (\\-?[0-9\\.\\,]+).", 0),
               Gsm8kFlexibleExtract()};
  c.metrics = {ExactMatchMetric(Gsm8kExactMatchOptions())};
  c.load = [](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>* fs) {
    return LoadGsm8k(dir, false, test, fs);
  };
  return c;
}

void RegisterGsm8kTasks(TaskRegistry& registry) {
  registry.AddTask("gsm8k", Gsm8kConfig);
  registry.AddTask("gsm8k_cot", Gsm8kCotConfig);
  registry.AddTask("gsm8k_cot_zeroshot", Gsm8kCotZeroshotConfig);
}

}  // namespace rvec::eval
