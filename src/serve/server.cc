// The HTTP side of `rvec serve`: routing, authentication, limits, logging, the engine thread and
// graceful shutdown. Request work (tokenize, submit, wait, respond) is in generation.cc.
#include "serve/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "serve/api.h"
#include "serve/generation.h"
#include "serve/response.h"

namespace rvec::serve {
namespace {

using json = nlohmann::json;

// Threads beyond --max-connections, so that connections over the limit get their 503 promptly.
constexpr size_t kSpareThreads = 2;
constexpr size_t kKeepAliveMaxRequests = 100000;

// Set on a worker thread for the duration of a connection accepted over --max-connections.
thread_local bool tl_over_limit = false;
// The request being served on this worker thread, for the log line written after the response.
thread_local RequestStats tl_stats;

// httplib's thread pool with a count of open connections: those beyond the limit are still read
// (so they can be told why) but answered 503 by the pre-routing handler.
class LimitedQueue : public httplib::TaskQueue {
 public:
  explicit LimitedQueue(size_t limit) : limit_(limit), pool_(limit + kSpareThreads) {}
  void enqueue(std::function<void()> fn) override {
    const bool over = active_.fetch_add(1) + 1 > limit_;
    pool_.enqueue([this, over, fn = std::move(fn)] {
      tl_over_limit = over;
      fn();
      tl_over_limit = false;
      active_.fetch_sub(1);
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  size_t limit_;
  std::atomic<size_t> active_{0};
  httplib::ThreadPool pool_;
};

// Compares without an early exit, so that response times do not reveal how much of a key matched.
bool SameKey(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0 && !b.empty();
}

bool IsKnownPath(const std::string& path) {
  return path == "/health" || path == "/v1/models" || path == "/v1/completions" ||
         path == "/v1/chat/completions";
}

const char* AllowedMethod(const std::string& path) {
  return (path == "/health" || path == "/v1/models") ? "GET" : "POST";
}

}  // namespace

struct Server::Impl {
  Impl(Engine& e, ServeOptions o) : engine(e), options(std::move(o)) {}

  Engine& engine;
  ServeOptions options;
  std::unique_ptr<Generator> generator;
  StreamQueue queue;
  httplib::Server http;
  int port = 0;
  int64_t created = 0;

  std::thread engine_thread;
  std::mutex mu;
  std::condition_variable cv;
  bool engine_done = false;
  Status engine_status;
  std::atomic<bool> shutting_down{false};

  void Install();
  void InstallEndpoints();
  void InstallFallbacks();
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req, httplib::Response& res);
  void Log(const httplib::Request& req, const httplib::Response& res);
  void EngineLoop();
  void StopHttp();
  std::atomic<bool> listen_finished{false};
};

// httplib's stop() does nothing before listen has started: wait for it (or for its end).
void Server::Impl::StopHttp() {
  for (int i = 0; i < 10000 && !http.is_running() && !listen_finished.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  http.stop();
}

void WriteError(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(Dump(error.ToJson()), "application/json");
}

void WriteJson(httplib::Response& res, const json& body) {
  res.status = 200;
  res.set_content(Dump(body), "application/json");
}

httplib::Server::HandlerResponse Server::Impl::PreRoute(const httplib::Request& req,
                                                        httplib::Response& res) {
  tl_stats = RequestStats{};
  tl_stats.start = std::chrono::steady_clock::now();
  tl_stats.started = true;
  if (tl_over_limit) {
    ApiError e;
    e.status = 503;
    e.type = "server_error";
    e.message = fmt::format("the server is at its limit of {} connections (--max-connections)",
                            options.max_connections);
    WriteError(res, e);
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  }
  if (!options.api_key.empty() && req.path.rfind("/v1/", 0) == 0) {
    if (!SameKey(req.get_header_value("Authorization"), "Bearer " + options.api_key)) {
      ApiError e;
      e.status = 401;
      e.type = "authentication_error";
      e.message = req.has_header("Authorization")
                      ? "invalid API key in the Authorization header"
                      : "missing Authorization: Bearer <key> header (the server has --api-key)";
      WriteError(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

void Server::Impl::Log(const httplib::Request& req, const httplib::Response& res) {
  if (!options.log) return;
  const RequestStats s = tl_stats;
  tl_stats = RequestStats{};
  const double ms =
      s.started
          ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s.start)
                .count()
          : 0.0;
  const int status = s.status_override ? s.status_override : res.status;
  options.log(
      fmt::format("{} {} {} prompt_tokens={} completion_tokens={} {:.1f} ms {:.1f} tokens/s",
                  req.method, req.path, status, s.prompt_tokens, s.completion_tokens, ms,
                  ms > 0 ? s.completion_tokens * 1000.0 / ms : 0.0));
}

void Server::Impl::InstallEndpoints() {
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down.load()) {
      ApiError e;
      e.status = 503;
      e.type = "server_error";
      e.message = "the server is shutting down";
      WriteError(res, e);
      return;
    }
    WriteJson(res, {{"status", "ok"}});
  });
  http.Get("/version", [this](const httplib::Request&, httplib::Response& res) {
    WriteJson(res, {{"version", options.version}});
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    WriteJson(res, ModelList(options.model_name, engine.MaxPositions(), created));
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generator->Completions(req, res, &tl_stats);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generator->Chat(req, res, &tl_stats);
  });
}

// Unknown paths get 404 and known paths with the wrong method 405, both as OpenAI errors.
void Server::Impl::InstallFallbacks() {
  auto fallback = [](const httplib::Request& req, httplib::Response& res) {
    ApiError e;
    if (IsKnownPath(req.path)) {
      e.status = 405;
      e.message = fmt::format("{} {}: method not allowed (use {})", req.method, req.path,
                              AllowedMethod(req.path));
      res.set_header("Allow", AllowedMethod(req.path));
    } else {
      e.status = 404;
      e.message = fmt::format(
          "{} {}: no such endpoint (this server has GET /health, GET "
          "/v1/models, POST /v1/completions, POST /v1/chat/completions)",
          req.method, req.path);
    }
    WriteError(res, e);
  };
  http.Get(".*", fallback);
  http.Post(".*", fallback);
  http.Put(".*", fallback);
  http.Patch(".*", fallback);
  http.Delete(".*", fallback);
  http.Options(".*", fallback);
  // httplib's own errors (413 body too large, 400 unparsable request line) get a JSON body too.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        e.status = res.status;
        e.message = res.status == 413 ? "the request body is over the limit (--max-body-mb)"
                                      : fmt::format("HTTP error {}", res.status);
        WriteError(res, e);
        return httplib::Server::HandlerResponse::Handled;
      }));
}

void Server::Impl::Install() {
  const size_t limit = std::max<size_t>(options.max_connections, 1);
  http.new_task_queue = [limit] { return new LimitedQueue(limit); };
  http.set_payload_max_length(options.max_body_bytes);
  // httplib closes a connection after 5 requests by default; clients such as lm-eval's reuse one
  // connection for thousands.
  http.set_keep_alive_max_count(kKeepAliveMaxRequests);
  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return PreRoute(req, res); });
  http.set_logger(
      [this](const httplib::Request& req, const httplib::Response& res) { Log(req, res); });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        ApiError e;
        e.status = 500;
        e.type = "server_error";
        e.message = "internal error while handling the request";
        WriteError(res, e);
      });
  InstallEndpoints();
  InstallFallbacks();
}

