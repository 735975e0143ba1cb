// Adversarial perturbations of task prompts, each a pure function of (text, seed).
#include "eval/tasks/perturb.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace rvec::eval {
namespace {

// SplitMix64: tiny, well mixed, and identical on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t Below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % n;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t state_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng r(a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull));
  return r.Next();
}

const char* KindName(PerturbKind kind) {
  switch (kind) {
    case PerturbKind::kDistractor:
      return "distractor";
    case PerturbKind::kShuffleFewshot:
      return "shuffle_fewshot";
    case PerturbKind::kMisleadingHint:
      return "hint";
    case PerturbKind::kTypos:
      return "typos";
    case PerturbKind::kNumberWords:
      return "number_words";
  }
  return "?";
}

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Irrelevant-context sentences in the style of GSM-IC: a person not in the problem, a number
// that plays no part in the answer.
constexpr const char* kNames[] = {"Ada",   "Bruno", "Chiara", "Dmitri", "Esi",   "Farid", "Greta",
                                  "Hiro",  "Imani", "Jonas",  "Kalani", "Lucia", "Mateo", "Nadia",
                                  "Oskar", "Priya", "Quinn",  "Rosa",   "Sven",  "Tamsin"};
constexpr const char* kTemplates[] = {
    "{name}'s neighbour is {n} years old.",
    "{name} keeps {n} stamps in a drawer at home.",
    "The library near {name}'s house has {n} chairs.",
    "{name} read {n} pages of a novel last week.",
    "{name}'s school is {n} kilometres away from the river.",
    "There are {n} benches in the park where {name} jogs.",
    "{name} walked {n} steps on Sunday morning.",
    "A bakery in {name}'s town sold {n} pies yesterday.",
    "{name}'s cousin owns {n} comic books.",
    "The bus that {name} takes has {n} seats.",
};

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// Where the final sentence of `body` starts (the question, in word problems), skipping a leading
// "Question: " / "Q: " label when the body is one sentence.
size_t FinalSentenceStart(const std::string& body) {
  const size_t end = body.find_last_not_of(" \t\n");
  if (end == std::string::npos) return 0;
  for (size_t i = end; i-- > 0;) {
    const char c = body[i];
    if (c == '\n') return i + 1;
    if ((c == '.' || c == '!' || c == '?') && (body[i + 1] == ' ' || body[i + 1] == '\n')) {
      size_t j = i + 1;
      while (j < body.size() && (body[j] == ' ' || body[j] == '\n')) ++j;
      return j;
    }
  }
  for (const char* label : {"Question: ", "Q: "}) {
    if (body.rfind(label, 0) == 0) return std::string(label).size();
  }
  return 0;
}

// Reference answer as a number, if it is one: "#### 1,234" / "$5" / "3.5".
std::optional<std::string> NumericGold(std::string gold) {
  const size_t hashes = gold.rfind("####");
  if (hashes != std::string::npos) gold = gold.substr(hashes + 4);
  std::string s;
  for (char c : gold) {
    if (c != ',' && c != '$' && c != ' ' && c != '\n' && c != '\t') s += c;
  }
  if (s.empty()) return std::nullopt;
  size_t i = s[0] == '-' ? 1 : 0;
  bool digit = false, dot = false;
  for (; i < s.size(); ++i) {
    if (IsDigit(s[i])) {
      digit = true;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  return s;
}

const char* kKeyboardNeighbours[26] = {
    "qwsz",   "vghn",  "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb", "ujko",
    "huikmn", "jiolm", "kop",  "njk",    "bhjm", "iklp",   "ol",     "wa",     "edft",
    "awedxz", "rfgy",  "yhji", "cfgb",   "qase", "zsdc",   "tghu",   "asx"};

}  // namespace

std::string PerturbationSpec::ToString() const {
  std::string s = KindName(kind);
  if (kind == PerturbKind::kTypos) s += fmt::format("={}", rate);
  return s + ":" + std::to_string(seed);
}

StatusOr<PerturbationSpec> ParsePerturbation(std::string_view text) {
  PerturbationSpec spec;
  std::string kind(text);
  const size_t colon = kind.find(':');
  if (colon != std::string::npos) {
    const std::string seed = kind.substr(colon + 1);
    kind = kind.substr(0, colon);
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), value);
    if (seed.empty() || ec != std::errc() || ptr != seed.data() + seed.size()) {
      return InvalidArgument("--perturb {}: the seed '{}' is not a non-negative integer", text,
                             seed);
    }
    spec.seed = value;
  }
  const size_t eq = kind.find('=');
  std::string rate;
  if (eq != std::string::npos) {
    rate = kind.substr(eq + 1);
    kind = kind.substr(0, eq);
  }
  static const std::pair<const char*, PerturbKind> kKinds[] = {
      {"distractor", PerturbKind::kDistractor},
      {"shuffle_fewshot", PerturbKind::kShuffleFewshot},
      {"hint", PerturbKind::kMisleadingHint},
      {"typos", PerturbKind::kTypos},
      {"number_words", PerturbKind::kNumberWords}};
  bool found = false;
  for (const auto& [name, k] : kKinds) {
    if (kind == name) {
      spec.kind = k;
      found = true;
    }
  }
  if (!found) {
    return InvalidArgument(
        "--perturb {}: unknown kind '{}'; known: distractor, shuffle_fewshot, hint, "
        "typos[=RATE], number_words (each optionally :SEED)",
        text, kind);
  }
  if (!rate.empty()) {
    if (spec.kind != PerturbKind::kTypos) {
      return InvalidArgument("--perturb {}: only typos takes a rate", text);
    }
    char* end = nullptr;
    spec.rate = std::strtod(rate.c_str(), &end);
    if (end != rate.c_str() + rate.size() || !(spec.rate > 0.0 && spec.rate <= 1.0)) {
      return InvalidArgument("--perturb {}: typo rate '{}' must be in (0, 1]", text, rate);
    }
  }
  return spec;
}

