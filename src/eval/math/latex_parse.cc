// A small recursive-descent parser for competition-math answers written in LaTeX (or plain
// "expr" notation): numbers, + - * / ^, implicit multiplication, \frac, \sqrt, functions,
// relations, tuples/intervals/sets/lists and matrices. Bounded in depth and node count.
#include <cctype>
#include <cstring>

#include "eval/math/latex_expr.h"

namespace rvec::eval::math::internal {
namespace {

bool IsGreek(std::string_view name) {
  static const char* kGreek[] = {
      "alpha",    "beta",    "gamma", "delta",  "epsilon", "varepsilon", "zeta",  "eta",   "theta",
      "vartheta", "iota",    "kappa", "lambda", "mu",      "nu",         "xi",    "rho",   "sigma",
      "tau",      "upsilon", "phi",   "varphi", "chi",     "psi",        "omega", "Gamma", "Delta",
      "Theta",    "Lambda",  "Xi",    "Sigma",  "Phi",     "Psi",        "Omega", "ell"};
  for (const char* g : kGreek) {
    if (name == g) return true;
  }
  return false;
}

bool IsFunction(std::string_view name) {
  static const char* kFuncs[] = {"sin",    "cos",    "tan",    "sec",    "csc",   "cot", "arcsin",
                                 "arccos", "arctan", "sinh",   "cosh",   "tanh",  "ln",  "log",
                                 "exp",    "sqrt",   "arsinh", "arcosh", "artanh"};
  for (const char* f : kFuncs) {
    if (name == f) return true;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  NodePtr Run() {
    NodePtr n = ParseList();
    SkipSpace();
    if (failed_ || pos_ != s_.size()) return nullptr;
    return n;
  }

 private:
  // Depth guard: every recursive production holds one while it runs.
  struct Guard {
    explicit Guard(Parser* p) : p(p) {
      if (++p->depth_ > kMaxDepth) p->failed_ = true;
    }
    ~Guard() { --p->depth_; }
    Parser* p;
  };

  NodePtr Make(Kind kind) {
    if (++nodes_ > kMaxNodes) failed_ = true;
    auto n = std::make_unique<Node>();
    n->kind = kind;
    return n;
  }
  NodePtr Make(Kind kind, NodePtr a) {
    NodePtr n = Make(kind);
    n->children.push_back(std::move(a));
    return n;
  }
  NodePtr Make(Kind kind, NodePtr a, NodePtr b) {
    NodePtr n = Make(kind, std::move(a));
    n->children.push_back(std::move(b));
    return n;
  }
  NodePtr Fail() {
    failed_ = true;
    return nullptr;
  }

  void SkipSpace() {
    while (pos_ < s_.size()) {
      if (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '~') {
        ++pos_;
      } else if (s_.substr(pos_, 2) == "\\," || s_.substr(pos_, 2) == "\\;" ||
                 s_.substr(pos_, 2) == "\\!" || s_.substr(pos_, 2) == "\\:" ||
                 s_.substr(pos_, 2) == "\\ ") {
        pos_ += 2;
      } else if (PeekCommand() == "left" || PeekCommand() == "right") {
        pos_ += 1 + PeekCommand().size();
      } else {
        return;
      }
    }
  }
  char Peek() {
    SkipSpace();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  // The command name at pos_ (without the backslash), "" when pos_ is not a command. A
  // backslash followed by a non-letter names that one character.
  std::string_view PeekCommand() const {
    if (pos_ >= s_.size() || s_[pos_] != '\\' || pos_ + 1 >= s_.size()) return {};
    size_t end = pos_ + 1;
    while (end < s_.size() && std::isalpha(static_cast<unsigned char>(s_[end]))) ++end;
    if (end == pos_ + 1) return s_.substr(pos_ + 1, 1);
    return s_.substr(pos_ + 1, end - pos_ - 1);
  }
  std::string_view CommandAfterSpace() {
    SkipSpace();
    return PeekCommand();
  }
  bool EatCommand(std::string_view name) {
    if (CommandAfterSpace() != name) return false;
    pos_ += 1 + name.size();
    return true;
  }
  // A plain-text function or constant name ("sqrt(", "pi") at pos_, as "expr" answers write it.
  std::string_view PeekWord() {
    SkipSpace();
    static const char* kWords[] = {"sqrt", "sin", "cos", "tan", "ln", "log", "exp", "pi", "oo"};
    for (const char* w : kWords) {
      size_t n = std::strlen(w);
      if (s_.substr(pos_, n) != w) continue;
      char next = pos_ + n < s_.size() ? s_[pos_ + n] : '\0';
      if (!std::isalpha(static_cast<unsigned char>(next))) return s_.substr(pos_, n);
    }
    return {};
  }

  static const char* RelationOf(std::string_view cmd) {
    if (cmd == "le" || cmd == "leq" || cmd == "leqslant") return "<=";
    if (cmd == "ge" || cmd == "geq" || cmd == "geqslant") return ">=";
    if (cmd == "ne" || cmd == "neq") return "!=";
    if (cmd == "lt") return "<";
    if (cmd == "gt") return ">";
    if (cmd == "approx") return "~";
    if (cmd == "in") return "in";
    return nullptr;
  }

  // The relation operator at pos_ ("=", "<=", "in", ...), consumed; "" when there is none.
  std::string EatRelation() {
    char c = Peek();
    if (c == '!' && s_.substr(pos_, 2) == "!=") {
      pos_ += 2;
      return "!=";
    }
    if (c == '=' || c == '<' || c == '>') {
      ++pos_;
      if (c != '=' && pos_ < s_.size() && s_[pos_] == '=') {
        ++pos_;
        return c == '<' ? "<=" : ">=";
      }
      return c == '=' ? "=" : (c == '<' ? "<" : ">");
    }
    if (const char* rel = RelationOf(CommandAfterSpace())) {
      pos_ += 1 + PeekCommand().size();
      return rel;
    }
    return "";
  }

  NodePtr ParseList() {
    Guard g(this);
    NodePtr first = ParseRelation();
    if (Peek() != ',' && Peek() != ';') return first;
    NodePtr list = Make(Kind::kList, std::move(first));
    while (!failed_ && (Eat(',') || Eat(';'))) list->children.push_back(ParseRelation());
    return list;
  }

  NodePtr ParseRelation() {
    Guard g(this);
    NodePtr lhs = ParseUnion();
    while (!failed_) {
      std::string rel = EatRelation();
      if (rel.empty()) break;
      NodePtr rhs = ParseUnion();
      // "x = 1/3 \approx 0.33": the approximation after an exact value is commentary.
      if (rel == "~" && lhs->kind == Kind::kRelation) continue;
      NodePtr n = Make(Kind::kRelation, std::move(lhs), std::move(rhs));
      n->name = std::move(rel);
      lhs = std::move(n);
    }
    return lhs;
  }

  NodePtr ParseUnion() {
    Guard g(this);
    NodePtr lhs = ParseExpr();
    if (CommandAfterSpace() != "cup") return lhs;
    NodePtr n = Make(Kind::kFunc, std::move(lhs));
    n->name = "union";
    while (!failed_ && EatCommand("cup")) n->children.push_back(ParseExpr());
    return n;
  }

  // A sum; "a \pm b" is the set {a + b, a - b} (one \pm at most).
  NodePtr ParseExpr() {
    Guard g(this);
    std::vector<std::pair<int, NodePtr>> terms;  // sign: +1, -1, or 0 for the \pm term
    int pm_terms = 0;
    int sign = 1;
    if (EatCommand("pm")) sign = 0, ++pm_terms;
    terms.emplace_back(sign, ParseTerm());
    while (!failed_) {
      char c = Peek();
      if (c == '+' || c == '-') {
        ++pos_;
        sign = c == '+' ? 1 : -1;
      } else if (EatCommand("pm") || EatCommand("mp")) {
        sign = 0, ++pm_terms;
      } else {
        break;
      }
      terms.emplace_back(sign, ParseTerm());
    }
    if (failed_ || pm_terms > 1) return Fail();
    if (pm_terms == 0) return Sum(&terms, 1);
    NodePtr plus = Sum(&terms, 1), minus = Sum(&terms, -1);
    NodePtr set = Make(Kind::kSet, std::move(plus));
    set->children.push_back(std::move(minus));
    return set;
  }

  // The sum of `terms`, the \pm term taking `pm_sign`; the terms are cloned when pm_sign is +1
  // so that the -1 call can reuse them.
  NodePtr Sum(std::vector<std::pair<int, NodePtr>>* terms, int pm_sign) {
    bool has_pm = false;
    for (const auto& t : *terms) has_pm |= t.first == 0;
    std::vector<NodePtr> parts;
    for (auto& [sign, term] : *terms) {
      if (!term) return Fail();
      NodePtr t = has_pm && pm_sign == 1 ? CloneNode(*term) : std::move(term);
      int s = sign == 0 ? pm_sign : sign;
      parts.push_back(s < 0 ? Make(Kind::kNeg, std::move(t)) : std::move(t));
    }
    if (parts.size() == 1) return std::move(parts[0]);
    NodePtr sum = Make(Kind::kAdd);
    for (auto& part : parts) sum->children.push_back(std::move(part));
    return sum;
  }

  NodePtr CloneNode(const Node& n) {
    NodePtr c = Make(n.kind);
    c->num = n.num, c->den = n.den, c->decimal = n.decimal, c->name = n.name;
    c->big = n.big, c->value = n.value;
    c->open = n.open, c->close = n.close, c->rows = n.rows, c->cols = n.cols;
    for (const auto& ch : n.children) c->children.push_back(ch ? CloneNode(*ch) : nullptr);
    return c;
  }

  // Whether the text at pos_ begins a factor that multiplies the previous one implicitly.
  bool StartsImplicitFactor() {
    char c = Peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || std::isalpha(static_cast<unsigned char>(c)))
      return true;
    if (c == '(' || c == '{' || c == '.') return true;
    if (c != '\\') return false;
    std::string_view cmd = PeekCommand();
    return cmd == "frac" || cmd == "dfrac" || cmd == "tfrac" || cmd == "cfrac" || cmd == "pi" ||
           cmd == "infty" || cmd == "binom" || IsFunction(cmd) || IsGreek(cmd) || cmd == "{" ||
           cmd == "begin" || cmd == "mathrm";
  }

  static bool IsInteger(const Node* n) {
    return n && n->kind == Kind::kNumber && !n->decimal && !n->big && n->den == 1;
  }

  // A mixed number: an integer written right before a fraction of integers ("6\frac{1}{2}" is
  // 6 + 1/2, "-3\frac{1}{2}" is -(3 + 1/2)), as latex2sympy reads it; `whole` is that integer or
  // its negation. Anything else after an integer multiplies it.
  NodePtr MixedOrProduct(NodePtr whole) {
    NodePtr factor = ParsePower();
    bool proper = factor && factor->kind == Kind::kDiv && IsInteger(factor->children[0].get()) &&
                  IsInteger(factor->children[1].get());
    bool negative = whole && whole->kind == Kind::kNeg && IsInteger(whole->children[0].get());
    if (!proper || !(IsInteger(whole.get()) || negative)) {
      return Make(Kind::kMul, std::move(whole), std::move(factor));
    }
    if (!negative) return Make(Kind::kAdd, std::move(whole), std::move(factor));
    NodePtr sum = Make(Kind::kAdd, std::move(whole->children[0]), std::move(factor));
    return Make(Kind::kNeg, std::move(sum));
  }

  NodePtr ParseTerm() {
    Guard g(this);
    NodePtr acc = ParseUnary();
    while (!failed_) {
      if (Eat('*') || EatCommand("cdot") || EatCommand("times")) {
        acc = Make(Kind::kMul, std::move(acc), ParseUnary());
      } else if (Eat('/') || EatCommand("div") || Eat(':')) {
        acc = Make(Kind::kDiv, std::move(acc), ParseUnary());
      } else if (StartsImplicitFactor()) {
        bool mixed = CommandAfterSpace() == "frac";
        if (mixed && acc && acc->kind == Kind::kMul && IsInteger(acc->children[1].get())) {
          // "3 1\frac{1}{2}": the mixed number is the last factor.
          NodePtr last = std::move(acc->children[1]);
          acc->children[1] = MixedOrProduct(std::move(last));
        } else if (mixed) {
          acc = MixedOrProduct(std::move(acc));
        } else {
          acc = Make(Kind::kMul, std::move(acc), ParsePower());
        }
      } else {
        break;
      }
    }
    return acc;
  }

  NodePtr ParseUnary() {
    Guard g(this);
    if (Eat('-')) return Make(Kind::kNeg, ParseUnary());
    if (Eat('+')) return ParseUnary();
    return ParsePower();
  }

  NodePtr ParsePower() {
    Guard g(this);
    NodePtr base = ParsePostfix();
    if (failed_) return nullptr;
    if (Eat('^') || (Peek() == '*' && s_.substr(pos_, 2) == "**" && (pos_ += 2))) {
      NodePtr exp = ParseScript();
      return Make(Kind::kPow, std::move(base), std::move(exp));
    }
    return base;
  }

  // A superscript or subscript: a braced group, a signed script, or one character/command.
  NodePtr ParseScript() {
    Guard g(this);
    if (Peek() == '{') return ParseArg();
    if (Eat('-')) return Make(Kind::kNeg, ParseScript());
    if (Peek() == '(') return ParsePrimary();
    return ParsePower();
  }

  NodePtr ParsePostfix() {
    Guard g(this);
    NodePtr n = ParsePrimary();
    while (!failed_) {
      if (Peek() == '!' && s_.substr(pos_, 2) != "!=") {
        ++pos_;
        n = Make(Kind::kFactorial, std::move(n));
      } else if (Peek() == '_' && n &&
                 (n->kind == Kind::kSymbol || (n->kind == Kind::kNumber && !n->decimal))) {
        ++pos_;
        std::string sub = ReadScriptText();
        if (sub.empty()) return Fail();
        if (n->kind == Kind::kNumber) {  // a base-b numeral, 52_8: kept as an opaque literal
          n->kind = Kind::kSymbol;
          n->name = std::to_string(n->num);
        }
        n->name += "_" + sub;
      } else if (Peek() == '\'') {
        ++pos_;
        if (n->kind != Kind::kSymbol) return Fail();
        n->name += "'";
      } else {
        break;
      }
    }
    return n;
  }

  // The raw text of a subscript ("{10}" or "8" or "(8)"), braces and parentheses dropped.
  std::string ReadScriptText() {
    SkipSpace();
    if (pos_ >= s_.size()) return "";
    if (s_[pos_] == '\\' && !PeekCommand().empty()) {
      std::string cmd = "\\" + std::string(PeekCommand());
      pos_ += cmd.size();
      return cmd;
    }
    if (s_[pos_] != '{') return std::string(1, s_[pos_++]);
    int depth = 0;
    std::string out;
    for (; pos_ < s_.size(); ++pos_) {
      char c = s_[pos_];
      if (c == '{') ++depth;
      if (c == '}' && --depth == 0) {
        ++pos_;
        return out;
      }
      if (c != '{' && c != '(' && c != ')' && c != ' ') out += c;
    }
    return "";
  }

  NodePtr ParseNumber() {
    NodePtr n = Make(Kind::kNumber);
    size_t begin = pos_;
    __int128 num = 0, den = 1;
    bool digits = false;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      if (num <= INT64_MAX) num = num * 10 + (s_[pos_] - '0');
      ++pos_;
      digits = true;
    }
    if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
        std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
      ++pos_;
      n->decimal = true;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (num <= INT64_MAX && den <= INT64_MAX) num = num * 10 + (s_[pos_] - '0'), den *= 10;
        ++pos_;
        digits = true;
      }
    }
    if (!digits) return Fail();
    if (num > INT64_MAX || den > INT64_MAX) {
      // Past 64 bits the literal is kept as a double (std::stod reads at most 400 digits here).
      if (pos_ - begin > 400) return Fail();
      n->big = true;
      n->value = std::stod(std::string(s_.substr(begin, pos_ - begin)));
      return n;
    }
    n->num = static_cast<int64_t>(num);
    n->den = static_cast<int64_t>(den);
    return n;
  }

