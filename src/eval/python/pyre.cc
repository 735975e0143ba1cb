// Python `re` semantics on PCRE2 and Python string helpers used by lm-eval filters and metrics.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/python/pyre.h"

#include <locale.h>
#include <pcre2.h>
#include <wctype.h>

#include <cctype>
#include <mutex>

#include "base/utf8.h"

namespace rvec::eval {

namespace {

// Invalid bytes decode as U+DC00 + byte (Python's surrogateescape) so that nothing is lost.
char32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  return DecodeUtf8Escaped(s, i, len);
}
void AppendUtf8(std::string& out, char32_t c) { AppendUtf8Escaped(c, &out); }

locale_t Utf8Locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

std::string PcreErrorText(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

bool PyIsSpace(char32_t c) {
  // Python str.isspace(): bidirectional class WS/B/S or category Zs.
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string PyStrip(std::string_view s) { return PyRStrip(PyLStrip(s)); }

std::string PyRStrip(std::string_view s) {
  // Walk code points, remembering the end of the last non-space.
  size_t i = 0, end = 0;
  while (i < s.size()) {
    size_t len;
    const char32_t c = DecodeUtf8(s, i, &len);
    i += len;
    if (!PyIsSpace(c)) end = i;
  }
  return std::string(s.substr(0, end));
}

std::string PyLStrip(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const char32_t c = DecodeUtf8(s, i, &len);
    if (!PyIsSpace(c)) break;
    i += len;
  }
  return std::string(s.substr(i));
}

std::string PyLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  locale_t loc = Utf8Locale();
  for (size_t i = 0; i < s.size();) {
    size_t len;
    const char32_t c = DecodeUtf8(s, i, &len);
    if (c >= 0xDC80 && c <= 0xDCFF && len == 1) {
      out += s[i];
    } else if (c < 0x80) {
      out += static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
    } else if (c == 0x130) {
      out += "i\xCC\x87";  // 'İ'.lower() == 'i̇' in Python
    } else {
      const char32_t lower =
          loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
      AppendUtf8(out, lower);
    }
    i += len;
  }
  return out;
}

size_t PyLen(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    size_t len;
    DecodeUtf8(s, i, &len);
    i += len;
  }
  return n;
}

std::string RemoveAsciiPunctuation(std::string_view s) {
  static constexpr std::string_view kPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (kPunct.find(c) == std::string_view::npos) out += c;
  }
  return out;
}

std::string RemoveUnicodePunctuation(std::string_view s) {
  static const PyRegex* regex = [] {
    auto r = PyRegex::Compile("\\p{P}");
    return new PyRegex(std::move(r).value());
  }();
  auto out = regex->Sub(s, "");
  return out.ok() ? *out : std::string(s);
}

std::string PyReEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != '_') out += '\\';
    out += c;
  }
  return out;
}

// ---- PyRegex
// --------------------------------------------------------------------------------------

struct PyRegex::Impl {
  std::string pattern;
  pcre2_code* code = nullptr;
  uint32_t groups = 0;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

PyRegex::PyRegex() = default;
PyRegex::~PyRegex() = default;
PyRegex::PyRegex(PyRegex&&) noexcept = default;
PyRegex& PyRegex::operator=(PyRegex&&) noexcept = default;
PyRegex::PyRegex(const PyRegex&) = default;
PyRegex& PyRegex::operator=(const PyRegex&) = default;

StatusOr<PyRegex> PyRegex::Compile(std::string_view pattern) {
  auto impl = std::make_shared<Impl>();
  impl->pattern = std::string(pattern);
  pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
  int error = 0;
  PCRE2_SIZE offset = 0;
  // UCP: Python str patterns use Unicode \w \d \s \b. ALT_BSUX: \uXXXX / \xhh as Python reads them.
  impl->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(impl->pattern.data()), impl->pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_ALT_BSUX, &error, &offset, ctx);
  pcre2_compile_context_free(ctx);
  if (!impl->code) {
    return InvalidArgument("regex '{}': {} at offset {}", impl->pattern, PcreErrorText(error),
                           offset);
  }
  pcre2_pattern_info(impl->code, PCRE2_INFO_CAPTURECOUNT, &impl->groups);
  PyRegex r;
  r.impl_ = std::move(impl);
  return r;
}

