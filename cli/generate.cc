// `rvec generate`: run the CPU engine on a prompt (or a chat message through the model's chat
// template) and stream the continuation to stdout as it is produced.
#include <chrono>
#include <cstdio>
#include <memory>
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
  const auto t0 = std::chrono::steady_clock::now();
  EngineOptions eo;
  eo.threads = Globals().threads;
  eo.max_batch = 1;
  eo.bf16_activations = f.bf16_activations;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Load(f.model, eo));
  std::vector<int32_t> ids;
  if (!f.chat.empty()) {
    ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::FromModelDir(f.model));
    ChatTemplateInputs in;
    if (!f.system.empty()) in.messages.push_back({{"role", "system"}, {"content", f.system}});
    in.messages.push_back({{"role", "user"}, {"content", f.chat}});
    in.add_generation_prompt = true;
    ASSIGN_OR_RETURN(std::string text, tmpl.Render(in));
    // The rendered template spells out its special tokens; encoding recognises them.
    ids = engine->tokenizer().Encode(text, /*add_special_tokens=*/false);
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
  const bool json = Globals().json;
  auto stream = [&](size_t, const std::string& piece) {
    if (json) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  ASSIGN_OR_RETURN(auto results, engine->GenerateBatch({ids}, g, stream, nullptr));
  const auto t2 = std::chrono::steady_clock::now();
  const GenerateResult& r = results[0];
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count();
  if (json) {
    nlohmann::json j = {
        {"model", f.model},          {"prompt_tokens", ids.size()},      {"text", r.text},
        {"tokens", r.tokens},        {"finish_reason", r.finish_reason}, {"load_seconds", load_s},
        {"generate_seconds", gen_s}, {"engine", engine->Describe()}};
    PrintJson(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fputc('\n', stdout);
    if (!Globals().quiet) {
      std::fprintf(
          stderr, "[%zu prompt tokens, %zu generated (%s) in %.2f s, %.1f tokens/s; load %.2f s]\n",
          ids.size(), r.tokens.size(), r.finish_reason.c_str(), gen_s,
          gen_s > 0 ? r.tokens.size() / gen_s : 0.0, load_s);
    }
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
          "Generation stops at any eos id of generation_config.json, a --stop string, or "
          "--max-tokens.\n\n"
          "Examples:\n"
          "  rvec generate Qwen2.5-0.5B/ --prompt \"The capital of France is\" --max-tokens 20\n"
          "  rvec generate Qwen2.5-0.5B-Instruct/ --chat \"What is 17*23?\" --system \"Be "
          "brief.\"\n"
          "  rvec generate model/ --prompt \"Once\" --temperature 0.8 --top-p 0.95 --seed 1");
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
      AddCommonFlags(app);
      return [f]() { return RunGenerate(*f); };
    });

}  // namespace
}  // namespace rvec::cli
