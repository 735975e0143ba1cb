// KV blocks and sequences (f32 or bf16, with an optional shared prefix) and the KvPool byte
// accounting.
#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace rvec {

KvBlock::KvBlock(KvPool* pool, size_t capacity, size_t kv_dim, size_t head_dim, size_t elem,
                 uint64_t bytes)
    : pool_(pool),
      capacity_(capacity),
      kv_dim_(kv_dim),
      head_dim_(head_dim),
      elem_(elem),
      bytes_(bytes),
      data_(new uint8_t[bytes]) {}

KvBlock::~KvBlock() { pool_->used_ -= bytes_; }

SequenceKv::SequenceKv(DType dtype, size_t layers, size_t kv_dim, size_t head_dim,
                       std::shared_ptr<const KvBlock> shared, size_t shared_len,
                       std::shared_ptr<KvBlock> own)
    : dtype_(dtype),
      layers_(layers),
      kv_dim_(kv_dim),
      head_dim_(head_dim),
      shared_(std::move(shared)),
      shared_len_(shared_len),
      own_(std::move(own)) {}

void SequenceKv::Store(size_t layer, size_t pos, const float* k, const float* v) {
  const size_t p = pos - shared_len_;
  const size_t in_tile = (p / kKeyTile) * kKeyTile * head_dim_ + p % kKeyTile;
  const size_t heads = kv_dim_ / head_dim_;
  if (bf16()) {
    for (size_t h = 0; h < heads; ++h) {
      auto* dst = reinterpret_cast<uint16_t*>(own_->At(own_->KeyOffset(layer, h) + in_tile));
      for (size_t d = 0; d < head_dim_; ++d) dst[d * kKeyTile] = F32ToBF16(k[h * head_dim_ + d]);
    }
    auto* dst = reinterpret_cast<uint16_t*>(own_->At(own_->ValueOffset(layer, p)));
    for (size_t i = 0; i < kv_dim_; ++i) dst[i] = F32ToBF16(v[i]);
    return;
  }
  for (size_t h = 0; h < heads; ++h) {
    auto* dst = reinterpret_cast<float*>(own_->At(own_->KeyOffset(layer, h) + in_tile));
    for (size_t d = 0; d < head_dim_; ++d) dst[d * kKeyTile] = k[h * head_dim_ + d];
  }
  std::memcpy(own_->At(own_->ValueOffset(layer, p)), v, kv_dim_ * sizeof(float));
}

void SequenceKv::ClearKeyTile(size_t pos) {
  const size_t tile = (pos - shared_len_) / kKeyTile * kKeyTile * head_dim_;
  for (size_t l = 0; l < layers_; ++l) {
    for (size_t h = 0; h < kv_dim_ / head_dim_; ++h) {
      std::memset(own_->At(own_->KeyOffset(l, h) + tile), 0,
                  kKeyTile * head_dim_ * own_->elem_size());
    }
  }
}

size_t SequenceKv::Segments(size_t layer, size_t kv_head, size_t n_ctx, KvSegment out[2]) const {
  size_t n = 0;
  if (shared_len_ > 0) {
    const size_t len = std::min(n_ctx, shared_len_);
    out[n++] = {shared_->At(shared_->KeyOffset(layer, kv_head)),
                shared_->At(shared_->ValueOffset(layer, 0) + kv_head * head_dim_), len};
    if (n_ctx <= shared_len_) return n;
  }
  out[n++] = {own_->At(own_->KeyOffset(layer, kv_head)),
              own_->At(own_->ValueOffset(layer, 0) + kv_head * head_dim_), n_ctx - shared_len_};
  return n;
}

std::pair<const KvBlock*, size_t> SequenceKv::Locate(size_t pos) const {
  if (pos < shared_len_) return {shared_.get(), pos};
  return {own_.get(), pos - shared_len_};
}

float SequenceKv::Key(size_t layer, size_t kv_head, size_t pos, size_t d) const {
  const auto [block, p] = Locate(pos);
  const size_t off = block->KeyOffset(layer, kv_head) + (p / kKeyTile) * kKeyTile * head_dim_ +
                     d * kKeyTile + p % kKeyTile;
  if (bf16()) return BF16ToF32(*reinterpret_cast<const uint16_t*>(block->At(off)));
  return *reinterpret_cast<const float*>(block->At(off));
}

