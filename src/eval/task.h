// Evaluation tasks as lm-evaluation-harness defines them: documents, prompts, filters, metrics,
// groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace rvec {
class ChatTemplate;
}

namespace rvec::eval {

using Doc = nlohmann::json;

// One message of lm-eval's `build_qa_turn`: the chat role and content, plus the delimiter that is
// appended only when the prompt is rendered as plain text (target or few-shot delimiter).
struct PromptTurn {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
  std::string delimiter;
};

// A prompt before rendering: [system] + shots as (user, assistant) turns + the test doc's user
// turn (+ an assistant turn holding the task's gen_prefix, if any).
struct StructuredPrompt {
  std::vector<PromptTurn> turns;
  // Plain text: every turn's content + delimiter, concatenated (lm-eval without a chat template).
  std::string PlainText() const;
  // The chat messages [{"role","content"}] (fewshot_as_multiturn = true).
  nlohmann::json Messages() const;
  // lm-eval's multiturn_to_singleturn: shots and test doc collapsed into one user message.
  nlohmann::json SingleTurnMessages() const;
  bool ends_with_assistant_prefix() const {
    return !turns.empty() && turns.back().role == "assistant";
  }
};

enum class OutputType { kGenerateUntil, kMultipleChoice };

// lm-eval generation_kwargs (do_sample false means greedy, temperature 0).
struct GenerationKwargs {
  std::vector<std::string> until;
  int max_gen_toks = 256;  // lm-eval's model default when the YAML omits it
  double temperature = 0.0;
  double top_p = 1.0;
  bool do_sample = false;
};

// How prompts are rendered: lm-eval's --apply_chat_template / --fewshot_as_multiturn /
// --system_instruction.
struct PromptOptions {
  const ChatTemplate* chat_template = nullptr;  // null: plain text
  bool fewshot_as_multiturn = true;
  std::optional<std::string> system_instruction;
  uint64_t fewshot_seed = 1234;
};

// A rendered request for one doc. Generation tasks have one; multiple-choice one per choice.
struct RenderedPrompt {
  std::string context;                     // the text sent to the model
  std::vector<std::string> continuations;  // multiple choice: target_delimiter + choice
  StructuredPrompt structured;
  std::vector<size_t> fewshot_indices;  // indices into the few-shot pool (for tests / records)
};

// A filter pipeline reduced to one function (lm-eval filter_list entry; repeats are always 1, so
// take_first is implicit). Returns the extracted answer, "[invalid]" style fallbacks included.
struct Filter {
  std::string name;
  std::function<std::string(const std::string& response, const Doc& doc)> apply;
};

// lm-eval exact_match options (metrics.py exact_match_hf_evaluate).
struct ExactMatchOptions {
  std::vector<std::string> regexes_to_ignore;  // Python `re` patterns, applied in order
  bool ignore_case = false;
  bool ignore_punctuation = false;
};

// A per-doc metric of a generation task, computed on (filtered answer, reference).
struct GenerationMetric {
  std::string name;  // "exact_match", "pass@1", ...
  bool higher_is_better = true;
  std::function<StatusOr<double>(const std::string& prediction, const std::string& reference,
                                 const Doc& doc)>
      score;
};

// Everything lm-eval's YAML says about a task. Tasks are built by filling one of these.
struct TaskConfig {
  std::string name;     // "gsm8k", "bbh_cot_fewshot_boolean_expressions"
  std::string version;  // metadata.version, as lm-eval prints it ("3.0")
  std::string dataset;  // data folder name, for error messages and `rvec data pull`
  OutputType output_type = OutputType::kGenerateUntil;

  std::string description;  // BBH: the task sentence + "\n\n"
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  std::string gen_prefix;  // start of the assistant turn (humaneval_instruct); usually empty
  // A per-doc gen_prefix (lm-eval renders gen_prefix as a template of the test doc); overrides
  // gen_prefix when set.
  std::function<std::string(const Doc&)> doc_to_gen_prefix;

  std::function<std::string(const Doc&)> doc_to_text;
  std::function<std::string(const Doc&)> doc_to_target;  // generation reference / shot answer
  // Few-shot overrides (gsm8k_cot shots carry their own "target" field).
  std::function<std::string(const Doc&)> fewshot_doc_to_text;
  std::function<std::string(const Doc&)> fewshot_doc_to_target;
  std::string fewshot_target_delimiter = "\x01";  // "\x01" = same as target_delimiter
  // Multiple choice.
  std::function<std::vector<std::string>(const Doc&)> doc_to_choice;
  std::function<size_t(const Doc&)> doc_to_gold;

