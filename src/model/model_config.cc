// ModelConfig from HfConfig: architecture switches and RoPE frequencies (default and llama3).
#include "model/model_config.h"

#include <cmath>
#include <numbers>

namespace rvec {
namespace {

// transformers' _compute_llama3_parameters: long wavelengths divided by `factor`, short ones
// kept, the band in between interpolated smoothly.
Status ApplyLlama3Scaling(const nlohmann::json& s, std::string_view label,
                          std::vector<float>* inv_freq) {
  for (const char* key :
       {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    if (!s.contains(key) || !s[key].is_number()) {
      return InvalidArgument("{}: rope_scaling (llama3) needs a number '{}'", label, key);
    }
  }
  const float factor = s["factor"].get<float>();
  const float low = s["low_freq_factor"].get<float>();
  const float high = s["high_freq_factor"].get<float>();
  const float old_len = s["original_max_position_embeddings"].get<float>();
  if (!(high > low)) {
    return InvalidArgument("{}: rope_scaling high_freq_factor must exceed low_freq_factor", label);
  }
  const float low_wavelen = old_len / low;
  const float high_wavelen = old_len / high;
  for (float& f : *inv_freq) {
    const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
    float scaled = wavelen > low_wavelen ? f / factor : f;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (medium) {
      const float smooth = (old_len / wavelen - low) / (high - low);
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return OkStatus();
}

}  // namespace

StatusOr<ModelConfig> ModelConfig::FromHf(const HfConfig& hf, std::string_view label) {
  ModelConfig c;
  c.architecture = hf.Architecture();
  if (c.architecture == "Qwen2ForCausalLM") {
    c.arch = ModelArch::kQwen2;
  } else if (c.architecture == "LlamaForCausalLM") {
    c.arch = ModelArch::kLlama;
  } else if (c.architecture == "Qwen3ForCausalLM") {
    c.arch = ModelArch::kQwen3;
  } else if (c.architecture == "Olmo2ForCausalLM") {
    c.arch = ModelArch::kOlmo2;
  } else {
    return Unimplemented(
        "{}: architecture '{}' is not supported by the engine (Qwen2ForCausalLM, "
        "LlamaForCausalLM, Qwen3ForCausalLM, Olmo2ForCausalLM are)",
        label, c.architecture.empty() ? std::string("<none>") : c.architecture);
  }
  auto positive = [&](int64_t v, const char* key) -> Status {
    if (v <= 0) return InvalidArgument("{}: '{}' must be positive (got {})", label, key, v);
    return OkStatus();
  };
  RETURN_IF_ERROR(positive(hf.hidden_size, "hidden_size"));
  RETURN_IF_ERROR(positive(hf.num_hidden_layers, "num_hidden_layers"));
  RETURN_IF_ERROR(positive(hf.num_attention_heads, "num_attention_heads"));
  RETURN_IF_ERROR(positive(hf.intermediate_size, "intermediate_size"));
  RETURN_IF_ERROR(positive(hf.vocab_size, "vocab_size"));
  c.hidden = hf.hidden_size;
  c.layers = hf.num_hidden_layers;
  c.heads = hf.num_attention_heads;
  c.kv_heads = hf.num_key_value_heads > 0 ? hf.num_key_value_heads : hf.num_attention_heads;
  c.head_dim = hf.head_dim > 0 ? hf.head_dim : hf.hidden_size / hf.num_attention_heads;
  c.intermediate = hf.intermediate_size;
  c.vocab = hf.vocab_size;
  c.max_positions = hf.max_position_embeddings > 0 ? hf.max_position_embeddings : 32768;
  c.rms_eps = static_cast<float>(hf.rms_norm_eps);
  c.tie_embeddings = hf.tie_word_embeddings;
  if (c.heads % c.kv_heads != 0) {
    return InvalidArgument("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}",
                           label, c.heads, c.kv_heads);
  }
  if (c.head_dim % 2 != 0 || c.head_dim == 0) {
    return InvalidArgument("{}: head_dim {} must be even for RoPE", label, c.head_dim);
  }
  if (hf.head_dim <= 0 && hf.hidden_size % hf.num_attention_heads != 0) {
    return InvalidArgument("{}: hidden_size {} is not divisible by num_attention_heads {}", label,
                           hf.hidden_size, hf.num_attention_heads);
  }
  const bool mlp_bias = hf.raw.is_object() && hf.raw.value("mlp_bias", false);
  switch (c.arch) {
    case ModelArch::kQwen2:
      c.qkv_bias = true;
      break;
    case ModelArch::kLlama:
      c.qkv_bias = c.o_bias = hf.attention_bias;
      c.mlp_bias = mlp_bias;
      break;
    case ModelArch::kQwen3:
      c.qkv_bias = c.o_bias = hf.attention_bias;
      c.qk_norm = true;
      break;
    case ModelArch::kOlmo2:
      c.qkv_bias = c.o_bias = hf.attention_bias;
      c.qk_norm_full = true;
      c.post_norm = true;
      break;
  }
  if (!(hf.rope_theta > 0)) return InvalidArgument("{}: rope_theta must be positive", label);
  // As transformers: inv_freq = 1 / theta^(2i / d), in f32.
  const size_t half = c.head_dim / 2;
  c.inv_freq.resize(half);
  for (size_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    c.inv_freq[i] = 1.0f / static_cast<float>(std::pow(hf.rope_theta, double(exponent)));
  }
  const nlohmann::json& scaling = hf.rope_scaling;
  if (scaling.is_object()) {
    std::string type = scaling.value("rope_type", std::string());
    if (type.empty()) type = scaling.value("type", std::string());
    if (type == "llama3") {
      RETURN_IF_ERROR(ApplyLlama3Scaling(scaling, label, &c.inv_freq));
    } else if (type != "default" && !type.empty()) {
      return Unimplemented("{}: rope_scaling type '{}' is not supported (default and llama3 are)",
                           label, type);
    }
  }
  return c;
}

}  // namespace rvec