  // A macro argument: a braced group, or a single digit, letter or command.
  NodePtr ParseArg() {
    Guard g(this);
    char c = Peek();
    if (c == '{') {
      ++pos_;
      NodePtr inner = ParseList();
      if (!Eat('}')) return Fail();
      return inner;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      NodePtr n = Make(Kind::kNumber);
      n->num = s_[pos_++] - '0';
      return n;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) return ParseLetter();
    if (c == '\\') return ParsePrimary();
    return Fail();
  }

  NodePtr ParseLetter() {
    char c = s_[pos_++];
    if (c == 'i' || c == 'e') {
      NodePtr n = Make(Kind::kConstant);
      n->name = std::string(1, c);
      return n;
    }
    NodePtr n = Make(Kind::kSymbol);
    n->name = std::string(1, c);
    return n;
  }

  // Items separated by commas up to one of the closing characters; returns the closer or 0.
  char ParseItems(Node* into, const char* closers, bool escaped_brace = false) {
    if (std::strchr(closers, Peek()) && Peek() != '\0') return s_[pos_++];
    while (!failed_) {
      into->children.push_back(ParseRelation());
      if (Eat(',') || Eat(';')) continue;
      char c = Peek();
      if (c != '\0' && std::strchr(closers, c)) {
        ++pos_;
        return c;
      }
      if (escaped_brace && EatCommand("}")) return '}';
      break;
    }
    failed_ = true;
    return 0;
  }