std::pair<std::string, std::string> SplitAnswerCue(const std::string& text) {
  const size_t nl = text.rfind('\n');
  if (nl == std::string::npos) return {text, ""};
  const std::string last = text.substr(nl + 1);
  const bool cue =
      last.size() <= 60 && !last.empty() &&
      (last.rfind("A:", 0) == 0 || last.rfind("Answer:", 0) == 0 || last.back() == ':');
  if (!cue) return {text, ""};
  return {text.substr(0, nl), text.substr(nl)};
}

PerturbedText InsertDistractor(const std::string& text, uint64_t seed) {
  Rng rng(seed);
  auto [body, cue] = SplitAnswerCue(text);
  std::string name;
  for (int attempt = 0; attempt < 8; ++attempt) {
    name = kNames[rng.Below(std::size(kNames))];
    if (body.find(name) == std::string::npos) break;
  }
  const uint64_t n = 2 + rng.Below(98);
  std::string sentence = kTemplates[rng.Below(std::size(kTemplates))];
  sentence = ReplaceAll(ReplaceAll(sentence, "{name}", name), "{n}", std::to_string(n));
  const size_t at = FinalSentenceStart(body);
  PerturbedText out;
  out.text = body.substr(0, at) + sentence + " " + body.substr(at) + cue;
  out.detail = {{"inserted", sentence}, {"at", at}};
  return out;
}

PerturbedText AddMisleadingHint(const std::string& text, const std::string& gold,
                                const std::vector<std::string>& choices, uint64_t seed) {
  Rng rng(seed);
  auto [body, cue] = SplitAnswerCue(text);
  std::string wrong;
  const std::string g = [&] {
    const size_t a = gold.find_first_not_of(" \n\t");
    const size_t b = gold.find_last_not_of(" \n\t");
    return a == std::string::npos ? std::string() : gold.substr(a, b - a + 1);
  }();
  if (auto number = NumericGold(g)) {
    const size_t dot = number->find('.');
    const int decimals = dot == std::string::npos ? 0 : static_cast<int>(number->size() - dot - 1);
    const double value = std::strtod(number->c_str(), nullptr);
    double delta = static_cast<double>(1 + rng.Below(10));
    if (rng.Below(2) == 0 && value - delta >= 0) delta = -delta;
    wrong = fmt::format("{:.{}f}", value + delta, decimals);
  } else if (!choices.empty()) {
    std::vector<std::string> others;
    for (const auto& c : choices) {
      if (c != g) others.push_back(c);
    }
    wrong = others.empty() ? choices[0] : others[rng.Below(others.size())];
  } else if (g == "True" || g == "False") {
    wrong = g == "True" ? "False" : "True";
  } else if (g == "Yes" || g == "No" || g == "yes" || g == "no") {
    wrong = (g == "Yes") ? "No" : (g == "No") ? "Yes" : (g == "yes") ? "no" : "yes";
  } else if (g.size() == 3 && g[0] == '(' && g[2] == ')' && g[1] >= 'A' && g[1] <= 'Z') {
    // Option letters that the question offers, other than the gold one.
    std::vector<std::string> options;
    for (char c = 'A'; c <= 'Z'; ++c) {
      const std::string label = std::string("(") + c + ")";
      if (c != g[1] && body.find(label) != std::string::npos) options.push_back(label);
    }
    wrong = options.empty() ? (g[1] == 'A' ? "(B)" : "(A)") : options[rng.Below(options.size())];
  } else {
    wrong = std::to_string(2 + rng.Below(98));
  }
  const std::string hint = "I think the answer is " + wrong + ".";
  const size_t end = body.find_last_not_of(" \t\n");
  const size_t at = end == std::string::npos ? 0 : end + 1;
  PerturbedText out;
  out.text = body.substr(0, at) + " " + hint + body.substr(at) + cue;
  out.detail = {{"hint", hint}, {"wrong_answer", wrong}};
  return out;
}

