// Tests of the UTF-8 codec and HTML escaping in base/.
#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>

#include "base/html.h"

namespace rvec {
namespace {

TEST(Utf8, EveryScalarValueRoundTrips) {
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    AppendUtf8(cp, &s);
    const size_t expect_len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    ASSERT_EQ(s.size(), expect_len) << cp;
    size_t len = 0;
    ASSERT_EQ(DecodeUtf8(s, 0, &len), cp);
    ASSERT_EQ(len, expect_len);
    ASSERT_TRUE(IsValidUtf8(s));
  }
}

TEST(Utf8, CountsOfWellFormedTwoAndThreeByteSequences) {
  // Exhaustive over every 2- and 3-byte string: exactly the scalar values of each length decode.
  size_t two = 0, three = 0;
  for (unsigned a = 0x80; a < 0x100; ++a) {
    for (unsigned b = 0; b < 0x100; ++b) {
      const std::string s{static_cast<char>(a), static_cast<char>(b)};
      size_t len = 0;
      if (DecodeUtf8(s, 0, &len) != kInvalidUtf8 && len == 2) ++two;
      for (unsigned c = 0x80; c < 0xC0 && a >= 0xE0 && a < 0xF0; ++c) {
        const std::string t{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        if (DecodeUtf8(t, 0, &len) != kInvalidUtf8 && len == 3) ++three;
      }
    }
  }
  EXPECT_EQ(two, 0x800u - 0x80u);
  EXPECT_EQ(three, 0x10000u - 0x800u - 0x800u);  // less the 2,048 surrogates
}

TEST(Utf8, IllFormedInputIsOneInvalidByte) {
  for (const std::string bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80",
                                "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\x80",
                                "\xBF", "\xE2\x82", "\xF0\x9F\x98", "\xFF"}) {
    size_t len = 9;
    EXPECT_EQ(DecodeUtf8(bad, 0, &len), kInvalidUtf8) << bad;
    EXPECT_EQ(len, 1u);
    EXPECT_EQ(FindInvalidUtf8("ok" + bad), 2u);
  }
  EXPECT_EQ(FindInvalidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), std::string_view::npos);
}

TEST(Utf8, SurrogateEscapeRoundTripsArbitraryBytes) {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  bytes += "\xE2\x82\xAC\xED\xA0\x80";
  std::string back;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len = 0;
    const uint32_t cp = DecodeUtf8Escaped(bytes, i, &len);
    if (static_cast<unsigned char>(bytes[i]) >= 0x80 && len == 1) {
      EXPECT_GE(cp, 0xDC80u);
    }
    AppendUtf8Escaped(cp, &back);
    i += len;
  }
  EXPECT_EQ(back, bytes);
}

TEST(Html, EscapesForReportsAndForMarkupSafe) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x">Tom & 'Jerry'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; 'Jerry'&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape(R"(<"'&>)", HtmlQuotes::kMarkupSafe), "&lt;&#34;&#39;&amp;&gt;");
  EXPECT_EQ(HtmlEscape("plain"), "plain");
}

}  // namespace
}  // namespace rvec
