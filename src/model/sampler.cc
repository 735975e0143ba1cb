// Greedy and seeded temperature/top-k/top-p sampling.
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace rvec {
namespace {

uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

int32_t Argmax(const float* logits, size_t vocab) {
  size_t best = 0;
  for (size_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

double UniformAt(uint64_t seed, uint64_t stream, uint64_t step) {
  const uint64_t bits = Mix(Mix(Mix(seed) ^ stream) ^ step);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

int32_t SampleToken(const float* logits, size_t vocab, const SamplingParams& params,
                    uint64_t stream, uint64_t step) {
  if (params.temperature <= 0.0f || params.top_k == 1) return Argmax(logits, vocab);
  const double inv_t = 1.0 / params.temperature;
  // Candidates in descending logit order (index breaks ties), widened until top-k / top-p is
  // decided, so the usual case sorts a few hundred entries rather than the vocabulary.
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const double mx = logits[Argmax(logits, vocab)];
  double total = 0;
  for (size_t i = 0; i < vocab; ++i) total += std::exp((logits[i] - mx) * inv_t);
  size_t limit = params.top_k > 0 ? std::min<size_t>(params.top_k, vocab) : vocab;
  size_t sorted = 0;
  double kept_mass = 0;
  size_t kept = 0;
  // With top-k every survivor is sorted at once (k is small), so the renormalisation is exact.
  size_t want = params.top_k > 0 ? limit : std::min<size_t>(256, limit);
  for (;; want = std::min(limit, want * 4)) {
    std::partial_sort(order.begin() + sorted, order.begin() + want, order.end(), before);
    sorted = want;
    // With top-k, probabilities are renormalised over the k survivors before top-p.
    double norm = total;
    if (params.top_k > 0 && sorted == limit) {
      norm = 0;
      for (size_t i = 0; i < limit; ++i) norm += std::exp((logits[order[i]] - mx) * inv_t);
    }
    kept_mass = 0;
    kept = 0;
    bool done = false;
    for (size_t i = 0; i < sorted; ++i) {
      kept_mass += std::exp((logits[order[i]] - mx) * inv_t);
      ++kept;
      if (params.top_p < 1.0f && kept_mass / norm >= params.top_p) {
        done = true;
        break;
      }
    }
    if (done || sorted == limit) break;
  }
  double u = UniformAt(params.seed, stream, step) * kept_mass;
  for (size_t i = 0; i < kept; ++i) {
    u -= std::exp((logits[order[i]] - mx) * inv_t);
    if (u < 0) return order[i];
  }
  return order[kept - 1];
}

}  // namespace rvec
