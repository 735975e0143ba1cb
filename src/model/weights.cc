// Binds Hugging Face tensor names to ModelWeights, validating shapes and dtypes.
#include "model/weights.h"

#include <fmt/format.h>

#include <string>

namespace rvec {
namespace {

class Binder {
 public:
  Binder(const Checkpoint& ckpt, const ModelConfig& c) : ckpt_(ckpt), c_(c) {}

  StatusOr<TensorView> Find(const std::string& name, std::vector<int64_t> shape) {
    ASSIGN_OR_RETURN(TensorView v, ckpt_.View(name));
    const DType dt = v.dtype();
    if (dt != DType::kF32 && dt != DType::kBF16 && dt != DType::kF16) {
      return Unimplemented("{}: tensor '{}' has dtype {}; the engine reads F32, BF16 and F16",
                           ckpt_.path().string(), name, DTypeName(dt));
    }
    if (v.shape() != shape) {
      return FailedPrecondition("{}: tensor '{}' has shape {} but config.json implies {}",
                                ckpt_.path().string(), name, fmt::join(v.shape(), "x"),
                                fmt::join(shape, "x"));
    }
    return v;
  }

  Status Matrix(const std::string& name, size_t rows, size_t cols, WeightMatrix* out) {
    ASSIGN_OR_RETURN(TensorView v, Find(name, {int64_t(rows), int64_t(cols)}));
    *out = WeightMatrix{v.dtype(), v.data, rows, cols};
    bytes_ += v.NumBytes();
    return OkStatus();
  }

  Status Vector(const std::string& name, size_t n, std::vector<float>* out) {
    ASSIGN_OR_RETURN(TensorView v, Find(name, {int64_t(n)}));
    out->resize(n);
    for (size_t i = 0; i < n; ++i) (*out)[i] = LoadAsF32(v.dtype(), v.data, i);
    return OkStatus();
  }

  Status OptionalVector(bool wanted, const std::string& name, size_t n, std::vector<float>* out) {
    if (!wanted) {
      if (ckpt_.Has(name)) {
        return FailedPrecondition("{}: unexpected tensor '{}' for {} as configured",
                                  ckpt_.path().string(), name, c_.architecture);
      }
      return OkStatus();
    }
    return Vector(name, n, out);
  }

  uint64_t bytes() const { return bytes_; }

 private:
  const Checkpoint& ckpt_;
  const ModelConfig& c_;
  uint64_t bytes_ = 0;
};

}  // namespace

StatusOr<ModelWeights> ModelWeights::Load(const Checkpoint& ckpt, const ModelConfig& c) {
  ModelWeights w;
  Binder b(ckpt, c);
  RETURN_IF_ERROR(b.Matrix("model.embed_tokens.weight", c.vocab, c.hidden, &w.embed_tokens));
  w.layers.resize(c.layers);
  for (size_t i = 0; i < c.layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    RETURN_IF_ERROR(
        b.OptionalVector(!c.post_norm, p + "input_layernorm.weight", c.hidden, &l.input_norm));
    RETURN_IF_ERROR(b.Matrix(p + "self_attn.q_proj.weight", c.q_dim(), c.hidden, &l.q_proj));
    RETURN_IF_ERROR(b.Matrix(p + "self_attn.k_proj.weight", c.kv_dim(), c.hidden, &l.k_proj));
    RETURN_IF_ERROR(b.Matrix(p + "self_attn.v_proj.weight", c.kv_dim(), c.hidden, &l.v_proj));
    RETURN_IF_ERROR(b.Matrix(p + "self_attn.o_proj.weight", c.hidden, c.q_dim(), &l.o_proj));
    RETURN_IF_ERROR(
        b.OptionalVector(c.qkv_bias, p + "self_attn.q_proj.bias", c.q_dim(), &l.q_bias));
    RETURN_IF_ERROR(
        b.OptionalVector(c.qkv_bias, p + "self_attn.k_proj.bias", c.kv_dim(), &l.k_bias));
    RETURN_IF_ERROR(
        b.OptionalVector(c.qkv_bias, p + "self_attn.v_proj.bias", c.kv_dim(), &l.v_bias));
    RETURN_IF_ERROR(b.OptionalVector(c.o_bias, p + "self_attn.o_proj.bias", c.hidden, &l.o_bias));
    const size_t q_norm_dim = c.qk_norm_full ? c.q_dim() : c.head_dim;
    const size_t k_norm_dim = c.qk_norm_full ? c.kv_dim() : c.head_dim;
    const bool any_qk_norm = c.qk_norm || c.qk_norm_full;
    RETURN_IF_ERROR(
        b.OptionalVector(any_qk_norm, p + "self_attn.q_norm.weight", q_norm_dim, &l.q_norm));
    RETURN_IF_ERROR(
        b.OptionalVector(any_qk_norm, p + "self_attn.k_norm.weight", k_norm_dim, &l.k_norm));
    RETURN_IF_ERROR(b.OptionalVector(c.post_norm, p + "post_feedforward_layernorm.weight", c.hidden,
                                     &l.post_feedforward_norm));
    RETURN_IF_ERROR(
        b.Vector(p + "post_attention_layernorm.weight", c.hidden, &l.post_attention_norm));
    RETURN_IF_ERROR(b.Matrix(p + "mlp.gate_proj.weight", c.intermediate, c.hidden, &l.gate_proj));
    RETURN_IF_ERROR(b.Matrix(p + "mlp.up_proj.weight", c.intermediate, c.hidden, &l.up_proj));
    RETURN_IF_ERROR(b.Matrix(p + "mlp.down_proj.weight", c.hidden, c.intermediate, &l.down_proj));
    RETURN_IF_ERROR(
        b.OptionalVector(c.mlp_bias, p + "mlp.gate_proj.bias", c.intermediate, &l.gate_bias));
    RETURN_IF_ERROR(
        b.OptionalVector(c.mlp_bias, p + "mlp.up_proj.bias", c.intermediate, &l.up_bias));
    RETURN_IF_ERROR(b.OptionalVector(c.mlp_bias, p + "mlp.down_proj.bias", c.hidden, &l.down_bias));
  }
  RETURN_IF_ERROR(b.Vector("model.norm.weight", c.hidden, &w.final_norm));
  // transformers ties when tie_word_embeddings is set, ignoring any stored lm_head.weight.
  if (c.tie_embeddings) {
    w.lm_head = w.embed_tokens;
  } else if (ckpt.Has("lm_head.weight")) {
    RETURN_IF_ERROR(b.Matrix("lm_head.weight", c.vocab, c.hidden, &w.lm_head));
  } else {
    return NotFound("{}: 'lm_head.weight' is missing and tie_word_embeddings is false",
                    ckpt.path().string());
  }
  // Per token the engine reads one embedding row, every layer matrix and the lm_head.
  const uint64_t embed_bytes =
      w.embed_tokens.rows * w.embed_tokens.cols * DTypeSize(w.embed_tokens.dtype);
  w.mapped_bytes = b.bytes() - embed_bytes + (c.tie_embeddings ? embed_bytes : 0);
  return w;
}

}  // namespace rvec
