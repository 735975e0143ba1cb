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
#include "model/gguf_export.h"
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

StatusOr<GgmlType> ParseGgufDtype(const std::string& name) {
  if (name == "f32") return GgmlType::kF32;
  if (name == "f16") return GgmlType::kF16;
  if (name == "bf16") return GgmlType::kBF16;
  return InvalidArgument("--gguf-dtype '{}': expected f32, f16 or bf16", name);
}

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

fs::path GgufPathFor(const TransferOptions& o, const Variant& v) {
  return o.workdir / "gguf" / (v.id + "." + o.gguf_dtype + ".gguf");
}

bool ServesGguf(const TransferOptions& o, const Variant& v) {
  return o.backend == "openai" && !ServesLoraModule(o, v) &&
         o.serve_cmd.find("{gguf}") != std::string::npos;
}

std::string ServeCommandFor(const TransferOptions& o, const Variant& v) {
  const bool lora = ServesLoraModule(o, v);
  const std::string& tmpl = lora ? o.serve_lora_cmd : o.serve_cmd;
  if (tmpl.empty()) return "";
  // A LoRA module is served at α = 1 (its scaling is fixed in adapter_config.json); other α use
  // the merged model.
  std::string cmd = ReplaceAll(tmpl, "{model}", lora ? o.target.string() : v.model_dir.string());
  if (!lora) cmd = ReplaceAll(cmd, "{gguf}", GgufPathFor(o, v).string());
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
                     const fs::path& log_path, const std::function<void(const std::string&)>& log) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(o.serve_timeout_s);
  Log(log, fmt::format("  waiting for {} to serve '{}' ...", o.endpoint, name));
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.Exited()) {
      return FailedPrecondition(
          "the model server (--serve-cmd) exited before serving '{}' at {}; its output is in {}",
          name, o.endpoint, log_path.string());
    }
    if (EndpointServesModel(o.endpoint, name)) return OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return FailedPrecondition(
      "the model server (--serve-cmd) did not serve '{}' at {} within --serve-timeout {} s; it "
      "was stopped; its output is in {}",
      name, o.endpoint, o.serve_timeout_s, log_path.string());
}

StatusOr<bool> MakeBackend(const TransferOptions& o, const Variant& v, EvalSetup* setup,
                           const std::function<void(const std::string&)>& log) {
  if (o.backend == "local") {
    EngineOptions eo;
    eo.threads = o.threads;
    eo.bf16_activations = o.bf16_activations;
    eo.kv_dtype = o.kv_dtype;
    if (o.kv_cache_bytes > 0) eo.kv_cache_bytes = o.kv_cache_bytes;
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
      const fs::path log_path = o.workdir / "runs" / (v.id + ".server.log");
      RETURN_IF_ERROR(setup->server.Start(cmd, log_path));
      RETURN_IF_ERROR(WaitForServer(o, setup->server, v.id, log_path, log));
    } else if (!EndpointServesModel(o.endpoint, v.id)) {
      Log(log, fmt::format("  skipped {}: {} does not serve a model named '{}'. Serve it with\n"
                           "    vllm serve {} --served-model-name {} --port {}\n"
                           "  or\n    rvec export gguf {} -o {}.gguf && "
                           "llama-server -m {}.gguf --alias {} --port {}\n"
                           "  then rerun this command (finished work is reused), or let rvec "
                           "start it: --serve-cmd '... {{model}} or {{gguf}} ... {{name}} ... "
                           "{{port}}'.",
                           v.id, o.endpoint, v.id, v.model_dir.string(), v.id, o.serve_port,
                           v.model_dir.string(), v.id, v.id, v.id, o.serve_port));
      return false;
    }
    eval::OpenAiOptions oo;
    oo.endpoint = o.endpoint;
    oo.served_model = v.id;
    oo.concurrency = o.concurrency;
    oo.seed = o.seed;
    oo.server_kind = o.server_kind;
    // A LoRA row has no merged model: the target's files are its tokenizer and config.
    const fs::path model_files = ServesLoraModule(o, v) ? o.target : v.model_dir;
    auto tok = Tokenizer::FromModelDir(model_files);
    if (tok.ok()) {
      setup->tokenizer = std::make_unique<Tokenizer>(std::move(*tok));
      oo.tokenizer = setup->tokenizer.get();
      // lm-eval's left truncation needs the model's context.
      oo.max_length = o.max_length;
      if (oo.max_length == 0) {
        auto ckpt = Checkpoint::Open(model_files);
        if (ckpt.ok() && ckpt->config() && ckpt->config()->max_position_embeddings > 0) {
          oo.max_length = static_cast<size_t>(ckpt->config()->max_position_embeddings);
        }
      }
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
    if (ServesGguf(o, v) && (!fs::exists(GgufPathFor(o, v)) || o.force)) {
      need += params * (o.gguf_dtype == "f32" ? 4 : 2);
    }
  }
  return need;
}

