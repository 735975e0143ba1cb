// lm-eval's ConfigurableTask mechanics: prompt assembly (fewshot_context / build_qa_turn), seeded
// few-shot sampling, filters, exact_match, acc/acc_norm, and the task registry.
#include "eval/task.h"

#include <algorithm>
#include <set>

#include "base/fs.h"
#include "eval/data.h"
#include "eval/python/pyrandom.h"
#include "eval/python/pyre.h"
#include "eval/sandbox/sandbox.h"
#include "eval/stats.h"
#include "text/chat_template.h"

namespace rvec::eval {

namespace {

bool FirstIsSpace(const std::string& s) { return PyLStrip(s).size() != s.size(); }
bool LastIsSpace(const std::string& s) { return PyRStrip(s).size() != s.size(); }

// lm-eval api/utils.py maybe_delimit.
std::string MaybeDelimit(const std::string& prefix, const std::string& suffix,
                         const std::string& delimiter) {
  if (prefix.empty()) return suffix;
  if (suffix.empty()) return prefix;
  if (LastIsSpace(prefix) || FirstIsSpace(suffix)) return prefix + suffix;
  return prefix + delimiter + suffix;
}

// lm-eval requires_delimiter(q, gen_prefix): a delimiter is needed when neither side brings
// whitespace.
bool RequiresDelimiter(const std::string& q, const std::string& gen_prefix) {
  return !(LastIsSpace(q) || FirstIsSpace(gen_prefix));
}

// lm-eval build_qa_turn.
void BuildQaTurn(const std::string& q, const std::string& answer, const std::string& gen_prefix,
                 const std::string& tgt_delim, const std::string& few_delim,
                 std::vector<PromptTurn>* turns) {
  const bool has_answer = !answer.empty();
  std::string delim;
  if ((has_answer && gen_prefix.empty()) ||
      (!gen_prefix.empty() && RequiresDelimiter(q, gen_prefix))) {
    delim = tgt_delim;
  }
  turns->push_back({"user", q, delim});
  if (has_answer) {
    turns->push_back({"assistant", MaybeDelimit(gen_prefix, answer, " "), few_delim});
  } else if (!gen_prefix.empty()) {
    turns->push_back({"assistant", gen_prefix, ""});
  }
}

}  // namespace

// ---- StructuredPrompt ---------------------------------------------------------------------------

std::string StructuredPrompt::PlainText() const {
  std::string out;
  for (const auto& t : turns) out += t.content + t.delimiter;
  return out;
}

nlohmann::json StructuredPrompt::Messages() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : turns) out.push_back({{"role", t.role}, {"content", t.content}});
  return out;
}

nlohmann::json StructuredPrompt::SingleTurnMessages() const {
  // lm-eval multiturn_to_singleturn.
  std::vector<PromptTurn> rest = turns;
  nlohmann::json out = nlohmann::json::array();
  if (!rest.empty() && rest.front().role == "system") {
    out.push_back({{"role", "system"}, {"content", rest.front().content}});
    rest.erase(rest.begin());
  }
  if (rest.empty()) return out;
  std::optional<PromptTurn> final_assistant;
  if (rest.back().role == "assistant") {
    final_assistant = rest.back();
    rest.pop_back();
  }
  if (!rest.empty()) rest.back().delimiter.clear();
  std::string user;
  for (const auto& t : rest) user += t.content + t.delimiter;
  out.push_back({{"role", "user"}, {"content", user}});
  if (final_assistant) {
    out.push_back({{"role", "assistant"}, {"content", final_assistant->content}});
  }
  return out;
}

// ---- EvalTask
// -------------------------------------------------------------------------------------

