// `rvec transfer` orchestration: compatibility, vector, variants, controls, evaluations, report.
#include "pipeline/transfer.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "base/fs.h"
#include "base/progress.h"
#include "base/sha256.h"
#include "eval/backend.h"
#include "eval/runner.h"
#include "eval/tasks/humaneval.h"
#include "io/checkpoint.h"
#include "merge/compat.h"
#include "merge/compress.h"
#include "merge/control.h"
#include "merge/provenance.h"
#include "merge/stats.h"
#include "merge/vector.h"
#include "model/engine.h"
#include "pipeline/served_models.h"
#include "pipeline/transfer_report.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

std::string AlphaName(double alpha) {
  std::string s = fmt::format("{}", alpha);
  return s;
}

namespace {

void Log(const std::function<void(const std::string&)>& log, const std::string& line) {
  if (log) log(line);
}

// What identifies a model for resumability: its path and the hashes of its config and headers.
StatusOr<json> ModelIdentity(const fs::path& path) {
  ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(path));
  return json{{"path", fs::absolute(path).lexically_normal().string()},
              {"config_sha256", merge::ConfigSha256(ckpt)},
              {"header_sha256", merge::HeaderSha256s(ckpt)}};
}

std::string KeyOf(const json& j) { return Sha256Hex(j.dump()); }

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// WORKDIR/state.json: step name -> key of the inputs and options that produced its output.
class StepState {
 public:
  explicit StepState(fs::path path) : path_(std::move(path)) {
    auto text = ReadFileToString(path_);
    if (text.ok()) {
      state_ = json::parse(*text, nullptr, false);
      if (!state_.is_object()) state_ = json::object();
    }
  }
  bool Done(const std::string& step, const std::string& key, const fs::path& output) const {
    return state_.contains(step) && state_[step] == key && fs::exists(output);
  }
  bool Has(const std::string& step) const { return state_.contains(step); }
  Status Mark(const std::string& step, const std::string& key) {
    state_[step] = key;
    return WriteFileAtomic(path_, state_.dump(2) + "\n");
  }

 private:
  fs::path path_;
  json state_ = json::object();
};

double LargestAbsAlpha(const std::vector<double>& alphas) {
  double best = 0;
  for (double a : alphas) {
    if (std::fabs(a) > std::fabs(best)) best = a;
  }
  return best;
}

}  // namespace

bool ServesLoraModule(const TransferOptions& o, const Variant& v) {
  return o.backend == "openai" && !v.compact.empty() && !o.serve_lora_cmd.empty() &&
         v.compact.rfind("lowrank", 0) == 0 && std::fabs(v.alpha - 1.0) == 0.0;
}

std::string ServeCommandFor(const TransferOptions& o, const Variant& v) {
  const bool lora = ServesLoraModule(o, v);
  const std::string& tmpl = lora ? o.serve_lora_cmd : o.serve_cmd;
  if (tmpl.empty()) return "";
  // A LoRA module is served at α = 1 (its scaling is fixed in adapter_config.json); other α use
  // the merged model.
  std::string cmd = ReplaceAll(tmpl, "{model}", lora ? o.target.string() : v.model_dir.string());
  cmd = ReplaceAll(cmd, "{lora}", lora ? v.compact_dir.string() : std::string());
  cmd = ReplaceAll(cmd, "{name}", v.id);
  return ReplaceAll(cmd, "{port}", std::to_string(o.serve_port));
}

