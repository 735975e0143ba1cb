// GSM-Plus / GSM-Symbolic tasks, the critical-thinking refusal rule, and clean-vs-perturbed rows.
#include "eval/tasks/robustness.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "base/fs.h"
#include "eval/runner.h"
#include "eval/tasks/gsm8k.h"
#include "eval/tasks/perturb.h"

namespace rvec::eval {
namespace {

namespace fs = std::filesystem;

Status CheckFields(const std::vector<Doc>& docs, const fs::path& path,
                   std::initializer_list<const char*> keys) {
  for (size_t i = 0; i < docs.size(); ++i) {
    for (const char* key : keys) {
      if (!docs[i].contains(key) || !docs[i][key].is_string()) {
        return DataLoss("{}: line {} lacks string field '{}'", path.string(), i + 1, key);
      }
    }
  }
  return OkStatus();
}

Status LoadGsmSymbolicP2(const fs::path& dir, std::vector<Doc>* test) {
  const fs::path path = dir / "gsm_symbolic" / "GSM_p2.jsonl";
  if (!DataFileExists(path)) return MissingDataError(path, "gsm_symbolic");
  ASSIGN_OR_RETURN(*test, ReadJsonLines(path));
  return CheckFields(*test, path, {"question", "answer"});
}

// Phrases that say the question cannot be answered as posed (matched on the lower-cased text).
constexpr const char* kRefusalPhrases[] = {
    "not enough information",
    "insufficient information",
    "not enough info",
    "not enough data",
    "insufficient data",
    "cannot be determined",
    "can't be determined",
    "cannot determine",
    "can't determine",
    "unable to determine",
    "impossible to determine",
    "not possible to determine",
    "cannot be calculated",
    "can't be calculated",
    "cannot calculate",
    "can't calculate",
    "unable to calculate",
    "impossible to calculate",
    "cannot be answered",
    "can't be answered",
    "cannot answer",
    "can't answer",
    "unanswerable",
    "missing information",
    "information is missing",
    "missing a piece",
    "is not specified",
    "are not specified",
    "not specified",
    "is not given",
    "are not given",
    "not provided",
    "not stated",
    "not mentioned",
    "does not specify",
    "doesn't specify",
    "does not provide",
    "doesn't provide",
    "does not mention",
    "doesn't mention",
    "does not say",
    "doesn't say",
    "does not tell",
    "doesn't tell",
    "need more information",
    "more information is needed",
    "need to know",
    "lacks the information",
};

constexpr const char* kNoneAnswers[] = {
    "none",          "unknown",   "n/a", "na", "undetermined", "cannot be determined",
    "indeterminate", "not enough"};

std::string AsciiLower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The text right after the last `marker`, trimmed; nullopt if the marker is absent.
std::optional<std::string> After(const std::string& text, const std::string& marker) {
  const size_t at = text.rfind(marker);
  if (at == std::string::npos) return std::nullopt;
  std::string rest = text.substr(at + marker.size());
  const size_t a = rest.find_first_not_of(" \t\n:*$\\(");
  if (a == std::string::npos) return std::string();
  return rest.substr(a);
}

enum class FinalAnswer { kAbsent, kNumber, kNone, kOther };

FinalAnswer Classify(const std::optional<std::string>& answer) {
  if (!answer) return FinalAnswer::kAbsent;
  if (answer->empty()) return FinalAnswer::kOther;
  const char c = (*answer)[0];
  if (std::isdigit(static_cast<unsigned char>(c)) ||
      (c == '-' && answer->size() > 1 && std::isdigit(static_cast<unsigned char>((*answer)[1])))) {
    return FinalAnswer::kNumber;
  }
  for (const char* none : kNoneAnswers) {
    const std::string n = none;
    if (answer->rfind(n, 0) == 0 &&
        (answer->size() == n.size() ||
         !std::isalnum(static_cast<unsigned char>((*answer)[n.size()])))) {
      return FinalAnswer::kNone;
    }
  }
  return FinalAnswer::kOther;
}

// Clean counterpart of a task name, or "" if it is not a perturbed task.
std::string CleanCounterpart(const std::string& task) {
  auto [base, perturbation] = SplitPerturbedTaskName(task);
  if (!perturbation.empty()) return base;
  if (task == "gsm_plus_mini" || task == "gsm_plus" || task == "gsm_symbolic_p2") return "gsm8k";
  if (task == "gsm_symbolic_p2_cot") return "gsm8k_cot";
  return "";
}

}  // namespace

TaskConfig GsmPlusMiniConfig() {
  TaskConfig c = Gsm8kConfig();
  c.name = "gsm_plus_mini";
  c.version = "1.0";
  c.dataset = "gsm_plus";
  c.doc_to_target = [](const Doc& d) {
    auto it = d.find("solution");
    return (it != d.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  c.fewshot_from_test_split = true;
  c.load = [](const fs::path& dir, std::vector<Doc>* test, std::vector<Doc>* pool) -> Status {
    const fs::path path = dir / "gsm_plus" / "gsmplus_testmini.jsonl";
    if (!DataFileExists(path)) return MissingDataError(path, "gsm_plus");
    ASSIGN_OR_RETURN(*test, ReadJsonLines(path));
    RETURN_IF_ERROR(CheckFields(*test, path, {"question", "solution", "perturbation_type"}));
    *pool = *test;  // lm-eval: fewshot_split == test_split == testmini
    return OkStatus();
  };
  return c;
}

TaskConfig GsmSymbolicP2Config() {
  TaskConfig c = Gsm8kConfig();  // question/answer fields match GSM8K's
  c.name = "gsm_symbolic_p2";
  c.version = "1.0";
  c.dataset = "gsm_symbolic";
  auto gsm8k_load = c.load;
  c.load = [gsm8k_load](const fs::path& dir, std::vector<Doc>* test,
                        std::vector<Doc>* pool) -> Status {
    std::vector<Doc> gsm8k_test;
    RETURN_IF_ERROR(gsm8k_load(dir, &gsm8k_test, pool));  // few-shot pool: GSM8K train
    return LoadGsmSymbolicP2(dir, test);
  };
  return c;
}

TaskConfig GsmSymbolicP2CotConfig() {
  TaskConfig c = Gsm8kCotConfig();
  c.name = "gsm_symbolic_p2_cot";
  c.version = "1.0";
  c.dataset = "gsm_symbolic";
  c.filters = {RegexFilter("strict-match", "The answer is (\\-?[0-9\\.\\,]+)\\.?", 0),
               Gsm8kFlexibleExtract()};
  c.load = [](const fs::path& dir, std::vector<Doc>* test, std::vector<Doc>* pool) -> Status {
    RETURN_IF_ERROR(LoadGsmSymbolicP2(dir, test));
    *pool = Gsm8kCotExemplars();
    return OkStatus();
  };
  return c;
}

void RegisterRobustnessTasks(TaskRegistry& registry) {
  registry.AddTask("gsm_plus_mini", GsmPlusMiniConfig);
  registry.AddTask("gsm_symbolic_p2", GsmSymbolicP2Config);
  registry.AddTask("gsm_symbolic_p2_cot", GsmSymbolicP2CotConfig);
}

bool IsRefusal(const std::string& response) {
  const std::string text = AsciiLower(response);
  // The stated final answer decides when there is one.
  for (const char* marker : {"####", "the answer is", "final answer is", "\\boxed{"}) {
    const FinalAnswer kind = Classify(After(text, marker));
    if (kind == FinalAnswer::kNumber) return false;
    if (kind == FinalAnswer::kNone) return true;
  }
  for (const char* phrase : kRefusalPhrases) {
    if (text.find(phrase) != std::string::npos) return true;
  }
  return false;
}

StatusOr<nlohmann::json> GsmPlusBreakdown(
    const std::vector<Doc>& docs, const std::vector<std::string>& generations,
    const std::vector<std::map<std::string, double>>& scores) {
  if (docs.size() != generations.size() || docs.size() != scores.size()) {
    return InvalidArgument("gsm_plus breakdown: {} docs, {} generations, {} scores", docs.size(),
                           generations.size(), scores.size());
  }
  struct Sum {
    size_t n = 0;
    std::map<std::string, double> total;
  };
  std::map<std::string, Sum> per_type;
  Sum excluding;
  size_t ct_n = 0, ct_refused = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto it = docs[i].find("perturbation_type");
    if (it == docs[i].end() || !it->is_string()) {
      return DataLoss("gsm_plus breakdown: doc {} has no perturbation_type", i);
    }
    const std::string type = it->get<std::string>();
    Sum& s = per_type[type];
    ++s.n;
    for (const auto& [k, v] : scores[i]) s.total[k] += v;
    if (type == "critical thinking") {
      ++ct_n;
      if (IsRefusal(generations[i])) ++ct_refused;
    } else {
      ++excluding.n;
      for (const auto& [k, v] : scores[i]) excluding.total[k] += v;
    }
  }
  auto mean = [](const Sum& s) {
    nlohmann::json j = {{"n", s.n}};
    for (const auto& [k, v] : s.total) j[k] = s.n ? v / static_cast<double>(s.n) : 0.0;
    return j;
  };
  nlohmann::json out;
  out["per_type"] = nlohmann::json::object();
  for (const auto& [type, s] : per_type) out["per_type"][type] = mean(s);
  out["excluding_critical_thinking"] = mean(excluding);
  out["critical_thinking"] = {
      {"n", ct_n},
      {"refused", ct_refused},
      {"refusal_rate", ct_n ? static_cast<double>(ct_refused) / static_cast<double>(ct_n) : 0.0},
      {"rule",
       "refusal = final answer (after ####, 'the answer is', 'final answer is' or \\boxed{}) is "
       "none/unknown/n/a, or, with no numeric final answer, the response says the question "
       "cannot be answered (e.g. 'not enough information', 'cannot be determined', 'not "
       "specified')"}};
  return out;
}

std::vector<RobustnessRow> BuildRobustnessRows(const std::vector<ScoreEntry>& scores) {
  std::map<std::tuple<std::string, std::string, std::string>, double> index;
  for (const auto& s : scores) index[{s.model, s.task, s.metric}] = s.value;
  std::vector<RobustnessRow> rows;
  for (const auto& s : scores) {
    const std::string clean = CleanCounterpart(s.task);
    if (clean.empty()) continue;
    auto it = index.find({s.model, clean, s.metric});
    if (it == index.end()) continue;
    RobustnessRow r;
    r.model = s.model;
    r.clean_task = clean;
    r.perturbed_task = s.task;
    r.metric = s.metric;
    r.clean = it->second;
    r.perturbed = s.value;
    r.drop = r.clean - r.perturbed;
    r.relative_drop = r.clean != 0.0 ? r.drop / r.clean : 0.0;
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const RobustnessRow& a, const RobustnessRow& b) {
    return std::tie(a.model, a.clean_task, a.perturbed_task, a.metric) <
           std::tie(b.model, b.clean_task, b.perturbed_task, b.metric);
  });
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const RobustnessRow& a, const RobustnessRow& b) {
                           return std::tie(a.model, a.perturbed_task, a.metric) ==
                                  std::tie(b.model, b.perturbed_task, b.metric);
                         }),
             rows.end());
  return rows;
}

