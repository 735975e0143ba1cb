// `rvec merge CONFIG.yaml -o OUT`: mergekit-compatible merges (a documented subset).
#include "merge/merge.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/fs.h"
#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "cli/version.h"
#include "merge/merge_config.h"

namespace rvec::cli {
namespace {

struct MergeFlags {
  std::string config, out, vocab = "error";
  uint64_t seed = 0;
  bool force = false;
};

Status RunMergeCommand(const MergeFlags& f) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(f.config));
  ASSIGN_OR_RETURN(merge::MergeConfig config, merge::ParseMergeConfig(text, f.config));
  merge::MergeOptions o;
  o.out = f.out;
  o.config_dir = std::filesystem::path(f.config).parent_path();
  o.force = f.force;
  o.threads = Globals().threads;
  o.seed = f.seed;
  ASSIGN_OR_RETURN(o.vocab, merge::ParseVocabMode(f.vocab));
  o.version = kVersion;
  o.config_text = text;
  ASSIGN_OR_RETURN(
      auto timed,
      RunWithProgress(std::string("merge ") + merge::MergeMethodName(config.method),
                      [&](Progress* progress) { return merge::RunMerge(config, o, progress); }));
  const merge::MergeReport& r = timed.value;
  const double seconds = timed.seconds;
  if (PrintJsonOrWarnings(timed, "note")) return OkStatus();
  std::printf("Wrote %s: %s merge of %zu model(s), %llu tensors, config/tokenizer from %s, %s\n",
              f.out.c_str(), merge::MergeMethodName(config.method), config.models.size(),
              static_cast<unsigned long long>(r.tensors), r.donor.string().c_str(),
              HumanDuration(seconds).c_str());
  return OkStatus();
}

const RegisterCommand kMerge(
    "merge",
    "Merge models from a mergekit YAML config (linear, task_arithmetic, ties, dare, "
    "breadcrumbs)",
    22, [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<MergeFlags>();
      app.description(
          "Run a mergekit-style merge: merge_method linear, task_arithmetic, ties, dare_linear, "
          "dare_ties, breadcrumbs or breadcrumbs_ties; models with per-model parameters "
          "(weight, density, gamma), global parameters (normalize, rescale, lambda), gradients "
          "(value lists interpolated across layers) and filter lists; dtype/out_dtype; "
          "base_model. Inputs are decoded exactly to f32 and the result is rounded once into the "
          "output dtype; see docs/merge.md for every difference from mergekit. Config and "
          "tokenizer come from base_model, else the first model listed.\n\nExample (the "
          "Reasoning Vectors paper's config):\n"
          "  models:\n"
          "    - model: Qwen2.5-3B-Instruct\n      parameters: {weight: 1.0}\n"
          "    - model: Qwen2.5-3B-GRPO\n      parameters: {weight: 1.0}\n"
          "    - model: Qwen2.5-3B-SFT\n      parameters: {weight: -1.0}\n"
          "  merge_method: linear\n  parameters: {normalize: false}\n  dtype: bfloat16\n\n"
          "  rvec merge paper.yaml -o Qwen2.5-3B-Instruct-reasoning");
      app.add_option("config", f->config, "mergekit YAML configuration")->required();
      app.add_option("-o,--output", f->out, "Output model directory")->required();
      app.add_option("--seed", f->seed, "Seed of DARE's random drops (default 0)");
      app.add_option("--vocab-mismatch", f->vocab,
                     "error (default) or common: merge the shared embedding/lm_head rows");
      app.add_flag("--force", f->force, "Replace an existing output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunMergeCommand(*f); };
    });

}  // namespace
}  // namespace rvec::cli
