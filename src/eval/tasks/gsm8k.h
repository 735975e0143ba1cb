// GSM8K task definitions, exposed so that GSM8K-shaped tasks (GSM-Plus, GSM-Symbolic) reuse them.
#pragma once

#include <vector>

#include "eval/task.h"

namespace rvec::eval {

// exact_match settings shared by gsm8k, gsm8k_cot, gsm8k_cot_zeroshot and gsm_plus.
ExactMatchOptions Gsm8kExactMatchOptions();
// (-?[$0-9.,]{2,})|(-?[0-9]+), last match.
Filter Gsm8kFlexibleExtract();
TaskConfig Gsm8kConfig();
TaskConfig Gsm8kCotConfig();
TaskConfig Gsm8kCotZeroshotConfig();
// The 8 inline gsm8k_cot exemplars as docs {"question", "target"}.
std::vector<Doc> Gsm8kCotExemplars();

}  // namespace rvec::eval
