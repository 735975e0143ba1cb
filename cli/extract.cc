// `rvec extract`: writes the reasoning vector v = θ_tuned − θ_base as its own checkpoint.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "cli/version.h"
#include "merge/vector.h"

namespace rvec::cli {
namespace {

struct ExtractFlags {
  std::string base, tuned, out, dtype = "f32", include, exclude, vocab = "error";
  bool force = false;
};

Status RunExtract(const ExtractFlags& f) {
  merge::ExtractOptions o;
  o.base = f.base;
  o.tuned = f.tuned;
  o.out = f.out;
  const auto dtype = ParseUserDType(f.dtype);
  if (!dtype) return InvalidArgument("--dtype '{}': expected f32, bf16 or f16", f.dtype);
  o.dtype = *dtype;
  o.include = f.include;
  o.exclude = f.exclude;
  ASSIGN_OR_RETURN(o.vocab, merge::ParseVocabMode(f.vocab));
  o.force = f.force;
  o.threads = Globals().threads;
  o.version = kVersion;
  ASSIGN_OR_RETURN(auto timed, RunWithProgress("extract", [&](Progress* progress) {
                     return merge::Extract(o, progress);
                   }));
  const merge::ExtractReport& r = timed.value;
  const double seconds = timed.seconds;
  if (PrintJsonOrWarnings(timed)) return OkStatus();
  std::printf("Wrote %s: v = tuned − base, %llu tensors, %llu elements, %s, L2 norm %.6g, %s\n",
              f.out.c_str(), static_cast<unsigned long long>(r.tensors),
              static_cast<unsigned long long>(r.elements), std::string(DTypeName(r.dtype)).c_str(),
              r.l2_norm, HumanDuration(seconds).c_str());
  if (r.dtype != DType::kF32) {
    std::printf(
        "Narrowing to %s changed %llu of %llu elements (%.3f%%); relative L2 error %.3g versus "
        "the exact f32 difference.\n",
        std::string(DTypeName(r.dtype)).c_str(),
        static_cast<unsigned long long>(r.changed_elements),
        static_cast<unsigned long long>(r.elements),
        r.elements ? 100.0 * static_cast<double>(r.changed_elements) / r.elements : 0.0,
        r.relative_l2_error);
  }
  return OkStatus();
}

const RegisterCommand kExtract(
    "extract", "Write the reasoning vector θ_tuned − θ_base as a safetensors checkpoint", 20,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<ExtractFlags>();
      app.description(
          "Write v = θ_tuned − θ_base (e.g. GRPO − SFT) tensor by tensor, computed exactly in f32 "
          "from the decoded inputs. The output has the inputs' tensor names and shapes, is "
          "sharded like a model, and records its provenance in __metadata__ (input paths, "
          "config and header SHA-256s, dtypes, rvec version, time). F32 (default) is exact for "
          "bf16/f16 inputs; bf16/f16 are smaller, and the command reports what the narrowing "
          "loses.\n\nExample:\n  rvec extract --base Qwen2.5-1.5B-SFT --tuned Qwen2.5-1.5B-GRPO "
          "-o reasoning-vector");
      app.add_option("--base", f->base, "The model before fine-tuning (e.g. SFT)")->required();
      app.add_option("--tuned", f->tuned, "The fine-tuned model (e.g. GRPO)")->required();
      app.add_option("-o,--output", f->out, "Output directory")->required();
      app.add_option("--dtype", f->dtype, "Storage dtype: f32 (default, exact), bf16 or f16");
      app.add_option("--include", f->include, "Only tensors whose name matches this regex");
      app.add_option("--exclude", f->exclude, "Leave out tensors whose name matches this regex");
      app.add_option("--vocab-mismatch", f->vocab,
                     "error (default) or common: use the shared rows of embeddings/lm_head");
      app.add_flag("--force", f->force, "Replace an existing output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunExtract(*f); };
    });

}  // namespace
}  // namespace rvec::cli
