// Synthetic model presets: architectures, transformers' tensor list and config.json per family.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "synth/synth.h"

namespace rvec {
namespace {

// The tiny presets: one per architecture family, small enough for every test.
std::vector<SynthPreset> TinyPresets() {
  std::vector<SynthPreset> presets;
  {
    SynthPreset p;
    p.name = "tiny-qwen2";
    p.architecture = "Qwen2ForCausalLM";
    p.model_type = "qwen2";
    p.hidden_size = 64;
    p.num_hidden_layers = 2;
    p.num_attention_heads = 4;
    p.num_key_value_heads = 2;
    p.intermediate_size = 128;
    p.max_position_embeddings = 32768;
    p.rope_theta = 1000000.0;
    p.rms_norm_eps = 1e-6;
    p.tie_word_embeddings = true;
    p.qkv_bias = true;
    p.sliding_window = 32768;
    p.max_window_layers = 2;
    presets.push_back(p);
  }
  {
    SynthPreset p;
    p.name = "tiny-llama";
    p.architecture = "LlamaForCausalLM";
    p.model_type = "llama";
    p.hidden_size = 64;
    p.num_hidden_layers = 2;
    p.num_attention_heads = 4;
    p.num_key_value_heads = 2;
    p.intermediate_size = 128;
    p.max_position_embeddings = 32768;
    p.rope_theta = 500000.0;
    p.rms_norm_eps = 1e-5;
    p.tie_word_embeddings = false;
    presets.push_back(p);
  }
  {
    SynthPreset p;
    p.name = "tiny-qwen3";
    p.architecture = "Qwen3ForCausalLM";
    p.model_type = "qwen3";
    p.hidden_size = 64;
    p.num_hidden_layers = 2;
    p.num_attention_heads = 4;
    p.num_key_value_heads = 2;
    p.head_dim = 32;  // explicit and != hidden / heads, as in the real Qwen3 models
    p.intermediate_size = 128;
    p.max_position_embeddings = 32768;
    p.rope_theta = 1000000.0;
    p.rms_norm_eps = 1e-6;
    p.tie_word_embeddings = true;
    p.qk_norm = true;
    p.max_window_layers = 2;
    presets.push_back(p);
  }
  {
    // The shape of allenai/OLMo-2-1124-7B, scaled down (full multi-head attention, untied).
    SynthPreset p;
    p.name = "tiny-olmo2";
    p.architecture = "Olmo2ForCausalLM";
    p.model_type = "olmo2";
    p.hidden_size = 64;
    p.num_hidden_layers = 2;
    p.num_attention_heads = 4;
    p.num_key_value_heads = 4;
    p.intermediate_size = 128;
    p.max_position_embeddings = 4096;
    p.rope_theta = 500000.0;
    p.rms_norm_eps = 1e-6;
    p.tie_word_embeddings = false;
    p.olmo2_norms = true;
    presets.push_back(p);
  }
  return presets;
}

// The real Qwen2.5 shapes, for benchmarks and memory measurements.
std::vector<SynthPreset> RealShapePresets() {
  std::vector<SynthPreset> presets;
  {
    // Qwen/Qwen2.5-0.5B.
    SynthPreset p;
    p.name = "qwen2.5-0.5b";
    p.architecture = "Qwen2ForCausalLM";
    p.model_type = "qwen2";
    p.hidden_size = 896;
    p.num_hidden_layers = 24;
    p.num_attention_heads = 14;
    p.num_key_value_heads = 2;
    p.intermediate_size = 4864;
    p.vocab_size = 151936;
    p.max_position_embeddings = 32768;
    p.rope_theta = 1000000.0;
    p.rms_norm_eps = 1e-6;
    p.tie_word_embeddings = true;
    p.qkv_bias = true;
    p.sliding_window = 32768;
    p.max_window_layers = 24;
    presets.push_back(p);
  }
  {
    // Qwen/Qwen2.5-1.5B.
    SynthPreset p;
    p.name = "qwen2.5-1.5b";
    p.architecture = "Qwen2ForCausalLM";
    p.model_type = "qwen2";
    p.hidden_size = 1536;
    p.num_hidden_layers = 28;
    p.num_attention_heads = 12;
    p.num_key_value_heads = 2;
    p.intermediate_size = 8960;
    p.vocab_size = 151936;
    p.max_position_embeddings = 131072;
    p.rope_theta = 1000000.0;
    p.rms_norm_eps = 1e-6;
    p.tie_word_embeddings = true;
    p.qkv_bias = true;
    p.sliding_window = 131072;
    p.max_window_layers = 28;
    presets.push_back(p);
  }
  return presets;
}

std::vector<SynthPreset> MakePresets() {
  std::vector<SynthPreset> presets = TinyPresets();
  for (SynthPreset& p : RealShapePresets()) presets.push_back(p);
  for (SynthPreset& p : presets) {
    if (p.head_dim == 0) p.head_dim = p.hidden_size / p.num_attention_heads;
  }
  return presets;
}

const std::vector<SynthPreset>& Presets() {
  static const std::vector<SynthPreset> presets = MakePresets();
  return presets;
}

std::string TorchDtypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF64:
      return "float64";
    default:
      return "float32";
  }
}

}  // namespace

std::vector<std::string> SynthPresetNames() {
  std::vector<std::string> names;
  for (const SynthPreset& p : Presets()) names.push_back(p.name);
  return names;
}