  NodePtr ParseBracket(char open) {
    Guard g(this);
    NodePtr t = Make(Kind::kTuple);
    t->open = open;
    char close = ParseItems(t.get(), ")]");
    if (failed_) return nullptr;
    t->close = close;
    bool grouping =
        t->children.size() == 1 && ((open == '(' && close == ')') || (open == '[' && close == ']'));
    if (grouping) return std::move(t->children[0]);
    return t;
  }

  NodePtr ParseSet(bool escaped) {
    Guard g(this);
    NodePtr set = Make(Kind::kSet);
    if (escaped ? EatCommand("}") : Eat('}')) return set;
    ParseItems(set.get(), escaped ? "" : "}", escaped);
    if (failed_) return nullptr;
    if (!escaped && set->children.size() == 1) return std::move(set->children[0]);
    return set;
  }

  NodePtr ParseMatrix() {
    Guard g(this);
    std::string env = ReadScriptText();
    if (env == "array") ReadScriptText();  // the column specification
    NodePtr m = Make(Kind::kMatrix);
    int cols_in_row = 0;
    while (!failed_) {
      m->children.push_back(ParseRelation());
      ++cols_in_row;
      if (Eat('&')) continue;
      bool row_end = EatCommand("\\");
      if (row_end && CommandAfterSpace() != "end") {
        if (m->cols && m->cols != cols_in_row) return Fail();
        m->cols = cols_in_row, cols_in_row = 0, ++m->rows;
        continue;
      }
      if (!EatCommand("end") || ReadScriptText() != env) return Fail();
      if (m->cols && m->cols != cols_in_row) return Fail();
      m->cols = cols_in_row, ++m->rows;
      return m;
    }
    return nullptr;
  }

