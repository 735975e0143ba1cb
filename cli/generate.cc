// `rvec generate`: run the CPU engine on a prompt (or a chat message through the model's chat
// template) and stream the continuation to stdout as it is produced; --samples K draws K answers
// that share the prompt's KV.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/command.h"
#include "model/engine.h"
#include "text/chat_template.h"

namespace rvec::cli {
namespace {

struct GenerateFlags {
  std::string model;
  std::string prompt;
  std::string chat;
  std::string system;
  int max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool bf16_activations = false;
  bool no_special = false;
  std::string kv_dtype = "bf16";
  size_t samples = 1;
  size_t max_batch = 16;
  double kv_cache_gb = 0;  // 0 = the engine's default
};

Status RunGenerate(const GenerateFlags& f) {
  if (f.prompt.empty() == f.chat.empty()) {
    return InvalidArgument("give exactly one of --prompt TEXT or --chat TEXT");
  }
  if (!f.system.empty() && f.chat.empty()) return InvalidArgument("--system needs --chat");
  if (f.max_tokens < 0) return InvalidArgument("--max-tokens must be >= 0");
  if (f.temperature < 0) return InvalidArgument("--temperature must be >= 0");
  if (!(f.top_p > 0 && f.top_p <= 1)) return InvalidArgument("--top-p must be in (0, 1]");
  if (f.top_k < 0) return InvalidArgument("--top-k must be >= 0");
  if (f.samples == 0) return InvalidArgument("--samples must be >= 1");
  if (f.kv_cache_gb < 0) return InvalidArgument("--kv-cache-gb must be >= 0");
  const auto t0 = std::chrono::steady_clock::now();
  EngineOptions eo;
  eo.threads = Globals().threads;
  eo.max_batch = std::max<size_t>(f.max_batch, 1);
  eo.bf16_activations = f.bf16_activations;
  eo.kv_dtype = f.kv_dtype == "f32" ? DType::kF32 : DType::kBF16;
  if (f.kv_cache_gb > 0) eo.kv_cache_bytes = static_cast<uint64_t>(f.kv_cache_gb * 1e9);
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Load(f.model, eo));
  std::vector<int32_t> ids;
  std::vector<int32_t> stop_ids;
  if (!f.chat.empty()) {
    ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::FromModelDir(f.model));
    ChatTemplateInputs in;
    if (!f.system.empty()) in.messages.push_back({{"role", "system"}, {"content", f.system}});
    in.messages.push_back({{"role", "user"}, {"content", f.chat}});
    in.add_generation_prompt = true;
    ASSIGN_OR_RETURN(std::string text, tmpl.Render(in));
    // The rendered template spells out its special tokens; encoding recognises them.
    ids = engine->tokenizer().Encode(text, /*add_special_tokens=*/false);
    if (auto eot = EndOfTurnId(tmpl, engine->tokenizer())) stop_ids.push_back(*eot);
  } else {
    ids = engine->tokenizer().Encode(f.prompt, /*add_special_tokens=*/true);
  }
  if (ids.empty()) return InvalidArgument("the prompt encodes to no tokens");
  const auto t1 = std::chrono::steady_clock::now();
  GenerateOptions g;
  g.max_new_tokens = f.max_tokens;
  g.temperature = f.temperature;
  g.top_p = f.top_p;
  g.top_k = f.top_k;
  g.seed = f.seed;
  g.stop_strings = f.stop;
  g.stop_token_ids = stop_ids;
  const std::vector<std::vector<int32_t>> prompts(f.samples, ids);
  const bool json = Globals().json;
  const bool quiet = Globals().quiet;
  // The forecast is the engine's; printing it is ours. It fails (with the numbers) when not even
  // one sequence fits.
  ASSIGN_OR_RETURN(const MemoryForecast forecast, engine->ForecastGenerate(prompts, g));
  if (!quiet && !json) std::fprintf(stderr, "[%s]\n", forecast.ToString().c_str());
  auto stream = [&](size_t, const std::string& piece) {
    if (json || f.samples > 1) return;  // samples interleave: printed whole at the end
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  ASSIGN_OR_RETURN(auto results, engine->GenerateBatch(prompts, g, stream, nullptr));
  const auto t2 = std::chrono::steady_clock::now();
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count();
  size_t generated = 0;
  for (const auto& r : results) generated += r.tokens.size();
  const EngineStats stats = engine->Stats();
  if (json) {
    const GenerateResult& r = results[0];
    nlohmann::json j = {{"model", f.model},
                        {"prompt_tokens", ids.size()},
                        {"text", r.text},
                        {"tokens", r.tokens},
                        {"finish_reason", r.finish_reason},
                        {"load_seconds", load_s},
                        {"generate_seconds", gen_s},
                        {"engine", engine->Describe()},
                        {"kv_dtype", f.kv_dtype},
                        {"kv_peak_bytes", stats.kv_peak_bytes},
                        {"kv_shared_positions", stats.tokens_shared},
                        {"forecast",
                         {{"batch", forecast.batch},
                          {"requested_batch", forecast.requested_batch},
                          {"weight_bytes", forecast.weight_bytes},
                          {"kv_bytes", forecast.kv_bytes},
                          {"kv_saved_bytes", forecast.kv_saved_bytes},
                          {"scratch_bytes", forecast.scratch_bytes},
                          {"total_bytes", forecast.total_bytes},
                          {"kv_budget_bytes", forecast.kv_budget_bytes},
                          {"available_bytes", forecast.available_bytes}}}};
    if (f.samples > 1) {
      j["samples"] = nlohmann::json::array();
      for (const auto& s : results) {
        j["samples"].push_back(
            {{"text", s.text}, {"tokens", s.tokens}, {"finish_reason", s.finish_reason}});
      }
    }
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return OkStatus();
  }
  if (f.samples > 1) {
    for (size_t i = 0; i < results.size(); ++i) {
      std::printf("--- sample %zu (%s) ---\n%s\n", i, results[i].finish_reason.c_str(),
                  results[i].text.c_str());
    }
  } else {
    std::fputc('\n', stdout);
  }
  if (!quiet) {
    std::fprintf(stderr,
                 "[%zu prompt tokens, %zu generated (%s) in %.2f s, %.1f tokens/s; load %.2f s; "
                 "KV peak %s (%s), %llu prompt positions shared]\n",
                 ids.size(), generated, results[0].finish_reason.c_str(), gen_s,
                 gen_s > 0 ? generated / gen_s : 0.0, load_s,
                 HumanBytes(stats.kv_peak_bytes).c_str(), f.kv_dtype.c_str(),
                 static_cast<unsigned long long>(stats.tokens_shared));
  }
  return OkStatus();
}

const RegisterCommand kGenerate(
    "generate", "Generate text with the built-in CPU engine (streams tokens)", 50,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<GenerateFlags>();
      app.description(
          "Load a Hugging Face model directory (Qwen2, Llama, Qwen3; bf16/f16/f32 safetensors, "
          "memory-mapped) and generate a continuation, printing tokens as they are produced. "
          "Greedy by default; --temperature enables seeded sampling (same seed, same text). "
          "Generation stops at any eos id of generation_config.json, the chat template's end of "
          "turn (--chat), a --stop string, or --max-tokens (up to the model's context). "
          "--samples K draws K answers that reference one copy of the prompt's KV. Before "
          "running, the memory forecast (weights, KV at --kv-dtype, scratch) is printed and the "
          "batch lowered to fit the KV budget and available memory.\n\n"
          "Examples:\n"
          "  rvec generate Qwen2.5-0.5B/ --prompt \"The capital of France is\" --max-tokens 20\n"
          "  rvec generate Qwen2.5-0.5B-Instruct/ --chat \"What is 17*23?\" --system \"Be "
          "brief.\"\n"
          "  rvec generate model/ --prompt \"Once\" --temperature 0.8 --top-p 0.95 --seed 1\n"
          "  rvec generate model/ --chat \"Solve 3x+1=10\" --samples 8 --temperature 0.7 "
          "--max-tokens 4096");
      app.add_option("model", f->model, "Model directory")->required();
      auto* prompt = app.add_option("--prompt", f->prompt, "Raw prompt text");
      auto* chat =
          app.add_option("--chat", f->chat, "A user message, rendered with the chat template");
      prompt->excludes(chat);
      app.add_option("--system", f->system, "System message for --chat");
      app.add_option("--max-tokens", f->max_tokens, "Most new tokens (default 256)");
      app.add_option("--temperature", f->temperature, "0 = greedy (default)");
      app.add_option("--top-p", f->top_p, "Nucleus sampling mass (default 1)");
      app.add_option("--top-k", f->top_k, "Keep the k most likely tokens (0 = off)");
      app.add_option("--seed", f->seed, "Sampling seed (default 0)");
      app.add_option("--stop", f->stop, "Stop string (repeatable); the output ends before it");
      app.add_flag("--bf16-activations", f->bf16_activations,
                   "Round activations to bf16 for the AVX512_BF16 dot product (faster prefill, "
                   "logits differ by ~1e-2)");
      app.add_option("--kv-dtype", f->kv_dtype, "KV-cache dtype: bf16 (default) or f32")
          ->check(CLI::IsMember({"bf16", "f32"}));
      app.add_option("--samples", f->samples,
                     "Answers to draw for the prompt (default 1; use with --temperature)");
      app.add_option("--max-batch", f->max_batch,
                     "Most sequences stepped together (default 16; lowered to fit memory)");
      app.add_option("--kv-cache-gb", f->kv_cache_gb, "KV-cache budget in GB (default 1.07)");
      AddCommonFlags(app);
      return [f]() { return RunGenerate(*f); };
    });

}  // namespace
}  // namespace rvec::cli
