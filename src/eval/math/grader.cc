// Deciding whether two extracted answers are mathematically equivalent: string identity after
// normalisation, then structural comparison of the parsed trees (tuples, intervals, sets,
// matrices, relations), and for scalars exact rational evaluation or evaluation at fixed
// pseudo-random points.
#include "eval/math/grader.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "eval/math/latex_expr.h"

namespace rvec::eval::math {
namespace {

using internal::Kind;
using internal::Node;
using Cx = std::complex<double>;

// Symbolic comparisons evaluate at this many points; a verdict needs this many defined ones.
constexpr int kPoints = 6;
constexpr int kMinDefinedPoints = 3;
constexpr int kMaxSymbols = 8;
constexpr size_t kMaxItems = 64;
// Constants compare with the reference relative tolerance; symbolic identities more tightly.
constexpr double kNumericRelTol = 1e-4;
constexpr double kSymbolicRelTol = 1e-6;

bool Close(Cx a, Cx b, double rel) {
  if (std::isinf(a.real()) || std::isinf(b.real())) {
    return a.real() == b.real() && std::abs(a.imag()) < 1e-12 && std::abs(b.imag()) < 1e-12;
  }
  if (!std::isfinite(a.real()) || !std::isfinite(a.imag()) || !std::isfinite(b.real()) ||
      !std::isfinite(b.imag())) {
    return false;
  }
  double scale = std::max(std::abs(a), std::abs(b));
  return std::abs(a - b) <= rel * scale || std::abs(a - b) <= 1e-12;
}

bool Finite(Cx v) { return std::isfinite(v.real()) && std::isfinite(v.imag()); }

// A plain (signed) number literal, the only kind of answer the percentage variants apply to.
bool IsPlainNumber(const Node& n) {
  if (n.kind == Kind::kNeg) return IsPlainNumber(*n.children[0]);
  return n.kind == Kind::kNumber;
}

bool SameRational(const internal::Rational& a, const internal::Rational& b) {
  return a.num == b.num && a.den == b.den;
}

// Small positive rationals for the symbols, varying with the point and the symbol; they avoid 0
// (where identities such as x^2 = x^3 hold by accident) and repeat no (numerator, denominator)
// pair across the points of one symbol.
internal::Rational ExactPoint(int point, int symbol) {
  static const int64_t kNum[] = {3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47};
  static const int64_t kDen[] = {2, 3, 4, 5, 7, 8, 9, 11};
  return {kNum[(point * 3 + symbol * 5) % 14], kDen[(point + symbol * 3) % 8]};
}

// Real points from a fixed integer hash (splitmix-style) in [0.35, 2.35): positive, so that
// sqrt(x^2) = x and log(x) are defined as competition answers mean them.
double NumericPoint(int point, int symbol) {
  uint64_t state = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(point * 31 + symbol + 1);
  state ^= state >> 29;
  state *= 0xBF58476D1CE4E5B9ull;
  state ^= state >> 32;
  return 0.35 + 2.0 * static_cast<double>(state % 1000003) / 1000003.0;
}

bool ScalarEqual(const Node& a, const Node& b) {
  std::vector<std::string> symbols;
  internal::CollectSymbols(a, &symbols);
  internal::CollectSymbols(b, &symbols);
  if (symbols.size() > kMaxSymbols) return false;
  bool inexact = internal::IsInexact(a) || internal::IsInexact(b);
  // Exact rational evaluation decides whenever both sides allow it.
  if (!inexact) {
    bool all_exact = true, all_same = true;
    for (int p = 0; p < (symbols.empty() ? 1 : kPoints) && all_exact && all_same; ++p) {
      std::map<std::string, internal::Rational> vars;
      for (size_t k = 0; k < symbols.size(); ++k) vars[symbols[k]] = ExactPoint(p, k);
      auto va = internal::EvalExactAt(a, vars), vb = internal::EvalExactAt(b, vars);
      if (!va || !vb) {
        all_exact = false;
      } else if (!SameRational(*va, *vb)) {
        all_same = false;
      }
    }
    if (all_exact) return all_same;
  }
  if (symbols.empty()) {
    return Close(internal::EvalNumeric(a, {}), internal::EvalNumeric(b, {}), kNumericRelTol);
  }
  int defined = 0;
  for (int p = 0; p < kPoints; ++p) {
    std::map<std::string, Cx> vars;
    for (size_t k = 0; k < symbols.size(); ++k) vars[symbols[k]] = NumericPoint(p, k);
    Cx va = internal::EvalNumeric(a, vars), vb = internal::EvalNumeric(b, vars);
    if (!Finite(va) && !Finite(vb)) continue;
    if (!Close(va, vb, kSymbolicRelTol)) return false;
    ++defined;
  }
  return defined >= kMinDefinedPoints;
}

bool Equal(const Node& a, const Node& b);

// Set equality: every item of one side equals some item of the other (repeats do not count,
// as a list of solutions that names one twice still names the same solutions).
bool UnorderedEqual(const Node& a, const Node& b) {
  if (a.children.size() > kMaxItems || b.children.size() > kMaxItems) return false;
  auto covered = [](const Node& x, const Node& y) {
    for (const auto& item : x.children) {
      bool found = false;
      for (size_t j = 0; j < y.children.size() && !found; ++j) found = Equal(*item, *y.children[j]);
      if (!found) return false;
    }
    return true;
  };
  return covered(a, b) && covered(b, a);
}

bool OrderedEqual(const Node& a, const Node& b) {
  if (a.children.size() != b.children.size() || a.children.size() > kMaxItems) return false;
  for (size_t i = 0; i < a.children.size(); ++i) {
    if (!Equal(*a.children[i], *b.children[i])) return false;
  }
  return true;
}

std::unique_ptr<Node> Clone(const Node& n) { return internal::CloneTree(n); }

// (lhs - rhs), or (rhs - lhs) when `negate`, as a new tree built from copies of the sides.
std::unique_ptr<Node> Difference(const Node& lhs, const Node& rhs, bool negate) {
  auto sum = std::make_unique<Node>();
  sum->kind = Kind::kAdd;
  auto neg = std::make_unique<Node>();
  neg->kind = Kind::kNeg;
  neg->children.push_back(Clone(negate ? lhs : rhs));
  sum->children.push_back(Clone(negate ? rhs : lhs));
  sum->children.push_back(std::move(neg));
  return sum;
}

// Whether lhs_a - rhs_a = k (lhs_b - rhs_b) for one constant k != 0 (k > 0 for inequalities,
// whose direction a negative factor would reverse), tested at the fixed points.
bool Proportional(const Node& da, const Node& db, bool positive) {
  std::vector<std::string> symbols;
  internal::CollectSymbols(da, &symbols);
  internal::CollectSymbols(db, &symbols);
  if (symbols.empty() || symbols.size() > kMaxSymbols) return false;
  Cx ratio(NAN, NAN);
  int defined = 0;
  for (int p = 0; p < kPoints; ++p) {
    std::map<std::string, Cx> vars;
    for (size_t k = 0; k < symbols.size(); ++k) vars[symbols[k]] = NumericPoint(p, k);
    Cx va = internal::EvalNumeric(da, vars), vb = internal::EvalNumeric(db, vars);
    if (!Finite(va) || !Finite(vb)) continue;
    if (std::abs(vb) < 1e-12 || std::abs(va) < 1e-12) {
      if (std::abs(vb) < 1e-12 && std::abs(va) < 1e-12) continue;
      return false;
    }
    Cx r = va / vb;
    if (defined == 0) {
      ratio = r;
    } else if (!Close(r, ratio, kSymbolicRelTol)) {
      return false;
    }
    ++defined;
  }
  if (defined < kMinDefinedPoints) return false;
  return !positive || (ratio.real() > 0 && std::abs(ratio.imag()) < 1e-12);
}

bool RelationEqual(const Node& a, const Node& b) {
  auto flip = [](const std::string& op) -> std::string {
    if (op == "<") return ">";
    if (op == ">") return "<";
    if (op == "<=") return ">=";
    if (op == ">=") return "<=";
    return op;
  };
  const Node &al = *a.children[0], &ar = *a.children[1];
  const Node &bl = *b.children[0], &br = *b.children[1];
  bool symmetric = a.name == "=" || a.name == "!=" || a.name == "~";
  if (a.name == b.name) {
    if (Equal(al, bl) && Equal(ar, br)) return true;
    if (symmetric && Equal(al, br) && Equal(ar, bl)) return true;
  } else if (flip(a.name) == b.name) {
    if (Equal(al, br) && Equal(ar, bl)) return true;
  } else {
    return false;
  }
  if (al.kind == Kind::kRelation || bl.kind == Kind::kRelation || a.name == "in") return false;
  // The same relation after moving everything to one side: a - b against k (c - d).
  auto da = Difference(al, ar, false);
  auto db = Difference(bl, br, a.name != b.name);
  return Proportional(*da, *db, !symmetric);
}

bool IsCollection(const Node& n) { return n.kind == Kind::kList || n.kind == Kind::kSet; }

// The leftmost operand of a relation chain.
const Node* FirstPart(const Node& n) {
  return n.kind == Kind::kRelation ? FirstPart(*n.children[0]) : &n;
}

// A side made of names only ("x", "f(x)", "AB", "(p, q)", "\frac{NO}{BO}"): no numbers.
bool IsNameLike(const Node& n) {
  switch (n.kind) {
    case Kind::kSymbol:
      return true;
    case Kind::kMul:
    case Kind::kDiv:
    case Kind::kTuple:
    case Kind::kFunc:
      for (const auto& c : n.children) {
        if (!IsNameLike(*c)) return false;
      }
      return !n.children.empty();
    default:
      return false;
  }
}

// The operands and operators of a relation chain a = b = c (parsed left-associatively).
void Flatten(const Node& n, std::vector<const Node*>* parts, std::vector<std::string>* ops) {
  if (n.kind != Kind::kRelation) {
    parts->push_back(&n);
    return;
  }
  Flatten(*n.children[0], parts, ops);
  ops->push_back(n.name);
  parts->push_back(n.children[1].get());
}

// "x = 5", "(p, q) = (3, 2)", "x = 2 + 3 = 5", "x \approx 5", "x \in [0, 1]": the value the
// named unknown takes (the last side), or nullptr when `n` is no such statement.
const Node* NamedValue(const Node& n) {
  if (n.kind != Kind::kRelation) return nullptr;
  std::vector<const Node*> parts;
  std::vector<std::string> ops;
  Flatten(n, &parts, &ops);
  for (const auto& op : ops) {
    if (op != "=" && op != "~" && op != "in") return nullptr;
  }
  return IsNameLike(*parts[0]) ? parts.back() : nullptr;
}

std::unique_ptr<Node> Infinity(bool negative) {
  auto inf = std::make_unique<Node>();
  inf->kind = Kind::kConstant;
  inf->name = "inf";
  if (!negative) return inf;
  auto neg = std::make_unique<Node>();
  neg->kind = Kind::kNeg;
  neg->children.push_back(std::move(inf));
  return neg;
}

// An inequality about one named quantity as the interval it describes: "-2 <= x < 7" is
// [-2, 7), "x > 5" is (5, \infty). nullptr when `n` is no such inequality.
std::unique_ptr<Node> AsInterval(const Node& n) {
  if (n.kind != Kind::kRelation) return nullptr;
  std::vector<const Node*> parts;
  std::vector<std::string> ops;
  Flatten(n, &parts, &ops);
  auto less = [](const std::string& op) { return op == "<" || op == "<="; };
  auto greater = [](const std::string& op) { return op == ">" || op == ">="; };
  auto interval = std::make_unique<Node>();
  interval->kind = Kind::kTuple;
  if (parts.size() == 3 && IsNameLike(*parts[1]) && !IsNameLike(*parts[0]) &&
      !IsNameLike(*parts[2])) {
    bool up = less(ops[0]) && less(ops[1]), down = greater(ops[0]) && greater(ops[1]);
    if (!up && !down) return nullptr;
    const Node* low = up ? parts[0] : parts[2];
    const Node* high = up ? parts[2] : parts[0];
    interval->open = ops[up ? 0 : 1].size() == 2 ? '[' : '(';
    interval->close = ops[up ? 1 : 0].size() == 2 ? ']' : ')';
    interval->children.push_back(Clone(*low));
    interval->children.push_back(Clone(*high));
    return interval;
  }
  if (parts.size() != 2 || (!less(ops[0]) && !greater(ops[0]))) return nullptr;
  bool name_left = IsNameLike(*parts[0]);
  if (name_left == IsNameLike(*parts[1])) return nullptr;
  const Node* bound = name_left ? parts[1] : parts[0];
  bool upper = less(ops[0]) == name_left;  // the bound is an upper one
  bool closed = ops[0].size() == 2;
  interval->open = upper ? '(' : (closed ? '[' : '(');
  interval->close = upper ? (closed ? ']' : ')') : ')';
  interval->children.push_back(upper ? Infinity(true) : Clone(*bound));
  interval->children.push_back(upper ? Clone(*bound) : Infinity(false));
  return interval;
}

// A union of finite sets ({1, 2} \cup {2, 3}) as the one set it is; nullptr otherwise.
std::unique_ptr<Node> SetUnion(const Node& n) {
  if (n.kind != Kind::kFunc || n.name != "union") return nullptr;
  auto set = std::make_unique<Node>();
  set->kind = Kind::kSet;
  for (const auto& part : n.children) {
    if (part->kind != Kind::kSet) return nullptr;
    for (const auto& item : part->children) set->children.push_back(Clone(*item));
  }
  return set;
}

bool EqualCanonical(const Node& a, const Node& b);

bool Equal(const Node& a, const Node& b) {
  // Two statements about unknowns: equal when they name the same unknowns with equal values.
  const Node *va = NamedValue(a), *vb = NamedValue(b);
  if (va && vb) {
    if (Equal(*FirstPart(a), *FirstPart(b)) && EqualCanonical(*va, *vb)) return true;
    return EqualCanonical(a, b);
  }
  auto ia = AsInterval(a), ib = AsInterval(b);
  if (a.kind == Kind::kRelation && b.kind == Kind::kRelation) {
    if (ia && ib && EqualCanonical(*ia, *ib)) return true;
    if (EqualCanonical(a, b)) return true;
    if (!va && !vb) return false;
  }
  auto ua = SetUnion(a), ub = SetUnion(b);
  const Node* ca = ia ? ia.get() : (va ? va : (ua ? ua.get() : &a));
  const Node* cb = ib ? ib.get() : (vb ? vb : (ub ? ub.get() : &b));
  return EqualCanonical(*ca, *cb);
}

bool EqualCanonical(const Node& a, const Node& b) {
  if (IsCollection(a) && IsCollection(b)) return UnorderedEqual(a, b);
  if (a.kind == Kind::kRelation && b.kind == Kind::kRelation) return RelationEqual(a, b);
  if (a.kind == Kind::kTuple || b.kind == Kind::kTuple) {
    return a.kind == b.kind && a.open == b.open && a.close == b.close && OrderedEqual(a, b);
  }
  if (a.kind == Kind::kMatrix || b.kind == Kind::kMatrix) {
    return a.kind == b.kind && a.rows == b.rows && a.cols == b.cols && OrderedEqual(a, b);
  }
  bool a_union = a.kind == Kind::kFunc && a.name == "union";
  bool b_union = b.kind == Kind::kFunc && b.name == "union";
  if (a_union || b_union) return a_union && b_union && UnorderedEqual(a, b);
  if (IsCollection(a) || IsCollection(b) || a.kind == Kind::kRelation ||
      b.kind == Kind::kRelation) {
    return false;
  }
  return ScalarEqual(a, b);
}

std::string Lower(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The reference's percentage variants: a plain number equals the gold, gold/100 or gold*100.
bool PercentEqual(const Node& pred, const Node& gold) {
  if (!IsPlainNumber(pred) || !IsPlainNumber(gold)) return false;
  Cx p = internal::EvalNumeric(pred, {}), g = internal::EvalNumeric(gold, {});
  return Close(p, g / 100.0, kNumericRelTol) || Close(p, g * 100.0, kNumericRelTol);
}

}  // namespace

bool MathEqual(std::string_view prediction, std::string_view gold) {
  // Identical answers are equal at any length (a linear comparison); past the length bound
  // nothing else is tried.
  std::string raw_pred = Lower(prediction), raw_gold = Lower(gold);
  if (raw_pred.empty() || raw_gold.empty()) return false;
  if (raw_pred == raw_gold) return true;
  if (prediction.size() > internal::kMaxAnswerChars || gold.size() > internal::kMaxAnswerChars)
    return false;
  std::string pred = NormalizeAnswer(prediction), ref = NormalizeAnswer(gold);
  if (pred.empty() || ref.empty()) return false;
  if (pred == ref) return true;
  internal::NodePtr p = internal::ParseLatex(pred), g = internal::ParseLatex(ref);
  if (!p || !g) return false;
  return Equal(*p, *g) || PercentEqual(*p, *g);
}

}  // namespace rvec::eval::math
