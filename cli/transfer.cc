// `rvec transfer`: the paper's experiment in one command (see src/pipeline/transfer.h).
#include "pipeline/transfer.h"

#include <cmath>
#include <cstdio>

#include "base/fs.h"
#include "base/progress.h"
#include "cli/backend_flags.h"
#include "cli/command.h"
#include "cli/sampling_flags.h"
#include "cli/version.h"
#include "eval/runner.h"
#include "eval/tasks/math.h"

namespace rvec::cli {
namespace {

struct TransferFlags {
  BackendFlags backend;  // --backend, --endpoint, --concurrency, --bf16-activations
  std::string sft, grpo, target, out, alphas = "1,-1", tasks = "gsm8k";
  std::string vector_dtype = "f32", data_dir, serve_cmd, serve_lora_cmd, responses_dir, system;
  std::string controls = "random", vocab = "error", compact, prompt_style, gguf_dtype = "bf16";
  double serve_timeout = 900;
  int max_gen_tokens = 0;
  size_t limit = 0, control_seeds = 1;
  int port = 8000;
  uint64_t seed = 1234;
  bool chat = false, force = false, allow_code = false;
  SamplingFlags sampling;  // --samples, --temperature, --top-p, --sampling-seed
};

StatusOr<std::vector<double>> ParseAlphas(const std::string& text) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v)) {
      return InvalidArgument("--alphas '{}': '{}' is not a number", text, item);
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Status RunTransferCommand(const TransferFlags& f, const std::string& command_line) {
  pipeline::TransferOptions o;
  o.sft = f.sft;
  o.grpo = f.grpo;
  o.target = f.target;
  o.workdir = f.out;
  ASSIGN_OR_RETURN(o.alphas, ParseAlphas(f.alphas));
  o.tasks = SplitList(f.tasks);
  if (f.limit > 0) o.limit = f.limit;
  const auto dtype = ParseUserDType(f.vector_dtype);
  if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kBF16 && *dtype != DType::kF16)) {
    return InvalidArgument("--vector-dtype '{}': expected f32, bf16 or f16", f.vector_dtype);
  }
  o.vector_dtype = *dtype;
  o.vocab_mismatch = f.vocab;
  o.backend = f.backend.kind;
  o.data_dir = eval::ResolveDataDir(f.data_dir);
  o.seed = f.seed;
  RETURN_IF_ERROR(ValidateSamplingFlags(f.sampling, f.backend.kind != "replay"));
  o.samples = f.sampling.samples;
  o.temperature = f.sampling.temperature;
  o.top_p = f.sampling.top_p;
  o.sampling_seed = f.sampling.sampling_seed;
  o.chat = f.chat;
  if (!f.system.empty()) o.system_instruction = f.system;
  if (!f.prompt_style.empty()) {
    RETURN_IF_ERROR(eval::ValidateMathPromptStyle(f.prompt_style));
    o.prompt_style = f.prompt_style;
  }
  if (f.max_gen_tokens < 0) return InvalidArgument("--max-gen-tokens must be positive");
  if (f.max_gen_tokens > 0) o.max_gen_tokens = f.max_gen_tokens;
  o.endpoint = f.backend.endpoint;
  o.serve_cmd = f.serve_cmd;
  o.serve_lora_cmd = f.serve_lora_cmd;
  o.serve_port = f.port;
  o.serve_timeout_s = f.serve_timeout;
  o.gguf_dtype = f.gguf_dtype;
  o.server_kind = f.backend.server_kind;
  o.max_length = f.backend.max_length;
  o.concurrency = f.backend.concurrency;
  o.responses_dir = f.responses_dir;
  if (f.controls == "none") {
    o.controls = pipeline::ControlKind::kNone;
  } else if (f.controls == "random") {
    o.controls = pipeline::ControlKind::kRandom;
  } else if (f.controls == "shuffle") {
    o.controls = pipeline::ControlKind::kShuffle;
  } else {
    return InvalidArgument("--controls '{}': expected none, random or shuffle", f.controls);
  }
  o.control_seeds = f.control_seeds;
  o.compact = SplitList(f.compact);
  o.allow_code_execution = f.allow_code;
  o.bf16_activations = f.backend.bf16_activations;
  o.kv_dtype = f.backend.kv_dtype == "f32" ? DType::kF32 : DType::kBF16;
  o.kv_cache_bytes = static_cast<uint64_t>(f.backend.kv_cache_gb * 1e9);
  o.force = f.force;
  o.threads = Globals().threads;
  o.show_progress = ShouldShowProgress(Globals().quiet || Globals().json);
  o.version = kVersion;
  o.command_line = command_line;
  const bool quiet = Globals().quiet || Globals().json;
  ASSIGN_OR_RETURN(pipeline::TransferResult r,
                   pipeline::RunTransfer(o, [quiet](const std::string& line) {
                     if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
                   }));
  if (Globals().json) {
    PrintJson(r.report.dump(2));
    return OkStatus();
  }
  auto md = ReadFileToString(r.report_md);
  if (md.ok()) std::fwrite(md->data(), 1, md->size(), stdout);
  std::printf("\nReport: %s (also %s, %s)\n", r.report_md.c_str(), r.report_html.c_str(),
              r.report_json.c_str());
  return OkStatus();
}

