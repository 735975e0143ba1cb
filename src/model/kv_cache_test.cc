// KV cache tests: the key-tile layout and the defined (zero) lanes past the stored positions.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace rvec {
namespace {

ModelConfig SmallConfig() {
  ModelConfig c;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 8;
  return c;
}

TEST(KvCache, KeyTilesHoldStoredPositionsAndZeroLanesBeyond) {
  const ModelConfig c = SmallConfig();
  KvPool pool(c, 1 << 20);
  // Dirty the heap first so that a buffer reused from it would not be zero by chance.
  {
    std::vector<float> junk(4096, -7.0f);
    ASSERT_EQ(junk[100], -7.0f);
  }
  auto kv = pool.TryAllocate(40);
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->capacity(), 48u);
  const size_t stored = 19;  // one whole tile and 3 positions of the second
  // As the forward pass does: a tile is cleared before its first position is stored.
  kv->ClearKeyTile(0);
  kv->ClearKeyTile(16);
  for (size_t l = 0; l < c.layers; ++l) {
    for (size_t pos = 0; pos < stored; ++pos) {
      std::vector<float> k(c.kv_dim()), v(c.kv_dim());
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = 1000.0f * l + 10.0f * pos + i + 1;
        v[i] = -k[i];
      }
      kv->Store(l, pos, k.data(), v.data());
    }
  }
  for (size_t l = 0; l < c.layers; ++l) {
    for (size_t h = 0; h < c.kv_heads; ++h) {
      const float* tiles = kv->KeyTiles(l, h);
      for (size_t pos = 0; pos < RoundUpToKeyTile(stored); ++pos) {
        for (size_t d = 0; d < c.head_dim; ++d) {
          const float got =
              tiles[(pos / kKeyTile) * kKeyTile * c.head_dim + d * kKeyTile + pos % kKeyTile];
          const float want = pos < stored ? 1000.0f * l + 10.0f * pos + h * c.head_dim + d + 1 : 0;
          ASSERT_EQ(got, want) << "layer " << l << " head " << h << " pos " << pos << " d " << d;
        }
      }
      for (size_t pos = 0; pos < stored; ++pos) {
        EXPECT_EQ(kv->V(l, pos)[h * c.head_dim], -(1000.0f * l + 10.0f * pos + h * c.head_dim + 1));
      }
    }
  }
}

}  // namespace
}  // namespace rvec
