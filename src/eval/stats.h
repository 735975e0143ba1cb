// Statistics as lm-eval reports them (mean, sample standard error, pooled group stderr) and the
// exact McNemar test used to compare two runs on the same samples.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace rvec::eval {

// lm-eval metrics.mean: sum / n (sequential sum, as Python's sum over floats).
double Mean(const std::vector<double>& xs);
// lm-eval mean_stderr: sample standard deviation (n - 1) / sqrt(n); nullopt ("N/A") when n < 2.
std::optional<double> MeanStderr(const std::vector<double>& xs);
// lm-eval aggregate_metric_list with weight_by_size: sum(m_i * n_i) / sum(n_i).
double WeightedMean(const std::vector<double>& metrics, const std::vector<size_t>& sizes);
// lm-eval pooled_sample_stderr (how a size-weighted group's stderr is computed).
double PooledSampleStderr(const std::vector<double>& stderrs, const std::vector<size_t>& sizes);

// Exact two-sided McNemar test on the discordant pairs: b = right only in A, c = right only in B.
// p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2); p = 1 when b + c == 0.
double McNemarExactP(size_t b, size_t c);

}  // namespace rvec::eval