  int num_fewshot = 0;
  enum class Sampler { kFirstN, kRandom } sampler = Sampler::kRandom;
  bool fewshot_from_test_split = false;  // sample n+1 and drop the test doc itself (gsm_plus)

  GenerationKwargs generation;
  std::vector<Filter> filters;  // generation tasks; at least one
  std::vector<GenerationMetric> metrics;

  // Reads the test docs and the few-shot pool from a data directory.
  std::function<Status(const std::filesystem::path& data_dir, std::vector<Doc>* test_docs,
                       std::vector<Doc>* fewshot_docs)>
      load;
  // Optional: completes the config from the data directory before `load` (BBH reads its task
  // description from cot-prompts/).
  std::function<Status(const std::filesystem::path& data_dir, TaskConfig* config)> configure;
  // Optional: whether two filtered answers count as the same vote in maj@K (--samples K). Unset:
  // string equality. Math tasks set their answer equivalence so "1/2" and "0.5" vote together.
  std::function<bool(const std::string& a, const std::string& b, const Doc& doc)> same_answer;
  // Optional: switches the prompt (and its stop strings) to a named form, --prompt-style ("" =
  // the task's default); `chat` says whether a chat template renders it. Tasks without it ignore
  // the flag (the math tasks offer the Qwen2.5-Math prompt types).
  std::function<Status(const std::string& style, bool chat, TaskConfig* config)> apply_prompt_style;
};

// Scores of one doc: "metric,filter" -> value, and what each filter extracted.
// With K > 1 samples (--samples K), `metrics` holds the per-doc aggregates (EvalTask::MetricKeys
// with K: "metric,filter" is the mean over samples, plus avg@K / pass@k / maj@K keys), `filtered`
// is sample 0's, and the per-sample values are in `sample_metrics` / `sample_filtered`.
struct DocScore {
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> filtered;  // filter name -> extracted answer
  std::string target;                           // reference as lm-eval shows it
  nlohmann::json extra;  // multiple choice: loglikelihoods, chosen index, ...
  std::vector<std::map<std::string, double>> sample_metrics = {};  // K > 1: per sample
  std::vector<std::map<std::string, std::string>> sample_filtered = {};
  std::map<std::string, std::string> majority = {};  // K > 1: filter -> the maj@K answer
};

// The model's answer to one doc's requests.
struct DocResponse {
  std::string generation;  // generate_until (sample 0 with --samples K)
  // Initialised so that a response can be written as {"text"} alone.
  std::vector<double> loglikelihoods = {};  // multiple choice, per choice
  std::vector<bool> is_greedy = {};         // multiple choice, per choice
  // Samples 1..K-1 of a generation task run with --samples K; empty for one sample.
  std::vector<std::string> more_generations = {};

  size_t num_samples() const { return 1 + more_generations.size(); }
  const std::string& sample(size_t s) const {
    return s == 0 ? generation : more_generations[s - 1];
  }
};

class EvalTask {
 public:
  explicit EvalTask(TaskConfig config) : config_(std::move(config)) {}

  const TaskConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }

  // --prompt-style (see TaskConfig::apply_prompt_style) and --max-gen-tokens, applied before
  // BuildPrompts.
  Status SetPromptStyle(const std::string& style, bool chat) {
    return config_.apply_prompt_style ? config_.apply_prompt_style(style, chat, &config_)
                                      : OkStatus();
  }
  void SetMaxGenTokens(int max_gen_toks) { config_.generation.max_gen_toks = max_gen_toks; }

  // Loads docs (idempotent). A missing data set is a NotFound naming the file and `rvec data pull`.
  Status Load(const std::filesystem::path& data_dir);
  bool loaded() const { return loaded_; }
  size_t size() const { return test_docs_.size(); }
  const Doc& doc(size_t i) const { return test_docs_[i]; }
  const std::vector<Doc>& fewshot_docs() const { return fewshot_docs_; }

  // Prompts of docs [0, limit) in dataset order. lm-eval seeds ONE random.Random(seed) per task
  // and advances it doc after doc, so prompts must always be built from doc 0 in order.
  StatusOr<std::vector<RenderedPrompt>> BuildPrompts(size_t limit,
                                                     const PromptOptions& options) const;

  // The reference string of a doc (generation) or the gold choice text (multiple choice).
  std::string Target(size_t doc_index) const;

  // Applies filters and metrics (generation) or acc/acc_norm (multiple choice). A generation
  // response with K > 1 samples is scored sample by sample and summarised (see DocScore).
  StatusOr<DocScore> Score(size_t doc_index, const DocResponse& response) const;