PerturbedText AddTypos(const std::string& text, double rate, uint64_t seed) {
  Rng rng(seed);
  auto [body, cue] = SplitAnswerCue(text);
  std::string out;
  out.reserve(body.size() + 16);
  nlohmann::json edits = nlohmann::json::array();
  size_t count = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (!IsAsciiAlpha(c) || rng.Uniform() >= rate) {
      out += c;
      continue;
    }
    const uint64_t op = rng.Below(4);
    const char* op_name = "";
    if (op == 0 && i + 1 < body.size() && IsAsciiAlpha(body[i + 1]) && body[i + 1] != c) {
      out += body[i + 1];
      out += c;
      ++i;
      op_name = "swap";
    } else if (op == 1) {
      op_name = "delete";
    } else if (op == 2) {
      out += c;
      out += c;
      op_name = "duplicate";
    } else {
      const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const char* near = kKeyboardNeighbours[lower - 'a'];
      char r = near[rng.Below(std::strlen(near))];
      if (std::isupper(static_cast<unsigned char>(c))) {
        r = static_cast<char>(std::toupper(static_cast<unsigned char>(r)));
      }
      out += r;
      op_name = "replace";
    }
    ++count;
    if (edits.size() < 64) edits.push_back({{"at", i}, {"op", op_name}});
  }
  PerturbedText result;
  result.text = out + cue;
  result.detail = {{"rate", rate}, {"count", count}, {"edits", edits}};
  return result;
}

std::string IntegerToWords(uint64_t n) {
  static const char* kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                                "five",    "six",     "seven",     "eight",    "nine",
                                "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char* kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                                "fifty", "sixty", "seventy", "eighty", "ninety"};
  static const char* kScales[] = {"", "thousand", "million", "billion", "trillion"};
  if (n < 20) return kOnes[n];
  auto below_thousand = [&](uint64_t v) {
    std::string s;
    if (v >= 100) {
      s = std::string(kOnes[v / 100]) + " hundred";
      v %= 100;
      if (v) s += " ";
    }
    if (v >= 20) {
      s += kTens[v / 10];
      if (v % 10) s += std::string("-") + kOnes[v % 10];
    } else if (v > 0) {
      s += kOnes[v];
    }
    return s;
  };
  std::vector<std::string> parts;
  for (int scale = 0; n > 0 && scale < 5; ++scale, n /= 1000) {
    const uint64_t chunk = n % 1000;
    if (chunk == 0) continue;
    std::string words = below_thousand(chunk);
    if (scale > 0) words += std::string(" ") + kScales[scale];
    parts.push_back(words);
  }
  std::string out;
  for (size_t i = parts.size(); i-- > 0;) out += parts[i] + (i ? " " : "");
  return out;
}