float SequenceKv::Value(size_t layer, size_t pos, size_t i) const {
  const auto [block, p] = Locate(pos);
  const size_t off = block->ValueOffset(layer, p) + i;
  if (bf16()) return BF16ToF32(*reinterpret_cast<const uint16_t*>(block->At(off)));
  return *reinterpret_cast<const float*>(block->At(off));
}

void SequenceKv::CopyFrom(const SequenceKv& src, size_t from, size_t to) {
  const size_t elem = own_->elem_size();
  // Whole key tiles: the copied lanes past `to` are overwritten before they are ever read.
  for (size_t t = from; t < to; t += kKeyTile) {
    const auto [block, p] = src.Locate(t);
    const size_t dst_tile = (t - shared_len_) * head_dim_;
    for (size_t l = 0; l < layers_; ++l) {
      for (size_t h = 0; h < kv_dim_ / head_dim_; ++h) {
        std::memcpy(own_->At(own_->KeyOffset(l, h) + dst_tile),
                    block->At(block->KeyOffset(l, h) + p * head_dim_), kKeyTile * head_dim_ * elem);
      }
    }
  }
  for (size_t pos = from; pos < to; ++pos) {
    const auto [block, p] = src.Locate(pos);
    for (size_t l = 0; l < layers_; ++l) {
      std::memcpy(own_->At(own_->ValueOffset(l, pos - shared_len_)),
                  block->At(block->ValueOffset(l, p)), kv_dim_ * elem);
    }
  }
}

KvPool::KvPool(const ModelConfig& config, uint64_t budget_bytes)
    : layers_(config.layers),
      kv_dim_(config.kv_dim()),
      head_dim_(config.head_dim),
      budget_(budget_bytes) {}

std::shared_ptr<KvBlock> KvPool::TryAllocateBlock(size_t capacity, DType dtype) {
  const uint64_t need = BytesFor(capacity, dtype);
  if (capacity == 0 || used_ + need > budget_) return nullptr;
  used_ += need;
  peak_ = std::max(peak_, used_);
  return std::shared_ptr<KvBlock>(
      new KvBlock(this, RoundUpToKeyTile(capacity), kv_dim_, head_dim_, DTypeSize(dtype), need));
}

std::unique_ptr<SequenceKv> KvPool::TryAllocate(size_t capacity, DType dtype) {
  std::shared_ptr<KvBlock> own = TryAllocateBlock(capacity, dtype);
  if (!own) return nullptr;
  return std::unique_ptr<SequenceKv>(
      new SequenceKv(dtype, layers_, kv_dim_, head_dim_, nullptr, 0, std::move(own)));
}

size_t KvPool::SharablePositions(const SequenceKv& src, size_t n) {
  const size_t tiles = std::min(n, src.capacity()) / kKeyTile * kKeyTile;
  // A sequence that itself shares a prefix lends that prefix only (one shared segment each).
  if (src.shared_len_ > 0) return std::min(tiles, src.shared_len_);
  return tiles;
}

std::unique_ptr<SequenceKv> KvPool::TryAllocateWithPrefix(size_t capacity, const SequenceKv& src,
                                                          size_t n, bool share) {
  capacity = RoundUpToKeyTile(capacity);
  n = std::min({n, capacity, src.capacity()});
  size_t shared = share ? SharablePositions(src, n) : 0;
  if (shared > 0 && shared >= capacity) shared -= kKeyTile;  // keep at least one tile of its own
  std::shared_ptr<KvBlock> own = TryAllocateBlock(capacity - shared, src.dtype());
  if (!own) return nullptr;
  std::shared_ptr<const KvBlock> block;
  if (shared > 0) block = src.shared_len_ > 0 ? src.shared_ : src.own_;
  std::unique_ptr<SequenceKv> kv(new SequenceKv(src.dtype(), layers_, kv_dim_, head_dim_,
                                                std::move(block), shared, std::move(own)));
  kv->CopyFrom(src, shared, n);
  return kv;
}

}  // namespace rvec
