// Streaming, shard-planning safetensors writer: headers first, tensor bytes by pwrite, output
// renamed into place only once every byte is on disk.
#include "io/checkpoint_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <utility>

#include "io/safetensors.h"

namespace rvec {

namespace fs = std::filesystem;

uint64_t TensorSpec::NumBytes() const {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

namespace {

Status PwriteAll(int fd, const void* data, uint64_t n, uint64_t offset, const fs::path& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1ULL << 30));
    const ssize_t w = ::pwrite(fd, p, chunk, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("{}: write failed: {}", path.string(), std::strerror(errno));
    }
    if (w == 0) return IoError("{}: write made no progress", path.string());
    p += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return OkStatus();
}

Status FsyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return IoError("{}: cannot open to flush: {}", path.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories; the data files were flushed already.
  if (rc != 0 && !(directory && (err == EINVAL || err == EBADF))) {
    return IoError("{}: flush failed: {}", path.string(), std::strerror(err));
  }
  return OkStatus();
}

std::string ShardFileName(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n);
}

}  // namespace

struct CheckpointWriter::Impl {
  struct Shard {
    std::string name;
    fs::path path;
    int fd = -1;
    uint64_t data_offset = 0;  // 8 + header length
    uint64_t file_size = 0;
  };
  struct Placement {
    size_t shard = 0;
    uint64_t file_offset = 0;  // where the tensor's first byte goes in its shard file
    uint64_t bytes = 0;
  };
  // Byte ranges written so far, merged: [begin -> end).
  struct Coverage {
    std::mutex mutex;
    std::map<uint64_t, uint64_t> ranges;
  };

  fs::path out;
  CheckpointWriterOptions options;
  std::optional<PendingOutput> pending;
  fs::path staging_dir;
  std::vector<Shard> shards;
  std::vector<Placement> placement;
  std::unique_ptr<Coverage[]> coverage;
  std::unordered_map<std::string, size_t> by_name;
  uint64_t total_bytes = 0;
  bool finished = false;

  ~Impl() { CloseAll(); }
  Status CreateShard(size_t s, size_t num_shards, const std::vector<size_t>& members,
                     const std::vector<TensorSpec>& tensors,
                     const std::map<std::string, std::string>& metadata);
  void CloseAll() {
    for (Shard& s : shards) {
      if (s.fd >= 0) ::close(s.fd);
      s.fd = -1;
    }
  }
};

namespace {

// Checks names and sizes before anything touches the disk; returns the total tensor bytes.
StatusOr<uint64_t> ValidatePlan(const std::vector<TensorSpec>& tensors, const std::string& label,
                                std::unordered_map<std::string, size_t>* by_name) {
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    if (t.name == "__metadata__") {
      return InvalidArgument("{}: \"__metadata__\" cannot be a tensor name", label);
    }
    if (!by_name->emplace(t.name, i).second) {
      return InvalidArgument("{}: tensor \"{}\" is listed twice", label, t.name);
    }
    uint64_t bytes = DTypeSize(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) {
        return InvalidArgument("{}: tensor \"{}\" has a negative dimension {}", label, t.name, d);
      }
      if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
        return InvalidArgument("{}: tensor \"{}\" is too large", label, t.name);
      }
      bytes *= static_cast<uint64_t>(d);
    }
    if (total > std::numeric_limits<uint64_t>::max() - bytes) {
      return InvalidArgument("{}: checkpoint is too large", label);
    }
    total += bytes;
  }
  return total;
}

// Greedy shard assignment in plan order, as transformers' splitter does: a tensor that would tip
// the current shard over the budget starts a new one; a tensor above the budget sits alone.
std::vector<std::vector<size_t>> AssignShards(const std::vector<TensorSpec>& tensors,
                                              uint64_t budget) {
  std::vector<std::vector<size_t>> members(1);
  uint64_t current = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t bytes = tensors[i].NumBytes();
    if (budget != 0 && !members.back().empty() && current + bytes > budget) {
      members.emplace_back();
      current = 0;
    }
    members.back().push_back(i);
    current += bytes;
  }
  return members;
}

StatusOr<std::map<std::string, std::string>> ShardMetadata(
    std::map<std::string, std::string> metadata, const std::string& label) {
  metadata.emplace("format", "pt");  // what transformers writes; caller's value wins
  // transformers refuses to load a safetensors file whose metadata has any other format.
  if (const std::string& f = metadata["format"];
      f != "pt" && f != "tf" && f != "flax" && f != "mlx") {
    return InvalidArgument(
        "{}: metadata format \"{}\" would make transformers refuse the checkpoint (it accepts pt, "
        "tf, flax, mlx)",
        label, f);
  }
  return metadata;
}

}  // namespace

