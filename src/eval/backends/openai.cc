// The OpenAI-compatible completions backend (vLLM, SGLang, llama.cpp server, TGI, rvec serve):
// what lm-eval's local-completions model sends, with server detection, a log-likelihood probe,
// llama.cpp's native scoring route, left truncation, N concurrent requests and retries.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <thread>

#include "base/rng.h"
#include "eval/backend.h"
#include "eval/python/pyre.h"
#include "text/tokenizer.h"

namespace rvec::eval {

namespace {

using nlohmann::json;

struct Endpoint {
  std::string origin;  // scheme://host:port
  std::string path;    // "/v1"
};

StatusOr<Endpoint> ParseEndpoint(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return InvalidArgument("--endpoint '{}': expected http://HOST:PORT/v1", url);
  }
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return InvalidArgument("--endpoint '{}': scheme must be http or https", url);
  }
  const size_t slash = url.find('/', scheme_end + 3);
  Endpoint e;
  e.origin = url.substr(0, slash);
  e.path = slash == std::string::npos ? "" : url.substr(slash);
  while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
  if (e.origin.size() <= scheme_end + 3) return InvalidArgument("--endpoint '{}': no host", url);
  return e;
}

// Cuts `text` before the earliest stop string (TGI leaves them in; harmless elsewhere).
std::string CutAtStop(const std::string& text, const std::vector<std::string>& stops) {
  size_t cut = text.size();
  for (const auto& s : stops) {
    if (s.empty()) continue;
    const size_t at = text.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  return text.substr(0, cut);
}

// A number that may be null / NaN / a clamp value; null -> nullopt.
std::optional<double> Number(const json& v) {
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

const std::vector<std::string>& KnownServerKinds() {
  static const std::vector<std::string> kinds = {"vllm", "llamacpp", "sglang",
                                                 "tgi",  "rvec",     "openai"};
  return kinds;
}

// What answers at the endpoint, and how rvec found out.
struct ServerInfo {
  std::string kind = "openai";
  std::string detected_by = "none";  // "override", "/v1/models owned_by", "/props", "/info"
  std::string version;               // "" when the server does not say
  // The served model's context in tokens, when /v1/models says (vLLM and rvec serve:
  // max_model_len; llama.cpp: meta.n_ctx); 0 when unknown.
  size_t context = 0;
};

// GET origin+path as JSON with short timeouts; nullopt on any failure (detection is best effort).
std::optional<json> GetJson(const std::string& origin, const std::string& path,
                            const std::string& api_key) {
  httplib::Client client(origin);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  auto res = client.Get(path, headers);
  if (!res || res->status != 200) return std::nullopt;
  auto j = json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string StringField(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// The served model's /v1/models entry (else the first entry; null when there is none).
json ModelEntry(const json& models, const std::string& served_model) {
  if (!models.contains("data") || !models["data"].is_array()) return json();
  json first;
  for (const auto& m : models["data"]) {
    if (!m.is_object()) continue;
    if (first.is_null()) first = m;
    if (StringField(m, "id") == served_model) return m;
  }
  return first;
}

size_t EntryContext(const json& entry) {
  if (!entry.is_object()) return 0;
  if (entry.contains("max_model_len") && entry["max_model_len"].is_number_unsigned()) {
    return entry["max_model_len"].get<size_t>();
  }
  if (entry.contains("meta") && entry["meta"].is_object() && entry["meta"].contains("n_ctx") &&
      entry["meta"]["n_ctx"].is_number_unsigned()) {
    return entry["meta"]["n_ctx"].get<size_t>();
  }
  return 0;
}

ServerInfo DetectServer(const Endpoint& e, const OpenAiOptions& o) {
  ServerInfo info;
  const auto props = [&] { return GetJson(e.origin, "/props", o.api_key); };
  if (o.server_kind != "auto") {
    info.kind = o.server_kind;
    info.detected_by = "override";
  }
  if (auto models = GetJson(e.origin, e.path + "/models", o.api_key)) {
    const json entry = ModelEntry(*models, o.served_model);
    info.context = EntryContext(entry);
    const std::string owner = entry.is_object() ? StringField(entry, "owned_by") : "";
    for (const std::string& k : KnownServerKinds()) {
      if (info.detected_by == "none" && owner == k && k != "openai") {
        info.kind = k;
        info.detected_by = "/v1/models owned_by";
      }
    }
  }
  if (info.detected_by == "none") {
    if (auto p = props(); p && p->contains("build_info")) {
      info.kind = "llamacpp";
      info.detected_by = "/props";
    } else if (auto i = GetJson(e.origin, "/info", o.api_key);
               i && i->contains("model_id") && i->contains("max_stop_sequences")) {
      info.kind = "tgi";
      info.detected_by = "/info";
      info.version = StringField(*i, "version");
    }
  }
  if (info.version.empty() && info.kind == "llamacpp") {
    if (auto p = props()) info.version = StringField(*p, "build_info");
  } else if (info.version.empty() && info.kind == "tgi") {
    if (auto i = GetJson(e.origin, "/info", o.api_key)) info.version = StringField(*i, "version");
  } else if (info.version.empty()) {
    // vLLM (and rvec serve) answer GET /version.
    if (auto v = GetJson(e.origin, "/version", o.api_key))
      info.version = StringField(*v, "version");
  }
  return info;
}

// One log-likelihood request as token ids (tokenized locally), or as text.
struct EncodedRequest {
  std::vector<int32_t> ids;  // context + continuation after truncation
  size_t ctx_len = 0;        // tokens of ids before the continuation
  std::string text;          // untokenized: context + continuation
  size_t ctx_chars = 0;      // untokenized: code points of the context
  bool truncated = false;
};

enum class LoglikelihoodRoute { kUnknown, kEcho, kLlamaCppNative };

class OpenAiBackend : public Backend {
 public:
  OpenAiBackend(OpenAiOptions options, Endpoint endpoint, ServerInfo server)
      : options_(std::move(options)), endpoint_(std::move(endpoint)), server_(std::move(server)) {}

  std::string Kind() const override { return "openai"; }

  json Config() const override {
    json c = {{"endpoint", options_.endpoint},
              {"served_model", options_.served_model},
              {"server",
               {{"kind", server_.kind},
                {"detected_by", server_.detected_by},
                {"version", server_.version},
                {"context", server_.context}}},
              {"concurrency", options_.concurrency},
              {"batch_size", options_.batch_size},
              {"timeout_s", options_.timeout_s},
              {"max_retries", options_.max_retries},
              {"seed", options_.seed},
              {"tokenized_loglikelihood", options_.tokenizer != nullptr},
              {"add_bos", options_.add_bos},
              {"max_length", options_.max_length},
              {"left_truncated_prompts",
               {{"generation", truncated_generation_.load()},
                {"loglikelihood", truncated_loglikelihood_.load()}}},
              {"sampler_fields", SamplerFields(false)}};
    std::lock_guard<std::mutex> lock(route_mu_);
    if (route_ == LoglikelihoodRoute::kEcho) c["loglikelihood_route"] = "echo";
    if (route_ == LoglikelihoodRoute::kLlamaCppNative) {
      c["loglikelihood_route"] = "llamacpp /completion n_probs, one forced token per request";
      c["cache_prompt"] = options_.llamacpp_cache_prompt;
    }
    return c;
  }

  StatusOr<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& requests,
                                                   Progress* progress) override {
    std::vector<GenerationResult> out(requests.size());
    const size_t bs = std::max<size_t>(1, options_.batch_size);
    std::vector<std::pair<size_t, size_t>> batches;
    // A batch shares one payload, so its requests must share generation settings.
    for (size_t i = 0; i < requests.size();) {
      size_t j = i + 1;
      while (j < requests.size() && j - i < bs && SameKwargs(requests[i], requests[j])) ++j;
      batches.push_back({i, j});
      i = j;
    }
    RETURN_IF_ERROR(RunConcurrently(batches.size(), [&](size_t b) -> Status {
      const auto [begin, end] = batches[b];
      std::vector<std::string> stops;
      json payload = GenerationPayload(requests, begin, end, &stops);
      ASSIGN_OR_RETURN(json response, Post(CompletionsPath(), payload));
      ASSIGN_OR_RETURN(auto choices, Choices(response, end - begin));
      for (size_t k = 0; k < choices.size(); ++k) {
        const auto& c = choices[k];
        if (!c.contains("text") || !c["text"].is_string()) {
          return DataLoss("{}: choice without text", Url());
        }
        out[begin + k].text = CutAtStop(c["text"].get<std::string>(), stops);
        out[begin + k].finish_reason = c.contains("finish_reason") && c["finish_reason"].is_string()
                                           ? c["finish_reason"].get<std::string>()
                                           : "";
        if (progress) progress->Advance();
      }
      return OkStatus();
    }));
    return out;
  }

  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) override {
    if (requests.empty()) return std::vector<LoglikelihoodResult>{};
    ASSIGN_OR_RETURN(LoglikelihoodRoute route, EnsureRoute(requests.front().key.task));
    std::vector<EncodedRequest> encoded(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      ASSIGN_OR_RETURN(encoded[i], Encode(requests[i], route));
      if (encoded[i].truncated) ++truncated_loglikelihood_;
    }
    if (route == LoglikelihoodRoute::kLlamaCppNative) return ScoreNative(encoded, progress);
    return ScoreEcho(encoded, progress);
  }

 private:
  // A sampled request carries its own seed, so it never shares a payload.
  static bool SameKwargs(const GenerationRequest& a, const GenerationRequest& b) {
    return a.kwargs.until == b.kwargs.until && a.kwargs.max_gen_toks == b.kwargs.max_gen_toks &&
           a.kwargs.temperature == b.kwargs.temperature && !a.kwargs.do_sample &&
           !b.kwargs.do_sample;
  }

  // The per-request seed of a sampled (task, doc, sample): a mix of the run's seed and the
  // sample's stream, kept within int64 because servers (vLLM) validate it as one.
  static uint64_t RequestSeed(const GenerationRequest& r) {
    return Mix64(Mix64(r.seed) ^ r.stream) >> 1;
  }

  // Sampler settings whose server defaults differ from lm-eval's neutral ones (llama.cpp: top_k
  // 40, min_p 0.05; vLLM: the model's generation_config, e.g. repetition_penalty 1.05), sent
  // explicitly to servers known to accept them. `sampling`: top_p comes from the task.
  json SamplerFields(bool sampling) const {
    json f = json::object();
    if (server_.kind == "llamacpp") {
      f = {{"top_k", 0}, {"min_p", 0.0}, {"repeat_penalty", 1.0}};
    } else if (server_.kind == "vllm" || server_.kind == "sglang") {
      f = {{"top_k", -1}, {"min_p", 0.0}, {"repetition_penalty", 1.0}};
    }
    if (!sampling && server_.kind != "openai" && server_.kind != "rvec") f["top_p"] = 1.0;
    return f;
  }

  // The context as ids when a tokenizer is known (left-truncated to max_length - max_gen_toks),
  // else the text; TGI only takes text.
  json GenerationPrompt(const GenerationRequest& r) {
    if (!options_.tokenizer || server_.kind == "tgi") return r.prompt;
    std::vector<int32_t> ids = options_.tokenizer->Encode(r.prompt, options_.add_bos);
    if (options_.max_length > 0) {
      const size_t gen = static_cast<size_t>(std::max(0, r.kwargs.max_gen_toks));
      const size_t budget = options_.max_length > gen ? options_.max_length - gen : 1;
      if (ids.size() > budget) {
        ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(budget));
        ++truncated_generation_;
      }
    }
    return ids;
  }

  json GenerationPayload(const std::vector<GenerationRequest>& requests, size_t begin, size_t end,
                         std::vector<std::string>* stops) {
    const GenerationKwargs& kw = requests[begin].kwargs;
    json payload = {{"model", options_.served_model},
                    {"max_tokens", kw.max_gen_toks},
                    {"temperature", kw.do_sample ? kw.temperature : 0.0},
                    {"seed", options_.seed}};
    payload.update(SamplerFields(kw.do_sample));
    if (kw.do_sample) {
      payload["top_p"] = kw.top_p;
      payload["seed"] = RequestSeed(requests[begin]);
      payload["n"] = 1;
    }
    *stops = kw.until;
    if (options_.tokenizer && !options_.tokenizer->eos_token().empty() &&
        std::find(stops->begin(), stops->end(), options_.tokenizer->eos_token()) == stops->end()) {
      stops->push_back(options_.tokenizer->eos_token());
    }
    // TGI refuses more than --max-stop-sequences (default 4); the client cut applies them all.
    std::vector<std::string> sent = *stops;
    if (server_.kind == "tgi" && sent.size() > 4) sent.resize(4);
    payload["stop"] = sent;
    if (end - begin == 1) {
      payload["prompt"] = GenerationPrompt(requests[begin]);
    } else {
      json prompts = json::array();
      for (size_t i = begin; i < end; ++i) prompts.push_back(GenerationPrompt(requests[i]));
      payload["prompt"] = prompts;
    }
    return payload;
  }

  // lm-eval _encode_pair, then left truncation for `route`.
  StatusOr<EncodedRequest> Encode(const LoglikelihoodRequest& r, LoglikelihoodRoute route) const {
    // Trailing whitespace of the context moves to the continuation.
    std::string ctx = r.context, cont = r.continuation;
    const std::string trimmed = PyRStrip(ctx);
    cont = ctx.substr(trimmed.size()) + cont;
    ctx = trimmed;
    EncodedRequest e;
    if (!options_.tokenizer) {
      e.ctx_chars = PyLen(ctx);
      e.text = ctx + cont;
      return e;
    }
    const Tokenizer& tok = *options_.tokenizer;
    std::vector<int32_t> whole = tok.Encode(ctx + cont, options_.add_bos);
    std::vector<int32_t> ctx_ids = tok.Encode(ctx, options_.add_bos);
    if (ctx.empty() && !options_.add_bos) {
      // Empty context: lm-eval scores after the prefix token (BOS, else EOS).
      auto prefix = tok.TokenToId(!tok.bos_token().empty() ? tok.bos_token() : tok.eos_token());
      if (!prefix) return FailedPrecondition("empty context and no BOS/EOS token to prefix");
      ctx_ids = {*prefix};
      whole.insert(whole.begin(), *prefix);
    }
    if (whole.size() <= ctx_ids.size()) {
      return InvalidArgument("task {} doc {}: continuation tokenizes to nothing", r.key.task,
                             r.key.doc_id);
    }
    const size_t cont_len = whole.size() - ctx_ids.size();
    e.ctx_len = ctx_ids.size();
    if (options_.max_length > 0) {
      const size_t keep = route == LoglikelihoodRoute::kLlamaCppNative
                              ? options_.max_length + 1
                              : std::max<size_t>(options_.max_length, 2) - 1;
      if (whole.size() > keep) {
        whole.erase(whole.begin(), whole.end() - static_cast<std::ptrdiff_t>(keep));
        e.truncated = true;
      }
      if (cont_len >= whole.size()) {
        return InvalidArgument(
            "task {} doc {}: the continuation ({} tokens) leaves no context in "
            "--max-length {}",
            r.key.task, r.key.doc_id, cont_len, options_.max_length);
      }
      e.ctx_len = whole.size() - cont_len;
    }
    e.ids = std::move(whole);
    return e;
  }

  // Decides once how log-likelihoods are scored: a 3-token probe with echo + logprobs must come
  // back with 4 token_logprobs, the first null; else llama.cpp's native route, else an error.
  StatusOr<LoglikelihoodRoute> EnsureRoute(const std::string& task) {
    std::lock_guard<std::mutex> lock(route_mu_);
    if (route_ != LoglikelihoodRoute::kUnknown) return route_;
    const std::string server =
        fmt::format("{} ({}{})", endpoint_.origin + endpoint_.path, server_.kind,
                    server_.version.empty() ? "" : " " + server_.version);
    if (server_.kind == "tgi") {
      return FailedPrecondition(
          "task {} needs log-likelihoods, but the server at {} is TGI, whose /v1/completions "
          "returns no prompt logprobs; serve the model with vLLM, SGLang, llama-server or "
          "`rvec serve` for this task",
          task, server);
    }
    ASSIGN_OR_RETURN(std::string seen, ProbeEcho());
    if (seen.empty()) {
      route_ = LoglikelihoodRoute::kEcho;
    } else if (server_.kind == "llamacpp") {
      if (!options_.tokenizer) {
        return FailedPrecondition(
            "task {}: llama.cpp at {} is scored through its native /completion with token ids, "
            "which needs the model's tokenizer (give the model directory)",
            task, server);
      }
      route_ = LoglikelihoodRoute::kLlamaCppNative;
    } else {
      return FailedPrecondition(
          "task {} needs log-likelihoods, but the server at {} does not echo prompt logprobs "
          "({}); refusing to compute a wrong score (--server-kind llamacpp if it is llama.cpp)",
          task, server, seen);
    }
    return route_;
  }

  // "" when the echo probe passes, else what the server did instead.
  StatusOr<std::string> ProbeEcho() {
    std::vector<int32_t> ids = {0, 1, 2};
    if (options_.tokenizer) {
      std::vector<int32_t> t = options_.tokenizer->Encode("Hello, world!", false);
      if (t.size() >= 3) ids.assign(t.begin(), t.begin() + 3);
    }
    json payload = {{"model", options_.served_model},
                    {"prompt", json::array({ids})},
                    {"temperature", 0},
                    {"max_tokens", 1},
                    {"logprobs", 1},
                    {"echo", true}};
    auto response = Post(CompletionsPath(), payload, /*attempts=*/1);
    if (!response.ok()) {
      // An unreachable server is not a probe result: let the caller see the transport error.
      if (response.status().code() == StatusCode::kIo &&
          response.status().message().find("HTTP ") == std::string::npos) {
        return response.status();
      }
      return "the probe request failed: " + response.status().message();
    }
    const json& choices = response->value("choices", json::array());
    if (!choices.is_array() || choices.empty() || !choices[0].is_object()) {
      return std::string("the probe's answer has no choices");
    }
    const json lp = choices[0].value("logprobs", json());
    if (!lp.is_object() || !lp.contains("token_logprobs") || !lp["token_logprobs"].is_array()) {
      return std::string(lp.is_object() && lp.contains("content")
                             ? "logprobs of the generated token only"
                             : "no token_logprobs in the answer");
    }
    const json& tlp = lp["token_logprobs"];
    if (tlp.size() != ids.size() + 1 || !tlp[0].is_null()) {
      return fmt::format("{} token_logprobs for a {}-token prompt, expected {} with the first null",
                         tlp.size(), ids.size(), ids.size() + 1);
    }
    return std::string();
  }

  StatusOr<std::vector<LoglikelihoodResult>> ScoreEcho(const std::vector<EncodedRequest>& encoded,
                                                       Progress* progress) {
    std::vector<LoglikelihoodResult> out(encoded.size());
    const size_t bs = std::max<size_t>(1, options_.batch_size);
    const size_t num_batches = (encoded.size() + bs - 1) / bs;
    RETURN_IF_ERROR(RunConcurrently(num_batches, [&](size_t b) -> Status {
      const size_t begin = b * bs, end = std::min(encoded.size(), begin + bs);
      json prompts = json::array();
      for (size_t i = begin; i < end; ++i) {
        if (options_.tokenizer) {
          prompts.push_back(encoded[i].ids);
        } else {
          prompts.push_back(encoded[i].text);
        }
      }
      json payload = {{"model", options_.served_model},
                      {"prompt", prompts},
                      {"temperature", 0},
                      {"max_tokens", 1},
                      {"logprobs", 1},
                      {"seed", options_.seed},
                      {"echo", true}};
      ASSIGN_OR_RETURN(json response, Post(CompletionsPath(), payload));
      ASSIGN_OR_RETURN(auto choices, Choices(response, end - begin));
      for (size_t k = 0; k < choices.size(); ++k) {
        ASSIGN_OR_RETURN(out[begin + k], ParseEchoChoice(choices[k], encoded[begin + k]));
        if (progress) progress->Advance();
      }
      return OkStatus();
    }));
    return out;
  }

  StatusOr<LoglikelihoodResult> ParseEchoChoice(const json& choice, const EncodedRequest& e) const {
    const auto& lp = choice.value("logprobs", json());
    if (!lp.is_object() || !lp.contains("token_logprobs") || !lp["token_logprobs"].is_array()) {
      return FailedPrecondition(
          "{}: the server returned no prompt logprobs (echo + logprobs unsupported: "
          "llama.cpp and TGI cannot score log-likelihoods through /v1/completions)",
          Url());
    }
    const auto& tlp = lp["token_logprobs"];
    const auto& top = lp.value("top_logprobs", json::array());
    size_t from = 0, to = 0;
    if (options_.tokenizer) {
      from = e.ctx_len;
      to = e.ids.size();
      // Expected: the prompt tokens echoed, plus at most the generated ones.
      if (tlp.size() < to || tlp.size() > to + 1) {
        return FailedPrecondition(
            "{}: {} echoed token logprobs for a {}-token prompt (server-side BOS or "
            "re-tokenization?); refusing to score a misaligned slice",
            Url(), tlp.size(), to);
      }
    } else {
      const auto& offsets = lp.value("text_offset", json::array());
      if (!offsets.is_array() || offsets.size() != tlp.size()) {
        return FailedPrecondition(
            "{}: no text_offset in the echoed logprobs; give the model's tokenizer "
            "(--tokenizer) to split context and continuation locally",
            Url());
      }
      // Tokens starting at or after the context's end belong to the continuation; the last
      // entry is the generated token.
      from = tlp.size() - 1;
      for (size_t t = 0; t + 1 < offsets.size(); ++t) {
        if (offsets[t].is_number() && offsets[t].get<double>() >= e.ctx_chars) {
          from = t;
          break;
        }
      }
      to = tlp.size() - 1;
      if (from >= to) {
        return FailedPrecondition("{}: could not find the continuation in the echoed tokens",
                                  Url());
      }
    }
    LoglikelihoodResult r;
    r.is_greedy = true;
    for (size_t t = from; t < to; ++t) {
      auto v = Number(tlp[t]);
      if (!v) return DataLoss("{}: null logprob for continuation token {}", Url(), t);
      r.logprob += *v;
      if (t < top.size() && top[t].is_object()) {
        double best = -INFINITY;
        for (const auto& [tok, val] : top[t].items()) {
          if (val.is_number()) best = std::max(best, val.get<double>());
        }
        if (*v < best) r.is_greedy = false;
      } else {
        r.is_greedy = false;
      }
    }
    return r;
  }

  // llama.cpp: one /completion per continuation token i, prompt = ids[:ctx_len + i] (a pure
  // token array, so no BOS is added), the token forced by logit_bias so that its own raw logprob
  // comes back; greedy when llama.cpp's top-1 is that token.
  StatusOr<std::vector<LoglikelihoodResult>> ScoreNative(const std::vector<EncodedRequest>& encoded,
                                                         Progress* progress) {
    std::vector<std::pair<size_t, size_t>> jobs;  // (request, position in ids)
    for (size_t i = 0; i < encoded.size(); ++i) {
      for (size_t p = encoded[i].ctx_len; p < encoded[i].ids.size(); ++p) jobs.push_back({i, p});
    }
    std::vector<double> logprob(jobs.size());
    std::vector<char> greedy(jobs.size());
    std::vector<std::atomic<size_t>> left(encoded.size());
    for (size_t i = 0; i < encoded.size(); ++i)
      left[i] = encoded[i].ids.size() - encoded[i].ctx_len;
    RETURN_IF_ERROR(RunConcurrently(jobs.size(), [&](size_t j) -> Status {
      const auto [i, p] = jobs[j];
      const std::vector<int32_t>& ids = encoded[i].ids;
      const int32_t target = ids[p];
      json payload = {{"prompt", std::vector<int32_t>(ids.begin(), ids.begin() + p)},
                      {"n_predict", 1},
                      {"n_probs", 1},
                      {"post_sampling_probs", false},
                      {"temperature", 0},
                      {"cache_prompt", options_.llamacpp_cache_prompt},
                      {"logit_bias", json::array({json::array({target, 1e9})})}};
      ASSIGN_OR_RETURN(json response, Post("/completion", payload));
      ASSIGN_OR_RETURN(auto scored, ParseNative(response, target));
      logprob[j] = scored.first;
      greedy[j] = scored.second;
      if (--left[i] == 0 && progress) progress->Advance();
      return OkStatus();
    }));
    std::vector<LoglikelihoodResult> out(encoded.size());
    for (auto& r : out) r.is_greedy = true;
    for (size_t j = 0; j < jobs.size(); ++j) {
      out[jobs[j].first].logprob += logprob[j];
      if (!greedy[j]) out[jobs[j].first].is_greedy = false;
    }
    return out;
  }

  StatusOr<std::pair<double, bool>> ParseNative(const json& response, int32_t target) const {
    const std::string url = endpoint_.origin + "/completion";
    if (response.value("truncated", false)) {
      return FailedPrecondition(
          "{}: llama.cpp truncated the prompt (its context is shorter "
          "than the request; lower --max-length or raise llama-server -c)",
          url);
    }
    const json& probs = response.value("completion_probabilities", json::array());
    if (!probs.is_array() || probs.empty() || !probs[0].is_object()) {
      return DataLoss("{}: no completion_probabilities in the answer (is n_probs supported?)", url);
    }
    const json& first = probs[0];
    if (!first.contains("id") || first["id"] != target) {
      return DataLoss("{}: the forced token {} came back as {}; refusing to score it", url, target,
                      first.value("id", json()).dump());
    }
    auto lp = Number(first.value("logprob", json()));
    if (!lp) return DataLoss("{}: no logprob for token {}", url, target);
    const json& top = first.value("top_logprobs", json::array());
    const bool greedy = top.is_array() && !top.empty() && top[0].is_object() &&
                        top[0].contains("id") && top[0]["id"] == target;
    return std::make_pair(*lp, greedy);
  }

  std::string CompletionsPath() const { return endpoint_.path + "/completions"; }
  std::string Url() const { return endpoint_.origin + CompletionsPath(); }

  // Runs fn(0..n) on `concurrency` threads; the first error stops the remaining work.
  Status RunConcurrently(size_t n, const std::function<Status(size_t)>& fn) {
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    Status first;
    auto worker = [&] {
      for (;;) {
        const size_t i = next.fetch_add(1);
        if (i >= n || failed.load()) return;
        Status s = fn(i);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!failed.exchange(true)) first = s;
          return;
        }
      }
    };
    const size_t threads =
        std::min(std::max<size_t>(1, options_.concurrency), std::max<size_t>(1, n));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    return first;
  }

  StatusOr<std::vector<json>> Choices(const json& response, size_t expected) {
    if (!response.contains("choices") || !response["choices"].is_array()) {
      return DataLoss("{}: response has no choices array", Url());
    }
    std::vector<json> choices(expected);
    std::vector<bool> seen(expected, false);
    size_t position = 0;
    for (const auto& c : response["choices"]) {
      // Restore request order by "index" (servers may answer out of order).
      const size_t idx = c.contains("index") && c["index"].is_number_unsigned()
                             ? c["index"].get<size_t>()
                             : position;
      ++position;
      if (idx >= expected || seen[idx]) {
        return DataLoss("{}: unexpected choice index {} for {} prompts", Url(), idx, expected);
      }
      seen[idx] = true;
      choices[idx] = c;
    }
    if (position != expected) {
      return DataLoss("{}: {} choices for {} prompts", Url(), position, expected);
    }
    return choices;
  }

  // POSTs to origin+path with retries: network errors, 408/429 and 5xx are retried with
  // exponential backoff; other 4xx are deterministic and fail at once.
  StatusOr<json> Post(const std::string& path, const json& payload, int attempts = 0) {
    httplib::Client client(endpoint_.origin);
    const auto to_time = [](double s) {
      return std::chrono::microseconds(static_cast<int64_t>(s * 1e6));
    };
    client.set_connection_timeout(to_time(std::min(options_.timeout_s, 30.0)));
    client.set_read_timeout(to_time(options_.timeout_s));
    client.set_write_timeout(to_time(options_.timeout_s));
    httplib::Headers headers;
    if (!options_.api_key.empty()) {
      headers.emplace("Authorization", "Bearer " + options_.api_key);
    }
    const std::string url = endpoint_.origin + path;
    const std::string body = payload.dump();
    if (attempts <= 0) attempts = std::max(1, options_.max_retries);
    std::string last_error;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if (attempt > 0) {
        const double wait = std::min(options_.backoff_max_s,
                                     options_.backoff_initial_s * std::pow(2.0, attempt - 1));
        std::this_thread::sleep_for(to_time(wait));
      }
      auto res = client.Post(path, headers, body, "application/json");
      if (!res) {
        last_error = httplib::to_string(res.error());
        continue;
      }
      if (res->status >= 200 && res->status < 300) {
        auto j = json::parse(res->body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          last_error = "response is not a JSON object";
          continue;
        }
        return j;
      }
      last_error = fmt::format("HTTP {}: {}", res->status, res->body.substr(0, 300));
      if (res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429) {
        return InvalidArgument("{}: {}", url, last_error);
      }
    }
    return IoError("{}: failed after {} attempt(s): {}", url, attempts, last_error);
  }

  OpenAiOptions options_;
  Endpoint endpoint_;
  ServerInfo server_;
  mutable std::mutex route_mu_;
  LoglikelihoodRoute route_ = LoglikelihoodRoute::kUnknown;
  std::atomic<size_t> truncated_generation_{0};
  std::atomic<size_t> truncated_loglikelihood_{0};
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeOpenAiBackend(const OpenAiOptions& options) {
  ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(options.endpoint));
  if (options.served_model.empty()) {
    return InvalidArgument("the openai backend needs --served-model NAME");
  }
  const auto& kinds = KnownServerKinds();
  if (options.server_kind != "auto" &&
      std::find(kinds.begin(), kinds.end(), options.server_kind) == kinds.end()) {
    return InvalidArgument(
        "--server-kind '{}': expected auto, vllm, llamacpp, sglang, tgi, rvec or openai",
        options.server_kind);
  }
  ServerInfo server = DetectServer(e, options);
  return std::unique_ptr<Backend>(
      std::make_unique<OpenAiBackend>(options, std::move(e), std::move(server)));
}

}  // namespace rvec::eval
