// Jinja's builtin filters: one small function per filter or family of filters, found through a
// table by name.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "base/html.h"
#include "text/jinja_internal.h"

namespace rvec::jinja::internal {
namespace {

int CompareForSort(const Value& a, const Value& b, bool case_sensitive, int line) {
  if (!case_sensitive && a.is_string() && b.is_string()) {
    const std::string x = MapChars(a.s, PyLower), y = MapChars(b.s, PyLower);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return Compare(a, b, line, "<");
}

Value ToInt(const Value& v, const Value& def, int base) {
  switch (v.type) {
    case Type::kBool:
    case Type::kInt:
      return Value::Int(v.as_int());
    case Type::kFloat:
      if (std::isnan(v.f) || std::isinf(v.f) || std::fabs(v.f) > 9.2e18) return def;
      return Value::Int(static_cast<int64_t>(v.f));
    case Type::kString: {
      std::string s = StripChars(v.s, nullptr, true, true);
      std::string digits;
      for (size_t k = 0; k < s.size(); ++k) {
        if (s[k] == '_' && k > 0 && k + 1 < s.size()) continue;
        digits.push_back(s[k]);
      }
      bool neg = false;
      std::string_view body = digits;
      if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
      }
      if (base == 16 && (body.starts_with("0x") || body.starts_with("0X"))) body.remove_prefix(2);
      int64_t x = 0;
      auto res = std::from_chars(body.data(), body.data() + body.size(), x, base);
      if (!body.empty() && res.ec == std::errc() && res.ptr == body.data() + body.size()) {
        return Value::Int(neg ? -x : x);
      }
      // Jinja falls back to int(float(value)).
      double f = 0;
      auto r2 = std::from_chars(s.data(), s.data() + s.size(), f);
      if (!s.empty() && r2.ec == std::errc() && r2.ptr == s.data() + s.size() && std::isfinite(f) &&
          std::fabs(f) < 9.2e18) {
        return Value::Int(static_cast<int64_t>(f));
      }
      return def;
    }
    default:
      return def;
  }
}

Value ToFloat(const Value& v, const Value& def) {
  switch (v.type) {
    case Type::kBool:
    case Type::kInt:
    case Type::kFloat:
      return Value::Float(v.as_float());
    case Type::kString: {
      std::string s = StripChars(v.s, nullptr, true, true);
      std::string low = MapChars(s, AsciiLower);
      std::string_view body = low;
      bool neg = false;
      if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
      }
      if (body == "inf" || body == "infinity") {
        return Value::Float(neg ? -std::numeric_limits<double>::infinity()
                                : std::numeric_limits<double>::infinity());
      }
      if (body == "nan") return Value::Float(std::numeric_limits<double>::quiet_NaN());
      std::string clean;
      for (char c : body) {
        if (c != '_') clean.push_back(c);
      }
      double f = 0;
      auto res = std::from_chars(clean.data(), clean.data() + clean.size(), f);
      if (clean.empty() || res.ec != std::errc() || res.ptr != clean.data() + clean.size()) {
        return def;
      }
      return Value::Float(neg ? -f : f);
    }
    default:
      return def;
  }
}

// Python's round(x, n): correctly rounded decimal, ties to even on the exact binary value.
double PyRound(double x, int64_t n) {
  if (!std::isfinite(x)) return x;
  if (n > 300) return x;
  if (n < -300) return 0.0 * x;
  if (n >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(n), x);
    return std::strtod(buf, nullptr);
  }
  const double p = std::pow(10.0, static_cast<double>(-n));
  const double y = x / p;
  double r = std::nearbyint(y);
  return r * p;
}

}  // namespace

namespace {

// `name` is the name the filter was called by, so that one function can serve a family
// (upper/lower/capitalize/title) and name itself in errors.
using FilterFn = Value (*)(Interp& in, const std::string& name, Value v, CallArgs& a);

Value FilterConvert(Interp& in, const std::string& name, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, name.c_str(), {});
  if (name == "safe") return v;
  if (name == "string") return Value::Str(Str(v));
  if (name == "list") return Value::MakeList(in.Iterate(v, line));
  return Value::Str(HtmlEscape(Str(v), HtmlQuotes::kMarkupSafe));
}

Value FilterTrim(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "trim", {"chars"});
  const Value* chars = args.Get(0);
  if (chars && !chars->none() && !chars->is_string()) Fail(line, "trim(): chars must be a string");
  return Value::Str(StripChars(Str(v), chars, true, true));
}

