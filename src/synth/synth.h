// Random-weight Hugging Face model directories (rvec synth): Qwen2, Llama and Qwen3 layouts with
// transformers' tensor names, shapes and config.json, seeded and bit-reproducible, plus perturbed
// copies of a model (shared initialisation + seeded noise) for task-vector experiments.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/progress.h"
#include "base/status.h"
#include "io/checkpoint_writer.h"

namespace rvec {

// The architecture of a preset, in config.json terms.
struct SynthPreset {
  std::string name;          // "tiny-qwen2"
  std::string architecture;  // "Qwen2ForCausalLM"
  std::string model_type;    // "qwen2", "llama", "qwen3"
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless the preset says otherwise
  int64_t intermediate_size = 0;
  // 0 = fit the tokenizer (its size rounded up to a multiple of 64), as the tiny presets do.
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2: q/k/v projections carry a bias
  bool qk_norm = false;   // Qwen3: per-head RMSNorm on queries and keys
  // OLMo 2: RMSNorm over the whole q and k projections, and norms on the attention and MLP
  // outputs (post_attention_layernorm, post_feedforward_layernorm) instead of input_layernorm.
  bool olmo2_norms = false;
  // Qwen2 sliding-window fields (written to config.json; sliding attention itself is off).
  int64_t sliding_window = 0;
  int64_t max_window_layers = 0;
};

// Preset names in a stable order: tiny-qwen2, tiny-llama, tiny-qwen3, tiny-olmo2, qwen2.5-0.5b,
// qwen2.5-1.5b.
std::vector<std::string> SynthPresetNames();
// InvalidArgument listing the known presets when `name` is not one.
StatusOr<SynthPreset> GetSynthPreset(std::string_view name);

// How a tensor's values are drawn: weight ~ N(0, 0.02), norm ~ 1 + N(0, 0.02), bias ~ N(0, 0.01).
enum class SynthInit { kWeight, kNorm, kBias };

struct SynthTensor {
  TensorSpec spec;
  SynthInit init = SynthInit::kWeight;
};

// Tensors in the order transformers' save_pretrained writes them (state_dict order), with HF
// names and [out, in] shapes. `preset.vocab_size` must be resolved (non-zero).
std::vector<SynthTensor> SynthTensors(const SynthPreset& preset, DType dtype);
uint64_t SynthParameterCount(const SynthPreset& preset);

// config.json text as transformers 4.4x writes it (sorted keys, 2-space indent). `bos`/`eos` are
// the tokenizer's ids.
std::string SynthConfigJson(const SynthPreset& preset, DType dtype, int64_t bos_token_id,
                            int64_t eos_token_id);

// The built-in byte-level BPE tokenizer: 256 byte tokens, merges learned deterministically from
// a small built-in English text, then <|endoftext|>, <|im_start|>, <|im_end|>.
struct SynthTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;  // ChatML chat_template, eos <|im_end|>, pad <|endoftext|>
  int64_t size = 0;                   // largest id + 1
  int64_t endoftext_id = 0;
  int64_t im_start_id = 0;
  int64_t im_end_id = 0;
};
const SynthTokenizerFiles& SynthTokenizer();

// The sample from N(0, 1) that element `index` of tensor `name` gets under `seed`: the same
// value whatever the chunking or thread count. Fills out[0, n) with elements first..first+n.
void SynthNormals(uint64_t seed, std::string_view name, uint64_t first, float* out, size_t n);

// The N(0, 1) samples WritePerturbedModel adds (times stddev) to elements first..first+n of
// tensor `name` under perturbation seed `seed`, so callers can recompute a known perturbation.
void PerturbationNormals(uint64_t seed, std::string_view name, uint64_t first, float* out,
                         size_t n);

struct SynthOptions {
  std::string preset;
  uint64_t seed = 0;
  DType dtype = DType::kBF16;
  size_t shards = 1;                                   // exact number of safetensors files
  std::optional<std::filesystem::path> tokenizer_dir;  // copy a real tokenizer instead
  std::filesystem::path out;
  bool force = false;
  size_t threads = 0;  // 0 = DefaultThreadCount()
};

struct SynthResult {
  SynthPreset preset;  // with vocab_size resolved
  uint64_t parameters = 0;
  uint64_t tensor_bytes = 0;
  std::vector<std::string> shard_names;
  int64_t tokenizer_size = 0;
};

// Writes a complete model directory: safetensors (sharded into exactly `shards` files when > 1,
// with model.safetensors.index.json), config.json, generation_config.json, tokenizer.json and
// tokenizer_config.json. The directory appears only when complete.
StatusOr<SynthResult> WriteSyntheticModel(const SynthOptions& options, Progress* progress);

struct PerturbOptions {
  std::filesystem::path base;  // a model directory (or .safetensors file)
  std::filesystem::path out;   // a directory
  uint64_t seed = 0;
  double stddev = 0.0;  // absolute: each selected float element gets + stddev * N(0, 1)
  // Tensors whose name contains any of these strings are perturbed; empty = every float tensor.
  std::vector<std::string> only;
  size_t shards = 0;  // 0 = keep the base's shard count
  bool force = false;
  size_t threads = 0;
};

struct PerturbResult {
  size_t tensors_perturbed = 0;
  size_t tensors_copied = 0;
  uint64_t parameters_perturbed = 0;
  uint64_t tensor_bytes = 0;
};

// Writes base + seeded noise (computed in f32, rounded once to each tensor's dtype), keeping
// names, dtypes, shapes and the side files (config.json, tokenizer files, ...). The noise of a
// tensor depends only on (seed, tensor name), so two variants of one base with different seeds
// share everything but their perturbation.
StatusOr<PerturbResult> WritePerturbedModel(const PerturbOptions& options, Progress* progress);

// The byte budget that makes CheckpointWriter's greedy splitter produce exactly `shards` files
// for these tensors (0 for one file); InvalidArgument when no budget can.
StatusOr<uint64_t> ShardBudgetFor(const std::vector<TensorSpec>& tensors, size_t shards);

}  // namespace rvec