StatusOr<SynthPreset> GetSynthPreset(std::string_view name) {
  std::string known;
  for (const SynthPreset& p : Presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  return InvalidArgument("unknown preset \"{}\" (known: {})", name, known);
}

std::vector<SynthTensor> SynthTensors(const SynthPreset& p, DType dtype) {
  std::vector<SynthTensor> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, SynthInit init) {
    SynthTensor t;
    t.spec.name = std::move(name);
    t.spec.dtype = dtype;
    t.spec.shape = std::move(shape);
    t.init = init;
    out.push_back(std::move(t));
  };
  const int64_t h = p.hidden_size;
  const int64_t q_dim = p.num_attention_heads * p.head_dim;
  const int64_t kv_dim = p.num_key_value_heads * p.head_dim;
  add("model.embed_tokens.weight", {p.vocab_size, h}, SynthInit::kWeight);
  for (int64_t l = 0; l < p.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    const std::string attn = prefix + "self_attn.";
    add(attn + "q_proj.weight", {q_dim, h}, SynthInit::kWeight);
    if (p.qkv_bias) add(attn + "q_proj.bias", {q_dim}, SynthInit::kBias);
    add(attn + "k_proj.weight", {kv_dim, h}, SynthInit::kWeight);
    if (p.qkv_bias) add(attn + "k_proj.bias", {kv_dim}, SynthInit::kBias);
    add(attn + "v_proj.weight", {kv_dim, h}, SynthInit::kWeight);
    if (p.qkv_bias) add(attn + "v_proj.bias", {kv_dim}, SynthInit::kBias);
    add(attn + "o_proj.weight", {h, q_dim}, SynthInit::kWeight);
    if (p.qk_norm) {
      add(attn + "q_norm.weight", {p.head_dim}, SynthInit::kNorm);
      add(attn + "k_norm.weight", {p.head_dim}, SynthInit::kNorm);
    }
    if (p.olmo2_norms) {
      add(attn + "q_norm.weight", {q_dim}, SynthInit::kNorm);
      add(attn + "k_norm.weight", {kv_dim}, SynthInit::kNorm);
    }
    add(prefix + "mlp.gate_proj.weight", {p.intermediate_size, h}, SynthInit::kWeight);
    add(prefix + "mlp.up_proj.weight", {p.intermediate_size, h}, SynthInit::kWeight);
    add(prefix + "mlp.down_proj.weight", {h, p.intermediate_size}, SynthInit::kWeight);
    if (!p.olmo2_norms) add(prefix + "input_layernorm.weight", {h}, SynthInit::kNorm);
    add(prefix + "post_attention_layernorm.weight", {h}, SynthInit::kNorm);
    if (p.olmo2_norms) add(prefix + "post_feedforward_layernorm.weight", {h}, SynthInit::kNorm);
  }
  add("model.norm.weight", {h}, SynthInit::kNorm);
  if (!p.tie_word_embeddings) add("lm_head.weight", {p.vocab_size, h}, SynthInit::kWeight);
  return out;
}

uint64_t SynthParameterCount(const SynthPreset& preset) {
  uint64_t total = 0;
  for (const SynthTensor& t : SynthTensors(preset, DType::kF32)) {
    uint64_t n = 1;
    for (int64_t d : t.spec.shape) n *= static_cast<uint64_t>(d);
    total += n;
  }
  return total;
}

std::string SynthConfigJson(const SynthPreset& p, DType dtype, int64_t bos_token_id,
                            int64_t eos_token_id) {
  // nlohmann::json keeps keys sorted, as transformers' to_json_string(sort_keys=True) does.
  nlohmann::json c;
  c["architectures"] = {p.architecture};
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = bos_token_id;
  c["eos_token_id"] = eos_token_id;
  c["hidden_act"] = "silu";
  c["hidden_size"] = p.hidden_size;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = p.intermediate_size;
  c["max_position_embeddings"] = p.max_position_embeddings;
  c["model_type"] = p.model_type;
  c["num_attention_heads"] = p.num_attention_heads;
  c["num_hidden_layers"] = p.num_hidden_layers;
  c["num_key_value_heads"] = p.num_key_value_heads;
  c["rms_norm_eps"] = p.rms_norm_eps;
  c["rope_scaling"] = nullptr;
  c["rope_theta"] = p.rope_theta;
  c["tie_word_embeddings"] = p.tie_word_embeddings;
  c["torch_dtype"] = TorchDtypeName(dtype);
  c["use_cache"] = true;
  c["vocab_size"] = p.vocab_size;
  if (p.model_type == "qwen2") {
    c["max_window_layers"] = p.max_window_layers;
    c["sliding_window"] = p.sliding_window;
    c["use_sliding_window"] = false;
    c["transformers_version"] = "4.45.2";
  } else if (p.model_type == "llama") {
    c["attention_bias"] = false;
    c["head_dim"] = p.head_dim;
    c["mlp_bias"] = false;
    c["pretraining_tp"] = 1;
    c["transformers_version"] = "4.45.2";
  } else if (p.model_type == "olmo2") {
    c["attention_bias"] = false;
    c["pad_token_id"] = eos_token_id;
    c["transformers_version"] = "4.47.0";
  } else if (p.model_type == "qwen3") {
    c["attention_bias"] = false;
    c["head_dim"] = p.head_dim;
    c["max_window_layers"] = p.max_window_layers;
    c["sliding_window"] = nullptr;
    c["use_sliding_window"] = false;
    c["transformers_version"] = "4.51.0";
  }
  return c.dump(2) + "\n";
}

}  // namespace rvec
