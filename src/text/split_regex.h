// The pre-tokenizer regex with Oniguruma semantics: hand-written matchers for the Qwen2 and
// Llama-3 split patterns, PCRE2 (UTF + UCP, \s rewritten to White_Space) for any other pattern.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace rvec {

// The split pattern of Qwen2/Qwen2.5/Qwen3 tokenizer.json (JSON-unescaped).
inline constexpr std::string_view kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// The split pattern of Llama-3 tokenizer.json: as Qwen2's but digits in runs of up to three.
inline constexpr std::string_view kLlama3SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex=true.
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class SplitRegex {
 public:
  enum class Engine { kQwen2, kLlama3, kPcre2 };
  using Span = std::pair<uint32_t, uint32_t>;  // [begin, end) byte offsets

  // A regex pattern as written in tokenizer.json ("Regex" form).
  static StatusOr<SplitRegex> Compile(std::string_view pattern);
  // A literal string pattern ("String" form).
  static StatusOr<SplitRegex> Literal(std::string_view text);
  // Forces PCRE2 even for a recognised pattern (tests compare the two engines).
  static StatusOr<SplitRegex> CompilePcre2(std::string_view pattern);

  SplitRegex();
  ~SplitRegex();
  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;

  Engine engine() const { return engine_; }
  // All non-empty, non-overlapping matches, leftmost first (Oniguruma find_iter order). `text`
  // must be valid UTF-8 and shorter than 4 GiB.
  void FindAll(std::string_view text, std::vector<Span>* matches) const;

 private:
  struct Pcre;
  Engine engine_ = Engine::kPcre2;
  std::unique_ptr<Pcre> pcre_;
};

// Rewrites Oniguruma-isms for PCRE2: \s and \S become explicit White_Space classes (PCRE2's \s
// also matches U+180E). Exposed for tests.
std::string TranslateToPcre2(std::string_view pattern);

}  // namespace rvec
