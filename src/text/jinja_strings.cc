// Python string semantics over UTF-8 for the Jinja interpreter: code points, whitespace, case
// mapping, strip/split/splitlines.
#include <algorithm>
#include <cctype>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {
namespace {

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

char32_t AsciiUpper(char32_t c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }

}  // namespace

std::u32string Decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0, len = 0; i < s.size(); i += len) out.push_back(DecodeUtf8Escaped(s, i, &len));
  return out;
}

std::string Encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(out, c);
  return out;
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

char32_t AsciiLower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

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
std::string Capitalize(const std::string& s) {
  std::u32string u = Decode(s);
  for (size_t k = 0; k < u.size(); ++k) u[k] = k == 0 ? PyUpper(u[k]) : PyLower(u[k]);
  return Encode(u);
}

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

}  // namespace rvec::jinja::internal
