// Built-in adversarial perturbations for any generative task (--perturb KIND[:seed]): distractor
// sentences, shuffled few-shot order, misleading hints, typos, numbers written as words.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eval/task.h"

namespace rvec::eval {

enum class PerturbKind {
  kDistractor,      // "distractor": one irrelevant GSM-IC-style sentence before the question
  kShuffleFewshot,  // "shuffle_fewshot": fixed (first_n) few-shot exemplars in a seeded order
  kMisleadingHint,  // "hint": "I think the answer is N." with a wrong N
  kTypos,           // "typos[=RATE]": character-level typos in letters (never digits)
  kNumberWords,     // "number_words": integers re-rendered in English words
};

struct PerturbationSpec {
  PerturbKind kind = PerturbKind::kDistractor;
  uint64_t seed = 0;
  double rate = 0.05;  // typos: probability per ASCII letter
  // Canonical text: "distractor:0", "typos=0.05:3"; also the suffix of the perturbed task name.
  std::string ToString() const;
};

// Parses KIND[=RATE][:SEED] ("distractor", "hint:7", "typos=0.1:3"). Unknown kinds list the known.
StatusOr<PerturbationSpec> ParsePerturbation(std::string_view text);

// What a perturbation did to one text (recorded in the doc, so the per-sample log shows it).
struct PerturbedText {
  std::string text;
  nlohmann::json detail;  // e.g. {"inserted": "...", "at": 118} or {"edits": [...]}
};

// The text-level perturbations, exposed for tests. `gold` (hint) is the reference answer text.
// Each is a pure function of (text, seed): same inputs, same output.
PerturbedText InsertDistractor(const std::string& text, uint64_t seed);
PerturbedText AddMisleadingHint(const std::string& text, const std::string& gold,
                                const std::vector<std::string>& choices, uint64_t seed);
PerturbedText AddTypos(const std::string& text, double rate, uint64_t seed);
PerturbedText NumbersToWords(const std::string& text);
// English words for 0 <= n < 10^15 ("one hundred twenty-three").
std::string IntegerToWords(uint64_t n);

// Splits a prompt into the part to perturb and a trailing answer cue ("\nAnswer:", "\nA:",
// "\nA: Let's think step by step."), which is kept intact.
std::pair<std::string, std::string> SplitAnswerCue(const std::string& text);

// Returns `config` with the perturbation applied to its test docs (few-shot exemplars stay
// clean): task name "<name>@<spec>", and each test doc gains "rvec_perturbation"
// {"kind","seed","original","perturbed","detail"}, which lm-eval-style sample logs (the doc is
// logged with every sample) show. Refuses non-generative tasks, and shuffle_fewshot for tasks
// whose shots are already drawn at random per doc.
StatusOr<TaskConfig> PerturbTask(TaskConfig config, const PerturbationSpec& spec);

// A registered task with the perturbation applied (what `rvec eval --perturb` runs).
StatusOr<std::unique_ptr<EvalTask>> CreatePerturbedTask(const TaskRegistry& registry,
                                                        const std::string& name,
                                                        const PerturbationSpec& spec);

// Registers "<task>@<spec>" for every task named (groups expand to their subtasks) and returns
// those names in order, so that `rvec eval --perturb` only rewrites its --tasks list. Fails before
// anything runs when a task cannot take the perturbation (multiple choice; shuffle_fewshot on
// randomly drawn shots).
StatusOr<std::vector<std::string>> RegisterPerturbedTasks(TaskRegistry& registry,
                                                          const std::vector<std::string>& names,
                                                          const PerturbationSpec& spec);

// "gsm8k@distractor:0" -> ("gsm8k", "distractor:0"); ("gsm8k", "") for a clean task name.
std::pair<std::string, std::string> SplitPerturbedTaskName(const std::string& name);

}  // namespace rvec::eval
