// Competition-math answers: extracting the final answer from a model's response and deciding
// whether it is mathematically equivalent to the reference, as the Qwen2.5-Math, prm800k and
// math-verify graders decide.
#pragma once

#include <string>
#include <string_view>

namespace rvec::eval::math {

// The contents of the last \boxed{...} or \fbox{...} (balanced braces; also "\boxed 5"), or ""
// when there is none or its braces never close.
std::string LastBoxed(std::string_view text);

// The answer a response gives: the text after the last </think> (thinking models), then its last
// boxed expression, else the reference fall-backs (Minerva's "final answer is $...$. I hope",
// "the answer is ...", the last number). "" when nothing can be extracted.
std::string ExtractAnswer(std::string_view response);

// Normalises an answer string (math delimiters, \left/\right, \dfrac/\tfrac, spaces, \!, ^\circ,
// \$,
// \%, units and \text{}, thousands separators, a leading "x =") before it is parsed; the list is
// in docs/math-grading.md.
std::string NormalizeAnswer(std::string_view answer);

// True when `prediction` is mathematically equivalent to `gold` (both already extracted answer
// strings): numbers within relative 1e-4 (and the percentage variants), exact rationals, tuples,
// intervals, sets and lists, matrices, equations, and expressions equal at fixed points
// (docs/math-grading.md). Deterministic and bounded in time: a pathological input is "not equal"
// within milliseconds.
bool MathEqual(std::string_view prediction, std::string_view gold);

}  // namespace rvec::eval::math
