// `rvec control --like VEC`: a norm-matched random (or value-shuffled) control vector.
#include "merge/control.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "cli/version.h"

namespace rvec::cli {
namespace {

struct ControlFlags {
  std::string like, out, match = "tensor";
  uint64_t seed = 0;
  bool shuffle = false;
  bool force = false;
};

Status RunControl(const ControlFlags& f) {
  merge::ControlOptions o;
  o.like = f.like;
  o.out = f.out;
  o.seed = f.seed;
  if (f.match == "tensor") {
    o.match = merge::ControlMatch::kTensor;
  } else if (f.match == "rows") {
    o.match = merge::ControlMatch::kRows;
  } else {
    return InvalidArgument("--match '{}': expected tensor or rows", f.match);
  }
  if (f.shuffle && f.match != "tensor") {
    return InvalidArgument("--shuffle permutes each tensor's own values; --match does not apply");
  }
  o.shuffle = f.shuffle;
  o.force = f.force;
  o.threads = Globals().threads;
  o.version = kVersion;
  ASSIGN_OR_RETURN(auto timed, RunWithProgress("control", [&](Progress* progress) {
                     return merge::MakeControl(o, progress);
                   }));
  const merge::ControlReport& r = timed.value;
  const double seconds = timed.seconds;
  if (PrintJsonOrWarnings(timed)) return OkStatus();
  if (f.shuffle) {
    std::printf("Wrote %s: per-tensor permutation of %s's values (seed %llu), %llu tensors, %s\n",
                f.out.c_str(), f.like.c_str(), static_cast<unsigned long long>(f.seed),
                static_cast<unsigned long long>(r.tensors), HumanDuration(seconds).c_str());
  } else {
    std::printf(
        "Wrote %s: Gaussian noise with %s's per-%s L2 norms (seed %llu), %llu tensors, largest "
        "relative norm error %.3g, %s\n",
        f.out.c_str(), f.like.c_str(), f.match == "rows" ? "row" : "tensor",
        static_cast<unsigned long long>(f.seed), static_cast<unsigned long long>(r.tensors),
        r.max_relative_norm_error, HumanDuration(seconds).c_str());
  }
  return OkStatus();
}

const RegisterCommand kControl(
    "control", "Write a norm-matched random control vector shaped like a reasoning vector", 25,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<ControlFlags>();
      app.description(
          "A control for `target + α·v`: same tensor names, shapes and dtypes as VEC, each "
          "tensor (or each row with --match rows; 1-D tensors count as one row) Gaussian noise "
          "scaled to exactly VEC's L2 norm; or, with --shuffle, a keyed permutation of each "
          "tensor's own values (same value distribution). Deterministic for a seed at any "
          "--threads; streaming; provenance in __metadata__.\n\nExample:\n"
          "  rvec control --like reasoning-vector --seed 1 -o control-1\n"
          "  rvec apply --model Instruct --vector control-1:1.0 -o instruct-plus-control");
      app.add_option("--like", f->like, "The vector to imitate")->required();
      app.add_option("--seed", f->seed, "Random seed (default 0)");
      app.add_option("--match", f->match, "tensor (default) or rows: which norms to match");
      app.add_flag("--shuffle", f->shuffle, "Permute VEC's own values instead of drawing noise");
      app.add_option("-o,--output", f->out, "Output directory")->required();
      app.add_flag("--force", f->force, "Replace an existing output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunControl(*f); };
    });

}  // namespace
}  // namespace rvec::cli
