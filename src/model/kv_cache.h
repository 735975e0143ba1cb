// Per-sequence key/value caches drawn from a pool with a hard byte budget, so that batching never
// uses more KV memory than the user allowed; sequences with a common prompt share its KV.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/dtype.h"
#include "base/status.h"
#include "model/model_config.h"
#include "ops/nn.h"

namespace rvec {

class KvPool;

// Positions per key tile; the attention kernel (ops/nn.h) reads keys in this layout.
inline constexpr size_t kKeyTile = 16;
inline size_t RoundUpToKeyTile(size_t n) { return (n + kKeyTile - 1) / kKeyTile * kKeyTile; }

// One allocation of KV storage for `capacity` positions (a multiple of kKeyTile), f32 or bf16.
// Values are [layer][position][kv_heads * head_dim]; keys are
// [layer][kv_head][position / 16][head_dim][16] (kKeyTile positions side by side), so that the
// attention kernel scores 16 positions per vector, one lane per position. Its bytes go back to
// the pool when the last sequence referencing it lets go.
class KvBlock {
 public:
  ~KvBlock();
  KvBlock(const KvBlock&) = delete;
  KvBlock& operator=(const KvBlock&) = delete;

  size_t capacity() const { return capacity_; }
  uint64_t bytes() const { return bytes_; }
  size_t elem_size() const { return elem_; }
  // Element offsets of a kv head's key tiles and of one position's value row.
  size_t KeyOffset(size_t layer, size_t kv_head) const {
    return (layer * 2) * capacity_ * kv_dim_ + kv_head * capacity_ * head_dim_;
  }
  size_t ValueOffset(size_t layer, size_t pos) const {
    return ((layer * 2 + 1) * capacity_ + pos) * kv_dim_;
  }
  uint8_t* At(size_t elem_offset) { return data_.get() + elem_offset * elem_; }
  const uint8_t* At(size_t elem_offset) const { return data_.get() + elem_offset * elem_; }

 private:
  friend class KvPool;
  KvBlock(KvPool* pool, size_t capacity, size_t kv_dim, size_t head_dim, size_t elem,
          uint64_t bytes);
  KvPool* pool_;
  size_t capacity_;
  size_t kv_dim_;
  size_t head_dim_;
  size_t elem_;
  uint64_t bytes_;
  // Uninitialised on purpose: pages become resident only as positions are written.
  std::unique_ptr<uint8_t[]> data_;
};

// Keys and values of one sequence: optionally a read-only shared prefix (whole key tiles of
// another sequence's block, e.g. the prompt that K samples have in common) followed by the
// sequence's own block. Positions below shared_positions() are never written. Not thread-safe.
class SequenceKv {
 public:
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  size_t capacity() const { return shared_len_ + own_->capacity(); }  // positions
  size_t shared_positions() const { return shared_len_; }
  DType dtype() const { return dtype_; }
  bool bf16() const { return dtype_ == DType::kBF16; }
  size_t kv_dim() const { return kv_dim_; }
  // Writes the key and value rows ([kv_heads * head_dim] each) of one position, rounding to the
  // cache dtype once (nearest even). `pos` must be at or past shared_positions().
  void Store(size_t layer, size_t pos, const float* k, const float* v);
  // Zeroes, in every layer, the key tile holding `pos`. The attention kernel scores whole tiles
  // and ignores the lanes past the context; clearing a tile before its first position is stored
  // keeps those lanes defined (no uninitialised reads, no NaN patterns) while pages still become
  // resident only as they are used. Must not run concurrently with a Store into the same tile.
  void ClearKeyTile(size_t pos);
  // The segments attention reads for positions [0, n_ctx) of one kv head: the shared prefix (if
  // any) and the own block. Value pointers start at the head's column. Returns how many (1 or 2).
  size_t Segments(size_t layer, size_t kv_head, size_t n_ctx, KvSegment out[2]) const;
  // Key d of position `pos` and value element i, widened to f32 (tests and diagnostics).
  float Key(size_t layer, size_t kv_head, size_t pos, size_t d) const;
  float Value(size_t layer, size_t pos, size_t i) const;
  // Bytes this sequence holds on its own (the shared prefix is counted by its owner's block).
  uint64_t bytes() const { return own_->bytes(); }

 private:
  friend class KvPool;
  SequenceKv(DType dtype, size_t layers, size_t kv_dim, size_t head_dim,
             std::shared_ptr<const KvBlock> shared, size_t shared_len,
             std::shared_ptr<KvBlock> own);
  // The block and block-relative position holding `pos`.
  std::pair<const KvBlock*, size_t> Locate(size_t pos) const;
  // Copies positions [from, to) (from tile-aligned, past the shared prefix) from `src`.
  void CopyFrom(const SequenceKv& src, size_t from, size_t to);

  DType dtype_;
  size_t layers_;
  size_t kv_dim_;
  size_t head_dim_;
  std::shared_ptr<const KvBlock> shared_;
  size_t shared_len_;  // a multiple of kKeyTile
  std::shared_ptr<KvBlock> own_;
};

// Hands out KV storage while the total stays within the budget. Must outlive every block.
class KvPool {
 public:
  KvPool(const ModelConfig& config, uint64_t budget_bytes);

  // nullptr when `capacity` positions do not fit in the remaining budget. `dtype` is kF32 or
  // kBF16.
  std::unique_ptr<SequenceKv> TryAllocate(size_t capacity, DType dtype = DType::kF32);
  // A sequence of `capacity` positions whose first `n` positions equal `src`'s (same dtype):
  // the whole key tiles of that prefix are referenced, read-only, from src's storage (counted
  // once), and only the rest is copied into the new sequence's own block (everything, when
  // `share` is false). Attention over it gives the same bits as over a full copy. nullptr when
  // the own block does not fit.
  std::unique_ptr<SequenceKv> TryAllocateWithPrefix(size_t capacity, const SequenceKv& src,
                                                    size_t n, bool share = true);
  // Bytes of a block of `capacity` positions.
  uint64_t BytesFor(size_t capacity, DType dtype = DType::kF32) const {
    return uint64_t(RoundUpToKeyTile(capacity)) * BytesPerToken(dtype);
  }
  uint64_t BytesPerToken(DType dtype) const {
    return uint64_t(layers_) * 2 * kv_dim_ * DTypeSize(dtype);
  }
  // Positions that TryAllocateWithPrefix(…, src, n) would reference instead of copying.
  static size_t SharablePositions(const SequenceKv& src, size_t n);
  uint64_t budget() const { return budget_; }
  uint64_t used() const { return used_; }
  uint64_t peak() const { return peak_; }

 private:
  friend class KvBlock;
  std::shared_ptr<KvBlock> TryAllocateBlock(size_t capacity, DType dtype);
  size_t layers_;
  size_t kv_dim_;
  size_t head_dim_;
  uint64_t budget_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace rvec
