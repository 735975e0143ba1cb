// The streaming driver shared by extract/apply/merge/control/stats: tensors are processed in order,
// each split into fixed chunks run on the thread pool, with mapped input pages dropped as soon as a
// chunk has been consumed, so memory stays bounded whatever the model size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "io/safetensors.h"

namespace rvec::merge {

// Elements per chunk: large enough to amortise a task, small enough to bound per-worker buffers.
inline constexpr uint64_t kChunkElements = uint64_t{1} << 20;

struct TensorJob {
  uint64_t numel = 0;
  uint64_t chunk_elements = kChunkElements;
  // Runs on the calling thread before the tensor's chunks; may use the pool (for pre-passes).
  std::function<Status()> prepare;
  // Processes elements [begin, end) of chunk `chunk`; runs on any worker.
  std::function<Status(uint64_t chunk, uint64_t begin, uint64_t end, size_t worker)> run;
  // Runs on the calling thread after all chunks of the tensor.
  std::function<Status()> done;
  uint64_t progress_units = 0;  // advanced when the tensor completes

  uint64_t NumChunks() const {
    return numel == 0 ? 1 : (numel + chunk_elements - 1) / chunk_elements;
  }
};

// Output layout shared by every writer here: sharded like `ckpt` with its largest shard's tensor
// bytes scaled by `ratio` (plus one byte), or 0 (one file) when `ckpt` is one file.
uint64_t ShardBudgetLike(const Checkpoint& ckpt, double ratio = 1.0);
// Tensor bytes of all specs (the progress total of a streaming pass).
uint64_t TotalBytes(const std::vector<TensorSpec>& specs);
// The dtype of the float tensors of `specs` when they all share one (what config.json's
// torch_dtype can say); nullopt when there is none or several.
std::optional<DType> UniformFloatDType(const std::vector<TensorSpec>& specs);

// Runs the jobs in order. Chunks of consecutive tensors are batched into one parallel round so
// small tensors (norms, biases) do not serialise. Returns the first error (in chunk order).
Status RunJobs(ThreadPool& pool, std::vector<TensorJob>& jobs, Progress* progress);

// Runs fn(task) for task in [0, n) on the pool (adapter for TopKSelector and pre-passes).
void ParallelTasks(ThreadPool& pool, size_t n, const std::function<void(size_t)>& fn);

// Decodes elements [begin, begin + n) of a tensor to f32.
void ReadF32(const TensorView& view, uint64_t begin, size_t n, float* dst);

// Drops the mapped pages holding elements [begin, end) of `view`, which lives in `ckpt`.
void ReleaseElements(const Checkpoint& ckpt, const TensorView& view, uint64_t begin, uint64_t end);
// Asks the kernel to read ahead the whole tensor.
void PrefetchTensor(const Checkpoint& ckpt, const TensorView& view);

// Reads tensor bytes with pread(2) into caller buffers. For the hot streaming paths this is
// cheaper than faulting the mapping in and dropping it again (no page-table setup, no TLB
// shootdowns between the two workers) and keeps resident memory at the buffers' size.
class RawReader {
 public:
  RawReader() = default;
  ~RawReader();
  RawReader(const RawReader&) = delete;
  RawReader& operator=(const RawReader&) = delete;

  // Opens every shard of `ckpt` (call before the parallel phase; reads are then thread-safe).
  Status Add(const Checkpoint& ckpt);
  // Copies elements [begin, begin + n) of `view` (a tensor of `ckpt`) to `dst`.
  Status Read(const Checkpoint& ckpt, const TensorView& view, uint64_t begin, uint64_t n,
              void* dst) const;

 private:
  std::vector<std::pair<const Checkpoint*, std::vector<int>>> files_;
};

// Per-worker scratch buffers of f32 blocks, reused across chunks.
class Scratch {
 public:
  Scratch(size_t workers, size_t buffers, size_t elements);
  float* Get(size_t worker, size_t buffer) { return data_[worker].data() + buffer * elements_; }
  std::vector<uint8_t>& Bytes(size_t worker) { return bytes_[worker]; }

 private:
  size_t elements_;
  std::vector<std::vector<float>> data_;
  std::vector<std::vector<uint8_t>> bytes_;
};

}  // namespace rvec::merge
