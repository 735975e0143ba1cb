// SequenceKv storage and the KvPool byte accounting.
#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace rvec {

SequenceKv::SequenceKv(KvPool* pool, size_t layers, size_t capacity, size_t kv_dim, size_t head_dim)
    : pool_(pool),
      layers_(layers),
      capacity_(RoundUpToKeyTile(capacity)),
      kv_dim_(kv_dim),
      head_dim_(head_dim),
      data_(new float[layers * 2 * capacity_ * kv_dim]) {}

SequenceKv::~SequenceKv() { pool_->used_ -= bytes(); }

void SequenceKv::Store(size_t layer, size_t pos, const float* k, const float* v) {
  float* tile = data_.get() + (layer * 2) * capacity_ * kv_dim_ +
                (pos / kKeyTile) * kKeyTile * head_dim_ + pos % kKeyTile;
  for (size_t h = 0; h < kv_dim_ / head_dim_; ++h) {
    float* dst = tile + h * capacity_ * head_dim_;
    for (size_t d = 0; d < head_dim_; ++d) dst[d * kKeyTile] = k[h * head_dim_ + d];
  }
  std::memcpy(data_.get() + ((layer * 2 + 1) * capacity_ + pos) * kv_dim_, v,
              kv_dim_ * sizeof(float));
}

void SequenceKv::ClearKeyTile(size_t pos) {
  const size_t tile = pos / kKeyTile * kKeyTile * head_dim_;
  for (size_t l = 0; l < layers_; ++l) {
    for (size_t h = 0; h < kv_dim_ / head_dim_; ++h) {
      std::memset(data_.get() + (l * 2) * capacity_ * kv_dim_ + h * capacity_ * head_dim_ + tile, 0,
                  kKeyTile * head_dim_ * sizeof(float));
    }
  }
}

void SequenceKv::CopyPrefix(const SequenceKv& other, size_t n) {
  n = std::min({n, capacity_, other.capacity_});
  // Whole key tiles: the copied positions past n are overwritten before they are ever read.
  const size_t tiles_n = RoundUpToKeyTile(n);
  for (size_t l = 0; l < layers_; ++l) {
    for (size_t h = 0; h < kv_dim_ / head_dim_; ++h) {
      std::memcpy(
          data_.get() + (l * 2) * capacity_ * kv_dim_ + h * capacity_ * head_dim_,
          other.data_.get() + (l * 2) * other.capacity_ * kv_dim_ + h * other.capacity_ * head_dim_,
          tiles_n * head_dim_ * sizeof(float));
    }
    std::memcpy(data_.get() + (l * 2 + 1) * capacity_ * kv_dim_,
                other.data_.get() + (l * 2 + 1) * other.capacity_ * kv_dim_,
                n * kv_dim_ * sizeof(float));
  }
}

KvPool::KvPool(const ModelConfig& config, uint64_t budget_bytes)
    : layers_(config.layers),
      kv_dim_(config.kv_dim()),
      head_dim_(config.head_dim),
      bytes_per_token_(config.KvBytesPerToken()),
      budget_(budget_bytes) {}

std::unique_ptr<SequenceKv> KvPool::TryAllocate(size_t capacity) {
  const uint64_t need = BytesFor(capacity);
  if (capacity == 0 || used_ + need > budget_) return nullptr;
  used_ += need;
  peak_ = std::max(peak_, used_);
  return std::unique_ptr<SequenceKv>(new SequenceKv(this, layers_, capacity, kv_dim_, head_dim_));
}

}  // namespace rvec