  // Metric keys reported, "metric,filter" ("exact_match,strict-match", "acc,none"). With
  // `samples` K > 1 (generation tasks), per metric M and filter F: "M,F" (avg@K, the mean over
  // samples), then "avg@K,F", "pass@k,F" for k = 2, 4, 8, ... below K and k = K, and "maj@K,F";
  // metrics after the first prefix these names with "M_" ("f1_pass@4,none").
  std::vector<std::string> MetricKeys(size_t samples = 1) const;
  bool HigherIsBetter(const std::string& metric) const;

 private:
  TaskConfig config_;
  std::vector<Doc> test_docs_;
  std::vector<Doc> fewshot_docs_;
  bool loaded_ = false;
};

// A group micro-averages (weight_by_size) one "metric,filter" over its subtasks.
struct TaskGroup {
  std::string name;
  std::string version;
  std::vector<std::string> subtasks;
  std::vector<std::string> aggregate_metrics;  // "exact_match,get-answer"
};

// Name -> task factory / group. Built-in tasks register on first use.
class TaskRegistry {
 public:
  static TaskRegistry& Global();

  void AddTask(const std::string& name, std::function<TaskConfig()> factory);
  void AddGroup(TaskGroup group);

  bool HasTask(const std::string& name) const;
  const TaskGroup* FindGroup(const std::string& name) const;
  StatusOr<std::unique_ptr<EvalTask>> Create(const std::string& name) const;
  std::vector<std::string> TaskNames() const;   // leaf tasks, sorted
  std::vector<std::string> GroupNames() const;  // sorted

 private:
  std::map<std::string, std::function<TaskConfig()>> tasks_;
  std::map<std::string, TaskGroup> groups_;
};

// Registration hooks called by TaskRegistry::Global() (one per task family file in tasks/; static
// registration objects would be dropped by the static-library link). A new family declares its
// hook here and adds one call in TaskRegistry::Global() (task.cc).
void RegisterGsm8kTasks(TaskRegistry& registry);       // tasks/gsm8k.cc
void RegisterSciqTasks(TaskRegistry& registry);        // tasks/sciq.cc
void RegisterBbhTasks(TaskRegistry& registry);         // tasks/bbh.cc
void RegisterHumanEvalTasks(TaskRegistry& registry);   // tasks/humaneval.cc
void RegisterRobustnessTasks(TaskRegistry& registry);  // tasks/robustness.cc
void RegisterMathTasks(TaskRegistry& registry);        // tasks/math.cc

// A user's --tasks list resolved into leaf tasks (in order, de-duplicated) and the groups named.
struct ResolvedTasks {
  std::vector<std::string> leaves;
  std::vector<const TaskGroup*> groups;
};
StatusOr<ResolvedTasks> ResolveTaskList(const std::vector<std::string>& names);

// Shared building blocks for task definitions.
// lm-eval exact_match on (prediction, reference) with the given options: 1.0 or 0.0.
StatusOr<double> ExactMatch(const std::string& prediction, const std::string& reference,
                            const ExactMatchOptions& options);
GenerationMetric ExactMatchMetric(ExactMatchOptions options);
// lm-eval RegexFilter: findall, pick group_select (negative from the end), first non-empty group of
// a tuple, strip; "[invalid]" when nothing matches. The pattern is compiled once.
Filter RegexFilter(std::string name, const std::string& pattern, int group_select,
                   std::string fallback = "[invalid]");
// take_first alone: the whole raw generation.
Filter TakeFirstFilter(std::string name);

// Data helpers: JSON Lines / JSON array files (plain, or FILE.gz beside the named path) with clear
// errors naming the file and line.
StatusOr<std::vector<Doc>> ReadJsonLines(const std::filesystem::path& path);
// The one JSON Lines reader (data sets, samples files, saved responses): calls fn with every
// non-blank line parsed as a JSON object and its 1-based line number. A line that is not an object
// is an error "LABEL: line N is not a JSON object" -- unless it is the unterminated last line and
// `truncated` is given (a write interrupted by a kill), which sets *truncated and stops there.
Status ForEachJsonLine(std::string_view text, const std::string& label,
                       const std::function<Status(Doc&&, size_t line_no)>& fn,
                       bool* truncated = nullptr);
// All lines of ForEachJsonLine as a vector.
StatusOr<std::vector<Doc>> ParseJsonLines(std::string_view text, const std::string& label);
StatusOr<std::vector<Doc>> ReadJsonArray(const std::filesystem::path& path,
                                         const std::string& key = "");
// Error for a missing data file: names the file and how to get it.
Status MissingDataError(const std::filesystem::path& path, const std::string& dataset);

}  // namespace rvec::eval
