// `rvec bench`: prefill and decode speed of the CPU engine on a model, peak memory, SIMD target,
// and decode bandwidth as a fraction of the read bandwidth measured in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "base/progress.h"
#include "base/threading.h"
#include "cli/command.h"
#include "io/checkpoint.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/sampler.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "ops/bandwidth.h"
#include "ops/fma_peak.h"
#include "ops/matmul.h"

namespace rvec::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchFlags {
  std::string model;
  size_t prompt_tokens = 512;
  size_t gen_tokens = 128;
  size_t context = 0;  // positions already in each sequence's KV cache when decode starts
  std::string batch = "1,16";
  size_t prefill_chunk = 512;
  int repeats = 3;
  size_t bandwidth_mb = 1024;
  bool bf16_activations = false;
  std::string kv_dtype = "bf16";
  bool copy_context = false;
  size_t compare_kv_steps = 0;  // > 0: measure bf16 against f32 KV logits over this many steps  //
                                // each decode sequence copies the context instead of sharing it
  DType kv = DType::kBF16;      // parsed kv_dtype
};

// CPU seconds used by the whole process (all threads): on a busy machine, work / CPU time still
// says how fast the kernels are when they get the cores.
double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Peak resident set (VmHWM) in bytes, 0 when /proc is unavailable.
uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a;
  in >> a;
  return a;
}

StatusOr<std::vector<size_t>> ParseBatches(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos ||
        item.size() > 6 || std::stoul(item) == 0) {
      return InvalidArgument("--batch: '{}' is not a positive batch size (e.g. --batch 1,16)",
                             item);
    }
    out.push_back(std::stoul(item));
  }
  if (out.empty()) return InvalidArgument("--batch is empty");
  return out;
}

// The engine under test and what every measurement shares. The model's parts are borrowed.
struct BenchRig {
  const BenchFlags& f;
  const ModelConfig& config;
  Transformer& tf;
  KvPool& kv_pool;
  std::function<void(const std::string&)> note;
  std::mt19937 rng{1};
  std::vector<float> logits;
  std::unique_ptr<SequenceKv> context_kv;  // f.context prefilled positions, copied per sequence

  int32_t RandomId() { return static_cast<int32_t>(rng() % std::min<size_t>(config.vocab, 50000)); }
};

// Checks the flags that need no model; returns the decode batch sizes.
StatusOr<std::vector<size_t>> CheckBenchFlags(const BenchFlags& f) {
  ASSIGN_OR_RETURN(std::vector<size_t> batches, ParseBatches(f.batch));
  if (f.kv_dtype != "bf16" && f.kv_dtype != "f32") {
    return InvalidArgument("--kv-dtype: '{}' is not bf16 or f32", f.kv_dtype);
  }
  if (f.prompt_tokens == 0 && f.gen_tokens == 0 && f.compare_kv_steps == 0) {
    return InvalidArgument("nothing to measure");
  }
  if (f.repeats < 1) return InvalidArgument("--repeats must be >= 1");
  if (f.context > 0 && f.gen_tokens == 0) {
    return InvalidArgument("--context sets the depth decode starts at; --gen-tokens is 0");
  }
  return batches;
}

// Decode at depth (as llama-bench -d): f.context random tokens prefilled once, untimed; every
// decode sequence starts from a copy of that cache.
Status PrefillContext(BenchRig& rig) {
  const BenchFlags& f = rig.f;
  rig.context_kv = rig.kv_pool.TryAllocate(f.context, f.kv);
  if (!rig.context_kv) return Internal("--context {}: no room in the KV pool", f.context);
  rig.note(fmt::format("  prefilling {} tokens of context (not timed)...", f.context));
  for (size_t p = 0; p < f.context; p += f.prefill_chunk) {
    std::vector<TokenInput> in;
    const size_t end = std::min(f.context, p + f.prefill_chunk);
    for (size_t i = p; i < end; ++i) in.push_back({rig.RandomId(), i, rig.context_kv.get(), false});
    rig.tf.Forward(in, &rig.logits);
  }
  return OkStatus();
}

