// The Jinja evaluator: statements, expressions, operators, attribute access and macros.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {

void SliceIndices(int64_t len, const Value& start, const Value& stop, const Value& step_v, int line,
                  int64_t* s, int64_t* e, int64_t* st) {
  int64_t step = 1;
  if (!step_v.none() && !step_v.undefined()) {
    if (!step_v.is_int()) Fail(line, "slice indices must be integers or None");
    step = step_v.as_int();
    if (step == 0) Fail(line, "slice step cannot be zero");
  }
  auto norm = [&](const Value& v, int64_t def, bool is_start) -> int64_t {
    if (v.none() || v.undefined()) return def;
    if (!v.is_int()) Fail(line, "slice indices must be integers or None");
    int64_t x = v.as_int();
    if (x < 0) {
      x += len;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    (void)is_start;
    return x;
  };
  if (step > 0) {
    *s = norm(start, 0, true);
    *e = norm(stop, len, false);
  } else {
    *s = norm(start, len - 1, true);
    *e = norm(stop, -1, false);
    if (!stop.none() && !stop.undefined() && stop.as_int() < 0 && stop.as_int() + len < 0) {
      *e = -1;
    }
  }
  *st = step;
}

void Interp::Run(const nlohmann::ordered_json& variables) {
  auto globals = std::make_shared<Frame>();
  InstallGlobals(globals.get());
  if (variables.is_object()) {
    for (auto it = variables.begin(); it != variables.end(); ++it) {
      globals->Set(it.key(), FromJson(it.value()));
    }
  }
  auto top = std::make_shared<Frame>();
  top->parent = globals;
  ExecBody(prog_.body, top, *out_);
}

Flow Interp::ExecBody(const Body& body, const FramePtr& frame, std::string& out) {
  for (const auto& s : body) {
    Flow f = Exec(*s, frame, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

void Interp::Append(std::string& out, std::string_view s, int line) {
  CheckSize(out.size() + s.size(), line);
  out.append(s);
}

Flow Interp::Exec(const Stmt& s, const FramePtr& frame, std::string& out) {
  Step(s.line);
  switch (s.kind) {
    case SK::kText:
      Append(out, s.text, s.line);
      return Flow::kNormal;
    case SK::kOutput: {
      Value v = Eval(*s.expr, frame);
      if (v.is_string()) {
        Append(out, v.s, s.line);
      } else {
        Append(out, Str(v), s.line);
      }
      return Flow::kNormal;
    }
    case SK::kIf: {
      for (size_t k = 0; k < s.conditions.size(); ++k) {
        if (Truthy(Eval(*s.conditions[k], frame))) return ExecBody(s.bodies[k], frame, out);
      }
      if (s.has_else) return ExecBody(s.bodies.back(), frame, out);
      return Flow::kNormal;
    }
    case SK::kFor:
      return ExecFor(s, frame, out);
    case SK::kSet: {
      Value v = Eval(*s.expr, frame);
      Assign(s, frame, std::move(v));
      return Flow::kNormal;
    }
    case SK::kSetBlock: {
      std::string text;
      // The body runs in the current scope (Jinja's block set does not open a new one).
      ExecBody(s.bodies[0], frame, text);
      Value v = Value::Str(std::move(text));
      if (s.filter) v = EvalWithInput(*s.filter, frame, std::move(v));
      frame->Set(s.targets[0], std::move(v));
      return Flow::kNormal;
    }
    case SK::kMacro: {
      frame->Set(s.name, MakeMacro(s, frame));
      return Flow::kNormal;
    }
    case SK::kBreak:
      return Flow::kBreak;
    case SK::kContinue:
      return Flow::kContinue;
    case SK::kWith: {
      auto inner = std::make_shared<Frame>();
      inner->parent = frame;
      for (const auto& [name, e] : s.assigns) inner->Set(name, Eval(*e, frame));
      return ExecBody(s.bodies[0], inner, out);
    }
    case SK::kFilterBlock: {
      std::string text;
      Flow f = ExecBody(s.bodies[0], frame, text);
      Value v = EvalWithInput(*s.filter, frame, Value::Str(std::move(text)));
      Append(out, Str(v), s.line);
      return f;
    }
    case SK::kBody:
      return ExecBody(s.bodies[0], frame, out);
  }
  return Flow::kNormal;
}

Value Interp::EvalWithInput(const Expr& chain, const FramePtr& frame, Value input) {
  Value saved = std::move(input_);
  input_ = std::move(input);
  Value v = Eval(chain, frame);
  input_ = std::move(saved);
  return v;
}

void Interp::Unpack(const std::vector<std::string>& targets, const Value& v, Frame* frame,
                    int line) {
  if (targets.size() == 1) {
    frame->Set(targets[0], v);
    return;
  }
  List items = Iterate(v, line);
  if (items.size() != targets.size()) {
    Fail(line, (items.size() < targets.size() ? "not enough" : "too many") +
                   std::string(" values to unpack (expected ") + std::to_string(targets.size()) +
                   ", got " + std::to_string(items.size()) + ")");
  }
  for (size_t k = 0; k < targets.size(); ++k) frame->Set(targets[k], items[k]);
}

void Interp::Assign(const Stmt& s, const FramePtr& frame, Value v) {
  if (s.attr_target) {
    const Value* target = frame->Lookup(s.targets[0]);
    if (target == nullptr || target->type != Type::kNamespace) {
      Fail(s.line, "cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
    }
    target->ns->attrs.Set(Value::Str(s.targets[1]), std::move(v));
    return;
  }
  Unpack(s.targets, v, frame.get(), s.line);
}

Flow Interp::ExecFor(const Stmt& s, const FramePtr& frame, std::string& out) {
  Value iterable = Eval(*s.expr, frame);
  List items = Iterate(iterable, s.line);
  if (s.filter) {
    List kept;
    for (auto& item : items) {
      Step(s.line);
      auto f = std::make_shared<Frame>();
      f->parent = frame;
      Unpack(s.targets, item, f.get(), s.line);
      if (Truthy(Eval(*s.filter, f))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (s.has_else) return ExecBody(s.bodies[1], frame, out);
    return Flow::kNormal;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  auto shared_items = std::make_shared<const List>(std::move(items));
  for (int64_t k = 0; k < n; ++k) {
    Step(s.line);
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    Unpack(s.targets, (*shared_items)[static_cast<size_t>(k)], f.get(), s.line);
    f->Set("loop", MakeLoop(shared_items, k, n));
    Flow fl = ExecBody(s.bodies[0], f, out);
    if (fl == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Interp::MakeLoop(const std::shared_ptr<const List>& items, int64_t k, int64_t n) {
  auto d = std::make_shared<Dict>();
  auto put = [&](const char* key, Value v) { d->items.emplace_back(Value::Str(key), v); };
  put("index", Value::Int(k + 1));
  put("index0", Value::Int(k));
  put("revindex", Value::Int(n - k));
  put("revindex0", Value::Int(n - k - 1));
  put("first", Value::Bool(k == 0));
  put("last", Value::Bool(k == n - 1));
  put("length", Value::Int(n));
  put("depth", Value::Int(1));
  put("depth0", Value::Int(0));
  if (k > 0) put("previtem", (*items)[static_cast<size_t>(k - 1)]);
  if (k + 1 < n) put("nextitem", (*items)[static_cast<size_t>(k + 1)]);
  put("cycle", MakeCallable("loop.cycle", [k](Interp&, CallArgs& a) -> Value {
        if (a.pos.empty()) Fail(a.line, "no items for cycling given");
        return a.pos[static_cast<size_t>(k) % a.pos.size()];
      }));
  return Value::MakeDict(std::move(d));
}

// The closure is held weakly (the frame holds the macro: a strong reference would be a cycle);
// macro_frames_ keeps such frames alive until the render ends.
Value Interp::MakeMacro(const Stmt& s, const FramePtr& closure) {
  const Stmt* macro = &s;
  macro_frames_.push_back(closure);
  std::weak_ptr<Frame> weak = closure;
  return MakeCallable(s.name, [macro, weak](Interp& in, CallArgs& a) -> Value {
    FramePtr f = weak.lock();
    if (!f) Fail(a.line, "macro '" + macro->name + "' called after its scope ended");
    return in.CallMacro(*macro, f, a);
  });
}

Value Interp::CallMacro(const Stmt& m, const FramePtr& closure, CallArgs& a) {
  if (++call_depth_ > prog_.limits.max_call_depth) {
    Fail(a.line,
         "macro '" + m.name + "' recursed deeper than " +
             std::to_string(prog_.limits.max_call_depth) + " calls",
         StatusCode::kFailedPrecondition);
  }
  auto f = std::make_shared<Frame>();
  f->parent = closure;
  const size_t np = m.params.size();
  if (a.pos.size() > np && !m.uses_varargs) {
    Fail(a.line,
         "macro '" + m.name + "' takes not more than " + std::to_string(np) + " argument(s)");
  }
  std::vector<bool> bound(np, false);
  for (size_t k = 0; k < np && k < a.pos.size(); ++k) {
    f->Set(m.params[k], a.pos[k]);
    bound[k] = true;
  }
  auto extra_kwargs = std::make_shared<Dict>();
  for (auto& [key, v] : a.kw) {
    auto it = std::find(m.params.begin(), m.params.end(), key);
    if (it == m.params.end()) {
      if (key == "caller" && m.uses_caller) {
        f->Set("caller", v);
        continue;
      }
      if (!m.uses_kwargs)
        Fail(a.line, "macro '" + m.name + "' takes no keyword argument '" + key + "'");
      extra_kwargs->items.emplace_back(Value::Str(key), v);
      continue;
    }
    const size_t idx = static_cast<size_t>(it - m.params.begin());
    if (bound[idx])
      Fail(a.line, "macro '" + m.name + "' got multiple values for argument '" + key + "'");
    f->Set(key, v);
    bound[idx] = true;
  }
  for (size_t k = 0; k < np; ++k) {
    if (bound[k]) continue;
    if (m.defaults[k]) {
      f->Set(m.params[k], Eval(*m.defaults[k], f));
    } else {
      f->Set(m.params[k], Value::Undef("parameter '" + m.params[k] + "' was not provided"));
    }
  }
  List varargs;
  for (size_t k = np; k < a.pos.size(); ++k) varargs.push_back(a.pos[k]);
  f->Set("varargs", Value::MakeList(std::move(varargs), true));
  f->Set("kwargs", Value::MakeDict(std::move(extra_kwargs)));
  std::string text;
  ExecBody(m.bodies[0], f, text);
  --call_depth_;
  return Value::Str(std::move(text));
}

List Interp::Iterate(const Value& v, int line) {
  switch (v.type) {
    case Type::kUndefined:
      return {};
    case Type::kList:
      return *v.list;
    case Type::kDict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Type::kString: {
      List chars;
      const std::u32string u = Chars(v);
      CheckItems(u.size(), line);
      for (char32_t c : u) {
        std::string s;
        AppendUtf8(s, c);
        chars.push_back(Value::Str(std::move(s)));
      }
      return chars;
    }
    case Type::kNamespace: {
      Fail(line, "'Namespace' object is not iterable");
    }
    default:
      Fail(line, "'" + TypeName(v) + "' object is not iterable");
  }
}

Value Interp::Eval(const Expr& e, const FramePtr& frame) {
  Step(e.line);
  switch (e.kind) {
    case EK::kLiteral:
      return e.literal;
    case EK::kInput:
      return input_;
    case EK::kName: {
      const Value* v = frame->Lookup(e.name);
      if (v == nullptr) return Value::Undef("'" + e.name + "' is undefined");
      return *v;
    }
    case EK::kGetAttr:
      return GetAttr(Eval(*e.args[0], frame), e.name, e.line);
    case EK::kGetItem:
      return GetItem(Eval(*e.args[0], frame), Eval(*e.args[1], frame), e.line);
    case EK::kSlice: {
      Value obj = Eval(*e.args[0], frame);
      Value parts[3];
      for (int k = 0; k < 3; ++k) {
        parts[k] = e.args[k + 1] ? Eval(*e.args[k + 1], frame) : Value::None();
      }
      return Slice(obj, parts[0], parts[1], parts[2], e.line);
    }
    case EK::kCall: {
      Value callee = Eval(*e.args[0], frame);
      CallArgs a = EvalArgs(e, frame, 1);
      return Call(callee, a, e.line);
    }
    case EK::kFilter: {
      Value input = Eval(*e.args[0], frame);
      CallArgs a = EvalArgs(e, frame, 1);
      return ApplyFilter(e.name, std::move(input), a);
    }
    case EK::kTest: {
      Value input = Eval(*e.args[0], frame);
      CallArgs a = EvalArgs(e, frame, 1);
      const bool r = ApplyTest(e.name, input, a);
      return Value::Bool(e.negated ? !r : r);
    }
    case EK::kNeg:
    case EK::kPos: {
      Value v = Eval(*e.args[0], frame);
      if (v.undefined()) Fail(e.line, UndefinedMessage(v));
      if (!v.is_number()) {
        Fail(e.line, std::string("bad operand type for unary ") + (e.kind == EK::kNeg ? "-" : "+") +
                         ": '" + TypeName(v) + "'");
      }
      if (e.kind == EK::kPos) return v.type == Type::kBool ? Value::Int(v.as_int()) : v;
      if (v.type == Type::kFloat) return Value::Float(-v.f);
      if (v.as_int() == std::numeric_limits<int64_t>::min()) Fail(e.line, "integer overflow");
      return Value::Int(-v.as_int());
    }
    case EK::kNot:
      return Value::Bool(!Truthy(Eval(*e.args[0], frame)));
    case EK::kAnd: {
      Value l = Eval(*e.args[0], frame);
      if (!Truthy(l)) return l;
      return Eval(*e.args[1], frame);
    }
    case EK::kOr: {
      Value l = Eval(*e.args[0], frame);
      if (Truthy(l)) return l;
      return Eval(*e.args[1], frame);
    }
    case EK::kCond: {
      if (Truthy(Eval(*e.args[1], frame))) return Eval(*e.args[0], frame);
      if (e.args[2]) return Eval(*e.args[2], frame);
      return Value::Undef("the inline if-expression evaluated to false and has no else");
    }
    case EK::kConcat: {
      Value l = Eval(*e.args[0], frame);
      Value r = Eval(*e.args[1], frame);
      std::string s = Str(l);
      AppendStr(s, r);
      CheckSize(s.size(), e.line);
      return Value::Str(std::move(s));
    }
    case EK::kBinary:
      return BinaryOp(e.name, Eval(*e.args[0], frame), Eval(*e.args[1], frame), e.line);
    case EK::kCompare: {
      Value left = Eval(*e.args[0], frame);
      for (size_t k = 0; k < e.ops.size(); ++k) {
        Value right = Eval(*e.args[k + 1], frame);
        if (!CompareOp(e.ops[k], left, right, e.line)) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case EK::kList:
    case EK::kTuple: {
      List items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(Eval(*a, frame));
      return Value::MakeList(std::move(items), e.kind == EK::kTuple);
    }
    case EK::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        Value key = Eval(*e.args[k], frame);
        if (key.type == Type::kList && !key.is_tuple) Fail(e.line, "unhashable type: 'list'");
        if (key.type == Type::kDict) Fail(e.line, "unhashable type: 'dict'");
        if (key.undefined()) Fail(e.line, UndefinedMessage(key));
        d->Set(std::move(key), Eval(*e.args[k + 1], frame));
      }
      return Value::MakeDict(std::move(d));
    }
  }
  return Value::Undef();
}

CallArgs Interp::EvalArgs(const Expr& e, const FramePtr& frame, size_t first) {
  CallArgs a;
  a.line = e.line;
  for (size_t k = first; k < e.args.size(); ++k) a.pos.push_back(Eval(*e.args[k], frame));
  for (const auto& [key, ex] : e.kwargs) a.kw.emplace_back(key, Eval(*ex, frame));
  return a;
}

Value Interp::Call(const Value& callee, CallArgs& a, int line) {
  if (callee.type == Type::kCallable) return callee.fn->fn(*this, a);
  if (callee.undefined()) Fail(line, UndefinedMessage(callee));
  Fail(line, "'" + TypeName(callee) + "' object is not callable");
}

Value Interp::GetAttr(const Value& obj, const std::string& name, int line) {
  if (obj.undefined()) Fail(line, UndefinedMessage(obj));
  if (!name.empty() && name[0] == '_') {
    return Value::Undef("access to attribute '" + name + "' of '" + TypeName(obj) +
                        "' object is unsafe");
  }
  Value method;
  if (FindMethod(obj, name, line, &method)) return method;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict->FindStr(name)) return *v;
  } else if (obj.type == Type::kNamespace) {
    if (const Value* v = obj.ns->attrs.FindStr(name)) return *v;
  }
  return Value::Undef("'" + TypeName(obj) + " object' has no attribute '" + name + "'");
}

Value Interp::GetItem(const Value& obj, const Value& key, int line) {
  if (obj.undefined()) Fail(line, UndefinedMessage(obj));
  if (key.undefined() && !obj.is_dict()) Fail(line, UndefinedMessage(key));
  switch (obj.type) {
    case Type::kDict:
      if (const Value* v = obj.dict->Find(key)) return *v;
      break;
    case Type::kNamespace:
      if (key.is_string()) {
        if (const Value* v = obj.ns->attrs.FindStr(key.s)) return *v;
      }
      break;
    case Type::kList:
      if (key.is_int()) {
        int64_t idx = key.as_int();
        const int64_t n = static_cast<int64_t>(obj.list->size());
        if (idx < 0) idx += n;
        if (idx >= 0 && idx < n) return (*obj.list)[static_cast<size_t>(idx)];
        return Value::Undef("'" + TypeName(obj) + " object' has no element " +
                            std::to_string(key.as_int()));
      }
      break;
    case Type::kString:
      if (key.is_int()) {
        std::u32string u = Chars(obj);
        int64_t idx = key.as_int();
        const int64_t n = static_cast<int64_t>(u.size());
        if (idx < 0) idx += n;
        if (idx >= 0 && idx < n) {
          std::string s;
          AppendUtf8(s, u[static_cast<size_t>(idx)]);
          return Value::Str(std::move(s));
        }
        return Value::Undef("'str object' has no element " + std::to_string(key.as_int()));
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    Value method;
    if (key.s.empty() || key.s[0] != '_') {
      if (FindMethod(obj, key.s, line, &method)) return method;
    }
    return Value::Undef("'" + TypeName(obj) + " object' has no attribute '" + key.s + "'");
  }
  return Value::Undef("'" + TypeName(obj) + " object' has no element " + Repr(key));
}

Value Interp::Slice(const Value& obj, const Value& a, const Value& b, const Value& c, int line) {
  if (obj.undefined()) Fail(line, UndefinedMessage(obj));
  int64_t s = 0, e = 0, st = 1;
  if (obj.is_list()) {
    SliceIndices(static_cast<int64_t>(obj.list->size()), a, b, c, line, &s, &e, &st);
    List out;
    DoSlice(*obj.list, s, e, st, &out);
    return Value::MakeList(std::move(out), obj.is_tuple);
  }
  if (obj.is_string()) {
    std::u32string u = Chars(obj);
    SliceIndices(static_cast<int64_t>(u.size()), a, b, c, line, &s, &e, &st);
    std::u32string out;
    DoSlice(u, s, e, st, &out);
    return Value::Str(Encode(out));
  }
  Fail(line, "'" + TypeName(obj) + "' object is not subscriptable");
}

namespace {

bool CheckedMul(int64_t a, int64_t b, int64_t* r) { return !__builtin_mul_overflow(a, b, r); }

[[noreturn]] void Unsupported(const std::string& op, const Value& l, const Value& r, int line) {
  Fail(line, "unsupported operand type(s) for " + op + ": '" + TypeName(l) + "' and '" +
                 TypeName(r) + "'");
}

// Python's float arithmetic (true division is handled by the caller).
Value FloatOp(const std::string& op, const Value& l, const Value& r, int line) {
  const double x = l.as_float(), y = r.as_float();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "//" || op == "%") {
    if (y == 0) Fail(line, "float division by zero");
    // CPython's float_divmod.
    double m = std::fmod(x, y);
    double div = (x - m) / y;
    if (m != 0) {
      if ((y < 0) != (m < 0)) {
        m += y;
        div -= 1.0;
      }
    } else {
      m = std::copysign(0.0, y);
    }
    if (op == "%") return Value::Float(m);
    double floordiv;
    if (div != 0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
      floordiv = std::copysign(0.0, x / y);
    }
    return Value::Float(floordiv);
  }
  if (op == "**") {
    if (x == 0 && y < 0) Fail(line, "0.0 cannot be raised to a negative power");
    return Value::Float(std::pow(x, y));
  }
  Unsupported(op, l, r, line);
}

// Python's int arithmetic on int64, failing where Python's unbounded ints would leave int64.
Value IntOp(const std::string& op, const Value& l, const Value& r, int line) {
  const int64_t x = l.as_int(), y = r.as_int();
  int64_t res = 0;
  if (op == "+") {
    if (__builtin_add_overflow(x, y, &res)) Fail(line, "integer overflow");
    return Value::Int(res);
  }
  if (op == "-") {
    if (__builtin_sub_overflow(x, y, &res)) Fail(line, "integer overflow");
    return Value::Int(res);
  }
  if (op == "*") {
    if (!CheckedMul(x, y, &res)) Fail(line, "integer overflow");
    return Value::Int(res);
  }
  if (op == "//" || op == "%") {
    if (y == 0) Fail(line, "integer division or modulo by zero");
    if (x == std::numeric_limits<int64_t>::min() && y == -1) Fail(line, "integer overflow");
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {
      m += y;
      --q;
    }
    return Value::Int(op == "%" ? m : q);
  }
  if (op == "**") {
    if (y < 0) {
      if (x == 0) Fail(line, "0.0 cannot be raised to a negative power");
      return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
    int64_t acc = 1, base = x, ex = y;
    while (ex > 0) {
      if (ex & 1) {
        if (!CheckedMul(acc, base, &acc)) Fail(line, "integer overflow");
      }
      ex >>= 1;
      if (ex > 0 && !CheckedMul(base, base, &base)) Fail(line, "integer overflow");
    }
    return Value::Int(acc);
  }
  Unsupported(op, l, r, line);
}

}  // namespace

Value Interp::BinaryOp(const std::string& op, const Value& l, const Value& r, int line) {
  if (l.undefined()) Fail(line, UndefinedMessage(l));
  if (r.undefined()) Fail(line, UndefinedMessage(r));
  if (l.is_number() && r.is_number()) {
    if (op == "/") {
      if (r.as_float() == 0) Fail(line, "division by zero");
      return Value::Float(l.as_float() / r.as_float());
    }
    if (l.type == Type::kFloat || r.type == Type::kFloat) return FloatOp(op, l, r, line);
    return IntOp(op, l, r, line);
  }
  if (op == "+") return ConcatOp(l, r, line);
  if (op == "*") return RepeatOp(l, r, line);
  if (op == "%" && l.is_string()) return Value::Str(PercentFormat(l.s, r, line));
  Unsupported(op, l, r, line);
}

// str + str, list + list, tuple + tuple.
Value Interp::ConcatOp(const Value& l, const Value& r, int line) {
  if (l.is_string() && r.is_string()) {
    CheckSize(l.s.size() + r.s.size(), line);
    return Value::Str(l.s + r.s);
  }
  if (l.is_list() && r.is_list() && l.is_tuple == r.is_tuple) {
    CheckItems(l.list->size() + r.list->size(), line);
    List items = *l.list;
    items.insert(items.end(), r.list->begin(), r.list->end());
    return Value::MakeList(std::move(items), l.is_tuple);
  }
  if (l.is_list() && r.is_list()) {
    Fail(line, std::string("can only concatenate ") + TypeName(l) + " (not \"" + TypeName(r) +
                   "\") to " + TypeName(l));
  }
  if (l.is_string() && !r.is_string()) {
    Fail(line, "can only concatenate str (not \"" + TypeName(r) + "\") to str");
  }
  Unsupported("+", l, r, line);
}

// Sequence repetition: str * int, list * int, and the same with the operands swapped.
Value Interp::RepeatOp(const Value& l, const Value& r, int line) {
  const Value* seq = nullptr;
  const Value* count = nullptr;
  if ((l.is_string() || l.is_list()) && r.is_int()) {
    seq = &l;
    count = &r;
  } else if ((r.is_string() || r.is_list()) && l.is_int()) {
    seq = &r;
    count = &l;
  }
  if (seq == nullptr) Unsupported("*", l, r, line);
  const int64_t n = std::max<int64_t>(0, count->as_int());
  if (seq->is_string()) {
    if (n > 0 && seq->s.size() > prog_.limits.max_output_bytes / static_cast<size_t>(n)) {
      CheckSize(prog_.limits.max_output_bytes + 1, line);
    }
    CheckSize(static_cast<size_t>(n) * seq->s.size(), line);
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq->s;
    return Value::Str(std::move(out));
  }
  const size_t total = seq->list->size() * static_cast<size_t>(n);
  if (n > 0 && total / static_cast<size_t>(n) != seq->list->size()) Fail(line, "list too big");
  CheckItems(total, line);
  List items;
  for (int64_t k = 0; k < n; ++k) {
    Step(line);
    items.insert(items.end(), seq->list->begin(), seq->list->end());
  }
  return Value::MakeList(std::move(items), seq->is_tuple);
}

bool Interp::Contains(const Value& container, const Value& item, int line) {
  switch (container.type) {
    case Type::kUndefined:
      return false;
    case Type::kString:
      if (!item.is_string()) {
        Fail(line, "'in <string>' requires string as left operand, not " + TypeName(item));
      }
      return container.s.find(item.s) != std::string::npos;
    case Type::kList:
      for (const auto& v : *container.list) {
        if (Equal(v, item)) return true;
      }
      return false;
    case Type::kDict:
      return container.dict->Find(item) != nullptr;
    default:
      Fail(line, "argument of type '" + TypeName(container) + "' is not iterable");
  }
}

bool Interp::CompareOp(const std::string& op, const Value& l, const Value& r, int line) {
  if (op == "==") return Equal(l, r);
  if (op == "!=") return !Equal(l, r);
  if (op == "in") return Contains(r, l, line);
  if (op == "notin") return !Contains(r, l, line);
  const int c = Compare(l, r, line, op.c_str());
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

// printf-style "%s" % value (the `format` filter and the % operator on strings).
std::string Interp::PercentFormat(const std::string& fmt, const Value& arg, int line) {
  List args;
  const Dict* named = nullptr;
  if (arg.is_list() && arg.is_tuple) {
    args = *arg.list;
  } else if (arg.is_dict()) {
    named = arg.dict.get();
    args.push_back(arg);
  } else {
    args.push_back(arg);
  }
  std::string out;
  size_t next = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') {
      out.push_back(fmt[k]);
      continue;
    }
    if (++k >= fmt.size()) Fail(line, "incomplete format");
    const Value* v = nullptr;
    if (fmt[k] == '(') {
      const size_t close = fmt.find(')', k);
      if (close == std::string::npos || named == nullptr) Fail(line, "format requires a mapping");
      v = named->FindStr(fmt.substr(k + 1, close - k - 1));
      if (v == nullptr) Fail(line, "format key '" + fmt.substr(k + 1, close - k - 1) + "' missing");
      k = close + 1;
      if (k >= fmt.size()) Fail(line, "incomplete format");
    }
    std::string flags;
    while (k < fmt.size() && std::strchr("-+ 0#", fmt[k]) != nullptr) flags.push_back(fmt[k++]);
    std::string width;
    while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k])))
      width.push_back(fmt[k++]);
    int precision = -1;
    if (k < fmt.size() && fmt[k] == '.') {
      ++k;
      precision = 0;
      while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) {
        precision = precision * 10 + (fmt[k++] - '0');
        if (precision > 1000) Fail(line, "format precision too large");
      }
    }
    if (k >= fmt.size()) Fail(line, "incomplete format");
    const char conv = fmt[k];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (v == nullptr) {
      if (next >= args.size()) Fail(line, "not enough arguments for format string");
      v = &args[next++];
    }
    std::string piece;
    switch (conv) {
      case 's':
        piece = Str(*v);
        break;
      case 'r':
        piece = Repr(*v);
        break;
      case 'd':
      case 'i':
        if (!v->is_number())
          Fail(line, "%d format: a real number is required, not " + TypeName(*v));
        piece = FormatInt(v->type == Type::kFloat ? static_cast<int64_t>(v->f) : v->as_int());
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'g': {
        if (!v->is_number()) Fail(line, "must be real number, not " + TypeName(*v));
        char buf[1100];
        const std::string spec =
            std::string("%.") + std::to_string(precision < 0 ? 6 : precision) + conv;
        std::snprintf(buf, sizeof(buf), spec.c_str(), v->as_float());
        piece = buf;
        break;
      }
      default:
        Fail(line, std::string("unsupported format character '") + conv + "'");
    }
    if (conv == 's' && precision >= 0) piece = Encode(Decode(piece).substr(0, precision));
    size_t w = width.empty() ? 0 : static_cast<size_t>(std::min(std::stoul(width), 10000ul));
    const size_t len = CodepointCount(piece);
    if (len < w) {
      const bool left = flags.find('-') != std::string::npos;
      const char pad = (flags.find('0') != std::string::npos && conv != 's' && !left) ? '0' : ' ';
      if (left) {
        piece.append(w - len, ' ');
      } else {
        piece.insert(0, w - len, pad);
      }
    }
    out += piece;
    CheckSize(out.size(), line);
  }
  if (named == nullptr && next < args.size()) {
    Fail(line, "not all arguments converted during string formatting");
  }
  return out;
}

// Attribute lookup for map/selectattr/sort(attribute=...): dotted paths, integer parts index.
Value Interp::GetPath(const Value& obj, const std::string& path, int line) {
  Value cur = obj;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    int64_t idx = 0;
    auto res = std::from_chars(part.data(), part.data() + part.size(), idx);
    if (!part.empty() && res.ec == std::errc() && res.ptr == part.data() + part.size()) {
      cur = GetItem(cur, Value::Int(idx), line);
    } else {
      cur = GetItem(cur, Value::Str(part), line);
    }
    if (dot == std::string::npos) return cur;
    if (cur.undefined()) return cur;
    start = dot + 1;
  }
}

}  // namespace rvec::jinja::internal
