// Hugging Face checkpoint -> GGUF for llama.cpp: architecture keys, tensor names and layouts, the
// tokenizer (tokenizer.ggml.*) and the chat template, written as one streamed GGUF v3 file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/model_config.h"

namespace rvec {

struct GgufExportOptions {
  GgmlType dtype = GgmlType::kF32;  // matrices; 1-D tensors stay f32 as llama.cpp's converter
  std::string pre;                  // tokenizer.ggml.pre; empty: detected from tokenizer.json
  bool force = false;               // replace an existing output
};

struct GgufExportReport {
  std::string output;
  std::string architecture;  // llama.cpp's name: "qwen2", "llama", "qwen3", "olmo2"
  std::string dtype;
  std::string pre;
  size_t tensors = 0;
  size_t vocab = 0;  // tokens written (the config's vocab_size, padded with [PADi])
  uint64_t parameters = 0;
  uint64_t file_bytes = 0;
  std::vector<std::string> warnings;

  nlohmann::json ToJson() const;
};

// llama.cpp's architecture name for a config.json architecture.
StatusOr<std::string> GgufArchName(ModelArch arch);

// The GGUF name of a Hugging Face tensor: "" for tensors llama.cpp recomputes (rotary inv_freq),
// an error naming the tensor for one llama.cpp's graph for `arch` would not load.
StatusOr<std::string> GgufTensorName(const ModelConfig& config, std::string_view hf_name);

// Llama's q/k rows are stored for rotate-half RoPE; llama.cpp's LLAMA graph rotates adjacent
// pairs, so output row r of each head takes this source row (head_dim must be even).
uint64_t LlamaRopeSourceRow(uint64_t row, uint64_t head_dim);

// The tokenizer.ggml.pre name for tokenizer.json's pre-tokenizer, recognised from its Split
// regex (and, for the cl100k pattern, from ignore_merges: "llama-bpe" vs "dbrx"). An unknown
// pattern is an error quoting it; `label` names the file.
StatusOr<std::string> DetectGgufPreTokenizer(const nlohmann::json& tokenizer_json,
                                             std::string_view label);

// tokenizer.ggml.* and tokenizer.chat_template from the model directory's tokenizer.json,
// tokenizer_config.json (or chat_template.jinja) and config.json; `vocab` is the embedding rows.
// `pre` overrides the detected pre-tokenizer name when non-empty.
StatusOr<std::vector<GgufKv>> GgufTokenizerKvs(const std::filesystem::path& dir,
                                               const HfConfig& config, size_t vocab,
                                               std::string_view pre);

// Writes `model` (a checkpoint directory) as the GGUF file `output`, built in a temporary sibling
// and renamed into place; tensor data streams chunk by chunk, so memory stays bounded.
StatusOr<GgufExportReport> ExportGguf(const std::filesystem::path& model,
                                      const std::filesystem::path& output,
                                      const GgufExportOptions& options, Progress* progress);

}  // namespace rvec