namespace {

using LogFn = std::function<void(const std::string&)>;

// What the steps after the compatibility check share: the options, the step state, and the keys
// of the three input models and of the vector that outputs are keyed on.
struct TransferContext {
  const TransferOptions& o;
  const LogFn& log;
  StepState& state;
  merge::VocabMode vocab{};
  json sft_id, grpo_id, target_id;
  fs::path vector_dir;
  std::string vector_key;
};

Status ValidateTransferOptions(const TransferOptions& o) {
  if (o.alphas.empty()) return InvalidArgument("--alphas: give at least one α");
  if (o.tasks.empty()) return InvalidArgument("--tasks: give at least one task");
  RETURN_IF_ERROR(ParseGgufDtype(o.gguf_dtype).status());
  for (const std::string& spec : o.compact) RETURN_IF_ERROR(ParseCompactSpec(spec).status());
  return OkStatus();
}

// Step 1, before anything is written: the three models must be compatible. Returns the
// compatibility summary the report shows.
StatusOr<json> CheckModels(const TransferOptions& o, const LogFn& log, merge::VocabMode* vocab) {
  Log(log, "[1/5] checking the three models");
  ASSIGN_OR_RETURN(Checkpoint sft, Checkpoint::Open(o.sft));
  ASSIGN_OR_RETURN(Checkpoint grpo, Checkpoint::Open(o.grpo));
  ASSIGN_OR_RETURN(Checkpoint target, Checkpoint::Open(o.target));
  ASSIGN_OR_RETURN(*vocab, merge::ParseVocabMode(o.vocab_mismatch));
  merge::CompatOptions co;
  co.vocab = *vocab;
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
  return compat;
}

// Refuses up front rather than fail half-way.
Status CheckDiskSpace(const TransferOptions& o, const LogFn& log) {
  ASSIGN_OR_RETURN(uint64_t need, PredictDiskUse(o));
  std::error_code ec;
  const fs::space_info space = fs::space(o.workdir, ec);
  if (!ec && need > 0 && static_cast<double>(space.available) < 1.05 * static_cast<double>(need)) {
    return FailedPrecondition("{}: the outputs need about {} but only {} is free",
                              o.workdir.string(), HumanBytes(need), HumanBytes(space.available));
  }
  Log(log, fmt::format("  disk: {} to write, {} free", HumanBytes(need),
                       ec ? std::string("unknown") : HumanBytes(space.available)));
  return OkStatus();
}

// Step 2: v = GRPO − SFT, reused when its inputs are unchanged.
Status ExtractVector(const TransferContext& ctx) {
  const TransferOptions& o = ctx.o;
  if (!o.force && ctx.state.Done("vector", ctx.vector_key, ctx.vector_dir)) {
    Log(ctx.log, "[2/5] vector: up to date, reused");
    return OkStatus();
  }
  Log(ctx.log, "[2/5] extracting v = GRPO − SFT");
  merge::ExtractOptions eo;
  eo.base = o.sft;
  eo.tuned = o.grpo;
  eo.out = ctx.vector_dir;
  eo.dtype = o.vector_dtype;
  eo.vocab = ctx.vocab;
  eo.force = true;
  eo.threads = o.threads;
  eo.version = o.version;
  Progress progress("extract", 0, o.show_progress, "B");
  ASSIGN_OR_RETURN(merge::ExtractReport er, merge::Extract(eo, &progress));
  progress.Finish();
  for (const auto& w : er.warnings) Log(ctx.log, "  warning: " + w);
  return ctx.state.Mark("vector", ctx.vector_key);
}

// The demo's known-vector check, whose verdict the report carries through `report_options`.
Status CheckKnownVector(const TransferContext& ctx, TransferOptions* report_options) {
  if (!ctx.o.check_vector) return OkStatus();
  ASSIGN_OR_RETURN(std::string check, ctx.o.check_vector(ctx.vector_dir));
  if (!report_options->demo_facts) report_options->demo_facts = json::object();
  (*report_options->demo_facts)["known_vector_check"] = check;
  Log(ctx.log, "  " + check);
  return OkStatus();
}

// The vector's statistics: vector_stats.json, vector_layers.svg, and the JSON for the report.
StatusOr<json> WriteVectorStats(const TransferContext& ctx) {
  const TransferOptions& o = ctx.o;
  Progress progress("stats", 0, o.show_progress, "B");
  ASSIGN_OR_RETURN(merge::StatsReport stats,
                   merge::ComputeStats(ctx.vector_dir, o.target, o.threads, &progress));
  progress.Finish();
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "vector_stats.json", merge::StatsJson(stats)));
  RETURN_IF_ERROR(WriteFileAtomic(o.workdir / "vector_layers.svg", merge::StatsSvg(stats)));
  Log(ctx.log, fmt::format("  ‖v‖ = {:.6g}, ‖v‖/‖θ_target‖ = {:.3g}", std::sqrt(stats.total.sum_sq),
                           stats.total.target_sum_sq > 0
                               ? std::sqrt(stats.total.sum_sq / stats.total.target_sum_sq)
                               : 0.0));
  return json::parse(merge::StatsJson(stats), nullptr, false);
}

