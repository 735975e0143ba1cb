// Private to the Jinja interpreter: the Python-like values, tokens, AST, interpreter and builtin
// helpers that its pieces (jinja_*.cc) share. Nothing outside src/text/jinja*.cc includes it.
//
// Internally errors travel as a private exception type (the evaluator is deeply recursive and
// nearly every step can fail); Template::Parse() and Render() catch it and return a Status, so
// nothing escapes the interpreter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/utf8.h"
#include "text/jinja.h"

namespace rvec::jinja::internal {

// ------------------------------------------------------------------------------------------------
// Errors

struct JinjaError {
  std::string message;
  int line = 0;
  int column = 0;  // 0: unknown
  StatusCode code = StatusCode::kInvalidArgument;
};

[[noreturn]] inline void Fail(int line, std::string message,
                              StatusCode code = StatusCode::kInvalidArgument) {
  throw JinjaError{std::move(message), line, 0, code};
}

// ------------------------------------------------------------------------------------------------
// UTF-8 and Python string helpers (jinja_strings.cc)

// Invalid bytes decode to U+DC80+byte (Python's surrogateescape), so decode/encode round-trips.
std::u32string Decode(std::string_view s);
inline void AppendUtf8(std::string& out, char32_t c) { AppendUtf8Escaped(c, &out); }
std::string Encode(std::u32string_view s);
size_t CodepointCount(std::string_view s);

// Python's str.isspace().
bool IsPySpace(char32_t c);
// Python's str.splitlines() line boundaries.
bool IsLineBreak(char32_t c);

char32_t AsciiLower(char32_t c);
// Case mapping beyond ASCII for the common alphabetic blocks (Latin-1, Latin Extended-A, Greek,
// Cyrillic); other scripts are returned unchanged.
char32_t PyUpper(char32_t c);
char32_t PyLower(char32_t c);
bool PyIsUpper(char32_t c);
bool PyIsLower(char32_t c);
bool PyIsAlpha(char32_t c);
bool PyIsDigit(char32_t c);

std::string MapChars(std::string_view s, char32_t (*fn)(char32_t));
// str.upper(): also the one common multi-character mapping, U+00DF (sharp s) -> "SS".
std::string UpperStr(std::string_view s);
// str.lower(): capital sigma becomes final sigma at the end of a word, as Python does.
std::string LowerStr(std::string_view s);
std::string Capitalize(const std::string& s);
// Python's str.title(): a letter after a non-letter is uppercased, other letters lowercased.
std::string PyTitle(const std::string& s);

// Whitespace as Python's str.strip() with no argument sees it.
std::string_view RStripSpace(std::string_view s);
// Length in bytes of the Python-whitespace prefix of s.
size_t LeadingSpaceBytes(std::string_view s);
bool AllSpace(std::string_view s);

std::vector<std::u32string> SplitLines(const std::u32string& u, bool keepends);

// ------------------------------------------------------------------------------------------------
// Values (jinja_value.cc)

enum class Type : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,  // list or tuple (is_tuple)
  kDict,
  kNamespace,
  kCallable,
};

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Namespace;
struct Callable;

struct Value {
  Type type = Type::kUndefined;
  bool is_tuple = false;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string contents, or for Undefined the reason it is undefined
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Namespace> ns;
  std::shared_ptr<const Callable> fn;

  static Value Undef(std::string hint = {}) {
    Value v;
    v.s = std::move(hint);
    return v;
  }
  static Value None() {
    Value v;
    v.type = Type::kNone;
    return v;
  }
  static Value Bool(bool x) {
    Value v;
    v.type = Type::kBool;
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v;
    v.type = Type::kInt;
    v.i = x;
    return v;
  }
  static Value Float(double x) {
    Value v;
    v.type = Type::kFloat;
    v.f = x;
    return v;
  }
  static Value Str(std::string x) {
    Value v;
    v.type = Type::kString;
    v.s = std::move(x);
    return v;
  }
  static Value MakeList(List items, bool tuple = false) {
    Value v;
    v.type = Type::kList;
    v.is_tuple = tuple;
    v.list = std::make_shared<const List>(std::move(items));
    return v;
  }
  static Value MakeDict(std::shared_ptr<const Dict> d) {
    Value v;
    v.type = Type::kDict;
    v.dict = std::move(d);
    return v;
  }

