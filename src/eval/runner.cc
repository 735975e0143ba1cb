// The evaluation loop: prompts -> backend (in resumable chunks) -> scores -> samples JSONL and an
// lm-eval-shaped results.json.
#include "eval/runner.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <span>

#include "base/fs.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/sha256.h"
#include "eval/stats.h"
#include "eval/tasks/humaneval.h"

namespace rvec::eval {

namespace fs = std::filesystem;

std::filesystem::path DefaultDataDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "rvec" / "data";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return fs::path(home) / ".local" / "share" / "rvec" / "data";
  }
  return fs::path("rvec-data");
}

std::filesystem::path ResolveDataDir(const std::string& flag) {
  if (!flag.empty()) return fs::path(flag);
  if (const char* env = std::getenv("RVEC_DATA"); env && *env) return fs::path(env);
  return DefaultDataDir();
}

uint64_t SampleStream(const RequestKey& key) {
  // The same keyed hashing as the merge randomness (FNV-1a, SplitMix64 finaliser): a fixed
  // function of the key on every platform and run.
  return CounterRng(key.doc_id, key.task).Bits(key.index);
}

namespace {

std::string SamplesFile(const std::string& task) { return "samples_" + task + ".jsonl"; }

// The task's generation_kwargs with the run's --temperature / --top-p applied.
GenerationKwargs EffectiveKwargs(const EvalTask& task, const EvalOptions& options) {
  GenerationKwargs kw = task.config().generation;
  if (options.temperature) {
    kw.temperature = *options.temperature;
    kw.do_sample = *options.temperature > 0.0;
  }
  if (options.top_p) kw.top_p = *options.top_p;
  return kw;
}

// The sampling settings, or null when they leave the run as it was before sampling existed (one
// sample, no overrides), so that such runs keep their run.json and results.json unchanged.
nlohmann::json SamplingJson(const EvalOptions& options) {
  if (options.samples <= 1 && !options.top_p &&
      (!options.temperature || *options.temperature == 0.0)) {
    return nullptr;
  }
  return {{"samples", options.samples},
          {"temperature", options.temperature ? nlohmann::json(*options.temperature) : nullptr},
          {"top_p", options.top_p ? nlohmann::json(*options.top_p) : nullptr},
          {"seed", options.sampling_seed}};
}

double VersionNumber(const std::string& v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  return (end && *end == '\0') ? d : 0.0;
}

nlohmann::json TaskConfigJson(const EvalTask& task, const EvalOptions& options) {
  const TaskConfig& c = task.config();
  const GenerationKwargs gen = EffectiveKwargs(task, options);
  nlohmann::json j = {
      {"task", c.name},
      {"dataset", c.dataset},
      {"output_type",
       c.output_type == OutputType::kMultipleChoice ? "multiple_choice" : "generate_until"},
      {"description", c.description},
      {"target_delimiter", c.target_delimiter},
      {"fewshot_delimiter", c.fewshot_delimiter},
      {"num_fewshot", c.num_fewshot},
      {"fewshot_sampler", c.num_fewshot == 0                          ? "none"
                          : c.sampler == TaskConfig::Sampler::kFirstN ? "first_n"
                                                                      : "default"},
      {"metadata", {{"version", VersionNumber(c.version)}}}};
  if (c.output_type == OutputType::kGenerateUntil) {
    j["generation_kwargs"] = {{"until", gen.until},
                              {"max_gen_toks", gen.max_gen_toks},
                              {"do_sample", gen.do_sample},
                              {"temperature", gen.temperature}};
    // Written only when sampling is on, so that greedy runs keep their results.json.
    if (!SamplingJson(options).is_null()) {
      j["generation_kwargs"]["top_p"] = gen.top_p;
      j["repeats"] = options.samples;
    }
    nlohmann::json filters = nlohmann::json::array();
    for (const auto& f : c.filters) filters.push_back(f.name);
    j["filter_list"] = filters;
  }
  return j;
}

// One doc's saved record -> the response it holds.
StatusOr<DocResponse> ResponseFromRecord(const nlohmann::json& r, const std::string& label) {
  DocResponse resp;
  if (r.contains("raw_outputs") && r["raw_outputs"].is_array() && !r["raw_outputs"].empty()) {
    for (const auto& v : r["raw_outputs"]) {
      if (!v.is_string()) return DataLoss("{}: raw_outputs holds a non-string", label);
    }
    resp.generation = r["raw_outputs"][0].get<std::string>();
    for (size_t s = 1; s < r["raw_outputs"].size(); ++s) {
      resp.more_generations.push_back(r["raw_outputs"][s].get<std::string>());
    }
    return resp;
  }
  if (r.contains("raw_output") && r["raw_output"].is_string()) {
    resp.generation = r["raw_output"].get<std::string>();
    return resp;
  }
  if (r.contains("loglikelihoods") && r["loglikelihoods"].is_array()) {
    for (const auto& v : r["loglikelihoods"]) {
      if (!v.is_number()) return DataLoss("{}: non-numeric loglikelihood", label);
      resp.loglikelihoods.push_back(v.get<double>());
    }
    if (r.contains("is_greedy") && r["is_greedy"].is_array()) {
      for (const auto& v : r["is_greedy"])
        resp.is_greedy.push_back(v.is_boolean() && v.get<bool>());
    }
    return resp;
  }
  return DataLoss("{}: record has neither raw_output nor loglikelihoods", label);
}

// A record's score fields; with K > 1 samples also every sample's filtered answers and metrics.
void SetScoreFields(const DocScore& score, nlohmann::json* r) {
  (*r)["filtered"] = score.filtered;
  (*r)["metrics"] = score.metrics;
  if (score.sample_metrics.empty()) return;
  (*r)["filtered_samples"] = score.sample_filtered;
  (*r)["sample_metrics"] = score.sample_metrics;
  (*r)["majority"] = score.majority;
}

nlohmann::json MakeRecord(const EvalTask& task, size_t doc_id, const RenderedPrompt& prompt,
                          const DocResponse& resp, const std::vector<std::string>& finish_reasons,
                          const DocScore& score) {
  nlohmann::json r = {{"task", task.name()},
                      {"doc_id", doc_id},
                      {"doc", task.doc(doc_id)},
                      {"prompt", prompt.context},
                      {"prompt_hash", Sha256Hex(prompt.context)},
                      {"target", score.target}};
  if (!prompt.fewshot_indices.empty()) r["fewshot_indices"] = prompt.fewshot_indices;
  if (task.config().output_type == OutputType::kMultipleChoice) {
    r["continuations"] = prompt.continuations;
    r["loglikelihoods"] = resp.loglikelihoods;
    if (!resp.is_greedy.empty()) r["is_greedy"] = resp.is_greedy;
    r["pred"] = score.extra.value("pred", 0);
    r["pred_norm"] = score.extra.value("pred_norm", 0);
  } else {
    r["raw_output"] = resp.generation;
    if (!finish_reasons.empty() && !finish_reasons[0].empty()) {
      r["finish_reason"] = finish_reasons[0];
    }
    if (resp.num_samples() > 1) {
      nlohmann::json outputs = nlohmann::json::array();
      for (size_t s = 0; s < resp.num_samples(); ++s) outputs.push_back(resp.sample(s));
      r["raw_outputs"] = std::move(outputs);
      r["finish_reasons"] = finish_reasons;
    }
  }
  SetScoreFields(score, &r);
  return r;
}

// Reads RUN_DIR/samples_<task>.jsonl, dropping a truncated last line (an interrupted write).
StatusOr<std::vector<nlohmann::json>> ReadSamplesFile(const fs::path& path, bool* truncated) {
  std::vector<nlohmann::json> out;
  *truncated = false;
  if (!fs::exists(path)) return out;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  RETURN_IF_ERROR(ForEachJsonLine(
      text, path.string(),
      [&](nlohmann::json&& j, size_t) {
        out.push_back(std::move(j));
        return OkStatus();
      },
      truncated));
  if (!text.empty() && text.back() != '\n' && !*truncated) *truncated = true;
  return out;
}

// The tables of results.json, filled task by task and then group by group.
struct ResultTables {
  nlohmann::json results = nlohmann::json::object();
  nlohmann::json groups = nlohmann::json::object();
  nlohmann::json group_subtasks = nlohmann::json::object();
  nlohmann::json configs = nlohmann::json::object();
  nlohmann::json versions = nlohmann::json::object();
  nlohmann::json nshot = nlohmann::json::object();
  nlohmann::json higher = nlohmann::json::object();
  nlohmann::json nsamples = nlohmann::json::object();
  // Per task: metric key -> per-doc values (doc order), for groups and stderr.
  std::map<std::string, std::map<std::string, std::vector<double>>> values;
};

// One task's samples file and what it holds: a record per doc once scored.
struct TaskSamples {
  fs::path path;
  std::vector<std::optional<nlohmann::json>> records;
};

StatusOr<std::vector<std::unique_ptr<EvalTask>>> LoadTasks(const std::vector<std::string>& leaves,
                                                           const fs::path& data_dir) {
  std::vector<std::unique_ptr<EvalTask>> tasks;
  for (const auto& name : leaves) {
    ASSIGN_OR_RETURN(auto task, TaskRegistry::Global().Create(name));
    RETURN_IF_ERROR(task->Load(data_dir));
    tasks.push_back(std::move(task));
  }
  return tasks;
}

// What must match for a run directory to be resumed.
nlohmann::json RunFingerprint(const std::vector<std::string>& leaves, const Backend& backend,
                              const EvalOptions& options) {
  nlohmann::json fingerprint = {
      {"tasks", leaves},
      {"limit", options.limit ? nlohmann::json(*options.limit) : nlohmann::json(nullptr)},
      {"fewshot_seed", options.seed},
      {"apply_chat_template", options.chat_template != nullptr},
      {"fewshot_as_multiturn", options.fewshot_as_multiturn},
      {"system_instruction", options.system_instruction
                                 ? nlohmann::json(*options.system_instruction)
                                 : nlohmann::json(nullptr)},
      {"backend", backend.Kind()},
      {"model", options.provenance.value("model", nlohmann::json(nullptr))}};
  if (options.provenance.contains("activations")) {
    fingerprint["activations"] = options.provenance["activations"];
  }
  // Only when given, so that earlier run directories still resume.
  if (!options.prompt_style.empty()) fingerprint["prompt_style"] = options.prompt_style;
  if (options.max_gen_tokens) fingerprint["max_gen_tokens"] = *options.max_gen_tokens;
  if (auto sampling = SamplingJson(options); !sampling.is_null()) {
    fingerprint["sampling"] = sampling;
  }
  return fingerprint;
}

// Makes RUN_DIR ready: emptied with --force, refused when it holds a finished run, another run's
// unfinished work or foreign files; run.json written for a new run.
Status PrepareRunDir(const EvalOptions& options, const nlohmann::json& fingerprint) {
  const fs::path& dir = options.output_dir;
  const fs::path run_path = dir / "run.json";
  if (fs::exists(dir)) {
    if (options.force) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (ec) return IoError("{}: cannot remove: {}", dir.string(), ec.message());
    } else if (fs::exists(dir / "results.json")) {
      return AlreadyExists(
          "{} holds a finished run (results.json); use --force to redo it or "
          "choose another -o",
          dir.string());
    } else if (fs::exists(run_path)) {
      ASSIGN_OR_RETURN(std::string text, ReadFileToString(run_path));
      auto saved = nlohmann::json::parse(text, nullptr, false);
      if (saved.is_discarded() || saved.value("fingerprint", nlohmann::json()) != fingerprint) {
        return FailedPrecondition(
            "{} holds an unfinished run with different settings (see run.json); use --force to "
            "discard it or choose another -o",
            dir.string());
      }
    } else if (!fs::is_empty(dir)) {
      return FailedPrecondition("{} exists and is not an rvec run directory; choose another -o",
                                dir.string());
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("{}: cannot create: {}", dir.string(), ec.message());
  if (!fs::exists(run_path)) {
    RETURN_IF_ERROR(WriteFileAtomic(
        run_path,
        nlohmann::json({{"fingerprint", fingerprint}, {"provenance", options.provenance}}).dump(2) +
            "\n"));
  }
  return OkStatus();
}

PromptOptions MakePromptOptions(const EvalOptions& options) {
  PromptOptions popts;
  popts.chat_template = options.chat_template;
  popts.fewshot_as_multiturn = options.fewshot_as_multiturn;
  popts.system_instruction = options.system_instruction;
  popts.fewshot_seed = options.seed;
  return popts;
}

// Loads a task's saved records (refusing ones made from other prompts), repairs a torn last line,
// and re-scores them, which is cheap and keeps metrics consistent with this rvec version.
StatusOr<TaskSamples> ResumeSamples(const EvalTask& task, size_t limit,
                                    const std::vector<RenderedPrompt>& prompts,
                                    const fs::path& dir) {
  TaskSamples samples{dir / SamplesFile(task.name()),
                      std::vector<std::optional<nlohmann::json>>(limit)};
  bool truncated = false;
  ASSIGN_OR_RETURN(auto saved, ReadSamplesFile(samples.path, &truncated));
  for (auto& r : saved) {
    const size_t id = r.value("doc_id", static_cast<size_t>(-1));
    if (id >= limit) continue;
    if (r.value("prompt_hash", "") != Sha256Hex(prompts[id].context)) {
      return FailedPrecondition("{}: doc {} was scored with a different prompt; use --force",
                                samples.path.string(), id);
    }
    samples.records[id] = std::move(r);
  }
  if (truncated) {
    // Rewrite without the torn line so appends start on a fresh line.
    std::string text;
    for (const auto& r : samples.records) {
      if (r) text += r->dump() + "\n";
    }
    RETURN_IF_ERROR(WriteFileAtomic(samples.path, text));
  }
  for (size_t id = 0; id < limit; ++id) {
    if (!samples.records[id]) continue;
    ASSIGN_OR_RETURN(DocResponse resp,
                     ResponseFromRecord(*samples.records[id],
                                        samples.path.string() + " doc " + std::to_string(id)));
    ASSIGN_OR_RETURN(DocScore score, task.Score(id, resp));
    SetScoreFields(score, &*samples.records[id]);
  }
  return samples;
}

// One backend call for the multiple-choice docs `ids`: every (doc, choice) pair's log-likelihood.
Status QueryLoglikelihoods(Backend& backend, const EvalTask& task,
                           const std::vector<RenderedPrompt>& prompts, std::span<const size_t> ids,
                           Progress* progress, std::vector<DocResponse>* responses) {
  std::vector<LoglikelihoodRequest> reqs;
  for (const size_t id : ids) {
    for (size_t c = 0; c < prompts[id].continuations.size(); ++c) {
      LoglikelihoodRequest req;
      req.key.task = task.name();
      req.key.doc_id = id;
      req.key.index = c;
      req.context = prompts[id].context;
      req.continuation = prompts[id].continuations[c];
      reqs.push_back(std::move(req));
    }
  }
  ASSIGN_OR_RETURN(auto lls, backend.LogLikelihood(reqs, progress));
  if (lls.size() != reqs.size()) {
    return Internal("backend returned {} log-likelihoods for {} requests", lls.size(), reqs.size());
  }
  size_t r = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    for (size_t c = 0; c < prompts[ids[k]].continuations.size(); ++c, ++r) {
      (*responses)[k].loglikelihoods.push_back(lls[r].logprob);
      (*responses)[k].is_greedy.push_back(lls[r].is_greedy);
    }
  }
  return OkStatus();
}

// One backend call for the generation docs `ids`.
Status QueryGenerations(Backend& backend, const EvalTask& task,
                        const std::vector<RenderedPrompt>& prompts, std::span<const size_t> ids,
                        const EvalOptions& options, Progress* progress,
                        std::vector<DocResponse>* responses,
                        std::vector<std::vector<std::string>>* finish) {
  const size_t samples = std::max<size_t>(1, options.samples);
  const GenerationKwargs kwargs = EffectiveKwargs(task, options);
  std::vector<GenerationRequest> reqs;
  for (const size_t id : ids) {
    for (size_t s = 0; s < samples; ++s) {
      GenerationRequest req;
      req.key.task = task.name();
      req.key.doc_id = id;
      req.key.index = s;
      req.prompt = prompts[id].context;
      req.kwargs = kwargs;
      req.seed = options.sampling_seed;
      req.stream = SampleStream(req.key);
      reqs.push_back(std::move(req));
    }
  }
  ASSIGN_OR_RETURN(auto gens, backend.Generate(reqs, progress));
  if (gens.size() != reqs.size()) {
    return Internal("backend returned {} generations for {} requests", gens.size(), reqs.size());
  }
  for (size_t k = 0; k < ids.size(); ++k) {
    DocResponse& resp = (*responses)[k];
    for (size_t s = 0; s < samples; ++s) {
      GenerationResult& g = gens[k * samples + s];
      (s == 0 ? resp.generation : resp.more_generations.emplace_back()) = std::move(g.text);
      (*finish)[k].push_back(std::move(g.finish_reason));
    }
  }
  return OkStatus();
}

// Code-executing tasks run the chunk's programs (every sample's) in parallel (--jobs) before
// scoring, so that Score() only looks the outcomes up.
Status PrecomputeChunkExecution(const EvalTask& task, std::span<const size_t> ids,
                                const std::vector<DocResponse>& responses) {
  std::vector<size_t> doc_ids;
  std::vector<DocResponse> flat;
  for (size_t k = 0; k < ids.size(); ++k) {
    for (size_t s = 0; s < responses[k].num_samples(); ++s) {
      doc_ids.push_back(ids[k]);
      flat.push_back(DocResponse{responses[k].sample(s), {}, {}});
    }
  }
  return PrecomputeCodeExecution(task, doc_ids, flat, nullptr);
}

// The sandbox outcome of a doc's program ("execution"), and with K > 1 of every sample's
// ("executions").
void AddExecutionRecords(const EvalTask& task, size_t id, const DocResponse& resp,
                         nlohmann::json* record) {
  if (auto e = CodeExecutionRecord(task, id, resp.generation); !e.is_null()) {
    (*record)["execution"] = e;
  }
  if (resp.num_samples() == 1 || !TaskExecutesCode(task.config())) return;
  nlohmann::json all = nlohmann::json::array();
  for (size_t s = 0; s < resp.num_samples(); ++s) {
    all.push_back(CodeExecutionRecord(task, id, resp.sample(s)));
  }
  (*record)["executions"] = std::move(all);
}

// Queries the backend for one chunk of docs, scores them and appends their records to `out`
// (flushed, so that an interruption loses at most the chunk in flight).
Status RunChunk(Backend& backend, const EvalTask& task, const std::vector<RenderedPrompt>& prompts,
                std::span<const size_t> ids, const EvalOptions& options, Progress* progress,
                TaskSamples* samples, std::ofstream* out) {
  std::vector<DocResponse> responses(ids.size());
  std::vector<std::vector<std::string>> finish(ids.size());
  if (task.config().output_type == OutputType::kMultipleChoice) {
    RETURN_IF_ERROR(QueryLoglikelihoods(backend, task, prompts, ids, progress, &responses));
  } else {
    RETURN_IF_ERROR(
        QueryGenerations(backend, task, prompts, ids, options, progress, &responses, &finish));
    RETURN_IF_ERROR(PrecomputeChunkExecution(task, ids, responses));
  }
  std::string lines;
  for (size_t k = 0; k < ids.size(); ++k) {
    const size_t id = ids[k];
    ASSIGN_OR_RETURN(DocScore score, task.Score(id, responses[k]));
    auto& record = samples->records[id];
    record = MakeRecord(task, id, prompts[id], responses[k], finish[k], score);
    AddExecutionRecords(task, id, responses[k], &*record);
    lines += record->dump() + "\n";
  }
  *out << lines;
  out->flush();
  if (!*out) return IoError("{}: write failed", samples->path.string());
  return OkStatus();
}

// Runs the docs that have no record yet, in chunks of options.chunk.
Status RunPendingDocs(Backend& backend, const EvalTask& task,
                      const std::vector<RenderedPrompt>& prompts, const EvalOptions& options,
                      TaskSamples* samples) {
  std::vector<size_t> pending;
  for (size_t id = 0; id < samples->records.size(); ++id) {
    if (!samples->records[id]) pending.push_back(id);
  }
  const bool mc = task.config().output_type == OutputType::kMultipleChoice;
  uint64_t total_requests = 0;
  for (size_t id : pending) {
    total_requests += mc ? prompts[id].continuations.size() : std::max<size_t>(1, options.samples);
  }
  Progress progress(task.name(), total_requests, options.show_progress, "req");
  std::ofstream out;
  if (!pending.empty()) {
    out.open(samples->path, std::ios::app | std::ios::binary);
    if (!out) return IoError("{}: cannot open for appending", samples->path.string());
  }
  const size_t chunk = std::max<size_t>(1, options.chunk);
  for (size_t begin = 0; begin < pending.size(); begin += chunk) {
    const size_t end = std::min(pending.size(), begin + chunk);
    RETURN_IF_ERROR(RunChunk(backend, task, prompts,
                             std::span<const size_t>(pending).subspan(begin, end - begin), options,
                             &progress, samples, &out));
  }
  progress.Finish();
  return OkStatus();
}

// A task's metrics (mean and stderr over its docs) and its entries in the other tables.
void AggregateTask(const EvalTask& task, const TaskSamples& samples, const EvalOptions& options,
                   ResultTables* t) {
  nlohmann::json entry = {{"alias", task.name()}};
  auto& task_values = t->values[task.name()];
  for (const auto& key : task.MetricKeys(options.samples)) {
    std::vector<double> xs;
    for (const auto& r : samples.records) xs.push_back(r->at("metrics").value(key, 0.0));
    const size_t comma = key.find(',');
    const std::string metric = key.substr(0, comma), filter = key.substr(comma + 1);
    entry[key] = Mean(xs);
    const auto se = MeanStderr(xs);
    entry[metric + "_stderr," + filter] = se ? nlohmann::json(*se) : nlohmann::json("N/A");
    task_values[key] = std::move(xs);
    t->higher[task.name()][metric] = task.HigherIsBetter(metric);
  }
  t->results[task.name()] = entry;
  t->configs[task.name()] = TaskConfigJson(task, options);
  t->versions[task.name()] = VersionNumber(task.config().version);
  t->nshot[task.name()] = task.config().num_fewshot;
  t->nsamples[task.name()] = {{"original", task.size()}, {"effective", samples.records.size()}};
  t->group_subtasks[task.name()] = nlohmann::json::array();
}

// A group's metrics: size-weighted means of its subtasks', with pooled stderr.
void AggregateGroup(const TaskGroup& g, ResultTables* t) {
  nlohmann::json entry = {{"alias", g.name}};
  for (const auto& key : g.aggregate_metrics) {
    std::vector<double> ms, ses;
    std::vector<size_t> sizes;
    bool stderr_na = false;
    for (const auto& sub : g.subtasks) {
      auto& xs = t->values[sub][key];
      ms.push_back(Mean(xs));
      sizes.push_back(xs.size());
      const auto se = MeanStderr(xs);
      if (!se) stderr_na = true;
      ses.push_back(se.value_or(0.0));
    }
    const size_t comma = key.find(',');
    const std::string metric = key.substr(0, comma), filter = key.substr(comma + 1);
    entry[key] = WeightedMean(ms, sizes);
    entry[metric + "_stderr," + filter] =
        stderr_na ? nlohmann::json("N/A") : nlohmann::json(PooledSampleStderr(ses, sizes));
    t->higher[g.name][metric] = true;
  }
  size_t total = 0;
  for (const auto& sub : g.subtasks) {
    total += t->nsamples[sub]["effective"].get<size_t>();
    t->results[sub]["alias"] = " - " + sub;
  }
  t->results[g.name] = entry;
  t->groups[g.name] = entry;
  t->group_subtasks[g.name] = g.subtasks;
  t->versions[g.name] = VersionNumber(g.version);
  t->nsamples[g.name] = {{"effective", total}};
}

// results.json's "config": the provenance plus the settings that shaped the prompts.
nlohmann::json RunConfigJson(const Backend& backend, const EvalOptions& options) {
  nlohmann::json config = options.provenance;
  config["backend"] = backend.Kind();
  config["backend_config"] = backend.Config();
  config["limit"] = options.limit ? nlohmann::json(*options.limit) : nlohmann::json(nullptr);
  config["fewshot_seed"] = options.seed;
  config["apply_chat_template"] = options.chat_template != nullptr;
  config["fewshot_as_multiturn"] = options.chat_template != nullptr && options.fewshot_as_multiturn;
  config["system_instruction"] = options.system_instruction
                                     ? nlohmann::json(*options.system_instruction)
                                     : nlohmann::json(nullptr);
  config["data_dir"] = fs::absolute(options.data_dir).string();
  if (!options.prompt_style.empty()) config["prompt_style"] = options.prompt_style;
  if (auto sampling = SamplingJson(options); !sampling.is_null()) config["sampling"] = sampling;
  return config;
}

nlohmann::json ResultsJson(ResultTables& t, nlohmann::json config, double seconds) {
  return {{"results", t.results},
          {"groups", t.groups},
          {"group_subtasks", t.group_subtasks},
          {"configs", t.configs},
          {"versions", t.versions},
          {"n-shot", t.nshot},
          {"higher_is_better", t.higher},
          {"n-samples", t.nsamples},
          {"config", std::move(config)},
          {"date", static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count())},
          {"evaluation_time_s", seconds}};
}

}  // namespace

