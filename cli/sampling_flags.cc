// Registers and checks the repeated-sampling flags shared by `rvec eval` and `rvec transfer`.
#include "cli/sampling_flags.h"

#include <cstdio>

namespace rvec::cli {

void AddSamplingFlags(CLI::App* app, SamplingFlags* flags) {
  app->add_option("--samples", flags->samples,
                  "K answers per document for generation tasks; results add avg@K, pass@k and "
                  "maj@K (default 1)");
  app->add_option("--temperature", flags->temperature,
                  "Sampling temperature for generation tasks, overriding the task's "
                  "generation_kwargs (0 = greedy; > 0 samples)");
  app->add_option("--top-p", flags->top_p, "Nucleus sampling mass with --temperature > 0");
  app->add_option("--sampling-seed", flags->sampling_seed,
                  "Seed of the sampled answers (default: --seed); each (task, doc, sample) has "
                  "its own random stream");
}

Status ValidateSamplingFlags(const SamplingFlags& flags, bool generates) {
  if (flags.samples < 1) return InvalidArgument("--samples must be at least 1");
  if (flags.temperature && !(*flags.temperature >= 0.0)) {
    return InvalidArgument("--temperature must be >= 0 (got {})", *flags.temperature);
  }
  if (flags.top_p && !(*flags.top_p > 0.0 && *flags.top_p <= 1.0)) {
    return InvalidArgument("--top-p must be in (0, 1] (got {})", *flags.top_p);
  }
  if (generates && flags.samples > 1 && !(flags.temperature && *flags.temperature > 0.0)) {
    std::fprintf(stderr,
                 "rvec: warning: --samples %zu without --temperature > 0: tasks that decode "
                 "greedily give %zu identical answers\n",
                 flags.samples, flags.samples);
  }
  return OkStatus();
}

}  // namespace rvec::cli
