// `rvec stats VEC`: norms, relative norms, max |v| and sparsity per tensor, layer and module.
#include "merge/stats.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "base/fs.h"
#include "base/progress.h"
#include "cli/command.h"

namespace rvec::cli {
namespace {

struct StatsFlags {
  std::string vector, model, svg;
  bool tensors = false;
};

Status RunStats(const StatsFlags& f) {
  std::optional<std::filesystem::path> model;
  if (!f.model.empty()) model = f.model;
  Progress progress("stats", 0, ShouldShowProgress(Globals().quiet || Globals().json), "B");
  ASSIGN_OR_RETURN(merge::StatsReport r,
                   merge::ComputeStats(f.vector, model, Globals().threads, &progress));
  progress.Finish();
  if (!f.svg.empty()) RETURN_IF_ERROR(WriteFileAtomic(f.svg, merge::StatsSvg(r)));
  if (Globals().json) {
    PrintJson(merge::StatsJson(r));
  } else {
    const std::string text = merge::StatsText(r, f.tensors);
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (!f.svg.empty()) std::printf("chart: %s\n", f.svg.c_str());
  }
  return OkStatus();
}

const RegisterCommand kStats(
    "stats", "Norms and sparsity of a vector per tensor, layer and module (with an SVG chart)", 23,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<StatsFlags>();
      app.description(
          "Per tensor, per layer, per module group (attention, MLP, norms, embeddings) and in "
          "total: the L2 norm, the norm relative to the target's weights (--model), max |v| and "
          "the fraction of exact zeros. Sums are accumulated in double in a fixed order, so the "
          "numbers do not depend on --threads. --json prints everything (per tensor included); "
          "--svg writes a chart of the per-layer (relative) norm by module.\n\nExample:\n"
          "  rvec stats reasoning-vector --model Qwen2.5-1.5B-Instruct --svg norms.svg");
      app.add_option("vector", f->vector, "Vector checkpoint (from rvec extract/control)")
          ->required();
      app.add_option("--model", f->model, "Target model for relative norms");
      app.add_option("--svg", f->svg, "Write a per-layer chart to this SVG file");
      app.add_flag("--tensors", f->tensors, "Also list every tensor in the text output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunStats(*f); };
    });

}  // namespace
}  // namespace rvec::cli
