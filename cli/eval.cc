// `rvec eval`: runs lm-evaluation-harness tasks (gsm8k, sciq, bbh, ...) on the rvec engine, an
// OpenAI-compatible server or saved responses, writing a resumable run directory.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/progress.h"
#include "base/sha256.h"
#include "cli/backend_flags.h"
#include "cli/command.h"
#include "cli/sampling_flags.h"
#include "cli/version.h"
#include "eval/backend.h"
#include "eval/runner.h"
#include "eval/tasks/humaneval.h"
#include "eval/tasks/math.h"
#include "eval/tasks/perturb.h"
#include "model/engine.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec::cli {
namespace {

namespace fs = std::filesystem;

struct EvalFlags {
  BackendFlags backend;  // --backend, --endpoint, --concurrency, --bf16-activations
  std::string model;
  std::string tasks;
  long long limit = -1;
  std::string responses;
  std::string served_model;
  std::string api_key;
  size_t batch_size = 1;
  double timeout = 300.0;
  int retries = 3;
  bool add_bos = false;
  uint64_t seed = 1234;
  bool chat = false;
  bool single_turn = false;
  std::string system;
  bool system_given = false;
  std::string data_dir;
  std::string out;
  bool force = false;
  size_t chunk = 0;
  size_t max_batch = 16;
  bool allow_code = false;
  bool unsafe_no_sandbox = false;
  size_t jobs = 0;
  std::string perturb;
  SamplingFlags sampling;  // --samples, --temperature, --top-p, --sampling-seed
  std::string prompt_style;
  int max_gen_tokens = 0;
};

// Provenance of a model directory: SHA-256 of its JSON files and of each safetensors header
// (tensor names, shapes, dtypes, offsets), which identify a checkpoint without hashing gigabytes.
nlohmann::json ModelHashes(const fs::path& dir) {
  nlohmann::json h = nlohmann::json::object();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".json" || e.path().extension() == ".jinja") {
      auto text = ReadFileToString(e.path());
      if (text.ok()) h[name] = Sha256Hex(*text);
    } else if (e.path().extension() == ".safetensors") {
      FILE* f = std::fopen(e.path().c_str(), "rb");
      if (!f) continue;
      uint64_t n = 0;
      unsigned char len[8];
      if (std::fread(len, 1, 8, f) == 8) {
        for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
        if (n < (1ULL << 30)) {
          std::string header(n, '\0');
          if (std::fread(header.data(), 1, n, f) == n) {
            h[name] = {{"header_sha256", Sha256Hex(header)}, {"bytes", fs::file_size(e.path())}};
          }
        }
      }
      std::fclose(f);
    }
  }
  return h;
}

// config.json's max_position_embeddings of a model directory (0 when absent).
size_t ConfigMaxPositions(const fs::path& model) {
  if (auto cfg = ReadFileToString(model / "config.json"); cfg.ok()) {
    auto j = nlohmann::json::parse(*cfg, nullptr, false);
    if (j.is_object() && j.contains("max_position_embeddings") &&
        j["max_position_embeddings"].is_number_unsigned()) {
      return j["max_position_embeddings"].get<size_t>();
    }
  }
  return 0;
}

// A warning when the backend cut prompts from the left (counts are in results.json).
void WarnTruncation(const nlohmann::json& results) {
  if (Globals().quiet) return;
  const auto& c = results["config"]["backend_config"];
  if (!c.is_object() || !c.contains("left_truncated_prompts")) return;
  const auto& t = c["left_truncated_prompts"];
  const size_t n = t.is_number()
                       ? t.get<size_t>()
                       : t.value("generation", size_t{0}) + t.value("loglikelihood", size_t{0});
  if (n > 0) {
    std::fprintf(stderr,
                 "warning: %zu prompt(s) were longer than the context (%s tokens) and were "
                 "truncated from the left, as lm-eval does\n",
                 n, c.value("max_length", nlohmann::json(0)).dump().c_str());
  }
}

