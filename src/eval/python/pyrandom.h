// CPython's random.Random reproduced bit for bit: MT19937 seeded from an int (init_by_array),
// getrandbits, _randbelow and sample(), so lm-eval's seeded few-shot choices are the same here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rvec::eval {

class PyRandom {
 public:
  // random.Random(seed) for a non-negative int seed (CPython uses abs(seed)).
  explicit PyRandom(int64_t seed);

  uint32_t GenRandUint32();
  // random.getrandbits(k), k in [0, 64].
  uint64_t GetRandBits(int k);
  // random._randbelow(n) (the getrandbits rejection method); n > 0.
  uint64_t RandBelow(uint64_t n);
  // random.sample(range(n), k): the indices chosen, in order (sample(population) returns
  // population[i] for these i). Uses CPython's set-or-pool branch choice.
  std::vector<size_t> Sample(size_t n, size_t k);
  // random.random().
  double Random();

 private:
  void InitGenRand(uint32_t s);
  void InitByArray(const std::vector<uint32_t>& key);

  uint32_t mt_[624];
  int index_ = 625;
};

}  // namespace rvec::eval