// A compact variant's compressed vector, written unless up to date. Returns its key.
StatusOr<std::string> EnsureCompactVector(const TransferContext& ctx, const Variant& v) {
  const TransferOptions& o = ctx.o;
  ASSIGN_OR_RETURN(CompactSpec spec, ParseCompactSpec(v.compact));
  const std::string compact_key = KeyOf({{"vector", ctx.vector_key}, {"compact", v.compact}});
  const std::string compact_step = "compact_" + spec.name;
  if (!o.force && ctx.state.Done(compact_step, compact_key, v.compact_dir)) return compact_key;
  merge::CompressOptions cz;
  cz.vector = ctx.vector_dir;
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
  RETURN_IF_ERROR(ctx.state.Mark(compact_step, compact_key));
  Log(ctx.log,
      fmt::format("  {}: {:.2f}% of the dense bf16 size, relative error {:.3f}, "
                  "cosine {:.3f}",
                  spec.name,
                  cr.dense_bf16_bytes ? 100.0 * cr.bytes_on_disk / cr.dense_bf16_bytes : 0.0,
                  cr.RelativeError(), cr.Cosine()));
  return compact_key;
}

// A control variant's random or shuffled vector, written unless up to date. Returns its key.
StatusOr<std::string> EnsureControlVector(const TransferContext& ctx, const Variant& v) {
  const TransferOptions& o = ctx.o;
  const fs::path control_dir = ControlVectorDir(o, v);
  const std::string control_key =
      KeyOf({{"vector", ctx.vector_key}, {"kind", v.control}, {"seed", v.control_seed}});
  const std::string control_step = "control_" + v.control + std::to_string(v.control_seed);
  if (!o.force && ctx.state.Done(control_step, control_key, control_dir)) return control_key;
  merge::ControlOptions co;
  co.like = ctx.vector_dir;
  co.out = control_dir;
  co.seed = v.control_seed;
  co.shuffle = v.control == "shuffle";
  co.force = true;
  co.threads = o.threads;
  co.version = o.version;
  Progress progress("control", 0, o.show_progress, "B");
  ASSIGN_OR_RETURN(merge::ControlReport cr, merge::MakeControl(co, &progress));
  progress.Finish();
  RETURN_IF_ERROR(ctx.state.Mark(control_step, control_key));
  Log(ctx.log, fmt::format("  {} control (seed {}): norms matched to {:.2g} relative", v.control,
                           v.control_seed, cr.max_relative_norm_error));
  return control_key;
}

