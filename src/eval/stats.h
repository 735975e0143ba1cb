// Statistics as lm-eval reports them (mean, sample standard error, pooled group stderr), the
// majority vote of repeated sampling (unbiased pass@k is sandbox/sandbox.h PassAtK) and the paired
// tests used to compare two runs on the same documents (exact McNemar, sign-flip permutation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
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

// The answer a majority vote picks: answers are grouped with `same` (an equivalence; each answer
// is compared with the first answer of every earlier group), the largest group wins, and a tie
// goes to the group whose first answer came first (Python's Counter.most_common order). Returns
// the index of the winning group's first answer; 0 for an empty list.
size_t MajorityIndex(const std::vector<std::string>& answers,
                     const std::function<bool(const std::string&, const std::string&)>& same);

// Two-sided paired sign-flip permutation test on per-document differences d_i = a_i - b_i: the
// statistic is |sum d_i|, and the null flips each sign independently. With at most 20 non-zero
// differences every flip is enumerated (exact p); otherwise `permutations` flips are drawn from a
// fixed-seed counter-based stream (base/rng.h) and p = (1 + hits) / (1 + permutations).
// Deterministic; p = 1 when every difference is zero.
double PairedPermutationP(const std::vector<double>& diffs, size_t permutations = 20000,
                          uint64_t seed = 0x5eed);

}  // namespace rvec::eval
