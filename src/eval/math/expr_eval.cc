// Evaluates a parsed answer: exactly over 64-bit rationals (with overflow detection) where the
// expression allows it, else numerically over the complex doubles.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "eval/math/latex_expr.h"

namespace rvec::eval::math::internal {
namespace {

using Cx = std::complex<double>;
using Exact = std::optional<Rational>;

Exact Make(__int128 num, __int128 den) {
  if (den == 0) return std::nullopt;
  if (den < 0) num = -num, den = -den;
  __int128 a = num < 0 ? -num : num, b = den;
  while (b != 0) a %= b, std::swap(a, b);
  if (a > 1) num /= a, den /= a;
  if (num > INT64_MAX || num < -INT64_MAX || den > INT64_MAX) return std::nullopt;
  return Rational{static_cast<int64_t>(num), static_cast<int64_t>(den)};
}

Exact Add(Exact a, Exact b) {
  if (!a || !b) return std::nullopt;
  return Make(static_cast<__int128>(a->num) * b->den + static_cast<__int128>(b->num) * a->den,
              static_cast<__int128>(a->den) * b->den);
}

Exact Mul(Exact a, Exact b) {
  if (!a || !b) return std::nullopt;
  return Make(static_cast<__int128>(a->num) * b->num, static_cast<__int128>(a->den) * b->den);
}

Exact Inverse(Exact a) {
  if (!a || a->num == 0) return std::nullopt;
  return Make(a->den, a->num);
}

// Integer powers only, |exponent| <= 64 (anything larger overflows 64 bits unless trivial).
Exact IntPow(Exact base, Exact exp) {
  if (!base || !exp || exp->den != 1) return std::nullopt;
  int64_t e = exp->num;
  if (base->num == 0 && e < 0) return std::nullopt;
  if ((base->num == 1 || base->num == 0) && base->den == 1) return base;
  if (e > 64 || e < -64) return std::nullopt;
  Exact r = Rational{1, 1};
  for (int64_t k = 0; k < (e < 0 ? -e : e) && r; ++k) r = Mul(r, base);
  return e < 0 ? Inverse(r) : r;
}

// The exact n-th root of a non-negative integer, or -1.
int64_t IntRoot(int64_t v, int64_t n) {
  if (v < 0 || n < 1 || n > 64) return -1;
  int64_t r = static_cast<int64_t>(std::llround(std::pow(static_cast<double>(v), 1.0 / n)));
  for (int64_t c = std::max<int64_t>(0, r - 1); c <= r + 1; ++c) {
    __int128 p = 1;
    for (int64_t k = 0; k < n && p <= v; ++k) p *= c;
    if (p == v) return c;
  }
  return -1;
}

Exact Root(Exact v, Exact index) {
  if (!v || !index || index->den != 1 || index->num < 1) return std::nullopt;
  bool negative = v->num < 0;
  if (negative && index->num % 2 == 0) return std::nullopt;
  int64_t num = IntRoot(negative ? -v->num : v->num, index->num);
  int64_t den = IntRoot(v->den, index->num);
  if (num < 0 || den < 0) return std::nullopt;
  return Rational{negative ? -num : num, den};
}

Exact Factorial(Exact v) {
  if (!v || v->den != 1 || v->num < 0 || v->num > 20) return std::nullopt;
  int64_t r = 1;
  for (int64_t k = 2; k <= v->num; ++k) r *= k;
  return Rational{r, 1};
}

Exact Binomial(Exact n, Exact k) {
  if (!n || !k || n->den != 1 || k->den != 1 || n->num < 0 || n->num > 60 || k->num < 0)
    return std::nullopt;
  if (k->num > n->num) return Rational{0, 1};
  __int128 r = 1;
  for (int64_t j = 1; j <= k->num; ++j) r = r * (n->num - k->num + j) / j;
  return Make(r, 1);
}

Exact ExactFunc(const Node& node, const std::map<std::string, Rational>* vars);

Exact ExactWith(const Node& node, const std::map<std::string, Rational>* vars) {
  auto child = [&](size_t i) { return ExactWith(*node.children[i], vars); };
  switch (node.kind) {
    case Kind::kNumber:
      if (node.big) return std::nullopt;
      return Make(node.num, node.den);
    case Kind::kSymbol: {
      if (!vars) return std::nullopt;
      auto it = vars->find(node.name);
      if (it == vars->end()) return std::nullopt;
      return Make(it->second.num, it->second.den);
    }
    case Kind::kAdd: {
      Exact sum = Rational{0, 1};
      for (size_t i = 0; i < node.children.size() && sum; ++i) sum = Add(sum, child(i));
      return sum;
    }
    case Kind::kMul:
      return Mul(child(0), child(1));
    case Kind::kDiv:
      return Mul(child(0), Inverse(child(1)));
    case Kind::kNeg:
      return Mul(child(0), Rational{-1, 1});
    case Kind::kPow: {
      Exact base = child(0), exp = child(1);
      if (exp && exp->den != 1 && exp->den <= 64)
        return IntPow(Root(base, Rational{exp->den, 1}), Rational{exp->num, 1});
      return IntPow(base, exp);
    }
    case Kind::kFactorial:
      return Factorial(child(0));
    case Kind::kFunc:
      return ExactFunc(node, vars);
    default:
      return std::nullopt;
  }
}

Exact ExactFunc(const Node& node, const std::map<std::string, Rational>* vars) {
  auto child = [&](size_t i) { return ExactWith(*node.children[i], vars); };
  if (node.name == "sqrt") {
    return Root(child(0), node.children.size() > 1 ? child(1) : Rational{2, 1});
  }
  if (node.name == "abs") {
    Exact v = child(0);
    if (v && v->num < 0) v->num = -v->num;
    return v;
  }
  if (node.name == "binom") return Binomial(child(0), child(1));
  return std::nullopt;
}

Cx RealRoot(Cx v, double n) {
  // Odd roots of negative reals are the real roots, as competition answers mean them.
  if (v.imag() == 0 && v.real() < 0 && std::fmod(n, 2.0) == 1.0) return -std::pow(-v.real(), 1 / n);
  return std::pow(v, 1.0 / n);
}

Cx Power(Cx base, Cx exp) {
  if (base.imag() == 0 && exp.imag() == 0) {
    double b = base.real(), e = exp.real();
    if (b >= 0 || e == std::round(e)) return std::pow(b, e);
    double inv = 1 / e;
    if (std::abs(inv - std::round(inv)) < 1e-12) return RealRoot(base, std::round(inv));
  }
  if (base == Cx(0, 0)) return exp.real() > 0 ? Cx(0, 0) : Cx(NAN, NAN);
  return std::pow(base, exp);
}

Cx NumericFunc(const Node& node, const std::map<std::string, Cx>& vars) {
  Cx a = EvalNumeric(*node.children[0], vars);
  const std::string& f = node.name;
  if (f == "sqrt") {
    return node.children.size() > 1 ? RealRoot(a, EvalNumeric(*node.children[1], vars).real())
                                    : std::sqrt(a);
  }
  if (f == "sin") return std::sin(a);
  if (f == "cos") return std::cos(a);
  if (f == "tan") return std::tan(a);
  if (f == "sec") return 1.0 / std::cos(a);
  if (f == "csc") return 1.0 / std::sin(a);
  if (f == "cot") return 1.0 / std::tan(a);
  if (f == "arcsin") return std::asin(a);
  if (f == "arccos") return std::acos(a);
  if (f == "arctan") return std::atan(a);
  if (f == "sinh") return std::sinh(a);
  if (f == "cosh") return std::cosh(a);
  if (f == "tanh") return std::tanh(a);
  if (f == "arsinh") return std::asinh(a);
  if (f == "arcosh") return std::acosh(a);
  if (f == "artanh") return std::atanh(a);
  if (f == "ln" || (f == "log" && node.children.size() == 1)) return std::log(a);
  if (f == "log") return std::log(a) / std::log(EvalNumeric(*node.children[1], vars));
  if (f == "exp") return std::exp(a);
  if (f == "abs") return std::abs(a);
  if (f == "binom") {
    double n = a.real(), k = EvalNumeric(*node.children[1], vars).real();
    return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1));
  }
  return Cx(NAN, NAN);
}

}  // namespace

