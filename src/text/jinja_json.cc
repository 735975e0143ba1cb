// JSON in and out for the Jinja interpreter: template variables from nlohmann::json, and the
// tojson filter (transformers' tojson is json.dumps(..., ensure_ascii=False)).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {

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

namespace {

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

std::string JsonFloat(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
  return PythonFloatRepr(f);
}

}  // namespace

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

}  // namespace rvec::jinja::internal