void PrintTable(const nlohmann::json& results) {
  std::printf("%-44s %-32s %8s %8s %6s\n", "task", "metric", "value", "stderr", "n");
  const auto& n = results["n-samples"];
  for (const auto& [task, entry] : results["results"].items()) {
    for (const auto& [key, v] : entry.items()) {
      if (key == "alias" || key.find("_stderr") != std::string::npos || !v.is_number()) continue;
      const size_t comma = key.find(',');
      const std::string se_key = key.substr(0, comma) + "_stderr" + key.substr(comma);
      std::string se = "N/A";
      if (entry.contains(se_key) && entry[se_key].is_number()) {
        se = fmt::format("{:.4f}", entry[se_key].get<double>());
      }
      const std::string count = n.contains(task) && n[task].contains("effective")
                                    ? std::to_string(n[task]["effective"].get<size_t>())
                                    : "";
      std::printf("%-44s %-32s %8.4f %8s %6s\n", entry.value("alias", task).c_str(), key.c_str(),
                  v.get<double>(), se.c_str(), count.c_str());
    }
  }
}

// The engine's memory forecast for its last generation batch (the batch it lowered to, if any),
// so that a user sizing --max-batch / --kv-cache-gb sees the numbers.
void PrintLastForecast(const Engine* engine) {
  if (engine == nullptr || Globals().quiet || Globals().json) return;
  const MemoryForecast forecast = engine->LastForecast();
  if (forecast.batch == 0) return;  // no generation request ran
  std::fprintf(stderr, "[last generation batch: %s]\n", forecast.ToString().c_str());
}

