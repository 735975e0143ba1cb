// The model's tensors as named views into the memory-mapped checkpoint (bf16/f16/f32, used in
// place, never converted); only the small 1-D norm weights and biases are widened to f32.
#pragma once

#include <vector>

#include "base/status.h"
#include "io/checkpoint.h"
#include "model/model_config.h"
#include "ops/matmul.h"

namespace rvec {

struct LayerWeights {
  std::vector<float> input_norm;              // (hidden); empty with post_norm (OLMo 2)
  WeightMatrix q_proj;                        // (heads * head_dim, hidden)
  WeightMatrix k_proj;                        // (kv_heads * head_dim, hidden)
  WeightMatrix v_proj;                        // (kv_heads * head_dim, hidden)
  WeightMatrix o_proj;                        // (hidden, heads * head_dim)
  std::vector<float> q_bias, k_bias, v_bias;  // (q_dim), (kv_dim), (kv_dim); empty when absent
  std::vector<float> o_bias;                  // (hidden); empty when absent
  std::vector<float> q_norm, k_norm;          // Qwen3 (head_dim); OLMo 2 (q_dim), (kv_dim)
  std::vector<float>
      post_attention_norm;  // (hidden): before the MLP, or (OLMo 2) on attention's output
  std::vector<float> post_feedforward_norm;          // (hidden), OLMo 2 only: on the MLP's output
  WeightMatrix gate_proj;                            // (intermediate, hidden)
  WeightMatrix up_proj;                              // (intermediate, hidden)
  WeightMatrix down_proj;                            // (hidden, intermediate)
  std::vector<float> gate_bias, up_bias, down_bias;  // Llama mlp_bias only
};

struct ModelWeights {
  WeightMatrix embed_tokens;  // (vocab, hidden)
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // (hidden)
  WeightMatrix lm_head;           // (vocab, hidden); the embedding when tied
  uint64_t mapped_bytes = 0;      // bytes of the matrices read per token

  // Views every tensor the config needs, checking names, shapes and dtypes; errors name the
  // checkpoint and tensor. `checkpoint` must outlive the result.
  static StatusOr<ModelWeights> Load(const Checkpoint& checkpoint, const ModelConfig& config);
};

}  // namespace rvec
