// Counter-based randomness keyed by (seed, name, index), so that any chunking or thread count
// draws the same numbers (merge noise, evaluation samples), and a keyed bijection for shuffles.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace rvec {

// Stafford's "Mix13" finaliser (the one SplitMix64 uses): a bijection with full avalanche.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a over the bytes, then mixed: stable across platforms and runs (unlike std::hash).
inline uint64_t HashString(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return Mix64(h);
}

// The random stream of one tensor: Bits(i) is a pure function of (seed, name, stream, i).
class CounterRng {
 public:
  CounterRng(uint64_t seed, std::string_view name, uint64_t stream = 0)
      : key_(Mix64(Mix64(seed ^ 0x5EED5EED5EED5EEDULL) ^ HashString(name) ^
                   Mix64(stream + 0x632BE59BD9B4E019ULL))) {}

  uint64_t Bits(uint64_t counter) const {
    return Mix64(key_ ^ Mix64(counter * 0x9E3779B97F4A7C15ULL + 0xD1B54A32D192ED03ULL));
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform(uint64_t counter) const {
    return static_cast<double>(Bits(counter) >> 11) * 0x1.0p-53;
  }
  // Two independent standard normals from pair `pair` (Box-Muller in double precision).
  void Normal2(uint64_t pair, double* z0, double* z1) const {
    // 1 - U lies in (0, 1], so the logarithm is finite.
    const double u1 = 1.0 - Uniform(2 * pair);
    const double u2 = Uniform(2 * pair + 1);
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586476925286766559 * u2;
    *z0 = r * std::cos(theta);
    *z1 = r * std::sin(theta);
  }
  uint64_t key() const { return key_; }

 private:
  uint64_t key_;
};

// A keyed pseudo-random permutation of [0, n): a balanced Feistel network on the smallest even
// number of bits covering n, with cycle walking to stay inside [0, n). Memory is O(1), so even a
// 233M-element embedding can be shuffled while streaming.
class KeyedPermutation {
 public:
  KeyedPermutation(uint64_t n, uint64_t key) : n_(n), key_(key) {
    int bits = 2;
    while (bits < 64 && (uint64_t{1} << bits) < n) bits += 2;
    half_bits_ = bits / 2;
    half_mask_ = (uint64_t{1} << half_bits_) - 1;
  }

  uint64_t operator()(uint64_t i) const {
    if (n_ <= 1) return 0;
    uint64_t x = i;
    do {
      x = Encrypt(x);
    } while (x >= n_);
    return x;
  }

 private:
  static constexpr int kRounds = 6;
  uint64_t Encrypt(uint64_t x) const {
    uint64_t left = x >> half_bits_;
    uint64_t right = x & half_mask_;
    for (int r = 0; r < kRounds; ++r) {
      const uint64_t f = Mix64(key_ ^ Mix64((right << 8) | static_cast<uint64_t>(r))) & half_mask_;
      const uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  uint64_t n_;
  uint64_t key_;
  int half_bits_ = 1;
  uint64_t half_mask_ = 1;
};

}  // namespace rvec
