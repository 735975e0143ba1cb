// Internal to the math grader: the expression tree a LaTeX answer parses into, its parser and
// its exact (rational) and numeric (complex) evaluators, all bounded in size, depth and work.
#pragma once

#include <complex>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rvec::eval::math::internal {

// Past these bounds an answer is not parsed at all (and so equals nothing but itself as text).
inline constexpr size_t kMaxAnswerChars = 4096;
inline constexpr int kMaxDepth = 64;
inline constexpr int kMaxNodes = 2000;

enum class Kind {
  kNumber,    // exact rational `num/den`; `decimal` when written with a decimal point
  kSymbol,    // a variable such as x, \theta, a_1
  kConstant,  // pi, e, i, infinity (name in `name`)
  kAdd,       // sum of children
  kMul,       // product of children
  kDiv,       // children[0] / children[1]
  kNeg,       // -children[0]
  kPow,       // children[0] ^ children[1]
  kFunc,      // name(children...): sin, ln, log (base in children[1]), sqrt (index), abs, ...
  kFactorial,
  kTuple,     // (a, b), [a, b), ...: `open`/`close` are the bracket characters
  kSet,       // {a, b}: unordered
  kList,      // a, b at top level: unordered
  kMatrix,    // rows x cols in row-major children
  kRelation,  // children[0] `name` children[1], name one of = < > <= >= !=
};

struct Node {
  Kind kind = Kind::kNumber;
  int64_t num = 0, den = 1;
  bool decimal = false;
  // A literal too long for 64 bits: only its double `value` is known (compared with tolerance).
  bool big = false;
  double value = 0;
  std::string name;
  char open = 0, close = 0;
  int rows = 0, cols = 0;
  std::vector<std::unique_ptr<Node>> children;
};

using NodePtr = std::unique_ptr<Node>;

// A deep copy.
NodePtr CloneTree(const Node& node);

// Parses a normalised answer; nullptr when it is not a well-formed expression or breaks a bound.
NodePtr ParseLatex(std::string_view text);

// An exact rational with overflow detection (denominator always positive, fraction reduced).
struct Rational {
  int64_t num = 0, den = 1;
};

// The exact value of a constant expression built from integers, decimals, + - * / and integer
// powers; nullopt when it has symbols, irrationals or overflows 64 bits.
std::optional<Rational> EvalExact(const Node& node);

// The same with each symbol bound to an exact rational.
std::optional<Rational> EvalExactAt(const Node& node, const std::map<std::string, Rational>& vars);

// The numeric value with each symbol bound by `vars` (missing symbols evaluate to NaN).
std::complex<double> EvalNumeric(const Node& node,
                                 const std::map<std::string, std::complex<double>>& vars);

// Collects the names of the free symbols.
void CollectSymbols(const Node& node, std::vector<std::string>* out);

// True when the tree contains a decimal literal or any non-rational constant or function.
bool IsInexact(const Node& node);

}  // namespace rvec::eval::math::internal
