// Highway implementations of the transformer building blocks declared in ops/nn.h.
#include "ops/nn.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/dtype.h"

// The include order matters: foreach_target re-includes this file once per target.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/nn.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One accumulator, lanes reduced once: a fixed order for every call.
HWY_INLINE float DotImpl(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto acc = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= n; i += N) acc = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float DotT(const float* a, const float* b, size_t n) { return DotImpl(a, b, n); }

void RmsNormT(const float* x, const float* weight, size_t n, float eps, float* out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const float ss = DotImpl(x, x, n);
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vinv = hn::Set(df, inv);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), hn::LoadU(df, weight + i)), df,
               out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

void AddInPlaceT(float* y, const float* x, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

void SiluMulT(const float* gate, const float* up, size_t n, float* out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const auto one = hn::Set(df, 1.0f);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(df, gate + i);
    const auto e = hn::Exp(df, hn::Neg(g));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

HWY_INLINE void SoftmaxImpl(float* x, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  float mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const auto vmx = hn::Set(df, mx);
  auto acc = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    hn::StoreU(e, df, x + i);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const auto vinv = hn::Set(df, 1.0f / sum);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= 1.0f / sum;
}

void SoftmaxT(float* x, size_t n) { SoftmaxImpl(x, n); }

void ApplyRopeT(float* x, size_t head_dim, const float* cos, const float* sin) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t h = head_dim / 2;
  float* x1 = x;
  float* x2 = x + h;
  size_t i = 0;
  for (; i + N <= h; i += N) {
    const auto a = hn::LoadU(df, x1 + i);
    const auto b = hn::LoadU(df, x2 + i);
    const auto c = hn::LoadU(df, cos + i);
    const auto s = hn::LoadU(df, sin + i);
    hn::StoreU(hn::NegMulAdd(b, s, hn::Mul(a, c)), df, x1 + i);
    hn::StoreU(hn::MulAdd(a, s, hn::Mul(b, c)), df, x2 + i);
  }
  for (; i < h; ++i) {
    const float a = x1[i];
    const float b = x2[i];
    x1[i] = a * cos[i] - b * sin[i];
    x2[i] = b * cos[i] + a * sin[i];
  }
}

// Keys and values are f32 or bf16; bf16 widens exactly (a shift), so both element types share
// one arithmetic.
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D df, const float* p) {
  return hn::LoadU(df, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D df, const uint16_t* p) {
  const hn::RebindToUnsigned<D> du32;
  const hn::Rebind<uint16_t, D> du16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}
HWY_INLINE float LoadKvScalar(const float* p) { return *p; }
HWY_INLINE float LoadKvScalar(const uint16_t* p) { return BF16ToF32(*p); }

// Scores of one segment's positions into `scores`: each lane is one position, accumulated over
// d in order. Four vectors are in flight so the FMA latency is hidden; that grouping does not
// change any lane's arithmetic.
template <class T>
HWY_INLINE void SegmentScores(const float* HWY_RESTRICT q, const T* HWY_RESTRICT k_tiles, size_t n,
                              size_t head_dim, float scale, float* HWY_RESTRICT scores) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  constexpr size_t kTile = 16;
  const size_t per_tile = kTile / N;
  const size_t vectors = (n + kTile - 1) / kTile * per_tile;
  const V vscale = hn::Set(df, scale);
  auto tile_vector = [&](size_t i) {  // vector i of the score row: tile i / (16 / N)
    return k_tiles + (i / per_tile) * kTile * head_dim + (i % per_tile) * N;
  };
  size_t i = 0;
  for (; i + 4 <= vectors; i += 4) {
    const T* k0 = tile_vector(i);
    const T* k1 = tile_vector(i + 1);
    const T* k2 = tile_vector(i + 2);
    const T* k3 = tile_vector(i + 3);
    V s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
    for (size_t d = 0; d < head_dim; ++d) {
      const V qd = hn::Set(df, q[d]);
      s0 = hn::MulAdd(qd, LoadKv(df, k0 + d * kTile), s0);
      s1 = hn::MulAdd(qd, LoadKv(df, k1 + d * kTile), s1);
      s2 = hn::MulAdd(qd, LoadKv(df, k2 + d * kTile), s2);
      s3 = hn::MulAdd(qd, LoadKv(df, k3 + d * kTile), s3);
    }
    hn::StoreU(hn::Mul(s0, vscale), df, scores + i * N);
    hn::StoreU(hn::Mul(s1, vscale), df, scores + (i + 1) * N);
    hn::StoreU(hn::Mul(s2, vscale), df, scores + (i + 2) * N);
    hn::StoreU(hn::Mul(s3, vscale), df, scores + (i + 3) * N);
  }
  for (; i < vectors; ++i) {
    const T* k0 = tile_vector(i);
    V s0 = hn::Zero(df);
    for (size_t d = 0; d < head_dim; ++d) {
      s0 = hn::MulAdd(hn::Set(df, q[d]), LoadKv(df, k0 + d * kTile), s0);
    }
    hn::StoreU(hn::Mul(s0, vscale), df, scores + i * N);
  }
}