  NodePtr ParseFunction(std::string name) {
    Guard g(this);
    NodePtr f = Make(Kind::kFunc);
    f->name = name;
    if (name == "sqrt") {
      NodePtr index;
      if (Eat('[')) {
        index = ParseExpr();
        if (!Eat(']')) return Fail();
      }
      f->children.push_back(Peek() == '(' ? ParsePrimary() : ParseArg());
      if (index) f->children.push_back(std::move(index));
      return f;
    }
    NodePtr power;
    if (name == "log" && Eat('_')) f->children.push_back(nullptr), f->children[0] = ParseScript();
    if (Eat('^')) power = ParseScript();
    NodePtr arg;
    if (Peek() == '(') {
      arg = ParsePrimary();
    } else {
      arg = ParsePower();
      while (!failed_ && (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '{'))
        arg = Make(Kind::kMul, std::move(arg), ParsePower());
    }
    f->children.insert(f->children.begin(), std::move(arg));
    bool inverse = power && power->kind == Kind::kNeg && power->children[0] &&
                   power->children[0]->kind == Kind::kNumber && power->children[0]->num == 1 &&
                   power->children[0]->den == 1 &&
                   (name == "sin" || name == "cos" || name == "tan" || name == "sinh" ||
                    name == "cosh" || name == "tanh");
    if (inverse) {
      // \sin^{-1} x is arcsin x (and \sinh^{-1} x is arsinh x), not 1 / sin x.
      f->name = name.back() == 'h' ? "ar" + name.substr(0, 4) : "arc" + name;
      return f;
    }
    if (power) return Make(Kind::kPow, std::move(f), std::move(power));
    return f;
  }

