// HumanEval tasks: lm-eval's humaneval.yaml / humaneval_instruct.yaml, executed in the sandbox.
#include "eval/tasks/humaneval.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "base/fs.h"
#include "base/threading.h"

namespace rvec::eval {
namespace {

constexpr const char* kInstructText =
    "Write a solution to the following problem and make sure that it passes the tests:\n"
    "```python\n";
constexpr const char* kInstructPrefix = "Here is the completed function:\n```python\n";

std::string Field(const Doc& d, const char* key) {
  auto it = d.find(key);
  return (it != d.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

struct CodeExecutionState {
  std::mutex mutex;
  CodeExecutionOptions options;
  std::unique_ptr<Sandbox> sandbox;
  bool sandbox_for_current_options = false;
  std::map<std::string, ExecResult> outcomes;  // program text -> result
  std::atomic<size_t> next_slot{0};
};

CodeExecutionState& State() {
  static CodeExecutionState* state = new CodeExecutionState();
  return *state;
}

nlohmann::json RecordOf(const ExecResult& r) {
  nlohmann::json j = {{"outcome", ExecOutcomeName(r.outcome)},
                      {"elapsed_ms", static_cast<int64_t>(r.elapsed_ms + 0.5)}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  return j;
}

StatusOr<ExecResult> RunProgram(const std::string& program) {
  {
    CodeExecutionState& s = State();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.outcomes.find(program);
    if (it != s.outcomes.end()) return it->second;
  }
  ASSIGN_OR_RETURN(const Sandbox* sandbox, CodeExecutionSandbox());
  const size_t slot = State().next_slot.fetch_add(1) % 4096;
  ExecResult r = sandbox->Run(program, slot);
  // Captured output is not needed once judged; keep the cache small.
  r.stdout_text.clear();
  r.stderr_text.clear();
  std::lock_guard<std::mutex> lock(State().mutex);
  State().outcomes[program] = r;
  return r;
}

GenerationMetric PassAt1Metric() {
  GenerationMetric m;
  m.name = "pass@1";
  m.higher_is_better = true;
  m.score = [](const std::string& prediction, const std::string& reference,
               const Doc&) -> StatusOr<double> {
    ASSIGN_OR_RETURN(ExecResult r, RunProgram(prediction + "\n" + reference));
    // One sample per problem (repeats 1): pass@1 = c / n with n = 1.
    return PassAtK(1, r.passed() ? 1 : 0, 1);
  };
  return m;
}

Status RequireCodeExecution(const std::string& task) {
  if (!GetCodeExecutionOptions().allow) {
    return FailedPrecondition(
        "task {} executes model-written Python code to score it; pass --allow-code-execution "
        "to run it (inside a bubblewrap sandbox: no network, read-only system, no access to your "
        "files), like lm-eval's --confirm_run_unsafe_code",
        task);
  }
  ASSIGN_OR_RETURN(const Sandbox* sandbox, CodeExecutionSandbox());
  (void)sandbox;
  return OkStatus();
}

TaskConfig BaseConfig() {
  TaskConfig c;
  c.dataset = "humaneval";
  c.output_type = OutputType::kGenerateUntil;
  c.num_fewshot = 0;
  c.doc_to_target = [](const Doc& d) { return HumanEvalReference(d); };
  c.generation.until = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
  c.generation.max_gen_toks = 1024;
  c.generation.do_sample = false;
  c.generation.temperature = 0.0;
  c.metrics = {PassAt1Metric()};
  c.load = [](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>*) {
    ASSIGN_OR_RETURN(*test, LoadHumanEval(dir));
    return OkStatus();
  };
  return c;
}

// humaneval_instruct's gen_prefix is a per-doc template ("...```python\n{{ prompt }}\n"). It is set
// through TaskConfig::doc_to_gen_prefix when the task interface has that field.
template <typename Config>
bool SetPerDocGenPrefix(Config& c) {
  if constexpr (requires { c.doc_to_gen_prefix; }) {
    c.doc_to_gen_prefix = [](const Doc& d) {
      return std::string(kInstructPrefix) + Field(d, "prompt") + "\n";
    };
    return true;
  } else {
    return false;
  }
}

}  // namespace

void SetCodeExecutionOptions(const CodeExecutionOptions& options) {
  CodeExecutionState& s = State();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.options = options;
  s.sandbox_for_current_options = false;
  s.outcomes.clear();
}

CodeExecutionOptions GetCodeExecutionOptions() {
  std::lock_guard<std::mutex> lock(State().mutex);
  return State().options;
}

StatusOr<const Sandbox*> CodeExecutionSandbox() {
  CodeExecutionState& s = State();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.options.allow) {
    return FailedPrecondition(
        "executing model-written code was not allowed (pass --allow-code-execution)");
  }
  if (!s.sandbox_for_current_options || !s.sandbox) {
    SandboxOptions options;
    options.timeout_s = s.options.timeout_s;
    options.unsafe_no_sandbox = s.options.unsafe_no_sandbox;
    options.lm_eval_guard = true;  // pass/fail as under HF code_eval
    ASSIGN_OR_RETURN(s.sandbox, Sandbox::Create(options));
    s.sandbox_for_current_options = true;
  }
  return static_cast<const Sandbox*>(s.sandbox.get());
}

bool TaskExecutesCode(const TaskConfig& config) {
  for (const auto& m : config.metrics) {
    if (m.name.rfind("pass@", 0) == 0) return true;
  }
  return false;
}

Status PrecomputeCodeExecution(const EvalTask& task, const std::vector<size_t>& doc_ids,
                               const std::vector<DocResponse>& responses, Progress* progress) {
  if (!TaskExecutesCode(task.config())) return OkStatus();
  if (responses.size() != doc_ids.size()) {
    return InvalidArgument("task {}: {} responses for {} doc ids", task.name(), responses.size(),
                           doc_ids.size());
  }
  if (task.config().filters.empty()) return Internal("task {} has no filter", task.name());
  ASSIGN_OR_RETURN(const Sandbox* sandbox, CodeExecutionSandbox());
  std::vector<std::string> programs;
  for (size_t k = 0; k < responses.size(); ++k) {
    const size_t id = doc_ids[k];
    if (id >= task.size()) {
      return InvalidArgument("task {}: doc {} out of range ({} docs)", task.name(), id,
                             task.size());
    }
    // Code tasks have one filter (create_test); the metric runs prediction + "\n" + reference.
    programs.push_back(task.config().filters.front().apply(responses[k].generation, task.doc(id)) +
                       "\n" + task.Target(id));
  }
  size_t jobs = GetCodeExecutionOptions().jobs;
  if (jobs == 0) jobs = DefaultThreadCount();
  std::vector<ExecResult> results = sandbox->RunAll(programs, jobs, progress);
  std::lock_guard<std::mutex> lock(State().mutex);
  for (size_t i = 0; i < programs.size(); ++i) {
    results[i].stdout_text.clear();
    results[i].stderr_text.clear();
    State().outcomes[programs[i]] = std::move(results[i]);
  }
  return OkStatus();
}

nlohmann::json CodeExecutionRecord(const EvalTask& task, size_t doc_index,
                                   const std::string& generation) {
  if (!TaskExecutesCode(task.config()) || task.config().filters.empty() ||
      doc_index >= task.size()) {
    return nullptr;
  }
  const std::string program = task.config().filters.front().apply(generation, task.doc(doc_index)) +
                              "\n" + task.Target(doc_index);
  std::lock_guard<std::mutex> lock(State().mutex);
  auto it = State().outcomes.find(program);
  if (it == State().outcomes.end()) return nullptr;
  return RecordOf(it->second);
}

std::string HumanEvalPrediction(const Doc& doc, const std::string& completion, bool instruct) {
  if (!instruct) return Field(doc, "prompt") + completion;
  const size_t fence = completion.find("```");
  return Field(doc, "prompt") +
         (fence == std::string::npos ? completion : completion.substr(0, fence));
}

std::string HumanEvalReference(const Doc& doc) {
  return Field(doc, "test") + "\ncheck(" + Field(doc, "entry_point") + ")";
}

StatusOr<std::vector<Doc>> LoadHumanEval(const std::filesystem::path& data_dir) {
  // Upstream ships HumanEval.jsonl.gz, and it is vendored as is: always gzip, whatever the name.
  const auto path = data_dir / "humaneval" / "HumanEval.jsonl.gz";
  if (!std::filesystem::exists(path)) return MissingDataError(path, "humaneval");
  ASSIGN_OR_RETURN(const std::string gz, ReadFileToString(path));
  ASSIGN_OR_RETURN(const std::string text, GunzipString(gz, path.string()));
  ASSIGN_OR_RETURN(std::vector<Doc> docs, ParseJsonLines(text, path.string()));
  for (size_t i = 0; i < docs.size(); ++i) {
    for (const char* key : {"task_id", "prompt", "canonical_solution", "test", "entry_point"}) {
      if (!docs[i].contains(key) || !docs[i][key].is_string()) {
        return DataLoss("{}: line {} lacks string field '{}'", path.string(), i + 1, key);
      }
    }
  }
  if (docs.empty()) return DataLoss("{}: no problems", path.string());
  return docs;
}

TaskConfig HumanEvalConfig() {
  TaskConfig c = BaseConfig();
  c.name = "humaneval";
  c.version = "1.0";
  c.doc_to_text = [](const Doc& d) { return Field(d, "prompt"); };
  Filter f;
  f.name = "create_test";
  f.apply = [](const std::string& response, const Doc& doc) {
    return HumanEvalPrediction(doc, response, /*instruct=*/false);
  };
  c.filters = {f};
  c.configure = [](const std::filesystem::path&, TaskConfig* config) {
    return RequireCodeExecution(config->name);
  };
  return c;
}

TaskConfig HumanEvalInstructConfig() {
  TaskConfig c = BaseConfig();
  c.name = "humaneval_instruct";
  c.version = "4.0";
  c.doc_to_text = [](const Doc& d) {
    return std::string(kInstructText) + Field(d, "prompt") + "\n```\n";
  };
  const bool has_prefix = SetPerDocGenPrefix(c);
  Filter f;
  f.name = "create_test";
  f.apply = [](const std::string& response, const Doc& doc) {
    return HumanEvalPrediction(doc, response, /*instruct=*/true);
  };
  c.filters = {f};
  c.configure = [has_prefix](const std::filesystem::path&, TaskConfig* config) -> Status {
    if (!has_prefix) {
      return Unimplemented(
          "task {}: its gen_prefix repeats each problem's prompt, and this build's task "
          "interface has no per-doc gen_prefix (TaskConfig::doc_to_gen_prefix); use humaneval",
          config->name);
    }
    return RequireCodeExecution(config->name);
  };
  return c;
}

void RegisterHumanEvalTasks(TaskRegistry& registry) {
  registry.AddTask("humaneval", HumanEvalConfig);
  registry.AddTask("humaneval_instruct", HumanEvalInstructConfig);
}

}  // namespace rvec::eval
