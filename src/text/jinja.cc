// Jinja2 subset interpreter for chat templates: lexer, parser, Python-like values and evaluator.
//
// Internally errors travel as a private exception type (the evaluator is deeply recursive and
// nearly every step can fail); Parse() and Render() catch it and return a Status, so nothing
// escapes this file.
#include "text/jinja.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace rvec::jinja {
namespace {

// ------------------------------------------------------------------------------------------------
// Errors

struct JinjaError {
  std::string message;
  int line = 0;
  int column = 0;  // 0: unknown
  StatusCode code = StatusCode::kInvalidArgument;
};

[[noreturn]] void Fail(int line, std::string message,
                       StatusCode code = StatusCode::kInvalidArgument) {
  throw JinjaError{std::move(message), line, 0, code};
}

// ------------------------------------------------------------------------------------------------
// UTF-8 and Python string helpers

// Invalid bytes decode to U+DC80+byte (Python's surrogateescape), so decode/encode round-trips.
std::u32string Decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) ok = false;
    }
    if (!ok) {
      out.push_back(0xDC00 + c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(std::string& out, char32_t c) {
  if (c >= 0xDC80 && c <= 0xDCFF) {
    out.push_back(static_cast<char>(c - 0xDC00));
  } else if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string Encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(out, c);
  return out;
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

size_t CodepointCount(std::string_view s) {
  if (IsAscii(s)) return s.size();
  return Decode(s).size();
}

// Python's str.isspace().
bool IsPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.splitlines() line boundaries.
bool IsLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

char32_t AsciiUpper(char32_t c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }
char32_t AsciiLower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Case mapping beyond ASCII for the common alphabetic blocks (Latin-1, Latin Extended-A, Greek,
// Cyrillic); other scripts are returned unchanged.
char32_t PyUpper(char32_t c) {
  if (c < 0x80) return AsciiUpper(c);
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    const bool odd_is_lower = (c < 0x138) || (c > 0x148 && c < 0x178);
    if (odd_is_lower ? (c & 1) : !(c & 1)) return c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 0x20;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 0x20;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  return c;
}

char32_t PyLower(char32_t c) {
  if (c < 0x80) return AsciiLower(c);
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    const bool odd_is_lower = (c < 0x138) || (c > 0x148 && c < 0x178);
    if (odd_is_lower ? !(c & 1) : (c & 1)) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

bool PyIsUpper(char32_t c) { return PyLower(c) != c; }
bool PyIsLower(char32_t c) { return PyUpper(c) != c; }
bool PyIsAlpha(char32_t c) {
  return (c < 0x80) ? std::isalpha(static_cast<int>(c)) != 0 : (PyUpper(c) != PyLower(c));
}
bool PyIsDigit(char32_t c) { return c >= '0' && c <= '9'; }

std::string MapChars(std::string_view s, char32_t (*fn)(char32_t)) {
  std::u32string u = Decode(s);
  for (char32_t& c : u) c = fn(c);
  return Encode(u);
}

// str.upper(): also the one common multi-character mapping, U+00DF (sharp s) -> "SS".
std::string UpperStr(std::string_view s) {
  std::u32string u = Decode(s), out;
  out.reserve(u.size());
  for (char32_t c : u) {
    if (c == 0xDF) {
      out += U"SS";
    } else {
      out.push_back(PyUpper(c));
    }
  }
  return Encode(out);
}

// str.lower(): capital sigma becomes final sigma at the end of a word, as Python does.
std::string LowerStr(std::string_view s) {
  std::u32string u = Decode(s);
  std::u32string out(u.size(), 0);
  auto cased = [](char32_t c) { return PyUpper(c) != PyLower(c); };
  for (size_t k = 0; k < u.size(); ++k) {
    if (u[k] == 0x3A3) {
      const bool before = k > 0 && cased(u[k - 1]);
      const bool after = k + 1 < u.size() && cased(u[k + 1]);
      out[k] = (before && !after) ? 0x3C2 : 0x3C3;
    } else {
      out[k] = PyLower(u[k]);
    }
  }
  return Encode(out);
}

// Whitespace as Python's str.strip() with no argument sees it.
std::string_view RStripSpace(std::string_view s) {
  std::u32string u = Decode(s);
  size_t end = u.size();
  while (end > 0 && IsPySpace(u[end - 1])) --end;
  if (end == u.size()) return s;
  return s.substr(0, Encode(u.substr(0, end)).size());
}

// Length in bytes of the Python-whitespace prefix of s.
size_t LeadingSpaceBytes(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!IsPySpace(c)) break;
      ++i;
      continue;
    }
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    std::u32string u = Decode(s.substr(i, std::min(len, s.size() - i)));
    if (u.size() != 1 || !IsPySpace(u[0])) break;
    i += len;
  }
  return i;
}

bool AllSpace(std::string_view s) { return LeadingSpaceBytes(s) == s.size(); }

// ------------------------------------------------------------------------------------------------
// Values

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

Value MakeCallable(std::string name, std::function<Value(Interp&, CallArgs&)> fn) {
  Value v;
  v.type = Type::kCallable;
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  v.fn = std::move(c);
  return v;
}

std::string TypeName(const Value& v) {
  switch (v.type) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "NoneType";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kFloat:
      return "float";
    case Type::kString:
      return "str";
    case Type::kList:
      return v.is_tuple ? "tuple" : "list";
    case Type::kDict:
      return "dict";
    case Type::kNamespace:
      return "Namespace";
    case Type::kCallable:
      return "function";
  }
  return "object";
}

std::string UndefinedMessage(const Value& v) {
  return v.s.empty() ? std::string("value is undefined") : v.s;
}

bool Truthy(const Value& v) {
  switch (v.type) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
      return v.b;
    case Type::kInt:
      return v.i != 0;
    case Type::kFloat:
      return v.f != 0.0;
    case Type::kString:
      return !v.s.empty();
    case Type::kList:
      return !v.list->empty();
    case Type::kDict:
      return !v.dict->items.empty();
    case Type::kNamespace:
    case Type::kCallable:
      return true;
  }
  return false;
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.type == Type::kFloat || b.type == Type::kFloat) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kUndefined:
    case Type::kNone:
      return true;
    case Type::kString:
      return a.s == b.s;
    case Type::kList: {
      if (a.is_tuple != b.is_tuple || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) {
        if (!Equal((*a.list)[k], (*b.list)[k])) return false;
      }
      return true;
    }
    case Type::kDict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* other = b.dict->Find(k);
        if (other == nullptr || !Equal(v, *other)) return false;
      }
      return true;
    }
    case Type::kNamespace:
      return a.ns == b.ns;
    case Type::kCallable:
      return a.fn == b.fn;
    default:
      return false;
  }
}

