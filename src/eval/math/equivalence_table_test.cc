// Checks every row of tests/data/math_equivalence.tsv: (prediction, gold) pairs taken from the
// reference graders' own tests (Math-Verify, latex2sympy, Qwen2.5-Math), each with the verdict rvec
// gives and, where that differs from the reference, the reason.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "eval/math/grader.h"
#include "eval/math/latex_expr.h"

namespace rvec::eval::math {
namespace {

namespace fs = std::filesystem;

// The table lives in the source tree: src/eval/math/ -> tests/data/.
fs::path TablePath() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "tests" /
         "data" / "math_equivalence.tsv";
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s->find(from, at)) != std::string::npos; at += to.size()) {
    s->replace(at, from.size(), to);
  }
}

std::string Unescape(std::string s) {
  ReplaceAll(&s, "\u23ce", "\n");
  ReplaceAll(&s, "\u21e5", "\t");
  ReplaceAll(&s, "\u240c", "\f");
  return s;
}

// Whether `s` is prose around math spans ($...$, $$...$$, \[...\], \(...\)); `joined` gets the
// spans' contents, comma-separated, when the only words outside them are "and"/"or".
bool ProseAroundMath(const std::string& s, std::string* joined) {
  bool in_math = false, spans = false;
  std::string outside, inside;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && (i == 0 || s[i - 1] != '\\')) {
      if (i + 1 < s.size() && s[i + 1] == '$') ++i;
      in_math = !in_math, spans = true;
      if (!in_math) inside += ',';
      continue;
    }
    if (s[i] == '\\' && i + 1 < s.size() &&
        std::string("[]()").find(s[i + 1]) != std::string::npos) {
      in_math = s[i + 1] == '[' || s[i + 1] == '(';
      if (!in_math) inside += ',';
      spans = true, ++i;
      continue;
    }
    (in_math ? inside : outside) += s[i];
  }
  std::string words;
  for (char c : outside) {
    if (!std::isspace(static_cast<unsigned char>(c)) && c != '.' && c != ',') words += c;
  }
  for (const std::string w : {"and", "or"}) ReplaceAll(&words, w, "");
  while (!inside.empty() && inside.back() == ',') inside.pop_back();
  *joined = words.empty() ? inside : "";
  return spans && outside.find_first_not_of(" \t\n.") != std::string::npos;
}

// The reference tests grade whole responses as well as bare answers; this reads each side the
// way the table's header describes.
std::string Prepare(const std::string& s) {
  for (const char* k : {"\\boxed", "\\fbox", "</think>", "answer is"}) {
    if (s.find(k) != std::string::npos) return ExtractAnswer(s);
  }
  std::string joined;
  if (ProseAroundMath(s, &joined)) {
    if (!joined.empty()) return joined;
  } else if (internal::ParseLatex(NormalizeAnswer(s))) {
    return s;
  }
  std::string answer = ExtractAnswer(s);
  return answer.empty() ? s : answer;
}

struct Row {
  int line = 0;
  std::string prediction, gold, source, reason;
  bool equal = false;
};

std::vector<Row> ReadTable() {
  std::ifstream in(TablePath());
  EXPECT_TRUE(in.good()) << "cannot read " << TablePath();
  std::vector<Row> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    if (fields.size() == 4) fields.emplace_back();  // an empty reason at the end of the line
    EXPECT_EQ(fields.size(), 5u) << TablePath() << ":" << n << ": expected 5 tab-separated fields";
    if (fields.size() != 5) continue;
    EXPECT_TRUE(fields[2] == "0" || fields[2] == "1") << TablePath() << ":" << n;
    rows.push_back(
        {n, Unescape(fields[0]), Unescape(fields[1]), fields[3], fields[4], fields[2] == "1"});
  }
  return rows;
}

TEST(MathEquivalenceTable, HasAtLeast400CitedRows) {
  std::vector<Row> rows = ReadTable();
  EXPECT_GE(rows.size(), 400u);
  for (const Row& row : rows) {
    bool cited = row.source.find("Math-Verify") != std::string::npos ||
                 row.source.find("latex2sympy") != std::string::npos ||
                 row.source.find("Qwen2.5-Math") != std::string::npos ||
                 row.source.find("prm800k") != std::string::npos;
    EXPECT_TRUE(cited) << "line " << row.line << " cites no reference: " << row.source;
    EXPECT_NE(row.source.find("line "), std::string::npos) << "line " << row.line;
    if (!row.reason.empty()) {
      EXPECT_EQ(row.reason.rfind("reference: ", 0), 0u)
          << "line " << row.line << ": a difference names the reference's verdict first";
    }
  }
}

TEST(MathEquivalenceTable, EveryRowGetsItsVerdict) {
  std::vector<Row> rows = ReadTable();
  int failures = 0;
  for (const Row& row : rows) {
    std::string prediction = Prepare(row.prediction), gold = Prepare(row.gold);
    bool got = MathEqual(prediction, gold);
    if (got != row.equal) ++failures;
    EXPECT_EQ(got, row.equal) << "math_equivalence.tsv line " << row.line << " (" << row.source
                              << ")\n  prediction: " << prediction << "\n  gold: " << gold;
  }
  EXPECT_EQ(failures, 0);
}

// Grading the same pair again gives the same verdict: no hidden state, no unseeded randomness.
TEST(MathEquivalenceTable, VerdictsAreDeterministic) {
  std::vector<Row> rows = ReadTable();
  for (const Row& row : rows) {
    std::string prediction = Prepare(row.prediction), gold = Prepare(row.gold);
    bool first = MathEqual(prediction, gold);
    EXPECT_EQ(MathEqual(prediction, gold), first) << "line " << row.line;
  }
}

}  // namespace
}  // namespace rvec::eval::math
