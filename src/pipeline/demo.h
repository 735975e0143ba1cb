// `rvec demo`: the whole pipeline on built-in miniature models, offline, in a few minutes — a base
// model, SFT/GRPO/instruct variants sharing its initialisation (GRPO = SFT + a known
// perturbation), then `rvec transfer` on small limits of the tasks whose data are present.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "pipeline/transfer.h"

namespace rvec::pipeline {

struct DemoOptions {
  std::filesystem::path workdir = "rvec-demo";
  std::string preset = "tiny-qwen2";
  std::filesystem::path data_dir;  // tasks whose data are missing here are skipped
  std::vector<std::string> tasks = {"gsm8k", "sciq", "bbh_cot_fewshot"};
  size_t limit = 10;
  double perturbation_std = 0.004;  // of each fine-tune's seeded noise (weights have std 0.02)
  bool force = false;
  size_t threads = 0;
  bool show_progress = false;
  std::string version = "unknown";
};

struct DemoResult {
  TransferResult transfer;
  std::vector<std::string> tasks_run;
  std::vector<std::string> tasks_missing;  // data not found
  bool vector_matches = false;             // extracted v == the perturbation, bit for bit
  double seconds = 0;
};

// The data folder each task reads (for the "get the rest" hint).
std::string DatasetOfTask(const std::string& task);

StatusOr<DemoResult> RunDemo(const DemoOptions& options,
                             const std::function<void(const std::string&)>& log);

}  // namespace rvec::pipeline
