// `rvec serve`: an OpenAI-compatible HTTP server (completions, chat completions, models, health)
// whose requests share the engine's continuous batching through one StreamQueue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "model/engine.h"

namespace rvec::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;      // 0: the system picks a free port (see Server::port)
  std::string api_key;  // empty: no authentication
  std::string model_name;
  std::string version;  // answered by GET /version (vLLM's endpoint; recorded by rvec eval)
  std::filesystem::path model_dir;  // chat template and generation_config.json
  size_t max_body_bytes = 8u << 20;
  int max_n = 16;
  size_t max_connections = 64;
  double drain_timeout_s = 30;
  // One line per request (method, path, status, tokens, ms, tokens/s) goes here; null: silent.
  std::function<void(const std::string&)> log;
};

class Server {
 public:
  // Reads the chat template and generation defaults, and binds the port (nothing served yet).
  static StatusOr<std::unique_ptr<Server>> Create(Engine& engine, ServeOptions options);
  ~Server();

  int port() const;
  const std::string& host() const;
  // The default temperature, and where it came from (for the startup line and docs).
  std::string DefaultsSummary() const;

  // Serves until Shutdown (or the engine fails); returns the engine loop's status.
  Status Run();
  // Stops accepting connections, lets in-flight work drain for drain_timeout_s, then cancels what
  // is left. Blocks until the engine is idle or cancelled; safe from any thread but a handler.
  void Shutdown();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rvec::serve
