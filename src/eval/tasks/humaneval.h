// HumanEval tasks (humaneval, humaneval_instruct) as lm-eval defines them, scored by running the
// model's code in the bubblewrap sandbox; plus the process-wide opt-in for code execution.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/progress.h"
#include "eval/sandbox/sandbox.h"
#include "eval/task.h"

namespace rvec::eval {

// How (and whether) model-written code may be executed. Set once by the CLI from
// --allow-code-execution / --jobs / --unsafe-no-sandbox before tasks load.
struct CodeExecutionOptions {
  bool allow = false;              // lm-eval: --confirm_run_unsafe_code
  bool unsafe_no_sandbox = false;  // run without bubblewrap (trusted code only)
  size_t jobs = 0;                 // programs run at once; 0: hardware threads
  double timeout_s = 3.0;          // per program (HF code_eval default)
};
void SetCodeExecutionOptions(const CodeExecutionOptions& options);
CodeExecutionOptions GetCodeExecutionOptions();

// The shared sandbox for code-executing tasks, created (and probed) on first use. Fails with the
// reason when execution was not allowed or the sandbox cannot work here.
StatusOr<const Sandbox*> CodeExecutionSandbox();

// True for tasks whose metric executes code (their Load refuses without the opt-in).
bool TaskExecutesCode(const TaskConfig& config);

// Runs every doc's program at once, --jobs at a time, and remembers the outcomes, so that the
// per-doc Score() calls that follow only look them up. Optional: without it Score() runs each
// program when asked (correct, but one at a time). A task that executes no code is a no-op.
// `doc_ids[k]` is the doc that `responses[k]` answers.
Status PrecomputeCodeExecution(const EvalTask& task, const std::vector<size_t>& doc_ids,
                               const std::vector<DocResponse>& responses, Progress* progress);

// The outcome recorded for a doc's program by Score()/PrecomputeCodeExecution (for the per-sample
// log: "passed" / "failed: AssertionError" / "timeout: ..."), or null if it never ran.
nlohmann::json CodeExecutionRecord(const EvalTask& task, size_t doc_index,
                                   const std::string& generation);

// lm-eval's program for one sample: prediction + "\n" + test + "\ncheck(entry_point)", where the
// prediction is prompt + completion (humaneval) or prompt + completion up to the first ```
// (instruct).
std::string HumanEvalPrediction(const Doc& doc, const std::string& completion, bool instruct);
std::string HumanEvalReference(const Doc& doc);

// Reads humaneval/HumanEval.jsonl.gz (zlib) and checks its fields.
StatusOr<std::vector<Doc>> LoadHumanEval(const std::filesystem::path& data_dir);

TaskConfig HumanEvalConfig();
TaskConfig HumanEvalInstructConfig();
void RegisterHumanEvalTasks(TaskRegistry& registry);

}  // namespace rvec::eval
