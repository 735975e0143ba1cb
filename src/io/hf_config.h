// Typed view of a Hugging Face config.json; unknown keys are kept so a copy loses nothing.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rvec {

struct HfConfig {
  std::string model_type;                  // "qwen2", "llama", "qwen3"
  std::vector<std::string> architectures;  // {"Qwen2ForCausalLM"}
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads when absent
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t head_dim = 0;  // explicit in Qwen3; hidden_size / num_attention_heads otherwise
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // Llama's flag; Qwen2 always has q/k/v bias
  std::string torch_dtype;      // "bfloat16", ...
  nlohmann::json rope_scaling;  // null when absent
  nlohmann::json raw;           // the whole file as read

  std::string Architecture() const { return architectures.empty() ? "" : architectures[0]; }
};

StatusOr<HfConfig> ParseHfConfig(std::string_view json_text, std::string_view label);

// The files next to the weights that later commands copy from the target model.
inline constexpr std::string_view kModelSideFiles[] = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
};

}  // namespace rvec
