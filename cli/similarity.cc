// `rvec similarity V1 V2`: cosine similarity of two vectors per tensor, layer and overall.
#include <cstdio>
#include <memory>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "merge/stats.h"

namespace rvec::cli {
namespace {

struct SimilarityFlags {
  std::string a, b;
  bool tensors = false;
};

Status RunSimilarity(const SimilarityFlags& f) {
  Progress progress("similarity", 0, ShouldShowProgress(Globals().quiet || Globals().json));
  ASSIGN_OR_RETURN(merge::SimilarityReport r,
                   merge::ComputeSimilarity(f.a, f.b, Globals().threads, &progress));
  progress.Finish();
  if (Globals().json) {
    PrintJson(merge::SimilarityJson(r));
  } else {
    const std::string text = merge::SimilarityText(r, f.tensors);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return OkStatus();
}

const RegisterCommand kSimilarity(
    "similarity", "Cosine similarity of two vectors per tensor, layer and overall", 24,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<SimilarityFlags>();
      app.description(
          "Cosine similarity of two vectors (are two reasoning vectors alike? is v orthogonal to "
          "the instruct vector or to its random control?) per tensor, per layer, per module "
          "group and overall, accumulated in double in a fixed order. Tensors present in only "
          "one input are listed and left out.\n\nExample:\n"
          "  rvec similarity reasoning-vector control-vector --json");
      app.add_option("a", f->a, "First vector")->required();
      app.add_option("b", f->b, "Second vector")->required();
      app.add_flag("--tensors", f->tensors, "Also list every tensor in the text output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunSimilarity(*f); };
    });

}  // namespace
}  // namespace rvec::cli