Value FilterCase(Interp&, const std::string& name, Value v, CallArgs& a) {
  Args args(a, name.c_str(), {});
  const std::string s = Str(v);
  if (name == "upper") return Value::Str(UpperStr(s));
  if (name == "lower") return Value::Str(LowerStr(s));
  if (name == "capitalize") return Value::Str(Capitalize(s));
  // Jinja's title: words begin after whitespace, '-', or brackets.
  std::u32string u = Decode(s);
  bool start = true;
  for (char32_t& c : u) {
    const bool sep = IsPySpace(c) || c == '-' || c == '[' || c == ']' || c == '(' || c == ')' ||
                     c == '{' || c == '}';
    if (sep) {
      start = true;
      continue;
    }
    c = start ? PyUpper(c) : PyLower(c);
    start = false;
  }
  return Value::Str(Encode(u));
}

Value FilterLength(Interp&, const std::string& name, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, name.c_str(), {});
  switch (v.type) {
    case Type::kUndefined:
      return Value::Int(0);
    case Type::kString:
      return Value::Int(static_cast<int64_t>(CodepointCount(v.s)));
    case Type::kList:
      return Value::Int(static_cast<int64_t>(v.list->size()));
    case Type::kDict:
      return Value::Int(static_cast<int64_t>(v.dict->items.size()));
    default:
      Fail(line, "object of type '" + TypeName(v) + "' has no len()");
  }
}

Value FilterDefault(Interp&, const std::string&, Value v, CallArgs& a) {
  Args args(a, "default", {"default_value", "boolean"});
  if (v.undefined() || (args.Bool(1, false) && !Truthy(v))) {
    return args.Or(0, Value::Str(""));
  }
  return v;
}

Value FilterJoin(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "join", {"d", "attribute"});
  const std::string sep = args.Get(0) ? Str(*args.Get(0)) : std::string();
  const Value* attr = args.Get(1);
  std::string out;
  bool first = true;
  for (const auto& item : in.Iterate(v, line)) {
    if (!first) out += sep;
    first = false;
    AppendStr(out, attr ? in.GetPath(item, Str(*attr), line) : item);
    in.CheckSize(out.size(), line);
  }
  return Value::Str(std::move(out));
}

Value FilterReplace(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "replace", {"old", "new", "count"});
  const std::string old = Str(args.Required(0)), repl = Str(args.Required(1));
  Value count = args.Or(2, Value::None());
  if (!count.none() && !count.is_int()) Fail(line, "replace(): count must be an integer");
  return Value::Str(ReplaceAll(Str(v), old, repl, count.none() ? -1 : count.as_int(), in, line));
}

Value FilterItems(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "items", {});
  if (v.undefined()) return Value::MakeList({});
  if (!v.is_dict()) Fail(line, "Can only get item pairs from a mapping.");
  List out;
  for (const auto& [k, val] : v.dict->items) out.push_back(Value::MakeList({k, val}, true));
  return Value::MakeList(std::move(out));
}

Value FilterFirstLast(Interp& in, const std::string& name, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, name.c_str(), {});
  if (v.undefined() && name == "last") Fail(line, UndefinedMessage(v));
  List items = in.Iterate(v, line);
  if (items.empty()) return Value::Undef("No " + name + " item, sequence was empty.");
  return name == "first" ? items.front() : items.back();
}

Value FilterReverse(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "reverse", {});
  if (v.is_string()) {
    std::u32string u = Chars(v);
    std::reverse(u.begin(), u.end());
    return Value::Str(Encode(u));
  }
  List items = in.Iterate(v, line);
  std::reverse(items.begin(), items.end());
  return Value::MakeList(std::move(items));
}

Value FilterInt(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "int", {"default", "base"});
  Value base = args.Or(1, Value::Int(10));
  if (!base.is_int() || base.as_int() < 2 || base.as_int() > 36) Fail(line, "int(): bad base");
  return ToInt(v, args.Or(0, Value::Int(0)), static_cast<int>(base.as_int()));
}

Value FilterFloat(Interp&, const std::string&, Value v, CallArgs& a) {
  Args args(a, "float", {"default"});
  return ToFloat(v, args.Or(0, Value::Float(0.0)));
}

Value FilterAbs(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "abs", {});
  if (v.type == Type::kFloat) return Value::Float(std::fabs(v.f));
  if (v.is_int()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) Fail(line, "integer overflow");
    return Value::Int(std::abs(v.as_int()));
  }
  Fail(line, "bad operand type for abs(): '" + TypeName(v) + "'");
}

