// Pre-tokenizer regexes: the Qwen2/Llama-3 patterns matched by hand (the hot path of encoding),
// everything else through PCRE2 with the Oniguruma differences rewritten away.
#include "text/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "text/unicode.h"

namespace rvec {

namespace {

constexpr std::string_view kWhiteSpaceRanges =
    R"(\t-\r\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000})";

// Character classes the Qwen2/Llama-3 patterns distinguish.
enum Cls : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

struct AsciiTable {
  uint8_t cls[128];
  constexpr AsciiTable() : cls() {
    for (int c = 0; c < 128; ++c) {
      uint8_t k = kOther;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = kLetter;
      if (c >= '0' && c <= '9') k = kNumber;
      if ((c >= 9 && c <= 13) || c == ' ') k = kSpace;
      cls[c] = k;
    }
  }
};
constexpr AsciiTable kAscii;

struct Char {
  uint32_t cp;
  uint32_t len;
  uint8_t cls;
};

inline Char At(std::string_view s, size_t pos) {
  const unsigned char c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return {c, 1, kAscii.cls[c]};
  size_t len = 0;
  const uint32_t cp = unicode::DecodeUtf8(s, pos, &len);
  const uint16_t p = unicode::Props(cp);
  uint8_t k = kOther;
  if (p & unicode::kLetter) {
    k = kLetter;
  } else if (p & unicode::kNumber) {
    k = kNumber;
  } else if (p & unicode::kWhiteSpace) {
    k = kSpace;
  }
  return {cp, static_cast<uint32_t>(len), k};
}

// Length of a case-insensitive contraction ('s 't 're 've 'm 'll 'd) at `pos` (which holds '),
// or 0. Oniguruma folds Unicode case: U+017F LONG S matches 's'; no other code point folds to
// these ASCII letters.
inline size_t Contraction(std::string_view s, size_t pos) {
  const size_t n = s.size();
  size_t i = pos + 1;
  if (i >= n) return 0;
  const char a = static_cast<char>(s[i] | 0x20);
  if (s[i] == '\xC5' && i + 1 < n && s[i + 1] == '\xBF') return 3;  // 'ſ
  if (static_cast<unsigned char>(s[i]) >= 0x80) return 0;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 1 >= n) return 0;
  const char b = static_cast<char>(s[i + 1] | 0x20);
  if (static_cast<unsigned char>(s[i + 1]) >= 0x80) return 0;
  if ((a == 'r' || a == 'v') && b == 'e') return 3;
  if (a == 'l' && b == 'l') return 3;
  return 0;
}

// One match of the Qwen2 (max_digits = 1) or Llama-3 (max_digits = 3) pattern at `pos`, which
// always matches at least one character. Returns the end offset. The alternatives are tried in
// pattern order with the backtracking outcome worked out by hand for each.
inline size_t MatchAt(std::string_view s, size_t pos, int max_digits) {
  const size_t n = s.size();
  const Char c = At(s, pos);
  if (c.cp == '\'') {
    const size_t k = Contraction(s, pos);
    if (k) return pos + k;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c.cls == kLetter || (c.cls != kNumber && c.cp != '\r' && c.cp != '\n' && pos + c.len < n &&
                           At(s, pos + c.len).cls == kLetter)) {
    size_t i = pos + c.len;
    while (i < n) {
      const Char d = At(s, i);
      if (d.cls != kLetter) break;
      i += d.len;
    }
    return i;
  }
  // \p{N} or \p{N}{1,3}
  if (c.cls == kNumber) {
    size_t i = pos + c.len;
    for (int k = 1; k < max_digits && i < n; ++k) {
      const Char d = At(s, i);
      if (d.cls != kNumber) break;
      i += d.len;
    }
    return i;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t i = pos;
  if (c.cp == ' ' && pos + 1 < n && At(s, pos + 1).cls == kOther) i = pos + 1;
  if (i != pos || c.cls == kOther) {
    while (i < n) {
      const Char d = At(s, i);
      if (d.cls != kOther) break;
      i += d.len;
    }
    while (i < n && (s[i] == '\r' || s[i] == '\n')) ++i;
    return i;
  }
  // c is white space. \s*[\r\n]+ ends after the last \r or \n of the white-space run.
  size_t last_newline = std::string_view::npos;
  size_t last_start = pos;
  i = pos;
  while (i < n) {
    const Char d = At(s, i);
    if (d.cls != kSpace) break;
    if (d.cp == '\r' || d.cp == '\n') last_newline = i;
    last_start = i;
    i += d.len;
  }
  if (last_newline != std::string_view::npos) return last_newline + 1;
  // \s+(?!\S): the whole run at the end of text, else all but its last character.
  if (i == n) return i;
  if (last_start > pos) return last_start;
  return i;  // \s+
}

}  // namespace

struct SplitRegex::Pcre {
  pcre2_code* code = nullptr;
  ~Pcre() { pcre2_code_free(code); }
};

std::string TranslateToPcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        if (in_class) {
          out.append(kWhiteSpaceRanges);
        } else {
          out.append("[").append(kWhiteSpaceRanges).append("]");
        }
        continue;
      }
      if (e == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceRanges).append("]");
        continue;
      }
      out.push_back('\\');
      out.push_back(e);
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

