// Runs tasks on a backend and writes a run directory: per-sample JSONL, results.json in lm-eval's
// shape, resumable after an interruption.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "eval/backend.h"
#include "eval/task.h"

namespace rvec {
class ChatTemplate;
}

namespace rvec::eval {

struct EvalOptions {
  std::vector<std::string> tasks;  // task or group names
  std::filesystem::path data_dir;
  std::optional<size_t> limit;  // first N docs of each task
  uint64_t seed = 1234;         // few-shot sampler seed (lm-eval --seed's 4th value)
  const ChatTemplate* chat_template = nullptr;  // --chat
  bool fewshot_as_multiturn = true;
  std::optional<std::string> system_instruction;  // --system
  std::filesystem::path output_dir;               // RUN_DIR
  bool force = false;  // discard an existing run directory (finished or not)
  size_t chunk = 32;   // docs per backend call; samples are saved after each chunk
  // Repeated sampling of generation tasks (--samples, --temperature, --top-p, --seed): K answers
  // per document, each drawn from its own random stream (GenerationRequest::stream) under
  // `sampling_seed`. temperature / top_p override the tasks' generation_kwargs as lm-eval's
  // --gen_kwargs does (temperature > 0 turns do_sample on). K = 1 without overrides is today's run.
  size_t samples = 1;
  std::optional<double> temperature;
  std::optional<double> top_p;
  uint64_t sampling_seed = 1234;
  nlohmann::json provenance = nlohmann::json::object();  // model path/hashes, rvec version...
  bool show_progress = false;
  // --prompt-style ("" = each task's default) and --max-gen-tokens (overrides max_gen_toks).
  std::string prompt_style;
  std::optional<int> max_gen_tokens;
};

// Runs everything and returns the results.json content (also written to RUN_DIR/results.json).
// An existing RUN_DIR without results.json is resumed when its run.json matches these options;
// with results.json it is an AlreadyExists error unless `force`.
StatusOr<nlohmann::json> RunEvaluation(Backend& backend, const EvalOptions& options);

// Builds the data directory the CLI uses: --data-dir, else RVEC_DATA, else DefaultDataDir().
std::filesystem::path ResolveDataDir(const std::string& flag);
// ${XDG_DATA_HOME:-~/.local/share}/rvec/data (where `rvec data pull` writes by default).
std::filesystem::path DefaultDataDir();

// The sampling settings as run.json / results.json record them ({"samples", "temperature",
// "top_p", "seed"}), or null when the run samples nothing (K = 1, greedy).
nlohmann::json SamplingSettingsJson(const EvalOptions& options);

// Per-sample records of a finished or partial run: samples_<task>.jsonl parsed.
StatusOr<std::vector<nlohmann::json>> ReadSamples(const std::filesystem::path& run_dir,
                                                  const std::string& task);

}  // namespace rvec::eval