Status EvalTask::Load(const std::filesystem::path& data_dir) {
  if (loaded_) return OkStatus();
  if (!config_.load) return Internal("task {} has no loader", config_.name);
  if (config_.configure) {
    RETURN_IF_ERROR(config_.configure(data_dir, &config_).WithContext("task " + config_.name));
  }
  RETURN_IF_ERROR(
      config_.load(data_dir, &test_docs_, &fewshot_docs_).WithContext("task " + config_.name));
  if (config_.num_fewshot > 0 && fewshot_docs_.size() < static_cast<size_t>(config_.num_fewshot)) {
    return DataLoss("task {}: {} few-shot docs, {} needed", config_.name, fewshot_docs_.size(),
                    config_.num_fewshot);
  }
  loaded_ = true;
  return OkStatus();
}

std::string EvalTask::Target(size_t doc_index) const {
  const Doc& d = test_docs_[doc_index];
  if (config_.output_type == OutputType::kMultipleChoice) {
    const auto choices = config_.doc_to_choice(d);
    const size_t gold = config_.doc_to_gold(d);
    return gold < choices.size() ? choices[gold] : std::string();
  }
  return config_.doc_to_target(d);
}

StatusOr<std::vector<RenderedPrompt>> EvalTask::BuildPrompts(size_t limit,
                                                             const PromptOptions& options) const {
  if (!loaded_) return FailedPrecondition("task {} used before Load()", config_.name);
  limit = std::min(limit, test_docs_.size());
  const bool chat = options.chat_template != nullptr;
  PyRandom rnd(static_cast<int64_t>(options.fewshot_seed));
  const auto& shot_text =
      config_.fewshot_doc_to_text ? config_.fewshot_doc_to_text : config_.doc_to_text;
  const auto& shot_target =
      config_.fewshot_doc_to_target ? config_.fewshot_doc_to_target : config_.doc_to_target;
  const std::string shot_delim = config_.fewshot_target_delimiter == "\x01"
                                     ? config_.target_delimiter
                                     : config_.fewshot_target_delimiter;
  const std::string system_prompt = MaybeDelimit(options.system_instruction.value_or(""),
                                                 config_.description, config_.fewshot_delimiter);
  std::vector<RenderedPrompt> out(limit);
  for (size_t i = 0; i < limit; ++i) {
    const Doc& doc = test_docs_[i];
    const std::string gen_prefix =
        config_.doc_to_gen_prefix ? config_.doc_to_gen_prefix(doc) : config_.gen_prefix;
    RenderedPrompt& rp = out[i];
    auto& turns = rp.structured.turns;
    if (!system_prompt.empty()) turns.push_back({"system", system_prompt, ""});
    const size_t n = static_cast<size_t>(std::max(0, config_.num_fewshot));
    if (n > 0) {
      std::vector<size_t> chosen;
      if (config_.sampler == TaskConfig::Sampler::kFirstN) {
        for (size_t k = 0; k < n; ++k) chosen.push_back(k);
      } else if (config_.fewshot_from_test_split) {
        // ContextSampler.sample with eval_doc: n+1 drawn, docs equal to the test doc removed.
        for (size_t j : rnd.Sample(fewshot_docs_.size(), n + 1)) {
          if (fewshot_docs_[j] != doc && chosen.size() < n) chosen.push_back(j);
        }
      } else {
        chosen = rnd.Sample(fewshot_docs_.size(), n);
      }
      for (size_t j : chosen) {
        const Doc& shot = fewshot_docs_[j];
        BuildQaTurn(shot_text(shot), shot_target(shot), gen_prefix, shot_delim,
                    config_.fewshot_delimiter, &turns);
      }
      rp.fewshot_indices = std::move(chosen);
    }
    BuildQaTurn(config_.doc_to_text(doc), "", gen_prefix, config_.target_delimiter, "", &turns);
    if (chat) {
      ChatTemplateInputs in;
      in.messages = options.fewshot_as_multiturn ? rp.structured.Messages()
                                                 : rp.structured.SingleTurnMessages();
      const bool prefix = rp.structured.ends_with_assistant_prefix();
      in.add_generation_prompt = !prefix;
      auto rendered = options.chat_template->Render(in);
      if (!rendered.ok()) {
        return rendered.status().WithContext(
            fmt::format("task {} doc {}: chat template", config_.name, i));
      }
      rp.context = std::move(rendered).value();
      if (prefix) {
        // transformers continue_final_message: cut right after the final message's content.
        const std::string final_content = PyStrip(turns.back().content);
        const size_t at = rp.context.rfind(final_content);
        if (at == std::string::npos) {
          return FailedPrecondition(
              "task {} doc {}: the chat template dropped the assistant prefix", config_.name, i);
        }
        rp.context.resize(at + final_content.size());
      }
    } else {
      rp.context = rp.structured.PlainText();
    }
    if (config_.output_type == OutputType::kMultipleChoice) {
      // Under a chat template lm-eval drops the target delimiter (unless a gen_prefix is used).
      const std::string delim = (chat && gen_prefix.empty()) ? "" : config_.target_delimiter;
      for (const auto& c : config_.doc_to_choice(doc)) rp.continuations.push_back(delim + c);
    }
  }
  return out;
}

