// Unit tests of the lm-eval reproduction: CPython random, Python-re semantics, filters,
// exact_match, acc/acc_norm, stderr and McNemar. Expected values come from CPython 3.11 / lm-eval
// definitions.
#include <gtest/gtest.h>

#include "eval/python/pyrandom.h"
#include "eval/python/pyre.h"
#include "eval/stats.h"
#include "eval/task.h"
#include "eval/tasks/bbh.h"
#include "eval/tasks/gsm8k.h"

namespace rvec::eval {
namespace {

TEST(PyRandom, MatchesCPython) {
  PyRandom r(1234);
  EXPECT_DOUBLE_EQ(r.Random(), 0.9664535356921388);
  EXPECT_DOUBLE_EQ(r.Random(), 0.4407325991753527);
  PyRandom g(42);
  EXPECT_EQ(g.GetRandBits(32), 2746317213u);
  EXPECT_EQ(g.GetRandBits(40), 26247967103u);
  EXPECT_EQ(g.GetRandBits(64), 5073395517033431291u);
}

TEST(PyRandom, SampleBothBranchesAndMultiWordSeed) {
  PyRandom r((int64_t{1} << 40) + 5);  // two 32-bit key words
  EXPECT_EQ(r.Sample(100, 3), (std::vector<size_t>{64, 66, 34}));
  EXPECT_EQ(r.Sample(10000, 7), (std::vector<size_t>{449, 8699, 763, 2710, 1302, 2193, 3915}));
  PyRandom z(0);
  EXPECT_EQ(z.Sample(7473, 6), (std::vector<size_t>{6917, 3155, 6209, 7292, 3445, 331}));
}

std::vector<std::vector<std::string>> FindAll(const std::string& pattern, const std::string& s) {
  auto re = PyRegex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << re.status().ToString();
  auto m = re->FindAll(s);
  EXPECT_TRUE(m.ok());
  return *m;
}

std::string Sub(const std::string& pattern, const std::string& s) {
  auto re = PyRegex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << re.status().ToString();
  return *re->Sub(s, "");
}

TEST(PyRegex, PythonSemantics) {
  // findall with several groups gives tuples; empty groups are "".
  auto m = FindAll("(-?[$0-9.,]{2,})|(-?[0-9]+)", "The total is $1,234.50 and then 7. So 18.");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], (std::vector<std::string>{"$1,234.50", ""}));
  EXPECT_EQ(m[2], (std::vector<std::string>{"18.", ""}));
  // Empty matches step like Python 3.7+.
  auto re = PyRegex::Compile("x*");
  EXPECT_EQ(*re->Sub("abxd", "-"), "-a-b--d-");
  // Look-behind and look-ahead.
  m = FindAll("(?<=the answer is )(.*)(?=.)", "So the answer is (B).\nand the answer is yes.");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0][0], "(B)");
  EXPECT_EQ(m[1][0], "yes");
  // $ matches before a final newline; (?s) lets . cross lines.
  EXPECT_EQ(Sub("\\.$", "12.\n"), "12\n");
  EXPECT_EQ(Sub("(?s).*#### ", "a\nb #### 72"), "72");
  // The upstream gsm8k_cot strict pattern's trailing "." is any character.
  m = FindAll("The answer is (\\-?[0-9\\.\\,]+).", "The answer is 18");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0][0], "1");
  // Unicode-aware \b.
  m = FindAll("\\b(True|False)\\b", "It is True, not False, néFalse");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_FALSE(PyRegex::Compile("(unclosed").ok());
}

TEST(PyString, StripLowerLen) {
  EXPECT_EQ(PyStrip("\u00a0 x y\n\t"), "x y");
  EXPECT_EQ(PyLower("ÀB İ"), "àb i\xCC\x87");
  EXPECT_EQ(PyLen("é€𝟘a"), 4u);
  EXPECT_EQ(RemoveAsciiPunctuation("(a), b!"), "a b");
  EXPECT_EQ(RemoveUnicodePunctuation("«a»—b.$"), "ab$");  // $ is a symbol (Sc), not P*
}

