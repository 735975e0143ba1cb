// Completions and chat completions: from a parsed request to engine submissions, then to the
// JSON response or the server-sent events, cancelling the work when the client goes away.
#include "serve/generation.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <random>
#include <utility>

#include "base/fs.h"
#include "serve/channel.h"
#include "serve/response.h"

namespace rvec::serve {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kDefaultCompletionTokens = 16;  // OpenAI's and vLLM's completions default
constexpr int kDefaultChatTokens = 4096;      // the cap of chat's default budget (see PlanChat)
constexpr auto kPollInterval = 100ms;         // how often a waiting handler checks its client

// The address text of a socket name, as httplib writes Request::remote_addr.
std::string AddressText(const sockaddr_storage& a, int* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    *port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    *port = ntohs(in6->sin6_port);
  } else {
    *port = -1;
  }
  return buf;
}

// httplib 0.11 does not tell a handler whether its client is still there. The connection's
// socket is the one whose local and peer addresses are the request's; polling it tells.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req)
      : remote_addr_(req.remote_addr), remote_port_(req.remote_port), local_port_(req.local_port) {}

  bool Closed() {
    if (fd_ == -2) fd_ = Find();
    if (fd_ < 0) return false;
    pollfd p{fd_, static_cast<short>(POLLIN | POLLRDHUP), 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    char byte;
    const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

 private:
  int Find() const {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int found = -1;
    while (dirent* e = readdir(dir)) {
      const int fd = std::atoi(e->d_name);
      if (fd <= 2 || fd == dirfd(dir)) continue;
      sockaddr_storage local{}, peer{};
      socklen_t ll = sizeof(local), pl = sizeof(peer);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
      int lport = -1, pport = -1;
      AddressText(local, &lport);
      const std::string paddr = AddressText(peer, &pport);
      if (lport == local_port_ && pport == remote_port_ && paddr == remote_addr_) {
        found = fd;
        break;
      }
    }
    closedir(dir);
    return found;
  }

  std::string remote_addr_;
  int remote_port_;
  int local_port_;
  int fd_ = -2;  // -2: not looked up yet; -1: not found (never reported closed)
};

ApiError ServerError(int status, std::string message) {
  ApiError e;
  e.status = status;
  e.type = "server_error";
  e.message = std::move(message);
  return e;
}

void WriteError(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(Dump(error.ToJson()), "application/json");
}

ApiError FromStatus(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kFailedPrecondition) {
    return BadRequest("", s.message());
  }
  return ServerError(500, s.message());
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Generator::Work {
  struct Job {
    std::vector<int32_t> prompt;
    std::string echo_text;
    GenerateOptions options;
  };
  bool chat = false;
  ResponseHeader header;
  std::vector<Job> jobs;
  size_t prompt_tokens = 0;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  bool want_logprobs = false;
  int top_n = 0;
  int engine_logprobs = -1;
  int prompt_logprobs = -1;
  std::shared_ptr<RequestGroup> group;
};

StatusOr<SamplingDefaults> ReadSamplingDefaults(const std::filesystem::path& model_dir) {
  SamplingDefaults d;
  const auto path = model_dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return d;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLoss("{}: not a JSON object", path.string());
  bool any = false;
  if (j.contains("temperature") && j["temperature"].is_number()) {
    d.temperature = j["temperature"].get<float>();
    any = true;
  }
  if (j.contains("top_p") && j["top_p"].is_number()) {
    d.top_p = j["top_p"].get<float>();
    any = true;
  }
  if (j.contains("top_k") && j["top_k"].is_number_integer()) {
    d.top_k = std::max(0, j["top_k"].get<int>());
    any = true;
  }
  if (any) d.source = path.string();
  return d;
}

Generator::Generator(Engine& engine, const ServeOptions& options, StreamQueue* queue,
                     const std::atomic<bool>* shutting_down)
    : engine_(engine), tok_(engine.tokenizer()), queue_(queue), shutting_down_(shutting_down) {
  limits_.model_name = options.model_name;
  limits_.vocab_size = tok_.VocabSize();
  limits_.max_positions = engine.MaxPositions();
  limits_.max_n = options.max_n;
}

StatusOr<std::unique_ptr<Generator>> Generator::Create(Engine& engine, const ServeOptions& options,
                                                       StreamQueue* queue,
                                                       const std::atomic<bool>* shutting_down) {
  std::unique_ptr<Generator> g(new Generator(engine, options, queue, shutting_down));
  ASSIGN_OR_RETURN(g->defaults_, ReadSamplingDefaults(options.model_dir));
  // A model without a chat template still serves completions; chat requests then get a 400.
  g->template_ = ChatTemplate::FromModelDir(options.model_dir);
  if (g->template_.ok()) g->end_of_turn_ = EndOfTurnId(*g->template_, g->tok_);
  return g;
}

std::string Generator::DefaultsSummary() const {
  return fmt::format("default temperature {}, top_p {}, top_k {} ({})",
                     static_cast<double>(defaults_.temperature),
                     static_cast<double>(defaults_.top_p), defaults_.top_k, defaults_.source);
}

GenerateOptions Generator::MakeOptions(const SamplingFields& s, int max_tokens) const {
  GenerateOptions o;
  o.max_new_tokens = max_tokens;
  o.temperature = s.temperature.value_or(defaults_.temperature);
  o.top_p = s.top_p.value_or(defaults_.top_p);
  o.top_k = s.top_k ? std::max(*s.top_k, 0) : defaults_.top_k;
  o.stop_strings = s.stop;
  o.stop_token_ids = s.stop_token_ids;
  if (s.seed) {
    o.seed = *s.seed;
  } else {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    o.seed = rng();  // one seed per request: its n choices still differ by stream
  }
  return o;
}

void Generator::Completions(const httplib::Request& req, httplib::Response& res,
                            RequestStats* stats) {
  CompletionRequest r;
  ApiError error;
  if (!ParseCompletionRequest(req.body, limits_, &r, &error)) return WriteError(res, error);
  auto work = std::make_shared<Work>();
  work->header = {NewResponseId("cmpl"), NowSeconds(), limits_.model_name};
  work->stream = r.sampling.stream;
  work->include_usage = r.sampling.include_usage;
  work->echo = r.echo;
  work->want_logprobs = r.logprobs >= 0;
  work->top_n = std::max(r.logprobs, 0);
  work->engine_logprobs = r.logprobs;
  work->prompt_logprobs = r.echo ? r.logprobs : -1;
  const int max_tokens = r.sampling.max_tokens.value_or(kDefaultCompletionTokens);
  for (size_t p = 0; p < r.prompts.size(); ++p) {
    const PromptInput& in = r.prompts[p];
    // As vLLM (add_special_tokens=True) and `rvec eval --backend local`: the tokenizer's BOS
    // policy for text; ids are used as they are.
    std::vector<int32_t> ids = in.is_text ? tok_.Encode(in.text, true) : in.ids;
    if (ids.empty()) {
      return WriteError(res,
                        BadRequest("prompt", fmt::format("prompt {} encodes to no tokens", p)));
    }
    if (auto e = CheckContextLength(ids.size(), max_tokens, limits_, "max_tokens")) {
      return WriteError(res, *e);
    }
    const std::string echo_text = !r.echo ? "" : in.is_text ? in.text : tok_.Decode(ids);
    work->prompt_tokens += ids.size();
    GenerateOptions options = MakeOptions(r.sampling, max_tokens);
    for (int i = 0; i < r.sampling.n; ++i) {
      options.streams = {static_cast<uint64_t>(i)};
      work->jobs.push_back({ids, echo_text, options});
    }
  }
  Execute(std::move(work), req, res, stats);
}

std::optional<ApiError> Generator::PlanChat(const ChatRequest& chat, Work* work) const {
  if (!template_.ok()) {
    return BadRequest("messages", "this model has no chat template (" +
                                      template_.status().message() + "); use /v1/completions");
  }
  OrderedChatTemplateInputs in;
  in.messages = chat.messages;
  in.tools = chat.tools;
  in.add_generation_prompt = chat.add_generation_prompt;
  in.extra = chat.template_kwargs;
  StatusOr<std::string> text = template_->Render(in);
  if (!text.ok()) {
    return BadRequest("messages",
                      "the chat template refused the messages: " + text.status().message());
  }
  // The rendered text spells out its special tokens, and any BOS the template wants.
  std::vector<int32_t> ids = tok_.Encode(*text, /*add_special_tokens=*/false);
  if (ids.empty()) return BadRequest("messages", "the messages render to no tokens");
  const size_t ctx = limits_.max_positions;
  if (ctx > 0 && ids.size() >= ctx) {
    return BadRequest("messages", fmt::format("This model's maximum context length is {} tokens; "
                                              "the messages have {} tokens",
                                              ctx, ids.size()));
  }
  // vLLM's default is the rest of the context; the engine reserves KV for the whole budget up
  // front, so the default is capped where a long answer still fits a typical KV budget.
  const int rest = ctx > 0 ? static_cast<int>(ctx - ids.size()) : kDefaultChatTokens;
  const int max_tokens = chat.sampling.max_tokens.value_or(std::min(rest, kDefaultChatTokens));
  if (auto e = CheckContextLength(ids.size(), max_tokens, limits_, "max_completion_tokens")) {
    return e;
  }
  work->prompt_tokens = ids.size();
  GenerateOptions options = MakeOptions(chat.sampling, max_tokens);
  if (end_of_turn_) options.stop_token_ids.push_back(*end_of_turn_);
  for (int i = 0; i < chat.sampling.n; ++i) {
    options.streams = {static_cast<uint64_t>(i)};
    work->jobs.push_back({ids, "", options});
  }
  return std::nullopt;
}

void Generator::Chat(const httplib::Request& req, httplib::Response& res, RequestStats* stats) {
  ChatRequest r;
  ApiError error;
  if (!ParseChatRequest(req.body, limits_, &r, &error)) return WriteError(res, error);
  auto work = std::make_shared<Work>();
  work->chat = true;
  work->header = {NewResponseId("chatcmpl"), NowSeconds(), limits_.model_name};
  work->stream = r.sampling.stream;
  work->include_usage = r.sampling.include_usage;
  work->want_logprobs = r.logprobs;
  work->top_n = r.top_logprobs;
  work->engine_logprobs = r.logprobs ? r.top_logprobs : -1;
  if (auto e = PlanChat(r, work.get())) return WriteError(res, *e);
  Execute(std::move(work), req, res, stats);
}

namespace {

// Characters (code points) in UTF-8 text: text_offset counts them, as Python's len() does.
size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct StreamState {
  std::vector<size_t> sent_tokens, sent_text, sent_chars;
  std::vector<bool> finished;
  size_t completion_tokens = 0;
};

// The JSON of one finished choice (non-streaming), its completion tokens added to `usage`.
Choice FinishedChoice(const Tokenizer& tok, const Generator::Work& w, size_t i,
                      const ChoiceState& c, Usage* usage) {
  const Generator::Work::Job& job = w.jobs[i];
  const GenerateResult& r = c.result.value();
  usage->completion_tokens += r.tokens.size();
  Choice out;
  out.index = i;
  out.text = w.echo ? job.echo_text + r.text : r.text;
  out.finish_reason = r.finish_reason;
  if (w.want_logprobs) {
    out.logprobs = w.chat ? ChatLogprobs(tok, c.tokens, w.top_n)
                          : CompletionLogprobs(tok, w.echo ? job.prompt : std::vector<int32_t>{},
                                               c.prompt_logprobs, c.tokens, w.top_n, 0);
  }
  return out;
}

// One streamed chunk of choice i: new text and, when asked, the new tokens' logprobs.
std::string DeltaEvent(const Tokenizer& tok, const Generator::Work& w, size_t i,
                       const std::string& text, const std::vector<TokenLogprob>& tokens,
                       size_t text_offset) {
  json logprobs = nullptr;
  if (w.want_logprobs) {
    logprobs = w.chat ? ChatLogprobs(tok, tokens, w.top_n)
                      : CompletionLogprobs(tok, {}, {}, tokens, w.top_n, text_offset);
  }
  if (w.chat) return SseEvent(ChatChunk(w.header, i, {{"content", text}}, "", logprobs));
  return SseEvent(CompletionChunk(w.header, i, text, "", logprobs));
}

// The events that end choice i: any final text the engine held back, then the finish reason (or
// the error, in vLLM's streamed-error shape).
std::string FinalEvents(const Tokenizer& tok, const Generator::Work& w, size_t i,
                        const ChoiceUpdate& u, StreamState* st) {
  if (!u.result.ok()) {
    return SseEvent(FromStatus(u.result.status()).ToJson());
  }
  const GenerateResult& r = u.result.value();
  st->completion_tokens += r.tokens.size();
  std::string out;
  const size_t sent = st->sent_text[i];
  if (r.text.size() > sent) {
    out += DeltaEvent(tok, w, i, r.text.substr(sent), {}, st->sent_chars[i]);
  }
  if (w.chat) {
    out += SseEvent(ChatChunk(w.header, i, json::object(), r.finish_reason, nullptr));
  } else {
    out += SseEvent(CompletionChunk(w.header, i, "", r.finish_reason, nullptr));
  }
  return out;
}

// Writes the events of every choice that has news; false when the client is gone.
bool StreamNews(const Tokenizer& tok, const Generator::Work& w, StreamState* st,
                const std::function<bool(const std::string&)>& write) {
  for (size_t i = 0; i < w.jobs.size(); ++i) {
    if (st->finished[i]) continue;
    ChoiceUpdate u = w.group->Poll(i, st->sent_tokens[i], st->sent_text[i]);
    const bool news = !u.text.empty() || (w.want_logprobs && !u.tokens.empty());
    if (news && !write(DeltaEvent(tok, w, i, u.text, u.tokens, st->sent_chars[i]))) return false;
    st->sent_tokens[i] += u.tokens.size();
    st->sent_text[i] += u.text.size();
    st->sent_chars[i] += CodePoints(u.text);
    if (u.done) {
      st->finished[i] = true;
      if (!write(FinalEvents(tok, w, i, u, st))) return false;
    }
  }
  return true;
}

void Respond(const Tokenizer& tok, const Generator::Work& work, httplib::Response& res,
             RequestStats* stats) {
  const std::vector<ChoiceState> choices = work.group->Snapshot();
  Usage usage;
  usage.prompt_tokens = work.prompt_tokens;
  std::vector<Choice> out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (!choices[i].result.ok()) return WriteError(res, FromStatus(choices[i].result.status()));
    out.push_back(FinishedChoice(tok, work, i, choices[i], &usage));
  }
  stats->completion_tokens = usage.completion_tokens;
  const json body = work.chat ? ChatResponse(work.header, out, usage)
                              : CompletionResponse(work.header, out, usage);
  res.status = 200;
  res.set_content(Dump(body), "application/json");
}

bool Stream(const Tokenizer& tok, const Generator::Work& work, StreamState* st,
            ConnectionWatch* watch, RequestStats* stats, httplib::DataSink& sink) {
  auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
  auto gone = [&] {
    work.group->Cancel();
    stats->status_override = 499;
    return false;
  };
  if (work.chat) {
    for (size_t i = 0; i < work.jobs.size(); ++i) {
      const json delta = {{"role", "assistant"}, {"content", ""}};
      if (!write(SseEvent(ChatChunk(work.header, i, delta, "", nullptr)))) return gone();
    }
  }
  uint64_t version = 0;
  while (true) {
    if (!work.group->WaitForChange(&version, kPollInterval)) {
      if (watch->Closed()) return gone();
      continue;
    }
    if (!StreamNews(tok, work, st, write)) return gone();
    if (std::find(st->finished.begin(), st->finished.end(), false) != st->finished.end()) continue;
    stats->completion_tokens = st->completion_tokens;
    if (work.include_usage) {
      Usage usage{work.prompt_tokens, st->completion_tokens};
      const char* object = work.chat ? "chat.completion.chunk" : "text_completion";
      if (!write(SseEvent(UsageChunk(work.header, object, usage)))) return gone();
    }
    if (!write(SseDone())) return gone();
    sink.done();
    return true;
  }
}

}  // namespace

