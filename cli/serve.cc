// `rvec serve`: an OpenAI-compatible HTTP server on the CPU engine (completions, chat, models,
// health) with continuous batching across requests; SIGTERM/SIGINT drain and exit 0.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cli/backend_flags.h"
#include "cli/command.h"
#include "cli/version.h"
#include "model/engine.h"
#include "serve/server.h"

namespace rvec::cli {
namespace {

struct ServeFlags {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::string served_model_name;
  double max_body_mb = 8;
  int max_n = 16;
  size_t max_connections = 64;
  double drain_timeout_s = 30;
  size_t max_batch = 16;
  BackendFlags engine;  // --kv-dtype, --kv-cache-gb, --bf16-activations
};

// Waits for SIGINT/SIGTERM (blocked in every thread, so only this one sees them) and shuts the
// server down; stops looking once `done` is set.
void WatchSignals(serve::Server* server, const std::atomic<bool>* done, bool quiet) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec wait{0, 200 * 1000 * 1000};
  while (!done->load()) {
    const int sig = sigtimedwait(&set, nullptr, &wait);
    if (sig != SIGINT && sig != SIGTERM) continue;
    if (!quiet) {
      std::fprintf(stderr, "rvec serve: %s: no new connections; draining in-flight requests\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    server->Shutdown();
    return;
  }
}

Status RunServe(ServeFlags f) {
  if (f.port < 0 || f.port > 65535) return InvalidArgument("--port must be in [0, 65535]");
  if (f.max_body_mb <= 0) return InvalidArgument("--max-body-mb must be > 0");
  if (f.max_n < 1) return InvalidArgument("--max-n must be >= 1");
  if (f.max_connections < 1) return InvalidArgument("--max-connections must be >= 1");
  if (f.drain_timeout_s < 0) return InvalidArgument("--drain-timeout-s must be >= 0");
  if (f.api_key.empty()) {
    if (const char* env = std::getenv("RVEC_API_KEY")) f.api_key = env;
  }
  // Block the signals before any thread starts, so that every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  EngineOptions eo;
  eo.threads = Globals().threads;
  eo.max_batch = std::max<size_t>(f.max_batch, 1);
  nlohmann::json provenance;
  ApplyLocalEngineFlags(f.engine, &eo, &provenance);
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Load(f.model, eo));

  serve::ServeOptions so;
  so.host = f.host;
  so.port = f.port;
  so.api_key = f.api_key;
  so.model_dir = f.model;
  so.model_name = f.served_model_name;
  so.version = kVersion;
  if (so.model_name.empty()) {
    so.model_name = std::filesystem::path(f.model).lexically_normal().filename().string();
    if (so.model_name.empty()) {
      so.model_name = std::filesystem::path(f.model).lexically_normal().parent_path().filename();
    }
  }
  so.max_body_bytes = static_cast<size_t>(f.max_body_mb * 1024 * 1024);
  so.max_n = f.max_n;
  so.max_connections = f.max_connections;
  so.drain_timeout_s = f.drain_timeout_s;
  const bool quiet = Globals().quiet;
  if (!quiet) so.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  ASSIGN_OR_RETURN(std::unique_ptr<serve::Server> server, serve::Server::Create(*engine, so));

  const std::string url = "http://" + f.host + ":" + std::to_string(server->port()) + "/v1";
  if (Globals().json) {
    const nlohmann::json line = {
        {"host", f.host}, {"port", server->port()}, {"model", so.model_name}, {"url", url}};
    std::printf("%s\n", line.dump().c_str());
  } else {
    std::printf("serving %s at %s\n", so.model_name.c_str(), url.c_str());
  }
  std::fflush(stdout);
  if (!quiet) {
    std::fprintf(stderr, "rvec serve: %s; %s\n", engine->Describe().c_str(),
                 server->DefaultsSummary().c_str());
  }

  std::atomic<bool> done{false};
  std::thread signals(WatchSignals, server.get(), &done, quiet);
  const Status status = server->Run();
  done.store(true);
  signals.join();
  if (status.ok() && !quiet) std::fprintf(stderr, "rvec serve: stopped\n");
  return status;
}

const RegisterCommand kServe(
    "serve", "Serve a model over an OpenAI-compatible HTTP API (completions, chat)", 52,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<ServeFlags>();
      app.description(
          "Serve a Hugging Face model directory with the built-in CPU engine over HTTP, speaking "
          "OpenAI's API as vLLM does: GET /health, GET /v1/models, POST /v1/completions (text or "
          "token-id prompts, n, stop, seed, logprobs, echo for log-likelihood scoring) and POST "
          "/v1/chat/completions (the model's chat template, logprobs), both with stream: true as "
          "server-sent events. Concurrent requests share the engine's continuous batching. "
          "Binds 127.0.0.1 unless --host is given. SIGTERM or SIGINT stops accepting, drains "
          "in-flight requests for --drain-timeout-s, cancels the rest and exits 0. "
          "docs/serve.md has the details.\n\n"
          "Examples:\n"
          "  rvec serve Qwen2.5-0.5B-Instruct/ --port 8000\n"
          "  curl -s localhost:8000/v1/completions -H 'Content-Type: application/json' \\\n"
          "    -d '{\"prompt\": \"The capital of France is\", \"max_tokens\": 8, "
          "\"temperature\": 0}'\n"
          "  rvec serve model/ --port 0 --json --api-key secret   # prints the chosen port\n"
          "  rvec eval --backend openai --endpoint http://127.0.0.1:8000/v1 ...");
      app.add_option("model", f->model, "Model directory")->required();
      app.add_option("--host", f->host, "Address to bind (default 127.0.0.1: this machine only)");
      app.add_option("--port", f->port, "Port (default 8000; 0 picks a free one, printed)");
      app.add_option("--api-key", f->api_key,
                     "Require 'Authorization: Bearer KEY' on /v1/* (default: $RVEC_API_KEY)");
      app.add_option("--served-model-name", f->served_model_name,
                     "Model name in the API (default: the model directory's name)");
      app.add_option("--max-body-mb", f->max_body_mb, "Largest request body in MiB (default 8)");
      app.add_option("--max-n", f->max_n, "Most choices (n) per request (default 16)");
      app.add_option("--max-connections", f->max_connections,
                     "Most open connections; more get 503 (default 64)");
      app.add_option("--drain-timeout-s", f->drain_timeout_s,
                     "On SIGTERM/SIGINT, seconds to let in-flight requests finish before "
                     "cancelling them (default 30)");
      app.add_option("--max-batch", f->max_batch,
                     "Most sequences stepped together (default 16; lowered to fit memory)");
      app.add_flag("--bf16-activations", f->engine.bf16_activations,
                   "Round activations to bf16 for the AVX512_BF16 dot product (faster prefill, "
                   "logits differ by ~1e-2)");
      app.add_option("--kv-dtype", f->engine.kv_dtype,
                     "Generation KV-cache dtype: bf16 (default) "
                     "or f32; prompt logprobs always use f32")
          ->check(CLI::IsMember({"bf16", "f32"}));
      app.add_option("--kv-cache-gb", f->engine.kv_cache_gb, "KV-cache budget in GB (default 1.07)")
          ->check(CLI::PositiveNumber);
      AddCommonFlags(app);
      return [f]() { return RunServe(*f); };
    });

}  // namespace
}  // namespace rvec::cli
