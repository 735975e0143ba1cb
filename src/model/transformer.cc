// The forward pass (Qwen2 / Llama / Qwen3 / OLMo 2): embedding, then per layer RMSNorm -> q/k/v ->
// RoPE -> grouped-query attention over the KV cache -> o_proj -> residual -> RMSNorm -> SwiGLU MLP
// -> residual, then the final norm and lm_head. OLMo 2 norms each block's output instead of its
// input. Activations are f32 throughout.
#include "model/transformer.h"

#include <algorithm>
#include <cmath>

#include "ops/nn.h"

namespace rvec {
namespace {

const float* OrNull(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

void Grow(std::vector<float>* v, size_t n) {
  if (v->size() < n) v->resize(n);
}

}  // namespace

Transformer::Transformer(const ModelConfig& config, const ModelWeights& weights, ThreadPool* pool,
                         MatMulPrecision precision)
    : c_(config), w_(weights), pool_(pool), precision_(precision) {}

void Transformer::Forward(std::span<const TokenInput> tokens, std::vector<float>* logits) {
  const size_t n = tokens.size();
  const size_t H = c_.hidden, D = c_.head_dim, QD = c_.q_dim(), KVD = c_.kv_dim();
  const size_t I = c_.intermediate, half = D / 2;
  const size_t workers = pool_ ? pool_->NumWorkers() : 1;
  Grow(&x_, n * H), Grow(&xn_, n * H), Grow(&tmp_, n * H);
  Grow(&q_, n * QD), Grow(&k_, n * KVD), Grow(&v_, n * KVD), Grow(&att_, n * QD);
  Grow(&gate_, n * I), Grow(&up_, n * I), Grow(&rope_, n * D);
  size_t max_ctx = 0;
  for (const TokenInput& t : tokens) max_ctx = std::max(max_ctx, t.pos + 1);
  max_ctx = RoundUpToKeyTile(max_ctx);  // the attention kernel scores whole key tiles
  Grow(&scores_, workers * (c_.heads / c_.kv_heads) * max_ctx);
  auto for_tokens = [&](auto&& fn) {
    if (pool_ && n > 1) {
      pool_->ParallelFor(n, [&](size_t t, size_t) { fn(t); });
    } else {
      for (size_t t = 0; t < n; ++t) fn(t);
    }
  };

  // Embedding rows, and each token's RoPE cos (first half) / sin (second half of rope_).
  for_tokens([&](size_t t) {
    const size_t row = static_cast<size_t>(tokens[t].token);
    for (size_t i = 0; i < H; ++i) {
      x_[t * H + i] = LoadAsF32(w_.embed_tokens.dtype, w_.embed_tokens.data, row * H + i);
    }
    for (size_t i = 0; i < half; ++i) {
      const double angle = double(tokens[t].pos) * double(c_.inv_freq[i]);
      rope_[t * D + i] = static_cast<float>(std::cos(angle));
      rope_[t * D + half + i] = static_cast<float>(std::sin(angle));
    }
  });

  // A sequence entering a new key tile gets it cleared first (before the parallel stores below).
  for (const TokenInput& t : tokens) {
    if (t.pos % kKeyTile == 0) t.kv->ClearKeyTile(t.pos);
  }

  for (size_t l = 0; l < c_.layers; ++l) {
    const LayerWeights& lw = w_.layers[l];
    // Attention block (OLMo 2: on the residual stream itself, no norm before it).
    if (!c_.post_norm) {
      for_tokens(
          [&](size_t t) { RmsNorm(&x_[t * H], lw.input_norm.data(), H, c_.rms_eps, &xn_[t * H]); });
    }
    const MatMulJob qkv[] = {{lw.q_proj, OrNull(lw.q_bias), q_.data(), QD},
                             {lw.k_proj, OrNull(lw.k_bias), k_.data(), KVD},
                             {lw.v_proj, OrNull(lw.v_bias), v_.data(), KVD}};
    MatMulMulti(c_.post_norm ? x_.data() : xn_.data(), n, H, qkv, 3, pool_, precision_);
    for_tokens([&](size_t t) {
      const float* cos = &rope_[t * D];
      const float* sin = &rope_[t * D + half];
      if (c_.qk_norm_full) {  // OLMo 2: over all heads at once
        RmsNorm(&q_[t * QD], lw.q_norm.data(), QD, c_.rms_eps, &q_[t * QD]);
        RmsNorm(&k_[t * KVD], lw.k_norm.data(), KVD, c_.rms_eps, &k_[t * KVD]);
      }
      for (size_t h = 0; h < c_.heads; ++h) {
        float* qh = &q_[t * QD + h * D];
        if (c_.qk_norm) RmsNorm(qh, lw.q_norm.data(), D, c_.rms_eps, qh);
        ApplyRope(qh, D, cos, sin);
      }
      for (size_t h = 0; h < c_.kv_heads; ++h) {
        float* kh = &k_[t * KVD + h * D];
        if (c_.qk_norm) RmsNorm(kh, lw.k_norm.data(), D, c_.rms_eps, kh);
        ApplyRope(kh, D, cos, sin);
      }
      tokens[t].kv->Store(l, tokens[t].pos, &k_[t * KVD], &v_[t * KVD]);
    });
    // Every token of this step has its K/V cached, so attention sees its own chunk causally.
    Attend(tokens, l, max_ctx);
    MatMul(att_.data(), n, QD, lw.o_proj, OrNull(lw.o_bias), tmp_.data(), H, pool_, precision_);
    for_tokens([&](size_t t) {
      if (c_.post_norm) {
        RmsNorm(&tmp_[t * H], lw.post_attention_norm.data(), H, c_.rms_eps, &tmp_[t * H]);
        AddInPlace(&x_[t * H], &tmp_[t * H], H);
      } else {
        AddInPlace(&x_[t * H], &tmp_[t * H], H);
        RmsNorm(&x_[t * H], lw.post_attention_norm.data(), H, c_.rms_eps, &xn_[t * H]);
      }
    });
    // SwiGLU MLP block.
    const MatMulJob gate_up[] = {{lw.gate_proj, OrNull(lw.gate_bias), gate_.data(), I},
                                 {lw.up_proj, OrNull(lw.up_bias), up_.data(), I}};
    MatMulMulti(c_.post_norm ? x_.data() : xn_.data(), n, H, gate_up, 2, pool_, precision_);
    for_tokens([&](size_t t) { SiluMul(&gate_[t * I], &up_[t * I], I, &gate_[t * I]); });
    MatMul(gate_.data(), n, I, lw.down_proj, OrNull(lw.down_bias), tmp_.data(), H, pool_,
           precision_);
    for_tokens([&](size_t t) {
      if (c_.post_norm) {
        RmsNorm(&tmp_[t * H], lw.post_feedforward_norm.data(), H, c_.rms_eps, &tmp_[t * H]);
      }
      AddInPlace(&x_[t * H], &tmp_[t * H], H);
    });
  }

  // Final norm and lm_head only for the tokens whose logits are wanted.
  size_t m = 0;
  for (size_t t = 0; t < n; ++t) {
    if (!tokens[t].want_logits) continue;
    RmsNorm(&x_[t * H], w_.final_norm.data(), H, c_.rms_eps, &xn_[m * H]);
    ++m;
  }
  logits->resize(m * c_.vocab);
  MatMul(xn_.data(), m, H, w_.lm_head, nullptr, logits->data(), c_.vocab, pool_, precision_);
}

void Transformer::Attend(std::span<const TokenInput> tokens, size_t l, size_t max_ctx) {
  const size_t n = tokens.size();
  const size_t D = c_.head_dim, QD = c_.q_dim(), KVD = c_.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const size_t group = c_.heads / c_.kv_heads;
  // The query heads of one kv head run together, reading the cache once; groups are split into
  // blocks only when there are fewer groups than workers. Any split gives the same bits.
  const size_t workers = pool_ ? pool_->NumWorkers() : 1;
  const size_t groups = n * c_.kv_heads;
  const size_t blocks = std::min(group, (workers + groups - 1) / groups);
  const size_t per_block = (group + blocks - 1) / blocks;
  const size_t blocks_per_group = (group + per_block - 1) / per_block;
  auto attend = [&](size_t task, size_t worker) {
    const size_t t = task / (c_.kv_heads * blocks_per_group);
    const size_t kvh = task / blocks_per_group % c_.kv_heads;
    const size_t h0 = kvh * group + task % blocks_per_group * per_block;
    const size_t heads = std::min(per_block, (kvh + 1) * group - h0);
    const SequenceKv* kv = tokens[t].kv;
    KvSegment segs[2];
    const size_t n_segs = kv->Segments(l, kvh, tokens[t].pos + 1, segs);
    AttentionGroupSegments(&q_[t * QD + h0 * D], heads, segs, n_segs, kv->bf16(), KVD, D, scale,
                           &scores_[worker * per_block * max_ctx], max_ctx, &att_[t * QD + h0 * D]);
  };
  const size_t tasks = groups * blocks_per_group;
  // Short contexts (decode of a few sequences) are cheaper than waking the workers.
  const bool parallel = pool_ && n * c_.heads * max_ctx * D >= (size_t(1) << 18);
  if (parallel) {
    pool_->ParallelFor(tasks, attend);
  } else {
    for (size_t task = 0; task < tasks; ++task) attend(task, 0);
  }
}

}  // namespace rvec