double Em(const std::string& pred, const std::string& ref) {
  auto r = ExactMatch(pred, ref, Gsm8kExactMatchOptions());
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(JsonLines, LineNumbersBlankLinesAndATruncatedTail) {
  const std::string text = "{\"a\": 1}\n\n  \n{\"a\": 2}\n{\"a\": 3}";
  std::vector<std::pair<int, size_t>> seen;
  auto visit = [&](Doc&& d, size_t line) {
    seen.emplace_back(d["a"].get<int>(), line);
    return OkStatus();
  };
  ASSERT_TRUE(ForEachJsonLine(text, "x.jsonl", visit).ok());
  EXPECT_EQ(seen, (std::vector<std::pair<int, size_t>>{{1, 1}, {2, 4}, {3, 5}}));
  // A half-written last line is an error, unless the caller accepts a truncated tail.
  const std::string cut = "{\"a\": 1}\n{\"a\": ";
  seen.clear();
  const Status s = ForEachJsonLine(cut, "x.jsonl", visit);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("x.jsonl: line 2 is not a JSON object"), std::string::npos);
  bool truncated = false;
  seen.clear();
  EXPECT_TRUE(ForEachJsonLine(cut, "x.jsonl", visit, &truncated).ok());
  EXPECT_TRUE(truncated);
  EXPECT_EQ(seen.size(), 1u);
  // A bad line that is not the last stays an error even then.
  EXPECT_FALSE(ForEachJsonLine("[1]\n{}\n", "x.jsonl", visit, &truncated).ok());
}

TEST(Gsm8k, ExactMatchNormalisation) {
  const std::string ref = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72";
  EXPECT_EQ(Em("72", ref), 1.0);
  EXPECT_EQ(Em("72.", ref), 1.0);  // trailing period
  EXPECT_EQ(Em("$72", ref), 1.0);  // dollar sign
  EXPECT_EQ(Em("7,2", ref), 1.0);  // commas removed
  EXPECT_EQ(Em("72.0", ref), 0.0);
  EXPECT_EQ(Em("[invalid]", ref), 0.0);
  EXPECT_EQ(Em("1,000", "#### 1000"), 1.0);
}

TEST(Gsm8k, Filters) {
  const TaskConfig c = Gsm8kConfig();
  ASSERT_EQ(c.filters.size(), 2u);
  const Doc doc = nlohmann::json::object();
  const std::string out = "She has 3 + 4 = 7 apples.\n#### 1,234.\nQuestion: next";
  EXPECT_EQ(c.filters[0].apply(out, doc), "1,234.");
  EXPECT_EQ(c.filters[1].apply(out, doc), "1,234.");
  EXPECT_EQ(c.filters[0].apply("The answer is 5", doc), "[invalid]");
  EXPECT_EQ(c.filters[1].apply("The answer is 5", doc), "5");
  EXPECT_EQ(c.filters[1].apply("no digits", doc), "[invalid]");
  EXPECT_EQ(c.filters[1].apply("costs $18.", doc), "$18.");
  const TaskConfig cot = Gsm8kCotConfig();
  EXPECT_EQ(cot.filters[0].apply("So 5 + 4 = 9. The answer is 9.", doc), "9");
  EXPECT_EQ(cot.filters[0].apply("The answer is 18", doc), "1");  // upstream quirk
}

EvalTask LoadedTask(TaskConfig c, std::vector<Doc> docs) {
  c.load = [docs](const std::filesystem::path&, std::vector<Doc>* test, std::vector<Doc>*) {
    *test = docs;
    return OkStatus();
  };
  c.configure = nullptr;
  EvalTask t(std::move(c));
  EXPECT_TRUE(t.Load("/nonexistent").ok());
  return t;
}

TEST(Gsm8k, ScoreBothFilters) {
  TaskConfig c = Gsm8kConfig();
  c.num_fewshot = 0;  // no few-shot pool in this test
  EvalTask t = LoadedTask(c, {{{"question", "q"}, {"answer", "x\n#### 18"}}});
  DocResponse r;
  r.generation = " She pays 18 dollars.\n#### 18";
  auto s = t.Score(0, r);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metrics.at("exact_match,strict-match"), 1.0);
  EXPECT_EQ(s->metrics.at("exact_match,flexible-extract"), 1.0);
  r.generation = "The answer is 18.";
  s = t.Score(0, r);
  EXPECT_EQ(s->metrics.at("exact_match,strict-match"), 0.0);
  EXPECT_EQ(s->metrics.at("exact_match,flexible-extract"), 1.0);
  EXPECT_EQ(s->filtered.at("strict-match"), "[invalid]");
}

