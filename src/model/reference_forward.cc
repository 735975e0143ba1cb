// Scalar f64 reference transformer: every formula spelled out as in transformers' modeling code.
#include "model/reference_forward.h"

#include <cmath>

namespace rvec {
namespace {

using Vec = std::vector<double>;

double W(const WeightMatrix& m, size_t r, size_t c) {
  return LoadAsF32(m.dtype, m.data, r * m.cols + c);
}

// y = W x + b for one vector.
Vec Linear(const WeightMatrix& m, const std::vector<float>& bias, const Vec& x) {
  Vec y(m.rows);
  for (size_t r = 0; r < m.rows; ++r) {
    double s = bias.empty() ? 0.0 : bias[r];
    for (size_t c = 0; c < m.cols; ++c) s += W(m, r, c) * x[c];
    y[r] = s;
  }
  return y;
}

Vec Norm(const Vec& x, const float* w, size_t n, size_t offset, double eps) {
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[offset + i] * x[offset + i];
  const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
  Vec y(n);
  for (size_t i = 0; i < n; ++i) y[i] = x[offset + i] * inv * double(w[i]);
  return y;
}

// rotate_half RoPE on head [offset, offset + d) at position pos.
void Rope(Vec* x, size_t offset, size_t d, size_t pos, const std::vector<float>& inv_freq) {
  const size_t half = d / 2;
  for (size_t i = 0; i < half; ++i) {
    const double angle = double(pos) * double(inv_freq[i]);
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = (*x)[offset + i], b = (*x)[offset + half + i];
    (*x)[offset + i] = a * c - b * s;
    (*x)[offset + half + i] = b * c + a * s;
  }
}

}  // namespace

std::vector<std::vector<double>> ReferenceForward(const ModelConfig& c, const ModelWeights& w,
                                                  std::span<const int32_t> ids) {
  const size_t n = ids.size(), H = c.hidden, D = c.head_dim;
  std::vector<Vec> x(n, Vec(H));
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < H; ++i) x[t][i] = W(w.embed_tokens, size_t(ids[t]), i);
  }
  for (size_t l = 0; l < c.layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    std::vector<Vec> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      // OLMo 2 (post_norm): attention reads the residual stream unnormed.
      const Vec h = c.post_norm ? x[t] : Norm(x[t], lw.input_norm.data(), H, 0, c.rms_eps);
      q[t] = Linear(lw.q_proj, lw.q_bias, h);
      k[t] = Linear(lw.k_proj, lw.k_bias, h);
      v[t] = Linear(lw.v_proj, lw.v_bias, h);
      if (c.qk_norm_full) {  // Olmo2Attention: q_norm(q_proj(x)), k_norm(k_proj(x)) over all heads
        q[t] = Norm(q[t], lw.q_norm.data(), c.q_dim(), 0, c.rms_eps);
        k[t] = Norm(k[t], lw.k_norm.data(), c.kv_dim(), 0, c.rms_eps);
      }
      for (size_t hd = 0; hd < c.heads; ++hd) {
        if (c.qk_norm) {
          const Vec nq = Norm(q[t], lw.q_norm.data(), D, hd * D, c.rms_eps);
          std::copy(nq.begin(), nq.end(), q[t].begin() + hd * D);
        }
        Rope(&q[t], hd * D, D, t, c.inv_freq);
      }
      for (size_t hd = 0; hd < c.kv_heads; ++hd) {
        if (c.qk_norm) {
          const Vec nk = Norm(k[t], lw.k_norm.data(), D, hd * D, c.rms_eps);
          std::copy(nk.begin(), nk.end(), k[t].begin() + hd * D);
        }
        Rope(&k[t], hd * D, D, t, c.inv_freq);
      }
    }
    const size_t group = c.heads / c.kv_heads;
    for (size_t t = 0; t < n; ++t) {
      Vec att(c.q_dim(), 0.0);
      for (size_t hd = 0; hd < c.heads; ++hd) {
        const size_t kvh = hd / group;
        Vec p(t + 1);
        double mx = -INFINITY;
        for (size_t j = 0; j <= t; ++j) {
          double s = 0;
          for (size_t d = 0; d < D; ++d) s += q[t][hd * D + d] * k[j][kvh * D + d];
          p[j] = s / std::sqrt(double(D));
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (size_t j = 0; j <= t; ++j) {
          for (size_t d = 0; d < D; ++d) att[hd * D + d] += p[j] / sum * v[j][kvh * D + d];
        }
      }
      Vec o = Linear(lw.o_proj, lw.o_bias, att);
      if (c.post_norm) o = Norm(o, lw.post_attention_norm.data(), H, 0, c.rms_eps);
      for (size_t i = 0; i < H; ++i) x[t][i] += o[i];
      const Vec h = c.post_norm ? x[t] : Norm(x[t], lw.post_attention_norm.data(), H, 0, c.rms_eps);
      const Vec g = Linear(lw.gate_proj, lw.gate_bias, h);
      const Vec u = Linear(lw.up_proj, lw.up_bias, h);
      Vec a(c.intermediate);
      for (size_t i = 0; i < a.size(); ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      Vec d = Linear(lw.down_proj, lw.down_bias, a);
      if (c.post_norm) d = Norm(d, lw.post_feedforward_norm.data(), H, 0, c.rms_eps);
      for (size_t i = 0; i < H; ++i) x[t][i] += d[i];
    }
  }
  std::vector<Vec> logits(n);
  for (size_t t = 0; t < n; ++t) {
    const Vec h = Norm(x[t], w.final_norm.data(), H, 0, c.rms_eps);
    logits[t] = Linear(w.lm_head, {}, h);
  }
  return logits;
}

}  // namespace rvec