StatusOr<CompactSpec> ParseCompactSpec(const std::string& spec) {
  CompactSpec c;
  c.spec = spec;
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto number = [&](double* out) -> Status {
    char* end = nullptr;
    *out = std::strtod(arg.c_str(), &end);
    if (arg.empty() || end == nullptr || *end != '\0' || !(*out > 0)) {
      return InvalidArgument(
          "--compact '{}': expected lowrank:RANK, lowrank-energy:E, sparse:D, dare:D or sign",
          spec);
    }
    return OkStatus();
  };
  double x = 0;
  if (kind == "lowrank") {
    RETURN_IF_ERROR(number(&x));
    c.method = static_cast<int>(merge::CompactKind::kLowRank);
    c.rank = static_cast<int64_t>(x);
    if (static_cast<double>(c.rank) != x) return InvalidArgument("--compact '{}': rank", spec);
    c.name = "lowrank" + arg;
  } else if (kind == "lowrank-energy") {
    RETURN_IF_ERROR(number(&x));
    c.method = static_cast<int>(merge::CompactKind::kLowRank);
    c.energy = x;
    c.name = "lowrank_e" + arg;
  } else if (kind == "sparse" || kind == "dare") {
    RETURN_IF_ERROR(number(&x));
    c.method = static_cast<int>(merge::CompactKind::kSparse);
    c.density = x;
    c.dare = kind == "dare";
    c.name = kind + arg;
  } else if (kind == "sign" && arg.empty()) {
    c.method = static_cast<int>(merge::CompactKind::kSign);
    c.name = "sign";
  } else {
    return InvalidArgument(
        "--compact '{}': expected lowrank:RANK, lowrank-energy:E, sparse:D, dare:D or sign", spec);
  }
  return c;
}

