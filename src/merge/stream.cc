// Streaming driver: chunked parallel rounds over tensors with page release behind the readers.
#include "merge/stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/dtype.h"
#include "merge/kernels.h"

namespace rvec::merge {

namespace {
// Chunks per parallel round: enough that the tail of a round rarely idles a worker.
constexpr size_t kMinChunksPerRound = 32;
}  // namespace

Status RunJobs(ThreadPool& pool, std::vector<TensorJob>& jobs, Progress* progress) {
  size_t first = 0;
  while (first < jobs.size()) {
    // Gather a round: [first, last) of whole tensors.
    size_t last = first;
    size_t chunks = 0;
    while (last < jobs.size() && (last == first || chunks < kMinChunksPerRound)) {
      if (last != first && jobs[last].prepare) break;  // pre-passes use the pool themselves
      chunks += jobs[last].NumChunks();
      ++last;
    }
    for (size_t j = first; j < last; ++j) {
      if (jobs[j].prepare) RETURN_IF_ERROR(jobs[j].prepare());
    }
    struct Task {
      size_t job;
      uint64_t chunk;
    };
    std::vector<Task> tasks;
    tasks.reserve(chunks);
    for (size_t j = first; j < last; ++j) {
      const uint64_t n = jobs[j].NumChunks();
      for (uint64_t c = 0; c < n; ++c) tasks.push_back({j, c});
    }
    std::vector<Status> results(tasks.size());
    pool.ParallelFor(tasks.size(), [&](size_t t, size_t worker) {
      const TensorJob& job = jobs[tasks[t].job];
      if (!job.run) return;
      const uint64_t begin = tasks[t].chunk * job.chunk_elements;
      const uint64_t end = std::min(job.numel, begin + job.chunk_elements);
      results[t] = job.run(tasks[t].chunk, begin, end, worker);
    });
    for (const Status& s : results) RETURN_IF_ERROR(s);
    for (size_t j = first; j < last; ++j) {
      if (jobs[j].done) RETURN_IF_ERROR(jobs[j].done());
      if (progress) progress->Advance(jobs[j].progress_units);
      // Free the closures (and whatever state they captured) as soon as the tensor is complete.
      jobs[j] = TensorJob();
    }
    first = last;
  }
  return OkStatus();
}

uint64_t ShardBudgetLike(const Checkpoint& ckpt, double ratio) {
  if (!ckpt.is_sharded()) return 0;
  uint64_t largest = 0;
  for (size_t i = 0; i < ckpt.num_shards(); ++i) {
    uint64_t bytes = 0;
    for (const TensorInfo& t : ckpt.shard(i).tensors()) bytes += t.NumBytes();
    largest = std::max(largest, bytes);
  }
  return static_cast<uint64_t>(static_cast<double>(largest) * ratio) + 1;
}

uint64_t TotalBytes(const std::vector<TensorSpec>& specs) {
  uint64_t total = 0;
  for (const TensorSpec& s : specs) total += s.NumBytes();
  return total;
}

std::optional<DType> UniformFloatDType(const std::vector<TensorSpec>& specs) {
  std::optional<DType> uniform;
  for (const TensorSpec& s : specs) {
    if (!IsSupportedFloat(s.dtype)) continue;
    if (uniform && *uniform != s.dtype) return std::nullopt;
    uniform = s.dtype;
  }
  return uniform;
}

void ParallelTasks(ThreadPool& pool, size_t n, const std::function<void(size_t)>& fn) {
  pool.ParallelFor(n, [&](size_t task, size_t) { fn(task); });
}

void ReadF32(const TensorView& view, uint64_t begin, size_t n, float* dst) {
  const size_t size = DTypeSize(view.dtype());
  DecodeToF32(view.dtype(), view.data + begin * size, n, dst);
}

void ReleaseElements(const Checkpoint& ckpt, const TensorView& view, uint64_t begin, uint64_t end) {
  if (end <= begin) return;
  const SafetensorsFile& shard = ckpt.shard(ckpt.ShardOf(view.name()));
  const size_t size = DTypeSize(view.dtype());
  const uint64_t offset = static_cast<uint64_t>(view.data - shard.file().data()) + begin * size;
  shard.file().Release(offset, (end - begin) * size);
}

void PrefetchTensor(const Checkpoint& ckpt, const TensorView& view) {
  ckpt.shard(ckpt.ShardOf(view.name())).Prefetch(*view.info);
}

RawReader::~RawReader() {
  for (auto& [ckpt, fds] : files_) {
    for (int fd : fds) ::close(fd);
  }
}

Status RawReader::Add(const Checkpoint& ckpt) {
  for (const auto& entry : files_) {
    if (entry.first == &ckpt) return OkStatus();
  }
  std::vector<int> fds;
  for (size_t i = 0; i < ckpt.num_shards(); ++i) {
    const int fd = ::open(ckpt.shard(i).path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      for (int f : fds) ::close(f);
      return IoError("{}: cannot open: {}", ckpt.shard(i).path().string(), std::strerror(err));
    }
    fds.push_back(fd);
  }
  files_.emplace_back(&ckpt, std::move(fds));
  return OkStatus();
}

Status RawReader::Read(const Checkpoint& ckpt, const TensorView& view, uint64_t begin, uint64_t n,
                       void* dst) const {
  const std::vector<int>* fds = nullptr;
  for (const auto& entry : files_) {
    if (entry.first == &ckpt) fds = &entry.second;
  }
  if (!fds) return Internal("RawReader: checkpoint {} not added", ckpt.path().string());
  const size_t shard_index = ckpt.ShardOf(view.name());
  const SafetensorsFile& shard = ckpt.shard(shard_index);
  const size_t size = DTypeSize(view.dtype());
  uint64_t offset = shard.data_offset() + view.info->begin + begin * size;
  uint64_t remaining = n * size;
  uint8_t* out = static_cast<uint8_t*>(dst);
  while (remaining > 0) {
    const ssize_t got = ::pread((*fds)[shard_index], out, remaining, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return DataLoss("{}: reading tensor {} failed: {}", shard.path().string(), view.name(),
                      got < 0 ? std::strerror(errno) : "file shorter than its header says");
    }
    out += got;
    offset += static_cast<uint64_t>(got);
    remaining -= static_cast<uint64_t>(got);
  }
  return OkStatus();
}

Scratch::Scratch(size_t workers, size_t buffers, size_t elements)
    : elements_(elements), data_(workers), bytes_(workers) {
  for (auto& d : data_) d.resize(buffers * elements);
}

}  // namespace rvec::merge