// Values: out chunk c accumulates p_j * v_j over j in order, across segments; chunks run side
// by side.
template <class T>
HWY_INLINE void SegmentValues(const KvSegment* segs, size_t n_segs, size_t v_stride,
                              size_t head_dim, const float* HWY_RESTRICT scores,
                              float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  constexpr size_t kMaxChunks = 16;
  size_t d = 0;
  while (d + N <= head_dim) {
    const size_t chunks = std::min(kMaxChunks, (head_dim - d) / N);
    V acc[kMaxChunks];
    for (size_t c = 0; c < chunks; ++c) acc[c] = hn::Zero(df);
    const float* p = scores;
    for (size_t g = 0; g < n_segs; ++g) {
      const T* v = static_cast<const T*>(segs[g].v) + d;
      for (size_t j = 0; j < segs[g].positions; ++j) {
        const V pj = hn::Set(df, p[j]);
        const T* vj = v + j * v_stride;
        for (size_t c = 0; c < chunks; ++c) acc[c] = hn::MulAdd(pj, LoadKv(df, vj + c * N), acc[c]);
      }
      p += segs[g].positions;
    }
    for (size_t c = 0; c < chunks; ++c) hn::StoreU(acc[c], df, out + d + c * N);
    d += chunks * N;
  }
  for (; d < head_dim; ++d) {
    float acc = 0.0f;
    const float* p = scores;
    for (size_t g = 0; g < n_segs; ++g) {
      const T* v = static_cast<const T*>(segs[g].v);
      for (size_t j = 0; j < segs[g].positions; ++j) {
        acc += p[j] * LoadKvScalar(v + j * v_stride + d);
      }
      p += segs[g].positions;
    }
    out[d] = acc;
  }
}

template <class T>
HWY_INLINE void AttentionSegmentsImpl(const float* q, const KvSegment* segs, size_t n_segs,
                                      size_t v_stride, size_t head_dim, float scale, float* scores,
                                      float* out) {
  size_t n_ctx = 0;
  for (size_t g = 0; g < n_segs; ++g) {
    SegmentScores(q, static_cast<const T*>(segs[g].k_tiles), segs[g].positions, head_dim, scale,
                  scores + n_ctx);
    n_ctx += segs[g].positions;
  }
  SoftmaxImpl(scores, n_ctx);
  SegmentValues<T>(segs, n_segs, v_stride, head_dim, scores, out);
}

// Scores of H query heads (H <= kMaxGroupHeads, a compile-time count so that the accumulators
// stay in registers) that share one kv head: each key vector is loaded (and widened) once and
// used by every head. Each lane's sum still runs over d in order, so every score equals
// SegmentScores' bit for bit.
constexpr size_t kMaxGroupHeads = 8;
template <size_t H, class T>
HWY_INLINE void GroupScores(const float* HWY_RESTRICT q, const T* HWY_RESTRICT k_tiles, size_t n,
                            size_t head_dim, float scale, float* HWY_RESTRICT scores,
                            size_t scores_stride) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  constexpr size_t kTile = 16;
  const size_t per_tile = kTile / N;
  const size_t vectors = (n + kTile - 1) / kTile * per_tile;
  const V vscale = hn::Set(df, scale);
  for (size_t i = 0; i < vectors; ++i) {
    const T* k = k_tiles + (i / per_tile) * kTile * head_dim + (i % per_tile) * N;
    V acc[H];
    for (size_t h = 0; h < H; ++h) acc[h] = hn::Zero(df);
    for (size_t d = 0; d < head_dim; ++d) {
      const V kd = LoadKv(df, k + d * kTile);
      for (size_t h = 0; h < H; ++h)
        acc[h] = hn::MulAdd(hn::Set(df, q[h * head_dim + d]), kd, acc[h]);
    }
    for (size_t h = 0; h < H; ++h) {
      hn::StoreU(hn::Mul(acc[h], vscale), df, scores + h * scores_stride + i * N);
    }
  }
}

