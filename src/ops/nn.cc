// Highway implementations of the transformer building blocks declared in ops/nn.h.
#include "ops/nn.h"

#include <algorithm>
#include <cmath>

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

void AttentionHeadT(const float* q, const float* k_tiles, const float* v, size_t v_stride,
                    size_t n_ctx, size_t head_dim, float scale, float* scores, float* out) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  constexpr size_t kTile = 16;
  // Scores: each lane is one position, accumulated over d in order. Four vectors are in flight
  // so the FMA latency is hidden; that grouping does not change any lane's arithmetic.
  const size_t vectors = (n_ctx + kTile - 1) / kTile * (kTile / N);
  const V vscale = hn::Set(df, scale);
  auto tile_vector = [&](size_t i) {  // vector i of the score row: tile i / (16 / N)
    const size_t per_tile = kTile / N;
    return k_tiles + (i / per_tile) * kTile * head_dim + (i % per_tile) * N;
  };
  size_t i = 0;
  for (; i + 4 <= vectors; i += 4) {
    const float* k0 = tile_vector(i);
    const float* k1 = tile_vector(i + 1);
    const float* k2 = tile_vector(i + 2);
    const float* k3 = tile_vector(i + 3);
    V s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
    for (size_t d = 0; d < head_dim; ++d) {
      const V qd = hn::Set(df, q[d]);
      s0 = hn::MulAdd(qd, hn::LoadU(df, k0 + d * kTile), s0);
      s1 = hn::MulAdd(qd, hn::LoadU(df, k1 + d * kTile), s1);
      s2 = hn::MulAdd(qd, hn::LoadU(df, k2 + d * kTile), s2);
      s3 = hn::MulAdd(qd, hn::LoadU(df, k3 + d * kTile), s3);
    }
    hn::StoreU(hn::Mul(s0, vscale), df, scores + i * N);
    hn::StoreU(hn::Mul(s1, vscale), df, scores + (i + 1) * N);
    hn::StoreU(hn::Mul(s2, vscale), df, scores + (i + 2) * N);
    hn::StoreU(hn::Mul(s3, vscale), df, scores + (i + 3) * N);
  }
  for (; i < vectors; ++i) {
    const float* k0 = tile_vector(i);
    V s0 = hn::Zero(df);
    for (size_t d = 0; d < head_dim; ++d) {
      s0 = hn::MulAdd(hn::Set(df, q[d]), hn::LoadU(df, k0 + d * kTile), s0);
    }
    hn::StoreU(hn::Mul(s0, vscale), df, scores + i * N);
  }
  SoftmaxImpl(scores, n_ctx);
  // Values: out chunk c accumulates p_j * v_j over j in order; chunks run side by side.
  constexpr size_t kMaxChunks = 16;
  size_t d = 0;
  while (d + N <= head_dim) {
    const size_t chunks = std::min(kMaxChunks, (head_dim - d) / N);
    V acc[kMaxChunks];
    for (size_t c = 0; c < chunks; ++c) acc[c] = hn::Zero(df);
    for (size_t j = 0; j < n_ctx; ++j) {
      const V p = hn::Set(df, scores[j]);
      const float* vj = v + j * v_stride + d;
      for (size_t c = 0; c < chunks; ++c) acc[c] = hn::MulAdd(p, hn::LoadU(df, vj + c * N), acc[c]);
    }
    for (size_t c = 0; c < chunks; ++c) hn::StoreU(acc[c], df, out + d + c * N);
    d += chunks * N;
  }
  for (; d < head_dim; ++d) {
    float acc = 0.0f;
    for (size_t j = 0; j < n_ctx; ++j) acc += scores[j] * v[j * v_stride + d];
    out[d] = acc;
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
HWY_EXPORT(AttentionHeadT);

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
  HWY_DYNAMIC_DISPATCH(AttentionHeadT)
  (q, k_tiles, v, v_stride, n_ctx, head_dim, scale, scores, out);
}

}  // namespace rvec
#endif  // HWY_ONCE
