// The local backend: requests go to rvec's own engine, a whole chunk per batched call; sampled
// requests draw from their own random streams (GenerationRequest::stream).
#include <map>

#include "eval/backend.h"
#include "model/engine.h"

namespace rvec::eval {

namespace {

class LocalBackend : public Backend {
 public:
  LocalBackend(Engine* engine, size_t max_length) : engine_(engine), max_length_(max_length) {}

  std::string Kind() const override { return "local"; }
  nlohmann::json Config() const override {
    return {{"engine", engine_->Describe()},
            {"max_length", max_length_},
            {"left_truncated_prompts", truncated_}};
  }

  StatusOr<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& requests,
                                                   Progress* progress) override {
    std::vector<GenerationResult> out(requests.size());
    // One engine call per distinct generation setting (a task has one).
    std::map<std::string, std::vector<size_t>> by_kwargs;
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto& k = requests[i].kwargs;
      std::string key = fmt::format("{}|{}|{}|{}|{}", k.max_gen_toks, k.temperature, k.top_p,
                                    k.do_sample, requests[i].seed);
      for (const auto& s : k.until) key += fmt::format("|{}:{}", s.size(), s);
      by_kwargs[key].push_back(i);
    }
    const Tokenizer& tok = engine_->tokenizer();
    for (const auto& [key, idx] : by_kwargs) {
      const GenerationKwargs& kw = requests[idx[0]].kwargs;
      GenerateOptions opts;
      opts.max_new_tokens = kw.max_gen_toks;
      opts.stop_strings = kw.until;
      opts.temperature = kw.do_sample ? static_cast<float>(kw.temperature) : 0.0f;
      opts.top_p = kw.do_sample ? static_cast<float>(kw.top_p) : 1.0f;
      // Each (task, doc, sample) draws from its own stream, so the batch does not matter.
      opts.seed = requests[idx[0]].seed;
      for (size_t i : idx) opts.streams.push_back(requests[i].stream);
      std::vector<std::vector<int32_t>> prompts;
      prompts.reserve(idx.size());
      // lm-eval's hf backend encodes the context with the tokenizer's default special tokens.
      for (size_t i : idx) {
        std::vector<int32_t> ids = tok.Encode(requests[i].prompt, true);
        // lm-eval (HFLM generate_until) keeps the last max_length - max_gen_toks context tokens.
        if (max_length_ > 0) {
          const size_t budget = max_length_ > static_cast<size_t>(kw.max_gen_toks)
                                    ? max_length_ - kw.max_gen_toks
                                    : 1;
          if (ids.size() > budget) {
            ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(budget));
            ++truncated_;
          }
        }
        prompts.push_back(std::move(ids));
      }
      ASSIGN_OR_RETURN(auto results, engine_->GenerateBatch(prompts, opts, nullptr, progress));
      if (results.size() != idx.size()) {
        return Internal("engine returned {} results for {} prompts", results.size(), idx.size());
      }
      for (size_t k = 0; k < idx.size(); ++k) {
        out[idx[k]].text = std::move(results[k].text);
        out[idx[k]].finish_reason = std::move(results[k].finish_reason);
      }
    }
    return out;
  }

  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) override {
    std::vector<rvec::LoglikelihoodRequest> reqs;
    reqs.reserve(requests.size());
    for (const auto& r : requests) reqs.push_back({r.context, r.continuation});
    ASSIGN_OR_RETURN(auto results, engine_->LogLikelihood(reqs, progress));
    if (results.size() != requests.size()) {
      return Internal("engine returned {} results for {} requests", results.size(),
                      requests.size());
    }
    std::vector<LoglikelihoodResult> out(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      out[i].logprob = results[i].logprob;
      out[i].is_greedy = results[i].is_greedy;
    }
    return out;
  }

 private:
  Engine* engine_;
  size_t max_length_;
  size_t truncated_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeLocalBackend(Engine* engine, size_t max_length) {
  if (engine == nullptr) return InvalidArgument("local backend: no engine");
  return std::unique_ptr<Backend>(std::make_unique<LocalBackend>(engine, max_length));
}

}  // namespace rvec::eval