// Python's ordering (<): numbers, strings by code point (UTF-8 byte order agrees), sequences.
int Compare(const Value& a, const Value& b, int line, const char* op) {
  if (a.is_number() && b.is_number()) {
    if (a.type == Type::kFloat || b.type == Type::kFloat) {
      const double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    const int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.s.compare(b.s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple == b.is_tuple) {
    const size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (Equal((*a.list)[k], (*b.list)[k])) continue;
      return Compare((*a.list)[k], (*b.list)[k], line, op);
    }
    return a.list->size() < b.list->size() ? -1 : (a.list->size() > b.list->size() ? 1 : 0);
  }
  if (a.undefined() || b.undefined()) {
    Fail(line, UndefinedMessage(a.undefined() ? a : b));
  }
  Fail(line, "'" + std::string(op) + "' not supported between instances of '" + TypeName(a) +
                 "' and '" + TypeName(b) + "'");
}

// ------------------------------------------------------------------------------------------------
// Python repr/str

std::string FormatInt(int64_t v) { return std::to_string(v); }

}  // namespace

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci: [-]d[.ddd]e(+|-)XX
  bool neg = false;
  size_t pos = 0;
  if (sci[0] == '-') {
    neg = true;
    pos = 1;
  }
  const size_t epos = sci.find('e');
  std::string digits;
  for (size_t k = pos; k < epos; ++k) {
    if (sci[k] != '.') digits.push_back(sci[k]);
  }
  const int exp = std::stoi(sci.substr(epos + 1));
  const int decpt = exp + 1;  // value = 0.digits * 10^decpt
  std::string out = neg ? "-" : "";
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(decpt) - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += ".";
      out += digits.substr(static_cast<size_t>(decpt));
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
      out += ".";
      out += digits.substr(1);
    }
    const int e = decpt - 1;
    out += e < 0 ? "e-" : "e+";
    const int ae = std::abs(e);
    if (ae < 10) out += "0";
    out += std::to_string(ae);
  }
  return out;
}

namespace {

bool PyIsPrintable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
      (c >= 0x205F && c <= 0x2064) || c == 0x3000 || c == 0xFEFF)
    return false;
  if ((c >= 0xD800 && c <= 0xDFFF) || (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xFFF9 && c <= 0xFFFB))
    return false;
  if (c >= 0xF0000) return false;
  return true;
}

std::string ReprString(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : Decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!PyIsPrintable(c)) {
      char buf[16];
      if (c <= 0xFF) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c <= 0xFFFF) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      AppendUtf8(out, c);
    }
  }
  out.push_back(quote);
  return out;
}

void AppendRepr(std::string& out, const Value& v, int depth = 0);

// Python str(): what {{ value }} prints.
// Only namespaces can hold themselves; the depth bound turns such a cycle into an error.
constexpr int kMaxPrintDepth = 200;

void AppendStr(std::string& out, const Value& v, int depth = 0) {
  if (depth > kMaxPrintDepth) {
    Fail(0, "value nested too deeply to print (a namespace holding itself?)");
  }
  switch (v.type) {
    case Type::kUndefined:
      return;
    case Type::kNone:
      out += "None";
      return;
    case Type::kBool:
      out += v.b ? "True" : "False";
      return;
    case Type::kInt:
      out += FormatInt(v.i);
      return;
    case Type::kFloat:
      out += PythonFloatRepr(v.f);
      return;
    case Type::kString:
      out += v.s;
      return;
    case Type::kList: {
      out += v.is_tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        AppendRepr(out, (*v.list)[k], depth + 1);
      }
      if (v.is_tuple && v.list->size() == 1) out += ",";
      out += v.is_tuple ? ")" : "]";
      return;
    }
    case Type::kDict: {
      out += "{";
      bool first = true;
      for (const auto& [k, val] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        AppendRepr(out, k, depth + 1);
        out += ": ";
        AppendRepr(out, val, depth + 1);
      }
      out += "}";
      return;
    }
    case Type::kNamespace: {
      out += "<Namespace ";
      AppendStr(out, Value::MakeDict(std::make_shared<const Dict>(v.ns->attrs)), depth + 1);
      out += ">";
      return;
    }
    case Type::kCallable:
      out += "<function " + v.fn->name + ">";
      return;
  }
}

void AppendRepr(std::string& out, const Value& v, int depth) {
  if (v.is_string()) {
    out += ReprString(v.s);
  } else {
    AppendStr(out, v, depth);
  }
}

std::string Str(const Value& v) {
  if (v.is_string()) return v.s;
  std::string out;
  AppendStr(out, v);
  return out;
}

std::string Repr(const Value& v) {
  std::string out;
  AppendRepr(out, v);
  return out;
}

// ------------------------------------------------------------------------------------------------
// JSON in and out (transformers' tojson is json.dumps(..., ensure_ascii=False))

Value FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value::Int(static_cast<int64_t>(u));
      }
      return Value::Float(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::Str(j.get_ref<const std::string&>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJson(e));
      return Value::MakeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      d->items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        d->items.emplace_back(Value::Str(it.key()), FromJson(it.value()));
      }
      return Value::MakeDict(std::move(d));
    }
    default:
      return Value::None();
  }
}

void AppendJsonString(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : Decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        char buf[16];
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x",
                          0xD800 + static_cast<unsigned>(v >> 10),
                          0xDC00 + static_cast<unsigned>(v & 0x3FF));
          } else {
            std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          AppendUtf8(out, c);
        }
      }
    }
  }
  out.push_back('"');
}

struct JsonStyle {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};

std::string JsonFloat(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
  return PythonFloatRepr(f);
}