  bool undefined() const { return type == Type::kUndefined; }
  bool none() const { return type == Type::kNone; }
  bool is_string() const { return type == Type::kString; }
  bool is_list() const { return type == Type::kList; }
  bool is_dict() const { return type == Type::kDict; }
  bool is_int() const { return type == Type::kInt || type == Type::kBool; }  // Python bool is int
  bool is_number() const { return is_int() || type == Type::kFloat; }
  int64_t as_int() const { return type == Type::kBool ? (b ? 1 : 0) : i; }
  double as_float() const { return type == Type::kFloat ? f : static_cast<double>(as_int()); }
};

bool Equal(const Value& a, const Value& b);

struct Dict {
  std::vector<std::pair<Value, Value>> items;

  const Value* Find(const Value& key) const {
    for (const auto& [k, v] : items) {
      if (Equal(k, key)) return &v;
    }
    return nullptr;
  }
  const Value* FindStr(std::string_view key) const {
    for (const auto& [k, v] : items) {
      if (k.is_string() && k.s == key) return &v;
    }
    return nullptr;
  }
  void Set(Value key, Value value) {
    for (auto& [k, v] : items) {
      if (Equal(k, key)) {
        v = std::move(value);
        return;
      }
    }
    items.emplace_back(std::move(key), std::move(value));
  }
};

struct Namespace {
  Dict attrs;
};

class Interp;
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  int line = 0;
};

struct Callable {
  std::string name;
  std::function<Value(Interp&, CallArgs&)> fn;
};

Value MakeCallable(std::string name, std::function<Value(Interp&, CallArgs&)> fn);
std::string TypeName(const Value& v);
std::string UndefinedMessage(const Value& v);
bool Truthy(const Value& v);
// Python's ordering (<): numbers, strings by code point (UTF-8 byte order agrees), sequences.
int Compare(const Value& a, const Value& b, int line, const char* op);

// Python str() and repr(); AppendStr is what {{ value }} prints.
std::string FormatInt(int64_t v);
void AppendStr(std::string& out, const Value& v, int depth = 0);
void AppendRepr(std::string& out, const Value& v, int depth = 0);
std::string Str(const Value& v);
std::string Repr(const Value& v);

// Code points of a string value.
inline std::u32string Chars(const Value& v) { return Decode(v.s); }

// str.strip family (jinja_strings.cc): chars=None strips Python whitespace.
std::string StripChars(const std::string& s, const Value* chars, bool left, bool right);
List SplitString(const std::string& s, const Value* sep, int64_t maxsplit, int line);

// ------------------------------------------------------------------------------------------------
// JSON in and out (jinja_json.cc; transformers' tojson is json.dumps(..., ensure_ascii=False))

Value FromJson(const nlohmann::ordered_json& j);

struct JsonStyle {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};

void DumpJson(std::string& out, const Value& v, const JsonStyle& st, int depth, int line);

// ------------------------------------------------------------------------------------------------
// Tokens (jinja_lexer.cc)

enum class Tok {
  kText,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof,
};

struct Token {
  Tok kind;
  std::string value;
  int line = 1;
  int column = 1;
  int64_t ival = 0;
  double fval = 0;
};

// The whole template as tokens; syntax errors throw JinjaError with line and column.
std::vector<Token> Lex(std::string source);

// ------------------------------------------------------------------------------------------------
// AST (built by jinja_parser.cc)

enum class EK {
  kLiteral,
  kName,
  kGetAttr,
  kGetItem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kNeg,
  kPos,
  kNot,
  kBinary,
  kConcat,
  kCompare,
  kAnd,
  kOr,
  kCond,
  kList,
  kTuple,
  kDict,
  kInput,  // the body text of a filter block or block set
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  EK kind;
  int line = 0;
  Value literal;
  std::string name;           // name / attribute / filter / test / operator
  std::vector<ExprPtr> args;  // operands; for calls/filters/tests the positional args
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // comparison chain operators
  bool negated = false;
};

