// Unicode support for the tokenizer: UTF-8 coding, the character classes its regexes use, and NFC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/utf8.h"

namespace rvec::unicode {

namespace tables {
extern const char kUnicodeVersion[];
extern const char kNfcUnicodeVersion[];
extern const uint16_t kStage1[];
extern const uint16_t kStage2[];
extern const uint32_t kDecompKeys[];
extern const uint16_t kDecompOffsets[];
extern const uint32_t kDecompData[];
extern const uint32_t kDecompCount;
extern const uint64_t kCompKeys[];
extern const uint32_t kCompValues[];
extern const uint32_t kCompCount;
}  // namespace tables

// Property bits of one code point (see scripts/gen_unicode_tables.py).
inline constexpr uint16_t kCccMask = 0xFF;
inline constexpr uint16_t kLetter = 1u << 8;       // \p{L}
inline constexpr uint16_t kNumber = 1u << 9;       // \p{N}
inline constexpr uint16_t kWhiteSpace = 1u << 10;  // White_Space, Oniguruma's \s
inline constexpr uint16_t kNfcCheck = 1u << 11;    // may change under NFC

inline uint16_t Props(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  return tables::kStage2[static_cast<uint32_t>(tables::kStage1[cp >> 7]) * 128 + (cp & 127)];
}
inline bool IsLetter(uint32_t cp) { return Props(cp) & kLetter; }
inline bool IsNumber(uint32_t cp) { return Props(cp) & kNumber; }
inline bool IsWhiteSpace(uint32_t cp) { return Props(cp) & kWhiteSpace; }
inline uint8_t CombiningClass(uint32_t cp) { return Props(cp) & kCccMask; }

// Unicode version of the character classes (as Oniguruma 6.9.8 in HF tokenizers).
const char* UnicodeVersion();
// Unicode version of NFC (as the unicode-normalization-alignments crate in HF tokenizers): code
// points assigned later are left alone by Nfc().
const char* NfcUnicodeVersion();

// Decodes one code point at `s[pos]`; sets *len to the bytes consumed (>= 1). Invalid or truncated
// sequences decode as U+FFFD consuming one byte (only valid UTF-8 reaches the regex in practice).
inline uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t* len) {
  const uint32_t cp = rvec::DecodeUtf8(s, pos, len);
  return cp == kInvalidUtf8 ? 0xFFFD : cp;
}

inline void AppendUtf8(uint32_t cp, std::string* out) { rvec::AppendUtf8(cp, out); }
using rvec::IsValidUtf8;  // True when `s` is well-formed UTF-8.

// Lossy UTF-8 repair as Rust's String::from_utf8_lossy: each maximal invalid subsequence (in the
// sense of the Unicode standard, "substitution of maximal subparts") becomes one U+FFFD.
std::string Utf8Lossy(std::string_view bytes);

// Length of the longest suffix of `bytes` that is an incomplete but still valid prefix of a UTF-8
// sequence (0-3): the part a streaming decoder must hold back.
size_t IncompleteUtf8Suffix(std::string_view bytes);

// Unicode Normalization Form C of valid UTF-8 text.
std::string Nfc(std::string_view text);
// Nfc without the quick-check shortcut (for tests of the tables).
std::string NfcFull(std::string_view text);
// True when Nfc(text) == text, decided by the quick check; false means "maybe not".
bool IsNfcQuick(std::string_view text);

}  // namespace rvec::unicode
