// The evaluation loop: prompts -> backend (in resumable chunks) -> scores -> samples JSONL and an
// lm-eval-shaped results.json.
#include "eval/runner.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "base/fs.h"
#include "base/progress.h"
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

namespace {

std::string SamplesFile(const std::string& task) { return "samples_" + task + ".jsonl"; }

double VersionNumber(const std::string& v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  return (end && *end == '\0') ? d : 0.0;
}

nlohmann::json TaskConfigJson(const EvalTask& task) {
  const TaskConfig& c = task.config();
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
    j["generation_kwargs"] = {{"until", c.generation.until},
                              {"max_gen_toks", c.generation.max_gen_toks},
                              {"do_sample", c.generation.do_sample},
                              {"temperature", c.generation.temperature}};
    nlohmann::json filters = nlohmann::json::array();
    for (const auto& f : c.filters) filters.push_back(f.name);
    j["filter_list"] = filters;
  }
  return j;
}

// One doc's saved record -> the response it holds.
StatusOr<DocResponse> ResponseFromRecord(const nlohmann::json& r, const std::string& label) {
  DocResponse resp;
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

nlohmann::json MakeRecord(const EvalTask& task, size_t doc_id, const RenderedPrompt& prompt,
                          const DocResponse& resp, const std::string& finish_reason,
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
    if (!finish_reason.empty()) r["finish_reason"] = finish_reason;
  }
  r["filtered"] = score.filtered;
  r["metrics"] = score.metrics;
  return r;
}

// Reads RUN_DIR/samples_<task>.jsonl, dropping a truncated last line (an interrupted write).
StatusOr<std::vector<nlohmann::json>> ReadSamplesFile(const fs::path& path, bool* truncated) {
  std::vector<nlohmann::json> out;
  *truncated = false;
  if (!fs::exists(path)) return out;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool last_unterminated = end == std::string::npos;
    if (last_unterminated) end = text.size();
    ++line_no;
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (last_unterminated) {
        *truncated = true;
        break;
      }
      return DataLoss("{}: line {} is not a JSON object", path.string(), line_no);
    }
    out.push_back(std::move(j));
  }
  if (!text.empty() && text.back() != '\n' && !*truncated) *truncated = true;
  return out;
}

}  // namespace

StatusOr<std::vector<nlohmann::json>> ReadSamples(const std::filesystem::path& run_dir,
                                                  const std::string& task) {
  bool truncated = false;
  return ReadSamplesFile(run_dir / SamplesFile(task), &truncated);
}

