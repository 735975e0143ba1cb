// The evaluation-backend flags that `rvec eval` and `rvec transfer` share, defined once so that
// their names, defaults and help text cannot drift apart.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "model/engine.h"

namespace rvec::cli {

struct BackendFlags {
  std::string kind = "local";        // --backend: local, openai or replay (checked by the command)
  std::string endpoint;              // openai
  size_t concurrency = 4;            // openai
  bool bf16_activations = false;     // local
  std::string kv_dtype = "bf16";     // local: generation KV-cache dtype (bf16 or f32, checked)
  double kv_cache_gb = 0;            // local: KV-cache budget in GB; 0 keeps the engine default
  std::string server_kind = "auto";  // openai: auto, vllm, llamacpp, sglang, tgi, rvec, openai
  size_t max_length = 0;  // openai: context for left truncation; 0 = the model's config.json
};

// Sets the local engine's options from the flags and records in `provenance` those that change
// its results (a resumed run must match them).
void ApplyLocalEngineFlags(const BackendFlags& flags, EngineOptions* options,
                           nlohmann::json* provenance);

// Adds --backend, --endpoint, --concurrency, --server-kind, --max-length, --bf16-activations,
// --kv-dtype and --kv-cache-gb to `app`, in that order.
void AddBackendFlags(CLI::App* app, BackendFlags* flags);

}  // namespace rvec::cli
