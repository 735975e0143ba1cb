// `rvec synth`: writes a random-weight Hugging Face model directory from a preset, or a seeded
// perturbation of an existing model (--from), for tests, benchmarks and the demo.
#include "synth/synth.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/threading.h"
#include "cli/command.h"

namespace rvec::cli {
namespace {

struct SynthFlags {
  std::string preset;
  uint64_t seed = 0;
  std::string dtype = "bf16";
  size_t shards = 0;  // 0 = not given
  std::string tokenizer;
  std::string out;
  bool force = false;
  bool list = false;
  std::string from;
  double perturb_std = -1.0;
  std::vector<std::string> only;
};

Status ListPresets() {
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& name : SynthPresetNames()) {
    ASSIGN_OR_RETURN(SynthPreset p, GetSynthPreset(name));
    if (p.vocab_size == 0) p.vocab_size = (SynthTokenizer().size + 63) / 64 * 64;
    list.push_back({{"name", p.name},
                    {"architecture", p.architecture},
                    {"parameters", SynthParameterCount(p)},
                    {"hidden_size", p.hidden_size},
                    {"num_hidden_layers", p.num_hidden_layers},
                    {"num_attention_heads", p.num_attention_heads},
                    {"num_key_value_heads", p.num_key_value_heads},
                    {"head_dim", p.head_dim},
                    {"intermediate_size", p.intermediate_size},
                    {"vocab_size", p.vocab_size},
                    {"tie_word_embeddings", p.tie_word_embeddings}});
  }
  if (Globals().json) {
    PrintJson(list.dump(2));
    return OkStatus();
  }
  for (const auto& p : list) {
    std::printf(
        "%-14s %-18s %14s params  hidden %lld, layers %lld, heads %lld/%lld, vocab %lld%s\n",
        p["name"].get<std::string>().c_str(), p["architecture"].get<std::string>().c_str(),
        fmt::format("{}", p["parameters"].get<uint64_t>()).c_str(),
        static_cast<long long>(p["hidden_size"].get<int64_t>()),
        static_cast<long long>(p["num_hidden_layers"].get<int64_t>()),
        static_cast<long long>(p["num_attention_heads"].get<int64_t>()),
        static_cast<long long>(p["num_key_value_heads"].get<int64_t>()),
        static_cast<long long>(p["vocab_size"].get<int64_t>()),
        p["tie_word_embeddings"].get<bool>() ? ", tied" : "");
  }
  return OkStatus();
}

Status RunPerturb(const SynthFlags& f) {
  if (!f.preset.empty()) return InvalidArgument("--from and --preset are mutually exclusive");
  if (!f.tokenizer.empty()) return InvalidArgument("--tokenizer cannot be used with --from");
  if (f.perturb_std < 0.0) return InvalidArgument("--from needs --perturb-std S (S >= 0)");
  PerturbOptions options;
  options.base = f.from;
  options.out = f.out;
  options.seed = f.seed;
  options.stddev = f.perturb_std;
  options.only = f.only;
  options.shards = f.shards;
  options.force = f.force;
  options.threads = Globals().threads;
  Progress progress("perturb", 0, ShouldShowProgress(Globals().quiet || Globals().json), "B");
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(PerturbResult r, WritePerturbedModel(options, &progress));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (Globals().json) {
    PrintJson(nlohmann::json{
        {"output", f.out},
        {"base", f.from},
        {"seed", f.seed},
        {"perturb_std", f.perturb_std},
        {"tensors_perturbed", r.tensors_perturbed},
        {"tensors_copied", r.tensors_copied},
        {"parameters_perturbed", r.parameters_perturbed},
        {"tensor_bytes", r.tensor_bytes},
        {"seconds",
         seconds}}.dump(2));
  } else {
    std::printf(
        "Wrote %s: %s + %g * N(0,1) (seed %llu) on %zu tensors (%llu parameters), %zu "
        "copied, %s in %s\n",
        f.out.c_str(), f.from.c_str(), f.perturb_std, static_cast<unsigned long long>(f.seed),
        r.tensors_perturbed, static_cast<unsigned long long>(r.parameters_perturbed),
        r.tensors_copied, HumanBytes(r.tensor_bytes).c_str(), HumanDuration(seconds).c_str());
  }
  return OkStatus();
}

Status RunSynth(const SynthFlags& f) {
  if (f.list) return ListPresets();
  if (f.out.empty()) return InvalidArgument("-o/--output DIR is required");
  if (!f.from.empty()) return RunPerturb(f);
  if (f.preset.empty()) {
    return InvalidArgument("--preset NAME is required (see rvec synth --list-presets)");
  }
  if (!f.only.empty() || f.perturb_std >= 0.0) {
    return InvalidArgument("--perturb-std and --only need --from BASE");
  }
  const std::optional<DType> dtype = ParseUserDType(f.dtype);
  if (!dtype || (*dtype != DType::kBF16 && *dtype != DType::kF16 && *dtype != DType::kF32)) {
    return InvalidArgument("--dtype must be bf16, f16 or f32 (got \"{}\")", f.dtype);
  }
  SynthOptions options;
  options.preset = f.preset;
  options.seed = f.seed;
  options.dtype = *dtype;
  options.shards = f.shards == 0 ? 1 : f.shards;
  if (!f.tokenizer.empty()) options.tokenizer_dir = f.tokenizer;
  options.out = f.out;
  options.force = f.force;
  options.threads = Globals().threads;
  Progress progress("synth " + f.preset, 0, ShouldShowProgress(Globals().quiet || Globals().json),
                    "B");
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(SynthResult r, WriteSyntheticModel(options, &progress));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (Globals().json) {
    PrintJson(nlohmann::json{
        {"output", f.out},
        {"preset", r.preset.name},
        {"architecture", r.preset.architecture},
        {"seed", f.seed},
        {"dtype", std::string(DTypeName(*dtype))},
        {"parameters", r.parameters},
        {"tensor_bytes", r.tensor_bytes},
        {"vocab_size", r.preset.vocab_size},
        {"tokenizer_size", r.tokenizer_size},
        {"shards", r.shard_names},
        {"seconds",
         seconds}}.dump(2));
  } else {
    std::printf("Wrote %s: %s (%s), %llu parameters, %s, %zu shard%s, %s in %s\n", f.out.c_str(),
                r.preset.name.c_str(), r.preset.architecture.c_str(),
                static_cast<unsigned long long>(r.parameters),
                std::string(DTypeName(*dtype)).c_str(), r.shard_names.size(),
                r.shard_names.size() == 1 ? "" : "s", HumanBytes(r.tensor_bytes).c_str(),
                HumanDuration(seconds).c_str());
  }
  return OkStatus();
}

const RegisterCommand kSynth(
    "synth", "Write a random-weight Hugging Face model (presets) or a perturbed copy of one", 90,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<SynthFlags>();
      app.description(
          "Write a complete Hugging Face model directory with seeded random weights: safetensors "
          "(optionally sharded, with model.safetensors.index.json), config.json, "
          "generation_config.json and a byte-level BPE tokenizer with a ChatML chat template. "
          "Tensor names, shapes and config keys are those transformers uses, so the directory "
          "loads with AutoModelForCausalLM. The bytes depend only on the preset, seed and dtype, "
          "not on --threads.\n\n"
          "With --from BASE, write BASE plus seeded Gaussian noise of absolute standard deviation "
          "--perturb-std on every float tensor (or those whose name contains an --only string), "
          "keeping dtypes, shapes and side files: two perturbations of one base share their "
          "initialisation, as fine-tuned variants of one model do.\n\n"
          "Examples:\n"
          "  rvec synth --preset tiny-qwen2 --seed 1 -o /tmp/tiny\n"
          "  rvec synth --preset qwen2.5-1.5b --seed 7 --shards 2 \\\n"
          "      --tokenizer testdata/qwen-tokenizer/qwen2.5 -o /tmp/qwen-1.5b\n"
          "  rvec synth --from /tmp/tiny --perturb-std 0.002 --seed 2 -o /tmp/tiny-sft\n"
          "  rvec synth --list-presets");
      app.add_option("--preset", f->preset, "Architecture preset (see --list-presets)");
      app.add_option("--seed", f->seed, "Random seed (default 0)");
      app.add_option("--dtype", f->dtype, "Storage dtype: bf16 (default), f16 or f32");
      app.add_option("--shards", f->shards,
                     "Number of safetensors files (default 1; with --from: as the base)")
          ->check(CLI::PositiveNumber);
      app.add_option(
          "--tokenizer", f->tokenizer,
          "Copy this directory's tokenizer files (tokenizer.json, tokenizer_config.json, "
          "...) instead of the built-in tokenizer");
      app.add_option("-o,--output", f->out, "Output model directory");
      app.add_flag("--force", f->force, "Replace an existing output");
      app.add_flag("--list-presets", f->list, "List the presets and exit");
      app.add_option("--from", f->from, "Perturb this model instead of generating one");
      app.add_option("--perturb-std", f->perturb_std,
                     "With --from: standard deviation of the added noise");
      app.add_option("--only", f->only,
                     "With --from: perturb only tensors whose name contains this (repeatable)");
      AddCommonFlags(app);
      return [f]() -> Status { return RunSynth(*f); };
    });

}  // namespace
}  // namespace rvec::cli