Value FilterRound(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "round", {"precision", "method"});
  Value prec = args.Or(0, Value::Int(0));
  const std::string method = args.String(1, "common");
  if (!prec.is_int()) Fail(line, "round(): precision must be an integer");
  if (method != "common" && method != "ceil" && method != "floor") {
    Fail(line, "method must be common, ceil or floor");
  }
  if (!v.is_number()) Fail(line, "round(): '" + TypeName(v) + "' is not a number");
  const int64_t p = prec.as_int();
  if (method == "common") {
    if (v.is_int() && p >= 0) return Value::Int(v.as_int());
    return Value::Float(PyRound(v.as_float(), p));
  }
  const double scale = std::pow(10.0, static_cast<double>(p));
  const double x = v.as_float() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value FilterToJson(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle st;
  st.ensure_ascii = args.Bool(0, false);
  st.sort_keys = args.Bool(3, false);
  const Value* indent = args.Get(1);
  if (indent && !indent->none()) {
    st.has_indent = true;
    if (indent->is_string()) {
      st.indent = indent->s;
    } else if (indent->is_int()) {
      st.indent =
          std::string(static_cast<size_t>(std::clamp<int64_t>(indent->as_int(), 0, 1000)), ' ');
    } else {
      Fail(line, "tojson(): indent must be an integer or a string");
    }
    st.item_sep = ",";
  }
  const Value* seps = args.Get(2);
  if (seps && !seps->none()) {
    if (!seps->is_list() || seps->list->size() != 2 || !(*seps->list)[0].is_string() ||
        !(*seps->list)[1].is_string()) {
      Fail(line, "tojson(): separators must be a pair of strings");
    }
    st.item_sep = (*seps->list)[0].s;
    st.key_sep = (*seps->list)[1].s;
  }
  std::string out;
  DumpJson(out, v, st, 0, line);
  in.CheckSize(out.size(), line);
  return Value::Str(std::move(out));
}

Value FilterMap(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  List items = in.Iterate(v, line);
  bool by_attr = false;
  for (const auto& kv : a.kw) {
    if (kv.first == "attribute") by_attr = true;
  }
  List out;
  if (by_attr) {
    Args args(a, "map", {"attribute", "default"});
    const std::string attr = Str(args.Required(0));
    const Value* def = args.Get(1);
    for (const auto& item : items) {
      Value x = in.GetPath(item, attr, line);
      if (x.undefined() && def) x = *def;
      out.push_back(std::move(x));
    }
    return Value::MakeList(std::move(out));
  }
  if (a.pos.empty()) return Value::MakeList(std::move(items));
  const std::string fname = RequireString(a.pos[0], "map()", line);
  CallArgs rest;
  rest.line = line;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (auto& item : items) {
    CallArgs copy = rest;
    out.push_back(in.ApplyFilter(fname, std::move(item), copy));
  }
  return Value::MakeList(std::move(out));
}

Value FilterSelect(Interp& in, const std::string& name, Value v, CallArgs& a) {
  const int line = a.line;
  const bool attr_mode = name == "selectattr" || name == "rejectattr";
  const bool want = name == "select" || name == "selectattr";
  List items = in.Iterate(v, line);
  size_t k = 0;
  std::string attr;
  if (attr_mode) {
    if (a.pos.empty()) Fail(line, name + "(): missing attribute name");
    attr = Str(a.pos[0]);
    k = 1;
  }
  std::string test;
  if (k < a.pos.size()) test = RequireString(a.pos[k], name.c_str(), line);
  CallArgs rest;
  rest.line = line;
  if (k + 1 < a.pos.size()) rest.pos.assign(a.pos.begin() + static_cast<long>(k) + 1, a.pos.end());
  rest.kw = a.kw;
  List out;
  for (auto& item : items) {
    in.Step(line);
    Value x = attr_mode ? in.GetPath(item, attr, line) : item;
    bool r;
    if (test.empty()) {
      r = Truthy(x);
    } else {
      CallArgs copy = rest;
      r = in.ApplyTest(test, x, copy);
    }
    if (r == want) out.push_back(std::move(item));
  }
  return Value::MakeList(std::move(out));
}

Value FilterSort(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "sort", {"reverse", "case_sensitive", "attribute"});
  const bool reverse = args.Bool(0, false), cs = args.Bool(1, false);
  const Value* attr = args.Get(2);
  List items = in.Iterate(v, line);
  std::vector<Value> keys;
  for (const auto& item : items) keys.push_back(attr ? in.GetPath(item, Str(*attr), line) : item);
  std::vector<size_t> order(items.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const int c = CompareForSort(keys[x], keys[y], cs, line);
    return reverse ? c > 0 : c < 0;
  });
  List out;
  for (size_t idx : order) out.push_back(items[idx]);
  return Value::MakeList(std::move(out));
}