PerturbedText NumbersToWords(const std::string& text) {
  auto [body, cue] = SplitAnswerCue(text);
  std::string out;
  nlohmann::json changes = nlohmann::json::array();
  size_t count = 0;
  for (size_t i = 0; i < body.size();) {
    const char c = body[i];
    const char prev = i > 0 ? body[i - 1] : ' ';
    if (!IsDigit(c) || IsDigit(prev) || IsAsciiAlpha(prev) || prev == '.' || prev == ',') {
      out += c;
      ++i;
      continue;
    }
    // A run of digits, with thousands separators only in groups of three.
    size_t j = i;
    while (j < body.size() && IsDigit(body[j])) ++j;
    std::string digits = body.substr(i, j - i);
    if (j - i <= 3) {
      while (j + 3 < body.size() + 0 && body[j] == ',' && IsDigit(body[j + 1]) &&
             IsDigit(body[j + 2]) && IsDigit(body[j + 3]) &&
             (j + 4 >= body.size() || !IsDigit(body[j + 4]))) {
        digits += body.substr(j + 1, 3);
        j += 4;
      }
    }
    const char next = j < body.size() ? body[j] : ' ';
    const bool decimal = next == '.' && j + 1 < body.size() && IsDigit(body[j + 1]);
    const bool leading_zero = digits.size() > 1 && digits[0] == '0';
    if (decimal || IsAsciiAlpha(next) || leading_zero || digits.size() > 15) {
      // Decimals, ordinals ("3rd"), codes ("007"): left as they are, whole.
      size_t k = j;
      if (decimal) {
        k = j + 1;
        while (k < body.size() && IsDigit(body[k])) ++k;
      }
      out += body.substr(i, k - i);
      i = k;
      continue;
    }
    const uint64_t value = std::stoull(digits);
    std::string words = IntegerToWords(value);
    std::string from = body.substr(i, j - i);
    size_t consumed_end = j;
    if (prev == '$' && !out.empty() && out.back() == '$') {
      out.pop_back();
      from = "$" + from;
      words += value == 1 ? " dollar" : " dollars";
    } else if (next == '%') {
      from += "%";
      words += " percent";
      consumed_end = j + 1;
    }
    out += words;
    ++count;
    if (changes.size() < 64) changes.push_back({{"from", from}, {"to", words}});
    i = consumed_end;
  }
  PerturbedText result;
  result.text = out + cue;
  result.detail = {{"count", count}, {"replaced", changes}};
  return result;
}

StatusOr<std::unique_ptr<EvalTask>> CreatePerturbedTask(const TaskRegistry& registry,
                                                        const std::string& name,
                                                        const PerturbationSpec& spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<EvalTask> clean, registry.Create(name));
  ASSIGN_OR_RETURN(TaskConfig perturbed, PerturbTask(clean->config(), spec));
  return std::make_unique<EvalTask>(std::move(perturbed));
}

StatusOr<std::vector<std::string>> RegisterPerturbedTasks(TaskRegistry& registry,
                                                          const std::vector<std::string>& names,
                                                          const PerturbationSpec& spec) {
  std::vector<std::string> leaves;
  for (const auto& name : names) {
    if (const TaskGroup* group = registry.FindGroup(name)) {
      leaves.insert(leaves.end(), group->subtasks.begin(), group->subtasks.end());
    } else if (registry.HasTask(name)) {
      leaves.push_back(name);
    } else {
      return NotFound("--perturb: unknown task '{}'", name);
    }
  }
  std::vector<std::string> out;
  for (const auto& leaf : leaves) {
    ASSIGN_OR_RETURN(std::unique_ptr<EvalTask> clean, registry.Create(leaf));
    ASSIGN_OR_RETURN(TaskConfig checked, PerturbTask(clean->config(), spec));
    const std::string perturbed_name = checked.name;
    if (std::find(out.begin(), out.end(), perturbed_name) != out.end()) continue;
    registry.AddTask(perturbed_name, [&registry, leaf, spec]() -> TaskConfig {
      auto base = registry.Create(leaf);
      // Checked once above: the same task and spec perturb without error.
      auto perturbed = PerturbTask(base.ok() ? (*base)->config() : TaskConfig(), spec);
      return perturbed.ok() ? std::move(perturbed).value() : TaskConfig();
    });
    out.push_back(perturbed_name);
  }
  return out;
}

std::pair<std::string, std::string> SplitPerturbedTaskName(const std::string& name) {
  const size_t at = name.find('@');
  if (at == std::string::npos) return {name, ""};
  return {name.substr(0, at), name.substr(at + 1)};
}

