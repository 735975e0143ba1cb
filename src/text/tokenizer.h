// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2/Qwen2.5/Qwen3, Llama-3),
// byte-exact with the Hugging Face tokenizers library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rvec {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

class Tokenizer {
 public:
  static StatusOr<Tokenizer> FromFile(const std::filesystem::path& tokenizer_json);
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (bos/eos/pad tokens).
  static StatusOr<Tokenizer> FromModelDir(const std::filesystem::path& dir);
  static StatusOr<Tokenizer> FromJson(std::string_view json_text, std::string_view label);

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // As `tokenizer.encode(text, add_special_tokens=...)` in transformers. Added tokens inside the
  // text are recognised (special or not). Thread-safe.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = false) const;
  // As `tokenizer.decode(ids, skip_special_tokens=...)`; invalid UTF-8 becomes U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // The raw bytes behind `ids` before UTF-8 repair (what StreamDecoder cuts at character
  // boundaries); unknown ids are skipped as Hugging Face does.
  std::string DecodeBytes(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The vocabulary string of `id` ("Ġthe"), empty if out of range.
  std::string IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  // Largest id + 1 over the vocabulary and added tokens.
  size_t VocabSize() const;
  const std::vector<AddedToken>& added_tokens() const;

  // From tokenizer_config.json when loaded from a model directory ("" when unknown).
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& pad_token() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Incremental decoding for streaming output: Push(id) returns the text that became final, never
// half a UTF-8 character; Flush() returns whatever remains.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string Push(int32_t id);
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> pending_;
  size_t emitted_bytes_ = 0;
};

}  // namespace rvec
