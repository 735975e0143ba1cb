// BIG-Bench Hard as lm-eval defines it: bbh_cot_fewshot (3 fixed CoT shots from cot-prompts/, the
// task description, "the answer is" extraction) and bbh_zeroshot (per-subtask answer filters), both
// micro-averaged over their 27 subtasks.
#include "eval/tasks/bbh.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "base/fs.h"
#include "eval/python/pyre.h"
#include "eval/task.h"

namespace rvec::eval {

namespace {

constexpr const char* kSubtasks[] = {"boolean_expressions",
                                     "causal_judgement",
                                     "date_understanding",
                                     "disambiguation_qa",
                                     "dyck_languages",
                                     "formal_fallacies",
                                     "geometric_shapes",
                                     "hyperbaton",
                                     "logical_deduction_five_objects",
                                     "logical_deduction_seven_objects",
                                     "logical_deduction_three_objects",
                                     "movie_recommendation",
                                     "multistep_arithmetic_two",
                                     "navigate",
                                     "object_counting",
                                     "penguins_in_a_table",
                                     "reasoning_about_colored_objects",
                                     "ruin_names",
                                     "salient_translation_error_detection",
                                     "snarks",
                                     "sports_understanding",
                                     "temporal_sequences",
                                     "tracking_shuffled_objects_five_objects",
                                     "tracking_shuffled_objects_seven_objects",
                                     "tracking_shuffled_objects_three_objects",
                                     "web_of_lies",
                                     "word_sorting"};

std::string Field(const Doc& d, const char* key) {
  auto it = d.find(key);
  if (it == d.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

constexpr std::string_view kStep = "\nA: Let's think step by step.";

// Loads bbh/<subtask>.json and, for the CoT variant, cot-prompts/<subtask>.txt.
Status LoadBbh(const std::filesystem::path& data_dir, const std::string& subtask, bool cot,
               std::vector<Doc>* test, std::vector<Doc>* fewshot) {
  const auto path = data_dir / "bbh" / "bbh" / (subtask + ".json");
  if (!DataFileExists(path)) return MissingDataError(path, "bbh");
  ASSIGN_OR_RETURN(*test, ReadJsonArray(path, "examples"));
  for (size_t i = 0; i < test->size(); ++i) {
    if (!(*test)[i].contains("input") || !(*test)[i].contains("target")) {
      return DataLoss("{}: example {} lacks input/target", path.string(), i);
    }
  }
  if (cot) {
    ASSIGN_OR_RETURN(BbhCotPrompt prompt, LoadBbhCotPrompt(data_dir, subtask));
    *fewshot = std::move(prompt.shots);
  }
  return OkStatus();
}

// ---- bbh_zeroshot flexible-extract filters (lm_eval/tasks/bbh/zeroshot/utils.py)
// -----------------

std::shared_ptr<PyRegex> MustCompile(const std::string& pattern) {
  auto r = PyRegex::Compile(pattern);
  return std::make_shared<PyRegex>(r.ok() ? std::move(r).value() : *PyRegex::Compile("(?!)"));
}

// ExtendedRegexFilter.find_match: "" when nothing matches.
std::string FindMatch(const PyRegex& regex, const std::string& resp, int group_select,
                      const std::map<std::string, std::string>& convert = {}) {
  auto all = regex.FindAll(resp);
  if (!all.ok() || all->empty()) return "";
  const long n = static_cast<long>(all->size());
  const long idx = group_select < 0 ? n + group_select : group_select;
  if (idx < 0 || idx >= n) return "";
  const auto& m = (*all)[static_cast<size_t>(idx)];
  std::string s;
  if (m.size() == 1) {
    s = m[0];
  } else {
    for (const auto& g : m) {
      if (!g.empty()) {
        s = g;
        break;
      }
    }
  }
  s = PyStrip(s);
  if (!s.empty()) {
    auto it = convert.find(s);
    if (it != convert.end()) s = it->second;
  }
  return s;
}

std::string FilterIgnores(const std::string& s, bool ignore_case, bool ignore_punctuation) {
  std::string out = s;
  if (ignore_case) out = PyLower(out);
  if (ignore_punctuation) out = RemoveUnicodePunctuation(out);
  return out;
}

Filter MultiChoiceFilter() {
  auto regex = MustCompile("(\\([A-Z]\\))");
  auto options_re = MustCompile("\\([A-Z]\\)([^\\n^(]*)");
  Filter f;
  f.name = "flexible-extract";
  f.apply = [regex, options_re](const std::string& resp, const Doc& doc) -> std::string {
    std::string match = FindMatch(*regex, resp, 0);
    if (!match.empty()) return match;
    std::vector<std::string> alternatives, letters;
    std::map<std::string, std::string> choice_to_alpha, letter_to_target;
    char next = 'A';
    auto options = options_re->FindAll(Field(doc, "input"));
    if (options.ok()) {
      for (const auto& m : *options) {
        const std::string text = FilterIgnores(PyStrip(m[0]), true, true);
        alternatives.push_back(PyReEscape(text));
        choice_to_alpha[text] = std::string("(") + next + ")";
        letters.push_back(std::string(1, next));
        letter_to_target[std::string(1, next)] = std::string("(") + next + ")";
        ++next;
      }
    }
    std::string joined, joined_letters;
    for (size_t i = 0; i < alternatives.size(); ++i) {
      joined += (i ? "|" : "") + alternatives[i];
      joined_letters += (i ? "|" : "") + letters[i];
    }
    auto fallback = PyRegex::Compile(joined);
    if (fallback.ok()) {
      match = FindMatch(*fallback, FilterIgnores(resp, true, true), 0, choice_to_alpha);
      if (!match.empty()) return match;
    }
    auto no_paren = PyRegex::Compile(":[\\s]*(" + joined_letters + ")");
    if (no_paren.ok()) {
      match = FindMatch(*no_paren, resp, 0, letter_to_target);
      if (!match.empty()) return match;
    }
    return "[invalid]";
  };
  return f;
}

// word2number's w2n.word_to_num for the integer words the english-number regex can match.
std::optional<long long> WordToNum(std::string sentence) {
  static const std::map<std::string, long long> kNumbers = {
      {"zero", 0},      {"one", 1},         {"two", 2},           {"three", 3},
      {"four", 4},      {"five", 5},        {"six", 6},           {"seven", 7},
      {"eight", 8},     {"nine", 9},        {"ten", 10},          {"eleven", 11},
      {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14},     {"fifteen", 15},
      {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18},     {"nineteen", 19},
      {"twenty", 20},   {"thirty", 30},     {"forty", 40},        {"fifty", 50},
      {"sixty", 60},    {"seventy", 70},    {"eighty", 80},       {"ninety", 90},
      {"hundred", 100}, {"thousand", 1000}, {"million", 1000000}, {"billion", 1000000000}};
  std::replace(sentence.begin(), sentence.end(), '-', ' ');
  sentence = PyLower(sentence);
  std::vector<std::string> words;
  {
    std::string cur;
    for (char c : PyStrip(sentence) + " ") {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        if (!cur.empty() && kNumbers.count(cur)) words.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
  }
  if (words.empty()) return std::nullopt;
  auto count = [&](const char* w) { return std::count(words.begin(), words.end(), w); };
  if (count("thousand") > 1 || count("million") > 1 || count("billion") > 1) return std::nullopt;
  auto index = [&](const char* w) -> long {
    auto it = std::find(words.begin(), words.end(), w);
    return it == words.end() ? -1 : static_cast<long>(it - words.begin());
  };
  const long bi = index("billion"), mi = index("million"), ti = index("thousand");
  if ((ti > -1 && (ti < mi || ti < bi)) || (mi > -1 && mi < bi)) return std::nullopt;
  auto formation = [&](long from, long to) -> std::optional<long long> {
    std::vector<long long> n;
    for (long i = from; i < to; ++i) n.push_back(kNumbers.at(words[static_cast<size_t>(i)]));
    if (n.empty()) return std::nullopt;  // Python raises IndexError here
    if (n.size() == 4) return n[0] * n[1] + n[2] + n[3];
    if (n.size() == 3) return n[0] * n[1] + n[2];
    if (n.size() == 2) {
      if (n[0] == 100 || n[1] == 100) return n[0] * n[1];
      return n[0] + n[1];
    }
    return n[0];
  };
  const long size = static_cast<long>(words.size());
  if (size == 1) return kNumbers.at(words[0]);
  long long total = 0;
  if (bi > -1) {
    auto m = formation(0, bi);
    if (!m) return std::nullopt;
    total += *m * 1000000000LL;
  }
  if (mi > -1) {
    auto m = bi > -1 ? formation(bi + 1, mi) : formation(0, mi);
    if (!m) return std::nullopt;
    total += *m * 1000000LL;
  }
  if (ti > -1) {
    std::optional<long long> m;
    if (mi > -1) {
      m = formation(mi + 1, ti);
    } else if (bi > -1) {
      m = formation(bi + 1, ti);
    } else {
      m = formation(0, ti);
    }
    if (!m) return std::nullopt;
    total += *m * 1000LL;
  }
  std::optional<long long> hundreds = 0;
  if (ti > -1 && ti != size - 1) {
    hundreds = formation(ti + 1, size);
  } else if (mi > -1 && mi != size - 1) {
    hundreds = formation(mi + 1, size);
  } else if (bi > -1 && bi != size - 1) {
    hundreds = formation(bi + 1, size);
  } else if (ti == -1 && mi == -1 && bi == -1) {
    hundreds = formation(0, size);
  }
  if (!hundreds) return std::nullopt;
  return total + *hundreds;
}

Filter NumberParseFilter() {
  auto regex = MustCompile("([-0-9]+)");
  // The english-number pattern of utils.NumberParseRegexFilter (branch-reset groups as in `regex`).
  auto words = MustCompile(
      "((?:(?:zero|one|two|three|four|five|(?:twen|thir|for|fif|six|seven|nine)(?|teen|ty)|eight(?"
      ":|een|y)|ten|eleven|twelve|fourteen|hundred|thousand|(?:m|b|tr)illion)(?:zero|one|two|"
      "three|four|five|(?:twen|thir|for|fif|six|seven|nine)(?:|teen|ty)|eight(?|een|y)|ten|eleven|"
      "twelve|fourteen|hundred|thousand|(?:m|b|tr)illion|[^\\S\r\n]|,|and|&)+)?(?:zero|one|two|"
      "three|four|five|(?:twen|thir|for|fif|six|seven|nine)(?|teen|ty)|eight(?|een|y)|ten|eleven|"
      "twelve|fourteen|hundred|thousand|(?:m|b|tr)illion))");
  Filter f;
  f.name = "flexible-extract";
  f.apply = [regex, words](const std::string& resp, const Doc&) -> std::string {
    std::string match = FindMatch(*regex, resp, 0);
    if (match.empty()) {
      match = FindMatch(*words, PyLower(resp), 0);
      if (!match.empty()) {
        auto n = WordToNum(match);
        match = n ? std::to_string(*n) : std::string();
      }
    }
    return match.empty() ? "[invalid]" : match;
  };
  return f;
}

Filter MapFilter(std::vector<std::pair<std::string, std::string>> pattern_to_value) {
  std::string joined;
  auto compiled = std::make_shared<std::vector<std::pair<std::shared_ptr<PyRegex>, std::string>>>();
  for (const auto& [p, v] : pattern_to_value) {
    joined += (joined.empty() ? "" : "|") + p;
    compiled->push_back({MustCompile(p), v});
  }
  auto whole = MustCompile(joined);
  Filter f;
  f.name = "flexible-extract";
  f.apply = [whole, compiled](const std::string& resp, const Doc&) -> std::string {
    const std::string m = FindMatch(*whole, FilterIgnores(resp, true, false), 0);
    if (m.empty()) return "[invalid]";
    for (const auto& [re, value] : *compiled) {
      if (!FindMatch(*re, FilterIgnores(m, true, false), 0).empty()) return value;
    }
    return "[invalid]";
  };
  return f;
}

Filter WordSortFilter() {
  Filter f;
  f.name = "flexible-extract";
  f.apply = [](const std::string& resp, const Doc& doc) -> std::string {
    const std::string input = Field(doc, "input");
    const size_t at = input.find("List:");
    if (at == std::string::npos) return "";
    std::string rest = input.substr(at + 5);
    const size_t next = rest.find("List:");  // Python split("List:")[1]
    if (next != std::string::npos) rest = rest.substr(0, next);
    std::vector<std::string> words;
    std::string cur;
    for (char c : PyStrip(rest) + " ") {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        if (!cur.empty()) words.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    // The words are joined unescaped into the pattern, as lm-eval does.
    std::string pattern;
    for (size_t i = 0; i < words.size(); ++i)
      pattern += (i ? "|" : "") + ("\\b" + words[i] + "\\b");
    auto re = PyRegex::Compile(pattern);
    if (!re.ok()) return "";
    auto all = re->FindAll(resp);
    if (!all.ok()) return "";
    // Reverse, de-duplicate keeping first occurrences, reverse again: order by last occurrence.
    std::vector<std::string> rev;
    for (auto it = all->rbegin(); it != all->rend(); ++it) rev.push_back((*it)[0]);
    std::vector<std::string> uniq;
    for (const auto& w : rev) {
      if (std::find(uniq.begin(), uniq.end(), w) == uniq.end()) uniq.push_back(w);
    }
    std::string out;
    for (auto it = uniq.rbegin(); it != uniq.rend(); ++it) out += (out.empty() ? "" : " ") + *it;
    return out;
  };
  return f;
}

Filter ZeroshotFlexibleFilter(const std::string& subtask) {
  static const std::map<std::string, std::string> kRegex = {
      {"boolean_expressions", "\\b(True|False)\\b"},
      {"causal_judgement", "\\b(Yes|No|yes|no)\\b"},
      {"navigate", "\\b(Yes|No|yes|no)\\b"},
      {"formal_fallacies", "\\b(valid|invalid)\\b"},
      {"dyck_languages", "(?<= )([\" \\[\\(<{}>\\)\\]]+)|([\" \\[\\(<{}>\\)\\]]+)"}};
  if (auto it = kRegex.find(subtask); it != kRegex.end()) {
    return RegexFilter("flexible-extract", it->second, 0);
  }
  if (subtask == "multistep_arithmetic_two" || subtask == "object_counting") {
    return NumberParseFilter();
  }
  if (subtask == "sports_understanding") {
    return MapFilter({{"\\b(no|not plausible)\\b", "no"}, {"\\b(yes|plausible)\\b", "yes"}});
  }
  if (subtask == "web_of_lies") {
    return MapFilter({{"\\b(no|does not tell the truth|is not telling the truth)\\b", "no"},
                      {"\\b(yes|tells the truth|is telling the truth)\\b", "yes"}});
  }
  if (subtask == "word_sorting") return WordSortFilter();
  return MultiChoiceFilter();
}

TaskConfig BbhConfig(const std::string& subtask, bool cot) {
  TaskConfig c;
  c.name = (cot ? "bbh_cot_fewshot_" : "bbh_zeroshot_") + subtask;
  c.version = cot ? "4.0" : "3.0";
  c.dataset = "bbh";
  c.output_type = OutputType::kGenerateUntil;
  c.doc_to_target = [](const Doc& d) { return Field(d, "target"); };
  if (cot) {
    c.doc_to_text = [](const Doc& d) {
      return "Q: " + Field(d, "input") + "\nA: Let's think step by step.\n";
    };
    c.target_delimiter = "";
    c.num_fewshot = 3;
    c.sampler = TaskConfig::Sampler::kFirstN;
    c.generation.until = {"</s>", "Q", "\n\n"};
    c.generation.max_gen_toks = 1024;
    c.filters = {RegexFilter("get-answer", "(?<=the answer is )(.*)(?=.)", 0)};
    c.metrics = {ExactMatchMetric(ExactMatchOptions{})};
  } else {
    c.doc_to_text = [](const Doc& d) { return "Q: " + Field(d, "input") + "\nA:"; };
    c.num_fewshot = 0;
    c.generation.until = {"</s>", "Q:", "<|im_end|>"};
    c.generation.max_gen_toks = 256;
    c.filters = {TakeFirstFilter("strict-match"), ZeroshotFlexibleFilter(subtask)};
    ExactMatchOptions o;
    o.regexes_to_ignore = {"\\.$", ",", "\n", "\\\\", "\""};
    o.ignore_case = true;
    c.metrics = {ExactMatchMetric(o)};
  }
  c.load = [subtask, cot](const std::filesystem::path& dir, std::vector<Doc>* test,
                          std::vector<Doc>* fs) { return LoadBbh(dir, subtask, cot, test, fs); };
  // Both variants take the task description from cot-prompts/<subtask>.txt, as lm-eval's YAMLs do.
  c.configure = [subtask](const std::filesystem::path& dir, TaskConfig* config) -> Status {
    ASSIGN_OR_RETURN(BbhCotPrompt prompt, LoadBbhCotPrompt(dir, subtask));
    config->description = prompt.description;
    return OkStatus();
  };
  return c;
}

}  // namespace

const std::vector<std::string>& BbhSubtasks() {
  static const std::vector<std::string> v(std::begin(kSubtasks), std::end(kSubtasks));
  return v;
}

StatusOr<BbhCotPrompt> ParseBbhCotPrompt(const std::string& text, const std::string& label) {
  const size_t dash = text.find("-----\n");
  if (dash == std::string::npos) return DataLoss("{}: no '-----' line", label);
  const std::string body = text.substr(dash + 6);
  const size_t first_q = body.find("\n\nQ: ");
  if (first_q == std::string::npos) return DataLoss("{}: no exemplar", label);
  BbhCotPrompt out;
  out.description = body.substr(0, first_q) + "\n\n";
  const std::string rest = PyRStrip(body.substr(first_q + 2));
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t end = rest.find("\n\nQ: ", pos);
    if (end == std::string::npos) end = rest.size();
    const std::string block = rest.substr(pos, end - pos);
    pos = end == rest.size() ? end : end + 2;
    if (block.compare(0, 3, "Q: ") != 0) return DataLoss("{}: exemplar without 'Q: '", label);
    const size_t a = block.find(kStep);
    if (a == std::string::npos) {
      return DataLoss("{}: exemplar without \"A: Let's think step by step.\"", label);
    }
    // lm-eval's samples: input = the question, target = the rationale (the YAML drops the space
    // that follows "step." in sports_understanding).
    std::string target = block.substr(a + kStep.size());
    if (!target.empty() && (target[0] == '\n' || target[0] == ' ')) target.erase(0, 1);
    out.shots.push_back({{"input", block.substr(3, a - 3)}, {"target", target}});
  }
  if (out.shots.size() != 3) {
    return DataLoss("{}: {} exemplars, expected 3", label, out.shots.size());
  }
  return out;
}

StatusOr<BbhCotPrompt> LoadBbhCotPrompt(const std::filesystem::path& data_dir,
                                        const std::string& subtask) {
  const auto path = data_dir / "bbh" / "cot-prompts" / (subtask + ".txt");
  if (!DataFileExists(path)) return MissingDataError(path, "bbh");
  ASSIGN_OR_RETURN(std::string text, ReadDataFile(path));
  return ParseBbhCotPrompt(text, path.string());
}

void RegisterBbhTasks(TaskRegistry& registry) {
  for (bool cot : {true, false}) {
    TaskGroup group;
    group.name = cot ? "bbh_cot_fewshot" : "bbh_zeroshot";
    group.version = cot ? "4.0" : "3.0";
    group.aggregate_metrics = {cot ? "exact_match,get-answer" : "exact_match,flexible-extract"};
    for (const auto& s : BbhSubtasks()) {
      TaskConfig probe = BbhConfig(s, cot);
      group.subtasks.push_back(probe.name);
      registry.AddTask(probe.name, [s, cot] { return BbhConfig(s, cot); });
    }
    registry.AddGroup(std::move(group));
  }
}

}  // namespace rvec::eval