StatusOr<TaskConfig> PerturbTask(TaskConfig config, const PerturbationSpec& spec) {
  if (config.output_type != OutputType::kGenerateUntil) {
    return InvalidArgument(
        "--perturb {}: task {} is multiple choice; perturbations apply to generative tasks",
        spec.ToString(), config.name);
  }
  if (!config.doc_to_text || !config.load) {
    return Internal("task {} has no doc_to_text/loader", config.name);
  }
  const std::string spec_text = spec.ToString();
  const std::string kind = KindName(spec.kind);
  TaskConfig out = config;
  out.name = config.name + "@" + spec_text;
  auto original_text = config.doc_to_text;
  auto original_target = config.doc_to_target;
  auto original_load = config.load;
  if (!out.fewshot_doc_to_text) out.fewshot_doc_to_text = original_text;  // shots stay clean

  if (spec.kind == PerturbKind::kShuffleFewshot) {
    if (config.num_fewshot < 2 || config.sampler != TaskConfig::Sampler::kFirstN) {
      return InvalidArgument(
          "--perturb {}: task {} has {} ({} few-shot exemplars); shuffling the order needs a "
          "task with fixed exemplars (first_n sampler, at least 2), e.g. gsm8k_cot",
          spec_text, config.name,
          config.num_fewshot < 2 ? "no fixed exemplars" : "randomly drawn exemplars per doc",
          config.num_fewshot);
    }
    const size_t n = static_cast<size_t>(config.num_fewshot);
    out.load = [original_load, n, spec, spec_text, kind](const std::filesystem::path& dir,
                                                         std::vector<Doc>* test,
                                                         std::vector<Doc>* pool) -> Status {
      RETURN_IF_ERROR(original_load(dir, test, pool));
      const size_t m = std::min(n, pool->size());
      std::vector<size_t> order(m);
      std::iota(order.begin(), order.end(), 0);
      Rng rng(Mix(spec.seed, 0x5348554646ull));
      for (size_t i = m; i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
      if (m >= 2 && std::is_sorted(order.begin(), order.end())) {
        std::rotate(order.begin(), order.begin() + 1, order.end());  // never the original order
      }
      std::vector<Doc> shots(m);
      for (size_t i = 0; i < m; ++i) shots[i] = (*pool)[order[i]];
      for (size_t i = 0; i < m; ++i) (*pool)[i] = std::move(shots[i]);
      for (auto& doc : *test) {
        doc["rvec_perturbation"] = {{"kind", kind},
                                    {"seed", spec.seed},
                                    {"spec", spec_text},
                                    {"detail", {{"fewshot_order", order}}}};
      }
      return OkStatus();
    };
    return out;
  }

  out.load = [original_load, original_text, original_target, spec, spec_text, kind,
              from_test_split = config.fewshot_from_test_split](const std::filesystem::path& dir,
                                                                std::vector<Doc>* test,
                                                                std::vector<Doc>* pool) -> Status {
    RETURN_IF_ERROR(original_load(dir, test, pool));
    std::unordered_map<std::string, nlohmann::json> by_doc;
    for (size_t i = 0; i < test->size(); ++i) {
      Doc& doc = (*test)[i];
      const std::string text = original_text(doc);
      const uint64_t seed = Mix(spec.seed, i);
      PerturbedText p;
      switch (spec.kind) {
        case PerturbKind::kDistractor:
          p = InsertDistractor(text, seed);
          break;
        case PerturbKind::kMisleadingHint:
          p = AddMisleadingHint(text, original_target ? original_target(doc) : "", {}, seed);
          break;
        case PerturbKind::kTypos:
          p = AddTypos(text, spec.rate, seed);
          break;
        case PerturbKind::kNumberWords:
          p = NumbersToWords(text);
          break;
        case PerturbKind::kShuffleFewshot:
          break;
      }
      nlohmann::json record = {{"kind", kind},     {"seed", spec.seed},   {"spec", spec_text},
                               {"original", text}, {"perturbed", p.text}, {"detail", p.detail}};
      if (from_test_split) by_doc[doc.dump()] = record;
      doc["rvec_perturbation"] = std::move(record);
    }
    // gsm_plus draws shots from the test split and drops the test doc by equality: the pool's
    // copy must carry the same record (shots are rendered clean through fewshot_doc_to_text).
    if (from_test_split) {
      for (Doc& doc : *pool) {
        auto it = by_doc.find(doc.dump());
        if (it != by_doc.end()) doc["rvec_perturbation"] = it->second;
      }
    }
    return OkStatus();
  };
  out.doc_to_text = [original_text](const Doc& doc) -> std::string {
    auto it = doc.find("rvec_perturbation");
    if (it != doc.end() && it->contains("perturbed") && (*it)["perturbed"].is_string()) {
      return (*it)["perturbed"].get<std::string>();
    }
    return original_text(doc);
  };
  return out;
}

}  // namespace rvec::eval
