// The Jinja lexer: template text and tags to tokens, with trim_blocks / lstrip_blocks and
// whitespace control ({%- -%}), raw blocks, and Python literal syntax.
#include <cctype>
#include <charconv>
#include <cstring>

#include "text/jinja_internal.h"

namespace rvec::jinja::internal {
namespace {

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

}  // namespace

std::vector<Token> Lex(std::string source) { return Lexer(std::move(source)).Run(); }

}  // namespace rvec::jinja::internal
