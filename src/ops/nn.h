// Transformer building blocks on f32 activations (RMSNorm, RoPE, SwiGLU, softmax attention), each
// one dynamic dispatch per call on a whole row or head.
#pragma once

#include <cstddef>

namespace rvec {

// out = x / sqrt(mean(x^2) + eps) * weight (Hugging Face LlamaRMSNorm / Qwen2RMSNorm in f32).
// `out` may alias `x`.
void RmsNorm(const float* x, const float* weight, size_t n, float eps, float* out);

// y += x.
void AddInPlace(float* y, const float* x, size_t n);

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). `out` may alias either input.
void SiluMul(const float* gate, const float* up, size_t n, float* out);

// In-place softmax (max subtracted first).
void Softmax(float* x, size_t n);

// Hugging Face rotate-half RoPE on one head of `head_dim` values:
// x[i] <- x[i] cos[i] - x[i + h] sin[i], x[i + h] <- x[i + h] cos[i] + x[i] sin[i], h = head_dim/2.
void ApplyRope(float* x, size_t head_dim, const float* cos, const float* sin);

// Causal attention of one query head over `n_ctx` cached positions. Keys come in tiles of 16
// positions, [n_ctx / 16 rounded up][head_dim][16] from `k_tiles`, so that 16 scores are one
// vector computed lane by lane in d order; value j is at v + j * v_stride.
// out[head_dim] = softmax(scale * K q) V. `scores` holds n_ctx rounded up to 16 floats of scratch.
// Each output depends only on q and the cache, never on other heads or tokens.
void AttentionHead(const float* q, const float* k_tiles, const float* v, size_t v_stride,
                   size_t n_ctx, size_t head_dim, float scale, float* scores, float* out);

// One run of cached positions: keys in the tile layout above from `k_tiles`, value j at
// v + j * v_stride elements. A sequence's cache can be a read-only prompt shared by several
// sequences followed by its own tail; every segment but the last holds whole tiles, so the split
// changes no lane's arithmetic.
struct KvSegment {
  const void* k_tiles = nullptr;  // float or bf16 (uint16_t), per the call's `bf16`
  const void* v = nullptr;
  size_t positions = 0;
};

// AttentionHead over the concatenation of `n_segs` segments, with keys and values stored as f32
// or as bf16 (widened exactly to f32 in the kernel, so the result equals the f32 kernel on the
// widened cache bit for bit). Scores are accumulated in position order across segments.
void AttentionHeadSegments(const float* q, const KvSegment* segs, size_t n_segs, bool bf16,
                           size_t v_stride, size_t head_dim, float scale, float* scores,
                           float* out);

// AttentionHeadSegments for `heads` query heads that share one kv head (grouped-query attention):
// q and out are [heads][head_dim], scores [heads][scores_stride] (scores_stride >= the context
// rounded up to 16). Each key and value vector is read once for the whole group, which is what
// makes long-context decode bound by the cache's bytes rather than by heads x bytes; every output
// equals AttentionHeadSegments' for that head bit for bit.
void AttentionGroupSegments(const float* q, size_t heads, const KvSegment* segs, size_t n_segs,
                            bool bf16, size_t v_stride, size_t head_dim, float scale, float* scores,
                            size_t scores_stride, float* out);

float Dot(const float* a, const float* b, size_t n);

}  // namespace rvec
