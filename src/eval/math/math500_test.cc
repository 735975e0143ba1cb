// The grader on real competition answers: the vendored MATH-500 split (testdata/math/math500),
// whose every solution boxes its gold answer.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "base/fs.h"
#include "eval/math/grader.h"
#include "eval/math/latex_expr.h"
#include "eval/task.h"

namespace rvec::eval::math {
namespace {

struct Problem {
  std::string solution, answer;
};

std::vector<Problem> Math500() {
  const auto path = TestDataDir(RVEC_TEST_DATA_DEFAULT) / "math" / "math500" / "test.jsonl";
  auto docs = ReadJsonLines(path);
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  std::vector<Problem> out;
  if (!docs.ok()) return out;
  for (const Doc& d : *docs) {
    out.push_back({d.value("solution", ""), d.value("answer", "")});
  }
  EXPECT_EQ(out.size(), 500u) << path;
  return out;
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s->find(from, at)) != std::string::npos; at += to.size()) {
    s->replace(at, from.size(), to);
  }
}

TEST(Math500, EverySolutionsBoxedAnswerEqualsItsGold) {
  for (const Problem& p : Math500()) {
    EXPECT_TRUE(MathEqual(ExtractAnswer(p.solution), p.answer))
        << "extracted " << ExtractAnswer(p.solution) << " for gold " << p.answer;
  }
}

TEST(Math500, EveryGoldParses) {
  for (const Problem& p : Math500()) {
    EXPECT_NE(internal::ParseLatex(NormalizeAnswer(p.answer)), nullptr) << p.answer;
  }
}

// Rewriting a gold the way models do (math delimiters, \dfrac, \left/\right, spaces) keeps it
// equal; an integer gold plus one is not equal.
TEST(Math500, RewrittenGoldsStayEqualAndOffByOneDoesNot) {
  static const std::regex kInteger(R"(^-?\d+$)");
  static const std::regex kThousands(R"(\d,(\\!)?\s*\d{3})");
  for (const Problem& p : Math500()) {
    std::string rewritten = p.answer;
    ReplaceAll(&rewritten, "\\frac", "\\dfrac");
    // A space after a list comma, never inside a thousands separator ("32,\!348", "58,500").
    if (!std::regex_search(p.answer, kThousands)) ReplaceAll(&rewritten, ",", ", ");
    ReplaceAll(&rewritten, "(", "\\left(");
    ReplaceAll(&rewritten, ")", "\\right)");
    EXPECT_TRUE(MathEqual("$" + rewritten + "$", p.answer)) << rewritten << " vs " << p.answer;
    if (std::regex_match(p.answer, kInteger) && p.answer.size() < 15) {
      std::string next = std::to_string(std::stoll(p.answer) + 1);
      EXPECT_FALSE(MathEqual(next, p.answer)) << next << " vs " << p.answer;
    }
  }
}

}  // namespace
}  // namespace rvec::eval::math