nlohmann::json SamplingSettingsJson(const EvalOptions& options) { return SamplingJson(options); }

StatusOr<std::vector<nlohmann::json>> ReadSamples(const std::filesystem::path& run_dir,
                                                  const std::string& task) {
  bool truncated = false;
  return ReadSamplesFile(run_dir / SamplesFile(task), &truncated);
}

StatusOr<nlohmann::json> RunEvaluation(Backend& backend, const EvalOptions& options) {
  ASSIGN_OR_RETURN(ResolvedTasks resolved, ResolveTaskList(options.tasks));
  ASSIGN_OR_RETURN(auto tasks, LoadTasks(resolved.leaves, options.data_dir));
  for (auto& task : tasks) {
    RETURN_IF_ERROR(task->SetPromptStyle(options.prompt_style, options.chat_template != nullptr));
    if (options.max_gen_tokens) task->SetMaxGenTokens(*options.max_gen_tokens);
  }
  RETURN_IF_ERROR(PrepareRunDir(options, RunFingerprint(resolved.leaves, backend, options)));
  const PromptOptions popts = MakePromptOptions(options);
  ResultTables tables;
  const auto started = std::chrono::steady_clock::now();
  for (const auto& task : tasks) {
    const size_t limit = options.limit ? std::min(*options.limit, task->size()) : task->size();
    ASSIGN_OR_RETURN(std::vector<RenderedPrompt> prompts, task->BuildPrompts(limit, popts));
    ASSIGN_OR_RETURN(TaskSamples samples, ResumeSamples(*task, limit, prompts, options.output_dir));
    RETURN_IF_ERROR(RunPendingDocs(backend, *task, prompts, options, &samples));
    AggregateTask(*task, samples, options, &tables);
  }
  for (const TaskGroup* g : resolved.groups) AggregateGroup(*g, &tables);
  nlohmann::json config = RunConfigJson(backend, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json doc = ResultsJson(tables, std::move(config), seconds);
  RETURN_IF_ERROR(WriteFileAtomic(options.output_dir / "results.json", doc.dump(2) + "\n"));
  return doc;
}

}  // namespace rvec::eval