Status RunEval(const EvalFlags& f) {
  if (f.out.empty()) return InvalidArgument("-o RUN_DIR is required");
  if (f.tasks.empty())
    return InvalidArgument("--tasks is required (e.g. gsm8k,sciq,bbh_cot_fewshot)");
  eval::EvalOptions options;
  for (size_t pos = 0; pos <= f.tasks.size();) {
    size_t end = f.tasks.find(',', pos);
    if (end == std::string::npos) end = f.tasks.size();
    if (end > pos) options.tasks.push_back(f.tasks.substr(pos, end - pos));
    pos = end + 1;
  }
  options.data_dir = eval::ResolveDataDir(f.data_dir);
  if (f.limit >= 0) options.limit = static_cast<size_t>(f.limit);
  options.seed = f.seed;
  RETURN_IF_ERROR(ValidateSamplingFlags(f.sampling, f.backend.kind != "replay"));
  options.samples = f.sampling.samples;
  options.temperature = f.sampling.temperature;
  options.top_p = f.sampling.top_p;
  options.sampling_seed = f.sampling.sampling_seed.value_or(f.seed);
  options.output_dir = f.out;
  options.force = f.force;
  options.show_progress = ShouldShowProgress(Globals().quiet);
  options.fewshot_as_multiturn = !f.single_turn;
  if (f.system_given) options.system_instruction = f.system;
  if (!f.prompt_style.empty()) {
    RETURN_IF_ERROR(eval::ValidateMathPromptStyle(f.prompt_style));
    options.prompt_style = f.prompt_style;
  }
  if (f.max_gen_tokens < 0) return InvalidArgument("--max-gen-tokens must be positive");
  if (f.max_gen_tokens > 0) options.max_gen_tokens = f.max_gen_tokens;

  const bool have_model = !f.model.empty();
  if (have_model && !fs::is_directory(f.model)) {
    return NotFound("model directory {} does not exist", f.model);
  }
  options.provenance = {{"model", have_model ? fs::absolute(f.model).string() : ""},
                        {"rvec_version", kVersion},
                        {"argv_backend", f.backend.kind}};
  if (have_model) options.provenance["model_hashes"] = ModelHashes(f.model);

  std::unique_ptr<ChatTemplate> chat_template;
  if (f.chat) {
    if (!have_model) return InvalidArgument("--chat needs MODEL (its chat template is used)");
    ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::FromModelDir(f.model));
    chat_template = std::make_unique<ChatTemplate>(std::move(t));
    options.chat_template = chat_template.get();
  }

  std::unique_ptr<Engine> engine;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<eval::Backend> backend;
  if (f.backend.kind == "local") {
    if (!have_model) return InvalidArgument("the local backend needs MODEL (a model directory)");
    EngineOptions eo;
    eo.threads = Globals().threads;
    eo.max_batch = f.max_batch;
    // A different engine precision gives different logits: part of what a resumed run must match.
    ApplyLocalEngineFlags(f.backend, &eo, &options.provenance);
    ASSIGN_OR_RETURN(engine, Engine::Load(f.model, eo));
    const size_t max_length = ConfigMaxPositions(f.model);
    if (max_length > 0 && f.max_gen_tokens >= static_cast<int64_t>(max_length)) {
      return InvalidArgument(
          "--max-gen-tokens {} leaves no room for the prompt in {}'s context of {}",
          f.max_gen_tokens, f.model, max_length);
    }
    ASSIGN_OR_RETURN(backend, eval::MakeLocalBackend(engine.get(), max_length));
    options.chunk = f.chunk ? f.chunk : std::max<size_t>(64, 4 * f.max_batch);
  } else if (f.backend.kind == "openai") {
    eval::OpenAiOptions oo;
    oo.endpoint = f.backend.endpoint;
    oo.served_model = f.served_model;
    oo.api_key = f.api_key;
    if (oo.api_key.empty()) {
      if (const char* k = std::getenv("OPENAI_API_KEY")) oo.api_key = k;
    }
    oo.concurrency = f.backend.concurrency;
    oo.batch_size = f.batch_size;
    oo.timeout_s = f.timeout;
    oo.max_retries = f.retries;
    oo.seed = f.seed;
    oo.add_bos = f.add_bos;
    oo.server_kind = f.backend.server_kind;
    oo.max_length = f.backend.max_length;
    if (have_model && fs::exists(fs::path(f.model) / "tokenizer.json")) {
      ASSIGN_OR_RETURN(Tokenizer t, Tokenizer::FromModelDir(f.model));
      tokenizer = std::make_unique<Tokenizer>(std::move(t));
      oo.tokenizer = tokenizer.get();
      // lm-eval truncates to the model's context; the model directory says what that is.
      if (oo.max_length == 0) oo.max_length = ConfigMaxPositions(f.model);
    }
    ASSIGN_OR_RETURN(backend, eval::MakeOpenAiBackend(oo));
    options.chunk =
        f.chunk ? f.chunk : std::max<size_t>(32, 4 * f.backend.concurrency * f.batch_size);
  } else if (f.backend.kind == "replay") {
    if (f.responses.empty()) return InvalidArgument("the replay backend needs --responses FILE");
    ASSIGN_OR_RETURN(backend, eval::MakeReplayBackend(f.responses));
    options.chunk = f.chunk ? f.chunk : 256;
  } else {
    return InvalidArgument("--backend must be local, openai or replay (got '{}')", f.backend.kind);
  }

  eval::SetCodeExecutionOptions({f.allow_code, f.unsafe_no_sandbox, f.jobs, 3.0});
  if (!f.perturb.empty()) {
    ASSIGN_OR_RETURN(eval::PerturbationSpec spec, eval::ParsePerturbation(f.perturb));
    ASSIGN_OR_RETURN(options.tasks, eval::RegisterPerturbedTasks(eval::TaskRegistry::Global(),
                                                                 options.tasks, spec));
  }
  ASSIGN_OR_RETURN(nlohmann::json results, eval::RunEvaluation(*backend, options));
  PrintLastForecast(engine.get());
  WarnTruncation(results);
  if (Globals().json) {
    PrintJson(results.dump(2));
  } else {
    PrintTable(results);
    std::printf("\nwrote %s/results.json and samples_<task>.jsonl\n", f.out.c_str());
  }
  return OkStatus();
}

