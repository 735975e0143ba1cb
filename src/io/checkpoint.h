// A Hugging Face checkpoint: one safetensors file, or a directory with model.safetensors or
// shards listed in model.safetensors.index.json, plus config.json and the tokenizer side files.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/hf_config.h"
#include "io/safetensors.h"

namespace rvec {

class Checkpoint {
 public:
  // `path` is a directory, a single .safetensors file, or a model.safetensors.index.json.
  // A directory is read as transformers does: model.safetensors if present, else the index.
  // A directory with other .safetensors files but no index is refused (nothing says they form
  // one model); open such a file by its path. Index shard names must be relative and free of
  // "..", but symbolic links are followed (the Hugging Face cache links snapshots to blobs).
  // Every index entry must be in its shard and every shard tensor in the index, exactly once.
  // config.json and side files are read for directories, index files and model.safetensors, not
  // for a lone differently-named file.
  static StatusOr<Checkpoint> Open(const std::filesystem::path& path);

  // The directory (or the file's directory for a single file).
  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& path() const { return path_; }
  bool is_sharded() const { return index_path_.has_value(); }

  size_t num_shards() const { return shards_.size(); }
  const SafetensorsFile& shard(size_t i) const { return *shards_[i]; }

  // Every tensor in file order (shard by shard, by offset).
  const std::vector<std::string>& TensorNames() const { return names_; }
  bool Has(std::string_view name) const;
  // NotFound error naming the checkpoint when absent.
  StatusOr<TensorView> View(std::string_view name) const;
  const TensorInfo* Info(std::string_view name) const;
  // Index of the shard holding `name`, or SIZE_MAX when absent.
  size_t ShardOf(std::string_view name) const;
  void Release(std::string_view name) const;

  uint64_t TotalTensorBytes() const;
  uint64_t TotalParameters() const;

  // config.json, when present.
  const std::optional<HfConfig>& config() const { return config_; }
  // Side files present in dir() (names from kModelSideFiles).
  const std::vector<std::string>& side_files() const { return side_files_; }
  const std::optional<std::filesystem::path>& index_path() const { return index_path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path dir_;
  std::optional<std::filesystem::path> index_path_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<std::string> names_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>, std::less<>> by_name_;
  std::optional<HfConfig> config_;
  std::vector<std::string> side_files_;
};

}  // namespace rvec
