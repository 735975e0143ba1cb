// lm-eval's mean / stderr / pooled stderr, majority vote and the paired tests.
#include "eval/stats.h"

#include <algorithm>
#include <cmath>

#include "base/rng.h"

namespace rvec::eval {

double Mean(const std::vector<double>& xs) {
  if (xs.empty()) return 0.0;
  double s = 0.0;
  for (double x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

std::optional<double> MeanStderr(const std::vector<double>& xs) {
  if (xs.size() < 2) return std::nullopt;
  const double mu = Mean(xs);
  double ss = 0.0;
  for (double x : xs) ss += (x - mu) * (x - mu);
  const double sd = std::sqrt(ss / static_cast<double>(xs.size() - 1));
  return sd / std::sqrt(static_cast<double>(xs.size()));
}

double WeightedMean(const std::vector<double>& metrics, const std::vector<size_t>& sizes) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < metrics.size() && i < sizes.size(); ++i) {
    num += metrics[i] * static_cast<double>(sizes[i]);
    den += static_cast<double>(sizes[i]);
  }
  return den > 0 ? num / den : 0.0;
}

double PooledSampleStderr(const std::vector<double>& stderrs, const std::vector<size_t>& sizes) {
  double var = 0.0, total = 0.0;
  for (size_t i = 0; i < stderrs.size() && i < sizes.size(); ++i) {
    const double n = static_cast<double>(sizes[i]);
    var += (n - 1.0) * stderrs[i] * stderrs[i] * n;
    total += n;
  }
  var /= (total - static_cast<double>(stderrs.size()));
  return std::sqrt(var / total);
}

double McNemarExactP(size_t b, size_t c) {
  const size_t n = b + c;
  if (n == 0) return 1.0;
  const size_t k = std::min(b, c);
  // P[X <= k] summed in log space so large n stays accurate.
  double cdf = 0.0;
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  for (size_t i = 0; i <= k; ++i) {
    const double log_term = std::lgamma(static_cast<double>(n) + 1) -
                            std::lgamma(static_cast<double>(i) + 1) -
                            std::lgamma(static_cast<double>(n - i) + 1) + log_half_n;
    cdf += std::exp(log_term);
  }
  return std::min(1.0, 2.0 * cdf);
}

size_t MajorityIndex(const std::vector<std::string>& answers,
                     const std::function<bool(const std::string&, const std::string&)>& same) {
  std::vector<size_t> first;  // first answer of each group, in order of appearance
  std::vector<size_t> count;
  for (size_t i = 0; i < answers.size(); ++i) {
    size_t g = 0;
    while (g < first.size() && !same(answers[first[g]], answers[i])) ++g;
    if (g == first.size()) {
      first.push_back(i);
      count.push_back(0);
    }
    ++count[g];
  }
  size_t best = 0;
  for (size_t g = 1; g < count.size(); ++g) {
    if (count[g] > count[best]) best = g;  // strict: the earlier group keeps a tie
  }
  return first.empty() ? 0 : first[best];
}

double PairedPermutationP(const std::vector<double>& diffs, size_t permutations, uint64_t seed) {
  std::vector<double> d;
  for (double x : diffs) {
    if (x != 0.0) d.push_back(x);
  }
  if (d.empty()) return 1.0;
  double observed = 0.0;
  for (double x : d) observed += x;
  observed = std::fabs(observed);
  // Sums of the same values in another order may differ in the last bits: count those as ties.
  const double threshold = observed - 1e-9 * (1.0 + observed);
  auto flipped_sum = [&](auto&& sign_bit) {
    double s = 0.0;
    for (size_t i = 0; i < d.size(); ++i) s += sign_bit(i) ? -d[i] : d[i];
    return std::fabs(s);
  };
  if (d.size() <= 20) {
    const uint64_t total = uint64_t{1} << d.size();
    uint64_t hits = 0;
    for (uint64_t mask = 0; mask < total; ++mask) {
      if (flipped_sum([&](size_t i) { return (mask >> i) & 1; }) >= threshold) ++hits;
    }
    return static_cast<double>(hits) / static_cast<double>(total);
  }
  const CounterRng rng(seed, "paired-permutation");
  uint64_t hits = 0, counter = 0;
  std::vector<uint64_t> bits((d.size() + 63) / 64);
  for (size_t p = 0; p < permutations; ++p) {
    for (auto& w : bits) w = rng.Bits(counter++);
    if (flipped_sum([&](size_t i) { return (bits[i / 64] >> (i % 64)) & 1; }) >= threshold) ++hits;
  }
  return static_cast<double>(hits + 1) / static_cast<double>(permutations + 1);
}

}  // namespace rvec::eval