void Generator::Execute(std::shared_ptr<Work> work, const httplib::Request& req,
                        httplib::Response& res, RequestStats* stats) {
  stats->prompt_tokens = work->prompt_tokens;
  if (shutting_down_->load()) {
    return WriteError(res, ServerError(503, "the server is shutting down"));
  }
  work->group = std::make_shared<RequestGroup>(work->jobs.size());
  for (size_t i = 0; i < work->jobs.size(); ++i) {
    StreamRequest sr;
    sr.prompt = work->jobs[i].prompt;
    sr.options = work->jobs[i].options;
    sr.logprobs = work->engine_logprobs;
    sr.prompt_logprobs = work->prompt_logprobs;
    sr.sink = std::make_shared<GroupSink>(work->group, i);
    if (Status s = queue_->Submit(std::move(sr)); !s.ok()) {
      work->group->Cancel();  // frees the choices already queued
      return WriteError(res, ServerError(503, "the server is shutting down: " + s.message()));
    }
  }
  ConnectionWatch watch(req);
  if (work->stream) {
    auto state = std::make_shared<StreamState>();
    state->sent_tokens.assign(work->jobs.size(), 0);
    state->sent_text.assign(work->jobs.size(), 0);
    state->sent_chars.assign(work->jobs.size(), 0);
    state->finished.assign(work->jobs.size(), false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, work, state, watch, stats](size_t, httplib::DataSink& sink) mutable {
          return Stream(tok_, *work, state.get(), &watch, stats, sink);
        },
        [work](bool) { work->group->Cancel(); });  // no-op once every choice is done
    return;
  }
  while (!work->group->WaitAllDone(kPollInterval)) {
    if (watch.Closed()) {
      work->group->Cancel();
      stats->status_override = 499;  // nginx's "client closed request": nothing is written
      return;
    }
  }
  Respond(tok_, *work, res, stats);
}

}  // namespace rvec::serve