Value FilterDictSort(Interp&, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "dictsort", {"case_sensitive", "by", "reverse"});
  const bool cs = args.Bool(0, false), reverse = args.Bool(2, false);
  const std::string by = args.String(1, "key");
  if (by != "key" && by != "value") Fail(line, "You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) Fail(line, "dictsort(): value must be a mapping");
  List items;
  for (const auto& [k, val] : v.dict->items) items.push_back(Value::MakeList({k, val}, true));
  const size_t pos = by == "key" ? 0 : 1;
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const int c = CompareForSort((*x.list)[pos], (*y.list)[pos], cs, line);
    return reverse ? c > 0 : c < 0;
  });
  return Value::MakeList(std::move(items));
}

Value FilterUnique(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "unique", {"case_sensitive", "attribute"});
  const bool cs = args.Bool(0, false);
  const Value* attr = args.Get(1);
  List out, seen;
  for (const auto& item : in.Iterate(v, line)) {
    Value key = attr ? in.GetPath(item, Str(*attr), line) : item;
    if (!cs && key.is_string()) key = Value::Str(MapChars(key.s, PyLower));
    bool dup = false;
    for (const auto& s : seen) {
      if (Equal(s, key)) dup = true;
    }
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::MakeList(std::move(out));
}

Value FilterMinMax(Interp& in, const std::string& name, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, name.c_str(), {"case_sensitive", "attribute"});
  const bool cs = args.Bool(0, false);
  const Value* attr = args.Get(1);
  List items = in.Iterate(v, line);
  if (items.empty()) return Value::Undef("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t k = 1; k < items.size(); ++k) {
    Value kb = attr ? in.GetPath(items[best], Str(*attr), line) : items[best];
    Value kk = attr ? in.GetPath(items[k], Str(*attr), line) : items[k];
    const int c = CompareForSort(kk, kb, cs, line);
    if (name == "min" ? c < 0 : c > 0) best = k;
  }
  return items[best];
}

Value FilterSum(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "sum", {"attribute", "start"});
  Value acc = args.Or(1, Value::Int(0));
  const Value* attr = args.Get(0);
  for (const auto& item : in.Iterate(v, line)) {
    acc = in.BinaryOp("+", acc, attr ? in.GetPath(item, Str(*attr), line) : item, line);
  }
  return acc;
}

Value FilterIndent(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "indent", {"width", "first", "blank"});
  Value width = args.Or(0, Value::Int(4));
  std::u32string ind;
  if (width.is_string()) {
    ind = Decode(width.s);
  } else if (width.is_int()) {
    ind.assign(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1000)), U' ');
  } else {
    Fail(line, "indent(): width must be an integer or a string");
  }
  const bool first = args.Bool(1, false), blank = args.Bool(2, false);
  std::u32string s = Decode(Str(v));
  s.push_back(U'\n');
  std::vector<std::u32string> lines = SplitLines(s, false);
  std::u32string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) {
        rv.push_back(U'\n');
        rv += ind;
      }
      rv += lines[k];
    }
  } else {
    rv = lines.empty() ? std::u32string() : lines[0];
    for (size_t k = 1; k < lines.size(); ++k) {
      rv.push_back(U'\n');
      if (!lines[k].empty()) rv += ind;
      rv += lines[k];
    }
  }
  if (first) rv = ind + rv;
  std::string out = Encode(rv);
  in.CheckSize(out.size(), line);
  return Value::Str(std::move(out));
}

Value FilterStripTags(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "striptags", {});
  std::string s = Str(v), out;
  for (size_t k = 0; k < s.size();) {
    if (s.compare(k, 4, "<!--") == 0) {
      const size_t e = s.find("-->", k + 4);
      if (e != std::string::npos) {
        k = e + 3;
        continue;
      }
    }
    if (s[k] == '<') {
      const size_t e = s.find('>', k + 1);
      if (e != std::string::npos) {
        k = e + 1;
        continue;
      }
    }
    out.push_back(s[k++]);
  }
  List words = SplitString(out, nullptr, -1, line);
  std::string joined;
  for (size_t k = 0; k < words.size(); ++k) {
    if (k) joined.push_back(' ');
    joined += words[k].s;
  }
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&lt;", "<"},  {"&gt;", ">"},   {"&quot;", "\""},       {"&#34;", "\""},
      {"&#39;", "'"}, {"&apos;", "'"}, {"&nbsp;", "\xC2\xA0"}, {"&amp;", "&"}};
  for (const auto& [from, to] : kEntities) joined = ReplaceAll(joined, from, to, -1, in, line);
  return Value::Str(std::move(joined));
}