namespace {

std::vector<Variant> PlanVariants(const TransferOptions& o) {
  std::vector<Variant> variants;
  variants.push_back({"target", "target", 0.0, "", 0, o.target, "", {}});
  for (double a : o.alphas) {
    Variant v;
    v.id = "alpha_" + AlphaName(a);
    v.label = fmt::format("target {} {}·v", a < 0 ? "−" : "+", AlphaName(std::fabs(a)));
    v.alpha = a;
    v.model_dir = o.workdir / "models" / v.id;
    variants.push_back(v);
  }
  if (!o.alphas.empty()) {
    const double a = LargestAbsAlpha(o.alphas);
    for (const std::string& spec : o.compact) {
      auto c = ParseCompactSpec(spec);
      if (!c.ok()) continue;  // RunTransfer validates the specs before planning
      Variant v;
      v.id = fmt::format("compact_{}_alpha_{}", c->name, AlphaName(a));
      v.label =
          fmt::format("target {} {}·{}(v)", a < 0 ? "−" : "+", AlphaName(std::fabs(a)), c->name);
      v.alpha = a;
      v.compact = spec;
      v.compact_dir = o.workdir / "compact" / c->name;
      v.model_dir = o.workdir / "models" / v.id;
      variants.push_back(v);
    }
  }
  if (o.controls != ControlKind::kNone && !o.alphas.empty()) {
    const double a = LargestAbsAlpha(o.alphas);
    const std::string kind = o.controls == ControlKind::kRandom ? "random" : "shuffle";
    for (size_t s = 0; s < o.control_seeds; ++s) {
      Variant v;
      v.id = fmt::format("control_{}_s{}_alpha_{}", kind, s, AlphaName(a));
      v.label =
          fmt::format("target {} {}·{}(s{})", a < 0 ? "−" : "+", AlphaName(std::fabs(a)), kind, s);
      v.alpha = a;
      v.control = kind;
      v.control_seed = s;
      v.model_dir = o.workdir / "models" / v.id;
      variants.push_back(v);
    }
  }
  return variants;
}

fs::path ControlVectorDir(const TransferOptions& o, const Variant& v) {
  return o.workdir / "controls" / fmt::format("{}_s{}", v.control, v.control_seed);
}

// A server started from --serve-cmd for one variant, stopped (process group) on destruction.
class ServedModel {
 public:
  ~ServedModel() { Stop(); }
  Status Start(const std::string& command, const fs::path& log_path) {
    pid_ = fork();
    if (pid_ < 0) return IoError("cannot fork to start the model server");
    if (pid_ == 0) {
      setpgid(0, 0);
      FILE* out = std::fopen(log_path.c_str(), "w");
      if (out) {
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(out), STDERR_FILENO);
      }
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
    return OkStatus();
  }
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == pid_ ? (pid_ = -1, true) : false;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(-pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

struct EvalSetup {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<eval::Backend> backend;
  std::unique_ptr<ChatTemplate> chat_template;
  std::unique_ptr<Tokenizer> tokenizer;
  ServedModel server;
};

Status WaitForServer(const TransferOptions& o, ServedModel& server, const std::string& name,
                     const std::function<void(const std::string&)>& log) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(o.serve_timeout_s);
  Log(log, fmt::format("  waiting for {} to serve '{}' ...", o.endpoint, name));
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.Exited())
      return Error(StatusCode::kFailedPrecondition, "the model server exited before serving '{}'",
                   name);
    if (EndpointServesModel(o.endpoint, name)) return OkStatus();
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  return Error(StatusCode::kFailedPrecondition, "the model server did not serve '{}' within {} s",
               name, o.serve_timeout_s);
}

StatusOr<bool> MakeBackend(const TransferOptions& o, const Variant& v, EvalSetup* setup,
                           const std::function<void(const std::string&)>& log) {
  if (o.backend == "local") {
    EngineOptions eo;
    eo.threads = o.threads;
    eo.bf16_activations = o.bf16_activations;
    ASSIGN_OR_RETURN(setup->engine, Engine::Load(v.model_dir, eo));
    // lm-eval left-truncates prompts to the model's context, so the local backend needs it.
    size_t max_length = 0;
    ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(v.model_dir));
    if (ckpt.config() && ckpt.config()->max_position_embeddings > 0) {
      max_length = static_cast<size_t>(ckpt.config()->max_position_embeddings);
    }
    ASSIGN_OR_RETURN(setup->backend, eval::MakeLocalBackend(setup->engine.get(), max_length));
    return true;
  }
  if (o.backend == "replay") {
    const fs::path file = o.responses_dir / (v.id + ".jsonl");
    ASSIGN_OR_RETURN(setup->backend, eval::MakeReplayBackend(file));
    return true;
  }
  if (o.backend == "openai") {
    if (o.endpoint.empty()) return InvalidArgument("--backend openai needs --endpoint");
    if (const std::string cmd = ServeCommandFor(o, v); !cmd.empty()) {
      Log(log, "  starting: " + cmd);
      RETURN_IF_ERROR(setup->server.Start(cmd, o.workdir / "runs" / (v.id + ".server.log")));
      RETURN_IF_ERROR(WaitForServer(o, setup->server, v.id, log));
    } else if (!EndpointServesModel(o.endpoint, v.id)) {
      Log(log, fmt::format("  skipped {}: {} does not serve a model named '{}'. Serve it with\n"
                           "    vllm serve {} --served-model-name {} --port {}\n"
                           "  or\n    llama-server -m <gguf of {}> --alias {} --port {}\n"
                           "  then rerun this command (finished work is reused).",
                           v.id, o.endpoint, v.id, v.model_dir.string(), v.id, o.serve_port,
                           v.model_dir.string(), v.id, o.serve_port));
      return false;
    }
    eval::OpenAiOptions oo;
    oo.endpoint = o.endpoint;
    oo.served_model = v.id;
    oo.concurrency = o.concurrency;
    oo.seed = o.seed;
    // A LoRA row has no merged model: the target's tokenizer is its tokenizer.
    auto tok = Tokenizer::FromModelDir(ServesLoraModule(o, v) ? o.target : v.model_dir);
    if (tok.ok()) {
      setup->tokenizer = std::make_unique<Tokenizer>(std::move(*tok));
      oo.tokenizer = setup->tokenizer.get();
    }
    ASSIGN_OR_RETURN(setup->backend, eval::MakeOpenAiBackend(oo));
    return true;
  }
  return InvalidArgument("--backend '{}': expected local, openai or replay", o.backend);
}

}  // namespace

