// Methods on template values (str, dict, list): one small function per method or family of
// methods, found through a table per receiver type.
#include <algorithm>
#include <cctype>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {

std::string ReplaceAll(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count, Interp& in, int line) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement between every code point (and at both ends).
    std::u32string u = Decode(s);
    int64_t done = 0;
    for (size_t k = 0; k <= u.size(); ++k) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (k < u.size()) AppendUtf8(out, u[k]);
      in.CheckSize(out.size(), line);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += repl;
    in.CheckSize(out.size(), line);
    start = at + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

namespace {

// `name` is the method's own name, so that one function can serve a family (strip/lstrip/rstrip).
using MethodFn = Value (*)(Interp& in, const Value& self, const std::string& name, CallArgs& a);

Value StrStrip(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  const bool l = name != "rstrip", r = name != "lstrip";
  Args args(a, "strip", {"chars"});
  const Value* chars = args.Get(0);
  if (chars && !chars->none() && !chars->is_string()) {
    Fail(a.line, "strip arg must be None or str");
  }
  return Value::Str(StripChars(self.s, chars, l, r));
}

Value StrSplit(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  const bool rsplit = name == "rsplit";
  Args args(a, "split", {"sep", "maxsplit"});
  Value ms = args.Or(1, Value::Int(-1));
  if (!ms.is_int()) Fail(a.line, "maxsplit must be an integer");
  if (rsplit && ms.as_int() >= 0) {
    // rsplit with a limit: split the reversed string with the reversed separator.
    std::u32string u = Decode(self.s);
    std::reverse(u.begin(), u.end());
    const Value* sep = args.Get(0);
    Value rsep;
    if (sep && sep->is_string()) {
      std::u32string su = Decode(sep->s);
      std::reverse(su.begin(), su.end());
      rsep = Value::Str(Encode(su));
      sep = &rsep;
    }
    List parts = SplitString(Encode(u), sep, ms.as_int(), a.line);
    std::reverse(parts.begin(), parts.end());
    for (auto& p : parts) {
      std::u32string pu = Decode(p.s);
      std::reverse(pu.begin(), pu.end());
      p.s = Encode(pu);
    }
    return Value::MakeList(std::move(parts));
  }
  return Value::MakeList(SplitString(self.s, args.Get(0), ms.as_int(), a.line));
}

Value StrSplitLines(Interp&, const Value& self, const std::string&, CallArgs& a) {
  Args args(a, "splitlines", {"keepends"});
  List out;
  for (auto& l : SplitLines(Decode(self.s), args.Bool(0, false))) {
    out.push_back(Value::Str(Encode(l)));
  }
  return Value::MakeList(std::move(out));
}

Value StrStartsEndsWith(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  const bool starts = name == "startswith";
  Args args(a, starts ? "startswith" : "endswith", {"prefix", "start", "end"});
  const Value& p = args.Required(0);
  Value sub = self;
  if (args.Get(1) || args.Get(2)) {
    std::u32string u = Decode(self.s);
    int64_t s = 0, e = 0, st = 1;
    SliceIndices(static_cast<int64_t>(u.size()), args.Or(1, Value::None()),
                 args.Or(2, Value::None()), Value::None(), a.line, &s, &e, &st);
    sub = Value::Str(s < e ? Encode(u.substr(static_cast<size_t>(s), static_cast<size_t>(e - s)))
                           : std::string());
  }
  auto test = [&](const Value& x) {
    if (!x.is_string()) {
      Fail(a.line, std::string(starts ? "startswith" : "endswith") +
                       " first arg must be str or a tuple of str, not " + TypeName(x));
    }
    return starts ? std::string_view(sub.s).starts_with(x.s)
                  : std::string_view(sub.s).ends_with(x.s);
  };
  if (p.is_list() && p.is_tuple) {
    for (const auto& x : *p.list) {
      if (test(x)) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  return Value::Bool(test(p));
}

Value StrCase(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {});
  if (name == "upper") return Value::Str(UpperStr(self.s));
  if (name == "lower") return Value::Str(LowerStr(self.s));
  if (name == "title") return Value::Str(PyTitle(self.s));
  if (name == "capitalize") return Value::Str(Capitalize(self.s));
  return Value::Str(
      MapChars(self.s, [](char32_t c) { return PyIsUpper(c) ? PyLower(c) : PyUpper(c); }));
}

Value StrReplace(Interp& in, const Value& self, const std::string&, CallArgs& a) {
  Args args(a, "replace", {"old", "new", "count"});
  const std::string old = RequireString(args.Required(0), "replace()", a.line);
  const std::string repl = RequireString(args.Required(1), "replace()", a.line);
  Value count = args.Or(2, Value::Int(-1));
  if (!count.is_int()) Fail(a.line, "replace() count must be an integer");
  return Value::Str(ReplaceAll(self.s, old, repl, count.as_int(), in, a.line));
}

Value StrFind(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {"sub"});
  const std::string sub = RequireString(args.Required(0), name.c_str(), a.line);
  if (name == "count") {
    if (sub.empty()) return Value::Int(static_cast<int64_t>(CodepointCount(self.s)) + 1);
    int64_t n = 0;
    for (size_t at = self.s.find(sub); at != std::string::npos;
         at = self.s.find(sub, at + sub.size())) {
      ++n;
    }
    return Value::Int(n);
  }
  const size_t at = (name[0] == 'r') ? self.s.rfind(sub) : self.s.find(sub);
  if (at == std::string::npos) {
    if (name == "index" || name == "rindex") Fail(a.line, "substring not found");
    return Value::Int(-1);
  }
  return Value::Int(static_cast<int64_t>(CodepointCount(self.s.substr(0, at))));
}

Value StrJoin(Interp& in, const Value& self, const std::string&, CallArgs& a) {
  Args args(a, "join", {"iterable"});
  std::string out;
  bool first = true;
  for (const auto& item : in.Iterate(args.Required(0), a.line)) {
    if (!item.is_string()) {
      Fail(a.line, "sequence item: expected str instance, " + TypeName(item) + " found");
    }
    if (!first) out += self.s;
    first = false;
    out += item.s;
    in.CheckSize(out.size(), a.line);
  }
  return Value::Str(std::move(out));
}

Value StrFormat(Interp& in, const Value& self, const std::string&, CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  const std::string& f = self.s;
  for (size_t k = 0; k < f.size(); ++k) {
    if (f[k] == '{' && k + 1 < f.size() && f[k + 1] == '{') {
      out.push_back('{');
      ++k;
    } else if (f[k] == '}' && k + 1 < f.size() && f[k + 1] == '}') {
      out.push_back('}');
      ++k;
    } else if (f[k] == '{') {
      const size_t close = f.find('}', k);
      if (close == std::string::npos) Fail(a.line, "format(): single '{' encountered");
      std::string field = f.substr(k + 1, close - k - 1);
      if (field.find_first_of(":!") != std::string::npos) {
        Fail(a.line, "format(): format specs and conversions are not supported",
             StatusCode::kUnimplemented);
      }
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_idx >= a.pos.size()) Fail(a.line, "format(): not enough arguments");
        v = &a.pos[auto_idx++];
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        const size_t idx = std::stoul(field);
        if (idx >= a.pos.size()) Fail(a.line, "format(): index out of range");
        v = &a.pos[idx];
      } else {
        for (const auto& [key, val] : a.kw) {
          if (key == field) v = &val;
        }
        if (v == nullptr) Fail(a.line, "format(): missing argument '" + field + "'");
      }
      AppendStr(out, *v);
      in.CheckSize(out.size(), a.line);
      k = close;
    } else if (f[k] == '}') {
      Fail(a.line, "format(): single '}' encountered");
    } else {
      out.push_back(f[k]);
    }
  }
  return Value::Str(std::move(out));
}

