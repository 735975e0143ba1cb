// Sampler: greedy ties, seeded reproducibility, top-k / top-p truncation and the sampled
// frequencies against the softmax probabilities.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace rvec {
namespace {

TEST(Sampler, ArgmaxTakesFirstOfTies) {
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(Argmax(l.data(), l.size()), 1);
  SamplingParams greedy;
  EXPECT_EQ(SampleToken(l.data(), l.size(), greedy, 0, 0), 1);
}

TEST(Sampler, UniformIsDeterministicAndSpread) {
  EXPECT_EQ(UniformAt(1, 2, 3), UniformAt(1, 2, 3));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(1, 2, 4));
  EXPECT_NE(UniformAt(1, 2, 3), UniformAt(1, 3, 3));
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = UniformAt(5, 0, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(Sampler, FrequenciesFollowSoftmaxWithTemperature) {
  const std::vector<float> l = {1.0f, 2.0f, 0.0f, 1.5f};
  SamplingParams p;
  p.temperature = 0.7f;
  p.seed = 3;
  std::vector<int> counts(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[SampleToken(l.data(), 4, p, 0, i)];
  double z = 0;
  for (float v : l) z += std::exp(v / 0.7);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(counts[i] / double(n), std::exp(l[i] / 0.7) / z, 0.01) << i;
  }
}

TEST(Sampler, TopKAndTopPTruncate) {
  std::vector<float> l(1000);
  for (size_t i = 0; i < l.size(); ++i) l[i] = -0.01f * i;  // token 0 most likely
  SamplingParams k;
  k.temperature = 1.0f;
  k.top_k = 3;
  SamplingParams pp;
  pp.temperature = 1.0f;
  pp.top_p = 0.05f;  // the first ~50 tokens hold 5% of the mass... only a handful
  std::map<int, int> seen_k, seen_p;
  for (int i = 0; i < 5000; ++i) {
    ++seen_k[SampleToken(l.data(), l.size(), k, 1, i)];
    ++seen_p[SampleToken(l.data(), l.size(), pp, 1, i)];
  }
  EXPECT_EQ(seen_k.size(), 3u);
  EXPECT_EQ(seen_k.rbegin()->first, 2);
  // Mass of the first m tokens: (1 - 0.99^m) / (1 - 0.99^1000); 5% needs m = 5.
  double total = 0, acc = 0;
  for (float v : l) total += std::exp(double(v));
  int m = 0;
  while (acc / total < 0.05) acc += std::exp(double(l[m++]));
  EXPECT_EQ(seen_p.rbegin()->first, m - 1);
  EXPECT_EQ(int(seen_p.size()), m);
  SamplingParams one = k;
  one.top_k = 1;
  EXPECT_EQ(SampleToken(l.data(), l.size(), one, 9, 9), 0);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> l(300);
  for (size_t i = 0; i < l.size(); ++i) l[i] = std::sin(0.37 * i);
  SamplingParams p;
  p.temperature = 1.2f;
  p.top_p = 0.95f;
  p.seed = 77;
  for (int step = 0; step < 50; ++step) {
    EXPECT_EQ(SampleToken(l.data(), l.size(), p, 4, step),
              SampleToken(l.data(), l.size(), p, 4, step));
  }
}

}  // namespace
}  // namespace rvec