StatusOr<uint64_t> PredictDiskUse(const TransferOptions& o) {
  ASSIGN_OR_RETURN(Checkpoint target, Checkpoint::Open(o.target));
  const uint64_t params = target.TotalParameters();
  uint64_t need = 0;
  const fs::path vector_dir = o.workdir / "vector";
  if (!fs::exists(vector_dir) || o.force) need += params * DTypeSize(o.vector_dtype);
  for (const Variant& v : PlanVariants(o)) {
    if (v.id == "target") continue;
    if ((!fs::exists(v.model_dir) || o.force) && !ServesLoraModule(o, v)) {
      need += target.TotalTensorBytes();
    }
    if (!v.control.empty() && (!fs::exists(ControlVectorDir(o, v)) || o.force)) {
      need += params * DTypeSize(o.vector_dtype);
    }
    // A compact form is at most a dense bf16 vector (low-rank and 1-bit forms are far smaller).
    if (!v.compact.empty() && (!fs::exists(v.compact_dir) || o.force)) need += params * 2;
  }
  return need;
}

StatusOr<TransferResult> RunTransfer(const TransferOptions& o,
                                     const std::function<void(const std::string&)>& log) {
  if (o.alphas.empty()) return InvalidArgument("--alphas: give at least one α");
  if (o.tasks.empty()) return InvalidArgument("--tasks: give at least one task");
  for (const std::string& spec : o.compact) RETURN_IF_ERROR(ParseCompactSpec(spec).status());
  std::error_code ec;
  fs::create_directories(o.workdir / "models", ec);
  if (ec) return IoError("{}: cannot create: {}", o.workdir.string(), ec.message());
  StepState state(o.workdir / "state.json");

  // 1. Compatibility, before anything is written.
  Log(log, "[1/5] checking the three models");
  ASSIGN_OR_RETURN(Checkpoint sft, Checkpoint::Open(o.sft));
  ASSIGN_OR_RETURN(Checkpoint grpo, Checkpoint::Open(o.grpo));
  ASSIGN_OR_RETURN(Checkpoint target, Checkpoint::Open(o.target));
  ASSIGN_OR_RETURN(merge::VocabMode vocab, merge::ParseVocabMode(o.vocab_mismatch));
  merge::CompatOptions co;
  co.vocab = vocab;
  ASSIGN_OR_RETURN(merge::CompatResult c1, merge::CheckCompatible(sft, "SFT", grpo, "GRPO", co));
  merge::CompatOptions ct = co;
  if (target.config() && target.config()->tie_word_embeddings) {
    ct.tolerated_extra.push_back("lm_head.weight");
  }
  ASSIGN_OR_RETURN(merge::CompatResult c2,
                   merge::CheckCompatible(target, "target", sft, "SFT", ct));
  json compat = {{"architecture", merge::ArchitectureOf(target)},
                 {"tensors", target.TensorNames().size()},
                 {"parameters", target.TotalParameters()},
                 {"dtypes",
                  {{"sft", merge::DTypesOf(sft)},
                   {"grpo", merge::DTypesOf(grpo)},
                   {"target", merge::DTypesOf(target)}}},
                 {"warnings", json::array()}};
  for (const auto* c : {&c1, &c2}) {
    for (const auto& w : c->warnings) compat["warnings"].push_back(w);
  }
  const std::string mixed = merge::MixedDTypeWarning(sft, grpo);
  if (!mixed.empty()) compat["warnings"].push_back(mixed);
  Log(log, fmt::format("  {} · {} tensors · {} parameters · dtypes SFT {} / GRPO {} / target {}",
                       compat["architecture"].get<std::string>(), target.TensorNames().size(),
                       target.TotalParameters(), merge::DTypesOf(sft), merge::DTypesOf(grpo),
                       merge::DTypesOf(target)));
  for (const auto& w : compat["warnings"]) Log(log, "  warning: " + w.get<std::string>());

  // Disk: refuse up front rather than fail half-way.
  ASSIGN_OR_RETURN(uint64_t need, PredictDiskUse(o));
  const fs::space_info space = fs::space(o.workdir, ec);
  if (!ec && need > 0 && static_cast<double>(space.available) < 1.05 * static_cast<double>(need)) {
    return FailedPrecondition("{}: the outputs need about {} but only {} is free",
                              o.workdir.string(), HumanBytes(need), HumanBytes(space.available));
  }
  Log(log, fmt::format("  disk: {} to write, {} free", HumanBytes(need),
                       ec ? std::string("unknown") : HumanBytes(space.available)));

  ASSIGN_OR_RETURN(json sft_id, ModelIdentity(o.sft));
  ASSIGN_OR_RETURN(json grpo_id, ModelIdentity(o.grpo));
  ASSIGN_OR_RETURN(json target_id, ModelIdentity(o.target));

  // 2. The vector and its statistics.
  const fs::path vector_dir = o.workdir / "vector";
  const std::string vector_key = KeyOf({{"sft", sft_id},
                                        {"grpo", grpo_id},
                                        {"dtype", DTypeName(o.vector_dtype)},
                                        {"vocab", o.vocab_mismatch}});
  json vector_info = json::object();
  if (!o.force && state.Done("vector", vector_key, vector_dir)) {
    Log(log, "[2/5] vector: up to date, reused");
  } else {
    Log(log, "[2/5] extracting v = GRPO − SFT");
    merge::ExtractOptions eo;
    eo.base = o.sft;
    eo.tuned = o.grpo;
    eo.out = vector_dir;
    eo.dtype = o.vector_dtype;
    eo.vocab = vocab;
    eo.force = true;
    eo.threads = o.threads;
    eo.version = o.version;
    Progress progress("extract", 0, o.show_progress, "B");
    ASSIGN_OR_RETURN(merge::ExtractReport er, merge::Extract(eo, &progress));
    progress.Finish();
    for (const auto& w : er.warnings) Log(log, "  warning: " + w);
    RETURN_IF_ERROR(state.Mark("vector", vector_key));
  }
  TransferOptions local = o;  // carries the known-vector check into the report
  if (o.check_vector) {
    ASSIGN_OR_RETURN(std::string check, o.check_vector(vector_dir));
    if (!local.demo_facts) local.demo_facts = json::object();
    (*local.demo_facts)["known_vector_check"] = check;
    Log(log, "  " + check);
  }
  {
    Progress progress("stats", 0, o.show_progress, "B");
    ASSIGN_OR_RETURN(merge::StatsReport stats,
                     merge::ComputeStats(vector_dir, o.target, o.threads, &progress));
    progress.Finish();
    RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "vector_stats.json", merge::StatsJson(stats)));
    RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "vector_layers.svg", merge::StatsSvg(stats)));
    vector_info = json::parse(merge::StatsJson(stats), nullptr, false);
    Log(log, fmt::format("  ‖v‖ = {:.6g}, ‖v‖/‖θ_target‖ = {:.3g}", std::sqrt(stats.total.sum_sq),
                         stats.total.target_sum_sq > 0
                             ? std::sqrt(stats.total.sum_sq / stats.total.target_sum_sq)
                             : 0.0));
  }

  // 3. The variants: target + α·v (direct form), and the controls.
  Log(log, "[3/5] writing the model variants");
  std::vector<Variant> variants = PlanVariants(o);
  for (const Variant& v : variants) {
    if (v.id == "target") continue;
    fs::path vec_source;
    std::string key;
    if (!v.compact.empty()) {
      ASSIGN_OR_RETURN(CompactSpec spec, ParseCompactSpec(v.compact));
      const std::string compact_key = KeyOf({{"vector", vector_key}, {"compact", v.compact}});
      const std::string compact_step = "compact_" + spec.name;
      if (o.force || !state.Done(compact_step, compact_key, v.compact_dir)) {
        merge::CompressOptions cz;
        cz.vector = vector_dir;
        cz.out = v.compact_dir;
        cz.method = static_cast<merge::CompactKind>(spec.method);
        cz.rank = spec.rank;
        cz.energy = spec.energy;
        cz.density = spec.density;
        cz.dare = spec.dare;
        cz.base_model = o.target.string();
        cz.force = true;
        cz.threads = o.threads;
        cz.version = o.version;
        Progress progress("compress " + spec.name, 0, o.show_progress, "");
        ASSIGN_OR_RETURN(merge::CompressReport cr, merge::Compress(cz, &progress));
        progress.Finish();
        RETURN_IF_ERROR(state.Mark(compact_step, compact_key));
        Log(log,
            fmt::format("  {}: {:.2f}% of the dense bf16 size, relative error {:.3f}, "
                        "cosine {:.3f}",
                        spec.name,
                        cr.dense_bf16_bytes ? 100.0 * cr.bytes_on_disk / cr.dense_bf16_bytes : 0.0,
                        cr.RelativeError(), cr.Cosine()));
      }
      key = KeyOf({{"target", target_id}, {"compact", compact_key}, {"alpha", v.alpha}});
    } else if (v.control.empty()) {
      key = KeyOf({{"target", target_id},
                   {"sft", sft_id},
                   {"grpo", grpo_id},
                   {"alpha", v.alpha},
                   {"vocab", o.vocab_mismatch}});
    } else {
      const fs::path control_dir = ControlVectorDir(o, v);
      const std::string control_key =
          KeyOf({{"vector", vector_key}, {"kind", v.control}, {"seed", v.control_seed}});
      const std::string control_step = "control_" + v.control + std::to_string(v.control_seed);
      if (o.force || !state.Done(control_step, control_key, control_dir)) {
        merge::ControlOptions co2;
        co2.like = vector_dir;
        co2.out = control_dir;
        co2.seed = v.control_seed;
        co2.shuffle = v.control == "shuffle";
        co2.force = true;
        co2.threads = o.threads;
        co2.version = o.version;
        Progress progress("control", 0, o.show_progress, "B");
        ASSIGN_OR_RETURN(merge::ControlReport cr, merge::MakeControl(co2, &progress));
        progress.Finish();
        RETURN_IF_ERROR(state.Mark(control_step, control_key));
        Log(log, fmt::format("  {} control (seed {}): norms matched to {:.2g} relative", v.control,
                             v.control_seed, cr.max_relative_norm_error));
      }
      key = KeyOf({{"target", target_id}, {"control", control_key}, {"alpha", v.alpha}});
    }
    if (ServesLoraModule(o, v)) {
      Log(log, "  " + v.id + ": served as a LoRA module of the target (no merged model)");
      continue;
    }
    const std::string step = "model_" + v.id;
    if (!o.force && state.Done(step, key, v.model_dir)) {
      Log(log, "  " + v.id + ": up to date, reused");
      continue;
    }
    merge::ApplyOptions ao;
    ao.model = o.target;
    ao.out = v.model_dir;
    if (!v.compact.empty()) {
      ao.vectors.push_back({v.compact_dir, 1.0});
      ao.schedule.set_alpha(v.alpha);
    } else if (v.control.empty()) {
      ao.base = o.sft;
      ao.tuned = o.grpo;
      ao.direct_alpha = 1.0;
      ao.schedule.set_alpha(v.alpha);
    } else {
      ao.vectors.push_back({ControlVectorDir(o, v), 1.0});
      ao.schedule.set_alpha(v.alpha);
    }
    ao.vocab = vocab;
    ao.force = true;
    ao.threads = o.threads;
    ao.version = o.version;
    ao.command_line = o.command_line;
    Progress progress(v.id, 0, o.show_progress, "B");
    ASSIGN_OR_RETURN(merge::ApplyReport ar, merge::Apply(ao, &progress));
    progress.Finish();
    Log(log, fmt::format("  {}: {}", v.id, ar.formula));
    RETURN_IF_ERROR(state.Mark(step, key));
  }

  // 4. Evaluations: same tasks, seed and prompts for every variant.
  Log(log,
      fmt::format("[4/5] evaluating {} variants on {}", variants.size(), fmt::join(o.tasks, ",")));
  eval::CodeExecutionOptions exec = eval::GetCodeExecutionOptions();
  exec.allow = o.allow_code_execution;
  eval::SetCodeExecutionOptions(exec);
  std::vector<std::pair<Variant, fs::path>> finished_runs;
  for (const Variant& v : variants) {
    const fs::path run_dir = o.workdir / "runs" / v.id;
    fs::create_directories(run_dir.parent_path(), ec);
    ASSIGN_OR_RETURN(json model_id, ModelIdentity(v.model_dir));
    json eval_key_json = {
        {"model", model_id},
        {"tasks", o.tasks},
        {"limit", o.limit ? json(*o.limit) : json(nullptr)},
        {"seed", o.seed},
        {"chat", o.chat},
        {"system", o.system_instruction ? json(*o.system_instruction) : json(nullptr)},
        {"backend", o.backend}};
    if (o.backend == "local" && o.bf16_activations) eval_key_json["activations"] = "bf16";
    const std::string key = KeyOf(eval_key_json);
    const std::string step = "eval_" + v.id;
    if (!o.force && state.Done(step, key, run_dir / "results.json")) {
      Log(log, "  " + v.id + ": results up to date, reused");
      finished_runs.emplace_back(v, run_dir);
      continue;
    }
    EvalSetup setup;
    ASSIGN_OR_RETURN(bool ready, MakeBackend(o, v, &setup, log));
    if (!ready) continue;
    eval::EvalOptions eo;
    eo.tasks = o.tasks;
    eo.data_dir = o.data_dir;
    eo.limit = o.limit;
    eo.seed = o.seed;
    if (o.chat) {
      ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::FromModelDir(v.model_dir));
      setup.chat_template = std::make_unique<ChatTemplate>(std::move(tmpl));
      eo.chat_template = setup.chat_template.get();
    }
    eo.system_instruction = o.system_instruction;
    eo.output_dir = run_dir;
    // A run whose key changed is redone; an interrupted run with the same key resumes.
    eo.force = o.force || (state.Has(step) && !state.Done(step, key, run_dir / "results.json") &&
                           fs::exists(run_dir / "results.json"));
    eo.provenance = {{"model", model_id}, {"variant", v.id}, {"rvec_version", o.version}};
    if (o.backend == "local" && o.bf16_activations) eo.provenance["activations"] = "bf16";
    eo.show_progress = o.show_progress;
    Log(log, "  " + v.id + " ...");
    ASSIGN_OR_RETURN(json results, eval::RunEvaluation(*setup.backend, eo));
    RETURN_IF_ERROR(state.Mark(step, key));
    finished_runs.emplace_back(v, run_dir);
  }

  // 5. The report.
  Log(log, "[5/5] writing the report");
  TransferResult result;
  result.variants = variants;
  ReportInputs ri;
  ri.options = &local;
  ri.compat = compat;
  ri.vector_stats = vector_info;
  ri.runs = finished_runs;
  ri.all_variants = variants;
  ASSIGN_OR_RETURN(result.report, WriteTransferReport(ri));
  result.report_md = o.workdir / "report.md";
  result.report_html = o.workdir / "report.html";
  result.report_json = o.workdir / "report.json";
  return result;
}

}  // namespace rvec::pipeline
