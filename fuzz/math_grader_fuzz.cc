// Fuzz target for the competition-math grader: arbitrary responses and answers are extracted,
// normalised and compared without a crash, a hang or a sanitizer report, and every verdict is
// deterministic and reflexive.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eval/math/grader.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "math_grader_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

// The input is "PREDICTION\tGOLD" (no tab: the whole input is both a response and an answer).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rvec::eval::math;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t tab = input.find('\t');
  const std::string_view left = input.substr(0, tab);
  const std::string_view right = tab == std::string_view::npos ? left : input.substr(tab + 1);

  const std::string extracted = ExtractAnswer(left);
  Check(extracted == ExtractAnswer(left), "ExtractAnswer is not deterministic");
  const std::string boxed = LastBoxed(left);
  Check(boxed.size() <= left.size(), "LastBoxed returned more than its input");
  const std::string normalized = NormalizeAnswer(right);
  Check(normalized == NormalizeAnswer(right), "NormalizeAnswer is not deterministic");

  const bool verdict = MathEqual(extracted, right);
  Check(verdict == MathEqual(extracted, right), "MathEqual is not deterministic");
  // An empty answer is never a match (not even for itself); anything else equals itself.
  auto blank = [](std::string_view s) { return s.find_first_not_of(" \t\n\r\f\v") == s.npos; };
  if (!blank(right)) Check(MathEqual(right, right), "an answer is not equal to itself");
  if (!blank(extracted)) {
    Check(MathEqual(extracted, extracted), "an extracted answer is not equal to itself");
  }
  return 0;
}
