// The HTTP side of `rvec serve` against a scripted engine: routing and errors, authentication,
// body limit, keep-alive after a stream, n choices, a disconnecting client's cancellation and
// shutdown. (tests/cli/serve.sh runs the real engine.)
#include "serve/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "synth/synth.h"

namespace rvec::serve {
namespace {

using json = nlohmann::json;

// Generates ids 40, 41, 42, ... one per step; scores every prompt token -0.5.
class ScriptedEngine : public Engine {
 public:
  ScriptedEngine() {
    auto t = Tokenizer::FromJson(SynthTokenizer().tokenizer_json, "synth tokenizer");
    EXPECT_TRUE(t.ok());
    tok_ = std::move(t).value();
  }
  const Tokenizer& tokenizer() const override { return tok_; }
  std::string Describe() const override { return "scripted"; }
  StatusOr<std::vector<GenerateResult>> GenerateBatch(
      const std::vector<std::vector<int32_t>>&, const GenerateOptions&,
      const std::function<void(size_t, const std::string&)>&, Progress*) override {
    return Unimplemented("scripted");
  }
  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(const std::vector<LoglikelihoodRequest>&,
                                                           Progress*) override {
    return Unimplemented("scripted");
  }
  StatusOr<std::vector<std::vector<float>>> Logits(const std::vector<int32_t>&, bool) override {
    return Unimplemented("scripted");
  }
  size_t MaxPositions() const override { return 64; }

  Status Serve(StreamQueue& queue) override {
    struct Active {
      StreamRequest r;
      GenerateResult result;
    };
    std::vector<Active> active;
    while (true) {
      std::vector<StreamRequest> taken;
      const bool open = queue.Take(&taken, /*block=*/active.empty());
      for (StreamRequest& r : taken) {
        taken_count.fetch_add(1);
        if (r.prompt_logprobs >= 0) {
          std::vector<TokenLogprob> lps;
          for (size_t i = 1; i < r.prompt.size(); ++i) lps.push_back({r.prompt[i], -0.5f, {}});
          r.sink->OnPromptLogprobs(std::move(lps));
        }
        active.push_back({std::move(r), {}});
      }
      if (!open && active.empty()) return OkStatus();
      const bool cancel_all = queue.Closed() && !queue.Draining();
      for (size_t k = 0; k < active.size();) {
        Active& a = active[k];
        const bool cancelled = cancel_all || a.r.sink->Cancelled();
        const bool full = static_cast<int>(a.result.tokens.size()) >= a.r.options.max_new_tokens;
        if (cancelled || full) {
          if (cancelled) cancellations.fetch_add(1);
          a.result.finish_reason = cancelled ? "cancelled" : "length";
          a.r.sink->OnDone(std::move(a.result));
          active.erase(active.begin() + k);
          continue;
        }
        const int32_t id = 40 + static_cast<int32_t>(a.result.tokens.size());
        const std::string text = tok_.Decode(std::vector<int32_t>{id});
        a.result.tokens.push_back(id);
        a.result.text += text;
        TokenLogprob t{id, -0.25f, {}};
        if (a.r.logprobs > 0) t.top = {{id, -0.25f}};
        a.r.sink->OnToken(t, text);
        ++k;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(step_ms.load()));
    }
  }

  std::atomic<int> cancellations{0};
  std::atomic<int> taken_count{0};
  std::atomic<int> step_ms{1};

 private:
  Tokenizer tok_;
};

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServeOptions o = {}) {
    o.port = 0;
    o.model_name = "tiny";
    o.model_dir = "/nonexistent-model-dir";  // no chat template, no generation_config.json
    auto s = Server::Create(engine_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    runner_ = std::thread([this] { run_status_ = server_->Run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_keep_alive(true);
  }
  void TearDown() override {
    client_.reset();  // an idle keep-alive connection would hold the shutdown for its timeout
    if (server_) {
      server_->Shutdown();
      runner_.join();
      EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
    }
  }
  std::string Expected(int n) const {
    std::string s;
    for (int i = 0; i < n; ++i) s += engine_.tokenizer().Decode(std::vector<int32_t>{40 + i});
    return s;
  }

  ScriptedEngine engine_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  Status run_status_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerTest, CompletionsModelsHealthAndErrors) {
  Start();
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto models = client_->Get("/v1/models");
  ASSERT_TRUE(models);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["data"][0]["id"], "tiny");
  EXPECT_EQ(m["data"][0]["max_model_len"], 64);

  auto r = client_->Post("/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 4, "n": 2})",
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["text"], Expected(4));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);

  // Echo with logprobs: prompt positions first (null at 0), then the generated token.
  r = client_->Post("/v1/completions",
                    R"({"prompt": [[5, 6, 7]], "max_tokens": 1, "logprobs": 1, "echo": true})",
                    "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json lp = json::parse(r->body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), 4u);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][1].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][3].get<double>(), -0.25);

  struct Case {
    const char* method;
    const char* path;
    const char* body;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"POST", "/v1/completions", "{bad json", 400},
           {"POST", "/v1/completions", R"({"prompt": [1, 99999]})", 400},
           {"POST", "/v1/completions", R"({"prompt": [1], "max_tokens": 64})", 400},
           {"POST", "/v1/completions", R"({"prompt": "x", "model": "other"})", 404},
           {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})",
            400},  // no chat template in this model directory
           {"POST", "/v1/nothing", "{}", 404},
           {"GET", "/v1/completions", "", 405},
           {"POST", "/v1/models", "{}", 405},
           {"DELETE", "/health", "", 405},
       }) {
    httplib::Result res = std::string(c.method) == "GET" ? client_->Get(c.path)
                          : std::string(c.method) == "POST"
                              ? client_->Post(c.path, c.body, "application/json")
                              : client_->Delete(c.path);
    ASSERT_TRUE(res) << c.path;
    EXPECT_EQ(res->status, c.status) << c.method << " " << c.path << " " << c.body;
    const json e = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(e.is_object()) << res->body;
    EXPECT_TRUE(e["error"]["message"].is_string()) << res->body;
  }
}

