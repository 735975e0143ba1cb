// Tests for the Unicode layer: UTF-8 coding and lossy repair, character classes, NFC.
#include "text/unicode.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rvec::unicode {
namespace {

std::string U8(std::initializer_list<uint32_t> cps) {
  std::string s;
  for (uint32_t cp : cps) AppendUtf8(cp, &s);
  return s;
}

TEST(Utf8, EncodeDecodeRoundTripsEveryScalarValue) {
  for (uint32_t cp = 0; cp < 0x110000; cp += (cp < 0x3000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    AppendUtf8(cp, &s);
    size_t len = 0;
    ASSERT_EQ(DecodeUtf8(s, 0, &len), cp);
    ASSERT_EQ(len, s.size());
    ASSERT_TRUE(IsValidUtf8(s));
  }
}

TEST(Utf8, LossyReplacesMaximalSubpartsLikeRust) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Utf8Lossy("abc"), "abc");
  EXPECT_EQ(Utf8Lossy("\xE4\xBD"), fffd);  // truncated 3-byte sequence
  EXPECT_EQ(Utf8Lossy("\xE4\xBD"
                      "A"),
            fffd + "A");
  EXPECT_EQ(Utf8Lossy("\xF0\x90\x80"
                      "A"),
            fffd + "A");
  EXPECT_EQ(Utf8Lossy("\xC0\x80"), fffd + fffd);             // overlong lead is invalid alone
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT_EQ(Utf8Lossy("\x80\x80"), fffd + fffd);
  EXPECT_EQ(Utf8Lossy("\xE4\xBD\xA0"), "\xE4\xBD\xA0");
  EXPECT_FALSE(IsValidUtf8("\xE4\xBD"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));
}

TEST(Utf8, IncompleteSuffixHoldsOnlyCompletableTails) {
  EXPECT_EQ(IncompleteUtf8Suffix(""), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xE4"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xE4\xBD"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\xE4\xBD\xA0"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("a\x80"), 0u);      // lone continuation: already final
  EXPECT_EQ(IncompleteUtf8Suffix("a\xED\xA0"), 0u);  // surrogate prefix can never complete
  EXPECT_EQ(IncompleteUtf8Suffix("\xC0"), 0u);       // never-valid lead
}

TEST(Classes, LettersNumbersAndOnigurumaWhiteSpace) {
  for (uint32_t cp : {uint32_t{'a'}, uint32_t{'Z'}, 0x017Fu, 0xE9u, 0x4E2Du, 0x05D0u, 0x0E01u}) {
    EXPECT_TRUE(IsLetter(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0x0301u, 0x093Cu, 0x200Du, uint32_t{'1'}, uint32_t{' '}}) {
    EXPECT_FALSE(IsLetter(cp)) << std::hex << cp;
  }
  // \p{N} covers Nd, Nl and No: ½ ² Ⅻ ① ٣ ４ 𝟘.
  for (uint32_t cp : {uint32_t{'7'}, 0xBDu, 0xB2u, 0x216Bu, 0x2460u, 0x0663u, 0xFF14u, 0x1D7D8u}) {
    EXPECT_TRUE(IsNumber(cp)) << std::hex << cp;
  }
  EXPECT_FALSE(IsNumber('a'));
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u,
                      0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(IsWhiteSpace(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0xFEFFu, 0x200Bu, 0x180Eu, 0x1Cu, 0x1Fu, uint32_t{'x'}}) {
    EXPECT_FALSE(IsWhiteSpace(cp)) << std::hex << cp;
  }
  EXPECT_EQ(CombiningClass(0x0301), 230);
  EXPECT_EQ(CombiningClass(0x0323), 220);
  EXPECT_EQ(CombiningClass('a'), 0);
  EXPECT_FALSE(IsLetter(0x110000));
}

TEST(Nfc, ComposesDecomposesAndReordersAsPython) {
  struct Case {
    std::string in, want;
  };
  const std::vector<Case> cases = {
      {U8({'e', 0x301}), U8({0xE9})},
      {U8({0x212B}), U8({0xC5})},
      {U8({0x2126}), U8({0x3A9})},
      {U8({0xF900}), U8({0x8C48})},
      {U8({0x1100, 0x1161, 0x11A8}), U8({0xAC01})},
      {U8({0xAC00, 0x11A8}), U8({0xAC01})},
      {U8({0x0958}), U8({0x915, 0x93C})},  // composition exclusion stays decomposed
      {U8({'q', 0x307, 0x323}), U8({'q', 0x323, 0x307})},
      {U8({0x1E9B, 0x323}), U8({0x1E9B, 0x323})},
      {U8({0x2000}), U8({0x2002})},
      {U8({'a', 0x328, 0x301}), U8({0x105, 0x301})},
      {U8({'A', 0x30A, 0x301}), U8({0x1FA})},
      {U8({0xC5, 0x301}), U8({0x1FA})},
      {U8({0x0B47, 0x0B3E}), U8({0x0B4B})},
      {U8({0x301, 'e'}), U8({0x301, 'e'})},
      {U8({0x1FEE}), U8({0x385})},
      {U8({'x', 0x345, 0x301}), U8({'x', 0x301, 0x345})},
      {"plain ascii", "plain ascii"},
      {U8({0x4F60, 0x597D}), U8({0x4F60, 0x597D})},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Nfc(c.in), c.want) << c.in;
    EXPECT_EQ(Nfc(c.want), c.want) << c.want;  // idempotent
  }
  EXPECT_TRUE(IsNfcQuick("abc"));
  EXPECT_FALSE(IsNfcQuick(U8({'e', 0x301})));
}

// The quick-check bit must be set for every BMP code point that NFC changes on its own.
TEST(Nfc, QuickCheckBitCoversEverySingleCodePointChange) {
  for (uint32_t cp = 0x80; cp < 0x10000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    AppendUtf8(cp, &s);
    const std::string n = NfcFull(s);
    if (n != s) {
      ASSERT_TRUE(Props(cp) & kNfcCheck) << std::hex << cp;
    }
    ASSERT_EQ(Nfc(n), n) << std::hex << cp;
  }
}

TEST(Tables, VersionsMatchHuggingFaceTokenizers) {
  EXPECT_STREQ(UnicodeVersion(), "14.0.0");
  EXPECT_STREQ(NfcUnicodeVersion(), "9.0.0");
}

// Hugging Face normalizes with Unicode 9.0 tables: marks and decompositions assigned later are
// inert (U+11938 stays, U+1DFA (14.0, ccc 218) is not reordered), while 9.0 marks still are.
TEST(Nfc, CodePointsAfterUnicodeNineAreLeftAlone) {
  EXPECT_EQ(Nfc(U8({0x11938})), U8({0x11938}));
  EXPECT_EQ(CombiningClass(0x1DFA), 0);
  EXPECT_EQ(Nfc(U8({'a', 0x301, 0x1DFA})), U8({0xE1, 0x1DFA}));
  EXPECT_EQ(Nfc(U8({'a', 0x1DFA, 0x301})), U8({'a', 0x1DFA, 0x301}));
  EXPECT_TRUE(IsLetter(0x11700) || IsLetter(0x1E290));  // classes stay at Unicode 14
}

}  // namespace
}  // namespace rvec::unicode