void DumpJson(std::string& out, const Value& v, const JsonStyle& st, int depth, int line) {
  if (depth > 500) Fail(line, "tojson: value nested too deeply");
  auto newline = [&](int d) {
    out.push_back('\n');
    for (int k = 0; k < d; ++k) out += st.indent;
  };
  switch (v.type) {
    case Type::kNone:
      out += "null";
      return;
    case Type::kBool:
      out += v.b ? "true" : "false";
      return;
    case Type::kInt:
      out += FormatInt(v.i);
      return;
    case Type::kFloat:
      out += JsonFloat(v.f);
      return;
    case Type::kString:
      AppendJsonString(out, v.s, st.ensure_ascii);
      return;
    case Type::kList: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        if (st.has_indent) newline(depth + 1);
        DumpJson(out, (*v.list)[k], st, depth + 1, line);
      }
      if (st.has_indent) newline(depth);
      out.push_back(']');
      return;
    }
    case Type::kDict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      auto key_string = [&](const Value& k) -> std::string {
        switch (k.type) {
          case Type::kString:
            return k.s;
          case Type::kBool:
            return k.b ? "true" : "false";
          case Type::kNone:
            return "null";
          case Type::kInt:
            return FormatInt(k.i);
          case Type::kFloat:
            return JsonFloat(k.f);
          default:
            Fail(line, "tojson: keys must be str, int, float, bool or None, not " + TypeName(k));
        }
      };
      if (st.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [&](const auto* a, const auto* b) {
          return Compare(a->first, b->first, line, "<") < 0;
        });
      }
      out.push_back('{');
      bool first = true;
      for (const auto* kv : items) {
        if (!first) out += st.item_sep;
        first = false;
        if (st.has_indent) newline(depth + 1);
        AppendJsonString(out, key_string(kv->first), st.ensure_ascii);
        out += st.key_sep;
        DumpJson(out, kv->second, st, depth + 1, line);
      }
      if (st.has_indent) newline(depth);
      out.push_back('}');
      return;
    }
    default:
      Fail(line, "tojson: Object of type " + TypeName(v) + " is not JSON serializable");
  }
}

// ------------------------------------------------------------------------------------------------
// Lexer

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

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  std::vector<Token> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = std::string::npos;
      for (size_t k = pos_; k + 1 < src_.size(); ++k) {
        if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) {
          tag = k;
          break;
        }
      }
      if (tag == std::string::npos) {
        Emit(Tok::kText, src_.substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      const char kind = src_[tag + 1];
      char sign = 0;
      if (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) {
        sign = src_[tag + 2];
      }
      std::string_view text(src_.data() + pos_, tag - pos_);
      if (sign == '-') {
        text = RStripSpace(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces between the line start and a block or comment tag.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && AllSpace(text.substr(l_pos))) {
          text = text.substr(0, l_pos);
        }
      }
      if (!text.empty()) Emit(Tok::kText, std::string(text), pos_);
      const size_t body = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        size_t end = src_.find("#}", body);
        if (end == std::string::npos) ErrorAt(tag, "unclosed comment ('{#' without '#}')");
        const char before = end > body ? src_[end - 1] : 0;
        pos_ = end + 2;
        AfterTagEnd(before, /*trim=*/true, &line_starting);
        continue;
      }
      if (kind == '%' && TryRaw(tag, body, &line_starting)) continue;
      Emit(kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", tag);
      pos_ = body;
      LexTagBody(kind == '{', &line_starting);
    }
    Emit(Tok::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void ErrorAt(size_t pos, std::string message) {
    auto [line, col] = LineCol(pos);
    throw JinjaError{std::move(message), line, col, StatusCode::kInvalidArgument};
  }

  std::pair<int, int> LineCol(size_t pos) {
    // Tokens are produced in order, so advance a cursor instead of rescanning.
    if (pos < cursor_pos_) {
      cursor_pos_ = 0;
      cursor_line_ = 1;
      cursor_line_start_ = 0;
    }
    for (; cursor_pos_ < pos && cursor_pos_ < src_.size(); ++cursor_pos_) {
      if (src_[cursor_pos_] == '\n') {
        ++cursor_line_;
        cursor_line_start_ = cursor_pos_ + 1;
      }
    }
    return {cursor_line_, static_cast<int>(pos - cursor_line_start_) + 1};
  }

  Token& Emit(Tok kind, std::string value, size_t pos) {
    auto [line, col] = LineCol(pos);
    tokens_.push_back(Token{kind, std::move(value), line, col, 0, 0});
    return tokens_.back();
  }

  // After '%}' / '#}' (trim_blocks drops one newline), '-%}' (drops all whitespace) or '+%}'.
  void AfterTagEnd(char before_end, bool trim, bool* line_starting) {
    if (before_end == '-') {
      const size_t n = LeadingSpaceBytes(std::string_view(src_).substr(pos_));
      pos_ += n;
      *line_starting = n > 0 && src_[pos_ - 1] == '\n';
    } else if (before_end != '+' && trim && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      *line_starting = true;
    } else {
      *line_starting = false;
    }
  }

  static bool IsSpaceAscii(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  }

  // {% raw %}...{% endraw %}: the body is literal text.
  bool TryRaw(size_t tag, size_t body, bool* line_starting) {
    size_t p = body;
    while (p < src_.size() && IsSpaceAscii(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && IsSpaceAscii(src_[p])) ++p;
    bool strip_after = false;
    if (src_.compare(p, 3, "-%}") == 0) {
      strip_after = true;
      p += 3;
    } else if (src_.compare(p, 2, "%}") == 0) {
      p += 2;
    } else {
      return false;
    }
    if (strip_after) p += LeadingSpaceBytes(std::string_view(src_).substr(p));
    // Find {%[-+]? endraw [-+]?%}
    size_t search = p;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) ErrorAt(tag, "'raw' block is never closed (missing endraw)");
      size_t q = open + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      while (q < src_.size() && IsSpaceAscii(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && IsSpaceAscii(src_[q])) ++q;
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string_view text(src_.data() + p, open - p);
      if (sign == '-') {
        text = RStripSpace(text);
      } else if (sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if (l_pos > 0 && AllSpace(text.substr(l_pos))) {
          text = text.substr(0, l_pos);
        }
      }
      if (!text.empty()) Emit(Tok::kText, std::string(text), p);
      pos_ = q + 2;
      AfterTagEnd(end_sign, /*trim=*/true, line_starting);
      return true;
    }
  }

  void LexTagBody(bool is_var, bool* line_starting) {
    const size_t start = pos_;
    // Like Jinja's lexer, an end marker inside open brackets is part of the expression
    // ({{ {'a': {'b': 1}}}} is a dict, not an early '}}').
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && IsSpaceAscii(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) {
        ErrorAt(start - 2,
                is_var ? "unclosed '{{' (missing '}}')" : "unclosed '{%' (missing '%}')");
      }
      const std::string_view rest = std::string_view(src_).substr(pos_);
      if (depth > 0) {
        const size_t before = tokens_.size();
        LexToken();
        if (tokens_.size() > before && tokens_.back().kind == Tok::kOp) {
          const std::string& op = tokens_.back().value;
          if (op == "(" || op == "[" || op == "{") ++depth;
          if (op == ")" || op == "]" || op == "}") --depth;
        }
        continue;
      }
      if (is_var) {
        if (rest.starts_with("-}}")) {
          Emit(Tok::kVarEnd, "", pos_);
          pos_ += 3;
          AfterTagEnd('-', false, line_starting);
          return;
        }
        if (rest.starts_with("}}")) {
          Emit(Tok::kVarEnd, "", pos_);
          pos_ += 2;
          *line_starting = false;
          return;
        }
      } else {
        if (rest.starts_with("-%}") || rest.starts_with("+%}")) {
          Emit(Tok::kBlockEnd, "", pos_);
          pos_ += 3;
          AfterTagEnd(rest[0], true, line_starting);
          return;
        }
        if (rest.starts_with("%}")) {
          Emit(Tok::kBlockEnd, "", pos_);
          pos_ += 2;
          AfterTagEnd(0, true, line_starting);
          return;
        }
      }
      const size_t before = tokens_.size();
      LexToken();
      if (tokens_.size() > before && tokens_.back().kind == Tok::kOp) {
        const std::string& op = tokens_.back().value;
        if (op == "(" || op == "[" || op == "{") ++depth;
      }
    }
  }

  void LexToken() {
    const size_t start = pos_;
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = pos_ + 1;
      while (e < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
        ++e;
      }
      Emit(Tok::kName, src_.substr(pos_, e - pos_), start);
      pos_ = e;
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      LexNumber();
      return;
    }
    if (c == '\'' || c == '"') {
      LexString(c);
      return;
    }
    static constexpr const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                           "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                           ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
    for (const char* op : kOps) {
      const size_t n = std::strlen(op);
      if (src_.compare(pos_, n, op) == 0) {
        Emit(Tok::kOp, op, start);
        pos_ += n;
        return;
      }
    }
    ErrorAt(pos_, std::string("unexpected character '") + c + "'");
  }

  void LexNumber() {
    const size_t start = pos_;
    std::string digits;
    auto take_digits = [&] {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
                                    (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
                                     std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))) {
        if (src_[pos_] != '_') digits.push_back(src_[pos_]);
        ++pos_;
      }
    };
    // 0x / 0o / 0b integers.
    if (src_[pos_] == '0' && pos_ + 2 < src_.size() &&
        std::strchr("xXoObB", src_[pos_ + 1]) != nullptr) {
      const char base_char = static_cast<char>(std::tolower(src_[pos_ + 1]));
      const int base = base_char == 'x' ? 16 : base_char == 'o' ? 8 : 2;
      size_t e = pos_ + 2;
      std::string body;
      while (e < src_.size() &&
             (std::isxdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
        if (src_[e] != '_') body.push_back(src_[e]);
        ++e;
      }
      int64_t v = 0;
      auto res = std::from_chars(body.data(), body.data() + body.size(), v, base);
      if (body.empty() || res.ec != std::errc() || res.ptr != body.data() + body.size()) {
        ErrorAt(start, "invalid integer literal");
      }
      pos_ = e;
      Token& t = Emit(Tok::kInt, src_.substr(start, e - start), start);
      t.ival = v;
      return;
    }
    take_digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      digits.push_back('.');
      ++pos_;
      take_digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        is_float = true;
        digits.push_back('e');
        digits.append(src_, pos_ + 1, q - pos_ - 1);
        pos_ = q;
        take_digits();
      }
    }
    if (is_float) {
      double v = 0;
      std::from_chars(digits.data(), digits.data() + digits.size(), v);
      Token& t = Emit(Tok::kFloat, digits, start);
      t.fval = v;
    } else {
      int64_t v = 0;
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (res.ec != std::errc()) ErrorAt(start, "integer literal out of 64-bit range");
      Token& t = Emit(Tok::kInt, digits, start);
      t.ival = v;
    }
  }

  void LexString(char quote) {
    const size_t start = pos_;
    size_t e = pos_ + 1;
    while (e < src_.size() && src_[e] != quote) {
      if (src_[e] == '\\') ++e;
      ++e;
    }
    if (e >= src_.size()) ErrorAt(start, "unterminated string literal");
    Emit(Tok::kString, Unescape(std::string_view(src_).substr(pos_ + 1, e - pos_ - 1), start),
         start);
    pos_ = e + 1;
  }

  // Python's "unicode-escape" decoding as Jinja applies it to string literals.
  std::string Unescape(std::string_view s, size_t at) {
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] != '\\' || k + 1 >= s.size()) {
        out.push_back(s[k]);
        continue;
      }
      const char e = s[++k];
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (k + n >= s.size()) {
            ErrorAt(at, std::string("truncated \\") + e + " escape in string literal");
          }
          uint32_t v = 0;
          auto res = std::from_chars(s.data() + k + 1, s.data() + k + 1 + n, v, 16);
          if (res.ec != std::errc() || res.ptr != s.data() + k + 1 + n || v > 0x10FFFF) {
            ErrorAt(at, std::string("invalid \\") + e + " escape in string literal");
          }
          AppendUtf8(out, v);
          k += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = 0;
            size_t n = 0;
            while (n < 3 && k + n < s.size() && s[k + n] >= '0' && s[k + n] <= '7') {
              v = v * 8 + static_cast<uint32_t>(s[k + n] - '0');
              ++n;
            }
            AppendUtf8(out, v);
            k += n - 1;
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  std::string src_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
  size_t cursor_pos_ = 0;
  int cursor_line_ = 1;
  size_t cursor_line_start_ = 0;
};

