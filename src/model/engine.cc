// Engine: loads a Hugging Face model directory and schedules requests over the Transformer with
// continuous batching (sequences at different positions step together), chunked prefill,
// shared-prefix reuse from a KV cache bounded in bytes, stop strings / eos ids and lm-eval
// log-likelihood scoring.
#include "model/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "base/threading.h"
#include "io/checkpoint.h"
#include "model/kv_cache.h"
#include "model/logprobs.h"
#include "model/model_config.h"
#include "model/sampler.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "ops/matmul.h"

namespace rvec {
namespace {

// Shared prefixes shorter than this are recomputed rather than waited for.
constexpr size_t kMinSharedPrefix = 16;
constexpr size_t kMaxCachedPrefixes = 64;

size_t CommonPrefix(const std::vector<int32_t>& a, size_t a_len, const std::vector<int32_t>& b,
                    size_t b_len) {
  const size_t n = std::min(a_len, b_len);
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// A generation's sampling and stop settings: one per GenerateBatch, or one per served request.
struct GenConfig {
  SamplingParams params;
  std::set<int32_t> stop_ids;
  std::vector<std::string> stop_strings;
  size_t max_stop = 0;  // longest stop string
};

// One request in flight. `tokens` grows as generation appends; positions [0, computed) have K/V.
struct Sequence {
  size_t index = 0;
  std::vector<int32_t> tokens;
  size_t prompt_len = 0;
  size_t computed = 0;
  size_t capacity = 0;  // KV positions to reserve
  DType kv_dtype = DType::kF32;
  bool generate = false;
  bool finished = false;
  std::unique_ptr<SequenceKv> kv;
  // Log-likelihood: tokens [score_begin + 1, tokens.size()) are scored by the logits of the
  // positions before them; the last token is never fed.
  size_t score_begin = 0;
  double logprob = 0.0;
  bool greedy = true;
  // Generation.
  size_t max_new = 0;
  size_t generated = 0;
  std::unique_ptr<StreamDecoder> decoder;
  std::string text;
  size_t emitted = 0;
  std::string finish_reason;
  std::shared_ptr<const GenConfig> gen;
  uint64_t stream = 0;  // random stream of its samples
  // Serving (Engine::Serve).
  std::shared_ptr<StreamSink> sink;
  int logprobs = -1;
  int prompt_logprobs = -1;
  std::vector<TokenLogprob> prompt_lps;
  bool notified = false;  // OnDone was called
  int32_t stop_id = -1;   // the eos / stop id that ended a served sequence

  // Tokens that still need a forward pass.
  size_t FeedLimit() const { return generate ? tokens.size() : tokens.size() - 1; }
  // The first position whose logits are needed: a reused prefix must stop before it.
  size_t FirstWanted() const {
    if (!generate) return score_begin;
    return prompt_logprobs >= 0 ? 0 : prompt_len - 1;
  }
};

void ReadEosIds(const nlohmann::json& j, std::set<int32_t>* out) {
  if (!j.is_object() || !j.contains("eos_token_id")) return;
  const auto& v = j["eos_token_id"];
  if (v.is_number_integer()) out->insert(v.get<int32_t>());
  if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_number_integer()) out->insert(e.get<int32_t>());
    }
  }
}

