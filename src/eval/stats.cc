// lm-eval's mean / stderr / pooled stderr and the exact McNemar test.
#include "eval/stats.h"

#include <algorithm>
#include <cmath>

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

}  // namespace rvec::eval