// First touch of the mapped weights (page faults), kept out of the timed runs. Returns seconds.
double WarmUp(BenchRig& rig) {
  const auto t_warm = Clock::now();
  auto kv = rig.kv_pool.TryAllocate(1, rig.f.kv);
  const TokenInput in{rig.RandomId(), 0, kv.get(), true};
  rig.tf.Forward({&in, 1}, &rig.logits);
  return Seconds(t_warm, Clock::now());
}

// Prefill of f.prompt_tokens random tokens in chunks of f.prefill_chunk, f.repeats times.
nlohmann::json MeasurePrefill(BenchRig& rig) {
  const BenchFlags& f = rig.f;
  std::vector<double> times, cpu;
  for (int r = 0; r < f.repeats; ++r) {
    std::vector<int32_t> ids(f.prompt_tokens);
    for (auto& id : ids) id = rig.RandomId();
    auto kv = rig.kv_pool.TryAllocate(f.prompt_tokens, f.kv);
    const double c0 = ProcessCpuSeconds();
    const auto t0 = Clock::now();
    for (size_t p = 0; p < ids.size(); p += f.prefill_chunk) {
      std::vector<TokenInput> in;
      const size_t end = std::min(ids.size(), p + f.prefill_chunk);
      for (size_t i = p; i < end; ++i) in.push_back({ids[i], i, kv.get(), i + 1 == ids.size()});
      rig.tf.Forward(in, &rig.logits);
    }
    times.push_back(Seconds(t0, Clock::now()));
    cpu.push_back(ProcessCpuSeconds() - c0);
    rig.note(fmt::format("  prefill {} tokens: {:.3f} s ({:.1f} tokens/s), {:.3f} CPU s",
                         f.prompt_tokens, times.back(), f.prompt_tokens / times.back(),
                         cpu.back()));
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  return {{"prompt_tokens", f.prompt_tokens},
          {"median_seconds", median},
          {"tokens_per_s", f.prompt_tokens / median},
          {"best_tokens_per_s", f.prompt_tokens / times.front()},
          {"tokens_per_cpu_second", f.prompt_tokens / *std::min_element(cpu.begin(), cpu.end())},
          {"chunk", f.prefill_chunk}};
}

// Greedy decode of f.gen_tokens steps with `b` sequences stepped together, f.repeats times.
// `batch1_rate` is batch 1's rate once measured (0 before), for the speed-up.
nlohmann::json MeasureDecode(BenchRig& rig, size_t b, const BandwidthResult& bw,
                             uint64_t mapped_bytes, double* batch1_rate) {
  const BenchFlags& f = rig.f;
  const ModelConfig& config = rig.config;
  std::vector<double> times, cpu;
  uint64_t kv_bytes = 0;
  const size_t capacity = f.context + f.gen_tokens + 1;
  for (int r = 0; r < f.repeats; ++r) {
    std::vector<std::unique_ptr<SequenceKv>> kvs;
    std::vector<int32_t> next(b);
    for (size_t s = 0; s < b; ++s) {
      // The K samples of one prompt: the context's KV is referenced, not copied, unless asked.
      kvs.push_back(f.context > 0 ? rig.kv_pool.TryAllocateWithPrefix(capacity, *rig.context_kv,
                                                                      f.context, !f.copy_context)
                                  : rig.kv_pool.TryAllocate(capacity, f.kv));
      next[s] = rig.RandomId();
    }
    kv_bytes = rig.kv_pool.used();
    std::vector<TokenInput> in(b);
    const double c0 = ProcessCpuSeconds();
    const auto t0 = Clock::now();
    for (size_t step = 0; step < f.gen_tokens; ++step) {
      for (size_t s = 0; s < b; ++s) in[s] = {next[s], f.context + step, kvs[s].get(), true};
      rig.tf.Forward(in, &rig.logits);
      for (size_t s = 0; s < b; ++s) next[s] = Argmax(&rig.logits[s * config.vocab], config.vocab);
    }
    times.push_back(Seconds(t0, Clock::now()));
    cpu.push_back(ProcessCpuSeconds() - c0);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double rate = double(b * f.gen_tokens) / median;
  if (b == 1) *batch1_rate = rate;
  // What b private copies of the context would hold, for the saving of the shared prompt KV.
  const uint64_t unshared = b * rig.kv_pool.BytesFor(capacity, f.kv) +
                            (f.context > 0 ? rig.kv_pool.BytesFor(f.context, f.kv) : 0);
  nlohmann::json d = {{"batch", b},
                      {"context", f.context},
                      {"kv_dtype", f.kv_dtype},
                      {"context_kv", f.context == 0   ? "none"
                                     : f.copy_context ? "copied"
                                                      : "shared"},
                      {"kv_bytes", kv_bytes},
                      {"kv_bytes_if_copied", unshared},
                      {"gen_tokens", f.gen_tokens},
                      {"median_seconds", median},
                      {"tokens_per_s", rate},
                      {"tokens_per_s_per_sequence", rate / b},
                      {"tokens_per_cpu_second",
                       double(b * f.gen_tokens) / *std::min_element(cpu.begin(), cpu.end())}};
  // Weight bytes streamed per step over the measured read bandwidth.
  const double gbps = double(mapped_bytes) * f.gen_tokens / median / 1e9;
  d["weight_stream_gb_per_s"] = gbps;
  d["bandwidth_fraction"] = bw.gb_per_s > 0 ? gbps / bw.gb_per_s : 0.0;
  if (*batch1_rate > 0 && b > 1) d["speedup_vs_batch1"] = rate / *batch1_rate;
  rig.note(fmt::format(
      "  decode batch {} at context {}: {:.1f} tokens/s ({:.1f} per sequence), {:.1f} GB/s of "
      "weights = {:.0f}% of measured read bandwidth; KV {} ({} if copied)",
      b, f.context, rate, rate / b, gbps, 100 * gbps / bw.gb_per_s, HumanBytes(kv_bytes),
      HumanBytes(unshared)));
  return d;
}

// bf16 against f32 KV on the same tokens: a random prompt of f.prompt_tokens (at least 16) is
// prefilled into one cache of each dtype, then both decode the f32 cache's greedy tokens (teacher
// forcing keeps the two on one path). Reports the largest logit difference and how often the
// greedy token differs.
nlohmann::json CompareKvDtypes(BenchRig& rig) {
  const BenchFlags& f = rig.f;
  const size_t V = rig.config.vocab;
  const size_t prompt = std::max<size_t>(f.prompt_tokens, 16);
  const size_t steps = f.compare_kv_steps;
  auto kv32 = rig.kv_pool.TryAllocate(prompt + steps + 1, DType::kF32);
  auto kv16 = rig.kv_pool.TryAllocate(prompt + steps + 1, DType::kBF16);
  if (!kv32 || !kv16) return {{"error", "no room in the KV pool"}};
  std::vector<TokenInput> in;
  int32_t next = 0;
  for (size_t p = 0; p < prompt; p += f.prefill_chunk) {
    in.clear();
    const size_t end = std::min(prompt, p + f.prefill_chunk);
    for (size_t i = p; i < end; ++i) {
      const int32_t id = rig.RandomId();
      in.push_back({id, i, kv32.get(), i + 1 == prompt});
      in.push_back({id, i, kv16.get(), i + 1 == prompt});
    }
    rig.tf.Forward(in, &rig.logits);
  }
  double max_abs = 0, max_logit = 0;
  size_t flips = 0;
  for (size_t step = 0; step <= steps; ++step) {
    const float* a = &rig.logits[0];
    const float* b = &rig.logits[V];
    for (size_t v = 0; v < V; ++v) {
      max_abs = std::max(max_abs, double(std::fabs(a[v] - b[v])));
      max_logit = std::max(max_logit, double(std::fabs(a[v])));
    }
    next = Argmax(a, V);
    if (Argmax(b, V) != next) ++flips;
    if (step == steps) break;
    in = {{next, prompt + step, kv32.get(), true}, {next, prompt + step, kv16.get(), true}};
    rig.tf.Forward(in, &rig.logits);
  }
  rig.note(fmt::format(
      "  bf16 vs f32 KV over {} positions after a {}-token prompt: max |logit diff| {:.3g} "
      "(largest |logit| {:.3g}), greedy token differs at {} of {}",
      steps + 1, prompt, max_abs, max_logit, flips, steps + 1));
  return {{"prompt_tokens", prompt},
          {"positions_compared", steps + 1},
          {"max_abs_logit_diff", max_abs},
          {"max_abs_logit", max_logit},
          {"greedy_token_changes", flips}};
}

// The human-readable summary of a finished run (`out` is the --json document).
void PrintBenchText(const BenchFlags& f, const nlohmann::json& out, size_t bandwidth_threads,
                    uint64_t kv_peak) {
  std::printf("model          %s (%s, %s weights, %.2f GB, %.0fM parameters)\n", f.model.c_str(),
              out["architecture"].get<std::string>().c_str(),
              out["weights_dtype"].get<std::string>().c_str(),
              out["weight_bytes"].get<uint64_t>() / 1e9, out["parameters"].get<uint64_t>() / 1e6);
  std::printf("engine         %s, %zu threads, %s activations, %s KV\n",
              out["simd_target"].get<std::string>().c_str(), out["threads"].get<size_t>(),
              f.bf16_activations ? "bf16" : "f32", f.kv_dtype.c_str());
  std::printf("load (mmap)    %.3f s; first token (page-in) %.3f s\n",
              out["load_seconds"].get<double>(), out["first_token_seconds"].get<double>());
  std::printf("read bandwidth %.1f GB/s (%zu threads) -> decode cap %.1f tokens/s\n",
              out["read_bandwidth_gb_per_s"].get<double>(), bandwidth_threads,
              out["bandwidth_cap_tokens_per_s"].get<double>());
  if (out.contains("prefill")) {
    std::printf(
        "prefill        %zu tokens: %.1f tokens/s (median of %d); matrix products %.0f GFLOP/s "
        "= %.0f%% of the %.0f GFLOP/s f32 FMA peak measured now\n",
        f.prompt_tokens, out["prefill"]["tokens_per_s"].get<double>(), f.repeats,
        out["prefill"]["matmul_gflops"].get<double>(),
        100 * out["prefill"]["fma_peak_fraction"].get<double>(),
        out["fma_peak_gflops"].get<double>());
  }
  for (const auto& d : out["decode"]) {
    std::printf(
        "decode b=%-4zu  %s%.1f tokens/s (%.1f/sequence), %.0f%% of read bandwidth%s; KV %s\n",
        d["batch"].get<size_t>(),
        f.context > 0 ? fmt::format("at context {}: ", f.context).c_str() : "",
        d["tokens_per_s"].get<double>(), d["tokens_per_s_per_sequence"].get<double>(),
        100 * d["bandwidth_fraction"].get<double>(),
        d.contains("speedup_vs_batch1")
            ? fmt::format(", {:.1f}x batch 1", d["speedup_vs_batch1"].get<double>()).c_str()
            : "",
        HumanBytes(d["kv_bytes"].get<uint64_t>()).c_str());
  }
  if (out.contains("kv_bf16_vs_f32")) {
    const auto& c = out["kv_bf16_vs_f32"];
    std::printf(
        "bf16 KV        max |logit - f32 KV logit| %.3g over %zu positions; greedy token "
        "changed %zu times\n",
        c["max_abs_logit_diff"].get<double>(), c["positions_compared"].get<size_t>(),
        c["greedy_token_changes"].get<size_t>());
  }
  std::printf("peak memory    %s (VmHWM); KV cache %s\n", HumanBytes(PeakRss()).c_str(),
              HumanBytes(kv_peak).c_str());
  std::printf("load average   %s at start, %s at end (other work on the machine skews results)\n",
              out["load_average_at_start"].get<std::string>().c_str(),
              out["load_average_at_end"].get<std::string>().c_str());
}

Status RunBench(BenchFlags f) {
  ASSIGN_OR_RETURN(std::vector<size_t> batches, CheckBenchFlags(f));
  f.kv = f.kv_dtype == "bf16" ? DType::kBF16 : DType::kF32;
  const auto t_load = Clock::now();
  ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(f.model));
  if (!ckpt.config()) return NotFound("{}: no config.json next to the weights", f.model);
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromHf(*ckpt.config(), f.model));
  ASSIGN_OR_RETURN(ModelWeights weights, ModelWeights::Load(ckpt, config));
  const double load_s = Seconds(t_load, Clock::now());
  if (std::max(f.prompt_tokens, f.context) + f.gen_tokens + 1 > config.max_positions) {
    return InvalidArgument(
        "--prompt-tokens (or --context) + --gen-tokens exceed the model's {} positions",
        config.max_positions);
  }
  const bool quiet = Globals().quiet;
  auto note = [quiet](const std::string& s) {
    if (!quiet) std::fprintf(stderr, "%s\n", s.c_str());
  };
  ThreadPool pool(Globals().threads);
  note(fmt::format("bench: {} ({}), {} threads, target {}; measuring read bandwidth...", f.model,
                   config.architecture, pool.NumWorkers(), MatMulTargetName()));
  const BandwidthResult bw = MeasureReadBandwidth(&pool, f.bandwidth_mb << 20, 5);
  const FmaPeakResult fma = MeasureFmaPeak(&pool);
  const MatMulPrecision precision =
      f.bf16_activations ? MatMulPrecision::kBF16Activations : MatMulPrecision::kExact;
  Transformer tf(config, weights, &pool, precision);
  size_t max_batch = *std::max_element(batches.begin(), batches.end());
  const size_t positions =
      std::max({f.prompt_tokens, f.context + f.gen_tokens + 1,
                std::max<size_t>(f.prompt_tokens, 16) + f.compare_kv_steps + 1});
  // Room for every decode sequence twice over, plus the shared context.
  KvPool kv_pool(config,
                 config.KvBytesPerToken() * (positions * std::max<size_t>(max_batch, 1) * 2 +
                                             RoundUpToKeyTile(f.context + 1)));
  BenchRig rig{f, config, tf, kv_pool, note, std::mt19937(1), {}, nullptr};
  const double first_token_s = WarmUp(rig);

  nlohmann::json out = {{"model", f.model},
                        {"architecture", config.architecture},
                        {"weights_dtype", DTypeName(weights.embed_tokens.dtype)},
                        {"parameters", ckpt.TotalParameters()},
                        {"weight_bytes", ckpt.TotalTensorBytes()},
                        {"bytes_read_per_token", weights.mapped_bytes},
                        {"threads", pool.NumWorkers()},
                        {"simd_target", MatMulTargetName()},
                        {"activations", f.bf16_activations ? "bf16" : "f32"},
                        {"kv_dtype", f.kv_dtype},
                        {"load_seconds", load_s},
                        {"first_token_seconds", first_token_s},
                        {"read_bandwidth_gb_per_s", bw.gb_per_s},
                        {"load_average_at_start", LoadAverage()}};
  out["fma_peak_gflops"] = fma.gflops;
  if (f.prompt_tokens > 0) {
    out["prefill"] = MeasurePrefill(rig);
    // Matrix-product FLOPs per prompt token: every linear weight but the embedding (and the LM
    // head, which runs for the last position only); attention's own products are not counted.
    const uint64_t embed = uint64_t(config.vocab) * config.hidden;
    const double linear =
        double(ckpt.TotalParameters()) - double(embed) * (config.tie_embeddings ? 1 : 2);
    const double gflops = 2 * linear * out["prefill"]["tokens_per_s"].get<double>() / 1e9;
    out["prefill"]["matmul_gflops"] = gflops;
    out["prefill"]["fma_peak_fraction"] = fma.gflops > 0 ? gflops / fma.gflops : 0.0;
  }
  out["context"] = f.context;
  if (f.context > 0) RETURN_IF_ERROR(PrefillContext(rig));
  nlohmann::json decode = nlohmann::json::array();
  double batch1_rate = 0;
  for (size_t b : batches) {
    if (f.gen_tokens == 0) break;
    decode.push_back(MeasureDecode(rig, b, bw, weights.mapped_bytes, &batch1_rate));
  }
  out["decode"] = decode;
  if (f.compare_kv_steps > 0) out["kv_bf16_vs_f32"] = CompareKvDtypes(rig);
  out["bandwidth_cap_tokens_per_s"] = bw.gb_per_s * 1e9 / double(weights.mapped_bytes);
  out["peak_rss_bytes"] = PeakRss();
  out["kv_cache_peak_bytes"] = kv_pool.peak();
  out["load_average_at_end"] = LoadAverage();

  if (Globals().json) {
    PrintJson(out.dump(2));
    return OkStatus();
  }
  PrintBenchText(f, out, bw.threads, kv_pool.peak());
  return OkStatus();
}

