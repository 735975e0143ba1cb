// HTML escaping for every page and SVG rvec writes, and for the Jinja `escape` filter.
#pragma once

#include <string>
#include <string_view>

namespace rvec {

enum class HtmlQuotes {
  kReport,      // " -> &quot; and ' left alone: rvec's HTML reports and SVG attributes
  kMarkupSafe,  // " -> &#34; and ' -> &#39;: Jinja2's escape (markupsafe), for byte-identical
                // templates
};

// Escapes &, <, > and quotes as `quotes` says.
std::string HtmlEscape(std::string_view s, HtmlQuotes quotes = HtmlQuotes::kReport);

}  // namespace rvec
