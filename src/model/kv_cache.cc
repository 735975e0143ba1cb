// SequenceKv storage and the KvPool byte accounting.
#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace rvec {

SequenceKv::SequenceKv(KvPool* pool, size_t layers, size_t capacity, size_t kv_dim)
    : pool_(pool),
      layers_(layers),
      capacity_(capacity),
      kv_dim_(kv_dim),
      data_(new float[layers * 2 * capacity * kv_dim]) {}

SequenceKv::~SequenceKv() { pool_->used_ -= bytes(); }

void SequenceKv::CopyPrefix(const SequenceKv& other, size_t n) {
  n = std::min({n, capacity_, other.capacity_});
  for (size_t l = 0; l < layers_; ++l) {
    for (size_t kv = 0; kv < 2; ++kv) {
      std::memcpy(data_.get() + (l * 2 + kv) * capacity_ * kv_dim_,
                  other.data_.get() + (l * 2 + kv) * other.capacity_ * kv_dim_,
                  n * kv_dim_ * sizeof(float));
    }
  }
}

KvPool::KvPool(const ModelConfig& config, uint64_t budget_bytes)
    : layers_(config.layers),
      kv_dim_(config.kv_dim()),
      bytes_per_token_(config.KvBytesPerToken()),
      budget_(budget_bytes) {}

std::unique_ptr<SequenceKv> KvPool::TryAllocate(size_t capacity) {
  const uint64_t need = BytesFor(capacity);
  if (capacity == 0 || used_ + need > budget_) return nullptr;
  used_ += need;
  peak_ = std::max(peak_, used_);
  return std::unique_ptr<SequenceKv>(new SequenceKv(this, layers_, capacity, kv_dim_));
}

}  // namespace rvec
