// The Jinja parser: tokens to the statement and expression AST, with Jinja's operator precedence
// and a nesting bound.
#include <fmt/format.h>

#include <algorithm>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const Limits& limits)
      : toks_(std::move(tokens)), limits_(limits) {}

  Body ParseTemplate() {
    std::string end;
    Body body = ParseBody({}, &end, "template", 0);
    return body;
  }

 private:
  struct DepthGuard {
    DepthGuard(Parser* p, const Token& at) : p_(p) {
      if (++p_->depth_ > p_->limits_.max_nesting) {
        p_->ErrorAt(at, "template nested too deeply (more than " +
                            std::to_string(p_->limits_.max_nesting) + " levels)");
      }
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }

  [[noreturn]] void ErrorAt(const Token& t, std::string message) {
    throw JinjaError{std::move(message), t.line, t.column, StatusCode::kInvalidArgument};
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kText:
        return "template text";
      case Tok::kVarBegin:
        return "'{{'";
      case Tok::kVarEnd:
        return "end of print statement ('}}')";
      case Tok::kBlockBegin:
        return "'{%'";
      case Tok::kBlockEnd:
        return "end of statement block ('%}')";
      case Tok::kName:
        return "'" + t.value + "'";
      case Tok::kString:
        return "string literal";
      case Tok::kInt:
      case Tok::kFloat:
        return "number " + t.value;
      case Tok::kOp:
        return "'" + t.value + "'";
      case Tok::kEof:
        return "end of template";
    }
    return "token";
  }

  bool IsOp(std::string_view op) const { return Cur().kind == Tok::kOp && Cur().value == op; }
  bool IsName(std::string_view n) const { return Cur().kind == Tok::kName && Cur().value == n; }

  void ExpectOp(std::string_view op) {
    if (!IsOp(op)) ErrorAt(Cur(), "expected '" + std::string(op) + "', got " + Describe(Cur()));
    Next();
  }
  std::string ExpectName(const char* what) {
    if (Cur().kind != Tok::kName) {
      ErrorAt(Cur(), std::string("expected ") + what + ", got " + Describe(Cur()));
    }
    std::string n = Cur().value;
    Next();
    return n;
  }
  void ExpectBlockEnd() {
    if (Cur().kind != Tok::kBlockEnd) {
      ErrorAt(Cur(), "expected end of statement block ('%}'), got " + Describe(Cur()));
    }
    Next();
  }

  // Parses statements until one of `ends` (a block tag name) is the next tag; returns with the
  // parser positioned on that tag's name (after '{%') and its name in *end.
  Body ParseBody(std::initializer_list<std::string_view> ends, std::string* end, const char* opener,
                 int opener_line) {
    DepthGuard guard(this, Cur());
    Body body;
    while (true) {
      const Token& t = Cur();
      switch (t.kind) {
        case Tok::kEof:
          if (ends.size() == 0) return body;
          {
            const std::string expected = JoinTags(ends);
            ErrorAt(t, fmt::format("unexpected end of template: '{}' block opened on line {} "
                                   "was never closed (expected {})",
                                   opener, opener_line, expected));
          }
        case Tok::kText: {
          auto s = std::make_unique<Stmt>();
          s->kind = SK::kText;
          s->line = t.line;
          s->text = t.value;
          body.push_back(std::move(s));
          Next();
          break;
        }
        case Tok::kVarBegin: {
          Next();
          auto s = std::make_unique<Stmt>();
          s->kind = SK::kOutput;
          s->line = t.line;
          s->expr = ParseTuple(true);
          if (Cur().kind != Tok::kVarEnd) {
            ErrorAt(Cur(), "expected end of print statement ('}}'), got " + Describe(Cur()));
          }
          Next();
          body.push_back(std::move(s));
          break;
        }
        case Tok::kBlockBegin: {
          const Token& name_tok = Peek();
          if (name_tok.kind == Tok::kName) {
            for (auto e : ends) {
              if (name_tok.value == e) {
                Next();  // now on the name
                *end = name_tok.value;
                return body;
              }
            }
          }
          if (name_tok.kind == Tok::kName && ends.size() > 0 && IsEndTag(name_tok.value)) {
            const std::string expected = JoinTags(ends);
            ErrorAt(name_tok, fmt::format("unexpected '{}': the '{}' block opened on line {} "
                                          "expects {}",
                                          name_tok.value, opener, opener_line, expected));
          }
          Next();
          body.push_back(ParseStatement());
          break;
        }
        default:
          ErrorAt(t, "unexpected " + Describe(t));
      }
    }
  }

  // "'a' or 'b'", for error messages.
  static std::string JoinTags(std::initializer_list<std::string_view> tags) {
    std::string out;
    for (auto e : tags) {
      if (!out.empty()) out += " or ";
      out += fmt::format("'{}'", e);
    }
    return out;
  }

  static bool IsEndTag(const std::string& n) {
    return n == "else" || n == "elif" || n.starts_with("end");
  }

  StmtPtr ParseStatement() {
    const Token& t = Cur();
    if (t.kind != Tok::kName)
      ErrorAt(t, "expected a statement name after '{%', got " + Describe(t));
    const std::string n = t.value;
    const int line = t.line;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    Next();
    if (n == "if") return ParseIf(std::move(s), line);
    if (n == "for") return ParseFor(std::move(s), line);
    if (n == "set") return ParseSet(std::move(s), line);
    if (n == "macro") return ParseMacro(std::move(s), line);
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) ErrorAt(t, "'" + n + "' outside of a for loop");
      s->kind = n == "break" ? SK::kBreak : SK::kContinue;
      ExpectBlockEnd();
      return s;
    }
    if (n == "with") return ParseWith(std::move(s), line);
    if (n == "filter") return ParseFilterBlock(std::move(s), line);
    if (n == "generation") return ParseGeneration(std::move(s), line);
    static constexpr const char* kEndTags[] = {"endif",  "endfor",        "else",    "elif",
                                               "endset", "endmacro",      "endwith", "endfilter",
                                               "endraw", "endgeneration", "endcall", "endblock"};
    for (const char* e : kEndTags) {
      if (n == e) ErrorAt(t, "unexpected '" + n + "' (no open block it could close)");
    }
    ErrorAt(t, "unsupported tag '" + n + "'");
  }

  StmtPtr ParseIf(StmtPtr s, int line) {
    s->kind = SK::kIf;
    s->conditions.push_back(ParseTuple(false));
    ExpectBlockEnd();
    while (true) {
      std::string end;
      s->bodies.push_back(ParseBody({"elif", "else", "endif"}, &end, "if", line));
      Next();  // past the tag name
      if (end == "elif") {
        s->conditions.push_back(ParseTuple(false));
        ExpectBlockEnd();
      } else if (end == "else") {
        ExpectBlockEnd();
        s->has_else = true;
        s->bodies.push_back(ParseBody({"endif"}, &end, "if", line));
        Next();
        ExpectBlockEnd();
        break;
      } else {
        ExpectBlockEnd();
        break;
      }
    }
    return s;
  }

  StmtPtr ParseFor(StmtPtr s, int line) {
    s->kind = SK::kFor;
    ParseTargets(s.get(), "for");
    if (!IsName("in")) ErrorAt(Cur(), "expected 'in' in for loop, got " + Describe(Cur()));
    Next();
    s->expr = ParseTuple(false);
    if (IsName("if")) {
      Next();
      s->filter = ParseExpression(true);
    }
    if (IsName("recursive")) ErrorAt(Cur(), "unsupported: recursive for loops");
    ExpectBlockEnd();
    std::string end;
    ++loop_depth_;
    s->bodies.push_back(ParseBody({"else", "endfor"}, &end, "for", line));
    --loop_depth_;
    Next();
    ExpectBlockEnd();
    if (end == "else") {
      s->has_else = true;
      s->bodies.push_back(ParseBody({"endfor"}, &end, "for", line));
      Next();
      ExpectBlockEnd();
    }
    return s;
  }

  StmtPtr ParseSet(StmtPtr s, int line) {
    ParseTargets(s.get(), "set");
    if (IsOp("=")) {
      s->kind = SK::kSet;
      Next();
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    if (s->targets.size() != 1 || s->attr_target) {
      ErrorAt(Cur(), "expected '=' after set target, got " + Describe(Cur()));
    }
    s->kind = SK::kSetBlock;
    if (IsOp("|")) s->filter = ParseFilterChain(MakeExpr(EK::kInput, line));
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(ParseBody({"endset"}, &end, "set", line));
    Next();
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseMacro(StmtPtr s, int line) {
    s->kind = SK::kMacro;
    s->name = ExpectName("macro name");
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      s->params.push_back(ExpectName("macro parameter name"));
      if (IsOp("=")) {
        Next();
        s->defaults.push_back(ParseExpression(true));
      } else {
        s->defaults.push_back(nullptr);
      }
    }
    Next();
    ExpectBlockEnd();
    const int varargs_before = varargs_refs_, kwargs_before = kwargs_refs_,
              caller_before = caller_refs_;
    std::string end;
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;  // break/continue cannot cross a macro boundary
    s->bodies.push_back(ParseBody({"endmacro"}, &end, "macro", line));
    loop_depth_ = saved_loop_depth;
    s->uses_varargs = varargs_refs_ > varargs_before;
    s->uses_kwargs = kwargs_refs_ > kwargs_before;
    s->uses_caller = caller_refs_ > caller_before;
    Next();
    if (Cur().kind == Tok::kName) Next();  // {% endmacro name %}
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseWith(StmtPtr s, int line) {
    s->kind = SK::kWith;
    while (Cur().kind != Tok::kBlockEnd) {
      if (!s->assigns.empty()) ExpectOp(",");
      std::string target = ExpectName("variable name");
      ExpectOp("=");
      s->assigns.emplace_back(std::move(target), ParseExpression(true));
    }
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(ParseBody({"endwith"}, &end, "with", line));
    Next();
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseFilterBlock(StmtPtr s, int line) {
    s->kind = SK::kFilterBlock;
    // Reuse the filter-chain parser: the first filter has no leading '|'.
    auto input = MakeExpr(EK::kInput, line);
    s->filter = ParseOneFilter(std::move(input));
    s->filter = ParseFilterChain(std::move(s->filter));
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(ParseBody({"endfilter"}, &end, "filter", line));
    Next();
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseGeneration(StmtPtr s, int line) {
    // transformers' AssistantTracker extension: marks assistant text, renders unchanged.
    s->kind = SK::kBody;
    ExpectBlockEnd();
    std::string end;
    s->bodies.push_back(ParseBody({"endgeneration"}, &end, "generation", line));
    Next();
    ExpectBlockEnd();
    return s;
  }

  void ParseTargets(Stmt* s, const char* what) {
    const bool paren = IsOp("(");
    if (paren) Next();
    while (true) {
      std::string name = ExpectName((std::string(what) + " target name").c_str());
      if (IsOp(".")) {
        Next();
        if (!s->targets.empty()) ErrorAt(Cur(), "cannot mix attribute and tuple targets");
        s->targets.push_back(name);
        s->targets.push_back(ExpectName("attribute name"));
        s->attr_target = true;
        break;
      }
      s->targets.push_back(std::move(name));
      if (!IsOp(",")) break;
      Next();
      if (paren && IsOp(")")) break;
    }
    if (paren) ExpectOp(")");
    if (s->attr_target && std::string(what) == "for") {
      ErrorAt(Cur(), "a for loop target cannot be an attribute");
    }
  }

  // ---- expressions ----

  ExprPtr ParseTuple(bool with_condexpr, bool explicit_parens = false) {
    const int line = Cur().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!IsOp(",")) break;
        Next();
        saw_comma = true;
      }
      if (Cur().kind == Tok::kVarEnd || Cur().kind == Tok::kBlockEnd || IsOp(")") ||
          (Cur().kind == Tok::kName && (Cur().value == "in" || Cur().value == "if") &&
           !items.empty())) {
        if (items.empty() && !explicit_parens)
          ErrorAt(Cur(), "expected an expression, got " + Describe(Cur()));
        break;
      }
      items.push_back(ParseExpression(with_condexpr));
    }
    if (items.size() == 1 && !saw_comma) return std::move(items[0]);
    auto e = MakeExpr(EK::kTuple, line);
    e->args = std::move(items);
    return e;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    DepthGuard guard(this, Cur());
    if (with_condexpr) return ParseCondExpr();
    return ParseOr();
  }

  ExprPtr ParseCondExpr() {
    ExprPtr e1 = ParseOr();
    while (IsName("if")) {
      const int line = Cur().line;
      Next();
      ExprPtr cond = ParseOr();
      ExprPtr other;
      if (IsName("else")) {
        Next();
        other = ParseCondExpr();
      }
      auto c = MakeExpr(EK::kCond, line);
      c->args.push_back(std::move(e1));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      e1 = std::move(c);
    }
    return e1;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      auto e = MakeExpr(EK::kOr, Cur().line);
      Next();
      e->args.push_back(std::move(left));
      e->args.push_back(ParseAnd());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      auto e = MakeExpr(EK::kAnd, Cur().line);
      Next();
      e->args.push_back(std::move(left));
      e->args.push_back(ParseNot());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this, Cur());
      auto e = MakeExpr(EK::kNot, Cur().line);
      Next();
      e->args.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    ExprPtr first = ParseMath1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    const int line = Cur().line;
    while (true) {
      if (Cur().kind == Tok::kOp &&
          (Cur().value == "==" || Cur().value == "!=" || Cur().value == "<" ||
           Cur().value == "<=" || Cur().value == ">" || Cur().value == ">=")) {
        ops.push_back(Cur().value);
        Next();
      } else if (IsName("in")) {
        ops.push_back("in");
        Next();
      } else if (IsName("not") && Peek().kind == Tok::kName && Peek().value == "in") {
        ops.push_back("notin");
        Next();
        Next();
      } else {
        break;
      }
      operands.push_back(ParseMath1());
    }
    if (ops.empty()) return first;
    auto e = MakeExpr(EK::kCompare, line);
    e->args.push_back(std::move(first));
    for (auto& o : operands) e->args.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr Binary(std::string op, ExprPtr l, ExprPtr r, int line) {
    auto e = MakeExpr(op == "~" ? EK::kConcat : EK::kBinary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      std::string op = Cur().value;
      const int line = Cur().line;
      Next();
      left = Binary(op, std::move(left), ParseConcat(), line);
    }
    return left;
  }

  ExprPtr ParseConcat() {
    ExprPtr left = ParseMath2();
    while (IsOp("~")) {
      const int line = Cur().line;
      Next();
      left = Binary("~", std::move(left), ParseMath2(), line);
    }
    return left;
  }

  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      std::string op = Cur().value;
      const int line = Cur().line;
      Next();
      left = Binary(op, std::move(left), ParsePow(), line);
    }
    return left;
  }

  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary(true);
    while (IsOp("**")) {
      const int line = Cur().line;
      Next();
      left = Binary("**", std::move(left), ParseUnary(true), line);
    }
    return left;
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this, Cur());
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      auto e = MakeExpr(IsOp("-") ? EK::kNeg : EK::kPos, Cur().line);
      Next();
      e->args.push_back(ParseUnary(false));
      node = std::move(e);
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    const int line = t.line;
    switch (t.kind) {
      case Tok::kName: {
        const std::string& n = t.value;
        if (n == "true" || n == "True" || n == "false" || n == "False") {
          auto e = MakeExpr(EK::kLiteral, line);
          e->literal = Value::Bool(n == "true" || n == "True");
          Next();
          return e;
        }
        if (n == "none" || n == "None") {
          auto e = MakeExpr(EK::kLiteral, line);
          e->literal = Value::None();
          Next();
          return e;
        }
        if (n == "varargs") ++varargs_refs_;
        if (n == "kwargs") ++kwargs_refs_;
        if (n == "caller") ++caller_refs_;
        auto e = MakeExpr(EK::kName, line);
        e->name = n;
        Next();
        return e;
      }
      case Tok::kString: {
        std::string s = t.value;
        Next();
        while (Cur().kind == Tok::kString) {  // adjacent literals concatenate
          s += Cur().value;
          Next();
        }
        auto e = MakeExpr(EK::kLiteral, line);
        e->literal = Value::Str(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = MakeExpr(EK::kLiteral, line);
        e->literal = Value::Int(t.ival);
        Next();
        return e;
      }
      case Tok::kFloat: {
        auto e = MakeExpr(EK::kLiteral, line);
        e->literal = Value::Float(t.fval);
        Next();
        return e;
      }
      case Tok::kOp: {
        if (t.value == "(") {
          Next();
          ExprPtr e = ParseTuple(true, true);
          ExpectOp(")");
          return e;
        }
        if (t.value == "[") {
          Next();
          auto e = MakeExpr(EK::kList, line);
          while (!IsOp("]")) {
            if (!e->args.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            e->args.push_back(ParseExpression(true));
          }
          Next();
          return e;
        }
        if (t.value == "{") {
          Next();
          auto e = MakeExpr(EK::kDict, line);
          while (!IsOp("}")) {
            if (!e->args.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            e->args.push_back(ParseExpression(true));
            ExpectOp(":");
            e->args.push_back(ParseExpression(true));
          }
          Next();
          return e;
        }
        break;
      }
      default:
        break;
    }
    ErrorAt(t, "unexpected " + Describe(t));
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      DepthGuard guard(this, Cur());
      if (IsOp(".")) {
        const int line = Cur().line;
        Next();
        if (Cur().kind == Tok::kName) {
          auto e = MakeExpr(EK::kGetAttr, line);
          e->name = Cur().value;
          Next();
          e->args.push_back(std::move(node));
          node = std::move(e);
        } else if (Cur().kind == Tok::kInt) {
          auto e = MakeExpr(EK::kGetItem, line);
          auto idx = MakeExpr(EK::kLiteral, line);
          idx->literal = Value::Int(Cur().ival);
          Next();
          e->args.push_back(std::move(node));
          e->args.push_back(std::move(idx));
          node = std::move(e);
        } else {
          ErrorAt(Cur(), "expected an attribute name after '.', got " + Describe(Cur()));
        }
      } else if (IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr node) {
    const int line = Cur().line;
    Next();  // [
    ExprPtr parts[3];
    bool is_slice = false;
    if (!IsOp(":")) parts[0] = ParseExpression(true);
    if (IsOp(":")) {
      is_slice = true;
      Next();
      if (!IsOp("]") && !IsOp(":")) parts[1] = ParseExpression(true);
      if (IsOp(":")) {
        Next();
        if (!IsOp("]")) parts[2] = ParseExpression(true);
      }
    }
    if (IsOp(",")) ErrorAt(Cur(), "unsupported: tuple subscripts");
    ExpectOp("]");
    auto e = MakeExpr(is_slice ? EK::kSlice : EK::kGetItem, line);
    e->args.push_back(std::move(node));
    if (is_slice) {
      for (auto& p : parts) e->args.push_back(std::move(p));
    } else {
      e->args.push_back(std::move(parts[0]));
    }
    return e;
  }

  void ParseArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) ExpectOp(",");
      first = false;
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) ErrorAt(Cur(), "unsupported: *args / **kwargs in calls");
      if (Cur().kind == Tok::kName && Peek().kind == Tok::kOp && Peek().value == "=") {
        std::string key = Cur().value;
        Next();
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) ErrorAt(Cur(), "positional argument follows keyword argument");
        e->args.push_back(ParseExpression(true));
      }
    }
    Next();
  }

  ExprPtr ParseCall(ExprPtr callee) {
    auto e = MakeExpr(EK::kCall, Cur().line);
    e->args.push_back(std::move(callee));
    ParseArgs(e.get());
    return e;
  }

  ExprPtr ParseOneFilter(ExprPtr input) {
    auto e = MakeExpr(EK::kFilter, Cur().line);
    std::string name = ExpectName("filter name");
    while (IsOp(".")) {
      Next();
      name.push_back('.');
      name += ExpectName("filter name");
    }
    e->name = std::move(name);
    e->args.push_back(std::move(input));
    if (IsOp("(")) ParseArgs(e.get());
    return e;
  }

  ExprPtr ParseFilterChain(ExprPtr node) {
    while (IsOp("|")) {
      DepthGuard guard(this, Cur());
      Next();
      node = ParseOneFilter(std::move(node));
    }
    return node;
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      DepthGuard guard(this, Cur());
      if (IsOp("|")) {
        Next();
        node = ParseOneFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseTest(ExprPtr node) {
    auto e = MakeExpr(EK::kTest, Cur().line);
    Next();  // is
    if (IsName("not")) {
      e->negated = true;
      Next();
    }
    std::string name = ExpectName("test name");
    while (IsOp(".")) {
      Next();
      name.push_back('.');
      name += ExpectName("test name");
    }
    e->name = std::move(name);
    e->args.push_back(std::move(node));
    if (IsOp("(")) {
      ParseArgs(e.get());
    } else if ((Cur().kind == Tok::kName || Cur().kind == Tok::kString || Cur().kind == Tok::kInt ||
                Cur().kind == Tok::kFloat || IsOp("(") || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) ErrorAt(Cur(), "you cannot chain multiple tests with 'is'");
      ExprPtr arg = ParsePrimary();
      arg = ParsePostfix(std::move(arg));
      e->args.push_back(std::move(arg));
    }
    return e;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  const Limits& limits_;
  int depth_ = 0;
  int varargs_refs_ = 0;
  int kwargs_refs_ = 0;
  int caller_refs_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body ParseTokens(std::vector<Token> tokens, const Limits& limits) {
  return Parser(std::move(tokens), limits).ParseTemplate();
}

}  // namespace rvec::jinja::internal