// Creates shard `s`: lays out its header, reserves its full size and writes the header.
Status CheckpointWriter::Impl::CreateShard(size_t s, size_t num_shards,
                                           const std::vector<size_t>& members,
                                           const std::vector<TensorSpec>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  Shard shard;
  shard.name = options.single_file ? out.filename().string() : ShardFileName(s, num_shards);
  shard.path = options.single_file ? pending->temp_path() : staging_dir / shard.name;
  std::vector<TensorInfo> infos;
  infos.reserve(members.size());
  uint64_t offset = 0;
  for (size_t i : members) {
    TensorInfo info;
    info.name = tensors[i].name;
    info.dtype = tensors[i].dtype;
    info.shape = tensors[i].shape;
    info.begin = offset;
    info.end = offset + tensors[i].NumBytes();
    offset = info.end;
    infos.push_back(std::move(info));
  }
  const std::string header = SerializeSafetensorsHeader(infos, metadata);
  if (header.size() > kMaxSafetensorsHeaderSize) {
    return InvalidArgument("{}: shard {} header would be {} bytes, above the safetensors limit",
                           out.string(), shard.name, header.size());
  }
  shard.data_offset = 8 + header.size();
  shard.file_size = shard.data_offset + offset;
  for (size_t k = 0; k < members.size(); ++k) {
    placement[members[k]] = {s, shard.data_offset + infos[k].begin, infos[k].end - infos[k].begin};
  }
  shard.fd = ::open(shard.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (shard.fd < 0) {
    return IoError("{}: cannot create: {}", shard.path.string(), std::strerror(errno));
  }
  shards.push_back(shard);  // from here on the fd is closed by CloseAll
  // Reserve the space now so that a full disk fails here, not after minutes of work.
  if (shard.file_size > 0) {
    const int rc = ::posix_fallocate(shard.fd, 0, static_cast<off_t>(shard.file_size));
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
      return IoError("{}: cannot reserve {} bytes: {}", shard.path.string(), shard.file_size,
                     std::strerror(rc));
    }
    if (rc != 0 && ::ftruncate(shard.fd, static_cast<off_t>(shard.file_size)) != 0) {
      return IoError("{}: cannot size to {} bytes: {}", shard.path.string(), shard.file_size,
                     std::strerror(errno));
    }
  }
  uint8_t prefix[8];
  const uint64_t n = header.size();
  for (int b = 0; b < 8; ++b) prefix[b] = static_cast<uint8_t>(n >> (8 * b));
  RETURN_IF_ERROR(PwriteAll(shard.fd, prefix, 8, 0, shard.path));
  return PwriteAll(shard.fd, header.data(), header.size(), 8, shard.path);
}

StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Create(
    const fs::path& out, std::vector<TensorSpec> tensors, CheckpointWriterOptions options) {
  const std::string label = out.string();
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->total_bytes, ValidatePlan(tensors, label, &impl->by_name));
  const std::vector<std::vector<size_t>> members =
      AssignShards(tensors, options.single_file ? 0 : options.max_shard_bytes);
  ASSIGN_OR_RETURN(const auto metadata, ShardMetadata(options.metadata, label));

  ASSIGN_OR_RETURN(PendingOutput pending,
                   PendingOutput::Create(out, options.force, !options.single_file));
  impl->pending.emplace(std::move(pending));
  impl->staging_dir = options.single_file
                          ? (out.parent_path().empty() ? fs::path(".") : out.parent_path())
                          : impl->pending->temp_path();
  impl->out = out;
  impl->options = std::move(options);
  impl->placement.resize(tensors.size());
  impl->coverage = std::make_unique<Impl::Coverage[]>(tensors.size());
  for (size_t s = 0; s < members.size(); ++s) {
    RETURN_IF_ERROR(impl->CreateShard(s, members.size(), members[s], tensors, metadata));
  }

  std::unique_ptr<CheckpointWriter> writer(new CheckpointWriter());
  writer->impl_ = std::move(impl);
  writer->tensors_ = std::move(tensors);
  return writer;
}

CheckpointWriter::~CheckpointWriter() = default;

const fs::path& CheckpointWriter::staging_dir() const { return impl_->staging_dir; }

int64_t CheckpointWriter::IndexOf(const std::string& name) const {
  const auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? -1 : static_cast<int64_t>(it->second);
}

