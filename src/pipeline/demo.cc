// `rvec demo`: builds four related miniature models and runs the transfer pipeline on them.
#include "pipeline/demo.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "base/dtype.h"
#include "io/checkpoint.h"
#include "synth/synth.h"

namespace rvec::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

std::string DatasetOfTask(const std::string& task) {
  if (task.rfind("gsm_plus", 0) == 0) return "gsm_plus";
  if (task.rfind("gsm_symbolic", 0) == 0) return "gsm_symbolic";
  if (task.rfind("gsm8k", 0) == 0) return "gsm8k";
  if (task.rfind("bbh", 0) == 0) return "bbh";
  if (task.rfind("humaneval", 0) == 0) return "humaneval";
  return task;
}

namespace {

constexpr uint64_t kBaseSeed = 1;
constexpr uint64_t kSftSeed = 11;
constexpr uint64_t kGrpoSeed = 12;
constexpr uint64_t kInstructSeed = 13;

// Recomputes the perturbation that made GRPO from SFT, independently of `rvec extract`:
// round(SFT + std·z) − SFT per element, with z the same seeded normals, and compares it bit for
// bit with the extracted f32 vector.
StatusOr<std::string> CheckKnownVector(const fs::path& sft_dir, const fs::path& vector_dir,
                                       double stddev, bool* matches) {
  ASSIGN_OR_RETURN(Checkpoint sft, Checkpoint::Open(sft_dir));
  ASSIGN_OR_RETURN(Checkpoint vec, Checkpoint::Open(vector_dir));
  uint64_t elements = 0, mismatches = 0, tensors = 0;
  std::string first_bad;
  const float s = static_cast<float>(stddev);
  for (const std::string& name : vec.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView v, vec.View(name));
    ASSIGN_OR_RETURN(TensorView b, sft.View(name));
    if (v.dtype() != DType::kF32) {
      return FailedPrecondition("{}: the demo's vector must be f32", vector_dir.string());
    }
    const uint64_t n = v.NumElements();
    std::vector<float> z(n);
    PerturbationNormals(kGrpoSeed, name, 0, z.data(), n);
    for (uint64_t i = 0; i < n; ++i) {
      const float base = LoadAsF32(b.dtype(), b.data, i);
      const float tuned_f32 = base + s * z[i];
      uint8_t tuned_bytes[8];
      StoreFromF32(b.dtype(), tuned_bytes, 0, tuned_f32);
      const float expected = LoadAsF32(b.dtype(), tuned_bytes, 0) - base;
      float got;
      std::memcpy(&got, v.data + 4 * i, 4);
      if (F32Bits(got) != F32Bits(expected)) {
        if (mismatches++ == 0) first_bad = fmt::format("{}[{}]", name, i);
      }
    }
    elements += n;
    ++tensors;
  }
  *matches = mismatches == 0;
  if (*matches) {
    return fmt::format(
        "Known-vector check passed: the extracted vector equals the perturbation "
        "that made GRPO from SFT, bit for bit in f32 ({} tensors, {} elements).",
        tensors, elements);
  }
  return fmt::format(
      "Known-vector check FAILED: {} of {} elements differ from the perturbation "
      "that made GRPO from SFT (first: {}).",
      mismatches, elements, first_bad);
}

}  // namespace