const RegisterCommand kBench(
    "bench", "Measure engine prefill/decode speed, memory and bandwidth use", 52,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<BenchFlags>();
      app.description(
          "Benchmark the CPU engine on a model: prompt processing (prefill) tokens/s, decode "
          "tokens/s per batch size (sequences stepped together), load time, peak memory, the "
          "SIMD target, decode weight traffic as a fraction of the machine's read bandwidth and "
          "prefill's matrix products as a fraction of its f32 FMA peak, both measured in the same "
          "run. Token ids are random; numbers are medians. scripts/bench_llamacpp.sh runs the "
          "same measurements beside llama.cpp's llama-bench.\n\n"
          "Examples:\n"
          "  rvec synth --preset qwen2.5-0.5b --dtype bf16 -o /tmp/q05 && rvec bench /tmp/q05\n"
          "  rvec bench /tmp/q05 --prompt-tokens 512 --gen-tokens 128 --batch 1,16 --json\n"
          "  rvec bench /tmp/q05 --prompt-tokens 0 --context 4096 --batch 1,8 --kv-dtype f32");
      app.add_option("model", f->model, "Model directory")->required();
      app.add_option("--prompt-tokens", f->prompt_tokens, "Prefill length (default 512; 0 = skip)");
      app.add_option("--gen-tokens", f->gen_tokens, "Decode steps per batch (default 128)");
      app.add_option("--context", f->context,
                     "Decode at this depth: tokens already in each sequence's KV cache, "
                     "prefilled once and not timed (as llama-bench -d; default 0)");
      app.add_option("--batch", f->batch, "Decode batch sizes, comma-separated (default 1,16)");
      app.add_option("--prefill-chunk", f->prefill_chunk, "Tokens per prefill step (default 512)");
      app.add_option("--repeats", f->repeats, "Runs per measurement (median; default 3)");
      app.add_option("--bandwidth-mb", f->bandwidth_mb,
                     "Bandwidth probe buffer (default 1024 MiB)");
      app.add_flag("--bf16-activations", f->bf16_activations,
                   "Round activations to bf16 for the AVX512_BF16 dot product");
      app.add_option("--kv-dtype", f->kv_dtype, "KV-cache dtype: bf16 (default) or f32");
      app.add_flag("--copy-context", f->copy_context,
                   "Give each decode sequence a private copy of the --context KV instead of "
                   "sharing one read-only copy (to measure what sharing saves)");
      app.add_option("--compare-kv-steps", f->compare_kv_steps,
                     "Also measure bf16 against f32 KV: largest logit difference and greedy "
                     "changes over this many decode steps (default 0 = off)");
      AddCommonFlags(app);
      return [f]() { return RunBench(*f); };
    });

}  // namespace
}  // namespace rvec::cli
