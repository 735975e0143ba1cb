// Functional retention: both models side by side on the same prompts, one prompt at a time so
// that only one prompt's logits are ever held.
#include "pipeline/retention.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "base/fs.h"
#include "eval/data.h"
#include "eval/runner.h"
#include "eval/task.h"
#include "merge/vector.h"
#include "model/engine.h"

namespace rvec::pipeline {

namespace fs = std::filesystem;

namespace {

// Removes the scratch directory however the measurement ends.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// log-softmax in double.
std::vector<double> LogSoftmax(const std::vector<float>& logits) {
  double max = -INFINITY;
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_z = max + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_z;
  return out;
}

}  // namespace

nlohmann::json FunctionalRetention::ToJson() const {
  return {{"prompts", prompts},
          {"positions", positions},
          {"mean_kl", mean_kl},
          {"max_kl", max_kl},
          {"generated_tokens", generated},
          {"greedy_agreement", greedy_agreement},
          {"mean_first_divergence", first_divergence}};
}

StatusOr<FunctionalRetention> MeasureFunctionalRetention(const RetentionOptions& o,
                                                         Progress* progress) {
  if (o.prompts == 0) return InvalidArgument("--prompts must be at least 1");
  fs::path data = o.data_dir.empty() ? fs::path() : fs::path(o.data_dir);
  if (data.empty()) {
    const char* env = std::getenv("RVEC_DATA");
    data = (env && *env) ? fs::path(env) : eval::BundledDataDir();
  }
  const fs::path questions_path = data / "gsm8k" / "test.jsonl";
  if (!DataFileExists(questions_path)) return eval::MissingDataError(questions_path, "gsm8k");
  ASSIGN_OR_RETURN(std::vector<eval::Doc> docs, eval::ReadJsonLines(questions_path));

  ScratchDir scratch;
  std::random_device rd;
  scratch.path = fs::temp_directory_path() /
                 fmt::format("rvec-retention-{}-{:08x}", static_cast<long>(getpid()), rd());
  std::error_code ec;
  fs::create_directories(scratch.path, ec);
  if (ec) return IoError("{}: cannot create: {}", scratch.path.string(), ec.message());
  const fs::path with_v = scratch.path / "target_plus_v", with_c = scratch.path / "target_plus_c";
  for (const auto& [vec, out] : {std::pair{o.dense, with_v}, std::pair{o.compact, with_c}}) {
    merge::ApplyOptions ao;
    ao.model = o.target;
    ao.vectors = {{vec, 1.0}};
    ao.out = out;
    ao.threads = o.threads;
    RETURN_IF_ERROR(merge::Apply(ao, nullptr).status());
  }
  EngineOptions eo;
  eo.threads = o.threads;
  eo.max_batch = 16;
  eo.kv_cache_bytes = 256ULL << 20;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> a, Engine::Load(with_v, eo));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> b, Engine::Load(with_c, eo));

  const size_t n = std::min(o.prompts, docs.size());
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < n; ++i) {
    const auto q = docs[i].find("question");
    const std::string text =
        "Question: " + (q != docs[i].end() && q->is_string() ? q->get<std::string>() : "") +
        "\nAnswer:";
    prompts.push_back(a->tokenizer().Encode(text));
  }
  if (progress) progress->SetTotal(n + 2);
  FunctionalRetention r;
  r.prompts = n;
  double kl_sum = 0;
  for (const auto& ids : prompts) {
    ASSIGN_OR_RETURN(auto la, a->Logits(ids, /*all_positions=*/true));
    ASSIGN_OR_RETURN(auto lb, b->Logits(ids, /*all_positions=*/true));
    for (size_t p = 0; p < la.size() && p < lb.size(); ++p) {
      const auto pa = LogSoftmax(la[p]), pb = LogSoftmax(lb[p]);
      double kl = 0;
      for (size_t v = 0; v < pa.size() && v < pb.size(); ++v) {
        kl += std::exp(pa[v]) * (pa[v] - pb[v]);
      }
      kl = std::max(kl, 0.0);
      kl_sum += kl;
      r.max_kl = std::max(r.max_kl, kl);
      ++r.positions;
    }
    if (progress) progress->Advance(1);
  }
  r.mean_kl = r.positions ? kl_sum / static_cast<double>(r.positions) : 0.0;

  GenerateOptions go;
  go.max_new_tokens = static_cast<int>(o.gen_tokens);
  go.temperature = 0.0f;
  ASSIGN_OR_RETURN(auto ga, a->GenerateBatch(prompts, go, nullptr, nullptr));
  if (progress) progress->Advance(1);
  ASSIGN_OR_RETURN(auto gb, b->GenerateBatch(prompts, go, nullptr, nullptr));
  if (progress) progress->Advance(1);
  uint64_t agree = 0;
  double first_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto& ta = ga[i].tokens;
    const auto& tb = gb[i].tokens;
    const size_t len = std::max(ta.size(), tb.size());
    size_t first = len;
    for (size_t t = 0; t < len; ++t) {
      const bool same = t < ta.size() && t < tb.size() && ta[t] == tb[t];
      agree += same;
      if (!same && first == len) first = t;
    }
    r.generated += len;
    first_sum += static_cast<double>(first);
  }
  r.greedy_agreement = r.generated ? static_cast<double>(agree) / r.generated : 1.0;
  r.first_divergence = n ? first_sum / static_cast<double>(n) : 0.0;
  return r;
}

}  // namespace rvec::pipeline
