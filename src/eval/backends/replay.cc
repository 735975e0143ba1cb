// The replay backend: answers requests from saved responses (rvec samples files or plain JSONL), so
// outputs can be re-scored without running a model.
#include <algorithm>
#include <map>
#include <tuple>

#include "base/fs.h"
#include "eval/backend.h"

namespace rvec::eval {

namespace {

using Key = std::tuple<std::string, size_t, size_t>;

class ReplayBackend : public Backend {
 public:
  explicit ReplayBackend(std::filesystem::path path) : path_(std::move(path)) {}

  // A directory means every samples_*.jsonl of a previous run.
  Status Load() {
    if (!std::filesystem::is_directory(path_)) return LoadFile(path_);
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("samples_", 0) == 0 && e.path().extension() == ".jsonl") {
        files.push_back(e.path());
      }
    }
    if (files.empty()) return NotFound("{}: no samples_*.jsonl files", path_.string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) RETURN_IF_ERROR(LoadFile(f));
    return OkStatus();
  }

  Status LoadFile(const std::filesystem::path& file) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(file));
    return ForEachJsonLine(text, file.string(), [&](Doc&& j, size_t line_no) {
      return AddLine(j, file.string() + ":" + std::to_string(line_no));
    });
  }

  // One saved response (a samples line or a plain JSONL record); `where` is FILE:LINE.
  Status AddLine(const Doc& j, const std::string& where) {
    if (!j.contains("task") || !j["task"].is_string() || !j.contains("doc_id") ||
        !j["doc_id"].is_number_unsigned()) {
      return DataLoss("{}: needs \"task\" (string) and \"doc_id\" (integer)", where);
    }
    const std::string task = j["task"];
    const size_t doc = j["doc_id"];
    bool used = false;
    // K samples per doc: an array (rvec's "raw_outputs", or "outputs"), or one line per sample
    // with "sample": s.
    for (const char* k : {"raw_outputs", "outputs"}) {
      if (used || !j.contains(k) || !j[k].is_array()) continue;
      for (size_t s = 0; s < j[k].size(); ++s) {
        if (!j[k][s].is_string()) return DataLoss("{}: {}[{}] is not a string", where, k, s);
        gens_[{task, doc, s}] = j[k][s].get<std::string>();
      }
      used = true;
    }
    for (const char* k : {"raw_output", "output"}) {
      if (!used && j.contains(k) && j[k].is_string()) {
        gens_[{task, doc, j.value("sample", size_t{0})}] = j[k].get<std::string>();
        used = true;
      }
    }
    if (!used && j.contains("loglikelihoods") && j["loglikelihoods"].is_array()) {
      const auto& lls = j["loglikelihoods"];
      for (size_t c = 0; c < lls.size(); ++c) {
        if (!lls[c].is_number())
          return DataLoss("{}: loglikelihoods[{}] is not a number", where, c);
        LoglikelihoodResult r;
        r.logprob = lls[c].get<double>();
        if (j.contains("is_greedy") && j["is_greedy"].is_array() && c < j["is_greedy"].size()) {
          r.is_greedy = j["is_greedy"][c].is_boolean() && j["is_greedy"][c].get<bool>();
        }
        lls_[{task, doc, c}] = r;
      }
      used = true;
    }
    if (!used && j.contains("loglikelihood") && j["loglikelihood"].is_number()) {
      LoglikelihoodResult r;
      r.logprob = j["loglikelihood"].get<double>();
      r.is_greedy = j.value("is_greedy", false);
      lls_[{task, doc, j.value("index", size_t{0})}] = r;
      used = true;
    }
    if (!used) {
      return DataLoss(
          "{}: no response (expected \"raw_output\"/\"output\", \"loglikelihoods\" or "
          "\"loglikelihood\")",
          where);
    }
    return OkStatus();
  }

  std::string Kind() const override { return "replay"; }
  nlohmann::json Config() const override {
    return {{"responses", std::filesystem::absolute(path_).string()}};
  }

  StatusOr<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& requests,
                                                   Progress* progress) override {
    std::vector<GenerationResult> out;
    for (const auto& r : requests) {
      auto it = gens_.find({r.key.task, r.key.doc_id, r.key.index});
      if (it == gens_.end()) {
        return NotFound("{}: no saved generation for task {} doc {} sample {}", path_.string(),
                        r.key.task, r.key.doc_id, r.key.index);
      }
      out.push_back({it->second, ""});
      if (progress) progress->Advance();
    }
    return out;
  }

  StatusOr<std::vector<LoglikelihoodResult>> LogLikelihood(
      const std::vector<LoglikelihoodRequest>& requests, Progress* progress) override {
    std::vector<LoglikelihoodResult> out;
    for (const auto& r : requests) {
      auto it = lls_.find({r.key.task, r.key.doc_id, r.key.index});
      if (it == lls_.end()) {
        return NotFound("{}: no saved log-likelihood for task {} doc {} choice {}", path_.string(),
                        r.key.task, r.key.doc_id, r.key.index);
      }
      out.push_back(it->second);
      if (progress) progress->Advance();
    }
    return out;
  }

 private:
  std::filesystem::path path_;
  std::map<Key, std::string> gens_;
  std::map<Key, LoglikelihoodResult> lls_;
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> MakeReplayBackend(const std::filesystem::path& responses) {
  auto b = std::make_unique<ReplayBackend>(responses);
  RETURN_IF_ERROR(b->Load());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace rvec::eval
