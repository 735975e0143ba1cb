// Unit tests for the tokenizer pieces on small built-in tokenizer.json files: split regex classes
// (hand-written matcher against PCRE2), BPE merges in both serialisations, ignore_merges, added
// tokens and their flags, post-processing, unsupported components, streaming decode.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "text/split_regex.h"
#include "text/unicode.h"

namespace rvec {
namespace {

using json = nlohmann::json;

// Reference GPT-2 bytes_to_unicode, written independently of the implementation.
std::string ByteChar(int b) {
  std::vector<int> bs;
  for (int i = '!'; i <= '~'; ++i) bs.push_back(i);
  for (int i = 0xA1; i <= 0xAC; ++i) bs.push_back(i);
  for (int i = 0xAE; i <= 0xFF; ++i) bs.push_back(i);
  int n = 0;
  uint32_t cp = 0;
  bool found = false;
  for (int x : bs) found = found || x == b;
  if (found) {
    cp = static_cast<uint32_t>(b);
  } else {
    for (int i = 0; i < b; ++i) {
      bool direct = false;
      for (int x : bs) direct = direct || x == i;
      if (!direct) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  unicode::AppendUtf8(cp, &s);
  return s;
}

std::string ByteLevel(std::string_view raw) {
  std::string s;
  for (unsigned char c : raw) s += ByteChar(c);
  return s;
}

struct Spec {
  std::vector<std::pair<std::string, std::string>> merges;  // raw text pieces
  std::vector<std::string> extra_vocab;                     // raw text, not from merges
  bool pair_form = false;
  bool ignore_merges = false;
  json added = json::array();
  json post_processor = {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", false},
                         {"use_regex", false}};
  std::string pattern = std::string(kQwen2SplitPattern);
};

json MakeJson(const Spec& spec) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  int next = 256;
  json merges = json::array();
  for (const auto& [a, b] : spec.merges) {
    const std::string l = ByteLevel(a), r = ByteLevel(b);
    if (!vocab.contains(l + r)) vocab[l + r] = next++;
    if (spec.pair_form) {
      merges.push_back(json::array({l, r}));
    } else {
      merges.push_back(l + " " + r);
    }
  }
  for (const std::string& v : spec.extra_vocab) {
    if (!vocab.contains(ByteLevel(v))) vocab[ByteLevel(v)] = next++;
  }
  json root;
  root["version"] = "1.0";
  root["added_tokens"] = spec.added;
  root["normalizer"] = {{"type", "NFC"}};
  root["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", json::array({{{"type", "Split"},
                                                           {"pattern", {{"Regex", spec.pattern}}},
                                                           {"behavior", "Isolated"},
                                                           {"invert", false}},
                                                          {{"type", "ByteLevel"},
                                                           {"add_prefix_space", false},
                                                           {"trim_offsets", false},
                                                           {"use_regex", false}}})}};
  root["post_processor"] = spec.post_processor;
  root["decoder"] = {{"type", "ByteLevel"}};
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", ""},
                   {"end_of_word_suffix", ""},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", spec.ignore_merges},
                   {"vocab", vocab},
                   {"merges", merges}};
  return root;
}

Tokenizer Make(const Spec& spec) {
  auto t = Tokenizer::FromJson(MakeJson(spec).dump(), "test tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(t).value();
}

json Added(int id, const std::string& content, bool special, bool lstrip = false,
           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},          {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

std::vector<std::string> Tokens(const Tokenizer& t, std::string_view text) {
  std::vector<std::string> out;
  for (int32_t id : t.Encode(text)) out.push_back(t.IdToToken(id));
  return out;
}

std::vector<std::string> Split(const SplitRegex& re, std::string_view text) {
  std::vector<SplitRegex::Span> spans;
  re.FindAll(text, &spans);
  std::vector<std::string> out;
  for (auto [b, e] : spans) out.emplace_back(text.substr(b, e - b));
  return out;
}

using V = std::vector<std::string>;

TEST(SplitRegex, RecognisesKnownPatterns) {
  EXPECT_EQ(SplitRegex::Compile(kQwen2SplitPattern)->engine(), SplitRegex::Engine::kQwen2);
  EXPECT_EQ(SplitRegex::Compile(kLlama3SplitPattern)->engine(), SplitRegex::Engine::kLlama3);
  EXPECT_EQ(SplitRegex::Compile(kGpt2SplitPattern)->engine(), SplitRegex::Engine::kPcre2);
  EXPECT_FALSE(SplitRegex::Compile("(unclosed").ok());
}

TEST(SplitRegex, Qwen2PatternPieces) {
  auto re = SplitRegex::Compile(kQwen2SplitPattern).value();
  EXPECT_EQ(Split(re, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(Split(re, "it's I'LL we'Re"), (V{"it", "'s", " I", "'LL", " we", "'Re"}));
  EXPECT_EQ(Split(re, "x'\u017Ft"), (V{"x", "'\u017F", "t"}));  // U+017F folds to s
  EXPECT_EQ(Split(re, "12345"), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(Split(re, "\u00BD\u2160"), (V{"\u00BD", "\u2160"}));
  EXPECT_EQ(Split(re, "  hello"), (V{" ", " hello"}));
  EXPECT_EQ(Split(re, "a  \n\n  b"), (V{"a", "  \n\n", " ", " b"}));
  EXPECT_EQ(Split(re, "end   "), (V{"end", "   "}));
  EXPECT_EQ(Split(re, " ((x))\n\n"), (V{" ((", "x", "))\n\n"}));
  EXPECT_EQ(Split(re, "\u0085's"), (V{"\u0085", "'s"}));
  EXPECT_EQ(Split(re, "\uFEFF's"), (V{"\uFEFF'", "s"}));  // U+FEFF is not \s
  EXPECT_EQ(Split(re, "\tfoo"), (V{"\tfoo"}));
  EXPECT_EQ(Split(re, "\nfoo"), (V{"\n", "foo"}));
  EXPECT_EQ(Split(re, "e\u0301t\u00E9"), (V{"e", "\u0301t\u00E9"}));  // marks are not \p{L}
}

TEST(SplitRegex, Llama3GroupsDigitsInThrees) {
  auto re = SplitRegex::Compile(kLlama3SplitPattern).value();
  EXPECT_EQ(Split(re, "1234567 x"), (V{"123", "456", "7", " x"}));
}

// The hand-written matchers must agree with PCRE2 on the same patterns, over random strings
// made of characters from every class that matters.
TEST(SplitRegex, FastPathAgreesWithPcre2OnRandomText) {
  const std::vector<std::string> alphabet = {
      "a",      "Z",      "s",          "S",      "t",      "l",      "L",      "r",      "e",
      "v",      "m",      "d",          "'",      "\u017F", "\u212A", " ",      " ",      "\t",
      "\n",     "\r",     "\u0085",     "\u00A0", "\u3000", "\u2028", "\uFEFF", "\u200B", "\u180E",
      "1",      "9",      "\u00BD",     "\u0663", ".",      ",",      "(",      "!",      "\u0301",
      "\u4E2D", "\u00E9", "\U0001F600", "\u200D", "_",      "-",      "\x0B",   "\x1C"};
  for (auto pattern : {kQwen2SplitPattern, kLlama3SplitPattern}) {
    auto fast = SplitRegex::Compile(pattern).value();
    auto pcre = SplitRegex::CompilePcre2(pattern).value();
    ASSERT_EQ(pcre.engine(), SplitRegex::Engine::kPcre2);
    std::mt19937 rng(1234);
    for (int iter = 0; iter < 4000; ++iter) {
      std::string text;
      const int len = static_cast<int>(rng() % 24);
      for (int i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
      ASSERT_EQ(Split(fast, text), Split(pcre, text)) << "text: " << json(text).dump();
    }
  }
}

TEST(SplitRegex, Pcre2TranslationUsesWhiteSpaceProperty) {
  const std::string t = TranslateToPcre2(R"(\s+|[^\s\p{L}]|\S)");
  EXPECT_EQ(t.find("\\s"), std::string::npos);
  EXPECT_EQ(t.find("\\S"), std::string::npos);
  auto re = SplitRegex::CompilePcre2(R"(\s+)").value();
  EXPECT_EQ(Split(re, "a\u180Eb\u0085c"), (V{"\u0085"}));
}

TEST(Bpe, BothMergeSerialisationsGiveTheSameIds) {
  Spec spec;
  spec.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}};
  const Tokenizer strings = Make(spec);
  spec.pair_form = true;
  const Tokenizer pairs = Make(spec);
  for (const char* text : {"hello world", "hell", "he llo", "wow  or"}) {
    EXPECT_EQ(strings.Encode(text), pairs.Encode(text)) << text;
  }
  EXPECT_EQ(Tokens(strings, "hello world"), (V{"hello", ByteLevel(" w"), "or", "l", "d"}));
  EXPECT_EQ(strings.Decode(strings.Encode("hello world")), "hello world");
}

TEST(Bpe, LowerRankWinsAndTiesGoLeft) {
  Spec spec;
  spec.merges = {{"b", "c"}, {"a", "b"}};
  EXPECT_EQ(Tokens(Make(spec), "abc"), (V{"a", "bc"}));
  spec.merges = {{"a", "b"}, {"b", "c"}};
  EXPECT_EQ(Tokens(Make(spec), "abc"), (V{"ab", "c"}));
  spec.merges = {{"a", "a"}};
  EXPECT_EQ(Tokens(Make(spec), "aaa"), (V{"aa", "a"}));
}

TEST(Bpe, LongWordsUseTheQueueAndAgreeWithShortOnes) {
  Spec spec;
  spec.merges = {{"a", "b"}, {"ab", "ab"}, {"abab", "abab"}, {"b", "a"}};
  const Tokenizer t = Make(spec);
  std::string longword;
  for (int i = 0; i < 300; ++i) longword += "ab";
  const auto ids = t.Encode(longword);
  // 600 letters = 75 "abababab" tokens by construction of the merges.
  EXPECT_EQ(ids.size(), 75u);
  EXPECT_EQ(t.Decode(ids), longword);
  std::vector<int32_t> expected;
  for (int i = 0; i < 75; ++i) {
    const auto one = t.Encode("abababab");
    expected.insert(expected.end(), one.begin(), one.end());
  }
  EXPECT_EQ(ids, expected);
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  Spec spec;
  spec.merges = {{"a", "b"}};
  spec.extra_vocab = {"abc"};
  EXPECT_EQ(Tokens(Make(spec), "abc"), (V{"ab", "c"}));
  spec.ignore_merges = true;
  EXPECT_EQ(Tokens(Make(spec), "abc"), (V{"abc"}));
}

TEST(Bpe, MergeWithUnknownTokenIsDataLoss) {
  json j = MakeJson(Spec{});
  j["model"]["merges"] = json::array({"x \xC4\xA0zzz"});
  auto t = Tokenizer::FromJson(j.dump(), "bad.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("bad.json"), std::string::npos);
  EXPECT_NE(t.status().message().find("merge 0"), std::string::npos);
}

TEST(AddedTokens, LongestMatchFirstAndNonSpecialTokensSplitToo) {
  Spec spec;
  spec.added = json::array(
      {Added(1000, "<a>", true), Added(1001, "<a>b", false), Added(1002, "<|end|>", true)});
  const Tokenizer t = Make(spec);
  EXPECT_EQ(t.Encode("q<a>bq<a><|end|>"), (std::vector<int32_t>{'q', 1001, 'q', 1000, 1002}));
  EXPECT_EQ(t.Decode(t.Encode("q<a>bq<a><|end|>"), /*skip_special_tokens=*/true), "q<a>bq");
  EXPECT_EQ(t.Decode(t.Encode("q<a>bq<a><|end|>")), "q<a>bq<a><|end|>");
  EXPECT_TRUE(t.IsSpecial(1000));
  EXPECT_FALSE(t.IsSpecial(1001));
  EXPECT_EQ(t.TokenToId("<a>b"), 1001);
  EXPECT_EQ(t.VocabSize(), 1003u);
  EXPECT_EQ(Tokens(t, "<|end"), (V{"<", "|", "e", "n", "d"}));  // incomplete: plain text
}

TEST(AddedTokens, StripFlagsSwallowNeighbouringWhiteSpace) {
  Spec spec;
  spec.added = json::array({Added(1000, "<m>", true, /*lstrip=*/true, /*rstrip=*/true)});
  const Tokenizer t = Make(spec);
  EXPECT_EQ(t.Decode(t.Encode("a \t <m>  b")), "a<m>b");
  Spec plain;
  plain.added = json::array({Added(1000, "<m>", true)});
  const Tokenizer u = Make(plain);
  EXPECT_EQ(u.Decode(u.Encode("a \t <m>  b")), "a \t <m>  b");
}

TEST(AddedTokens, SingleWordOnlyMatchesWholeWords) {
  Spec spec;
  spec.added = json::array({Added(1000, "cat", false, false, false, /*single_word=*/true)});
  const Tokenizer t = Make(spec);
  EXPECT_EQ(t.Encode("cat")[0], 1000);
  EXPECT_EQ(t.Encode("a cat.")[2], 1000);
  for (int32_t id : t.Encode("concat cats")) EXPECT_NE(id, 1000);
}

TEST(AddedTokens, NormalizedTokensMatchAfterNfc) {
  Spec spec;
  spec.added =
      json::array({Added(1000, "\u00E9t\u00E9", false, false, false, false, /*normalized=*/true)});
  const Tokenizer t = Make(spec);
  EXPECT_EQ(t.Encode("e\u0301te\u0301"), (std::vector<int32_t>{1000}));
}

TEST(PostProcessor, TemplateAddsBosOnlyWhenAsked) {
  Spec spec;
  spec.added = json::array({Added(1000, "<|begin_of_text|>", true)});
  spec.pattern = std::string(kLlama3SplitPattern);
  spec.post_processor = {
      {"type", "Sequence"},
      {"processors",
       json::array({{{"type", "ByteLevel"}},
                    {{"type", "TemplateProcessing"},
                     {"single", json::array({{{"SpecialToken",
                                               {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                     {"special_tokens",
                      {{"<|begin_of_text|>",
                        {{"id", "<|begin_of_text|>"},
                         {"ids", json::array({1000})},
                         {"tokens", json::array({"<|begin_of_text|>"})}}}}}}})}};
  const Tokenizer t = Make(spec);
  EXPECT_EQ(t.Encode("x", true), (std::vector<int32_t>{1000, 'x'}));
  EXPECT_EQ(t.Encode("x", false), (std::vector<int32_t>{'x'}));
}

TEST(Loading, UnsupportedComponentsAreNamed) {
  struct Case {
    const char* key;
    json value;
    const char* name;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "Lowercase"}}, "Lowercase"},
      {"pre_tokenizer", {{"type", "Whitespace"}}, "Whitespace"},
      {"decoder", {{"type", "WordPiece"}}, "WordPiece"},
      {"post_processor", {{"type", "Fancy"}}, "Fancy"},
  };
  for (const Case& c : cases) {
    json j = MakeJson(Spec{});
    j[c.key] = c.value;
    auto t = Tokenizer::FromJson(j.dump(), "x/tokenizer.json");
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented) << c.name;
    EXPECT_NE(t.status().message().find(c.name), std::string::npos) << t.status().message();
  }
  json j = MakeJson(Spec{});
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(Tokenizer::FromJson(j.dump(), "t").status().message().find("WordPiece"),
            std::string::npos);
  EXPECT_EQ(Tokenizer::FromJson("{not json", "t").status().code(), StatusCode::kDataLoss);
}

TEST(Decode, UnknownIdsAreSkippedAndInvalidBytesBecomeReplacementChars) {
  const Tokenizer t = Make(Spec{});
  // Byte ids: each byte's token id is its position in the byte-level table.
  auto id_of = [&](int byte) { return t.TokenToId(ByteChar(byte)).value(); };
  EXPECT_EQ(t.Decode(std::vector<int32_t>{id_of('a'), 999999, -5, id_of('b')}), "ab");
  EXPECT_EQ(t.Decode(std::vector<int32_t>{id_of(0xE4), id_of(0xBD)}), "\uFFFD");
  EXPECT_EQ(t.Decode(std::vector<int32_t>{id_of(0xE4), id_of(0xBD), id_of(0xA0)}), "\u4F60");
}

TEST(StreamDecoder, NeverEmitsHalfACharacter) {
  const Tokenizer t = Make(Spec{});
  auto id_of = [&](int byte) { return t.TokenToId(ByteChar(byte)).value(); };
  StreamDecoder s(t);
  EXPECT_EQ(s.Push(id_of('a')), "a");
  EXPECT_EQ(s.Push(id_of(0xE4)), "");
  EXPECT_EQ(s.Push(id_of(0xBD)), "");
  EXPECT_EQ(s.Push(id_of(0xA0)), "\u4F60");
  EXPECT_EQ(s.Push(id_of(0x80)), "\uFFFD");  // a lone continuation byte is final at once
  EXPECT_EQ(s.Push(id_of(0xF0)), "");
  EXPECT_EQ(s.Push(id_of('x')), "\uFFFDx");  // the held lead byte can no longer complete
  EXPECT_EQ(s.Push(id_of(0xE4)), "");
  EXPECT_EQ(s.Flush(), "\uFFFD");
  EXPECT_EQ(s.Flush(), "");
}

TEST(Encode, ThreadsAndRepeatsGiveIdenticalIds) {
  Spec spec;
  spec.merges = {{"t", "h"}, {"th", "e"}, {" ", "the"}, {"a", "n"}};
  const Tokenizer t = Make(spec);
  const std::string text = "the man and the plan, then the answer: 42\n";
  const auto want = t.Encode(text);
  EXPECT_EQ(t.Encode(text), want);  // second time from the word cache
  std::vector<std::thread> threads;
  std::vector<bool> ok(4, false);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      bool all = true;
      for (int k = 0; k < 50; ++k) all = all && t.Encode(text) == want;
      ok[i] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (bool b : ok) EXPECT_TRUE(b);
  // Invalid UTF-8 input is repaired as a lossy decode would before tokenizing.
  EXPECT_EQ(t.Decode(t.Encode("a\xFF"
                              "b")),
            "a\uFFFDb");
}

}  // namespace
}  // namespace rvec
