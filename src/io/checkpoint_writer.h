// Streaming writer for safetensors checkpoints: the tensor list is fixed up front, so every header
// is written first and tensor bytes can be written (also from several threads) straight to disk.
// Output appears only on Finish(): it is built in a temporary sibling and renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/fs.h"
#include "base/status.h"

namespace rvec {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t NumBytes() const;
};

struct CheckpointWriterOptions {
  // Shard budget in bytes of tensor data (transformers' default max_shard_size is 5 GB);
  // 0 = never shard.
  uint64_t max_shard_bytes = 5'000'000'000ULL;
  // Written as __metadata__ in every shard. {"format": "pt"} (what transformers writes, and what
  // its loader checks) is added unless the caller sets "format" itself.
  std::map<std::string, std::string> metadata;
  bool force = false;  // replace an existing output
  // Write a single .safetensors file at the output path instead of a directory.
  bool single_file = false;
};

class CheckpointWriter {
 public:
  // `tensors` in the order they will be stored. Fails (writing nothing) on duplicate names,
  // an existing output without force, or an unwritable destination.
  static StatusOr<std::unique_ptr<CheckpointWriter>> Create(const std::filesystem::path& out,
                                                            std::vector<TensorSpec> tensors,
                                                            CheckpointWriterOptions options);
  ~CheckpointWriter();

  // Directory being built (copy side files such as config.json here before Finish()).
  // For single_file output this is the directory that will hold the file.
  const std::filesystem::path& staging_dir() const;

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  // Index into tensors() or -1.
  int64_t IndexOf(const std::string& name) const;

  // Writes `n` bytes of tensor `index` at byte `offset` within that tensor. Thread-safe for
  // disjoint ranges. Every byte of every tensor must be written before Finish().
  Status Write(size_t index, uint64_t offset, const void* data, uint64_t n);

  // Verifies completeness, writes model.safetensors.index.json when sharded, fsyncs, renames.
  Status Finish();

  // Shard file names in order (model.safetensors or model-0000i-of-0000n.safetensors).
  std::vector<std::string> ShardNames() const;

 private:
  CheckpointWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<TensorSpec> tensors_;
};

}  // namespace rvec