inline ExprPtr MakeExpr(EK kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

enum class SK {
  kText,
  kOutput,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kBreak,
  kContinue,
  kWith,
  kFilterBlock,
  kBody,  // generation / plain scope-less body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  SK kind;
  int line = 0;
  std::string text;                 // kText
  ExprPtr expr;                     // output / for iterable / set value / filter chain
  std::vector<ExprPtr> conditions;  // if / elif
  std::vector<Body> bodies;         // if branches (+ else last), for body (+ else)
  bool has_else = false;
  std::vector<std::string> targets;  // for / set names; set ns attr: {ns, attr}
  bool attr_target = false;
  ExprPtr filter;  // for ... if
  // macro
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // nullptr when no default
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
  // with
  std::vector<std::pair<std::string, ExprPtr>> assigns;
};

// The template body from Lex's tokens; `limits` bounds the nesting depth.
Body ParseTokens(std::vector<Token> tokens, const Limits& limits);

}  // namespace rvec::jinja::internal

namespace rvec::jinja {

struct Template::Program {
  internal::Body body;
  Limits limits;
};

}  // namespace rvec::jinja

namespace rvec::jinja::internal {

// ------------------------------------------------------------------------------------------------
// Interpreter (jinja_interp.cc)

struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  const Value* Lookup(std::string_view name) const {
    for (const Frame* f = this; f != nullptr; f = f->parent.get()) {
      for (const auto& [k, v] : f->vars) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }
  void Set(const std::string& name, Value v) {
    for (auto& [k, old] : vars) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    vars.emplace_back(name, std::move(v));
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { kNormal, kBreak, kContinue };

// Python slice index normalisation.
void SliceIndices(int64_t len, const Value& start, const Value& stop, const Value& step_v, int line,
                  int64_t* s, int64_t* e, int64_t* st);

template <typename Seq, typename Out>
void DoSlice(const Seq& seq, int64_t s, int64_t e, int64_t st, Out* out) {
  if (st > 0) {
    for (int64_t k = s; k < e; k += st) out->push_back(seq[static_cast<size_t>(k)]);
  } else {
    for (int64_t k = s; k > e; k += st) out->push_back(seq[static_cast<size_t>(k)]);
  }
}

class Interp {
 public:
  Interp(const Template::Program& prog, std::string* out) : prog_(prog), out_(out) {}
  ~Interp() {
    // Namespaces may hold themselves (set ns.x = ns); clearing them breaks such cycles.
    for (auto& ns : namespaces_) ns->attrs.items.clear();
  }
  void RegisterNamespace(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }
  void Run(const nlohmann::ordered_json& variables);

  void CheckSize(size_t n, int line) {
    if (n > prog_.limits.max_output_bytes) {
      Fail(line,
           "output or string value larger than " + std::to_string(prog_.limits.max_output_bytes) +
               " bytes",
           StatusCode::kFailedPrecondition);
    }
  }
  // Bounds list sizes (memory) the way CheckSize bounds string sizes.
  void CheckItems(size_t n, int line) {
    if (n > prog_.limits.max_output_bytes / 16) {
      Fail(line, "list of " + std::to_string(n) + " items is larger than the template limits allow",
           StatusCode::kFailedPrecondition);
    }
  }
  int last_line() const { return last_line_; }
  void Step(int line) {
    last_line_ = line;
    if (++steps_ > prog_.limits.max_steps) {
      Fail(line,
           "template exceeded " + std::to_string(prog_.limits.max_steps) + " evaluation steps",
           StatusCode::kFailedPrecondition);
    }
  }

  // ---- used by the builtins (jinja_methods.cc, jinja_filters.cc, jinja_builtins.cc) ----
  Value CallMacro(const Stmt& m, const FramePtr& closure, CallArgs& a);
  List Iterate(const Value& v, int line);
  Value Call(const Value& callee, CallArgs& a, int line);
  // Jinja's sandboxed getattr / getitem.
  Value GetAttr(const Value& obj, const std::string& name, int line);
  Value GetItem(const Value& obj, const Value& key, int line);
  // Attribute lookup for map/selectattr/sort(attribute=...): dotted paths, integer parts index.
  Value GetPath(const Value& obj, const std::string& path, int line);
  Value BinaryOp(const std::string& op, const Value& l, const Value& r, int line);
  bool Contains(const Value& container, const Value& item, int line);
  // printf-style "%s" % value (the `format` filter and the % operator on strings).
  std::string PercentFormat(const std::string& fmt, const Value& arg, int line);
  // Methods on values (str, dict, list); false when `obj` has no method `name`.
  bool FindMethod(const Value& obj, const std::string& name, int line, Value* out);
  Value ApplyFilter(const std::string& name, Value input, CallArgs& a);
  bool ApplyTest(const std::string& name, const Value& v, CallArgs& a);

 private:
  // Statements.
  Flow ExecBody(const Body& body, const FramePtr& frame, std::string& out);
  void Append(std::string& out, std::string_view s, int line);
  Flow Exec(const Stmt& s, const FramePtr& frame, std::string& out);
  Value EvalWithInput(const Expr& chain, const FramePtr& frame, Value input);
  void Unpack(const std::vector<std::string>& targets, const Value& v, Frame* frame, int line);
  void Assign(const Stmt& s, const FramePtr& frame, Value v);
  Flow ExecFor(const Stmt& s, const FramePtr& frame, std::string& out);
  Value MakeLoop(const std::shared_ptr<const List>& items, int64_t k, int64_t n);
  Value MakeMacro(const Stmt& s, const FramePtr& closure);

  // Expressions.
  Value Eval(const Expr& e, const FramePtr& frame);
  CallArgs EvalArgs(const Expr& e, const FramePtr& frame, size_t first);
  Value Slice(const Value& obj, const Value& a, const Value& b, const Value& c, int line);
  Value ConcatOp(const Value& l, const Value& r, int line);
  Value RepeatOp(const Value& l, const Value& r, int line);
  bool CompareOp(const std::string& op, const Value& l, const Value& r, int line);

  void InstallGlobals(Frame* g);

  const Template::Program& prog_;
  std::string* out_;
  uint64_t steps_ = 0;
  int last_line_ = 0;
  int call_depth_ = 0;
  Value input_;
  std::vector<FramePtr> macro_frames_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
};

// ------------------------------------------------------------------------------------------------
// Argument binding for builtins

class Args {
 public:
  Args(CallArgs& a, const char* fn, std::initializer_list<const char*> names)
      : a_(a), fn_(fn), names_(names) {
    if (a.pos.size() > names_.size()) {
      Fail(a.line, std::string(fn) + "() takes at most " + std::to_string(names_.size()) +
                       " argument(s), got " + std::to_string(a.pos.size()));
    }
    for (const auto& kv : a.kw) {
      const std::string& key = kv.first;
      if (std::find_if(names_.begin(), names_.end(), [&](const char* n) { return key == n; }) ==
          names_.end()) {
        Fail(a.line, std::string(fn) + "() got an unexpected keyword argument '" + key + "'");
      }
    }
  }
  // Argument `idx` (by position or name), or nullptr.
  const Value* Get(size_t idx) const {
    if (idx < a_.pos.size()) return &a_.pos[idx];
    for (const auto& [k, v] : a_.kw) {
      if (k == names_[idx]) return &v;
    }
    return nullptr;
  }
  Value Or(size_t idx, Value def) const {
    const Value* v = Get(idx);
    return v ? *v : def;
  }
  bool Bool(size_t idx, bool def) const {
    const Value* v = Get(idx);
    return v ? Truthy(*v) : def;
  }
  std::string String(size_t idx, const std::string& def) const {
    const Value* v = Get(idx);
    if (v == nullptr) return def;
    if (!v->is_string()) {
      Fail(a_.line, std::string(fn_) + "(): argument '" + names_[idx] + "' must be a string, not " +
                        TypeName(*v));
    }
    return v->s;
  }
  const Value& Required(size_t idx) const {
    const Value* v = Get(idx);
    if (v == nullptr) {
      Fail(a_.line, std::string(fn_) + "() missing required argument '" + names_[idx] + "'");
    }
    return *v;
  }
  int line() const { return a_.line; }

 private:
  CallArgs& a_;
  const char* fn_;
  std::vector<const char*> names_;
};

std::string RequireString(const Value& v, const char* what, int line);
std::string ReplaceAll(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count, Interp& in, int line);

// Whether `name` is a filter ApplyFilter knows (the `filter` test).
bool IsFilterName(std::string_view name);

}  // namespace rvec::jinja::internal