Value StrIsClass(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {});
  std::u32string u = Decode(self.s);
  if (u.empty()) return Value::Bool(false);
  if (name == "isupper" || name == "islower") {
    bool any_cased = false;
    for (char32_t c : u) {
      if (PyIsUpper(c) || PyIsLower(c)) {
        any_cased = true;
        if (name == "isupper" ? PyIsLower(c) : PyIsUpper(c)) return Value::Bool(false);
      }
    }
    return Value::Bool(any_cased);
  }
  for (char32_t c : u) {
    bool ok = false;
    if (name == "isspace") {
      ok = IsPySpace(c);
    } else if (name == "isalpha") {
      ok = PyIsAlpha(c);
    } else if (name == "isalnum") {
      ok = PyIsAlpha(c) || PyIsDigit(c);
    } else {
      ok = PyIsDigit(c);
    }
    if (!ok) return Value::Bool(false);
  }
  return Value::Bool(true);
}

Value StrPad(Interp& in, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {"width", "fillchar"});
  const Value& w = args.Required(0);
  if (!w.is_int()) Fail(a.line, name + "() width must be an integer");
  std::u32string u = Decode(self.s);
  const int64_t width = w.as_int();
  in.CheckSize(static_cast<size_t>(std::max<int64_t>(width, 0)), a.line);
  if (width <= static_cast<int64_t>(u.size())) return self;
  const size_t pad = static_cast<size_t>(width) - u.size();
  std::u32string fill = Decode(args.String(1, " "));
  if (fill.size() != 1) Fail(a.line, "The fill character must be exactly one character long");
  if (name == "zfill") {
    size_t sign = (!u.empty() && (u[0] == '+' || u[0] == '-')) ? 1 : 0;
    u.insert(sign, pad, U'0');
  } else if (name == "ljust") {
    u.append(pad, fill[0]);
  } else if (name == "rjust") {
    u.insert(0, pad, fill[0]);
  } else {
    size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
    u.insert(0, left, fill[0]);
    u.append(pad - left, fill[0]);
  }
  return Value::Str(Encode(u));
}

