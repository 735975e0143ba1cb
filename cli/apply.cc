// `rvec apply`: writes θ_target + Σ α_i·v_i from stored vectors or directly from a base/tuned pair.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "cli/version.h"
#include "merge/vector.h"

namespace rvec::cli {
namespace {

struct ApplyFlags {
  std::string model, out, base, tuned, dtype, layers, vocab = "error";
  std::vector<std::string> vectors, alpha_for;
  double alpha = 1.0;
  bool alpha_given = false;
  bool force = false;
};

Status RunApply(const ApplyFlags& f) {
  merge::ApplyOptions o;
  o.model = f.model;
  o.out = f.out;
  std::string cmd = "rvec apply --model " + f.model;
  for (const std::string& spec : f.vectors) {
    ASSIGN_OR_RETURN(merge::VectorTerm term, merge::ParseVectorTerm(spec));
    o.vectors.push_back(term);
    cmd += " --vector " + spec;
  }
  if (!f.base.empty()) {
    o.base = f.base;
    cmd += " --base " + f.base;
  }
  if (!f.tuned.empty()) {
    o.tuned = f.tuned;
    cmd += " --tuned " + f.tuned;
  }
  if ((o.base || o.tuned) && !o.vectors.empty()) {
    return InvalidArgument("use either --vector or --base/--tuned, not both");
  }
  if (f.alpha_given && !f.layers.empty()) {
    return InvalidArgument("--alpha and --alpha-layers both set the schedule; give one");
  }
  o.schedule.set_alpha(f.alpha);
  if (f.alpha_given) cmd += fmt::format(" --alpha {}", f.alpha);
  for (const std::string& spec : f.alpha_for) {
    RETURN_IF_ERROR(o.schedule.AddOverride(spec));
    cmd += " --alpha-for '" + spec + "'";
  }
  if (!f.layers.empty()) {
    RETURN_IF_ERROR(o.schedule.SetLayerGradient(f.layers));
    cmd += " --alpha-layers " + f.layers;
  }
  if (!f.dtype.empty()) {
    const auto dtype = ParseUserDType(f.dtype);
    if (!dtype) return InvalidArgument("--dtype '{}': expected bf16, f16 or f32", f.dtype);
    o.dtype = *dtype;
    cmd += " --dtype " + f.dtype;
  }
  ASSIGN_OR_RETURN(o.vocab, merge::ParseVocabMode(f.vocab));
  if (f.vocab != "error") cmd += " --vocab-mismatch " + f.vocab;
  cmd += " -o " + f.out;
  o.command_line = cmd;
  o.force = f.force;
  o.threads = Globals().threads;
  o.version = kVersion;
  ASSIGN_OR_RETURN(auto timed, RunWithProgress("apply", [&](Progress* progress) {
                     return merge::Apply(o, progress);
                   }));
  const merge::ApplyReport& r = timed.value;
  const double seconds = timed.seconds;
  if (PrintJsonOrWarnings(timed)) return OkStatus();
  std::printf("Wrote %s: %s; %llu tensors changed, %llu copied, %s in %s\n", f.out.c_str(),
              r.formula.c_str(), static_cast<unsigned long long>(r.tensors_changed),
              static_cast<unsigned long long>(r.tensors_copied),
              HumanBytes(r.bytes_written).c_str(), HumanDuration(seconds).c_str());
  return OkStatus();
}

const RegisterCommand kApply(
    "apply", "Add scaled reasoning vectors to a target model: θ_target + Σ α_i·v_i", 21,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<ApplyFlags>();
      app.description(
          "Write θ_target + Σ α_i·v_i. Vectors come from `rvec extract` or `rvec compress` (a "
          "PEFT LoRA adapter, sparse or sign vector, decoded to f32) (--vector VEC[:α], "
          "repeatable: skill addition, analogies, negative α to subtract) or are computed on the "
          "fly from --base and --tuned without being stored. Inputs are decoded exactly to f32, "
          "combined in f32, and rounded once to nearest even into the output dtype (default: "
          "the target's). α = 0 reproduces the target bit for bit. Config, tokenizer, "
          "generation config and chat template come from the target; the output gets a "
          "README.md model card with the exact formula.\n\nExamples:\n"
          "  rvec apply --model Qwen2.5-1.5B-Instruct --vector reasoning-vector:1.0 -o out\n"
          "  rvec apply --model Qwen2.5-1.5B-Instruct --base SFT --tuned GRPO --alpha 0.5 -o out\n"
          "  rvec apply --model M --vector v --alpha-layers 0,0.5,1 --alpha-for 'mlp=0.3' -o out");
      app.add_option("--model", f->model, "Target model")->required();
      app.add_option("--vector", f->vectors,
                     "Vector checkpoint or compact form (rvec compress: LoRA adapter, sparse, "
                     "sign), optionally :ALPHA (repeatable)");
      app.add_option("--base", f->base, "Direct form: the model before fine-tuning (SFT)");
      app.add_option("--tuned", f->tuned, "Direct form: the fine-tuned model (GRPO)");
      auto* alpha = app.add_option("--alpha", f->alpha,
                                   "Global coefficient multiplying every term (default 1)");
      app.add_option("--alpha-for", f->alpha_for,
                     "REGEX=ALPHA: coefficient for tensors whose name matches (first wins; "
                     "repeatable)");
      app.add_option("--alpha-layers", f->layers,
                     "Comma-separated values interpolated across layers as mergekit gradients "
                     "(tensors outside the layers use the first value)");
      app.add_option("--dtype", f->dtype, "Output dtype: bf16, f16 or f32 (default: target's)");
      app.add_option("--vocab-mismatch", f->vocab,
                     "error (default) or common: apply to the shared embedding/lm_head rows and "
                     "keep the target's other rows");
      app.add_option("-o,--output", f->out, "Output model directory")->required();
      app.add_flag("--force", f->force, "Replace an existing output");
      AddCommonFlags(app);
      return [f, alpha]() -> Status {
        f->alpha_given = alpha->count() > 0;
        return RunApply(*f);
      };
    });

}  // namespace
}  // namespace rvec::cli
