// Per-sequence key/value caches drawn from a pool with a hard byte budget, so that batching never
// uses more KV memory than the user allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "model/model_config.h"

namespace rvec {

class KvPool;

// Positions per key tile; the attention kernel (ops/nn.h) reads keys in this layout.
inline constexpr size_t kKeyTile = 16;
inline size_t RoundUpToKeyTile(size_t n) { return (n + kKeyTile - 1) / kKeyTile * kKeyTile; }

// Keys and values of one sequence, f32. Values are [layer][position][kv_heads * head_dim]; keys
// are [layer][kv_head][position / 16][head_dim][16] (kKeyTile positions side by side), so that
// the attention kernel scores 16 positions per vector, one lane per position. Capacity is rounded
// up to whole tiles. Not thread-safe.
class SequenceKv {
 public:
  ~SequenceKv();
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  size_t capacity() const { return capacity_; }  // positions
  size_t kv_dim() const { return kv_dim_; }
  // Writes the key and value rows ([kv_heads * head_dim] each) of one position.
  void Store(size_t layer, size_t pos, const float* k, const float* v);
  // Zeroes, in every layer, the key tile holding `pos`. The attention kernel scores whole tiles
  // and ignores the lanes past the context; clearing a tile before its first position is stored
  // keeps those lanes defined (no uninitialised reads, no NaN patterns) while pages still become
  // resident only as they are used. Must not run concurrently with a Store into the same tile.
  void ClearKeyTile(size_t pos);
  // The key tiles of one kv head (see the class comment).
  const float* KeyTiles(size_t layer, size_t kv_head) const {
    return data_.get() + (layer * 2) * capacity_ * kv_dim_ + kv_head * capacity_ * head_dim_;
  }
  const float* V(size_t layer, size_t pos) const {
    return data_.get() + ((layer * 2 + 1) * capacity_ + pos) * kv_dim_;
  }
  // Copies positions [0, n) of every layer from `other` (shared-prefix reuse).
  void CopyPrefix(const SequenceKv& other, size_t n);
  uint64_t bytes() const { return uint64_t(layers_) * 2 * capacity_ * kv_dim_ * sizeof(float); }

 private:
  friend class KvPool;

  SequenceKv(KvPool* pool, size_t layers, size_t capacity, size_t kv_dim, size_t head_dim);
  KvPool* pool_;
  size_t layers_;
  size_t capacity_;  // a multiple of kKeyTile
  size_t kv_dim_;
  size_t head_dim_;
  // Uninitialised on purpose: pages become resident only as positions are written.
  std::unique_ptr<float[]> data_;
};

// Hands out SequenceKv buffers while the total stays within the budget. Must outlive them.
class KvPool {
 public:
  KvPool(const ModelConfig& config, uint64_t budget_bytes);

  // nullptr when `capacity` positions do not fit in the remaining budget.
  std::unique_ptr<SequenceKv> TryAllocate(size_t capacity);
  uint64_t BytesFor(size_t capacity) const {
    return uint64_t(RoundUpToKeyTile(capacity)) * bytes_per_token_;
  }
  uint64_t budget() const { return budget_; }
  uint64_t used() const { return used_; }
  uint64_t peak() const { return peak_; }

 private:
  friend class SequenceKv;
  size_t layers_;
  size_t kv_dim_;
  size_t head_dim_;
  uint64_t bytes_per_token_;
  uint64_t budget_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace rvec