  NodePtr ParseCommand() {
    std::string name(PeekCommand());
    pos_ += 1 + name.size();
    if (name == "arcsinh" || name == "arccosh" || name == "arctanh") name.erase(2, 1);
    if (name == "frac" || name == "dfrac" || name == "tfrac" || name == "cfrac") {
      NodePtr a = ParseArg();
      return Make(Kind::kDiv, std::move(a), ParseArg());
    }
    if (name == "binom" || name == "dbinom" || name == "tbinom") {
      NodePtr f = Make(Kind::kFunc, ParseArg());
      f->children.push_back(ParseArg());
      f->name = "binom";
      return f;
    }
    if (name == "pi" || name == "infty") {
      NodePtr c = Make(Kind::kConstant);
      c->name = name == "pi" ? "pi" : "inf";
      return c;
    }
    if (name == "emptyset" || name == "varnothing") return Make(Kind::kSet);
    if (name == "exponentialE" || name == "imaginaryI" || name == "imaginaryJ") {
      NodePtr c = Make(Kind::kConstant);
      c->name = name == "exponentialE" ? "e" : "i";
      return c;
    }
    if (name == "{") return ParseSet(true);
    if (name == "begin") return ParseMatrix();
    if (name == "mathrm" || name == "mathbf" || name == "text" || name == "operatorname")
      return ParseArg();
    if (IsFunction(name)) return ParseFunction(name);
    if (IsGreek(name)) {
      NodePtr n = Make(Kind::kSymbol);
      n->name = "\\" + name;
      return n;
    }
    return Fail();
  }

  NodePtr ParsePrimary() {
    Guard g(this);
    if (failed_) return nullptr;
    char c = Peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return ParseNumber();
    if (std::string_view w = PeekWord(); !w.empty()) {
      pos_ += w.size();
      if (w == "pi" || w == "oo") {
        NodePtr n = Make(Kind::kConstant);
        n->name = w == "pi" ? "pi" : "inf";
        return n;
      }
      return ParseFunction(std::string(w));
    }
    if (std::isalpha(static_cast<unsigned char>(c))) return ParseLetter();
    if (c == '(' || c == '[') {
      ++pos_;
      return ParseBracket(c);
    }
    if (c == '{') {
      ++pos_;
      return ParseSet(false);
    }
    if (c == '|') {
      ++pos_;
      NodePtr f = Make(Kind::kFunc, ParseExpr());
      f->name = "abs";
      if (!Eat('|')) return Fail();
      return f;
    }
    if (c == '\\') return ParseCommand();
    return Fail();
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  int nodes_ = 0;
  bool failed_ = false;
};

}  // namespace

NodePtr ParseLatex(std::string_view text) {
  if (text.size() > kMaxAnswerChars) return nullptr;
  return Parser(text).Run();
}

}  // namespace rvec::eval::math::internal