void Server::Impl::EngineLoop() {
  Status s = engine.Serve(queue);
  // Nobody takes requests any more: refuse new ones and fail those still queued.
  queue.Close(/*drain=*/false);
  std::vector<StreamRequest> left;
  while (queue.Take(&left, /*block=*/false) && !left.empty()) {
    for (StreamRequest& r : left) {
      if (r.sink) r.sink->OnDone(Status(StatusCode::kInternal, "the engine stopped serving"));
    }
    left.clear();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    engine_status = s;
    engine_done = true;
  }
  cv.notify_all();
  if (!s.ok()) StopHttp();
}

StatusOr<std::unique_ptr<Server>> Server::Create(Engine& engine, ServeOptions options) {
  auto impl = std::make_unique<Impl>(engine, std::move(options));
  ASSIGN_OR_RETURN(impl->generator,
                   Generator::Create(engine, impl->options, &impl->queue, &impl->shutting_down));
  impl->created = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  impl->Install();
  const std::string& host = impl->options.host;
  if (impl->options.port == 0) {
    impl->port = impl->http.bind_to_any_port(host);
  } else {
    impl->port = impl->http.bind_to_port(host, impl->options.port) ? impl->options.port : -1;
  }
  if (impl->port <= 0) {
    return IoError("serve: cannot listen on {}:{} (in use, or not an address of this machine)",
                   host, impl->options.port);
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (impl_->engine_thread.joinable()) {
    impl_->queue.Close(/*drain=*/false);
    impl_->engine_thread.join();
  }
}

int Server::port() const { return impl_->port; }
const std::string& Server::host() const { return impl_->options.host; }
std::string Server::DefaultsSummary() const { return impl_->generator->DefaultsSummary(); }

Status Server::Run() {
  impl_->engine_thread = std::thread([this] { impl_->EngineLoop(); });
  // Returns once Shutdown (or an engine failure) stopped the server and every handler finished.
  impl_->http.listen_after_bind();
  impl_->listen_finished.store(true);
  if (!impl_->shutting_down.load()) Shutdown();
  impl_->engine_thread.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->engine_status;
}

void Server::Shutdown() {
  if (impl_->shutting_down.exchange(true)) return;
  impl_->StopHttp();
  impl_->queue.Close(/*drain=*/true);
  std::unique_lock<std::mutex> lock(impl_->mu);
  const auto timeout = std::chrono::duration<double>(impl_->options.drain_timeout_s);
  if (!impl_->cv.wait_for(lock, timeout, [&] { return impl_->engine_done; })) {
    lock.unlock();
    impl_->queue.Close(/*drain=*/false);  // past the drain timeout: cancel what is left
  }
}

}  // namespace rvec::serve