TaskConfig SciqLike() {
  TaskConfig c;
  c.name = "mc";
  c.version = "1.0";
  c.output_type = OutputType::kMultipleChoice;
  c.doc_to_text = [](const Doc& d) { return d["q"].get<std::string>(); };
  c.doc_to_choice = [](const Doc& d) { return d["c"].get<std::vector<std::string>>(); };
  c.doc_to_gold = [](const Doc&) { return size_t{3}; };
  c.doc_to_target = [](const Doc&) { return std::string(); };
  return c;
}

TEST(MultipleChoice, AccAndAccNormWithTies) {
  EvalTask t = LoadedTask(SciqLike(), {{{"q", "Q"}, {"c", {"ab", "abcd", "x", "éé"}}}});
  DocResponse r;
  // acc: argmax is index 1; acc_norm: per character, -2/2=-1 for "éé" (2 code points, 4 bytes).
  r.loglikelihoods = {-3.0, -1.0, -5.0, -2.0};
  auto s = t.Score(0, r);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metrics.at("acc,none"), 0.0);
  // norms: -1.5, -0.25, -5, -1 -> index 1 again.
  EXPECT_EQ(s->metrics.at("acc_norm,none"), 0.0);
  r.loglikelihoods = {-8.0, -9.0, -5.0, -0.5};
  s = t.Score(0, r);
  EXPECT_EQ(s->metrics.at("acc,none"), 1.0);
  EXPECT_EQ(s->metrics.at("acc_norm,none"), 1.0);
  // Exact ties go to the first index, so the gold (last) loses.
  r.loglikelihoods = {-2.0, -4.0, -9.0, -2.0};
  s = t.Score(0, r);
  EXPECT_EQ(s->metrics.at("acc,none"), 0.0);
  // acc_norm tie: -2/2 = -1 vs -2/2 = -1 for "éé" (code points, not bytes).
  r.loglikelihoods = {-2.0, -9.0, -9.0, -2.0};
  s = t.Score(0, r);
  EXPECT_EQ(s->metrics.at("acc_norm,none"), 0.0);
  r.loglikelihoods = {-2.1, -9.0, -9.0, -2.0};
  s = t.Score(0, r);
  EXPECT_EQ(s->metrics.at("acc_norm,none"), 1.0);
}

TEST(Bbh, CotGetAnswerAndCaseSensitivity) {
  auto c = TaskRegistry::Global().Create("bbh_cot_fewshot_date_understanding");
  ASSERT_TRUE(c.ok());
  const auto& f = (*c)->config().filters[0];
  EXPECT_EQ(f.apply("... So the answer is (B).", {}), "(B)");
  EXPECT_EQ(f.apply("So the answer is (B).\n\nQ:", {}), "(B)");
  EXPECT_EQ(f.apply("The answer is (B).", {}), "[invalid]");  // lower-case only
  auto em = (*c)->config().metrics[0].score("(b)", "(B)", {});
  EXPECT_EQ(*em, 0.0);  // case-sensitive, nothing ignored
}

std::string Flex(const std::string& subtask, const std::string& out, const Doc& doc = {}) {
  auto t = TaskRegistry::Global().Create("bbh_zeroshot_" + subtask);
  EXPECT_TRUE(t.ok());
  return (*t)->config().filters[1].apply(out, doc);
}

TEST(Bbh, ZeroshotFlexibleExtract) {
  EXPECT_EQ(Flex("boolean_expressions", "It is True, not False"), "True");
  EXPECT_EQ(Flex("causal_judgement", "No, because yes"), "No");
  EXPECT_EQ(Flex("formal_fallacies", "the argument is invalid"), "invalid");
  EXPECT_EQ(Flex("dyck_languages", "So the answer is ) ] >"), "");  // first match is " "
  EXPECT_EQ(Flex("object_counting", "I count 12 items"), "12");
  EXPECT_EQ(Flex("object_counting", "I count twenty one items"), "21");
  EXPECT_EQ(Flex("multistep_arithmetic_two", "one hundred and five"), "105");
  EXPECT_EQ(Flex("object_counting", "none at all"), "1");  // "one" inside "none", as in lm-eval
  EXPECT_EQ(Flex("object_counting", "nothing here"), "[invalid]");
  EXPECT_EQ(Flex("sports_understanding", "This is Not Plausible."), "no");
  EXPECT_EQ(Flex("sports_understanding", "plausible"), "yes");
  EXPECT_EQ(Flex("web_of_lies", "So Ka tells the truth"), "yes");
  EXPECT_EQ(Flex("web_of_lies", "Raymond does not tell the truth"), "no");
  Doc ws = {{"input", "Sort the following words alphabetically: List: pear apple fig"}};
  EXPECT_EQ(Flex("word_sorting", "apple fig pear", ws), "apple fig pear");
  EXPECT_EQ(Flex("word_sorting", "pear apple fig, then apple", ws), "pear fig apple");
  Doc mc = {{"input", "Which?\nOptions:\n(A) red ball\n(B) Blue, box\n(C) green"}};
  EXPECT_EQ(Flex("date_understanding", "I pick (C) here", mc), "(C)");
  EXPECT_EQ(Flex("date_understanding", "It is the blue box!", mc), "(B)");
  EXPECT_EQ(Flex("date_understanding", "Answer: A", mc), "(A)");
  EXPECT_EQ(Flex("date_understanding", "no idea", mc), "[invalid]");
}

