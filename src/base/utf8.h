// The one UTF-8 codec: strict decoding of one code point, encoding, validation, and Python's
// "surrogateescape" convention for text that must round-trip invalid bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rvec {

// Returned by DecodeUtf8 for a byte that does not start a well-formed sequence.
inline constexpr uint32_t kInvalidUtf8 = 0xFFFFFFFFu;

// Decodes the well-formed sequence at s[pos] (pos < s.size()) and sets *len to its length. Overlong
// forms, surrogates, code points above U+10FFFF and truncated sequences are not well-formed: they
// give kInvalidUtf8 with *len = 1, so that a caller always advances. Inline: the tokenizer's
// pre-tokenizer calls it once per character.
inline uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t left = s.size() - pos;
  const unsigned c = p[0];
  *len = 1;
  if (c < 0x80) return c;
  auto cont = [&](size_t k) { return k < left && (p[k] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c < 0xE0 && cont(1)) {
    *len = 2;
    return ((c & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (c >= 0xE0 && c < 0xF0 && cont(1) && cont(2)) {
    const uint32_t cp = ((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
      *len = 3;
      return cp;
    }
  }
  if (c >= 0xF0 && c < 0xF5 && cont(1) && cont(2) && cont(3)) {
    const uint32_t cp =
        ((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (cp >= 0x10000 && cp < 0x110000) {
      *len = 4;
      return cp;
    }
  }
  return kInvalidUtf8;
}

// Appends the UTF-8 encoding of `cp` (callers pass scalar values; nothing is checked).
void AppendUtf8(uint32_t cp, std::string* out);

// Offset of the first byte that is not part of a well-formed sequence, or npos.
size_t FindInvalidUtf8(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

// Python's errors="surrogateescape": an invalid byte b decodes as the lone surrogate U+DC00+b, and
// encoding maps U+DC80..U+DCFF back to the byte, so that arbitrary bytes survive a round trip
// through code points (the Python-compatible regex and the Jinja interpreter need this).
inline uint32_t DecodeUtf8Escaped(std::string_view s, size_t pos, size_t* len) {
  const uint32_t cp = DecodeUtf8(s, pos, len);
  return cp == kInvalidUtf8 ? 0xDC00 + static_cast<unsigned char>(s[pos]) : cp;
}
void AppendUtf8Escaped(uint32_t cp, std::string* out);

}  // namespace rvec