// The key of a variant's merged model: its inputs (writing the compact or control vector it is
// made from first) and α.
StatusOr<std::string> VariantKey(const TransferContext& ctx, const Variant& v) {
  if (!v.compact.empty()) {
    ASSIGN_OR_RETURN(std::string compact_key, EnsureCompactVector(ctx, v));
    return KeyOf({{"target", ctx.target_id}, {"compact", compact_key}, {"alpha", v.alpha}});
  }
  if (v.control.empty()) {
    return KeyOf({{"target", ctx.target_id},
                  {"sft", ctx.sft_id},
                  {"grpo", ctx.grpo_id},
                  {"alpha", v.alpha},
                  {"vocab", ctx.o.vocab_mismatch}});
  }
  ASSIGN_OR_RETURN(std::string control_key, EnsureControlVector(ctx, v));
  return KeyOf({{"target", ctx.target_id}, {"control", control_key}, {"alpha", v.alpha}});
}

// Writes target + α·(the variant's vector) unless it is up to date.
Status ApplyVariant(const TransferContext& ctx, const Variant& v, const std::string& key) {
  const TransferOptions& o = ctx.o;
  const std::string step = "model_" + v.id;
  if (!o.force && ctx.state.Done(step, key, v.model_dir)) {
    Log(ctx.log, "  " + v.id + ": up to date, reused");
    return OkStatus();
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
  ao.vocab = ctx.vocab;
  ao.force = true;
  ao.threads = o.threads;
  ao.version = o.version;
  ao.command_line = o.command_line;
  Progress progress(v.id, 0, o.show_progress, "B");
  ASSIGN_OR_RETURN(merge::ApplyReport ar, merge::Apply(ao, &progress));
  progress.Finish();
  Log(ctx.log, fmt::format("  {}: {}", v.id, ar.formula));
  return ctx.state.Mark(step, key);
}

// Step 3: target + α·v (direct form), the compact forms and the controls.
Status WriteVariants(const TransferContext& ctx, const std::vector<Variant>& variants) {
  Log(ctx.log, "[3/5] writing the model variants");
  for (const Variant& v : variants) {
    if (v.id == "target") continue;
    ASSIGN_OR_RETURN(std::string key, VariantKey(ctx, v));
    if (ServesLoraModule(ctx.o, v)) {
      Log(ctx.log, "  " + v.id + ": served as a LoRA module of the target (no merged model)");
      continue;
    }
    RETURN_IF_ERROR(ApplyVariant(ctx, v, key));
  }
  return OkStatus();
}

// The variant's GGUF file for a {gguf} serve command, exported unless up to date (keyed on the
// model's identity and the dtype; the export is written to a temporary sibling and renamed, so a
// present file is complete).
Status EnsureGguf(const TransferContext& ctx, const Variant& v, const json& model_id) {
  const TransferOptions& o = ctx.o;
  if (!ServesGguf(o, v)) return OkStatus();
  const fs::path out = GgufPathFor(o, v);
  const std::string key = KeyOf({{"model", model_id}, {"dtype", o.gguf_dtype}});
  const std::string step = "gguf_" + v.id;
  if (!o.force && ctx.state.Done(step, key, out)) {
    Log(ctx.log, "  " + v.id + ": GGUF up to date, reused");
    return OkStatus();
  }
  std::error_code ec;
  fs::create_directories(out.parent_path(), ec);
  if (ec) return IoError("{}: cannot create: {}", out.parent_path().string(), ec.message());
  GgufExportOptions go;
  ASSIGN_OR_RETURN(go.dtype, ParseGgufDtype(o.gguf_dtype));
  go.force = true;
  Progress progress("gguf " + v.id, 0, o.show_progress, "B");
  ASSIGN_OR_RETURN(GgufExportReport r, ExportGguf(v.model_dir, out, go, &progress));
  progress.Finish();
  for (const auto& w : r.warnings) Log(ctx.log, "  warning: " + w);
  Log(ctx.log, fmt::format("  {}: exported {} ({}, {})", v.id, out.string(), r.dtype,
                           HumanBytes(r.file_bytes)));
  return ctx.state.Mark(step, key);
}

// Evaluates one variant unless its results are up to date; appends it to `finished_runs` unless
// its backend is not ready (an openai endpoint that does not serve it).
Status EvaluateVariant(const TransferContext& ctx, const Variant& v,
                       std::vector<std::pair<Variant, fs::path>>* finished_runs) {
  const TransferOptions& o = ctx.o;
  const fs::path run_dir = o.workdir / "runs" / v.id;
  std::error_code ec;
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
  if (o.backend == "local" && o.kv_dtype != DType::kBF16) eval_key_json["kv_dtype"] = "f32";
  // Only when given, so that earlier transfer directories keep their keys.
  if (!o.prompt_style.empty()) eval_key_json["prompt_style"] = o.prompt_style;
  if (o.max_gen_tokens) eval_key_json["max_gen_tokens"] = *o.max_gen_tokens;
  if (ServesGguf(o, v)) eval_key_json["gguf_dtype"] = o.gguf_dtype;
  if (o.backend == "openai" && o.max_length > 0) eval_key_json["max_length"] = o.max_length;
  eval::EvalOptions eo;
  eo.samples = o.samples;
  eo.temperature = o.temperature;
  eo.top_p = o.top_p;
  eo.sampling_seed = o.sampling_seed.value_or(o.seed);
  if (auto s = eval::SamplingSettingsJson(eo); !s.is_null()) eval_key_json["sampling"] = s;
  const std::string key = KeyOf(eval_key_json);
  const std::string step = "eval_" + v.id;
  if (!o.force && ctx.state.Done(step, key, run_dir / "results.json")) {
    Log(ctx.log, "  " + v.id + ": results up to date, reused");
    finished_runs->emplace_back(v, run_dir);
    return OkStatus();
  }
  RETURN_IF_ERROR(EnsureGguf(ctx, v, model_id));
  EvalSetup setup;
  ASSIGN_OR_RETURN(bool ready, MakeBackend(o, v, &setup, ctx.log));
  if (!ready) return OkStatus();
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
  eo.prompt_style = o.prompt_style;
  eo.max_gen_tokens = o.max_gen_tokens;
  eo.output_dir = run_dir;
  // A run whose key changed is redone; an interrupted run with the same key resumes.
  eo.force =
      o.force || (ctx.state.Has(step) && !ctx.state.Done(step, key, run_dir / "results.json") &&
                  fs::exists(run_dir / "results.json"));
  eo.provenance = {{"model", model_id}, {"variant", v.id}, {"rvec_version", o.version}};
  if (o.backend == "local" && o.bf16_activations) eo.provenance["activations"] = "bf16";
  if (o.backend == "local" && o.kv_dtype != DType::kBF16) eo.provenance["kv_dtype"] = "f32";
  eo.show_progress = o.show_progress;
  Log(ctx.log, "  " + v.id + " ...");
  ASSIGN_OR_RETURN(json results, eval::RunEvaluation(*setup.backend, eo));
  RETURN_IF_ERROR(ctx.state.Mark(step, key));
  finished_runs->emplace_back(v, run_dir);
  return OkStatus();
}

// Step 4: the same tasks, seed and prompts for every variant.
StatusOr<std::vector<std::pair<Variant, fs::path>>> EvaluateVariants(
    const TransferContext& ctx, const std::vector<Variant>& variants) {
  const TransferOptions& o = ctx.o;
  Log(ctx.log,
      fmt::format("[4/5] evaluating {} variants on {}", variants.size(), fmt::join(o.tasks, ",")));
  eval::CodeExecutionOptions exec = eval::GetCodeExecutionOptions();
  exec.allow = o.allow_code_execution;
  eval::SetCodeExecutionOptions(exec);
  std::vector<std::pair<Variant, fs::path>> finished_runs;
  for (const Variant& v : variants) RETURN_IF_ERROR(EvaluateVariant(ctx, v, &finished_runs));
  return finished_runs;
}

// Step 5: report.{md,html,json}.
StatusOr<TransferResult> WriteReport(const TransferOptions& report_options, const LogFn& log,
                                     json compat, json vector_info,
                                     const std::vector<Variant>& variants,
                                     std::vector<std::pair<Variant, fs::path>> finished_runs) {
  Log(log, "[5/5] writing the report");
  TransferResult result;
  result.variants = variants;
  ReportInputs ri;
  ri.options = &report_options;
  ri.compat = std::move(compat);
  ri.vector_stats = std::move(vector_info);
  ri.runs = std::move(finished_runs);
  ri.all_variants = variants;
  ASSIGN_OR_RETURN(result.report, WriteTransferReport(ri));
  const fs::path& workdir = report_options.workdir;
  result.report_md = workdir / "report.md";
  result.report_html = workdir / "report.html";
  result.report_json = workdir / "report.json";
  return result;
}

}  // namespace

