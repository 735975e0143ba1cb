// What `rvec inspect` reports about a checkpoint, as JSON: architecture, parameters, dtypes,
// shards, metadata, config and side files. Built from the headers alone (no tensor data read).
#pragma once

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"

namespace rvec {

// Keys: path, sharded, index, architecture, model_type, parameters, tensor_count, tensor_bytes,
// file_bytes, dtypes {NAME: {tensors, parameters, bytes}}, shards [{file, tensors, bytes}],
// metadata {k: v} (from the first shard; "metadata_consistent" says whether all shards agree),
// config (typed fields) or null, side_files [...], and with `with_tensors` a "tensors" list of
// {name, dtype, shape, shard} in file order.
nlohmann::json DescribeCheckpoint(const Checkpoint& checkpoint, bool with_tensors);

}  // namespace rvec