const RegisterCommand kTransfer(
    "transfer", "Extract v = GRPO − SFT, apply α·v to a target, evaluate and report", 60,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<TransferFlags>();
      app.footer(
          "Example:\n"
          "  rvec transfer --sft Qwen2.5-1.5B-SFT --grpo Qwen2.5-1.5B-GRPO \\\n"
          "    --target Qwen2.5-1.5B-Instruct --alphas 1,-1 --tasks gsm8k,sciq --limit 200 "
          "-o work\n"
          "  rvec transfer ... --backend openai --endpoint http://127.0.0.1:8000/v1 \\\n"
          "    --serve-cmd 'vllm serve {model} --served-model-name {name} --port {port}'\n"
          "  rvec transfer ... --backend openai --endpoint http://127.0.0.1:8080/v1 \\\n"
          "    --serve-cmd 'llama-server -m {gguf} --alias {name} --port {port}'\n\n"
          "Every step is keyed by its inputs and options: a rerun skips finished work; --force "
          "redoes it.");
      app.add_option("--sft", f->sft, "The SFT checkpoint (θ_SFT)")->required();
      app.add_option("--grpo", f->grpo, "The GRPO checkpoint (θ_GRPO)")->required();
      app.add_option("--target", f->target, "The model to add α·v to")->required();
      app.add_option("-o,--out", f->out, "Work directory")->required();
      app.add_option("--alphas", f->alphas, "Comma-separated α values (default 1,-1)");
      app.add_option("--tasks", f->tasks, "Comma-separated tasks (default gsm8k)");
      app.add_option("--limit", f->limit, "Evaluate the first N docs of each task");
      app.add_option("--vector-dtype", f->vector_dtype, "f32 (default, exact), bf16 or f16");
      app.add_option("--vocab-mismatch", f->vocab, "error (default) or common");
      AddBackendFlags(&app, &f->backend);
      app.add_option("--data-dir", f->data_dir, "Benchmark data (default: RVEC_DATA)");
      app.add_option("--seed", f->seed,
                     "Seed of the few-shot sampler and of sampled answers (default 1234)");
      AddSamplingFlags(&app, &f->sampling);
      app.add_flag("--chat", f->chat, "Render prompts with each model's chat template");
      app.add_option("--system", f->system, "System message for --chat");
      app.add_option("--prompt-style", f->prompt_style,
                     "Math tasks' prompt: qwen25-math-cot (default), qwen-boxed, cot, "
                     "cot-fewshot, deepseek-math, mathstral");
      app.add_option("--max-gen-tokens", f->max_gen_tokens,
                     "Tokens generated per answer, overriding each task's max_gen_toks");
      app.add_option("--serve-cmd", f->serve_cmd,
                     "openai: command template that serves {model} (a model directory) or "
                     "{gguf} (the variant exported to GGUF, for llama-server) as {name} on "
                     "{port}; rvec starts it per variant, waits for /v1/models and stops it");
      app.add_option("--serve-timeout", f->serve_timeout,
                     "openai: seconds to wait for --serve-cmd to serve (default 900)")
          ->check(CLI::PositiveNumber);
      app.add_option("--gguf-dtype", f->gguf_dtype,
                     "openai with {gguf}: matrix dtype of the exports, bf16 (default: exact for "
                     "bf16 checkpoints, what users run), f32 (llama.cpp then computes in f32 as "
                     "the local engine does) or f16")
          ->check(CLI::IsMember({"f32", "f16", "bf16"}));
      app.add_option("--serve-lora-cmd", f->serve_lora_cmd,
                     "openai: template for --compact lowrank rows at α = 1 that serves the target "
                     "{model} with the adapter {lora} as LoRA module {name} on {port}");
      app.add_option("--port", f->port, "openai: the {port} of --serve-cmd (default 8000)");
      app.add_option("--responses-dir", f->responses_dir,
                     "replay: DIR/<variant>.jsonl saved responses per variant");
      app.add_option("--controls", f->controls, "none, random (default) or shuffle");
      app.add_option("--control-seeds", f->control_seeds, "Control vectors per kind (default 1)");
      app.add_option("--compact", f->compact,
                     "Also evaluate compact forms of v at the largest |α|, e.g. "
                     "lowrank:64,sparse:0.1,sign (also lowrank-energy:E, dare:D); the report "
                     "compares each with the exact v");
      app.add_flag("--allow-code-execution", f->allow_code,
                   "Let humaneval run model-written code (in the bubblewrap sandbox)");
      app.add_flag("--force", f->force, "Redo every step");
      AddCommonFlags(app);
      return [f, &app] {
        std::string cmd = "rvec transfer";
        for (const auto& opt : app.get_options()) {
          if (opt->count() == 0 || opt->get_name() == "--help") continue;
          const std::string name = opt->get_name();
          if (opt->get_expected_min() == 0) {
            cmd += " " + name;
          } else {
            for (const auto& r : opt->results()) cmd += " " + name + " '" + r + "'";
          }
        }
        return RunTransferCommand(*f, cmd);
      };
    });

}  // namespace
}  // namespace rvec::cli
