// Normalising an answer string before it is parsed: delimiters, spacing macros, \left/\right,
// fraction variants, degrees, currency and percent signs, \text{} and units, a leading "x =".
#include <cctype>
#include <cstring>
#include <regex>

#include "eval/math/grader.h"
#include "eval/math/latex_expr.h"

namespace rvec::eval::math {
namespace {

// Builds a new string rather than replacing in place: linear in the input, however many matches.
void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  size_t at = s->find(from);
  if (at == std::string::npos) return;
  std::string out;
  out.reserve(s->size());
  size_t done = 0;
  for (; at != std::string::npos; at = s->find(from, done)) {
    out.append(*s, done, at - done);
    out.append(to);
    done = at + from.size();
  }
  out.append(*s, done, std::string::npos);
  *s = std::move(out);
}

bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

void Trim(std::string* s) {
  size_t b = 0, e = s->size();
  while (b < e && std::isspace(static_cast<unsigned char>((*s)[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>((*s)[e - 1]))) --e;
  *s = s->substr(b, e - b);
}

// Unicode spellings models use for LaTeX symbols.
void ReplaceUnicode(std::string* s) {
  static const std::pair<const char*, const char*> kMap[] = {
      {"\u2212", "-"},     {"\u00d7", "\\times "},    {"\u00b7", "\\cdot "},
      {"\u2264", "\\le "}, {"\u2265", "\\ge "},       {"\u2260", "\\ne "},
      {"\u03c0", "\\pi "}, {"\u221e", "\\infty "},    {"\u221a", "\\sqrt"},
      {"\u00b0", ""},      {"\u2205", "\\emptyset "}, {"\u222a", "\\cup "},
      {"\u2208", "\\in "}};
  for (const auto& [from, to] : kMap) ReplaceAll(s, from, to);
}

// Removes the math delimiters around (and inside) an answer: $...$, \[...\], \(...\).
void StripDelimiters(std::string* s) {
  ReplaceAll(s, "\\$", "");
  ReplaceAll(s, "$", "");
  for (const char* d : {"\\[", "\\]", "\\(", "\\)"}) ReplaceAll(s, d, " ");
}

// The brace-balanced group starting at `open` ('{'); npos when it never closes.
size_t GroupEnd(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

// \text{...} and friends: a trailing one after a value is a unit and goes; any other is
// replaced by its contents ("and"/"or" between answers become commas).
void UnwrapText(std::string* s) {
  static const char* kTextCommands[] = {"\\text",         "\\textbf",    "\\textit", "\\mbox",
                                        "\\mathrm",       "\\mathbf",    "\\textrm", "\\mathit",
                                        "\\operatorname", "\\textnormal"};
  for (int guard = 0; guard < 64; ++guard) {
    size_t best = std::string::npos, name_len = 0;
    for (const char* cmd : kTextCommands) {
      size_t len = std::strlen(cmd);
      size_t at = s->find(cmd);
      while (at != std::string::npos && (at + len >= s->size() || (*s)[at + len] != '{'))
        at = s->find(cmd, at + 1);
      if (at != std::string::npos && at < best) best = at, name_len = len;
    }
    if (best == std::string::npos) return;
    size_t open = best + name_len, close = GroupEnd(*s, open);
    if (close == std::string::npos) return;
    std::string inner = s->substr(open + 1, close - open - 1);
    std::string before = s->substr(0, best);
    Trim(&before);
    std::string after = s->substr(close + 1);
    Trim(&after);
    std::string word = inner;
    Trim(&word);
    bool unit = after.empty() && !before.empty() && IsAlpha(word.empty() ? '0' : word[0]) &&
                word != "i" && word != "e";
    if (word == "and" || word == "or" || word == ",") inner = ",";
    s->replace(best, close + 1 - best, unit ? "" : inner);
  }
}

// Unit words written after a number ("5 cm", "12 inches^2"), as the references strip them.
void StripUnits(std::string* s) {
  static const std::regex kUnit(
      R"(^(.*[0-9}])\s*(cm|mm|km|meters?|metres?|inch(es)?|feet|foot|ft|yards?|miles?|units?|)"
      R"(square units|sq units|degrees?|dollars?|cents?|hours?|minutes?|seconds?|mph|pounds?|)"
      R"(kg|grams?|liters?|litres?|days?|weeks?|years?|people|students|ways|percent|percentage|pct))"
      R"((\^\{?[23]\}?)?$)");
  if (s->size() > 256) return;
  std::smatch m;
  if (std::regex_match(*s, m, kUnit)) *s = m[1].str();
}

// "x = 5" -> "5" when the left side is one short name, the right side a constant, and there is
// no other relation (an equation such as "y = 2x + 1" stays one, compared as such).
void StripLeadingVariable(std::string* s) {
  size_t eq = s->find('=');
  if (eq == std::string::npos || eq == 0 || s->find('=', eq + 1) != std::string::npos) return;
  if (s->find_first_of("<>,!") != std::string::npos) return;
  for (const char* rel : {"\\approx", "\\le", "\\ge", "\\ne", "\\in", "\\lt", "\\gt"}) {
    if (s->find(rel) != std::string::npos) return;
  }
  std::string lhs = s->substr(0, eq);
  std::string rhs = s->substr(eq + 1);
  ReplaceAll(&lhs, " ", "");
  Trim(&rhs);
  static const std::regex kCommand(R"(\\[a-zA-Z]+)");
  std::string bare = rhs.size() <= 256 ? std::regex_replace(rhs, kCommand, "") : "x";
  for (char c : bare) {
    if (IsAlpha(c)) return;
  }
  if (rhs.empty()) return;
  static const std::regex kName(R"(^([A-Za-z]('|_\{?[A-Za-z0-9]+\}?)?|\\[a-zA-Z]+)$)");
  if (lhs.size() <= 2 || (lhs.size() <= 64 && std::regex_match(lhs, kName))) *s = rhs;
}

// "\ " (a control space) becomes a space; "\\ " (a row break) stays.
void ControlSpaces(std::string* s) {
  std::string out;
  for (size_t i = 0; i < s->size(); ++i) {
    if ((*s)[i] == '\\' && i + 1 < s->size()) {
      if ((*s)[i + 1] == ' ') {
        out += ' ';
        ++i;
        continue;
      }
      out += (*s)[i];
      out += (*s)[++i];
      continue;
    }
    out += (*s)[i];
  }
  *s = std::move(out);
}

// A doubled backslash before a command name ("\\frac", from over-escaped strings) outside a
// matrix, where it cannot be a row break.
void FixDoubledBackslashes(std::string* s) {
  if (s->find("\\begin") != std::string::npos || s->size() > 4096) return;
  static const std::regex kDoubled(R"(\\\\([a-zA-Z]))");
  *s = std::regex_replace(*s, kDoubled, "\\$1");
}

// Thousands separators ("7,425,000", "1 000", "1{,}000") when the whole answer is one number.
void StripThousands(std::string* s) {
  ReplaceAll(s, "{,}", ",");
  static const std::regex kCommas(R"(^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$)");
  static const std::regex kSpaces(R"(^[-+]?\d{1,3}( \d{3})+(\.\d+)?$)");
  if (s->size() > 64) return;
  if (std::regex_match(*s, kCommas)) ReplaceAll(s, ",", "");
  if (std::regex_match(*s, kSpaces)) ReplaceAll(s, " ", "");
}

// Drops spaces except one that separates a command name from a following letter (\pi r) or two
// digits.
std::string CollapseSpaces(const std::string& s) {
  std::string out;
  bool in_command = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ') {
      bool next_alpha = i + 1 < s.size() && IsAlpha(s[i + 1]);
      // Digits on both sides stay apart too: "\log_2 8" is not "\log_{28}".
      bool digits = !out.empty() && std::isdigit(static_cast<unsigned char>(out.back())) &&
                    i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if ((in_command && next_alpha) || digits) out += ' ';
      in_command = false;
      continue;
    }
    if (c == '\\') {
      in_command = i + 1 < s.size() && IsAlpha(s[i + 1]);
    } else if (!IsAlpha(c)) {
      in_command = false;
    }
    out += c;
  }
  return out;
}

void ReplaceWords(std::string* s) {
  static const std::regex kInfinity(R"((^|[^\\a-zA-Z])(infinity|inf)($|[^a-zA-Z]))");
  if (s->size() <= 1024) *s = std::regex_replace(*s, kInfinity, "$1\\infty$3");
  ReplaceAll(s, ", and ", ",");
  ReplaceAll(s, " and ", ",");
  ReplaceAll(s, " or ", ",");
  static const std::regex kJoined(R"(\)\s*(or|and)\s*\()");
  static const std::regex kEmptyItem(R"(,\s*,)");
  if (s->size() > 1024) return;
  *s = std::regex_replace(*s, kJoined, "),(");
  *s = std::regex_replace(*s, kEmptyItem, ",");
}

}  // namespace

std::string NormalizeAnswer(std::string_view answer) {
  std::string s(answer.substr(0, std::min(answer.size(), internal::kMaxAnswerChars * 4)));
  ReplaceUnicode(&s);
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  StripDelimiters(&s);
  static const std::regex kThinSeparator(R"(,\\!\s*)");  // "32,\! 349"
  if (s.size() <= 1024) s = std::regex_replace(s, kThinSeparator, ",");
  FixDoubledBackslashes(&s);
  ControlSpaces(&s);
  for (const char* drop :
       {"\\!", "\\displaystyle", "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr",
        "\\big", "\\Big", "^{\\circ}", "^\\circ", "\\circ", "\\%", "%", "\\degree", "\\limits"}) {
    ReplaceAll(&s, drop, "");
  }
  for (const char* space : {"\\,", "\\;", "\\:", "\\qquad", "\\quad", "~"}) {
    ReplaceAll(&s, space, " ");
  }
  for (const char* frac : {"\\dfrac", "\\tfrac", "\\cfrac"}) ReplaceAll(&s, frac, "\\frac");
  for (const char* f : {"asin", "acos", "atan"}) {
    ReplaceAll(&s, std::string("\\operatorname{") + f + "}", std::string("\\arc") + (f + 1));
  }
  for (const char* f : {"arcsinh", "arccosh", "arctanh", "arsinh", "arcosh", "artanh"}) {
    ReplaceAll(&s, std::string("\\operatorname{") + f + "}", std::string("\\") + f);
  }
  for (const char* f : {"asinh", "acosh", "atanh"}) {
    ReplaceAll(&s, std::string("\\operatorname{") + f + "}", std::string("\\ar") + (f + 1));
  }
  ReplaceAll(&s, "\\dbinom", "\\binom");
  ReplaceAll(&s, "\\tbinom", "\\binom");
  ReplaceAll(&s, "bmatrix", "pmatrix");
  UnwrapText(&s);
  ReplaceWords(&s);
  Trim(&s);
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
  if (s.size() >= 2 && s.substr(s.size() - 2) == "\\\\") s.resize(s.size() - 2);
  Trim(&s);
  StripUnits(&s);
  StripThousands(&s);
  StripLeadingVariable(&s);
  Trim(&s);
  return CollapseSpaces(s);
}

}  // namespace rvec::eval::math
