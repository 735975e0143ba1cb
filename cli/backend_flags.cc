// Registers the backend flags shared by `rvec eval` and `rvec transfer`.
#include "cli/backend_flags.h"

namespace rvec::cli {

void AddBackendFlags(CLI::App* app, BackendFlags* flags) {
  app->add_option("--backend", flags->kind, "local (default), openai or replay");
  app->add_option("--endpoint", flags->endpoint, "openai: base URL, e.g. http://127.0.0.1:8000/v1");
  app->add_option("--concurrency", flags->concurrency, "openai: requests in flight (default 4)");
  app->add_option("--server-kind", flags->server_kind,
                  "openai: the server software, auto (default: asked from /v1/models, /props, "
                  "/info), vllm, llamacpp, sglang, tgi, rvec or openai; recorded in results.json")
      ->check(CLI::IsMember({"auto", "vllm", "llamacpp", "sglang", "tgi", "rvec", "openai"}));
  app->add_option("--max-length", flags->max_length,
                  "openai: context length in tokens for lm-eval's left truncation of long "
                  "prompts (default: the model's max_position_embeddings)");
  app->add_flag("--bf16-activations", flags->bf16_activations,
                "local: round activations to bf16 for the AVX512_BF16 dot product (~2x prefill, "
                "logits differ by ~1e-2; recorded in results.json)");
  app->add_option("--kv-dtype", flags->kv_dtype,
                  "local: KV-cache dtype for generation, bf16 (default; half the memory) or f32; "
                  "log-likelihoods always use f32")
      ->check(CLI::IsMember({"bf16", "f32"}));
  app->add_option("--kv-cache-gb", flags->kv_cache_gb,
                  "local: KV-cache budget in GB (default 1 GiB); the engine lowers the batch to "
                  "fit it and refuses, with the numbers, what cannot fit")
      ->check(CLI::PositiveNumber);
}

void ApplyLocalEngineFlags(const BackendFlags& flags, EngineOptions* options,
                           nlohmann::json* provenance) {
  options->bf16_activations = flags.bf16_activations;
  options->kv_dtype = flags.kv_dtype == "f32" ? DType::kF32 : DType::kBF16;
  // The budget changes batching, never results: not part of the provenance.
  if (flags.kv_cache_gb > 0)
    options->kv_cache_bytes = static_cast<uint64_t>(flags.kv_cache_gb * 1e9);
  if (flags.bf16_activations) (*provenance)["activations"] = "bf16";
  if (flags.kv_dtype != "bf16") (*provenance)["kv_dtype"] = flags.kv_dtype;
}

}  // namespace rvec::cli
