// Checkpoint summary for `rvec inspect` and the inspect benchmark.
#include "io/checkpoint_summary.h"

#include <map>

namespace rvec {

nlohmann::json DescribeCheckpoint(const Checkpoint& checkpoint, bool with_tensors) {
  using nlohmann::json;
  json out = json::object();
  out["path"] = checkpoint.path().string();
  out["sharded"] = checkpoint.is_sharded();
  out["index"] = checkpoint.index_path() ? json(checkpoint.index_path()->string()) : json(nullptr);
  const auto& config = checkpoint.config();
  out["architecture"] =
      config && !config->Architecture().empty() ? json(config->Architecture()) : json(nullptr);
  out["model_type"] =
      config && !config->model_type.empty() ? json(config->model_type) : json(nullptr);

  struct DTypeTotals {
    uint64_t tensors = 0, parameters = 0, bytes = 0;
  };
  std::map<std::string, DTypeTotals> dtypes;
  uint64_t parameters = 0, tensor_bytes = 0, file_bytes = 0, tensor_count = 0;
  json shards = json::array();
  json tensors = json::array();
  bool metadata_consistent = true;
  for (size_t s = 0; s < checkpoint.num_shards(); ++s) {
    const SafetensorsFile& shard = checkpoint.shard(s);
    const std::string file = shard.path().filename().string();
    file_bytes += shard.file().size();
    shards.push_back(
        {{"file", file}, {"tensors", shard.tensors().size()}, {"bytes", shard.file().size()}});
    if (s > 0 && shard.metadata() != checkpoint.shard(0).metadata()) metadata_consistent = false;
    for (const TensorInfo& t : shard.tensors()) {
      const uint64_t n = t.NumElements();
      DTypeTotals& d = dtypes[std::string(DTypeName(t.dtype))];
      ++d.tensors;
      d.parameters += n;
      d.bytes += t.NumBytes();
      parameters += n;
      tensor_bytes += t.NumBytes();
      ++tensor_count;
      if (with_tensors) {
        tensors.push_back(
            {{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"shard", file}});
      }
    }
  }
  out["parameters"] = parameters;
  out["tensor_count"] = tensor_count;
  out["tensor_bytes"] = tensor_bytes;
  out["file_bytes"] = file_bytes;
  json dtype_json = json::object();
  for (const auto& [name, d] : dtypes) {
    dtype_json[name] = {{"tensors", d.tensors}, {"parameters", d.parameters}, {"bytes", d.bytes}};
  }
  out["dtypes"] = std::move(dtype_json);
  out["shards"] = std::move(shards);
  out["metadata"] =
      checkpoint.num_shards() > 0 ? json(checkpoint.shard(0).metadata()) : json::object();
  out["metadata_consistent"] = metadata_consistent;
  if (config) {
    out["config"] = {
        {"model_type", config->model_type},
        {"architectures", config->architectures},
        {"hidden_size", config->hidden_size},
        {"num_hidden_layers", config->num_hidden_layers},
        {"num_attention_heads", config->num_attention_heads},
        {"num_key_value_heads", config->num_key_value_heads},
        {"head_dim", config->head_dim},
        {"intermediate_size", config->intermediate_size},
        {"vocab_size", config->vocab_size},
        {"max_position_embeddings", config->max_position_embeddings},
        {"rope_theta", config->rope_theta},
        {"rope_scaling", config->rope_scaling},
        {"rms_norm_eps", config->rms_norm_eps},
        {"tie_word_embeddings", config->tie_word_embeddings},
        {"attention_bias", config->attention_bias},
        {"torch_dtype", config->torch_dtype},
    };
  } else {
    out["config"] = nullptr;
  }
  out["side_files"] = checkpoint.side_files();
  if (with_tensors) out["tensors"] = std::move(tensors);
  return out;
}

}  // namespace rvec