// ------------------------------------------------------------------------------------------------
// AST

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

ExprPtr MakeExpr(EK kind, int line) {
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

// ------------------------------------------------------------------------------------------------
// Parser

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
            std::string expected;
            for (auto e : ends) {
              if (!expected.empty()) expected += " or ";
              expected += "'" + std::string(e) + "'";
            }
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
            std::string expected;
            for (auto e : ends) {
              if (!expected.empty()) expected += " or ";
              expected += "'" + std::string(e) + "'";
            }
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
    if (n == "if") {
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
    if (n == "for") {
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
    if (n == "set") {
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
    if (n == "macro") {
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
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) ErrorAt(t, "'" + n + "' outside of a for loop");
      s->kind = n == "break" ? SK::kBreak : SK::kContinue;
      ExpectBlockEnd();
      return s;
    }
    if (n == "with") {
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
    if (n == "filter") {
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
    if (n == "generation") {
      // transformers' AssistantTracker extension: marks assistant text, renders unchanged.
      s->kind = SK::kBody;
      ExpectBlockEnd();
      std::string end;
      s->bodies.push_back(ParseBody({"endgeneration"}, &end, "generation", line));
      Next();
      ExpectBlockEnd();
      return s;
    }
    static constexpr const char* kEndTags[] = {"endif",  "endfor",        "else",    "elif",
                                               "endset", "endmacro",      "endwith", "endfilter",
                                               "endraw", "endgeneration", "endcall", "endblock"};
    for (const char* e : kEndTags) {
      if (n == e) ErrorAt(t, "unexpected '" + n + "' (no open block it could close)");
    }
    ErrorAt(t, "unsupported tag '" + n + "'");
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

// ------------------------------------------------------------------------------------------------
// Interpreter

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

}  // namespace

struct Template::Program {
  Body body;
  Limits limits;
};

namespace {

// Code points of a string value (fast path for ASCII).
std::u32string Chars(const Value& v) { return Decode(v.s); }

// Python slice index normalisation.
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

  void Run(const nlohmann::ordered_json& variables) {
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

  // ---- helpers used by builtins ----
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

 private:
  // ================= statements =================

  Flow ExecBody(const Body& body, const FramePtr& frame, std::string& out) {
    for (const auto& s : body) {
      Flow f = Exec(*s, frame, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  void Append(std::string& out, std::string_view s, int line) {
    CheckSize(out.size() + s.size(), line);
    out.append(s);
  }

  Flow Exec(const Stmt& s, const FramePtr& frame, std::string& out) {
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

  Value EvalWithInput(const Expr& chain, const FramePtr& frame, Value input) {
    Value saved = std::move(input_);
    input_ = std::move(input);
    Value v = Eval(chain, frame);
    input_ = std::move(saved);
    return v;
  }

  void Unpack(const std::vector<std::string>& targets, const Value& v, Frame* frame, int line) {
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

  void Assign(const Stmt& s, const FramePtr& frame, Value v) {
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

  Flow ExecFor(const Stmt& s, const FramePtr& frame, std::string& out) {
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

  Value MakeLoop(const std::shared_ptr<const List>& items, int64_t k, int64_t n) {
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
  Value MakeMacro(const Stmt& s, const FramePtr& closure) {
    const Stmt* macro = &s;
    macro_frames_.push_back(closure);
    std::weak_ptr<Frame> weak = closure;
    return MakeCallable(s.name, [macro, weak](Interp& in, CallArgs& a) -> Value {
      FramePtr f = weak.lock();
      if (!f) Fail(a.line, "macro '" + macro->name + "' called after its scope ended");
      return in.CallMacro(*macro, f, a);
    });
  }

 public:
  Value CallMacro(const Stmt& m, const FramePtr& closure, CallArgs& a) {
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

  // ================= expressions =================

  List Iterate(const Value& v, int line) {
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

  Value Eval(const Expr& e, const FramePtr& frame) {
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
        return ApplyFilter(e.name, std::move(input), a, frame);
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
          Fail(e.line, std::string("bad operand type for unary ") +
                           (e.kind == EK::kNeg ? "-" : "+") + ": '" + TypeName(v) + "'");
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

  CallArgs EvalArgs(const Expr& e, const FramePtr& frame, size_t first) {
    CallArgs a;
    a.line = e.line;
    for (size_t k = first; k < e.args.size(); ++k) a.pos.push_back(Eval(*e.args[k], frame));
    for (const auto& [key, ex] : e.kwargs) a.kw.emplace_back(key, Eval(*ex, frame));
    return a;
  }

  Value Call(const Value& callee, CallArgs& a, int line) {
    if (callee.type == Type::kCallable) return callee.fn->fn(*this, a);
    if (callee.undefined()) Fail(line, UndefinedMessage(callee));
    Fail(line, "'" + TypeName(callee) + "' object is not callable");
  }

  // ---- attribute and item access (Jinja's sandboxed getattr / getitem) ----

  Value GetAttr(const Value& obj, const std::string& name, int line) {
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

  Value GetItem(const Value& obj, const Value& key, int line) {
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

  Value Slice(const Value& obj, const Value& a, const Value& b, const Value& c, int line) {
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

  // ---- operators ----

  static bool CheckedMul(int64_t a, int64_t b, int64_t* r) {
    return !__builtin_mul_overflow(a, b, r);
  }

  Value BinaryOp(const std::string& op, const Value& l, const Value& r, int line) {
    if (l.undefined()) Fail(line, UndefinedMessage(l));
    if (r.undefined()) Fail(line, UndefinedMessage(r));
    auto unsupported = [&]() -> Value {
      Fail(line, "unsupported operand type(s) for " + op + ": '" + TypeName(l) + "' and '" +
                     TypeName(r) + "'");
    };
    if (l.is_number() && r.is_number()) {
      const bool fl = l.type == Type::kFloat || r.type == Type::kFloat;
      if (op == "/") {
        if (r.as_float() == 0) Fail(line, "division by zero");
        return Value::Float(l.as_float() / r.as_float());
      }
      if (fl) {
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
        return unsupported();
      }
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
      return unsupported();
    }
    if (op == "+") {
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
      return unsupported();
    }
    if (op == "*") {
      const Value* seq = nullptr;
      const Value* count = nullptr;
      if ((l.is_string() || l.is_list()) && r.is_int()) {
        seq = &l;
        count = &r;
      } else if ((r.is_string() || r.is_list()) && l.is_int()) {
        seq = &r;
        count = &l;
      }
      if (seq == nullptr) return unsupported();
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
    if (op == "%" && l.is_string()) return Value::Str(PercentFormat(l.s, r, line));
    return unsupported();
  }

  bool Contains(const Value& container, const Value& item, int line) {
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

  bool CompareOp(const std::string& op, const Value& l, const Value& r, int line) {
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
  std::string PercentFormat(const std::string& fmt, const Value& arg, int line) {
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
        if (v == nullptr)
          Fail(line, "format key '" + fmt.substr(k + 1, close - k - 1) + "' missing");
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

  // ---- methods on values (str, dict, list) ----

  bool FindMethod(const Value& obj, const std::string& name, int line, Value* out);

  // ---- filters and tests ----

  Value ApplyFilter(const std::string& name, Value input, CallArgs& a, const FramePtr& frame);
  bool ApplyTest(const std::string& name, const Value& v, CallArgs& a);

  // Attribute lookup for map/selectattr/sort(attribute=...): dotted paths, integer parts index.
  Value GetPath(const Value& obj, const std::string& path, int line) {
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

std::string RequireString(const Value& v, const char* what, int line) {
  if (!v.is_string()) {
    if (v.undefined()) Fail(line, UndefinedMessage(v));
    Fail(line, std::string(what) + " requires a string, not '" + TypeName(v) + "'");
  }
  return v.s;
}

// str.strip family: chars=None strips Python whitespace.
std::string StripChars(const std::string& s, const Value* chars, bool left, bool right) {
  std::u32string u = Decode(s);
  std::u32string set;
  const bool ws = chars == nullptr || chars->none();
  if (!ws) set = Decode(chars->s);
  auto in_set = [&](char32_t c) { return ws ? IsPySpace(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left) {
    while (b < e && in_set(u[b])) ++b;
  }
  if (right) {
    while (e > b && in_set(u[e - 1])) --e;
  }
  if (b == 0 && e == u.size()) return s;
  return Encode(u.substr(b, e - b));
}

List SplitString(const std::string& s, const Value* sep, int64_t maxsplit, int line) {
  List out;
  if (sep == nullptr || sep->none()) {
    std::u32string u = Decode(s);
    size_t k = 0;
    int64_t splits = 0;
    while (k < u.size()) {
      while (k < u.size() && IsPySpace(u[k])) ++k;
      if (k >= u.size()) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        size_t e = u.size();
        while (e > k && IsPySpace(u[e - 1])) --e;
        out.push_back(Value::Str(Encode(u.substr(k, e - k))));
        break;
      }
      size_t e = k;
      while (e < u.size() && !IsPySpace(u[e])) ++e;
      out.push_back(Value::Str(Encode(u.substr(k, e - k))));
      ++splits;
      k = e;
    }
    return out;
  }
  if (!sep->is_string()) Fail(line, "must be str or None, not " + TypeName(*sep));
  if (sep->s.empty()) Fail(line, "empty separator");
  size_t start = 0;
  int64_t splits = 0;
  while (true) {
    const size_t at =
        (maxsplit >= 0 && splits >= maxsplit) ? std::string::npos : s.find(sep->s, start);
    if (at == std::string::npos) {
      out.push_back(Value::Str(s.substr(start)));
      return out;
    }
    out.push_back(Value::Str(s.substr(start, at - start)));
    start = at + sep->s.size();
    ++splits;
  }
}

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

std::string Capitalize(const std::string& s) {
  std::u32string u = Decode(s);
  for (size_t k = 0; k < u.size(); ++k) u[k] = k == 0 ? PyUpper(u[k]) : PyLower(u[k]);
  return Encode(u);
}

// Python's str.title(): a letter after a non-letter is uppercased, other letters lowercased.
std::string PyTitle(const std::string& s) {
  std::u32string u = Decode(s);
  bool prev_cased = false;
  for (char32_t& c : u) {
    const bool cased = PyIsAlpha(c);
    if (cased) c = prev_cased ? PyLower(c) : PyUpper(c);
    prev_cased = cased;
  }
  return Encode(u);
}

std::vector<std::u32string> SplitLines(const std::u32string& u, bool keepends) {
  std::vector<std::u32string> lines;
  size_t start = 0, k = 0;
  while (k < u.size()) {
    if (IsLineBreak(u[k])) {
      size_t end = k;
      if (u[k] == '\r' && k + 1 < u.size() && u[k + 1] == '\n') ++k;
      ++k;
      lines.push_back(u.substr(start, (keepends ? k : end) - start));
      start = k;
    } else {
      ++k;
    }
  }
  if (start < u.size()) lines.push_back(u.substr(start));
  return lines;
}

bool Interp::FindMethod(const Value& obj, const std::string& name, int line, Value* out) {
  (void)line;
  auto method = [&](auto fn) {
    Value self = obj;
    *out = MakeCallable(name,
                        [self, fn](Interp& in, CallArgs& a) -> Value { return fn(in, self, a); });
    return true;
  };
  auto unsafe = [&]() {
    const std::string type = TypeName(obj);
    *out = MakeCallable(name, [type, name](Interp&, CallArgs& a) -> Value {
      Fail(a.line, "access to attribute '" + name + "' of '" + type +
                       "' object is unsafe (templates cannot modify values)");
    });
    return true;
  };
  if (obj.is_string()) {
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const bool l = name != "rstrip", r = name != "lstrip";
      return method([l, r](Interp&, const Value& self, CallArgs& a) {
        Args args(a, "strip", {"chars"});
        const Value* chars = args.Get(0);
        if (chars && !chars->none() && !chars->is_string()) {
          Fail(a.line, "strip arg must be None or str");
        }
        return Value::Str(StripChars(self.s, chars, l, r));
      });
    }
    if (name == "split" || name == "rsplit") {
      const bool rsplit = name == "rsplit";
      return method([rsplit](Interp&, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "splitlines") {
      return method([](Interp&, const Value& self, CallArgs& a) {
        Args args(a, "splitlines", {"keepends"});
        List out;
        for (auto& l : SplitLines(Decode(self.s), args.Bool(0, false))) {
          out.push_back(Value::Str(Encode(l)));
        }
        return Value::MakeList(std::move(out));
      });
    }
    if (name == "startswith" || name == "endswith") {
      const bool starts = name == "startswith";
      return method([starts](Interp&, const Value& self, CallArgs& a) {
        Args args(a, starts ? "startswith" : "endswith", {"prefix", "start", "end"});
        const Value& p = args.Required(0);
        Value sub = self;
        if (args.Get(1) || args.Get(2)) {
          std::u32string u = Decode(self.s);
          int64_t s = 0, e = 0, st = 1;
          SliceIndices(static_cast<int64_t>(u.size()), args.Or(1, Value::None()),
                       args.Or(2, Value::None()), Value::None(), a.line, &s, &e, &st);
          sub = Value::Str(
              s < e ? Encode(u.substr(static_cast<size_t>(s), static_cast<size_t>(e - s)))
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
      });
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
        name == "swapcase") {
      return method([name](Interp&, const Value& self, CallArgs& a) {
        Args args(a, name.c_str(), {});
        if (name == "upper") return Value::Str(UpperStr(self.s));
        if (name == "lower") return Value::Str(LowerStr(self.s));
        if (name == "title") return Value::Str(PyTitle(self.s));
        if (name == "capitalize") return Value::Str(Capitalize(self.s));
        return Value::Str(
            MapChars(self.s, [](char32_t c) { return PyIsUpper(c) ? PyLower(c) : PyUpper(c); }));
      });
    }
    if (name == "replace") {
      return method([](Interp& in, const Value& self, CallArgs& a) {
        Args args(a, "replace", {"old", "new", "count"});
        const std::string old = RequireString(args.Required(0), "replace()", a.line);
        const std::string repl = RequireString(args.Required(1), "replace()", a.line);
        Value count = args.Or(2, Value::Int(-1));
        if (!count.is_int()) Fail(a.line, "replace() count must be an integer");
        return Value::Str(ReplaceAll(self.s, old, repl, count.as_int(), in, a.line));
      });
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex" ||
        name == "count") {
      return method([name](Interp&, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "join") {
      return method([](Interp& in, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "format") {
      return method([](Interp& in, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
        name == "isupper" || name == "islower" || name == "isnumeric" || name == "isdecimal") {
      return method([name](Interp&, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "zfill" || name == "center" || name == "ljust" || name == "rjust") {
      return method([name](Interp& in, const Value& self, CallArgs& a) {
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
      });
    }
    return false;
  }
  if (obj.is_dict()) {
    if (name == "items" || name == "keys" || name == "values") {
      return method([name](Interp&, const Value& self, CallArgs& a) {
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
      });
    }
    if (name == "get") {
      return method([](Interp&, const Value& self, CallArgs& a) {
        Args args(a, "get", {"key", "default"});
        const Value* v = self.dict->Find(args.Required(0));
        return v ? *v : args.Or(1, Value::None());
      });
    }
    if (name == "copy") {
      return method([](Interp&, const Value& self, CallArgs& a) {
        Args args(a, "copy", {});
        return self;
      });
    }
    if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" ||
        name == "clear") {
      return unsafe();
    }
    return false;
  }
  if (obj.is_list()) {
    if (name == "index" || name == "count") {
      return method([name](Interp&, const Value& self, CallArgs& a) {
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
      });
    }
    if (!obj.is_tuple &&
        (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
         name == "remove" || name == "sort" || name == "reverse" || name == "clear")) {
      return unsafe();
    }
    if (!obj.is_tuple && name == "copy") {
      return method([](Interp&, const Value& self, CallArgs&) { return self; });
    }
    return false;
  }
  return false;
}

// ------------------------------------------------------------------------------------------------
// Globals

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

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
               Fail(a.line, "'" + TypeName(v) + "' object cannot be interpreted as an integer");
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

// ------------------------------------------------------------------------------------------------
// Filters

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

Value Interp::ApplyFilter(const std::string& name, Value v, CallArgs& a, const FramePtr& frame) {
  const int line = a.line;
  auto as_text = [&](const Value& x) { return Str(x); };
  if (name == "safe" || name == "list" || name == "string" || name == "forceescape" ||
      name == "escape" || name == "e") {
    Args args(a, name.c_str(), {});
    if (name == "safe") return v;
    if (name == "string") return Value::Str(Str(v));
    if (name == "list") return Value::MakeList(Iterate(v, line));
    return Value::Str(HtmlEscape(Str(v)));
  }
  if (name == "trim") {
    Args args(a, "trim", {"chars"});
    const Value* chars = args.Get(0);
    if (chars && !chars->none() && !chars->is_string())
      Fail(line, "trim(): chars must be a string");
    return Value::Str(StripChars(as_text(v), chars, true, true));
  }
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
    Args args(a, name.c_str(), {});
    const std::string s = as_text(v);
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
  if (name == "length" || name == "count") {
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
  if (name == "default" || name == "d") {
    Args args(a, "default", {"default_value", "boolean"});
    if (v.undefined() || (args.Bool(1, false) && !Truthy(v))) {
      return args.Or(0, Value::Str(""));
    }
    return v;
  }
  if (name == "join") {
    Args args(a, "join", {"d", "attribute"});
    const std::string sep = args.Get(0) ? Str(*args.Get(0)) : std::string();
    const Value* attr = args.Get(1);
    std::string out;
    bool first = true;
    for (const auto& item : Iterate(v, line)) {
      if (!first) out += sep;
      first = false;
      AppendStr(out, attr ? GetPath(item, Str(*attr), line) : item);
      CheckSize(out.size(), line);
    }
    return Value::Str(std::move(out));
  }
  if (name == "replace") {
    Args args(a, "replace", {"old", "new", "count"});
    const std::string old = Str(args.Required(0)), repl = Str(args.Required(1));
    Value count = args.Or(2, Value::None());
    if (!count.none() && !count.is_int()) Fail(line, "replace(): count must be an integer");
    return Value::Str(
        ReplaceAll(as_text(v), old, repl, count.none() ? -1 : count.as_int(), *this, line));
  }
  if (name == "items") {
    Args args(a, "items", {});
    if (v.undefined()) return Value::MakeList({});
    if (!v.is_dict()) Fail(line, "Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, val] : v.dict->items) out.push_back(Value::MakeList({k, val}, true));
    return Value::MakeList(std::move(out));
  }
  if (name == "first" || name == "last") {
    Args args(a, name.c_str(), {});
    if (v.undefined() && name == "last") Fail(line, UndefinedMessage(v));
    List items = Iterate(v, line);
    if (items.empty()) return Value::Undef("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    Args args(a, "reverse", {});
    if (v.is_string()) {
      std::u32string u = Chars(v);
      std::reverse(u.begin(), u.end());
      return Value::Str(Encode(u));
    }
    List items = Iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "int") {
    Args args(a, "int", {"default", "base"});
    Value base = args.Or(1, Value::Int(10));
    if (!base.is_int() || base.as_int() < 2 || base.as_int() > 36) Fail(line, "int(): bad base");
    return ToInt(v, args.Or(0, Value::Int(0)), static_cast<int>(base.as_int()));
  }
  if (name == "float") {
    Args args(a, "float", {"default"});
    return ToFloat(v, args.Or(0, Value::Float(0.0)));
  }
  if (name == "abs") {
    Args args(a, "abs", {});
    if (v.type == Type::kFloat) return Value::Float(std::fabs(v.f));
    if (v.is_int()) {
      if (v.as_int() == std::numeric_limits<int64_t>::min()) Fail(line, "integer overflow");
      return Value::Int(std::abs(v.as_int()));
    }
    Fail(line, "bad operand type for abs(): '" + TypeName(v) + "'");
  }
  if (name == "round") {
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
  if (name == "tojson") {
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
    CheckSize(out.size(), line);
    return Value::Str(std::move(out));
  }
  if (name == "map") {
    List items = Iterate(v, line);
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
        Value x = GetPath(item, attr, line);
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
      out.push_back(ApplyFilter(fname, std::move(item), copy, frame));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool attr_mode = name == "selectattr" || name == "rejectattr";
    const bool want = name == "select" || name == "selectattr";
    List items = Iterate(v, line);
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
    if (k + 1 < a.pos.size())
      rest.pos.assign(a.pos.begin() + static_cast<long>(k) + 1, a.pos.end());
    rest.kw = a.kw;
    List out;
    for (auto& item : items) {
      Step(line);
      Value x = attr_mode ? GetPath(item, attr, line) : item;
      bool r;
      if (test.empty()) {
        r = Truthy(x);
      } else {
        CallArgs copy = rest;
        r = ApplyTest(test, x, copy);
      }
      if (r == want) out.push_back(std::move(item));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "sort") {
    Args args(a, "sort", {"reverse", "case_sensitive", "attribute"});
    const bool reverse = args.Bool(0, false), cs = args.Bool(1, false);
    const Value* attr = args.Get(2);
    List items = Iterate(v, line);
    std::vector<Value> keys;
    for (const auto& item : items) keys.push_back(attr ? GetPath(item, Str(*attr), line) : item);
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
  if (name == "dictsort") {
    Args args(a, "dictsort", {"case_sensitive", "by", "reverse"});
    const bool cs = args.Bool(0, false), reverse = args.Bool(2, false);
    const std::string by = args.String(1, "key");
    if (by != "key" && by != "value")
      Fail(line, "You can only sort by either \"key\" or \"value\"");
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
  if (name == "unique") {
    Args args(a, "unique", {"case_sensitive", "attribute"});
    const bool cs = args.Bool(0, false);
    const Value* attr = args.Get(1);
    List out, seen;
    for (const auto& item : Iterate(v, line)) {
      Value key = attr ? GetPath(item, Str(*attr), line) : item;
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
  if (name == "min" || name == "max") {
    Args args(a, name.c_str(), {"case_sensitive", "attribute"});
    const bool cs = args.Bool(0, false);
    const Value* attr = args.Get(1);
    List items = Iterate(v, line);
    if (items.empty()) return Value::Undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
      Value kb = attr ? GetPath(items[best], Str(*attr), line) : items[best];
      Value kk = attr ? GetPath(items[k], Str(*attr), line) : items[k];
      const int c = CompareForSort(kk, kb, cs, line);
      if (name == "min" ? c < 0 : c > 0) best = k;
    }
    return items[best];
  }
  if (name == "sum") {
    Args args(a, "sum", {"attribute", "start"});
    Value acc = args.Or(1, Value::Int(0));
    const Value* attr = args.Get(0);
    for (const auto& item : Iterate(v, line)) {
      acc = BinaryOp("+", acc, attr ? GetPath(item, Str(*attr), line) : item, line);
    }
    return acc;
  }
  if (name == "indent") {
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
    CheckSize(out.size(), line);
    return Value::Str(std::move(out));
  }
  if (name == "striptags") {
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
    for (const auto& [from, to] : kEntities) joined = ReplaceAll(joined, from, to, -1, *this, line);
    return Value::Str(std::move(joined));
  }
  if (name == "attr") {
    Args args(a, "attr", {"name"});
    return GetAttr(v, Str(args.Required(0)), line);
  }
  if (name == "format") {
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
    return Value::Str(PercentFormat(Str(v), arg, line));
  }
  if (name == "center") {
    Args args(a, "center", {"width"});
    Value w = args.Or(0, Value::Int(80));
    CallArgs c;
    c.line = line;
    c.pos.push_back(w);
    Value m;
    FindMethod(Value::Str(Str(v)), "center", line, &m);
    return Call(m, c, line);
  }
  if (name == "wordcount") {
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
  if (name == "batch") {
    Args args(a, "batch", {"linecount", "fill_with"});
    const Value& n = args.Required(0);
    if (!n.is_int() || n.as_int() <= 0) Fail(line, "batch(): linecount must be a positive integer");
    const Value* fill = args.Get(1);
    List out, cur;
    for (auto& item : Iterate(v, line)) {
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
  if (name == "pprint") {
    Args args(a, "pprint", {});
    return Value::Str(Repr(v));
  }
  (void)frame;
  Fail(line, "unsupported filter '" + name + "'", StatusCode::kUnimplemented);
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
    static const char* kFilters[] = {
        "safe",      "list",       "string",     "forceescape", "escape",   "e",      "trim",
        "upper",     "lower",      "capitalize", "title",       "length",   "count",  "default",
        "d",         "join",       "replace",    "items",       "first",    "last",   "reverse",
        "int",       "float",      "abs",        "round",       "tojson",   "map",    "select",
        "reject",    "selectattr", "rejectattr", "sort",        "dictsort", "unique", "min",
        "max",       "sum",        "indent",     "striptags",   "attr",     "format", "center",
        "wordcount", "batch",      "pprint"};
    static const char* kTests[] = {
        "defined", "undefined", "none",   "boolean",     "false",    "true",        "integer",
        "float",   "number",    "string", "mapping",     "iterable", "sequence",    "callable",
        "escaped", "lower",     "upper",  "odd",         "even",     "divisibleby", "eq",
        "equalto", "==",        "ne",     "!=",          "lt",       "lessthan",    "<",
        "le",      "<=",        "gt",     "greaterthan", ">",        "ge",          ">=",
        "in",      "sameas",    "filter", "test"};
    if (!v.is_string()) return false;
    if (name == "filter") {
      for (const char* f : kFilters) {
        if (v.s == f) return true;
      }
      return false;
    }
    for (const char* t : kTests) {
      if (v.s == t) return true;
    }
    return false;
  }
  Fail(line, "unsupported test '" + name + "'", StatusCode::kUnimplemented);
}

std::string NormalizeSource(std::string_view source) {
  // Jinja normalises every newline sequence to \n and (keep_trailing_newline=False) drops one
  // trailing newline.
  std::string s;
  s.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      s.push_back('\n');
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      s.push_back(source[k]);
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string Where(const JinjaError& e) {
  if (e.line <= 0) return "chat template: ";
  std::string w = "chat template line " + std::to_string(e.line);
  if (e.column > 0) w += ", column " + std::to_string(e.column);
  return w + ": ";
}

}  // namespace

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

StatusOr<Template> Template::Parse(std::string_view source, const Limits& limits) {
  {
    const std::u32string u = Decode(source);
    for (size_t k = 0, byte = 0; k < u.size(); ++k) {
      if (u[k] >= 0xDC80 && u[k] <= 0xDCFF) {
        return InvalidArgument("chat template is not valid UTF-8 (byte offset {})", byte);
      }
      std::string tmp;
      AppendUtf8(tmp, u[k]);
      byte += tmp.size();
    }
  }
  try {
    auto program = std::make_shared<Program>();
    program->limits = limits;
    Lexer lexer(NormalizeSource(source));
    Parser parser(lexer.Run(), program->limits);
    program->body = parser.ParseTemplate();
    Template t;
    t.program_ = std::move(program);
    return t;
  } catch (const JinjaError& e) {
    return Status(e.code, Where(e) + e.message);
  } catch (const std::exception& e) {
    return Internal("chat template: {}", e.what());
  }
}

StatusOr<std::string> Template::Render(const nlohmann::ordered_json& variables) const {
  if (!program_) return FailedPrecondition("chat template: Render() on an empty template");
  std::string out;
  Interp interp(*program_, &out);
  try {
    interp.Run(variables);
  } catch (JinjaError& e) {
    if (e.line <= 0) e.line = interp.last_line();
    return Status(e.code, Where(e) + e.message);
  } catch (const std::bad_alloc&) {
    return FailedPrecondition("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return Internal("chat template: {}", e.what());
  }
  return out;
}

}  // namespace rvec::jinja