SplitRegex::SplitRegex() = default;
SplitRegex::~SplitRegex() = default;
SplitRegex::SplitRegex(SplitRegex&&) noexcept = default;
SplitRegex& SplitRegex::operator=(SplitRegex&&) noexcept = default;

StatusOr<SplitRegex> SplitRegex::CompilePcre2(std::string_view pattern) {
  const std::string translated = TranslateToPcre2(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error, buffer, sizeof(buffer));
    return InvalidArgument("split regex '{}' does not compile (PCRE2, at offset {}): {}", pattern,
                           offset, reinterpret_cast<const char*>(buffer));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort; the interpreter is the fallback
  SplitRegex regex;
  regex.engine_ = Engine::kPcre2;
  regex.pcre_ = std::make_unique<Pcre>();
  regex.pcre_->code = code;
  return regex;
}

StatusOr<SplitRegex> SplitRegex::Compile(std::string_view pattern) {
  SplitRegex regex;
  if (pattern == kQwen2SplitPattern) {
    regex.engine_ = Engine::kQwen2;
    return regex;
  }
  if (pattern == kLlama3SplitPattern) {
    regex.engine_ = Engine::kLlama3;
    return regex;
  }
  return CompilePcre2(pattern);
}

StatusOr<SplitRegex> SplitRegex::Literal(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty literal split pattern");
  std::string quoted = "\\Q";
  for (size_t i = 0; i < text.size(); ++i) {
    // \E inside \Q...\E would end the quote early.
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'E') {
      quoted.append("\\E\\\\\\Q");
      continue;
    }
    quoted.push_back(text[i]);
  }
  quoted.append("\\E");
  return CompilePcre2(quoted);
}

void SplitRegex::FindAll(std::string_view text, std::vector<Span>* matches) const {
  if (engine_ != Engine::kPcre2) {
    const int digits = engine_ == Engine::kQwen2 ? 1 : 3;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = MatchAt(text, pos, digits);
      matches->emplace_back(static_cast<uint32_t>(pos), static_cast<uint32_t>(end));
      pos = end;
    }
    return;
  }
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(pcre_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    const int rc =
        pcre2_match(pcre_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      matches->emplace_back(static_cast<uint32_t>(b), static_cast<uint32_t>(e));
      pos = e;
    } else {
      // An empty match yields no piece; step over one whole character.
      if (b >= text.size()) break;
      size_t len = 0;
      unicode::DecodeUtf8(text, b, &len);
      pos = b + len;
    }
  }
  pcre2_match_data_free(md);
}

}  // namespace rvec