Value FilterAttr(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "attr", {"name"});
  return in.GetAttr(v, Str(args.Required(0)), line);
}

Value FilterFormat(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  if (!a.kw.empty() && !a.pos.empty()) {
    Fail(line, "can't handle positional and keyword arguments at the same time");
  }
  Value arg;
  if (!a.kw.empty()) {
    auto d = std::make_shared<Dict>();
    for (auto& [k, x] : a.kw) d->Set(Value::Str(k), x);
    arg = Value::MakeDict(std::move(d));
  } else {
    arg = Value::MakeList(a.pos, true);
  }
  return Value::Str(in.PercentFormat(Str(v), arg, line));
}

Value FilterCenter(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "center", {"width"});
  Value w = args.Or(0, Value::Int(80));
  CallArgs c;
  c.line = line;
  c.pos.push_back(w);
  Value m;
  in.FindMethod(Value::Str(Str(v)), "center", line, &m);
  return in.Call(m, c, line);
}

Value FilterWordCount(Interp&, const std::string&, Value v, CallArgs& a) {
  Args args(a, "wordcount", {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : Decode(Str(v))) {
    const bool w = PyIsAlpha(c) || PyIsDigit(c) || c == '_' || c > 0x7F;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::Int(n);
}

Value FilterBatch(Interp& in, const std::string&, Value v, CallArgs& a) {
  const int line = a.line;
  Args args(a, "batch", {"linecount", "fill_with"});
  const Value& n = args.Required(0);
  if (!n.is_int() || n.as_int() <= 0) Fail(line, "batch(): linecount must be a positive integer");
  const Value* fill = args.Get(1);
  List out, cur;
  for (auto& item : in.Iterate(v, line)) {
    cur.push_back(std::move(item));
    if (static_cast<int64_t>(cur.size()) == n.as_int()) {
      out.push_back(Value::MakeList(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill) {
      while (static_cast<int64_t>(cur.size()) < n.as_int()) cur.push_back(*fill);
    }
    out.push_back(Value::MakeList(std::move(cur)));
  }
  return Value::MakeList(std::move(out));
}

Value FilterPprint(Interp&, const std::string&, Value v, CallArgs& a) {
  Args args(a, "pprint", {});
  return Value::Str(Repr(v));
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"safe", FilterConvert},
    {"list", FilterConvert},
    {"string", FilterConvert},
    {"forceescape", FilterConvert},
    {"escape", FilterConvert},
    {"e", FilterConvert},
    {"trim", FilterTrim},
    {"upper", FilterCase},
    {"lower", FilterCase},
    {"capitalize", FilterCase},
    {"title", FilterCase},
    {"length", FilterLength},
    {"count", FilterLength},
    {"default", FilterDefault},
    {"d", FilterDefault},
    {"join", FilterJoin},
    {"replace", FilterReplace},
    {"items", FilterItems},
    {"first", FilterFirstLast},
    {"last", FilterFirstLast},
    {"reverse", FilterReverse},
    {"int", FilterInt},
    {"float", FilterFloat},
    {"abs", FilterAbs},
    {"round", FilterRound},
    {"tojson", FilterToJson},
    {"map", FilterMap},
    {"select", FilterSelect},
    {"reject", FilterSelect},
    {"selectattr", FilterSelect},
    {"rejectattr", FilterSelect},
    {"sort", FilterSort},
    {"dictsort", FilterDictSort},
    {"unique", FilterUnique},
    {"min", FilterMinMax},
    {"max", FilterMinMax},
    {"sum", FilterSum},
    {"indent", FilterIndent},
    {"striptags", FilterStripTags},
    {"attr", FilterAttr},
    {"format", FilterFormat},
    {"center", FilterCenter},
    {"wordcount", FilterWordCount},
    {"batch", FilterBatch},
    {"pprint", FilterPprint},
};

}  // namespace

Value Interp::ApplyFilter(const std::string& name, Value v, CallArgs& a) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return f.fn(*this, name, std::move(v), a);
  }
  Fail(a.line, "unsupported filter '" + name + "'", StatusCode::kUnimplemented);
}

bool IsFilterName(std::string_view name) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return true;
  }
  return false;
}

}  // namespace rvec::jinja::internal
