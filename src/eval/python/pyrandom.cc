// CPython random.Random (Modules/_randommodule.c + Lib/random.py) in C++.
#include "eval/python/pyrandom.h"

#include <cmath>
#include <unordered_set>

namespace rvec::eval {

namespace {
constexpr int kN = 624;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;
}  // namespace

PyRandom::PyRandom(int64_t seed) {
  uint64_t n = seed < 0 ? static_cast<uint64_t>(-(seed + 1)) + 1 : static_cast<uint64_t>(seed);
  // CPython splits abs(seed) into 32-bit words, least significant first; zero gives [0].
  std::vector<uint32_t> key;
  if (n == 0) key.push_back(0);
  while (n != 0) {
    key.push_back(static_cast<uint32_t>(n & 0xFFFFFFFFU));
    n >>= 32;
  }
  InitByArray(key);
}

void PyRandom::InitGenRand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  index_ = kN;
}

void PyRandom::InitByArray(const std::vector<uint32_t>& key) {
  InitGenRand(19650218U);
  int i = 1, j = 0;
  const int key_length = static_cast<int>(key.size());
  for (int k = kN > key_length ? kN : key_length; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] +
             static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kN - 1; k; --k) {
    mt_[i] =
        (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;
  index_ = kN;
}

uint32_t PyRandom::GenRandUint32() {
  static const uint32_t mag01[2] = {0x0U, kMatrixA};
  uint32_t y;
  if (index_ >= kN) {
    int kk;
    for (kk = 0; kk < kN - kM; ++kk) {
      y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    for (; kk < kN - 1; ++kk) {
      y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    y = (mt_[kN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
    mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
    index_ = 0;
  }
  y = mt_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint64_t PyRandom::GetRandBits(int k) {
  if (k <= 0) return 0;
  if (k <= 32) return GenRandUint32() >> (32 - k);
  // CPython fills 32-bit words least significant first; the last word keeps its top bits.
  uint64_t result = 0;
  int shift = 0;
  for (int remaining = k; remaining > 0; remaining -= 32, shift += 32) {
    uint32_t r = GenRandUint32();
    if (remaining < 32) r >>= (32 - remaining);
    result |= static_cast<uint64_t>(r) << shift;
  }
  return result;
}

uint64_t PyRandom::RandBelow(uint64_t n) {
  if (n == 0) return 0;
  int k = 0;
  for (uint64_t v = n; v; v >>= 1) ++k;  // n.bit_length()
  uint64_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

double PyRandom::Random() {
  const uint32_t a = GenRandUint32() >> 5, b = GenRandUint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::vector<size_t> PyRandom::Sample(size_t n, size_t k) {
  std::vector<size_t> result(k);
  if (k == 0 || k > n) return k > n ? std::vector<size_t>{} : result;
  // Lib/random.py: the pool branch for small populations, the set branch otherwise.
  size_t setsize = 21;
  if (k > 5) {
    const double e = std::ceil(std::log(3.0 * static_cast<double>(k)) / std::log(4.0));
    setsize += static_cast<size_t>(std::pow(4.0, e));
  }
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = static_cast<size_t>(RandBelow(n - i));
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = static_cast<size_t>(RandBelow(n));
      while (selected.count(j)) j = static_cast<size_t>(RandBelow(n));
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace rvec::eval