Value DictView(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {});
  List out;
  for (const auto& [k, v] : self.dict->items) {
    if (name == "items") {
      out.push_back(Value::MakeList({k, v}, true));
    } else {
      out.push_back(name == "keys" ? k : v);
    }
  }
  return Value::MakeList(std::move(out));
}

Value DictGet(Interp&, const Value& self, const std::string&, CallArgs& a) {
  Args args(a, "get", {"key", "default"});
  const Value* v = self.dict->Find(args.Required(0));
  return v ? *v : args.Or(1, Value::None());
}

Value DictCopy(Interp&, const Value& self, const std::string&, CallArgs& a) {
  Args args(a, "copy", {});
  return self;
}

Value ListIndexCount(Interp&, const Value& self, const std::string& name, CallArgs& a) {
  Args args(a, name.c_str(), {"value"});
  const Value& x = args.Required(0);
  int64_t n = 0;
  for (size_t k = 0; k < self.list->size(); ++k) {
    if (Equal((*self.list)[k], x)) {
      if (name == "index") return Value::Int(static_cast<int64_t>(k));
      ++n;
    }
  }
  if (name == "index") Fail(a.line, Repr(x) + " is not in list");
  return Value::Int(n);
}

Value ListCopy(Interp&, const Value& self, const std::string&, CallArgs&) { return self; }

// A null function marks a method that would modify the value: the sandbox refuses it when called.
struct MethodEntry {
  std::string_view name;
  MethodFn fn;
};

constexpr MethodEntry kStrMethods[] = {
    {"strip", StrStrip},
    {"lstrip", StrStrip},
    {"rstrip", StrStrip},
    {"split", StrSplit},
    {"rsplit", StrSplit},
    {"splitlines", StrSplitLines},
    {"startswith", StrStartsEndsWith},
    {"endswith", StrStartsEndsWith},
    {"upper", StrCase},
    {"lower", StrCase},
    {"title", StrCase},
    {"capitalize", StrCase},
    {"swapcase", StrCase},
    {"replace", StrReplace},
    {"find", StrFind},
    {"rfind", StrFind},
    {"index", StrFind},
    {"rindex", StrFind},
    {"count", StrFind},
    {"join", StrJoin},
    {"format", StrFormat},
    {"isdigit", StrIsClass},
    {"isalpha", StrIsClass},
    {"isalnum", StrIsClass},
    {"isspace", StrIsClass},
    {"isupper", StrIsClass},
    {"islower", StrIsClass},
    {"isnumeric", StrIsClass},
    {"isdecimal", StrIsClass},
    {"zfill", StrPad},
    {"center", StrPad},
    {"ljust", StrPad},
    {"rjust", StrPad},
};

constexpr MethodEntry kDictMethods[] = {
    {"items", DictView}, {"keys", DictView}, {"values", DictView}, {"get", DictGet},
    {"copy", DictCopy},  {"pop", nullptr},   {"popitem", nullptr}, {"setdefault", nullptr},
    {"update", nullptr}, {"clear", nullptr},
};

constexpr MethodEntry kTupleMethods[] = {
    {"index", ListIndexCount},
    {"count", ListIndexCount},
};

// Lists have the tuple methods too; their mutating methods are refused.
constexpr MethodEntry kListMethods[] = {
    {"index", ListIndexCount}, {"count", ListIndexCount}, {"append", nullptr}, {"extend", nullptr},
    {"insert", nullptr},       {"pop", nullptr},          {"remove", nullptr}, {"sort", nullptr},
    {"reverse", nullptr},      {"clear", nullptr},        {"copy", ListCopy},
};

template <size_t N>
const MethodEntry* FindEntry(const MethodEntry (&table)[N], std::string_view name) {
  for (const MethodEntry& m : table) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace

bool Interp::FindMethod(const Value& obj, const std::string& name, int, Value* out) {
  const MethodEntry* m = nullptr;
  if (obj.is_string()) {
    m = FindEntry(kStrMethods, name);
  } else if (obj.is_dict()) {
    m = FindEntry(kDictMethods, name);
  } else if (obj.is_list()) {
    m = obj.is_tuple ? FindEntry(kTupleMethods, name) : FindEntry(kListMethods, name);
  }
  if (m == nullptr) return false;
  if (m->fn == nullptr) {
    const std::string type = TypeName(obj);
    *out = MakeCallable(name, [type, name](Interp&, CallArgs& a) -> Value {
      Fail(a.line, "access to attribute '" + name + "' of '" + type +
                       "' object is unsafe (templates cannot modify values)");
    });
    return true;
  }
  const MethodFn fn = m->fn;
  Value self = obj;
  *out = MakeCallable(
      name, [self, fn, name](Interp& in, CallArgs& a) -> Value { return fn(in, self, name, a); });
  return true;
}

}  // namespace rvec::jinja::internal
