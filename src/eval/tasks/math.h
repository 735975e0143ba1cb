// Competition-math tasks (math500, aime24, amc23, minerva_math, olympiadbench; group `math`) as the
// Qwen2.5-Math evaluation runs them: its prompt types, gold-answer parsing and generation settings.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "eval/task.h"

namespace rvec::eval {

// The prompt style used when --prompt-style is not given (Qwen2.5-Math-Instruct's).
inline constexpr char kDefaultMathPromptStyle[] = "qwen25-math-cot";

// The --prompt-style names the math tasks accept, the default first.
const std::vector<std::string>& MathPromptStyles();

// OK for a known --prompt-style name, else an InvalidArgument listing them.
Status ValidateMathPromptStyle(const std::string& style);

// The five data sets, in the order of the `math` group.
const std::vector<std::string>& MathTaskNames();

// The gold answer of a doc of `dataset`, as the reference's parse_ground_truth reads it (before its
// normalisation, which MathEqual applies): MATH-500, AIME and AMC `answer` (integral numbers
// written without ".0"), Minerva the last boxed expression of `solution`, OlympiadBench the first
// `final_answer` without its "$" signs.
std::string MathGoldAnswer(const std::string& dataset, const Doc& doc);

// The problem text (`question`, else `problem`), with the reference's " (True or False)" /
// " (Yes or No)" hint when the gold answer is one of those words, stripped.
std::string MathQuestion(const std::string& dataset, const Doc& doc);

// The task of one data set with the default prompt style, rendered as plain text.
TaskConfig MathTaskConfig(const std::string& dataset);

// Re-shapes a math task's prompt, stop strings and filters for `style` ("" = the default);
// `chat` says whether a chat template renders it. Unknown styles are an InvalidArgument.
Status ApplyMathPromptStyle(const std::string& style, bool chat, TaskConfig* config);

}  // namespace rvec::eval
