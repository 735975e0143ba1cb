// The interpreter's Python-like values: truth, equality, ordering, str() and repr().
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "text/jinja_internal.h"

namespace rvec::jinja {

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

}  // namespace rvec::jinja

namespace rvec::jinja::internal {

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
  Fail(line, fmt::format("'{}' not supported between instances of '{}' and '{}'", op, TypeName(a),
                         TypeName(b)));
}

std::string FormatInt(int64_t v) { return std::to_string(v); }

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

// Only namespaces can hold themselves; the depth bound turns such a cycle into an error.
constexpr int kMaxPrintDepth = 200;

}  // namespace

void AppendStr(std::string& out, const Value& v, int depth) {
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

std::string RequireString(const Value& v, const char* what, int line) {
  if (!v.is_string()) {
    if (v.undefined()) Fail(line, UndefinedMessage(v));
    Fail(line, std::string(what) + " requires a string, not '" + TypeName(v) + "'");
  }
  return v.s;
}

}  // namespace rvec::jinja::internal