StatusOr<std::vector<ScoreEntry>> ScoresFromResults(const nlohmann::json& results,
                                                    const std::string& model) {
  if (!results.is_object() || !results.contains("results") || !results["results"].is_object()) {
    return DataLoss("results: expected an object with a \"results\" object");
  }
  std::string name = model;
  if (name.empty() && results.contains("model_name") && results["model_name"].is_string()) {
    name = results["model_name"].get<std::string>();
  }
  if (name.empty() && results.contains("config") && results["config"].is_object()) {
    const auto& config = results["config"];
    for (const char* key : {"model_name", "model", "model_args"}) {
      if (config.contains(key) && config[key].is_string()) {
        name = config[key].get<std::string>();
        break;
      }
    }
  }
  if (name.empty()) name = "model";
  std::vector<ScoreEntry> out;
  for (const auto& [task, metrics] : results["results"].items()) {
    if (!metrics.is_object()) continue;
    for (const auto& [metric, value] : metrics.items()) {
      if (!value.is_number() || metric.find("_stderr") != std::string::npos) continue;
      out.push_back({name, task, metric, value.get<double>()});
    }
  }
  return out;
}

std::string FormatRobustnessTable(const std::vector<RobustnessRow>& rows) {
  if (rows.empty()) {
    return "No perturbed results with a clean counterpart (run e.g. gsm8k and gsm8k with "
           "--perturb distractor, or gsm8k and gsm_plus_mini, for the same model).\n";
  }
  std::vector<std::vector<std::string>> cells = {
      {"model", "clean task", "perturbed task", "metric", "clean", "perturbed", "drop"}};
  for (const auto& r : rows) {
    cells.push_back(
        {r.model, r.clean_task, r.perturbed_task, r.metric, fmt::format("{:.1f}", 100.0 * r.clean),
         fmt::format("{:.1f}", 100.0 * r.perturbed), fmt::format("{:.1f}", 100.0 * r.drop)});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (size_t r = 0; r < cells.size(); ++r) {
    for (size_t c = 0; c < cells[r].size(); ++c) {
      const bool numeric = c >= 4;
      const std::string& cell = cells[r][c];
      const std::string pad(width[c] - cell.size(), ' ');
      out += numeric ? pad + cell : cell + pad;
      out += c + 1 < cells[r].size() ? "  " : "\n";
    }
  }
  out += "(accuracy in %; drop = clean - perturbed, in points)\n";
  return out;
}

nlohmann::json RobustnessJson(const std::vector<RobustnessRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    out.push_back({{"model", r.model},
                   {"clean_task", r.clean_task},
                   {"perturbed_task", r.perturbed_task},
                   {"metric", r.metric},
                   {"clean", r.clean},
                   {"perturbed", r.perturbed},
                   {"drop", r.drop},
                   {"relative_drop", r.relative_drop}});
  }
  return out;
}

