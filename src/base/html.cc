// HTML escaping (see html.h).
#include "base/html.h"

namespace rvec {

std::string HtmlEscape(std::string_view s, HtmlQuotes quotes) {
  const bool markupsafe = quotes == HtmlQuotes::kMarkupSafe;
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
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
        out += markupsafe ? "&#34;" : "&quot;";
        break;
      case '\'':
        if (markupsafe) {
          out += "&#39;";
        } else {
          out += c;
        }
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace rvec