Status CheckpointWriter::Write(size_t index, uint64_t offset, const void* data, uint64_t n) {
  if (index >= tensors_.size()) {
    return InvalidArgument("{}: tensor index {} out of range ({} tensors)", impl_->out.string(),
                           index, tensors_.size());
  }
  if (impl_->finished) {
    return FailedPrecondition("{}: write after Finish()", impl_->out.string());
  }
  const Impl::Placement& place = impl_->placement[index];
  if (offset > place.bytes || n > place.bytes - offset) {
    return InvalidArgument("{}: tensor \"{}\": write of {} bytes at offset {} exceeds its {} bytes",
                           impl_->out.string(), tensors_[index].name, n, offset, place.bytes);
  }
  if (n == 0) return OkStatus();
  const Impl::Shard& shard = impl_->shards[place.shard];
  RETURN_IF_ERROR(PwriteAll(shard.fd, data, n, place.file_offset + offset, shard.path)
                      .WithContext(fmt::format("tensor \"{}\"", tensors_[index].name)));
  // Start writing these pages back to disk now, without waiting: the fsync in Finish() then has
  // only the tail left, so the durable write overlaps the computation instead of following it.
  // Advisory: a filesystem that cannot do it just leaves the work to fsync.
  ::sync_file_range(shard.fd, static_cast<off_t>(place.file_offset + offset), static_cast<off_t>(n),
                    SYNC_FILE_RANGE_WRITE);
  Impl::Coverage& cov = impl_->coverage[index];
  std::lock_guard<std::mutex> lock(cov.mutex);
  uint64_t begin = offset;
  uint64_t end = offset + n;
  // Merge with any range that touches [begin, end).
  auto it = cov.ranges.upper_bound(begin);
  if (it != cov.ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) {
      begin = prev->first;
      end = std::max(end, prev->second);
      it = cov.ranges.erase(prev);
    }
  }
  while (it != cov.ranges.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = cov.ranges.erase(it);
  }
  cov.ranges.emplace(begin, end);
  return OkStatus();
}

Status CheckpointWriter::Finish() {
  Impl& impl = *impl_;
  const std::string label = impl.out.string();
  if (impl.finished) return FailedPrecondition("{}: Finish() called twice", label);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const uint64_t bytes = impl.placement[i].bytes;
    if (bytes == 0) continue;
    Impl::Coverage& cov = impl.coverage[i];
    std::lock_guard<std::mutex> lock(cov.mutex);
    if (cov.ranges.size() == 1 && cov.ranges.begin()->first == 0 &&
        cov.ranges.begin()->second == bytes) {
      continue;
    }
    uint64_t hole_begin = 0;
    uint64_t hole_end = bytes;
    uint64_t written = 0;
    for (const auto& [b, e] : cov.ranges) written += e - b;
    if (!cov.ranges.empty() && cov.ranges.begin()->first == 0) {
      hole_begin = cov.ranges.begin()->second;
      auto next = std::next(cov.ranges.begin());
      hole_end = next == cov.ranges.end() ? bytes : next->first;
    } else if (!cov.ranges.empty()) {
      hole_end = cov.ranges.begin()->first;
    }
    return FailedPrecondition(
        "{}: tensor \"{}\" is incomplete: {} of {} bytes written (bytes [{}, {}) missing); "
        "nothing was written to the output",
        label, tensors_[i].name, written, bytes, hole_begin, hole_end);
  }
  for (Impl::Shard& shard : impl.shards) {
    if (::fsync(shard.fd) != 0) {
      return IoError("{}: flush failed: {}", shard.path.string(), std::strerror(errno));
    }
    if (::close(shard.fd) != 0) {
      shard.fd = -1;
      return IoError("{}: close failed: {}", shard.path.string(), std::strerror(errno));
    }
    shard.fd = -1;
  }
  if (!impl.options.single_file) {
    if (impl.shards.size() > 1) {
      // Same layout as transformers: json.dumps(index, indent=2, sort_keys=True) + "\n".
      nlohmann::json weight_map = nlohmann::json::object();
      for (size_t i = 0; i < tensors_.size(); ++i) {
        weight_map[tensors_[i].name] = impl.shards[impl.placement[i].shard].name;
      }
      nlohmann::json index;
      index["metadata"]["total_size"] = impl.total_bytes;
      index["weight_map"] = std::move(weight_map);
      const std::string text = index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
      RETURN_IF_ERROR(WriteFileAtomic(impl.staging_dir / "model.safetensors.index.json", text));
    }
    // Side files copied in by the caller must be durable before the directory appears.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(impl.staging_dir, ec)) {
      if (entry.is_regular_file(ec)) RETURN_IF_ERROR(FsyncPath(entry.path(), false));
    }
    if (ec) return IoError("{}: cannot list: {}", impl.staging_dir.string(), ec.message());
    RETURN_IF_ERROR(FsyncPath(impl.staging_dir, true));
  }
  RETURN_IF_ERROR(impl.pending->Commit());
  impl.finished = true;
  const fs::path parent = impl.out.parent_path().empty() ? fs::path(".") : impl.out.parent_path();
  return FsyncPath(parent, true);
}

std::vector<std::string> CheckpointWriter::ShardNames() const {
  std::vector<std::string> names;
  names.reserve(impl_->shards.size());
  for (const auto& s : impl_->shards) names.push_back(s.name);
  return names;
}

}  // namespace rvec