StatusOr<TransferResult> RunTransfer(const TransferOptions& o, const LogFn& log) {
  RETURN_IF_ERROR(ValidateTransferOptions(o));
  std::error_code ec;
  fs::create_directories(o.workdir / "models", ec);
  if (ec) return IoError("{}: cannot create: {}", o.workdir.string(), ec.message());
  StepState state(o.workdir / "state.json");

  merge::VocabMode vocab{};
  ASSIGN_OR_RETURN(json compat, CheckModels(o, log, &vocab));
  RETURN_IF_ERROR(CheckDiskSpace(o, log));
  TransferContext ctx{o, log, state, vocab, {}, {}, {}, o.workdir / "vector", {}};
  ASSIGN_OR_RETURN(ctx.sft_id, ModelIdentity(o.sft));
  ASSIGN_OR_RETURN(ctx.grpo_id, ModelIdentity(o.grpo));
  ASSIGN_OR_RETURN(ctx.target_id, ModelIdentity(o.target));
  ctx.vector_key = KeyOf({{"sft", ctx.sft_id},
                          {"grpo", ctx.grpo_id},
                          {"dtype", DTypeName(o.vector_dtype)},
                          {"vocab", o.vocab_mismatch}});

  RETURN_IF_ERROR(ExtractVector(ctx));
  TransferOptions report_options = o;  // carries the known-vector check into the report
  RETURN_IF_ERROR(CheckKnownVector(ctx, &report_options));
  ASSIGN_OR_RETURN(json vector_info, WriteVectorStats(ctx));
  const std::vector<Variant> variants = PlanVariants(o);
  RETURN_IF_ERROR(WriteVariants(ctx, variants));
  ASSIGN_OR_RETURN(auto finished_runs, EvaluateVariants(ctx, variants));
  return WriteReport(report_options, log, std::move(compat), std::move(vector_info), variants,
                     std::move(finished_runs));
}

}  // namespace rvec::pipeline
