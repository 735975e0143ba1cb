// Hugging Face chat templates: a Jinja subset interpreter that renders tokenizer_config.json's
// chat_template byte-identically with transformers' apply_chat_template (Jinja2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rvec {

struct ChatTemplateInputs {
  nlohmann::json messages = nlohmann::json::array();  // [{"role": ..., "content": ...}, ...]
  nlohmann::json tools;                               // null when absent
  bool add_generation_prompt = false;
  // Extra variables (e.g. enable_thinking for Qwen3); bos/eos tokens come from the template.
  nlohmann::json extra = nlohmann::json::object();
};

// The same inputs with key order preserved, as Python dicts keep it: `tojson` of tools and
// tool-call arguments then matches transformers byte for byte (nlohmann::json sorts keys).
// Prefer this for messages read from JSON text.
struct OrderedChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null when absent
  bool add_generation_prompt = false;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // Parses a template; syntax errors name the template line.
  static StatusOr<ChatTemplate> Parse(std::string_view source, std::string bos_token = "",
                                      std::string eos_token = "");
  // From a model directory: chat_template.jinja, else chat_template.json, else
  // tokenizer_config.json's chat_template (a string, or the list of named templates: "default").
  static StatusOr<ChatTemplate> FromModelDir(const std::filesystem::path& dir);

  ChatTemplate();
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders; raise_exception() and runtime errors come back as an error naming the line.
  StatusOr<std::string> Render(const ChatTemplateInputs& inputs) const;
  StatusOr<std::string> Render(const OrderedChatTemplateInputs& inputs) const;

  // Special tokens passed to the template ("" when the model has none).
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  // Where the template came from (a file path, or "<string>").
  const std::string& source_label() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Tokenizer;

// The special token that closes an assistant turn (e.g. <|im_end|>), read off a rendered reply:
// base models' generation configs often list only <|endoftext|>, and a chat answer must still stop
// at the end of its turn. nullopt when the template puts no special token there.
std::optional<int32_t> EndOfTurnId(const ChatTemplate& tmpl, const Tokenizer& tok);

}  // namespace rvec
