// The work behind POST /v1/completions and /v1/chat/completions: parse, tokenize, submit one
// engine request per choice, wait (watching the client's connection), and write the response or
// the server-sent events.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "model/engine.h"
#include "serve/api.h"
#include "serve/server.h"
#include "text/chat_template.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace rvec::serve {

// What the per-request log line reports; filled by the handler on its worker thread.
struct RequestStats {
  std::chrono::steady_clock::time_point start;
  bool started = false;
  size_t prompt_tokens = 0;
  size_t completion_tokens = 0;
  int status_override = 0;  // 499 when the client went away
};

// Sampling defaults for fields a request leaves out: vLLM's (temperature 1, top_p 1, top_k off)
// unless the model's generation_config.json sets them, as vLLM's --generation-config auto does.
struct SamplingDefaults {
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  std::string source = "OpenAI/vLLM defaults";
};
StatusOr<SamplingDefaults> ReadSamplingDefaults(const std::filesystem::path& model_dir);

class Generator {
 public:
  static StatusOr<std::unique_ptr<Generator>> Create(Engine& engine, const ServeOptions& options,
                                                     StreamQueue* queue,
                                                     const std::atomic<bool>* shutting_down);

  void Completions(const httplib::Request& req, httplib::Response& res, RequestStats* stats);
  void Chat(const httplib::Request& req, httplib::Response& res, RequestStats* stats);
  std::string DefaultsSummary() const;

  struct Work;

 private:
  Generator(Engine& engine, const ServeOptions& options, StreamQueue* queue,
            const std::atomic<bool>* shutting_down);
  std::optional<ApiError> PlanChat(const ChatRequest& chat, Work* work) const;
  GenerateOptions MakeOptions(const SamplingFields& s, int max_tokens) const;
  void Execute(std::shared_ptr<Work> work, const httplib::Request& req, httplib::Response& res,
               RequestStats* stats);

  Engine& engine_;
  const Tokenizer& tok_;
  StreamQueue* queue_;
  const std::atomic<bool>* shutting_down_;
  RequestLimits limits_;
  SamplingDefaults defaults_;
  StatusOr<ChatTemplate> template_ = Status(StatusCode::kNotFound, "no chat template");
  std::optional<int32_t> end_of_turn_;
};

}  // namespace rvec::serve
