// BIG-Bench Hard task family: subtask list and the parser of cot-prompts/<subtask>.txt.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "eval/task.h"

namespace rvec::eval {

// The 27 subtasks, in lm-eval's (alphabetical) order.
const std::vector<std::string>& BbhSubtasks();

struct BbhCotPrompt {
  std::string description;  // the task sentence(s) + "\n\n"
  std::vector<Doc> shots;   // {"input", "target"}: lm-eval's inline fewshot samples
};
StatusOr<BbhCotPrompt> ParseBbhCotPrompt(const std::string& text, const std::string& label);
StatusOr<BbhCotPrompt> LoadBbhCotPrompt(const std::filesystem::path& data_dir,
                                        const std::string& subtask);

}  // namespace rvec::eval