StatusOr<nlohmann::json> RunEvaluation(Backend& backend, const EvalOptions& options) {
  ASSIGN_OR_RETURN(ResolvedTasks resolved, ResolveTaskList(options.tasks));
  std::vector<std::unique_ptr<EvalTask>> tasks;
  for (const auto& name : resolved.leaves) {
    ASSIGN_OR_RETURN(auto task, TaskRegistry::Global().Create(name));
    RETURN_IF_ERROR(task->Load(options.data_dir));
    tasks.push_back(std::move(task));
  }

  // What must match for a run directory to be resumed.
  nlohmann::json fingerprint = {
      {"tasks", resolved.leaves},
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

  const fs::path dir = options.output_dir;
  const fs::path results_path = dir / "results.json";
  const fs::path run_path = dir / "run.json";
  if (fs::exists(dir)) {
    if (options.force) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (ec) return IoError("{}: cannot remove: {}", dir.string(), ec.message());
    } else if (fs::exists(results_path)) {
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

  PromptOptions popts;
  popts.chat_template = options.chat_template;
  popts.fewshot_as_multiturn = options.fewshot_as_multiturn;
  popts.system_instruction = options.system_instruction;
  popts.fewshot_seed = options.seed;

  nlohmann::json results = nlohmann::json::object();
  nlohmann::json configs = nlohmann::json::object(), versions = nlohmann::json::object();
  nlohmann::json nshot = nlohmann::json::object(), higher = nlohmann::json::object();
  nlohmann::json nsamples = nlohmann::json::object(), group_subtasks = nlohmann::json::object();
  // Per task: metric key -> per-doc values (doc order), for groups and stderr.
  std::map<std::string, std::map<std::string, std::vector<double>>> values;
  const auto started = std::chrono::steady_clock::now();

  for (const auto& task : tasks) {
    const size_t limit = options.limit ? std::min(*options.limit, task->size()) : task->size();
    ASSIGN_OR_RETURN(std::vector<RenderedPrompt> prompts, task->BuildPrompts(limit, popts));
    const fs::path samples_path = dir / SamplesFile(task->name());
    bool truncated = false;
    ASSIGN_OR_RETURN(auto saved, ReadSamplesFile(samples_path, &truncated));
    std::vector<std::optional<nlohmann::json>> records(limit);
    for (auto& r : saved) {
      const size_t id = r.value("doc_id", static_cast<size_t>(-1));
      if (id >= limit) continue;
      if (r.value("prompt_hash", "") != Sha256Hex(prompts[id].context)) {
        return FailedPrecondition("{}: doc {} was scored with a different prompt; use --force",
                                  samples_path.string(), id);
      }
      records[id] = std::move(r);
    }
    if (truncated) {
      // Rewrite without the torn line so appends start on a fresh line.
      std::string text;
      for (const auto& r : records) {
        if (r) text += r->dump() + "\n";
      }
      RETURN_IF_ERROR(WriteFileAtomic(samples_path, text));
    }
    // Re-score saved responses (cheap; keeps metrics consistent with this rvec version).
    for (size_t id = 0; id < limit; ++id) {
      if (!records[id]) continue;
      ASSIGN_OR_RETURN(
          DocResponse resp,
          ResponseFromRecord(*records[id], samples_path.string() + " doc " + std::to_string(id)));
      ASSIGN_OR_RETURN(DocScore score, task->Score(id, resp));
      (*records[id])["metrics"] = score.metrics;
      (*records[id])["filtered"] = score.filtered;
    }
    std::vector<size_t> pending;
    for (size_t id = 0; id < limit; ++id) {
      if (!records[id]) pending.push_back(id);
    }
    const bool mc = task->config().output_type == OutputType::kMultipleChoice;
    uint64_t total_requests = 0;
    for (size_t id : pending) total_requests += mc ? prompts[id].continuations.size() : 1;
    Progress progress(task->name(), total_requests, options.show_progress, "req");
    std::ofstream out;
    if (!pending.empty()) {
      out.open(samples_path, std::ios::app | std::ios::binary);
      if (!out) return IoError("{}: cannot open for appending", samples_path.string());
    }
    const size_t chunk = std::max<size_t>(1, options.chunk);
    for (size_t begin = 0; begin < pending.size(); begin += chunk) {
      const size_t end = std::min(pending.size(), begin + chunk);
      std::vector<DocResponse> responses(end - begin);
      std::vector<std::string> finish(end - begin);
      if (mc) {
        std::vector<LoglikelihoodRequest> reqs;
        for (size_t k = begin; k < end; ++k) {
          const size_t id = pending[k];
          for (size_t c = 0; c < prompts[id].continuations.size(); ++c) {
            LoglikelihoodRequest req;
            req.key.task = task->name();
            req.key.doc_id = id;
            req.key.index = c;
            req.context = prompts[id].context;
            req.continuation = prompts[id].continuations[c];
            reqs.push_back(std::move(req));
          }
        }
        ASSIGN_OR_RETURN(auto lls, backend.LogLikelihood(reqs, &progress));
        if (lls.size() != reqs.size()) {
          return Internal("backend returned {} log-likelihoods for {} requests", lls.size(),
                          reqs.size());
        }
        size_t r = 0;
        for (size_t k = begin; k < end; ++k) {
          for (size_t c = 0; c < prompts[pending[k]].continuations.size(); ++c, ++r) {
            responses[k - begin].loglikelihoods.push_back(lls[r].logprob);
            responses[k - begin].is_greedy.push_back(lls[r].is_greedy);
          }
        }
      } else {
        std::vector<GenerationRequest> reqs;
        for (size_t k = begin; k < end; ++k) {
          const size_t id = pending[k];
          GenerationRequest req;
          req.key.task = task->name();
          req.key.doc_id = id;
          req.prompt = prompts[id].context;
          req.kwargs = task->config().generation;
          reqs.push_back(std::move(req));
        }
        ASSIGN_OR_RETURN(auto gens, backend.Generate(reqs, &progress));
        if (gens.size() != reqs.size()) {
          return Internal("backend returned {} generations for {} requests", gens.size(),
                          reqs.size());
        }
        for (size_t k = begin; k < end; ++k) {
          responses[k - begin].generation = gens[k - begin].text;
          finish[k - begin] = gens[k - begin].finish_reason;
        }
      }
      // Code-executing tasks run the chunk's programs in parallel (--jobs) before scoring.
      if (task->config().output_type == OutputType::kGenerateUntil) {
        RETURN_IF_ERROR(PrecomputeCodeExecution(
            *task, std::vector<size_t>(pending.begin() + begin, pending.begin() + end), responses,
            nullptr));
      }
      std::string lines;
      for (size_t k = begin; k < end; ++k) {
        const size_t id = pending[k];
        ASSIGN_OR_RETURN(DocScore score, task->Score(id, responses[k - begin]));
        records[id] =
            MakeRecord(*task, id, prompts[id], responses[k - begin], finish[k - begin], score);
        if (auto e = CodeExecutionRecord(*task, id, responses[k - begin].generation);
            !e.is_null()) {
          (*records[id])["execution"] = e;
        }
        lines += records[id]->dump() + "\n";
      }
      out << lines;
      out.flush();
      if (!out) return IoError("{}: write failed", samples_path.string());
    }
    progress.Finish();

    // Aggregate.
    nlohmann::json entry = {{"alias", task->name()}};
    auto& task_values = values[task->name()];
    for (const auto& key : task->MetricKeys()) {
      std::vector<double> xs;
      for (const auto& r : records) xs.push_back(r->at("metrics").value(key, 0.0));
      const size_t comma = key.find(',');
      const std::string metric = key.substr(0, comma), filter = key.substr(comma + 1);
      entry[key] = Mean(xs);
      const auto se = MeanStderr(xs);
      entry[metric + "_stderr," + filter] = se ? nlohmann::json(*se) : nlohmann::json("N/A");
      task_values[key] = std::move(xs);
      higher[task->name()][metric] = task->HigherIsBetter(metric);
    }
    results[task->name()] = entry;
    configs[task->name()] = TaskConfigJson(*task);
    versions[task->name()] = VersionNumber(task->config().version);
    nshot[task->name()] = task->config().num_fewshot;
    nsamples[task->name()] = {{"original", task->size()}, {"effective", limit}};
    group_subtasks[task->name()] = nlohmann::json::array();
  }

  nlohmann::json groups = nlohmann::json::object();
  for (const TaskGroup* g : resolved.groups) {
    nlohmann::json entry = {{"alias", g->name}};
    for (const auto& key : g->aggregate_metrics) {
      std::vector<double> ms, ses;
      std::vector<size_t> sizes;
      bool stderr_na = false;
      for (const auto& sub : g->subtasks) {
        auto& xs = values[sub][key];
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
      higher[g->name][metric] = true;
    }
    size_t total = 0;
    for (const auto& sub : g->subtasks) {
      total += nsamples[sub]["effective"].get<size_t>();
      results[sub]["alias"] = " - " + sub;
    }
    results[g->name] = entry;
    groups[g->name] = entry;
    group_subtasks[g->name] = g->subtasks;
    versions[g->name] = VersionNumber(g->version);
    nsamples[g->name] = {{"effective", total}};
  }

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
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  nlohmann::json doc = {
      {"results", results},
      {"groups", groups},
      {"group_subtasks", group_subtasks},
      {"configs", configs},
      {"versions", versions},
      {"n-shot", nshot},
      {"higher_is_better", higher},
      {"n-samples", nsamples},
      {"config", config},
      {"date", static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count())},
      {"evaluation_time_s", seconds}};
  RETURN_IF_ERROR(WriteFileAtomic(results_path, doc.dump(2) + "\n"));
  return doc;
}

}  // namespace rvec::eval