namespace {

// The k of the pass@k keys for K samples: 2, 4, 8, ... below K, then K (pass@1 is avg@K).
std::vector<size_t> PassAtKs(size_t samples) {
  std::vector<size_t> ks;
  for (size_t k = 2; k < samples; k *= 2) ks.push_back(k);
  ks.push_back(samples);
  return ks;
}

// The per-doc summary of K scored samples (DocScore's comment; names as MetricKeys). A sample
// counts as correct for pass@k when its metric is 1; maj@K is the score of the first sample
// whose answer won the vote, so a vote never re-runs the metric (or a program).
Status SummarizeSamples(const TaskConfig& config, const Doc& doc, DocScore* score) {
  const size_t k = score->sample_metrics.size();
  for (const auto& filter : config.filters) {
    std::vector<std::string> answers;
    for (const auto& f : score->sample_filtered) answers.push_back(f.at(filter.name));
    const size_t winner = MajorityIndex(answers, [&](const std::string& a, const std::string& b) {
      return config.same_answer ? config.same_answer(a, b, doc) : a == b;
    });
    score->majority[filter.name] = answers[winner];
    for (size_t m = 0; m < config.metrics.size(); ++m) {
      const std::string& name = config.metrics[m].name;
      const std::string prefix = m == 0 ? "" : name + "_";
      const std::string key = name + "," + filter.name;
      std::vector<double> values;
      size_t correct = 0;
      for (const auto& sm : score->sample_metrics) {
        values.push_back(sm.at(key));
        if (values.back() == 1.0) ++correct;
      }
      const std::string f = "," + filter.name;
      score->metrics[key] = Mean(values);
      score->metrics[fmt::format("{}avg@{}{}", prefix, k, f)] = Mean(values);
      for (size_t kk : PassAtKs(k)) {
        ASSIGN_OR_RETURN(score->metrics[fmt::format("{}pass@{}{}", prefix, kk, f)],
                         PassAtK(static_cast<int64_t>(k), static_cast<int64_t>(correct),
                                 static_cast<int64_t>(kk)));
      }
      score->metrics[fmt::format("{}maj@{}{}", prefix, k, f)] = values[winner];
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<DocScore> EvalTask::Score(size_t doc_index, const DocResponse& response) const {
  const Doc& doc = test_docs_[doc_index];
  DocScore score;
  if (config_.output_type == OutputType::kMultipleChoice) {
    const auto choices = config_.doc_to_choice(doc);
    const size_t gold = config_.doc_to_gold(doc);
    if (response.loglikelihoods.size() != choices.size()) {
      return Internal("task {} doc {}: {} log-likelihoods for {} choices", config_.name, doc_index,
                      response.loglikelihoods.size(), choices.size());
    }
    // np.argmax: the first maximum wins ties.
    size_t best = 0, best_norm = 0;
    std::vector<double> norm(choices.size());
    for (size_t c = 0; c < choices.size(); ++c) {
      norm[c] = response.loglikelihoods[c] / static_cast<double>(PyLen(choices[c]));
      if (response.loglikelihoods[c] > response.loglikelihoods[best]) best = c;
      if (norm[c] > norm[best_norm]) best_norm = c;
    }
    score.metrics["acc,none"] = best == gold ? 1.0 : 0.0;
    score.metrics["acc_norm,none"] = best_norm == gold ? 1.0 : 0.0;
    score.target = gold < choices.size() ? choices[gold] : "";
    score.filtered["none"] = choices[best];
    score.extra = {{"gold", gold},
                   {"pred", best},
                   {"pred_norm", best_norm},
                   {"loglikelihoods", response.loglikelihoods}};
    if (!response.is_greedy.empty()) score.extra["is_greedy"] = response.is_greedy;
    return score;
  }
  score.target = config_.doc_to_target(doc);
  const size_t k = response.num_samples();
  for (size_t s = 0; s < k; ++s) {
    std::map<std::string, double> metrics;
    std::map<std::string, std::string> filtered;
    for (const auto& filter : config_.filters) {
      std::string answer = filter.apply(response.sample(s), doc);
      for (const auto& metric : config_.metrics) {
        ASSIGN_OR_RETURN(double v, metric.score(answer, score.target, doc));
        metrics[metric.name + "," + filter.name] = v;
      }
      filtered[filter.name] = std::move(answer);
    }
    if (k == 1) {
      score.metrics = std::move(metrics);
      score.filtered = std::move(filtered);
      return score;
    }
    score.sample_metrics.push_back(std::move(metrics));
    score.sample_filtered.push_back(std::move(filtered));
  }
  score.filtered = score.sample_filtered[0];
  RETURN_IF_ERROR(SummarizeSamples(config_, doc, &score));
  return score;
}

std::vector<std::string> EvalTask::MetricKeys(size_t samples) const {
  std::vector<std::string> keys;
  if (config_.output_type == OutputType::kMultipleChoice) return {"acc,none", "acc_norm,none"};
  for (size_t m = 0; m < config_.metrics.size(); ++m) {
    const std::string& name = config_.metrics[m].name;
    const std::string prefix = m == 0 ? "" : name + "_";
    for (const auto& filter : config_.filters) {
      const std::string f = "," + filter.name;
      keys.push_back(name + f);
      if (samples <= 1) continue;
      keys.push_back(fmt::format("{}avg@{}{}", prefix, samples, f));
      for (size_t kk : PassAtKs(samples)) keys.push_back(fmt::format("{}pass@{}{}", prefix, kk, f));
      keys.push_back(fmt::format("{}maj@{}{}", prefix, samples, f));
    }
  }
  return keys;
}

bool EvalTask::HigherIsBetter(const std::string& metric) const {
  for (const auto& m : config_.metrics) {
    if (m.name == metric) return m.higher_is_better;
  }
  return true;
}

// ---- filters and metrics ------------------------------------------------------------------------

namespace {

// exact_match after lm-eval's normalisations, with the regexes_to_ignore already compiled.
StatusOr<double> ExactMatchCompiled(std::string p, std::string r,
                                    const std::vector<PyRegex>& regexes_to_ignore,
                                    const ExactMatchOptions& options) {
  for (const auto& re : regexes_to_ignore) {
    ASSIGN_OR_RETURN(p, re.Sub(p, ""));
    ASSIGN_OR_RETURN(r, re.Sub(r, ""));
  }
  if (options.ignore_case) {
    p = PyLower(p);
    r = PyLower(r);
  }
  if (options.ignore_punctuation) {
    p = RemoveAsciiPunctuation(p);
    r = RemoveAsciiPunctuation(r);
  }
  return p == r ? 1.0 : 0.0;
}

}  // namespace

StatusOr<double> ExactMatch(const std::string& prediction, const std::string& reference,
                            const ExactMatchOptions& options) {
  std::vector<PyRegex> compiled;
  for (const auto& pattern : options.regexes_to_ignore) {
    ASSIGN_OR_RETURN(PyRegex re, PyRegex::Compile(pattern));
    compiled.push_back(std::move(re));
  }
  return ExactMatchCompiled(prediction, reference, compiled, options);
}

GenerationMetric ExactMatchMetric(ExactMatchOptions options) {
  // Compile once; the patterns are fixed task constants.
  auto compiled = std::make_shared<std::vector<PyRegex>>();
  for (const auto& p : options.regexes_to_ignore) {
    auto re = PyRegex::Compile(p);
    if (re.ok()) compiled->push_back(std::move(re).value());
  }
  GenerationMetric m;
  m.name = "exact_match";
  m.score = [options, compiled](const std::string& prediction, const std::string& reference,
                                const Doc&) -> StatusOr<double> {
    if (compiled->size() != options.regexes_to_ignore.size()) {
      return ExactMatch(prediction, reference, options);  // reports the compile error
    }
    return ExactMatchCompiled(prediction, reference, *compiled, options);
  };
  return m;
}

Filter RegexFilter(std::string name, const std::string& pattern, int group_select,
                   std::string fallback) {
  auto compiled = PyRegex::Compile(pattern);
  auto re = std::make_shared<PyRegex>(compiled.ok() ? std::move(compiled).value() : PyRegex());
  const bool ok = compiled.ok();
  Filter f;
  f.name = std::move(name);
  f.apply = [re, ok, group_select, fallback](const std::string& response,
                                             const Doc&) -> std::string {
    if (!ok) return fallback;
    auto matches = re->FindAll(response);
    if (!matches.ok() || matches->empty()) return fallback;
    const long n = static_cast<long>(matches->size());
    long idx = group_select < 0 ? n + group_select : group_select;
    if (idx < 0 || idx >= n) return fallback;  // Python would raise IndexError
    const auto& m = (*matches)[static_cast<size_t>(idx)];
    std::string s;
    if (m.size() == 1) {
      s = m[0];
    } else {
      bool found = false;
      for (const auto& g : m) {
        if (!g.empty()) {
          s = g;
          found = true;
          break;
        }
      }
      if (!found) return fallback;
    }
    return PyStrip(s);
  };
  return f;
}

Filter TakeFirstFilter(std::string name) {
  Filter f;
  f.name = std::move(name);
  f.apply = [](const std::string& response, const Doc&) { return response; };
  return f;
}

// ---- data
// -----------------------------------------------------------------------------------------

Status MissingDataError(const std::filesystem::path& path, const std::string& dataset) {
  std::string bundled_hint;
  const std::filesystem::path bundled = BundledDataDir();
  std::error_code ec;
  if (!bundled.empty() && std::filesystem::is_directory(bundled / dataset, ec)) {
    bundled_hint =
        fmt::format(". A copy of its test set ships with rvec: --data-dir {}", bundled.string());
  }
  return NotFound(
      "data set '{}' not found: {} does not exist. Download it with `rvec data pull {}` (into the "
      "default data directory, or --data-dir DIR), or point --data-dir / RVEC_DATA at a directory "
      "holding {}/{}",
      dataset, path.string(), dataset, dataset, bundled_hint);
}

StatusOr<std::vector<Doc>> ReadJsonLines(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadDataFile(path));
  return ParseJsonLines(text, path.string());
}

Status ForEachJsonLine(std::string_view text, const std::string& label,
                       const std::function<Status(Doc&&, size_t line_no)>& fn, bool* truncated) {
  if (truncated) *truncated = false;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    const bool unterminated = end == std::string::npos;
    if (unterminated) end = text.size();
    ++line_no;
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Doc d = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (d.is_discarded() || !d.is_object()) {
      if (unterminated && truncated) {
        *truncated = true;
        return OkStatus();
      }
      return DataLoss("{}: line {} is not a JSON object", label, line_no);
    }
    RETURN_IF_ERROR(fn(std::move(d), line_no));
  }
  return OkStatus();
}

StatusOr<std::vector<Doc>> ParseJsonLines(std::string_view text, const std::string& label) {
  std::vector<Doc> docs;
  RETURN_IF_ERROR(ForEachJsonLine(text, label, [&](Doc&& d, size_t) {
    docs.push_back(std::move(d));
    return OkStatus();
  }));
  return docs;
}

StatusOr<std::vector<Doc>> ReadJsonArray(const std::filesystem::path& path,
                                         const std::string& key) {
  ASSIGN_OR_RETURN(std::string text, ReadDataFile(path));
  Doc d = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (d.is_discarded()) return DataLoss("{}: not valid JSON", path.string());
  if (!key.empty()) {
    if (!d.is_object() || !d.contains(key)) {
      return DataLoss("{}: expected an object with key '{}'", path.string(), key);
    }
    d = d[key];
  }
  if (!d.is_array()) return DataLoss("{}: expected a JSON array", path.string());
  std::vector<Doc> docs;
  for (auto& e : d) {
    if (!e.is_object()) return DataLoss("{}: array element is not an object", path.string());
    docs.push_back(std::move(e));
  }
  return docs;
}

// ---- registry
// -------------------------------------------------------------------------------------

TaskRegistry& TaskRegistry::Global() {
  static TaskRegistry* registry = [] {
    auto* r = new TaskRegistry();
    RegisterGsm8kTasks(*r);
    RegisterSciqTasks(*r);
    RegisterBbhTasks(*r);
    RegisterHumanEvalTasks(*r);
    RegisterRobustnessTasks(*r);
    RegisterMathTasks(*r);
    return r;
  }();
  return *registry;
}

void TaskRegistry::AddTask(const std::string& name, std::function<TaskConfig()> factory) {
  tasks_[name] = std::move(factory);
}
void TaskRegistry::AddGroup(TaskGroup group) {
  std::string name = group.name;
  groups_[name] = std::move(group);
}
bool TaskRegistry::HasTask(const std::string& name) const { return tasks_.count(name) > 0; }
const TaskGroup* TaskRegistry::FindGroup(const std::string& name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

StatusOr<std::unique_ptr<EvalTask>> TaskRegistry::Create(const std::string& name) const {
  auto it = tasks_.find(name);
  if (it == tasks_.end()) return NotFound("unknown task '{}'", name);
  return std::make_unique<EvalTask>(it->second());
}

std::vector<std::string> TaskRegistry::TaskNames() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : tasks_) out.push_back(k);
  return out;
}
std::vector<std::string> TaskRegistry::GroupNames() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : groups_) out.push_back(k);
  return out;
}

StatusOr<ResolvedTasks> ResolveTaskList(const std::vector<std::string>& names) {
  const TaskRegistry& reg = TaskRegistry::Global();
  ResolvedTasks out;
  std::set<std::string> seen;
  for (const auto& raw : names) {
    const std::string name = PyStrip(raw);
    if (name.empty()) continue;
    if (const TaskGroup* g = reg.FindGroup(name)) {
      out.groups.push_back(g);
      for (const auto& s : g->subtasks) {
        if (seen.insert(s).second) out.leaves.push_back(s);
      }
    } else if (reg.HasTask(name)) {
      if (seen.insert(name).second) out.leaves.push_back(name);
    } else {
      std::string known;
      for (const auto& g : reg.GroupNames()) known += (known.empty() ? "" : ", ") + g;
      for (const auto& t : reg.TaskNames()) {
        if (t.find("bbh_") != 0) known += ", " + t;
      }
      return InvalidArgument("unknown task '{}'; known: {} (and each bbh_*_<subtask>)", name,
                             known);
    }
  }
  if (out.leaves.empty()) return InvalidArgument("no tasks given");
  return out;
}

}  // namespace rvec::eval