// C value vectors of columns [d, d + C * N) for H heads: each value vector is loaded once and used
// by every head; each output still accumulates p_j * v_j over j in order, as SegmentValues does.
template <size_t H, size_t C, class T>
HWY_INLINE void GroupValueChunks(const KvSegment* segs, size_t n_segs, size_t v_stride,
                                 size_t head_dim, size_t d, const float* HWY_RESTRICT scores,
                                 size_t scores_stride, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  V acc[C * H];
  for (size_t a = 0; a < C * H; ++a) acc[a] = hn::Zero(df);
  size_t j0 = 0;
  for (size_t g = 0; g < n_segs; ++g) {
    const T* v = static_cast<const T*>(segs[g].v) + d;
    for (size_t j = 0; j < segs[g].positions; ++j) {
      const T* vj = v + j * v_stride;
      V p[H];
      for (size_t h = 0; h < H; ++h) p[h] = hn::Set(df, scores[h * scores_stride + j0 + j]);
      for (size_t c = 0; c < C; ++c) {
        const V vc = LoadKv(df, vj + c * N);
        for (size_t h = 0; h < H; ++h) acc[c * H + h] = hn::MulAdd(p[h], vc, acc[c * H + h]);
      }
    }
    j0 += segs[g].positions;
  }
  for (size_t c = 0; c < C; ++c) {
    for (size_t h = 0; h < H; ++h) hn::StoreU(acc[c * H + h], df, out + h * head_dim + d + c * N);
  }
}

template <size_t H, class T>
HWY_INLINE void GroupValues(const KvSegment* segs, size_t n_segs, size_t v_stride, size_t head_dim,
                            const float* HWY_RESTRICT scores, size_t scores_stride,
                            float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  // Accumulators in flight: C * H of them, within a 16-register file.
  constexpr size_t C = H >= 12 ? 1 : 12 / H;
  size_t d = 0;
  for (; d + C * N <= head_dim; d += C * N) {
    GroupValueChunks<H, C, T>(segs, n_segs, v_stride, head_dim, d, scores, scores_stride, out);
  }
  for (; d + N <= head_dim; d += N) {
    GroupValueChunks<H, 1, T>(segs, n_segs, v_stride, head_dim, d, scores, scores_stride, out);
  }
  for (; d < head_dim; ++d) {
    for (size_t h = 0; h < H; ++h) {
      float acc = 0.0f;
      const float* p = scores + h * scores_stride;
      for (size_t g = 0; g < n_segs; ++g) {
        const T* v = static_cast<const T*>(segs[g].v);
        for (size_t j = 0; j < segs[g].positions; ++j) {
          acc += p[j] * LoadKvScalar(v + j * v_stride + d);
        }
        p += segs[g].positions;
      }
      out[h * head_dim + d] = acc;
    }
  }
}

template <size_t H, class T>
HWY_INLINE void GroupBlock(const float* q, const KvSegment* segs, size_t n_segs, size_t v_stride,
                           size_t head_dim, float scale, float* scores, size_t scores_stride,
                           float* out) {
  size_t n_ctx = 0;
  for (size_t g = 0; g < n_segs; ++g) {
    GroupScores<H>(q, static_cast<const T*>(segs[g].k_tiles), segs[g].positions, head_dim, scale,
                   scores + n_ctx, scores_stride);
    n_ctx += segs[g].positions;
  }
  for (size_t h = 0; h < H; ++h) SoftmaxImpl(scores + h * scores_stride, n_ctx);
  GroupValues<H, T>(segs, n_segs, v_stride, head_dim, scores, scores_stride, out);
}