TEST(Bbh, ZeroshotExactMatchIgnores) {
  auto t = TaskRegistry::Global().Create("bbh_zeroshot_boolean_expressions");
  ASSERT_TRUE(t.ok());
  const auto& m = (*t)->config().metrics[0];
  EXPECT_EQ(*m.score("true.", "True", {}), 1.0);
  EXPECT_EQ(*m.score("\"True\"\n", "True", {}), 1.0);
  EXPECT_EQ(*m.score("Tru", "True", {}), 0.0);
}

TEST(Bbh, ParseCotPrompt) {
  const std::string text =
      "canary\n-----\nDo things.\n\nMore text.\n\nQ: first?\nA: Let's think step by step.\n"
      "Because. So the answer is A.\n\nQ: second\nline?\nA: Let's think step by step. Inline. So "
      "the answer is B.\n\nQ: third?\nA: Let's think step by step.\nC. So the answer is C.";
  auto p = ParseBbhCotPrompt(text, "x");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->description, "Do things.\n\nMore text.\n\n");
  ASSERT_EQ(p->shots.size(), 3u);
  EXPECT_EQ(p->shots[1]["input"], "second\nline?");
  EXPECT_EQ(p->shots[1]["target"], "Inline. So the answer is B.");
  EXPECT_EQ(p->shots[2]["target"], "C. So the answer is C.");
  EXPECT_FALSE(ParseBbhCotPrompt("no separator", "x").ok());
}

TEST(Registry, ResolvesGroupsAndRejectsUnknown) {
  auto r = ResolveTaskList({"gsm8k", "bbh_cot_fewshot", "sciq", "gsm8k"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->leaves.size(), 2u + 27u);
  ASSERT_EQ(r->groups.size(), 1u);
  EXPECT_EQ(r->groups[0]->aggregate_metrics[0], "exact_match,get-answer");
  auto bad = ResolveTaskList({"gsm9k"});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gsm9k"), std::string::npos);
}

TEST(Stats, LmEvalFormulas) {
  std::vector<double> xs = {1, 0, 1, 1, 0, 1, 0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(Mean(xs), 0.6);
  EXPECT_NEAR(*MeanStderr(xs), 0.16329931618554522, 1e-15);
  EXPECT_FALSE(MeanStderr({1.0}).has_value());
  EXPECT_NEAR(PooledSampleStderr({0.1, 0.2, 0.05}, {10, 20, 30}), 0.0730997076017544, 1e-15);
  EXPECT_DOUBLE_EQ(WeightedMean({1.0, 0.0}, {3, 1}), 0.75);
}

TEST(Stats, McNemarExact) {
  EXPECT_NEAR(McNemarExactP(3, 10), 0.09228515625, 1e-12);
  EXPECT_EQ(McNemarExactP(0, 0), 1.0);
  EXPECT_EQ(McNemarExactP(5, 5), 1.0);
  EXPECT_NEAR(McNemarExactP(1, 20), 2.09808349609375e-05, 1e-15);
  EXPECT_NEAR(McNemarExactP(100, 130), 0.055613577781392386, 1e-10);
}

TEST(Prompt, MultiturnToSingleturnAndSystem) {
  StructuredPrompt p;
  p.turns = {{"system", "Desc.\n\n", ""},
             {"user", "Q1", " "},
             {"assistant", "A1", "\n\n"},
             {"user", "Q2", ""}};
  EXPECT_EQ(p.PlainText(), "Desc.\n\nQ1 A1\n\nQ2");
  auto single = p.SingleTurnMessages();
  ASSERT_EQ(single.size(), 2u);
  EXPECT_EQ(single[1]["content"], "Q1 A1\n\nQ2");
  EXPECT_EQ(p.Messages().size(), 4u);
}

}  // namespace
}  // namespace rvec::eval