const std::string& PyRegex::pattern() const { return impl_->pattern; }
size_t PyRegex::group_count() const { return impl_->groups; }

namespace {

// Iterates matches with Perl/Python 3.7+ rules: after an empty match, retry at the same position
// requiring a non-empty anchored match, else step one character.
template <typename Fn>
Status ForEachMatch(const pcre2_code* code, const std::string& pattern, std::string_view subject,
                    Fn&& on_match) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  PCRE2_SPTR s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const size_t n = subject.size();
  size_t start = 0;
  uint32_t options = 0;
  Status status;
  while (start <= n) {
    int rc = pcre2_match(code, s, n, start, options, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (options == 0) break;
      // No non-empty match here: step one code point and search normally.
      options = 0;
      if (start >= n) break;
      size_t len;
      DecodeUtf8(subject, start, &len);
      start += len;
      continue;
    }
    if (rc < 0) {
      status = InvalidArgument("regex '{}': matching failed: {}", pattern, PcreErrorText(rc));
      break;
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    on_match(ov, static_cast<uint32_t>(pcre2_get_ovector_count(md)));
    const size_t ms = ov[0], me = ov[1];
    if (me == ms) {
      options = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
      start = me;
    } else {
      options = 0;
      start = me;
    }
  }
  pcre2_match_data_free(md);
  return status;
}

std::vector<std::string> Groups(std::string_view subject, PCRE2_SIZE* ov, uint32_t count,
                                uint32_t groups) {
  std::vector<std::string> out(groups + 1);
  for (uint32_t g = 0; g <= groups && g < count; ++g) {
    if (ov[2 * g] == PCRE2_UNSET) continue;
    out[g] = std::string(subject.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<std::vector<std::string>>> PyRegex::FindAllGroups(
    std::string_view subject) const {
  std::vector<std::vector<std::string>> out;
  RETURN_IF_ERROR(
      ForEachMatch(impl_->code, impl_->pattern, subject, [&](PCRE2_SIZE* ov, uint32_t count) {
        out.push_back(Groups(subject, ov, count, impl_->groups));
      }));
  return out;
}

StatusOr<std::vector<std::vector<std::string>>> PyRegex::FindAll(std::string_view subject) const {
  ASSIGN_OR_RETURN(auto all, FindAllGroups(subject));
  std::vector<std::vector<std::string>> out;
  out.reserve(all.size());
  for (auto& g : all) {
    if (impl_->groups == 0) {
      out.push_back({std::move(g[0])});
    } else {
      out.emplace_back(std::make_move_iterator(g.begin() + 1), std::make_move_iterator(g.end()));
    }
  }
  return out;
}

StatusOr<std::string> PyRegex::Sub(std::string_view subject, std::string_view replacement) const {
  std::string out;
  size_t last = 0;
  RETURN_IF_ERROR(ForEachMatch(impl_->code, impl_->pattern, subject, [&](PCRE2_SIZE* ov, uint32_t) {
    out.append(subject.substr(last, ov[0] - last));
    out.append(replacement);
    last = ov[1];
  }));
  out.append(subject.substr(last));
  return out;
}

StatusOr<std::optional<std::vector<std::string>>> PyRegex::Search(std::string_view subject) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()),
                             subject.size(), 0, 0, md, nullptr);
  std::optional<std::vector<std::string>> result;
  if (rc >= 0) {
    result = Groups(subject, pcre2_get_ovector_pointer(md),
                    static_cast<uint32_t>(pcre2_get_ovector_count(md)), impl_->groups);
  }
  pcre2_match_data_free(md);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    return InvalidArgument("regex '{}': matching failed: {}", impl_->pattern, PcreErrorText(rc));
  }
  return result;
}

}  // namespace rvec::eval
