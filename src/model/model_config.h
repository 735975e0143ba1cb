// The architecture parameters the engine needs, read from a Hugging Face config.json
// (Qwen2ForCausalLM, LlamaForCausalLM incl. llama3 rope scaling, Qwen3ForCausalLM).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/hf_config.h"

namespace rvec {

enum class ModelArch { kQwen2, kLlama, kQwen3, kOlmo2 };

struct ModelConfig {
  ModelArch arch = ModelArch::kQwen2;
  std::string architecture;  // "Qwen2ForCausalLM", ...
  size_t hidden = 0;
  size_t layers = 0;
  size_t heads = 0;
  size_t kv_heads = 0;
  size_t head_dim = 0;
  size_t intermediate = 0;
  size_t vocab = 0;
  size_t max_positions = 0;
  float rms_eps = 1e-6f;
  bool tie_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama/Qwen3 with attention_bias
  bool o_bias = false;    // Llama/Qwen3 with attention_bias
  bool mlp_bias = false;  // Llama mlp_bias
  bool qk_norm = false;   // Qwen3: RMSNorm over each head of q and k before RoPE
  // OLMo 2: RMSNorm over the whole q and k projections (all heads at once) before RoPE.
  bool qk_norm_full = false;
  // OLMo 2: no norm before attention and MLP; their outputs are normed before the residual add.
  bool post_norm = false;
  // RoPE inverse frequencies, head_dim / 2 of them, after rope_scaling; f32 as transformers
  // computes them.
  std::vector<float> inv_freq;

  size_t q_dim() const { return heads * head_dim; }
  size_t kv_dim() const { return kv_heads * head_dim; }
  // Bytes of K and V for one token over all layers (f32 cache).
  size_t KvBytesPerToken() const { return layers * 2 * kv_dim() * sizeof(float); }

  // Validates the fields and derives the rest; errors name `label` (the config path).
  static StatusOr<ModelConfig> FromHf(const HfConfig& hf, std::string_view label);
};

}  // namespace rvec