StatusOr<DemoResult> RunDemo(const DemoOptions& o,
                             const std::function<void(const std::string&)>& log) {
  const auto started = std::chrono::steady_clock::now();
  DemoResult result;
  if (o.tasks.empty()) return InvalidArgument("rvec demo: no tasks given (--tasks)");
  for (const std::string& task : o.tasks) {
    const std::string ds = DatasetOfTask(task);
    if (!o.data_dir.empty() && fs::is_directory(o.data_dir / ds)) {
      result.tasks_run.push_back(task);
    } else {
      result.tasks_missing.push_back(task);
    }
  }
  // Every task asked for runs, or the demo stops before doing any work: a report that silently
  // lacks a column would look like a result.
  if (!result.tasks_missing.empty()) {
    return NotFound(
        "no data for {} under '{}': get it with `rvec data pull {}`, or pass --data-dir DIR (the "
        "test sets that ship with rvec are in testdata/ of the source tree, share/rvec/data of an "
        "installed one)",
        fmt::join(result.tasks_missing, ", "),
        o.data_dir.empty() ? std::string("(no data directory)") : o.data_dir.string(),
        fmt::join(result.tasks_missing, " "));
  }
  if (log) {
    log(fmt::format("rvec demo: miniature random-weight models ({}) in {}; data from {}", o.preset,
                    o.workdir.string(), o.data_dir.string()));
  }

  // The four models: base; SFT = base + noise; GRPO = SFT + noise; instruct = base + noise.
  const fs::path models = o.workdir / "inputs";
  std::error_code ec;
  fs::create_directories(models, ec);
  const fs::path base = models / "base", sft = models / "sft", grpo = models / "grpo",
                 instruct = models / "instruct";
  const fs::path stamp = models / "stamp.json";
  const json stamp_value = {{"preset", o.preset},
                            {"std", o.perturbation_std},
                            {"seeds", {kBaseSeed, kSftSeed, kGrpoSeed, kInstructSeed}},
                            {"version", 1}};
  bool fresh = o.force;
  {
    auto text = ReadFileToString(stamp);
    if (!text.ok() || json::parse(*text, nullptr, false) != stamp_value) fresh = true;
    for (const auto& p : {base, sft, grpo, instruct}) {
      if (!fs::exists(p)) fresh = true;
    }
  }
  if (fresh) {
    if (log)
      log("[0/5] making the miniature models: base, SFT, GRPO = SFT + known perturbation, "
          "instruct");
    SynthOptions so;
    so.preset = o.preset;
    so.seed = kBaseSeed;
    so.dtype = DType::kBF16;
    so.out = base;
    so.force = true;
    so.threads = o.threads;
    ASSIGN_OR_RETURN(SynthResult sr, WriteSyntheticModel(so, nullptr));
    (void)sr;
    auto perturb = [&](const fs::path& from, const fs::path& to, uint64_t seed) -> Status {
      PerturbOptions po;
      po.base = from;
      po.out = to;
      po.seed = seed;
      po.stddev = o.perturbation_std;
      po.force = true;
      po.threads = o.threads;
      ASSIGN_OR_RETURN(PerturbResult pr, WritePerturbedModel(po, nullptr));
      (void)pr;
      return OkStatus();
    };
    RETURN_IF_ERROR(perturb(base, sft, kSftSeed));
    RETURN_IF_ERROR(perturb(sft, grpo, kGrpoSeed));
    RETURN_IF_ERROR(perturb(base, instruct, kInstructSeed));
    RETURN_IF_ERROR(WriteFileAtomic(stamp, stamp_value.dump(2) + "\n"));
  } else if (log) {
    log("[0/5] miniature models: up to date, reused");
  }

  TransferOptions t;
  t.sft = sft;
  t.grpo = grpo;
  t.target = instruct;
  t.workdir = o.workdir / "transfer";
  t.alphas = {1.0, -1.0};
  t.tasks = result.tasks_run;
  t.limit = o.limit;
  t.data_dir = o.data_dir;
  t.backend = "local";
  t.controls = ControlKind::kRandom;
  t.control_seeds = 1;
  t.force = o.force;
  t.threads = o.threads;
  t.show_progress = o.show_progress;
  t.version = o.version;
  t.command_line = fmt::format(
      "rvec transfer --sft {} --grpo {} --target {} --alphas 1,-1 "
      "--tasks {} --limit {} --data-dir {} -o {}",
      sft.string(), grpo.string(), instruct.string(), fmt::join(result.tasks_run, ","), o.limit,
      o.data_dir.string(), t.workdir.string());
  t.demo_facts = json{
      {"preset", o.preset},
      {"perturbation_std", o.perturbation_std},
      {"seeds",
       {{"base", kBaseSeed}, {"sft", kSftSeed}, {"grpo", kGrpoSeed}, {"instruct", kInstructSeed}}}};
  bool matches = false;
  t.check_vector = [&](const fs::path& vector_dir) {
    return CheckKnownVector(sft, vector_dir, o.perturbation_std, &matches);
  };
  ASSIGN_OR_RETURN(result.transfer, RunTransfer(t, log));
  result.vector_matches = matches;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace rvec::pipeline