StatusOr<RobustnessReport> BuildRobustnessReport(const std::vector<fs::path>& run_dirs,
                                                 const std::vector<std::string>& labels) {
  RobustnessReport report;
  std::vector<ScoreEntry> all;
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    const fs::path& dir = run_dirs[i];
    const fs::path results_path = dir / "results.json";
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(results_path));
    const nlohmann::json results = nlohmann::json::parse(text, nullptr, false);
    if (results.is_discarded()) return DataLoss("{}: not valid JSON", results_path.string());
    fs::path dir_path = fs::absolute(dir).lexically_normal();
    if (dir_path.filename().empty()) dir_path = dir_path.parent_path();
    std::string label =
        i < labels.size() && !labels[i].empty() ? labels[i] : dir_path.filename().string();
    if (label.empty()) label = dir.string();
    std::string model;
    const nlohmann::json config = results.value("config", nlohmann::json::object());
    if (config.is_object() && config.contains("model") && config["model"].is_string() &&
        !config["model"].get<std::string>().empty()) {
      fs::path model_path = fs::path(config["model"].get<std::string>()).lexically_normal();
      if (model_path.filename().empty()) model_path = model_path.parent_path();  // "dir/"
      model = model_path.filename().string();
    }
    auto scores = ScoresFromResults(results, model.empty() ? label : model);
    if (!scores.ok()) return scores.status().WithContext(results_path.string());
    all.insert(all.end(), scores->begin(), scores->end());
    // GSM-Plus breakdown from the per-sample log.
    if (results["results"].contains("gsm_plus_mini") &&
        fs::exists(dir / "samples_gsm_plus_mini.jsonl")) {
      ASSIGN_OR_RETURN(auto samples, ReadSamples(dir, "gsm_plus_mini"));
      std::vector<Doc> docs;
      std::vector<std::string> generations;
      std::vector<std::map<std::string, double>> metrics;
      for (const auto& r : samples) {
        if (!r.contains("doc") || !r.contains("metrics") || !r["metrics"].is_object()) {
          return DataLoss("{}: a sample lacks doc/metrics",
                          (dir / "samples_gsm_plus_mini.jsonl").string());
        }
        docs.push_back(r["doc"]);
        generations.push_back(r.value("raw_output", std::string()));
        std::map<std::string, double> m;
        for (const auto& [k, v] : r["metrics"].items()) {
          if (v.is_number()) m[k] = v.get<double>();
        }
        metrics.push_back(std::move(m));
      }
      auto breakdown = GsmPlusBreakdown(docs, generations, metrics);
      if (!breakdown.ok()) return breakdown.status().WithContext(dir.string());
      report.gsm_plus.emplace_back(label, std::move(breakdown).value());
    }
  }
  report.rows = BuildRobustnessRows(all);
  return report;
}

