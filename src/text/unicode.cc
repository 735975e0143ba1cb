// UTF-8 coding, lossy repair as Rust does it, and NFC (decompose, canonical order, compose).
#include "text/unicode.h"

#include <algorithm>
#include <vector>

namespace rvec::unicode {
namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr uint32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Valid range of the second byte after lead `c` (Unicode Table 3-7); {0, 0} for a bad lead.
struct SeqInfo {
  int length;
  unsigned char lo, hi;
};
inline SeqInfo LeadInfo(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes at `p` (at most `left`) that form a valid prefix of one sequence, and whether
// that prefix is the complete sequence.
inline int ValidPrefix(const unsigned char* p, size_t left, bool* complete) {
  const SeqInfo info = LeadInfo(p[0]);
  if (info.length == 0) {
    *complete = false;
    return 0;
  }
  if (info.length == 1) {
    *complete = true;
    return 1;
  }
  int n = 1;
  while (n < info.length && static_cast<size_t>(n) < left) {
    const unsigned char b = p[n];
    const bool ok = n == 1 ? (b >= info.lo && b <= info.hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++n;
  }
  *complete = n == info.length;
  return n;
}

uint32_t ComposePair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const uint64_t* end = tables::kCompKeys + tables::kCompCount;
  const uint64_t* it = std::lower_bound(tables::kCompKeys, end, key);
  if (it == end || *it != key) return 0;
  return tables::kCompValues[it - tables::kCompKeys];
}

void Decompose(uint32_t cp, std::vector<uint32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  const uint32_t* end = tables::kDecompKeys + tables::kDecompCount;
  const uint32_t* it = std::lower_bound(tables::kDecompKeys, end, cp);
  if (it == end || *it != cp) {
    out->push_back(cp);
    return;
  }
  const size_t i = it - tables::kDecompKeys;
  for (uint32_t k = tables::kDecompOffsets[i]; k < tables::kDecompOffsets[i + 1]; ++k) {
    out->push_back(tables::kDecompData[k]);
  }
}

}  // namespace

const char* UnicodeVersion() { return tables::kUnicodeVersion; }
const char* NfcUnicodeVersion() { return tables::kNfcUnicodeVersion; }

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    if (p[i] < 0x80) {
      out.push_back(static_cast<char>(p[i++]));
      continue;
    }
    bool complete = false;
    const int n = ValidPrefix(p + i, bytes.size() - i, &complete);
    if (complete) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += std::max(n, 1);
    }
  }
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    const unsigned char c = p[n - k];
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: the start lies further back
    bool complete = false;
    const int len = ValidPrefix(p + n - k, k, &complete);
    return (!complete && static_cast<size_t>(len) == k) ? k : 0;
  }
  return 0;
}

bool IsNfcQuick(std::string_view text) {
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    const uint32_t cp = DecodeUtf8(text, i, &len);
    if (Props(cp) & kNfcCheck) return false;
    i += len;
  }
  return true;
}

std::string Nfc(std::string_view text) {
  if (IsNfcQuick(text)) return std::string(text);
  return NfcFull(text);
}

std::string NfcFull(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    const uint32_t cp = DecodeUtf8(text, i, &len);
    Decompose(cp, &cps);
    i += len;
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint8_t c = CombiningClass(cps[i]);
    if (c == 0) continue;
    size_t j = i;
    while (j > 0 && CombiningClass(cps[j - 1]) > c) {
      std::swap(cps[j], cps[j - 1]);
      --j;
    }
  }
  // Canonical composition.
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  ptrdiff_t starter = -1;
  for (const uint32_t cp : cps) {
    const uint8_t ccc = CombiningClass(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      const uint8_t prev_ccc = adjacent ? 0 : CombiningClass(out.back());
      if (adjacent || (prev_ccc != 0 && prev_ccc < ccc)) {
        const uint32_t composite = ComposePair(out[starter], cp);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (ccc == 0) starter = static_cast<ptrdiff_t>(out.size());
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (const uint32_t cp : out) AppendUtf8(cp, &result);
  return result;
}

}  // namespace rvec::unicode
