// What an output records about where it came from: safetensors __metadata__ entries, the side
// files copied from the target, and the README.md model card.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "io/checkpoint.h"

namespace rvec::merge {

// "2026-11-26T03:04:05Z"
std::string UtcNow();

// SHA-256 of config.json (or "none"), and of each shard's raw header, joined by commas.
std::string ConfigSha256(const Checkpoint& ckpt);
std::string HeaderSha256s(const Checkpoint& ckpt);
// The stored dtypes of the float tensors, e.g. "BF16" or "BF16,F32".
std::string DTypesOf(const Checkpoint& ckpt);
// Architecture name from config.json, else from rvec metadata of a vector, else "".
std::string ArchitectureOf(const Checkpoint& ckpt);
// Layer count from config.json, else rvec metadata, else 1 + the largest layer index in the names.
int64_t NumLayersOf(const Checkpoint& ckpt);
// Metadata value from the first shard, if present.
std::optional<std::string> MetadataValue(const Checkpoint& ckpt, const std::string& key);

// Adds rvec.<role>.{path,config_sha256,header_sha256,dtypes} for one input.
void AddInputMetadata(std::map<std::string, std::string>& metadata, std::string_view role,
                      const Checkpoint& ckpt);
// Adds format=pt, rvec.version (the caller's tool version: merge sits below the CLI that owns
// it), rvec.created and the architecture facts of `model`.
void AddCommonMetadata(std::map<std::string, std::string>& metadata, std::string_view kind,
                       const Checkpoint& model, std::string_view version);

// Copies the target's side files (config, tokenizer, generation config, chat template) into
// `dir`. When `out_dtype` differs from the config's torch_dtype, config.json is rewritten with
// the new torch_dtype (everything else kept).
Status CopySideFiles(const Checkpoint& donor, const std::filesystem::path& dir,
                     std::optional<DType> out_dtype);

// The Hugging Face spelling of a dtype for config.json ("bfloat16", "float16", "float32").
std::string TorchDTypeName(DType dtype);

}  // namespace rvec::merge