std::optional<Rational> EvalExact(const Node& node) { return ExactWith(node, nullptr); }

std::optional<Rational> EvalExactAt(const Node& node, const std::map<std::string, Rational>& vars) {
  return ExactWith(node, &vars);
}

std::complex<double> EvalNumeric(const Node& node, const std::map<std::string, Cx>& vars) {
  auto child = [&](size_t i) { return EvalNumeric(*node.children[i], vars); };
  switch (node.kind) {
    case Kind::kNumber:
      if (node.big) return node.value;
      return static_cast<double>(node.num) / static_cast<double>(node.den);
    case Kind::kSymbol: {
      auto it = vars.find(node.name);
      return it == vars.end() ? Cx(NAN, NAN) : it->second;
    }
    case Kind::kConstant:
      if (node.name == "pi") return std::numbers::pi;
      if (node.name == "e") return std::numbers::e;
      if (node.name == "i") return Cx(0, 1);
      return Cx(INFINITY, 0);
    case Kind::kAdd: {
      Cx sum = 0;
      for (size_t i = 0; i < node.children.size(); ++i) sum += child(i);
      return sum;
    }
    case Kind::kMul:
      return child(0) * child(1);
    case Kind::kDiv:
      return child(0) / child(1);
    case Kind::kNeg: {
      // Keep a zero imaginary part +0: sqrt(-(4)) must be 2i, not the -0 branch's -2i.
      Cx v = child(0);
      return Cx(-v.real(), v.imag() == 0 ? 0.0 : -v.imag());
    }
    case Kind::kPow: {
      // A finite base and exponent with an infinite power overflowed: that is no value at all
      // (else 2^{10000} and 2^{10000} + 1 would both be "infinity" and compare equal).
      Cx base = child(0), exp = child(1), r = Power(base, exp);
      bool finite_in = std::isfinite(std::abs(base)) && std::isfinite(std::abs(exp));
      return finite_in && !std::isfinite(std::abs(r)) ? Cx(NAN, NAN) : r;
    }
    case Kind::kFactorial: {
      double r = std::tgamma(child(0).real() + 1);
      return std::isfinite(r) ? Cx(r) : Cx(NAN, NAN);
    }
    case Kind::kFunc:
      return NumericFunc(node, vars);
    default:
      return Cx(NAN, NAN);
  }
}

NodePtr CloneTree(const Node& n) {
  auto c = std::make_unique<Node>(Node{n.kind,
                                       n.num,
                                       n.den,
                                       n.decimal,
                                       n.big,
                                       n.value,
                                       n.name,
                                       n.open,
                                       n.close,
                                       n.rows,
                                       n.cols,
                                       {}});
  for (const auto& child : n.children) c->children.push_back(child ? CloneTree(*child) : nullptr);
  return c;
}

void CollectSymbols(const Node& node, std::vector<std::string>* out) {
  if (node.kind == Kind::kSymbol) {
    if (std::find(out->begin(), out->end(), node.name) == out->end()) out->push_back(node.name);
  }
  for (const auto& c : node.children) {
    if (c) CollectSymbols(*c, out);
  }
}

bool IsInexact(const Node& node) {
  if (node.kind == Kind::kNumber && (node.decimal || node.big)) return true;
  if (node.kind == Kind::kConstant) return true;
  for (const auto& c : node.children) {
    if (c && IsInexact(*c)) return true;
  }
  return false;
}

}  // namespace rvec::eval::math::internal