bool IsPythonSpace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// MemAvailable of /proc/meminfo in bytes, 0 when unknown.
uint64_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::filesystem::path dir, EngineOptions options)
      : dir_(std::move(dir)), opt_(options) {}

  Status Init() {
    ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(dir_));
    ckpt_ = std::make_unique<Checkpoint>(std::move(ckpt));
    if (!ckpt_->config().has_value()) {
      return NotFound("{}: no config.json next to the weights", dir_.string());
    }
    const std::string label = (ckpt_->dir() / "config.json").string();
    ASSIGN_OR_RETURN(config_, ModelConfig::FromHf(*ckpt_->config(), label));
    ASSIGN_OR_RETURN(weights_, ModelWeights::Load(*ckpt_, config_));
    ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromModelDir(ckpt_->dir()));
    std::set<int32_t> eos;
    ReadEosIds(ckpt_->config()->raw, &eos);
    const auto gen_path = ckpt_->dir() / "generation_config.json";
    if (std::filesystem::exists(gen_path)) {
      std::ifstream in(gen_path);
      std::stringstream ss;
      ss << in.rdbuf();
      const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return DataLoss("{}: not valid JSON", gen_path.string());
      ReadEosIds(j, &eos);
    }
    if (!tokenizer_.eos_token().empty()) {
      if (auto id = tokenizer_.TokenToId(tokenizer_.eos_token())) eos.insert(*id);
    }
    eos_ids_.assign(eos.begin(), eos.end());
    pool_ = std::make_unique<ThreadPool>(opt_.threads);
    transformer_ = std::make_unique<Transformer>(
        config_, weights_, pool_.get(),
        opt_.bf16_activations ? MatMulPrecision::kBF16Activations : MatMulPrecision::kExact);
    if (opt_.kv_dtype != DType::kF32 && opt_.kv_dtype != DType::kBF16) {
      return InvalidArgument("KV-cache dtype {} is not supported (f32 or bf16)",
                             DTypeName(opt_.kv_dtype));
    }
    kv_pool_ = std::make_unique<KvPool>(config_, opt_.kv_cache_bytes);
    if (opt_.max_batch == 0) opt_.max_batch = 1;
    if (opt_.prefill_chunk == 0) opt_.prefill_chunk = 1;
    return OkStatus();
  }

  const Tokenizer& tokenizer() const override { return tokenizer_; }

  std::string Describe() const override {
    return fmt::format(
        "{} ({}, {} layers, hidden {}, {} weights, {:.2f} GB) on {} with {} threads{}",
        dir_.string(), config_.architecture, config_.layers, config_.hidden,
        DTypeName(weights_.embed_tokens.dtype), ckpt_->TotalTensorBytes() / 1e9, MatMulTargetName(),
        pool_->NumWorkers(), opt_.bf16_activations ? ", bf16 activations" : "");
  }

  std::vector<int32_t> EosTokenIds() const override { return eos_ids_; }

  StatusOr<MemoryForecast> ForecastGenerate(const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerateOptions& options) const override {
    std::vector<Sequence> seqs(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      seqs[i].tokens = prompts[i];
      seqs[i].prompt_len = std::min(prompts[i].size(), config_.max_positions - 1);
      SizeForGeneration(options, &seqs[i]);
    }
    return Forecast(seqs);
  }

  MemoryForecast LastForecast() const override { return last_forecast_; }

  EngineStats Stats() const override {
    EngineStats s = stats_;
    s.kv_budget_bytes = kv_pool_->budget();
    s.kv_peak_bytes = kv_pool_->peak();
    return s;
  }

  StatusOr<std::vector<GenerateResult>> GenerateBatch(
      const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
      const std::function<void(size_t, const std::string&)>& on_token,
      Progress* progress) override {
    if (!options.streams.empty() && options.streams.size() != prompts.size()) {
      return InvalidArgument("{} random streams given for {} prompts", options.streams.size(),
                             prompts.size());
    }
    std::vector<Sequence> seqs(prompts.size());
    const auto gen = MakeGenConfig(options);
    for (size_t i = 0; i < prompts.size(); ++i) {
      Sequence& s = seqs[i];
      s.index = i;
      s.generate = true;
      s.tokens = prompts[i];
      s.prompt_len = prompts[i].size();
      RETURN_IF_ERROR(CheckIds(s.tokens, fmt::format("prompt {}", i)));
      if (s.tokens.empty()) return InvalidArgument("prompt {} is empty", i);
      if (s.prompt_len >= config_.max_positions) {
        return InvalidArgument("prompt {} has {} tokens; the model allows {} positions", i,
                               s.prompt_len, config_.max_positions);
      }
      SizeForGeneration(options, &s);
      s.gen = gen;
      s.stream = options.streams.empty() ? i : options.streams[i];
      s.decoder = std::make_unique<StreamDecoder>(tokenizer_, /*skip_special_tokens=*/true);
      if (s.max_new == 0) {
        s.finished = true;
        s.finish_reason = "length";
      }
    }
    auto on_logits = [&](Sequence& s, size_t, const float* logits) {
      int32_t next = 0;
      AdvanceGeneration(s, logits, &next);
      const std::string text = TakeFinalText(s);
      if (on_token && !text.empty()) on_token(s.index, text);
      if (progress && s.finished) progress->Advance();
    };
    auto want = [&](const Sequence& s, size_t pos) { return pos + 1 == s.tokens.size(); };
    ASSIGN_OR_RETURN(last_forecast_, Forecast(seqs));
    RETURN_IF_ERROR(Run(seqs, want, on_logits, last_forecast_.batch));
    std::vector<GenerateResult> results(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      Sequence& s = seqs[i];
      results[i].tokens.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
      results[i].text = std::move(s.text);
      results[i].finish_reason = s.finish_reason.empty() ? "length" : s.finish_reason;
    }
    return results;
  }

  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) override {
    std::vector<Sequence> seqs(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      ASSIGN_OR_RETURN(auto pair, EncodePair(requests[i].context, requests[i].continuation));
      auto& [context, continuation] = pair;
      if (continuation.empty()) {
        return InvalidArgument("request {}: the continuation encodes to no tokens", i);
      }
      std::vector<int32_t> whole = std::move(context);
      whole.insert(whole.end(), continuation.begin(), continuation.end());
      // lm-eval keeps the last max_length + 1 tokens and feeds all but the last.
      const size_t max_len = config_.max_positions;
      if (whole.size() > max_len + 1) whole.erase(whole.begin(), whole.end() - (max_len + 1));
      if (continuation.size() >= whole.size()) {
        return InvalidArgument("request {}: the continuation ({} tokens) leaves no context", i,
                               continuation.size());
      }
      Sequence& s = seqs[i];
      s.index = i;
      s.tokens = std::move(whole);
      RETURN_IF_ERROR(CheckIds(s.tokens, fmt::format("request {}", i)));
      s.prompt_len = s.tokens.size() - 1;
      s.capacity = s.prompt_len;
      s.score_begin = s.tokens.size() - 1 - continuation.size();
    }
    auto want = [&](const Sequence& s, size_t pos) { return pos >= s.score_begin; };
    auto on_logits = [&](Sequence& s, size_t pos, const float* logits) {
      const int32_t target = s.tokens[pos + 1];
      double mx = logits[0];
      for (size_t v = 1; v < config_.vocab; ++v) mx = std::max(mx, double(logits[v]));
      double sum = 0;
      for (size_t v = 0; v < config_.vocab; ++v) sum += std::exp(double(logits[v]) - mx);
      s.logprob += double(logits[target]) - mx - std::log(sum);
      if (Argmax(logits, config_.vocab) != target) s.greedy = false;
      if (pos + 2 == s.tokens.size() && progress) progress->Advance();
    };
    RETURN_IF_ERROR(Run(seqs, want, on_logits, opt_.max_batch));
    std::vector<LoglikelihoodResult> results(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) results[i] = {seqs[i].logprob, seqs[i].greedy};
    return results;
  }

  StatusOr<std::vector<std::vector<float>>> Logits(const std::vector<int32_t>& ids,
                                                   bool all_positions) override {
    if (ids.empty()) return InvalidArgument("no token ids given");
    if (ids.size() > config_.max_positions) {
      return InvalidArgument("{} ids exceed the model's {} positions", ids.size(),
                             config_.max_positions);
    }
    RETURN_IF_ERROR(CheckIds(ids, "ids"));
    std::vector<Sequence> seqs(1);
    Sequence& s = seqs[0];
    s.tokens = ids;
    s.tokens.push_back(0);  // never fed: FeedLimit() stops before it
    s.prompt_len = ids.size();
    s.capacity = ids.size();
    std::vector<std::vector<float>> out;
    auto want = [&](const Sequence&, size_t pos) { return all_positions || pos + 1 == ids.size(); };
    auto on_logits = [&](Sequence&, size_t, const float* logits) {
      out.emplace_back(logits, logits + config_.vocab);
    };
    const bool cache = opt_.prefix_cache;
    opt_.prefix_cache = false;  // raw logits always come from a full computation
    Status st = Run(seqs, want, on_logits, 1);
    opt_.prefix_cache = cache;
    RETURN_IF_ERROR(st);
    return out;
  }

  size_t MaxPositions() const override { return config_.max_positions; }

  Status Serve(StreamQueue& queue) override {
    std::list<Sequence> owned;
    std::deque<Sequence*> pending;
    std::vector<Sequence*> active;
    std::vector<StreamRequest> incoming;
    auto more = [&] {
      // Requests join between steps; block only when there is nothing to run.
      incoming.clear();
      const bool open = queue.Take(&incoming, pending.empty() && active.empty());
      for (StreamRequest& r : incoming) Intake(std::move(r), &owned, &pending);
      const bool cancel_all = queue.Closed() && !queue.Draining();
      for (Sequence* s : active) {
        if (!s->finished && (cancel_all || s->sink->Cancelled())) {
          s->finished = true;
          s->finish_reason = "cancelled";
          NotifyDone(*s, ServedResult(*s));
          Retire(*s);
        }
      }
      std::erase_if(active, [](const Sequence* s) { return s->finished; });
      std::erase_if(pending, [&](Sequence* s) {
        if (!cancel_all && !s->sink->Cancelled()) return false;
        s->finish_reason = "cancelled";
        NotifyDone(*s, ServedResult(*s));
        return true;
      });
      owned.remove_if([](const Sequence& s) { return s.notified; });
      return open || !pending.empty() || !active.empty();
    };
    auto want = [](const Sequence& s, size_t pos) {
      return pos + 1 == s.tokens.size() || (s.prompt_logprobs >= 0 && pos + 1 < s.prompt_len);
    };
    auto on_logits = [&](Sequence& s, size_t pos, const float* logits) {
      ServedLogits(s, pos, logits);
    };
    auto reject = [&](Sequence& s, Status st) {
      NotifyDone(s, std::move(st));
      return OkStatus();
    };
    Status st = RunLoop(pending, active, want, on_logits, more, reject, opt_.max_batch);
    if (!st.ok()) {
      for (Sequence& s : owned) NotifyDone(s, st);
      for (Sequence* s : active) Retire(*s);
    }
    return st;
  }

 private:
  // Turns a served request into a pending sequence, or answers it at once when it cannot run.
  void Intake(StreamRequest r, std::list<Sequence>* owned, std::deque<Sequence*>* pending) {
    if (!r.sink) return;
    Sequence& s = owned->emplace_back();
    s.sink = std::move(r.sink);
    s.generate = true;
    s.tokens = std::move(r.prompt);
    s.prompt_len = s.tokens.size();
    s.logprobs = std::min<int>(r.logprobs, static_cast<int>(config_.vocab));
    s.prompt_logprobs = std::min<int>(r.prompt_logprobs, static_cast<int>(config_.vocab));
    s.gen = MakeGenConfig(r.options);
    s.stream = r.options.streams.empty() ? 0 : r.options.streams[0];
    s.decoder = std::make_unique<StreamDecoder>(tokenizer_, /*skip_special_tokens=*/true);
    Status bad = CheckIds(s.tokens, "prompt");
    if (bad.ok() && s.tokens.empty()) bad = InvalidArgument("the prompt is empty");
    if (bad.ok() && s.prompt_len >= config_.max_positions) {
      bad = InvalidArgument("the prompt has {} tokens; the model allows {} positions", s.prompt_len,
                            config_.max_positions);
    }
    if (!bad.ok()) return NotifyDone(s, std::move(bad));
    SizeForGeneration(r.options, &s);
    // Prompt scores come from f32 KV, as Engine::LogLikelihood's do.
    if (s.prompt_logprobs >= 0) s.kv_dtype = DType::kF32;
    if (kv_pool_->BytesFor(s.capacity, s.kv_dtype) > kv_pool_->budget()) {
      return NotifyDone(
          s, FailedPrecondition("{} positions need {} of KV; the KV cache budget is {}", s.capacity,
                                HumanBytes(kv_pool_->BytesFor(s.capacity, s.kv_dtype)),
                                HumanBytes(kv_pool_->budget())));
    }
    if (s.max_new == 0 && s.prompt_logprobs < 0) {
      s.finish_reason = "length";
      return NotifyDone(s, ServedResult(s));
    }
    pending->push_back(&s);
  }

  // A served sequence's logits row: a prompt token's score, or the next generated token.
  void ServedLogits(Sequence& s, size_t pos, const float* logits) {
    if (pos + 1 < s.prompt_len) {
      s.prompt_lps.push_back(
          ComputeLogprob(logits, config_.vocab, s.tokens[pos + 1], s.prompt_logprobs));
      return;
    }
    if (s.prompt_logprobs >= 0 && s.generated == 0)
      s.sink->OnPromptLogprobs(std::move(s.prompt_lps));
    if (s.max_new == 0) {
      s.finished = true;
      s.finish_reason = "length";
    } else {
      int32_t next = 0;
      // A stop id is reported too (vLLM counts it, and lm-eval's echo slice [ctxlen:-1] relies
      // on one entry per generated token).
      if (!AdvanceGeneration(s, logits, &next)) s.stop_id = next;
      const std::string text = TakeFinalText(s);
      TokenLogprob t;
      if (s.logprobs >= 0) {
        t = ComputeLogprob(logits, config_.vocab, next, s.logprobs);
      } else {
        t.id = next;
      }
      s.sink->OnToken(t, text);
    }
    if (s.finished) NotifyDone(s, ServedResult(s));
  }

  static GenerateResult ServedResult(const Sequence& s) {
    GenerateResult r;
    if (s.tokens.size() > s.prompt_len) {
      r.tokens.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
    }
    if (s.stop_id >= 0) r.tokens.push_back(s.stop_id);
    r.text = s.text;
    r.finish_reason = s.finish_reason.empty() ? "length" : s.finish_reason;
    return r;
  }

  static void NotifyDone(Sequence& s, StatusOr<GenerateResult> result) {
    if (s.notified) return;
    s.notified = true;
    s.sink->OnDone(std::move(result));
  }

  Status CheckIds(const std::vector<int32_t>& ids, const std::string& what) const {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= config_.vocab) {
        return InvalidArgument("{}: token id {} at index {} is outside the vocabulary (0..{})",
                               what, ids[i], i, config_.vocab - 1);
      }
    }
    return OkStatus();
  }

  std::shared_ptr<const GenConfig> MakeGenConfig(const GenerateOptions& options) const {
    auto g = std::make_shared<GenConfig>();
    g->params = {options.temperature, options.top_p, options.top_k, options.seed};
    g->stop_ids.insert(eos_ids_.begin(), eos_ids_.end());
    g->stop_ids.insert(options.stop_token_ids.begin(), options.stop_token_ids.end());
    g->stop_strings = options.stop_strings;
    for (const auto& stop : g->stop_strings) g->max_stop = std::max(g->max_stop, stop.size());
    return g;
  }

  // Appends decoded text; a completed stop string cuts it there and finishes the sequence.
  static void AppendText(Sequence& s, const std::string& piece) {
    const GenConfig& g = *s.gen;
    const size_t old = s.text.size();
    s.text += piece;
    const size_t from = old >= g.max_stop ? old - g.max_stop + 1 : 0;
    size_t cut = std::string::npos;
    for (const auto& stop : g.stop_strings) {
      if (stop.empty()) continue;
      const size_t p = s.text.find(stop, from);
      if (p != std::string::npos) cut = std::min(cut, p);
    }
    if (cut != std::string::npos) {
      s.text.resize(cut);
      s.finished = true;
      s.finish_reason = "stop";
    }
  }

  // Text that became final since the last call. While running, a tail that could still grow into
  // a stop string is held back.
  static std::string TakeFinalText(Sequence& s) {
    size_t safe = s.text.size();
    if (!s.finished) {
      for (const auto& stop : s.gen->stop_strings) {
        if (stop.empty()) continue;
        for (size_t k = std::min(stop.size() - 1, s.text.size()); k > 0; --k) {
          if (s.text.compare(s.text.size() - k, k, stop, 0, k) == 0) {
            safe = std::min(safe, s.text.size() - k);
            break;
          }
        }
      }
    }
    std::string out;
    if (safe > s.emitted) out = s.text.substr(s.emitted, safe - s.emitted);
    s.emitted = std::max(s.emitted, safe);
    return out;
  }

  // Samples the next token from `logits` into *next. A stop id finishes the sequence unappended
  // (returns false); otherwise it is appended, and a stop string or max_new may finish it.
  bool AdvanceGeneration(Sequence& s, const float* logits, int32_t* next) {
    const GenConfig& g = *s.gen;
    *next = SampleToken(logits, config_.vocab, g.params, s.stream, s.generated);
    ++s.generated;
    if (g.stop_ids.count(*next)) {
      s.finished = true;
      s.finish_reason = "stop";
      AppendText(s, s.decoder->Flush());
      return false;
    }
    s.tokens.push_back(*next);
    AppendText(s, s.decoder->Push(*next));
    if (!s.finished && s.generated >= s.max_new) {
      s.finished = true;
      s.finish_reason = "length";
      AppendText(s, s.decoder->Flush());
    }
    return true;
  }

  // A generation request's new tokens and KV positions (the prompt is already set).
  void SizeForGeneration(const GenerateOptions& options, Sequence* s) const {
    s->max_new = std::min<size_t>(std::max(options.max_new_tokens, 0),
                                  config_.max_positions - s->prompt_len);
    s->capacity = s->prompt_len + s->max_new;
    s->kv_dtype = opt_.kv_dtype;
    s->generate = true;
  }

  // An upper bound on the KV bytes of any `batch` sequences active at once, and what shared
  // prompts save there. Sequences with one prompt hold one full block between them, and otherwise
  // only their tails: a sample is admitted once the prompt is prefilled to within one key tile
  // (ShouldWait), so all but at most one tile of the prompt's whole tiles is referenced. Any
  // active set is one full block per prompt plus tails, so the `batch` largest of those items
  // bound it.
  std::pair<uint64_t, uint64_t> WorstBatchKv(const std::vector<const Sequence*>& list,
                                             const std::vector<size_t>& group, size_t batch) const {
    std::vector<std::pair<uint64_t, uint64_t>> items;  // (bytes, saved against a private copy)
    std::vector<bool> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      const Sequence& s = *list[i];
      const uint64_t full = kv_pool_->BytesFor(s.capacity, s.kv_dtype);
      const size_t tiles = s.prompt_len > 0 ? (s.prompt_len - 1) / kKeyTile * kKeyTile : 0;
      const size_t shared = opt_.prefix_cache && tiles > kKeyTile ? tiles - kKeyTile : 0;
      if (group[i] >= seen.size()) seen.resize(group[i] + 1, false);
      if (shared > 0 && seen[group[i]]) {
        const uint64_t tail = kv_pool_->BytesFor(RoundUpToKeyTile(s.capacity) - shared, s.kv_dtype);
        items.emplace_back(tail, full - tail);
      } else {
        items.emplace_back(full, 0);
      }
      seen[group[i]] = true;
    }
    std::sort(items.begin(), items.end(), std::greater<>());
    uint64_t kv = 0, saved = 0;
    for (size_t i = 0; i < std::min(batch, items.size()); ++i) {
      kv += items[i].first, saved += items[i].second;
    }
    return {kv, saved};
  }

  // Activations for a step of prefill_chunk + batch tokens, per-worker attention scores over the
  // longest context, and one logits row per sequence.
  uint64_t ScratchBytes(size_t batch, size_t max_capacity) const {
    const size_t tokens = opt_.prefill_chunk + batch;
    const size_t per_token = 3 * config_.hidden + 2 * config_.q_dim() + 2 * config_.kv_dim() +
                             2 * config_.intermediate + config_.head_dim;
    return sizeof(float) * (uint64_t(tokens) * per_token +
                            uint64_t(pool_->NumWorkers()) * RoundUpToKeyTile(max_capacity) +
                            uint64_t(batch) * config_.vocab);
  }

  // Plans the batch for a generation run (see MemoryForecast).
  StatusOr<MemoryForecast> Forecast(const std::vector<Sequence>& seqs) const {
    MemoryForecast f;
    f.kv_dtype = opt_.kv_dtype == DType::kBF16 ? "bf16" : "f32";
    f.weight_bytes = ckpt_->TotalTensorBytes();
    f.kv_budget_bytes = opt_.kv_cache_bytes;
    f.available_bytes = MemAvailableBytes();
    std::vector<const Sequence*> list;
    std::vector<size_t> group;
    std::map<std::vector<int32_t>, size_t> ids;
    size_t max_capacity = 0;
    for (const Sequence& s : seqs) {
      if (s.max_new == 0) continue;
      list.push_back(&s);
      const std::vector<int32_t> prompt(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
      group.push_back(ids.emplace(prompt, ids.size()).first->second);
      max_capacity = std::max(max_capacity, s.capacity);
    }
    f.requested_batch = std::min(opt_.max_batch, list.size());
    for (size_t b = f.requested_batch; b >= 1; --b) {
      std::tie(f.kv_bytes, f.kv_saved_bytes) = WorstBatchKv(list, group, b);
      f.scratch_bytes = ScratchBytes(b, max_capacity);
      f.total_bytes = f.weight_bytes + f.kv_bytes + f.scratch_bytes;
      f.batch = b;
      const bool ram_ok =
          f.available_bytes == 0 || f.kv_bytes + f.scratch_bytes <= f.available_bytes;
      if (f.kv_bytes <= f.kv_budget_bytes && ram_ok) return f;
    }
    if (list.empty()) return f;
    return InvalidArgument(
        "memory forecast: one sequence needs {} of {} KV (KV cache budget {}) and {} of scratch "
        "({} available); shorten the prompt or the generation, or raise the KV budget",
        HumanBytes(f.kv_bytes), f.kv_dtype, HumanBytes(f.kv_budget_bytes),
        HumanBytes(f.scratch_bytes),
        f.available_bytes ? HumanBytes(f.available_bytes) : std::string("unknown"));
  }

  // lm-eval's HFLM._encode_pair: trailing context whitespace moves to the continuation, the
  // continuation's tokens are those of encode(context + continuation) after encode(context); an
  // empty context becomes the prefix token (bos, else eos).
  StatusOr<std::pair<std::vector<int32_t>, std::vector<int32_t>>> EncodePair(
      std::string context, std::string continuation) const {
    if (context.empty()) {
      const std::string& prefix =
          !tokenizer_.bos_token().empty() ? tokenizer_.bos_token() : tokenizer_.eos_token();
      std::optional<int32_t> id;
      if (!prefix.empty()) id = tokenizer_.TokenToId(prefix);
      if (!id && !eos_ids_.empty()) id = eos_ids_.front();
      if (!id) return FailedPrecondition("empty context and the model has no bos/eos token");
      return std::make_pair(std::vector<int32_t>{*id}, tokenizer_.Encode(continuation, false));
    }
    size_t n_spaces = 0;
    while (n_spaces < context.size() &&
           IsPythonSpace(static_cast<unsigned char>(context[context.size() - 1 - n_spaces]))) {
      ++n_spaces;
    }
    if (n_spaces > 0) {
      continuation = context.substr(context.size() - n_spaces) + continuation;
      context.resize(context.size() - n_spaces);
    }
    std::vector<int32_t> whole = tokenizer_.Encode(context + continuation, false);
    std::vector<int32_t> ctx = tokenizer_.Encode(context, false);
    const size_t n = std::min(ctx.size(), whole.size());
    std::vector<int32_t> cont(whole.begin() + n, whole.end());
    return std::make_pair(std::move(ctx), std::move(cont));
  }

  struct PrefixSource {
    const SequenceKv* kv = nullptr;
    size_t len = 0;
    size_t cache_index = SIZE_MAX;  // SIZE_MAX: an active sequence
  };

  // The longest reusable prefix for `s` among cached and active sequences with its KV dtype.
  PrefixSource FindPrefix(const Sequence& s, const std::vector<Sequence*>& active) const {
    // Positions whose logits are needed are always recomputed.
    const size_t limit = s.FirstWanted();
    PrefixSource best;
    if (limit == 0 || !opt_.prefix_cache) return best;
    for (size_t c = 0; c < cache_.size(); ++c) {
      if (cache_[c].kv->dtype() != s.kv_dtype) continue;
      const size_t l = CommonPrefix(s.tokens, limit, cache_[c].tokens, cache_[c].tokens.size());
      if (l > best.len) best = {cache_[c].kv.get(), l, c};
    }
    for (const Sequence* a : active) {
      if (a->kv->dtype() != s.kv_dtype) continue;
      const size_t l = CommonPrefix(s.tokens, limit, a->tokens, a->computed);
      if (l > best.len) best = {a->kv.get(), l, SIZE_MAX};
    }
    return best;
  }

  // Gives `s` its KV: the best shared prefix is referenced (whole tiles) or copied, the rest is
  // its own. Evicts cached prefixes for room; false when nothing more can be evicted.
  bool AllocateKv(Sequence& s, const std::vector<Sequence*>& active) {
    while (true) {
      const PrefixSource src = FindPrefix(s, active);
      std::unique_ptr<SequenceKv> kv =
          src.kv ? kv_pool_->TryAllocateWithPrefix(s.capacity, *src.kv, src.len)
                 : kv_pool_->TryAllocate(s.capacity, s.kv_dtype);
      if (kv) {
        if (src.cache_index != SIZE_MAX) cache_[src.cache_index].stamp = ++clock_;
        s.computed = src.len;
        stats_.tokens_reused += src.len;
        stats_.tokens_shared += kv->shared_positions();
        s.kv = std::move(kv);
        return true;
      }
      if (!EvictOldest()) return false;
    }
  }

  // True when an active sequence will soon hold a clearly longer shared prefix for `s` than is
  // available now: `s` waits a step instead of recomputing it.
  bool ShouldWait(const Sequence& s, const std::vector<Sequence*>& active) const {
    if (!opt_.prefix_cache) return false;
    const size_t limit = s.FirstWanted();
    size_t now = 0;
    for (const auto& c : cache_) {
      now = std::max(now, CommonPrefix(s.tokens, limit, c.tokens, c.tokens.size()));
    }
    for (const Sequence* a : active) {
      now = std::max(now, CommonPrefix(s.tokens, limit, a->tokens, a->computed));
    }
    for (const Sequence* a : active) {
      const size_t later = CommonPrefix(s.tokens, limit, a->tokens, a->FeedLimit());
      if (later >= kMinSharedPrefix && later > now + kMinSharedPrefix && a->computed < later) {
        return true;
      }
    }
    return false;
  }

  void Retire(Sequence& s) {
    if (opt_.prefix_cache && s.kv && s.computed >= kMinSharedPrefix) {
      cache_.push_back({std::vector<int32_t>(s.tokens.begin(), s.tokens.begin() + s.computed),
                        std::move(s.kv), ++clock_});
      if (cache_.size() > kMaxCachedPrefixes) EvictOldest();
    }
    s.kv.reset();
  }

  bool EvictOldest() {
    if (cache_.empty()) return false;
    auto oldest = std::min_element(cache_.begin(), cache_.end(),
                                   [](const auto& a, const auto& b) { return a.stamp < b.stamp; });
    cache_.erase(oldest);
    return true;
  }

  // Runs a fixed set of sequences to completion.
  template <class Want, class OnLogits>
  Status Run(std::vector<Sequence>& seqs, const Want& want, const OnLogits& on_logits,
             size_t max_batch) {
    std::deque<Sequence*> pending;
    for (Sequence& s : seqs) {
      if (!s.finished) pending.push_back(&s);
    }
    std::vector<Sequence*> active;
    auto more = [&] { return !pending.empty() || !active.empty(); };
    auto reject = [](Sequence&, Status st) { return st; };
    return RunLoop(pending, active, want, on_logits, more, reject, max_batch);
  }

  // The continuous-batching loop. Each step feeds one token per decoding sequence plus prompt
  // chunks (prefill_chunk tokens in all) of prefilling ones; `want(s, pos)` says which positions
  // need logits and `on_logits` consumes them (and may append tokens or finish the sequence).
  // `more()` runs before each step: it may add to `pending` or finish sequences of either list,
  // and false ends the loop. `reject(s, status)` answers a sequence that cannot fit alone: an
  // error ends the loop, OK drops the sequence.
  template <class Want, class OnLogits, class More, class Reject>
  Status RunLoop(std::deque<Sequence*>& pending, std::vector<Sequence*>& active, const Want& want,
                 const OnLogits& on_logits, const More& more, const Reject& reject,
                 size_t max_batch) {
    std::vector<TokenInput> inputs;
    std::vector<std::pair<Sequence*, size_t>> logit_rows;  // (sequence, position)
    std::vector<float> logits;
    while (more()) {
      // Admit new sequences while the batch and the KV budget allow.
      while (!pending.empty() && active.size() < max_batch) {
        Sequence& s = *pending.front();
        if (!active.empty() && ShouldWait(s, active)) break;
        if (!AllocateKv(s, active)) {
          if (!active.empty()) break;
          RETURN_IF_ERROR(reject(
              s, FailedPrecondition(
                     "KV cache budget of {} cannot hold one sequence of {} positions ({} needed); "
                     "raise kv_cache_bytes",
                     HumanBytes(kv_pool_->budget()), s.capacity,
                     HumanBytes(kv_pool_->BytesFor(s.capacity, s.kv_dtype)))));
          pending.pop_front();
          continue;
        }
        active.push_back(&s);
        pending.pop_front();
      }
      if (active.empty()) continue;
      BuildStep(active, want, &inputs, &logit_rows);
      if (inputs.empty()) return Internal("engine scheduled an empty step");
      transformer_->Forward(inputs, &logits);
      ++stats_.forward_steps;
      stats_.tokens_computed += inputs.size();
      for (const TokenInput& in : inputs) {
        for (Sequence* s : active) {
          if (s->kv.get() == in.kv) {
            s->computed = std::max(s->computed, in.pos + 1);
            break;
          }
        }
      }
      for (size_t r = 0; r < logit_rows.size(); ++r) {
        on_logits(*logit_rows[r].first, logit_rows[r].second, &logits[r * config_.vocab]);
      }
      // Retire finished sequences, keeping their KV for prefix reuse.
      for (Sequence* s : active) {
        if (!s->generate && s->computed == s->FeedLimit()) s->finished = true;
        if (s->finished) Retire(*s);
      }
      std::erase_if(active, [](const Sequence* s) { return s->finished; });
    }
    return OkStatus();
  }

  // One step's inputs: decoding sequences first (one token each), then prompt chunks.
  template <class Want>
  void BuildStep(const std::vector<Sequence*>& active, const Want& want,
                 std::vector<TokenInput>* inputs,
                 std::vector<std::pair<Sequence*, size_t>>* logit_rows) const {
    inputs->clear();
    logit_rows->clear();
    size_t budget = opt_.prefill_chunk;
    for (int pass = 0; pass < 2; ++pass) {
      for (Sequence* s : active) {
        const size_t todo = s->FeedLimit() - s->computed;
        const bool decoding = todo == 1 && s->computed >= s->prompt_len;
        if (todo == 0 || decoding != (pass == 0)) continue;
        const size_t take = decoding ? 1 : std::min(todo, budget);
        if (!decoding) budget -= take;
        for (size_t p = s->computed; p < s->computed + take; ++p) {
          const bool w = want(*s, p);
          inputs->push_back({s->tokens[p], p, s->kv.get(), w});
          if (w) logit_rows->emplace_back(s, p);
        }
        if (!decoding && budget == 0) break;
      }
    }
  }

  std::filesystem::path dir_;
  EngineOptions opt_;
  std::unique_ptr<Checkpoint> ckpt_;
  ModelConfig config_;
  ModelWeights weights_;
  Tokenizer tokenizer_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<KvPool> kv_pool_;
  struct CachedPrefix {
    std::vector<int32_t> tokens;
    std::unique_ptr<SequenceKv> kv;
    uint64_t stamp = 0;
  };
  // Declared after kv_pool_ so that it is destroyed first (entries return bytes to the pool).
  std::vector<CachedPrefix> cache_;
  uint64_t clock_ = 0;
  EngineStats stats_;
  MemoryForecast last_forecast_;
};

}  // namespace

std::string MemoryForecast::ToString() const {
  return fmt::format(
      "memory forecast: batch {} (of {} requested), weights {} + {} KV {} ({} saved by shared "
      "prompts) + scratch {} = {}; KV budget {}, available {}",
      batch, requested_batch, HumanBytes(weight_bytes), kv_dtype, HumanBytes(kv_bytes),
      HumanBytes(kv_saved_bytes), HumanBytes(scratch_bytes), HumanBytes(total_bytes),
      HumanBytes(kv_budget_bytes), available_bytes ? HumanBytes(available_bytes) : "unknown");
}

StatusOr<std::unique_ptr<Engine>> Engine::Load(const std::filesystem::path& model_dir,
                                               const EngineOptions& options) {
  auto engine = std::make_unique<EngineImpl>(model_dir, options);
  RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace rvec