const RegisterCommand kRegister(
    "eval", "Evaluate a model on lm-eval tasks (gsm8k, sciq, bbh, ...)", 60, [](CLI::App& app) {
      auto f = std::make_shared<EvalFlags>();
      app.description(
          "Runs lm-evaluation-harness task definitions (prompts, few-shot sampling, filters, "
          "metrics reproduced exactly) and writes RUN_DIR/results.json (lm-eval's shape) and "
          "RUN_DIR/samples_<task>.jsonl. An interrupted run resumes when rerun with the same -o.\n"
          "Data: --data-dir, else $RVEC_DATA, else ~/.local/share/rvec/data (`rvec data pull`).\n\n"
          "Examples:\n"
          "  rvec eval ./Qwen2.5-1.5B-Instruct --tasks gsm8k,sciq,bbh_cot_fewshot --chat -o "
          "runs/base\n"
          "  rvec eval ./model --backend openai --endpoint http://127.0.0.1:8000/v1 "
          "--served-model qwen --tasks gsm8k --concurrency 8 -o runs/remote\n"
          "  rvec eval ./model --tasks gsm8k --samples 8 --temperature 0.6 --top-p 0.95 "
          "--seed 7 -o runs/x8   # avg@8, pass@8, maj@8\n"
          "  rvec eval --backend replay --responses runs/base --tasks gsm8k -o runs/rescored");
      app.add_option("model", f->model,
                     "Model directory (local backend; tokenizer and chat "
                     "template for the others)");
      app.add_option("--tasks", f->tasks,
                     "Comma-separated tasks or groups: gsm8k, gsm8k_cot, "
                     "gsm8k_cot_zeroshot, sciq, bbh_cot_fewshot, bbh_zeroshot, math (math500, "
                     "aime24, amc23, minerva_math, olympiadbench), ...");
      app.add_option("--limit", f->limit, "Evaluate only the first N docs of each task");
      AddBackendFlags(&app, &f->backend);
      app.add_option("--responses", f->responses,
                     "replay: saved responses (JSONL) or a previous run directory");
      app.add_option("--served-model", f->served_model, "openai: the server's model name");
      app.add_option("--api-key", f->api_key, "openai: bearer token (default $OPENAI_API_KEY)");
      app.add_option("--batch-size", f->batch_size, "openai: prompts per request (default 1)");
      app.add_option("--timeout", f->timeout, "openai: seconds per request (default 300)");
      app.add_option("--retries", f->retries, "openai: attempts per request (default 3)");
      app.add_flag("--add-bos", f->add_bos, "openai: prepend BOS when tokenizing locally");
      app.add_option("--seed", f->seed,
                     "Seed of the few-shot sampler and of sampled answers (lm-eval default 1234)");
      AddSamplingFlags(&app, &f->sampling);
      app.add_flag("--chat", f->chat,
                   "Apply the model's chat template (lm-eval --apply_chat_template "
                   "--fewshot_as_multiturn)");
      app.add_flag("--single-turn", f->single_turn,
                   "With --chat: shots in one user message (fewshot_as_multiturn off)");
      app.add_option("--prompt-style", f->prompt_style,
                     "Math tasks' prompt: qwen25-math-cot (default), qwen-boxed, cot, "
                     "cot-fewshot, deepseek-math, mathstral (README: Competition math)");
      app.add_option("--max-gen-tokens", f->max_gen_tokens,
                     "Tokens generated per answer, overriding each task's max_gen_toks (math: "
                     "2048), up to the model's context");
      app.add_option("--system", f->system, "System instruction (lm-eval --system_instruction)")
          ->each([f](const std::string&) { f->system_given = true; });
      app.add_option("--data-dir", f->data_dir,
                     "Data directory (default $RVEC_DATA or "
                     "~/.local/share/rvec/data)");
      app.add_option("-o,--output", f->out, "Run directory")->required();
      app.add_flag("--force", f->force, "Discard an existing run directory");
      app.add_option("--chunk", f->chunk, "Docs per backend call between checkpoints");
      app.add_option("--max-batch", f->max_batch, "local: sequences decoded together (default 16)");
      app.add_flag("--allow-code-execution", f->allow_code,
                   "Run model-written code (humaneval) inside the bubblewrap sandbox");
      app.add_flag("--unsafe-no-sandbox", f->unsafe_no_sandbox,
                   "Run model-written code without bubblewrap (trusted code only)");
      app.add_option("--jobs", f->jobs, "Programs executed at once (default: cores)");
      app.add_option("--perturb", f->perturb,
                     "KIND[:SEED]: distractor, shuffle_fewshot, hint, typos[=RATE], number_words");
      AddCommonFlags(app);
      return [f] { return RunEval(*f); };
    });

}  // namespace
}  // namespace rvec::cli
