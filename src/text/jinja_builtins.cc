// Jinja's global functions (range, dict, namespace, raise_exception, strftime_now) and tests.
#include <fmt/format.h>

#include <cmath>
#include <ctime>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {

void Interp::InstallGlobals(Frame* g) {
  g->Set("raise_exception", MakeCallable("raise_exception", [](Interp&, CallArgs& a) -> Value {
           std::string msg = a.pos.empty() ? std::string() : Str(a.pos[0]);
           Fail(a.line, "raise_exception: " + msg);
         }));
  g->Set("strftime_now", MakeCallable("strftime_now", [](Interp&, CallArgs& a) -> Value {
           Args args(a, "strftime_now", {"format"});
           const std::string fmt = RequireString(args.Required(0), "strftime_now()", a.line);
           const std::time_t now = std::time(nullptr);
           std::tm tm{};
           localtime_r(&now, &tm);
           std::string buf(256 + fmt.size() * 8, '\0');
           const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
           buf.resize(n);
           return Value::Str(std::move(buf));
         }));
  g->Set("range", MakeCallable("range", [](Interp&, CallArgs& a) -> Value {
           if (!a.kw.empty()) Fail(a.line, "range() takes no keyword arguments");
           if (a.pos.empty() || a.pos.size() > 3) Fail(a.line, "range expected 1 to 3 arguments");
           for (const auto& v : a.pos) {
             if (!v.is_int())
               Fail(a.line,
                    fmt::format("'{}' object cannot be interpreted as an integer", TypeName(v)));
           }
           int64_t start = 0, stop = 0, step = 1;
           if (a.pos.size() == 1) {
             stop = a.pos[0].as_int();
           } else {
             start = a.pos[0].as_int();
             stop = a.pos[1].as_int();
             if (a.pos.size() == 3) step = a.pos[2].as_int();
           }
           if (step == 0) Fail(a.line, "range() arg 3 must not be zero");
           // The sandbox caps ranges at 100000 items (jinja2.sandbox.MAX_RANGE).
           const double count = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                                          static_cast<double>(step));
           if (count > 100000) {
             Fail(a.line,
                  "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
           }
           List out;
           if (step > 0) {
             for (int64_t k = start; k < stop; k += step) out.push_back(Value::Int(k));
           } else {
             for (int64_t k = start; k > stop; k += step) out.push_back(Value::Int(k));
           }
           return Value::MakeList(std::move(out));
         }));
  auto make_dict = [](CallArgs& a, const char* fn) {
    auto d = std::make_shared<Dict>();
    if (a.pos.size() > 1) Fail(a.line, std::string(fn) + "() takes at most 1 positional argument");
    if (!a.pos.empty()) {
      if (!a.pos[0].is_dict())
        Fail(a.line, std::string(fn) + "() positional argument must be a dict");
      *d = *a.pos[0].dict;
    }
    for (auto& [k, v] : a.kw) d->Set(Value::Str(k), v);
    return d;
  };
  g->Set("dict", MakeCallable("dict", [make_dict](Interp&, CallArgs& a) -> Value {
           return Value::MakeDict(make_dict(a, "dict"));
         }));
  g->Set("namespace", MakeCallable("namespace", [make_dict](Interp& in, CallArgs& a) -> Value {
           Value v;
           v.type = Type::kNamespace;
           v.ns = std::make_shared<Namespace>();
           in.RegisterNamespace(v.ns);
           v.ns->attrs = *make_dict(a, "namespace");
           return v;
         }));
}

bool Interp::ApplyTest(const std::string& name, const Value& v, CallArgs& a) {
  const int line = a.line;
  auto arg0 = [&]() -> const Value& {
    if (a.pos.empty()) Fail(line, "test '" + name + "' needs an argument");
    return a.pos[0];
  };
  if (name == "defined") return !v.undefined();
  if (name == "undefined") return v.undefined();
  if (name == "none") return v.none();
  if (name == "boolean") return v.type == Type::kBool;
  if (name == "false") return v.type == Type::kBool && !v.b;
  if (name == "true") return v.type == Type::kBool && v.b;
  if (name == "integer") return v.type == Type::kInt;
  if (name == "float") return v.type == Type::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") {
    return v.undefined() || v.is_string() || v.is_list() || v.is_dict();
  }
  if (name == "sequence") {
    return v.undefined() || v.is_string() || v.is_list() || v.is_dict();
  }
  // Jinja's Undefined defines __call__ (calling it raises), so callable() is true for it.
  if (name == "callable") return v.type == Type::kCallable || v.undefined();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) Fail(line, "test '" + name + "' needs a string");
    CallArgs none;
    none.line = line;
    Value m;
    FindMethod(v, name == "lower" ? "islower" : "isupper", line, &m);
    return Truthy(Call(m, none, line));
  }
  if (name == "odd" || name == "even") {
    if (!v.is_int()) Fail(line, "test '" + name + "' needs an integer, not " + TypeName(v));
    const int64_t m = v.as_int() % 2;
    return name == "odd" ? m != 0 : m == 0;
  }
  if (name == "divisibleby") {
    const Value& n = arg0();
    if (!v.is_number() || !n.is_number()) Fail(line, "divisibleby needs numbers");
    if (v.is_int() && n.is_int()) {
      if (n.as_int() == 0) Fail(line, "integer division or modulo by zero");
      return v.as_int() % n.as_int() == 0;
    }
    if (n.as_float() == 0) Fail(line, "float modulo");
    return std::fmod(v.as_float(), n.as_float()) == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equal(v, arg0());
  if (name == "ne" || name == "!=") return !Equal(v, arg0());
  if (name == "lt" || name == "lessthan" || name == "<") return Compare(v, arg0(), line, "<") < 0;
  if (name == "le" || name == "<=") return Compare(v, arg0(), line, "<=") <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">")
    return Compare(v, arg0(), line, ">") > 0;
  if (name == "ge" || name == ">=") return Compare(v, arg0(), line, ">=") >= 0;
  if (name == "in") return Contains(arg0(), v, line);
  if (name == "sameas") {
    const Value& o = arg0();
    if (v.type != o.type) return false;
    switch (v.type) {
      case Type::kNone:
      case Type::kUndefined:
        return true;
      case Type::kBool:
        return v.b == o.b;
      case Type::kInt:
        return v.i == o.i && v.i >= -5 && v.i <= 256;  // CPython small-int cache
      case Type::kList:
        return v.list == o.list;
      case Type::kDict:
        return v.dict == o.dict;
      case Type::kNamespace:
        return v.ns == o.ns;
      case Type::kCallable:
        return v.fn == o.fn;
      default:
        return false;
    }
  }
  if (name == "filter" || name == "test") {
    static const char* kTests[] = {
        "defined", "undefined", "none",   "boolean",     "false",    "true",        "integer",
        "float",   "number",    "string", "mapping",     "iterable", "sequence",    "callable",
        "escaped", "lower",     "upper",  "odd",         "even",     "divisibleby", "eq",
        "equalto", "==",        "ne",     "!=",          "lt",       "lessthan",    "<",
        "le",      "<=",        "gt",     "greaterthan", ">",        "ge",          ">=",
        "in",      "sameas",    "filter", "test"};
    if (!v.is_string()) return false;
    if (name == "filter") return IsFilterName(v.s);
    for (const char* t : kTests) {
      if (v.s == t) return true;
    }
    return false;
  }
  Fail(line, "unsupported test '" + name + "'", StatusCode::kUnimplemented);
}

}  // namespace rvec::jinja::internal
