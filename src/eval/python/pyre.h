// Python `re` semantics on PCRE2 (look-behind, inline flags, Unicode \w\b\d\s, findall's group
// rule, Perl/Python 3.7+ empty-match stepping) and the few Python string functions lm-eval's
// scoring uses.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rvec::eval {

class PyRegex {
 public:
  // Compiles a Python pattern (str pattern, no flags) with UTF + UCP; errors name the offset.
  static StatusOr<PyRegex> Compile(std::string_view pattern);

  PyRegex();
  ~PyRegex();
  PyRegex(PyRegex&&) noexcept;
  PyRegex& operator=(PyRegex&&) noexcept;
  PyRegex(const PyRegex&);
  PyRegex& operator=(const PyRegex&);

  const std::string& pattern() const;
  size_t group_count() const;

  // Every non-overlapping match; each entry holds group 0..n ("" for groups that did not take
  // part).
  StatusOr<std::vector<std::vector<std::string>>> FindAllGroups(std::string_view subject) const;
  // re.findall: with 0 groups the whole matches, with 1 group that group, with more the tuple
  // (returned as a vector of the groups 1..n).
  StatusOr<std::vector<std::vector<std::string>>> FindAll(std::string_view subject) const;
  // re.sub(pattern, replacement, subject) with a literal replacement.
  StatusOr<std::string> Sub(std::string_view subject, std::string_view replacement) const;
  // re.search: the first match's group 0..n, or nullopt.
  StatusOr<std::optional<std::vector<std::string>>> Search(std::string_view subject) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

// Python str.strip() (Unicode whitespace as str.isspace()).
std::string PyStrip(std::string_view s);
// Python str.lstrip() / str.rstrip().
std::string PyLStrip(std::string_view s);
std::string PyRStrip(std::string_view s);
// Python str.lower() (full Unicode lower-casing of glibc's C.UTF-8, plus U+0130's two-code-point
// special case).
std::string PyLower(std::string_view s);
// Number of Unicode code points (Python len of a str); invalid bytes count one each.
size_t PyLen(std::string_view s);
// Deletes ASCII string.punctuation characters.
std::string RemoveAsciiPunctuation(std::string_view s);
// Deletes every character of Unicode general category P* (unicodedata.category(c)[0] == "P").
std::string RemoveUnicodePunctuation(std::string_view s);
// re.escape as a PCRE2-safe literal (every non-alphanumeric ASCII character backslashed).
std::string PyReEscape(std::string_view s);
// str.isspace() of one code point.
bool PyIsSpace(char32_t c);

}  // namespace rvec::eval