TEST_F(ServerTest, StreamThenAnotherRequestOnTheSameConnection) {
  Start();
  std::string events;
  httplib::Headers headers;
  auto r =
      client_->Post("/v1/completions", headers, R"({"prompt": [1], "max_tokens": 3, "stream": true,
        "stream_options": {"include_usage": true}})",
                    "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  std::string text;
  size_t done = 0, usage = 0;
  size_t pos = 0;
  while (pos < r->body.size()) {
    const size_t end = r->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << r->body;
    const std::string line = r->body.substr(pos, end - pos);
    ASSERT_EQ(line.rfind("data: ", 0), 0u) << line;
    pos = end + 2;
    if (line == "data: [DONE]") {
      ++done;
      continue;
    }
    const json j = json::parse(line.substr(6));
    if (j.contains("usage")) {
      ++usage;
      EXPECT_EQ(j["usage"]["completion_tokens"], 3);
      continue;
    }
    text += j["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(done, 1u);
  EXPECT_EQ(usage, 1u);
  EXPECT_TRUE(r->body.size() >= 14 && r->body.substr(r->body.size() - 14) == "data: [DONE]\n\n");
  EXPECT_EQ(text, Expected(3));
  // The same client (keep-alive) makes a second request after the stream.
  auto again = client_->Get("/v1/models");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(ServerTest, ApiKeyAndBodyLimit) {
  ServeOptions o;
  o.api_key = "sekrit";
  o.max_body_bytes = 1024;
  Start(o);
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  r = client_->Get("/v1/models", wrong);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  httplib::Headers good = {{"Authorization", "Bearer sekrit"}};
  r = client_->Get("/v1/models", good);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = client_->Get("/health");  // open, as vLLM's
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string big = R"({"prompt": ")" + std::string(4096, 'a') + R"("})";
  httplib::Client fresh("127.0.0.1", server_->port());
  r = fresh.Post("/v1/completions", good, big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(json::parse(r->body)["error"]["message"].is_string()) << r->body;
}

// Sends a request on a raw socket, reads a little (a streamed event) or nothing, and hangs up.
void HangUpDuringRequest(int port, const std::string& body, bool read_some) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  if (read_some) {
    std::string got;
    char buf[512];
    while (got.find("data: ") == std::string::npos) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      ASSERT_GT(n, 0);
      got.append(buf, static_cast<size_t>(n));
    }
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  close(fd);
}

TEST_F(ServerTest, ClientThatGoesAwayIsCancelled) {
  Start();
  engine_.step_ms = 20;
  for (bool stream : {false, true}) {
    const int before = engine_.cancellations.load();
    const std::string body = std::string(R"({"prompt": [1], "max_tokens": 60, "stream": )") +
                             (stream ? "true" : "false") + "}";
    HangUpDuringRequest(server_->port(), body, stream);
    // 60 steps of 20 ms would take 1.2 s; the cancellation arrives before (bounded wait).
    for (int i = 0; i < 500 && engine_.cancellations.load() == before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(engine_.cancellations.load(), before + 1) << (stream ? "stream" : "non-stream");
  }
}

TEST_F(ServerTest, ConnectionsOverTheLimitGet503) {
  ServeOptions o;
  o.max_connections = 1;
  Start(o);
  auto first = client_->Get("/v1/models");  // client_ keeps its connection open
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  {
    httplib::Client second("127.0.0.1", server_->port());
    auto r = second.Get("/v1/models");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "server_error");
  }
  client_.reset();  // the first connection closes: there is room again
  for (int i = 0; i < 200; ++i) {
    httplib::Client third("127.0.0.1", server_->port());
    auto r = third.Get("/v1/models");
    ASSERT_TRUE(r);
    if (r->status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "no room after the first connection closed";
}

TEST_F(ServerTest, ShutdownDrainsInFlightWork) {
  ServeOptions o;
  o.drain_timeout_s = 30;
  Start(o);
  engine_.step_ms = 5;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", server_->port());
    auto r = c.Post("/v1/completions", R"({"prompt": [1], "max_tokens": 20})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(json::parse(r->body)["choices"][0]["finish_reason"], "length");
  });
  for (int i = 0; i < 500 && engine_.taken_count.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server_->Shutdown();
  client.join();
  runner_.join();
  EXPECT_TRUE(run_status_.ok());
  server_.reset();
}

}  // namespace
}  // namespace rvec::serve