template <class T>
HWY_INLINE void AttentionGroupImpl(const float* q, size_t heads, const KvSegment* segs,
                                   size_t n_segs, size_t v_stride, size_t head_dim, float scale,
                                   float* scores, size_t scores_stride, float* out) {
  for (size_t h0 = 0; h0 < heads; h0 += kMaxGroupHeads) {
    const size_t hb = std::min(kMaxGroupHeads, heads - h0);
    const float* qb = q + h0 * head_dim;
    float* sb = scores + h0 * scores_stride;
    float* ob = out + h0 * head_dim;
    switch (hb) {
#define RVEC_GROUP_CASE(H)                                                                \
  case H:                                                                                 \
    GroupBlock<H, T>(qb, segs, n_segs, v_stride, head_dim, scale, sb, scores_stride, ob); \
    break;
      RVEC_GROUP_CASE(1)
      RVEC_GROUP_CASE(2)
      RVEC_GROUP_CASE(3)
      RVEC_GROUP_CASE(4)
      RVEC_GROUP_CASE(5)
      RVEC_GROUP_CASE(6)
      RVEC_GROUP_CASE(7)
      RVEC_GROUP_CASE(8)
#undef RVEC_GROUP_CASE
    }
  }
}

void AttentionGroupSegmentsT(const float* q, size_t heads, const KvSegment* segs, size_t n_segs,
                             bool bf16, size_t v_stride, size_t head_dim, float scale,
                             float* scores, size_t scores_stride, float* out) {
  if (bf16) {
    AttentionGroupImpl<uint16_t>(q, heads, segs, n_segs, v_stride, head_dim, scale, scores,
                                 scores_stride, out);
  } else {
    AttentionGroupImpl<float>(q, heads, segs, n_segs, v_stride, head_dim, scale, scores,
                              scores_stride, out);
  }
}

void AttentionHeadSegmentsT(const float* q, const KvSegment* segs, size_t n_segs, bool bf16,
                            size_t v_stride, size_t head_dim, float scale, float* scores,
                            float* out) {
  if (bf16) {
    AttentionSegmentsImpl<uint16_t>(q, segs, n_segs, v_stride, head_dim, scale, scores, out);
  } else {
    AttentionSegmentsImpl<float>(q, segs, n_segs, v_stride, head_dim, scale, scores, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(DotT);
HWY_EXPORT(RmsNormT);
HWY_EXPORT(AddInPlaceT);
HWY_EXPORT(SiluMulT);
HWY_EXPORT(SoftmaxT);
HWY_EXPORT(ApplyRopeT);
HWY_EXPORT(AttentionHeadSegmentsT);
HWY_EXPORT(AttentionGroupSegmentsT);

float Dot(const float* a, const float* b, size_t n) { return HWY_DYNAMIC_DISPATCH(DotT)(a, b, n); }
void RmsNorm(const float* x, const float* weight, size_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormT)(x, weight, n, eps, out);
}
void AddInPlace(float* y, const float* x, size_t n) { HWY_DYNAMIC_DISPATCH(AddInPlaceT)(y, x, n); }
void SiluMul(const float* gate, const float* up, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMulT)(gate, up, n, out);
}
void Softmax(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxT)(x, n); }
void ApplyRope(float* x, size_t head_dim, const float* cos, const float* sin) {
  HWY_DYNAMIC_DISPATCH(ApplyRopeT)(x, head_dim, cos, sin);
}
void AttentionHead(const float* q, const float* k_tiles, const float* v, size_t v_stride,
                   size_t n_ctx, size_t head_dim, float scale, float* scores, float* out) {
  const KvSegment seg{k_tiles, v, n_ctx};
  HWY_DYNAMIC_DISPATCH(AttentionHeadSegmentsT)
  (q, &seg, 1, false, v_stride, head_dim, scale, scores, out);
}
void AttentionGroupSegments(const float* q, size_t heads, const KvSegment* segs, size_t n_segs,
                            bool bf16, size_t v_stride, size_t head_dim, float scale, float* scores,
                            size_t scores_stride, float* out) {
  HWY_DYNAMIC_DISPATCH(AttentionGroupSegmentsT)
  (q, heads, segs, n_segs, bf16, v_stride, head_dim, scale, scores, scores_stride, out);
}
void AttentionHeadSegments(const float* q, const KvSegment* segs, size_t n_segs, bool bf16,
                           size_t v_stride, size_t head_dim, float scale, float* scores,
                           float* out) {
  HWY_DYNAMIC_DISPATCH(AttentionHeadSegmentsT)
  (q, segs, n_segs, bf16, v_stride, head_dim, scale, scores, out);
}

}  // namespace rvec
#endif  // HWY_ONCE
