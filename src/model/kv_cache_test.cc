// KV cache tests: the key-tile layout, the defined (zero) lanes past the stored positions, bf16
// storage, and shared prefixes (referenced once, counted once).
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
      KvSegment seg[2];
      ASSERT_EQ(kv->Segments(l, h, stored, seg), 1u);
      const float* tiles = static_cast<const float*>(seg[0].k_tiles);
      for (size_t pos = 0; pos < RoundUpToKeyTile(stored); ++pos) {
        for (size_t d = 0; d < c.head_dim; ++d) {
          const float got =
              tiles[(pos / kKeyTile) * kKeyTile * c.head_dim + d * kKeyTile + pos % kKeyTile];
          const float want = pos < stored ? 1000.0f * l + 10.0f * pos + h * c.head_dim + d + 1 : 0;
          ASSERT_EQ(got, want) << "layer " << l << " head " << h << " pos " << pos << " d " << d;
        }
      }
      for (size_t pos = 0; pos < stored; ++pos) {
        EXPECT_EQ(static_cast<const float*>(seg[0].v)[pos * c.kv_dim()],
                  -(1000.0f * l + 10.0f * pos + h * c.head_dim + 1));
      }
    }
  }
}

// Fills positions [from, to) of every layer with values that name (layer, position, index).
void Fill(SequenceKv& kv, const ModelConfig& c, size_t from, size_t to, float salt) {
  for (size_t pos = from; pos < to; ++pos) {
    if (pos % kKeyTile == 0) kv.ClearKeyTile(pos);
    for (size_t l = 0; l < c.layers; ++l) {
      std::vector<float> k(c.kv_dim()), v(c.kv_dim());
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = salt + 0.37f * l + 1.013f * pos + 0.011f * i;
        v[i] = -k[i] * 1.7f;
      }
      kv.Store(l, pos, k.data(), v.data());
    }
  }
}

TEST(KvCache, Bf16StoresRoundToNearestEvenOnceAndHalvesTheBytes) {
  const ModelConfig c = SmallConfig();
  KvPool pool(c, 1 << 20);
  auto f = pool.TryAllocate(20, DType::kF32);
  auto b = pool.TryAllocate(20, DType::kBF16);
  ASSERT_TRUE(f && b);
  EXPECT_EQ(b->bytes() * 2, f->bytes());
  EXPECT_EQ(pool.used(), f->bytes() + b->bytes());
  EXPECT_EQ(pool.BytesFor(20, DType::kBF16), b->bytes());
  Fill(*f, c, 0, 20, 3.0f);
  Fill(*b, c, 0, 20, 3.0f);
  for (size_t l = 0; l < c.layers; ++l) {
    for (size_t pos = 0; pos < 20; ++pos) {
      for (size_t i = 0; i < c.kv_dim(); ++i) {
        const size_t h = i / c.head_dim, d = i % c.head_dim;
        ASSERT_EQ(b->Key(l, h, pos, d), BF16ToF32(F32ToBF16(f->Key(l, h, pos, d))));
        ASSERT_EQ(b->Value(l, pos, i), BF16ToF32(F32ToBF16(f->Value(l, pos, i))));
      }
    }
  }
}

TEST(KvCache, SharedPrefixIsReferencedOnceAndReadsLikeACopy) {
  const ModelConfig c = SmallConfig();
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    KvPool pool(c, 1 << 20);
    auto src = pool.TryAllocate(64, dtype);
    ASSERT_NE(src, nullptr);
    Fill(*src, c, 0, 40, 1.0f);  // a 40-token prompt: two whole tiles and 8 positions
    const uint64_t src_bytes = pool.used();
    auto copy = pool.TryAllocateWithPrefix(70, *src, 40, /*share=*/false);
    auto shared = pool.TryAllocateWithPrefix(70, *src, 40);
    ASSERT_TRUE(copy && shared);
    EXPECT_EQ(copy->shared_positions(), 0u);
    EXPECT_EQ(shared->shared_positions(), 32u);
    EXPECT_EQ(shared->capacity(), 80u);
    // Only the tail past the shared tiles is new memory.
    EXPECT_EQ(shared->bytes(), pool.BytesFor(80 - 32, dtype));
    EXPECT_EQ(pool.used(), src_bytes + copy->bytes() + shared->bytes());
    // A sequence sharing from a sharer references the same prompt, no more.
    auto second = pool.TryAllocateWithPrefix(70, *shared, 45);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(second->shared_positions(), 32u);
    Fill(*copy, c, 40, 70, 9.0f);
    Fill(*shared, c, 40, 70, 9.0f);
    for (size_t l = 0; l < c.layers; ++l) {
      for (size_t pos = 0; pos < 70; ++pos) {
        for (size_t i = 0; i < c.kv_dim(); ++i) {
          const size_t h = i / c.head_dim, d = i % c.head_dim;
          ASSERT_EQ(shared->Key(l, h, pos, d), copy->Key(l, h, pos, d)) << pos;
          ASSERT_EQ(shared->Value(l, pos, i), copy->Value(l, pos, i)) << pos;
          if (pos < 40) {
            ASSERT_EQ(second->Value(l, pos, i), copy->Value(l, pos, i)) << pos;
          }
        }
      }
      KvSegment seg[2];
      ASSERT_EQ(shared->Segments(l, 1, 70, seg), 2u);
      EXPECT_EQ(seg[0].positions, 32u);
      EXPECT_EQ(seg[1].positions, 38u);
    }
    // The prompt's block outlives its first owner while a sharer references it.
    const uint64_t before = pool.used();
    src.reset();
    EXPECT_EQ(pool.used(), before);
    EXPECT_EQ(shared->Value(1, 5, 3), copy->Value(1, 5, 3));
    shared.reset();
    second.reset();
    EXPECT_EQ(pool.used(), copy->bytes());
  }
}

TEST(KvCache, SharingStillRespectsTheBudget) {
  const ModelConfig c = SmallConfig();
  KvPool probe(c, 0);
  const uint64_t tile = probe.BytesFor(16, DType::kF32);
  KvPool pool(c, tile * 6);  // the prompt block (4 tiles) and one 2-tile tail
  auto src = pool.TryAllocate(64, DType::kF32);
  ASSERT_NE(src, nullptr);
  Fill(*src, c, 0, 48, 2.0f);
  auto a = pool.TryAllocateWithPrefix(64, *src, 33);  // shares 32, owns 32
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pool.used(), tile * 6);
  EXPECT_EQ(pool.TryAllocateWithPrefix(64, *src, 33), nullptr);
  EXPECT_EQ(pool.peak(), tile * 6);
}

}  // namespace
}  // namespace rvec
