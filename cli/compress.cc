// `rvec compress`: a reasoning vector as a PEFT LoRA adapter, a sparse or a 1-bit vector, with the
// size and the retention (error, cosine, energy per module kind and layer) of the compact form.
#include "merge/compress.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "cli/version.h"
#include "pipeline/retention.h"

namespace rvec::cli {
namespace {

struct CompressFlags {
  std::string vector, out, method, dtype = "bf16", scale = "row", base_model, eval_model, data_dir;
  int64_t rank = 0;
  double energy = 0, density = 0;
  bool exact = false, keep_rest = false, dare = false, force = false;
  int power_iters = 4, oversample = 16;
  uint64_t seed = 0;
  size_t prompts = 16, gen_tokens = 16;
};

std::string Percent(double x) { return fmt::format("{:.2f}%", 100.0 * x); }

Status RunCompressCommand(const CompressFlags& f) {
  merge::CompressOptions o;
  o.vector = f.vector;
  o.out = f.out;
  if (f.method == "lowrank") {
    o.method = merge::CompactKind::kLowRank;
  } else if (f.method == "sparse") {
    o.method = merge::CompactKind::kSparse;
  } else if (f.method == "sign") {
    o.method = merge::CompactKind::kSign;
  } else {
    return InvalidArgument("--method '{}': expected lowrank, sparse or sign", f.method);
  }
  const auto dtype = ParseUserDType(f.dtype);
  if (!dtype) return InvalidArgument("--dtype '{}': expected bf16, f32 or f16", f.dtype);
  o.dtype = *dtype;
  if (f.scale != "row" && f.scale != "tensor") {
    return InvalidArgument("--scale '{}': expected row or tensor", f.scale);
  }
  o.rank = f.rank;
  o.energy = f.energy;
  o.exact = f.exact;
  o.power_iters = f.power_iters;
  o.oversample = f.oversample;
  o.keep_rest = f.keep_rest;
  o.base_model = f.base_model;
  o.density = f.density;
  o.dare = f.dare;
  o.per_tensor_scale = f.scale == "tensor";
  o.seed = f.seed;
  o.force = f.force;
  o.threads = Globals().threads;
  o.version = kVersion;
  ASSIGN_OR_RETURN(auto timed, RunWithProgress("compress", [&](Progress* progress) {
                     return merge::Compress(o, progress);
                   }));
  const merge::CompressReport& r = timed.value;
  nlohmann::json j = r.ToJson();
  j["seconds"] = timed.seconds;
  if (!f.eval_model.empty()) {
    pipeline::RetentionOptions ro;
    ro.target = f.eval_model;
    ro.dense = f.vector;
    ro.compact = f.out;
    ro.prompts = f.prompts;
    ro.gen_tokens = f.gen_tokens;
    ro.data_dir = f.data_dir;
    ro.threads = Globals().threads;
    // Counted in prompts (and the two generation passes), not bytes.
    Progress progress("functional retention", 0,
                      ShouldShowProgress(Globals().quiet || Globals().json), "");
    auto functional = pipeline::MeasureFunctionalRetention(ro, &progress);
    progress.Finish();
    if (!functional.ok()) return functional.status();
    j["functional"] = functional->ToJson();
  }
  if (Globals().json) {
    PrintJson(j.dump(2));
    return OkStatus();
  }
  for (const auto& w : r.warnings) std::fprintf(stderr, "rvec: warning: %s\n", w.c_str());
  std::printf(
      "Wrote %s (%s, %s): %s on disk = %s of the dense bf16 vector, in %s\n", f.out.c_str(),
      f.method.c_str(), r.parameters.dump().c_str(), HumanBytes(r.bytes_on_disk).c_str(),
      Percent(r.dense_bf16_bytes ? double(r.bytes_on_disk) / r.dense_bf16_bytes : 0).c_str(),
      HumanDuration(timed.seconds).c_str());
  std::printf("relative error ‖v − ṽ‖/‖v‖ %.4f, cosine(v, ṽ) %.4f, energy captured %s\n",
              r.RelativeError(), r.Cosine(), Percent(r.total.Captured()).c_str());
  if (r.method == merge::CompactKind::kLowRank) {
    std::printf("ranks %lld..%lld; not in the adapter: %zu tensors, %s of ‖v‖² (%s)\n",
                static_cast<long long>(r.min_rank), static_cast<long long>(r.max_rank),
                r.not_in_adapter.size(), Percent(r.not_in_adapter_share).c_str(),
                r.rest_written ? "written densely in rest/" : "dropped; --keep-rest keeps them");
  }
  std::printf("\n| module kind | share of ‖v‖² | energy captured |\n|---|---:|---:|\n");
  for (const auto& g : r.by_kind) {
    std::printf("| %s | %s | %s |\n", g.group.c_str(),
                Percent(r.total.norm2 > 0 ? g.norm2 / r.total.norm2 : 0).c_str(),
                Percent(g.Captured()).c_str());
  }
  if (j.contains("functional")) {
    const auto& fj = j["functional"];
    std::printf(
        "\nFunctional retention on %s (%zu prompts): mean KL(target+v ‖ target+ṽ) %.5f nats per "
        "token, greedy agreement %s over %zu generated tokens per prompt\n",
        f.eval_model.c_str(), f.prompts, fj["mean_kl"].get<double>(),
        Percent(fj["greedy_agreement"].get<double>()).c_str(), f.gen_tokens);
  }
  std::printf("Per layer: %s/compress.json\n", f.out.c_str());
  return OkStatus();
}

const RegisterCommand kCompress(
    "compress", "Make a reasoning vector small: LoRA adapter, sparse or 1-bit, with its retention",
    22, [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<CompressFlags>();
      app.description(
          "Compress a dense reasoning vector (from `rvec extract`) and measure what the compact "
          "form keeps.\n"
          "  lowrank: per 2-D weight matrix the best rank-R approximation (randomized SVD, or "
          "exact with --exact / --energy), written as a PEFT LoRA adapter directory that PEFT and "
          "vLLM (--enable-lora) load. Norms, biases and embeddings are not in the adapter: their "
          "share of ‖v‖² is reported, and --keep-rest writes them densely in OUT/rest/.\n"
          "  sparse: the largest-magnitude fraction D of each tensor (or DARE: a random fraction "
          "D, "
          "rescaled by 1/D), as indices + values.\n"
          "  sign: one bit per element and the L2-optimal scale per row (BitDelta).\n"
          "Every form is read by `rvec apply --vector OUT:ALPHA` (decoded to f32, rounded once). "
          "The layouts are documented in docs/compact.md.\n\n"
          "Examples:\n  rvec compress work/vector -o work/v-lora64 --method lowrank --rank 64 "
          "--base-model Qwen/Qwen2.5-1.5B-Instruct\n"
          "  rvec compress work/vector -o work/v-sparse --method sparse --density 0.1\n"
          "  rvec compress work/vector -o work/v-sign --method sign --eval-model "
          "models/instruct --prompts 16");
      app.add_option("vector", f->vector, "Dense vector (rvec extract output)")->required();
      app.add_option("-o,--output", f->out, "Output directory")->required();
      app.add_option("--method", f->method, "lowrank, sparse or sign")->required();
      app.add_option("--rank", f->rank, "lowrank: rank per matrix (capped at its smaller side)");
      app.add_option("--energy", f->energy,
                     "lowrank: smallest rank per matrix keeping this fraction of its ‖·‖² (exact)");
      app.add_flag("--exact", f->exact, "lowrank: exact SVD for --rank too (slower)");
      app.add_option("--power-iters", f->power_iters,
                     "lowrank: randomized SVD power iterations (default 4)");
      app.add_option("--oversample", f->oversample,
                     "lowrank: randomized SVD extra columns (default 16)");
      app.add_flag("--keep-rest", f->keep_rest,
                   "lowrank: write norms, biases and embeddings densely in OUT/rest/");
      app.add_option("--base-model", f->base_model,
                     "lowrank: base_model_name_or_path for adapter_config.json");
      app.add_option("--density", f->density, "sparse: fraction of each tensor kept, in (0, 1]");
      app.add_flag("--dare", f->dare, "sparse: random drop with 1/density rescale (DARE)");
      app.add_option("--scale", f->scale, "sign: one scale per row (default) or per tensor");
      app.add_option("--dtype", f->dtype, "Stored factors / values: bf16 (default), f32 or f16");
      app.add_option("--seed", f->seed, "Randomized SVD and DARE seed (default 0)");
      app.add_option("--eval-model", f->eval_model,
                     "Also measure functional retention on this target: KL and greedy agreement "
                     "of target+v vs target+ṽ");
      app.add_option("--prompts", f->prompts, "Prompts for --eval-model (default 16, GSM8K test)");
      app.add_option("--gen-tokens", f->gen_tokens,
                     "Greedy tokens per prompt for --eval-model (default 16)");
      app.add_option("--data-dir", f->data_dir,
                     "Data for --eval-model prompts (default: $RVEC_DATA, else the bundled sets)");
      app.add_flag("--force", f->force, "Replace an existing output");
      AddCommonFlags(app);
      return [f]() -> Status { return RunCompressCommand(*f); };
    });

}  // namespace
}  // namespace rvec::cli
