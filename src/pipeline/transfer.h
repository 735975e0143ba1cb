// `rvec transfer`: the paper's experiment in one call — check three models, extract the reasoning
// vector, write target + α·v for each α (and norm-matched control rows), evaluate every variant
// on the same prompts, and write a paper-style report. Every step is keyed by its inputs and
// options, so a rerun skips finished work.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace rvec::pipeline {

enum class ControlKind { kNone, kRandom, kShuffle };

struct TransferOptions {
  std::filesystem::path sft;
  std::filesystem::path grpo;
  std::filesystem::path target;
  std::filesystem::path workdir;
  std::vector<double> alphas = {1.0, -1.0};
  std::vector<std::string> tasks = {"gsm8k"};
  std::optional<size_t> limit;
  DType vector_dtype = DType::kF32;
  std::string vocab_mismatch = "error";  // or "common"

  // Evaluation.
  std::string backend = "local";  // local | openai | replay
  std::filesystem::path data_dir;
  uint64_t seed = 1234;
  bool chat = false;
  std::optional<std::string> system_instruction;
  std::string prompt_style;           // --prompt-style ("" = each task's default)
  std::optional<int> max_gen_tokens;  // --max-gen-tokens
  // Repeated sampling of generation tasks, as eval::EvalOptions (--samples, --temperature,
  // --top-p, --sampling-seed; the sampling seed defaults to `seed`).
  size_t samples = 1;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<uint64_t> sampling_seed;
  // openai: the endpoint serving each variant under its id as model name, or a command template
  // ("vllm serve {model} --port {port} --served-model-name {name}") that rvec starts and stops.
  std::string endpoint;
  std::string serve_cmd;
  // For low-rank compact rows: a template that serves the target with the adapter as a LoRA
  // module instead of a merged model, e.g. "vllm serve {model} --enable-lora --max-lora-rank 64
  // --lora-modules {name}={lora} --port {port}" ({model} is then the target).
  std::string serve_lora_cmd;
  int serve_port = 8000;
  double serve_timeout_s = 900;
  size_t concurrency = 4;
  // A --serve-cmd with {gguf} (llama.cpp's llama-server) gets each variant exported to
  // WORKDIR/gguf/<id>.<dtype>.gguf first, keyed and reused like every step. Matrices in
  // gguf_dtype: "bf16" (default; exact for bf16 checkpoints, half of f32's size, but llama.cpp
  // then rounds activations to bf16 in its matrix products), "f32" (llama.cpp computes in f32,
  // what the local engine does: scores comparable to the local backend) or "f16".
  std::string gguf_dtype = "bf16";
  std::string server_kind = "auto";  // openai: eval::OpenAiOptions::server_kind
  size_t max_length = 0;             // openai: 0 = each model's max_position_embeddings
  // replay: DIR/<variant id>.jsonl holds each variant's saved responses.
  std::filesystem::path responses_dir;
  // HumanEval-style tasks execute model code only when allowed.
  bool allow_code_execution = false;
  bool bf16_activations = false;  // local backend: EngineOptions::bf16_activations
  DType kv_dtype = DType::kBF16;  // local backend: EngineOptions::kv_dtype (generation)
  uint64_t kv_cache_bytes = 0;    // local backend: EngineOptions::kv_cache_bytes (0 = default)

  // Controls (norm-matched vectors without v's direction), for the largest |α|.
  ControlKind controls = ControlKind::kRandom;
  size_t control_seeds = 1;
  // Compact forms of v ("lowrank:64", "lowrank-energy:0.9", "sparse:0.1", "dare:0.1", "sign"),
  // each one more row at the largest |α|, compared with the exact v's row.
  std::vector<std::string> compact;

  bool force = false;
  size_t threads = 0;
  bool show_progress = false;
  std::string version = "unknown";
  std::string command_line;  // recorded in the report's "reproduce" section
  // Demo mode: the report says the models are random, and the known-vector check is printed.
  std::optional<nlohmann::json> demo_facts;
  // Called once the vector exists (demo: compares it with the perturbation that made GRPO);
  // its text lands in the report's known-vector section.
  std::function<StatusOr<std::string>(const std::filesystem::path& vector_dir)> check_vector;
};

// One row of the report: the target itself, target + α·v, or target + α·control.
struct Variant {
  std::string id;     // "target", "alpha_1", "alpha_-1", "control_random_s0_alpha_1"
  std::string label;  // "target + 1·v"
  double alpha = 0.0;
  std::string control;  // "" | "random" | "shuffle"
  uint64_t control_seed = 0;
  std::filesystem::path model_dir;
  std::string compact;  // "" or the compact form's spec ("lowrank:64")
  std::filesystem::path compact_dir;
};

struct TransferResult {
  std::vector<Variant> variants;
  nlohmann::json report;  // report.json's content
  std::filesystem::path report_md;
  std::filesystem::path report_html;
  std::filesystem::path report_json;
};

// `log` receives one line per step (the CLI prints them; may be null).
StatusOr<TransferResult> RunTransfer(const TransferOptions& options,
                                     const std::function<void(const std::string&)>& log);

// A --compact spec as compress options (method and its parameter) and a short name for ids and
// labels ("lowrank64", "sparse0.1", "sign").
struct CompactSpec {
  std::string spec, name;
  int method = 0;  // merge::CompactKind
  int64_t rank = 0;
  double energy = 0, density = 0;
  bool dare = false;
};
StatusOr<CompactSpec> ParseCompactSpec(const std::string& spec);

// True for a low-rank compact row at α = 1 with --backend openai and --serve-lora-cmd: the server
// loads the adapter as a LoRA module of the target, and no merged model is written.
bool ServesLoraModule(const TransferOptions& options, const Variant& v);
// The --serve-cmd (or, for a low-rank row with --serve-lora-cmd, that template) with its
// placeholders ({model}, {gguf}, {lora}, {name}, {port}) filled for variant `v`; empty when no
// command is given.
std::string ServeCommandFor(const TransferOptions& options, const Variant& v);

// Where a variant's GGUF export goes when the serve command has {gguf}:
// WORKDIR/gguf/<id>.<gguf_dtype>.gguf.
std::filesystem::path GgufPathFor(const TransferOptions& options, const Variant& v);
// True when variant `v` is served from a GGUF export (its serve command has {gguf}).
bool ServesGguf(const TransferOptions& options, const Variant& v);

// "1", "-1", "0.5", "-0.25": the α as it appears in directory names and labels.
std::string AlphaName(double alpha);

// Bytes the outputs still to be written will take (vector, controls, models).
StatusOr<uint64_t> PredictDiskUse(const TransferOptions& options);

}  // namespace rvec::pipeline
