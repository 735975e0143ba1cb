// The OpenAI-compatible completions backend (vLLM, SGLang, llama.cpp server, TGI): what lm-eval's
// local-completions model sends, with N concurrent requests, timeouts and retries with backoff.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "base/rng.h"
#include "eval/backend.h"
#include "eval/python/pyre.h"
#include "text/tokenizer.h"

namespace rvec::eval {

namespace {

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
std::optional<double> Number(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

class OpenAiBackend : public Backend {
 public:
  OpenAiBackend(OpenAiOptions options, Endpoint endpoint)
      : options_(std::move(options)), endpoint_(std::move(endpoint)) {}

  std::string Kind() const override { return "openai"; }

  nlohmann::json Config() const override {
    return {{"endpoint", options_.endpoint},
            {"served_model", options_.served_model},
            {"concurrency", options_.concurrency},
            {"batch_size", options_.batch_size},
            {"timeout_s", options_.timeout_s},
            {"max_retries", options_.max_retries},
            {"seed", options_.seed},
            {"tokenized_loglikelihood", options_.tokenizer != nullptr},
            {"add_bos", options_.add_bos}};
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
      const GenerationKwargs& kw = requests[begin].kwargs;
      nlohmann::json payload = {{"model", options_.served_model},
                                {"max_tokens", kw.max_gen_toks},
                                {"temperature", kw.do_sample ? kw.temperature : 0.0},
                                {"seed", options_.seed}};
      if (kw.do_sample) {
        payload["top_p"] = kw.top_p;
        payload["seed"] = RequestSeed(requests[begin]);
        payload["n"] = 1;
      }
      std::vector<std::string> stops = kw.until;
      if (options_.tokenizer && !options_.tokenizer->eos_token().empty() &&
          std::find(stops.begin(), stops.end(), options_.tokenizer->eos_token()) == stops.end()) {
        stops.push_back(options_.tokenizer->eos_token());
      }
      payload["stop"] = stops;
      if (end - begin == 1) {
        payload["prompt"] = requests[begin].prompt;
      } else {
        nlohmann::json prompts = nlohmann::json::array();
        for (size_t i = begin; i < end; ++i) prompts.push_back(requests[i].prompt);
        payload["prompt"] = prompts;
      }
      ASSIGN_OR_RETURN(nlohmann::json response, Post(payload));
      ASSIGN_OR_RETURN(auto choices, Choices(response, end - begin));
      for (size_t k = 0; k < choices.size(); ++k) {
        const auto& c = choices[k];
        if (!c.contains("text") || !c["text"].is_string()) {
          return DataLoss("{}: choice without text", Url());
        }
        out[begin + k].text = CutAtStop(c["text"].get<std::string>(), stops);
        out[begin + k].finish_reason = c.value("finish_reason", nlohmann::json("")).is_string()
                                           ? c.value("finish_reason", "")
                                           : "";
        if (progress) progress->Advance();
      }
      return OkStatus();
    }));
    return out;
  }

  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) override {
    std::vector<LoglikelihoodResult> out(requests.size());
    const size_t bs = std::max<size_t>(1, options_.batch_size);
    const size_t num_batches = (requests.size() + bs - 1) / bs;
    RETURN_IF_ERROR(RunConcurrently(num_batches, [&](size_t b) -> Status {
      const size_t begin = b * bs, end = std::min(requests.size(), begin + bs);
      nlohmann::json prompts = nlohmann::json::array();
      std::vector<size_t> ctx_lens(end - begin), cont_lens(end - begin);
      std::vector<size_t> ctx_chars(end - begin);
      for (size_t i = begin; i < end; ++i) {
        // lm-eval _encode_pair: trailing whitespace of the context moves to the continuation.
        std::string ctx = requests[i].context, cont = requests[i].continuation;
        const std::string trimmed = PyRStrip(ctx);
        cont = ctx.substr(trimmed.size()) + cont;
        ctx = trimmed;
        if (options_.tokenizer) {
          const Tokenizer& tok = *options_.tokenizer;
          std::vector<int32_t> whole = tok.Encode(ctx + cont, options_.add_bos);
          std::vector<int32_t> ctx_ids = tok.Encode(ctx, options_.add_bos);
          if (ctx.empty() && !options_.add_bos) {
            // Empty context: lm-eval scores after the prefix token (BOS, else EOS).
            auto prefix =
                tok.TokenToId(!tok.bos_token().empty() ? tok.bos_token() : tok.eos_token());
            if (!prefix) return FailedPrecondition("empty context and no BOS/EOS token to prefix");
            ctx_ids = {*prefix};
            whole.insert(whole.begin(), *prefix);
          }
          if (whole.size() <= ctx_ids.size()) {
            return InvalidArgument("task {} doc {}: continuation tokenizes to nothing",
                                   requests[i].key.task, requests[i].key.doc_id);
          }
          ctx_lens[i - begin] = ctx_ids.size();
          cont_lens[i - begin] = whole.size() - ctx_ids.size();
          prompts.push_back(whole);
        } else {
          ctx_chars[i - begin] = PyLen(ctx);
          prompts.push_back(ctx + cont);
        }
      }
      nlohmann::json payload = {{"model", options_.served_model},
                                {"prompt", prompts},
                                {"temperature", 0},
                                {"max_tokens", 1},
                                {"logprobs", 1},
                                {"seed", options_.seed},
                                {"echo", true}};
      ASSIGN_OR_RETURN(nlohmann::json response, Post(payload));
      ASSIGN_OR_RETURN(auto choices, Choices(response, end - begin));
      for (size_t k = 0; k < choices.size(); ++k) {
        const auto& lp = choices[k].value("logprobs", nlohmann::json());
        if (!lp.is_object() || !lp.contains("token_logprobs") || !lp["token_logprobs"].is_array()) {
          return FailedPrecondition(
              "{}: the server returned no prompt logprobs (echo + logprobs unsupported: "
              "llama.cpp and TGI cannot score log-likelihoods through /v1/completions)",
              Url());
        }
        const auto& tlp = lp["token_logprobs"];
        const auto& top = lp.value("top_logprobs", nlohmann::json::array());
        size_t from = 0, to = 0;
        if (options_.tokenizer) {
          from = ctx_lens[k];
          to = ctx_lens[k] + cont_lens[k];
          // Expected: the prompt tokens echoed, plus at most the generated ones.
          if (tlp.size() < to || tlp.size() > to + 1) {
            return FailedPrecondition(
                "{}: {} echoed token logprobs for a {}-token prompt (server-side BOS or "
                "re-tokenization?); refusing to score a misaligned slice",
                Url(), tlp.size(), to);
          }
        } else {
          const auto& offsets = lp.value("text_offset", nlohmann::json::array());
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
            if (offsets[t].is_number() && offsets[t].get<double>() >= ctx_chars[k]) {
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
        out[begin + k] = r;
        if (progress) progress->Advance();
      }
      return OkStatus();
    }));
    return out;
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

  std::string Url() const { return endpoint_.origin + endpoint_.path + "/completions"; }

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

  StatusOr<std::vector<nlohmann::json>> Choices(const nlohmann::json& response, size_t expected) {
    if (!response.contains("choices") || !response["choices"].is_array()) {
      return DataLoss("{}: response has no choices array", Url());
    }
    std::vector<nlohmann::json> choices(expected);
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

  // POSTs with retries: network errors, 408/429 and 5xx are retried with exponential backoff;
  // other 4xx are deterministic and fail at once.
  StatusOr<nlohmann::json> Post(const nlohmann::json& payload) {
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
    const std::string body = payload.dump();
    const int attempts = std::max(1, options_.max_retries);
    std::string last_error;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if (attempt > 0) {
        const double wait = std::min(options_.backoff_max_s,
                                     options_.backoff_initial_s * std::pow(2.0, attempt - 1));
        std::this_thread::sleep_for(to_time(wait));
      }
      auto res = client.Post(endpoint_.path + "/completions", headers, body, "application/json");
      if (!res) {
        last_error = httplib::to_string(res.error());
        continue;
      }
      if (res->status >= 200 && res->status < 300) {
        auto j = nlohmann::json::parse(res->body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          last_error = "response is not a JSON object";
          continue;
        }
        return j;
      }
      last_error = fmt::format("HTTP {}: {}", res->status, res->body.substr(0, 300));
      if (res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429) {
        return InvalidArgument("{}: {}", Url(), last_error);
      }
    }
    return IoError("{}: failed after {} attempt(s): {}", Url(), attempts, last_error);
  }

  OpenAiOptions options_;
  Endpoint endpoint_;
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeOpenAiBackend(const OpenAiOptions& options) {
  ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(options.endpoint));
  if (options.served_model.empty()) {
    return InvalidArgument("the openai backend needs --served-model NAME");
  }
  return std::unique_ptr<Backend>(std::make_unique<OpenAiBackend>(options, std::move(e)));
}

}  // namespace rvec::eval