std::string RenderRobustnessMarkdown(const RobustnessReport& report) {
  if (report.empty()) return "";
  std::string md;
  if (!report.rows.empty()) {
    md += "\n## Robustness: clean vs perturbed\n\n";
    md += "| model | clean task | perturbed task | metric | clean | perturbed | drop (pts) |\n";
    md += "|---|---|---|---|---:|---:|---:|\n";
    for (const auto& r : report.rows) {
      md += fmt::format("| {} | {} | {} | {} | {:.1f} | {:.1f} | {:.1f} |\n", r.model, r.clean_task,
                        r.perturbed_task, r.metric, 100 * r.clean, 100 * r.perturbed, 100 * r.drop);
    }
  }
  for (const auto& [label, b] : report.gsm_plus) {
    md += fmt::format("\n## GSM-Plus by perturbation type: {}\n\n", label);
    std::vector<std::string> metrics;
    for (const auto& [k, v] : b["excluding_critical_thinking"].items()) {
      if (k != "n") metrics.push_back(k);
    }
    md += "| perturbation type | n |";
    for (const auto& m : metrics) md += " " + m + " |";
    md += "\n|---|---:|";
    for (size_t i = 0; i < metrics.size(); ++i) md += "---:|";
    md += "\n";
    auto line = [&](const std::string& name, const nlohmann::json& row) {
      md += fmt::format("| {} | {} |", name, row.value("n", 0));
      for (const auto& m : metrics) md += fmt::format(" {:.1f} |", 100 * row.value(m, 0.0));
      md += "\n";
    };
    for (const auto& [type, row] : b["per_type"].items()) line(type, row);
    line("**all except critical thinking**", b["excluding_critical_thinking"]);
    const auto& ct = b["critical_thinking"];
    md += fmt::format(
        "\nCritical thinking (gold \"None\", unscorable by lm-eval's numeric filters): {} of {} "
        "responses recognised as refusals ({:.1f}%). Rule: {}.\n",
        ct.value("refused", 0), ct.value("n", 0), 100 * ct.value("refusal_rate", 0.0),
        ct.value("rule", std::string()));
  }
  return md;
}

nlohmann::json RobustnessReportToJson(const RobustnessReport& report) {
  nlohmann::json j = {{"rows", RobustnessJson(report.rows)},
                      {"gsm_plus", nlohmann::json::object()}};
  for (const auto& [label, b] : report.gsm_plus) j["gsm_plus"][label] = b;
  return j;
}

}  // namespace rvec::eval
