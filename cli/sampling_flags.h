// The repeated-sampling flags that `rvec eval` and `rvec transfer` share (--samples, --temperature,
// --top-p, --sampling-seed), defined once so that their names and checks cannot drift apart.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/status.h"

namespace rvec::cli {

struct SamplingFlags {
  size_t samples = 1;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<uint64_t> sampling_seed;  // unset: the command's --seed
};

// Adds --samples, --temperature, --top-p and --sampling-seed to `app`.
void AddSamplingFlags(CLI::App* app, SamplingFlags* flags);

// Checks the ranges: K >= 1, temperature >= 0, 0 < top_p <= 1. With `generates` (not replay),
// warns on stderr when K > 1 samples would be drawn greedily (every built-in task decodes
// greedily unless --temperature > 0).
Status ValidateSamplingFlags(const SamplingFlags& flags, bool generates);

}  // namespace rvec::cli
