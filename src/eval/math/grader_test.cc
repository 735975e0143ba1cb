// Unit tests of the math grader: answer extraction, normalisation, each kind of equivalence the
// issue lists, the exact evaluator against the numeric one, and bounded work on pathological input.
#include "eval/math/grader.h"

#include <gtest/gtest.h>

#include <string>

#include "eval/math/latex_expr.h"

namespace rvec::eval::math {
namespace {

TEST(LastBoxed, TakesTheLastWithBalancedBraces) {
  EXPECT_EQ(LastBoxed("so \\boxed{\\frac{1}{2}} is it"), "\\frac{1}{2}");
  EXPECT_EQ(LastBoxed("\\boxed{1} then \\boxed{{2}+{3}}"), "{2}+{3}");
  EXPECT_EQ(LastBoxed("\\fbox{7}"), "7");
  EXPECT_EQ(LastBoxed("\\boxed{3} and later \\fbox{4}"), "4");
  EXPECT_EQ(LastBoxed("$\\boxed{\\{1,2\\}}$"), "\\{1,2\\}");
}

TEST(LastBoxed, SpaceFormAndFailures) {
  EXPECT_EQ(LastBoxed("The answer is $\\boxed 5$."), "5");
  EXPECT_EQ(LastBoxed("\\boxed{12"), "");  // never closes
  EXPECT_EQ(LastBoxed("no box here"), "");
  EXPECT_EQ(LastBoxed("\\boxedfoo{3}"), "");         // another command
  EXPECT_EQ(LastBoxed("\\boxed{1} \\boxed{2"), "");  // the last one is unclosed
}

TEST(ExtractAnswer, ThinkingModelsAnswerAfterThink) {
  EXPECT_EQ(ExtractAnswer("<think>maybe \\boxed{1}</think>So \\boxed{2}."), "2");
  EXPECT_EQ(ExtractAnswer("<think>\\boxed{1} is wrong</think>The answer is 3."), "3");
  EXPECT_EQ(ExtractAnswer("<think>\\boxed{9}</think>"), "");
}

TEST(ExtractAnswer, ReferenceFallBacks) {
  EXPECT_EQ(ExtractAnswer("Adding up, the answer is 42."), "42");
  EXPECT_EQ(
      ExtractAnswer("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct."),
      "\\frac{3}{4}");
  EXPECT_EQ(ExtractAnswer("We get 3 apples, then 1,234.5 pears."), "1234.5");
  EXPECT_EQ(ExtractAnswer("it drops to -7 degrees"), "-7");
  EXPECT_EQ(ExtractAnswer("no numbers at all"), "");
}

TEST(NormalizeAnswer, StripsNotation) {
  EXPECT_EQ(NormalizeAnswer("\\left( 1, 2 \\right)"), "(1,2)");
  EXPECT_EQ(NormalizeAnswer("\\dfrac{1}{2}"), "\\frac{1}{2}");
  EXPECT_EQ(NormalizeAnswer("\\tfrac12"), "\\frac12");
  EXPECT_EQ(NormalizeAnswer("90^\\circ"), "90");
  EXPECT_EQ(NormalizeAnswer("\\$5"), "5");
  EXPECT_EQ(NormalizeAnswer("50\\%"), "50");
  EXPECT_EQ(NormalizeAnswer("5\\text{ cm}"), "5");
  EXPECT_EQ(NormalizeAnswer("12 inches"), "12");
  EXPECT_EQ(NormalizeAnswer("x = 5"), "5");
  EXPECT_EQ(NormalizeAnswer("1\\!000"), "1000");
  EXPECT_EQ(NormalizeAnswer("7,425,000"), "7425000");
  EXPECT_EQ(NormalizeAnswer("$\\pi r^2$."), "\\pi r^2");
  EXPECT_EQ(NormalizeAnswer("\\text{Evelyn}"), "Evelyn");
}

TEST(MathEqual, NumbersWithToleranceAndPercentages) {
  EXPECT_TRUE(MathEqual("0.5", "\\frac12"));
  EXPECT_TRUE(MathEqual("3.14159", "\\pi"));
  EXPECT_FALSE(MathEqual("3.14", "\\pi"));  // 5e-4 relative error
  EXPECT_TRUE(MathEqual("50\\%", "0.5"));
  EXPECT_TRUE(MathEqual("0.5", "50"));
  EXPECT_FALSE(MathEqual("10001", "10000"));  // integers compare exactly
  EXPECT_TRUE(MathEqual("1{,}000", "1000"));
  EXPECT_TRUE(MathEqual("6\\frac{1}{2}", "6.5"));  // a mixed number
  EXPECT_TRUE(MathEqual("2\\frac{x}{3}", "\\frac{2x}{3}"));
  EXPECT_TRUE(MathEqual("2^{100}", "1267650600228229401496703205376"));
}

TEST(MathEqual, RadicalsPiAndComplexNumbers) {
  EXPECT_TRUE(MathEqual("\\sqrt{8}", "2\\sqrt{2}"));
  EXPECT_TRUE(MathEqual("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}"));
  EXPECT_TRUE(MathEqual("\\sqrt[3]{-8}", "-2"));
  EXPECT_TRUE(MathEqual("\\frac{9\\pi}{4}", "\\frac94\\pi"));
  EXPECT_TRUE(MathEqual("3+4i", "4i+3"));
  EXPECT_TRUE(MathEqual("(1+i)^2", "2i"));
  EXPECT_FALSE(MathEqual("3-4i", "3+4i"));
  EXPECT_TRUE(MathEqual("\\sqrt{-4}", "2i"));  // the principal root, not the -0 branch's -2i
}

TEST(MathEqual, BasesTuplesIntervalsAndLists) {
  EXPECT_TRUE(MathEqual("52_8", "52_{8}"));
  EXPECT_FALSE(MathEqual("42", "52_8"));
  EXPECT_FALSE(MathEqual("(1,2)", "(2,1)"));  // order matters
  EXPECT_FALSE(MathEqual("[0,1)", "(0,1)"));  // brackets matter
  EXPECT_TRUE(MathEqual("[0,\\frac12)", "[0,0.5)"));
  EXPECT_TRUE(MathEqual("1,-2", "-2, 1"));  // an unordered answer list
  EXPECT_FALSE(MathEqual("1", "1,-2"));
  EXPECT_TRUE(MathEqual("\\{3, 1\\}", "\\{1, 3\\}"));
  EXPECT_TRUE(MathEqual("(-\\infty, 2] \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2]"));
  EXPECT_TRUE(MathEqual("x > 5", "(5, \\infty)"));
  EXPECT_TRUE(MathEqual("1 \\pm \\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2"));
  // Past 64 bits a literal is a double; copies made for \pm and equations keep its value.
  EXPECT_TRUE(
      MathEqual("\\pm 100000000000000000000", "-100000000000000000000, 100000000000000000000"));
  EXPECT_TRUE(MathEqual("y = 100000000000000000000x", "100000000000000000000x - y = 0"));
}

TEST(MathEqual, MatricesAndEquations) {
  EXPECT_TRUE(MathEqual("\\begin{pmatrix}1 & \\frac12\\\\ 0 & 1\\end{pmatrix}",
                        "\\begin{bmatrix}1 & 0.5\\\\ 0 & 1\\end{bmatrix}"));
  EXPECT_FALSE(
      MathEqual("\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}"));
  EXPECT_TRUE(MathEqual("y = 2x + 1", "2x - y + 1 = 0"));
  EXPECT_TRUE(MathEqual("x = 5", "5"));
  EXPECT_TRUE(MathEqual("k = 5", "5"));
  EXPECT_FALSE(MathEqual("y = x + 1", "y = x - 1"));
  EXPECT_FALSE(MathEqual("x < 3", "x > 3"));
}

TEST(MathEqual, SymbolicExpressions) {
  EXPECT_TRUE(MathEqual("x^2-1", "(x-1)(x+1)"));
  EXPECT_FALSE(MathEqual("x^2+1", "(x+1)^2"));
  EXPECT_TRUE(MathEqual("\\sin^2 x + \\cos^2 x", "1"));
  EXPECT_TRUE(MathEqual("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"));
  EXPECT_TRUE(MathEqual("\\frac{\\pi r}{h+r}", "\\pi r (r+h)^{-1}"));
  EXPECT_FALSE(MathEqual("x+1", "x+2n+1"));
  EXPECT_TRUE(MathEqual("\\ln(e^2)", "2"));
  EXPECT_TRUE(MathEqual("\\log_2 8", "3"));
}

// The exact evaluator and the numeric one agree wherever the exact one has a value.
TEST(Evaluators, ExactAgreesWithNumeric) {
  for (const char* text :
       {"\\frac{1}{3}+\\frac{1}{6}", "(2/3)^{-3}", "\\sqrt{\\frac{49}{16}}", "\\sqrt[3]{-27}",
        "5!/3!", "\\binom{10}{3}", "-2^{10}+0.25", "8^{2/3}", "|-\\frac{7}{2}|"}) {
    internal::NodePtr node = internal::ParseLatex(text);
    ASSERT_NE(node, nullptr) << text;
    auto exact = internal::EvalExact(*node);
    ASSERT_TRUE(exact.has_value()) << text;
    std::complex<double> numeric = internal::EvalNumeric(*node, {});
    EXPECT_NEAR(numeric.real(), static_cast<double>(exact->num) / exact->den, 1e-12) << text;
    EXPECT_EQ(numeric.imag(), 0.0) << text;
  }
}

TEST(Evaluators, ExactOverflowFallsBack) {
  internal::NodePtr node = internal::ParseLatex("3^{50}");
  ASSERT_NE(node, nullptr);
  EXPECT_FALSE(internal::EvalExact(*node).has_value());  // 3^50 > 2^63
  EXPECT_NEAR(internal::EvalNumeric(*node, {}).real() / 7.178979876918526e23, 1.0, 1e-12);
}

// Pathological inputs: each must give a verdict (here "not equal") rather than hang. The test
// asserts results only; a hang would time the test out.
TEST(Bounds, PathologicalInputsAreNotEqual) {
  std::string deep = std::string(100000, '(') + "1" + std::string(100000, ')');
  EXPECT_FALSE(MathEqual(deep, "1"));
  std::string nested_frac;
  for (int i = 0; i < 5000; ++i) nested_frac += "\\frac{1}{";
  nested_frac += '2';
  nested_frac.append(5000, '}');
  EXPECT_FALSE(MathEqual(nested_frac, "2"));
  // Within the length bound, the depth bound stops the parser.
  EXPECT_FALSE(MathEqual(std::string(1000, '(') + "1" + std::string(1000, ')'), "1"));
  std::string short_frac;
  for (int i = 0; i < 300; ++i) short_frac += "\\frac{1}{";
  EXPECT_FALSE(MathEqual(short_frac + "2" + std::string(300, '}'), "2"));
  std::string huge(1000000, '7');
  EXPECT_FALSE(MathEqual(huge, "7"));
  EXPECT_TRUE(MathEqual(huge, huge));  // identical text is equal at any length
  EXPECT_FALSE(MathEqual("9^{9^{9^{9}}}", "9^{9^{9^{9}}}+1"));
  EXPECT_FALSE(MathEqual("9^9^9^9", "1"));
  EXPECT_FALSE(MathEqual("2^{10000}", "2^{10000}+1"));
  EXPECT_FALSE(MathEqual("10^{10^{10}}!", "1"));
  std::string product = "x";
  for (int i = 1; i < 1000; ++i) product += "\\cdot x";
  EXPECT_FALSE(MathEqual(product, "x^{999}"));
  std::string wide_list = "1";
  for (int i = 2; i <= 2000; ++i) wide_list.append(",").append(std::to_string(i));
  EXPECT_FALSE(MathEqual(wide_list, "1"));
}

TEST(Bounds, ExtractionIsLinear) {
  std::string response(1000000, 'a');
  response += "\\boxed{5}";
  EXPECT_EQ(ExtractAnswer(response), "5");
  std::string unclosed = "\\boxed";
  unclosed.append(1000000, '{');
  EXPECT_EQ(LastBoxed(unclosed), "");
  std::string many;
  for (int i = 0; i < 100000; ++i)
    many.append("\\boxed{").append(std::to_string(i % 10)).append("}");
  EXPECT_EQ(LastBoxed(many), "9");
}

TEST(MathEqual, IsDeterministic) {
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(MathEqual("\\frac{x^3-1}{x-1}", "x^2+x+1"));
    EXPECT_FALSE(MathEqual("\\frac{x^3-1}{x-1}", "x^2+x"));
  }
}

}  // namespace
}  // namespace rvec::eval::math
