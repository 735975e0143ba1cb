// Competition-math tasks as the Qwen2.5-Math evaluation (evaluation/math_eval.py, utils.py,
// parser.py) runs them: zero-shot prompt types, per-data-set gold answers, greedy decoding for
// 2048 tokens with its stop strings, scored by the math grader (eval/math/grader.h).
#include "eval/tasks/math.h"

#include <algorithm>
#include <cmath>

#include "base/fs.h"
#include "eval/math/grader.h"
#include "eval/python/pyre.h"

namespace rvec::eval {

namespace {

constexpr char kBoxedInstruction[] =
    "Please reason step by step, and put your final answer within \\boxed{}.";
constexpr char kFilterName[] = "boxed";

// The few-shot exemplars of the reference's `cot` prompt type, verbatim (stray braces included):
// evaluation/examples.py "math" (for every set but Minerva; the reference has none for MATH-500
// and OlympiadBench) and "minerva_math". MATH problems with worked solutions (Hendrycks et al.
// 2021, MIT); tests/golden/math_cot_exemplars.json holds the same text for the golden prompts.
struct Exemplar {
  const char* question;
  const char* solution;
};
constexpr Exemplar kMathExemplars[] = {
    {"Kevin Kangaroo begins hopping on a number line at 0. He wants to get to 1, but he can hop "
     "only $\\frac{1}{3}$ of the distance. Each hop tires him out so that he continues to hop "
     "$\\frac{1}{3}$ of the remaining distance. How far has he hopped after five hops? Express "
     "your answer as a common fraction.",
     "Let's think step by step\n"
     "Kevin hops $1/3$ of the remaining distance with every hop.\n"
     "His first hop takes $1/3$ closer.\n"
     "For his second hop, he has $2/3$ left to travel, so he hops forward $(2/3)(1/3)$.\n"
     "For his third hop, he has $(2/3)^2$ left to travel, so he hops forward $(2/3)^2(1/3)$.\n"
     "In general, Kevin hops forward $(2/3)^{k-1}(1/3)$ on his $k$th hop.\n"
     "We want to find how far he has hopped after five hops.\n"
     "This is a finite geometric series with first term $1/3$, common ratio $2/3$, and five "
     "terms.\n"
     "Thus, Kevin has hopped $\\frac{\\frac{1}{3}\\left(1-\\left(\\frac{2}{3}\\right)^5\\right)}{"
     "1-\\frac{2}{3}} = \\boxed{\\frac{211}{243}}$.\n"
     "The answer is \\frac{211}{243}}"},
    {"What is the area of the region defined by the equation $x^2+y^2 - 7 = 4y-14x+3$?",
     "Let's think step by step\n"
     "We rewrite the equation as $x^2 + 14x + y^2 - 4y = 10$ and then complete the square,\n"
     "resulting in  $(x+7)^2-49 + (y-2)^2-4=10$,\n"
     "or $(x+7)^2+(y-2)^2=63$.\n"
     "This is the equation of a circle with center $(-7, 2)$ and radius $\\sqrt{63},$\n"
     "so the area of this region is $\\pi r^2 = \\boxed{63\\pi}$.\n"
     "The answer is 63\\pi"},
    {"If $x^2+y^2=1$, what is the largest possible value of $|x|+|y|$?",
     "Let's think step by step\n"
     "If $(x,y)$ lies on the circle,\n"
     "so does $(x,-y),$ $(-x,-y),$ and $(-x,-y),$ (which all give the same value of $|x| + "
     "|y|$),\n"
     "so we can assume that $x \\ge 0$ and $y \\ge 0.$\n"
     "Then $|x| + |y| = x + y.$  Squaring, we get\n"
     "\\[(x + y)^2 = x^2 + 2xy + y^2 = 1 + 2xy.\\]\n"
     "Note that $(x - y)^2 \\ge 0.$\n"
     "Expanding, we get $x^2 - 2xy + y^2 \\ge 0,$ so $2xy \\le x^2 + y^2 = 1.$\n"
     "Hence,\\[1 + 2xy \\le 2,\\]which means $x + y \\le \\sqrt{2}.$\n"
     "Equality occurs when $x = y = \\frac{1}{\\sqrt{2}},$\n"
     "so the maximum value of $|x| + |y|$ is $\\boxed{\\sqrt{2}}.$\n"
     "The answer is \\sqrt{2}"},
    {"If $f(x)=\\frac{ax+b}{cx+d}, abcd\\not=0$ and $f(f(x))=x$ for all $x$ in the domain of "
     "$f$, what is the value of $a+d$?",
     "Let's think step by step\n"
     "The condition $f(f(x))$ means that $f$ is the inverse of itself,\n"
     "so its graph is symmetrical about the line $y = x$.\n"
     "With a rational function of this form, we will have two asymptotes:\n"
     "a vertical one at $x=-d/c$ if $cx+d$ does not divide $ax+b$,\n"
     "and a horizontal one at $y=a/c$,\n"
     "if we take the limit of $f(x)$ as $x$ goes to $\\pm\\infty$.\n"
     "In order for $f$ to be its own inverse, the intersection of the asymptotes must lie on the "
     "line $y=x$\n"
     "so that it and its asymptotes reflect onto themselves.\n"
     "This means that $-d/c=a/c$,\n"
     "and therefore $-d=a$ and $a+d=\\boxed{0}$.\n"
     "The answer is 0"},
    {"Expand $(2z^2 + 5z - 6)(3z^3 - 2z + 1)$.",
     "Let's think step by step\n"
     "$$\\begin{array}{crrrrrrr}\n"
     "& & & 3z^3 & & -2z & + 1 & \\\\\n"
     "\\times & & & & 2z^2 & +5z & -6 \\\\\n"
     "\\cline{1-7}\\rule{0pt}{0.17in}\n"
     "& & & -18z^3 & & +12z & -6 & \\\\\n"
     "& & +15z^4 & & -10z^2 & +5z & & \\\\\n"
     "+ & 6z^5 & & -4z^3 & +2z^2 & & & \\\\\n"
     "\\cline{1-7}\\rule{0pt}{0.17in}\n"
     "& 6z^5 & +15z^4 & -22z^3 & - 8z^2 &+17z & -6 &\n"
     "\\end{array}$$\n"
     "The answer is 6z^5+15z^4-22z^3-8z^2+17z-6"},
};
constexpr Exemplar kMinervaExemplars[] = {
    {"Find the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
     "The expressions inside each square root must be non-negative.\n"
     "Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$.\n"
     "Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$.\n"
     "Therefore, the domain of the expression is $\\boxed{[2,5)}$."},
    {"If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} "
     "\\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = "
     "(2)(12) = \\boxed{24}.$"},
    {"Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights "
     "instead, how many times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot "
     "12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, "
     "he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 "
     "pounds, we can solve for $n$: \\begin{align*}\n"
     "30n&=480\\\\\\\n"
     "\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n"
     "\\end{align*}"},
    {"If the system of equations\n"
     "\n"
     "\\begin{align*}\n"
     "6x-4y&=a,\\\\\\\n"
     "6y-9x &=b.\n"
     "\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find "
     "$\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n"
     "\n"
     "$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n"
     "\n"
     "$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$"},
};

// The exemplars as the `cot` type renders them: "Question: q\nAnswer: a", joined by its splitter.
std::string CotDemos(const std::string& dataset) {
  std::string out;
  const auto add = [&out](const auto& shots) {
    for (const Exemplar& e : shots) {
      out += std::string("Question: ") + e.question + "\nAnswer: " + e.solution + "\n\n\n";
    }
  };
  if (dataset == "minerva_math") {
    add(kMinervaExemplars);
  } else {
    add(kMathExemplars);
  }
  return out;
}

// One prompt type of the reference's PROMPT_TEMPLATES. Plain text is [the few-shot demos +]
// plain_prefix + question + plain_suffix with spaces stripped from both ends (construct_prompt's
// final strip(" ")). Chat styles name the system message and the user message's suffix that make
// a ChatML template (Qwen2.5) render exactly the plain text; base styles (no chat_system) send the
// whole plain prompt, stripped, as the one user message (math_eval.py --apply_chat_template).
struct MathPromptStyle {
  const char* name;
  std::string plain_prefix;
  std::string plain_suffix;
  const char* chat_system;  // nullptr: a base-model style
  std::string chat_suffix;
  const char* extra_stop;  // nullptr: only the common stop strings
  bool fewshot;            // the cot exemplars before the question
};

const std::vector<MathPromptStyle>& Styles() {
  static const std::vector<MathPromptStyle> kStyles = {
      {"qwen25-math-cot",
       std::string("<|im_start|>system\n") + kBoxedInstruction + "<|im_end|>\n<|im_start|>user\n",
       "<|im_end|>\n<|im_start|>assistant\n", kBoxedInstruction, "", nullptr, false},
      {"qwen-boxed",
       "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
       std::string("\n") + kBoxedInstruction + "<|im_end|>\n<|im_start|>assistant\n",
       "You are a helpful assistant.", std::string("\n") + kBoxedInstruction, nullptr, false},
      {"cot", "Question: ", "\nAnswer: ", nullptr, "", "\n\nQuestion:", false},
      {"cot-fewshot", "Question: ", "\nAnswer: ", nullptr, "", "\n\nQuestion:", true},
      {"deepseek-math", "User: ", std::string("\n") + kBoxedInstruction + "\n\nAssistant:", nullptr,
       "", nullptr, false},
      {"mathstral", "", std::string("\n") + kBoxedInstruction, nullptr, "", nullptr, false},
  };
  return kStyles;
}

std::string StripSpaces(const std::string& s) {
  const size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(' ') - b + 1);
}

std::string StringField(const Doc& d, const char* key) {
  auto it = d.find(key);
  return (it != d.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

// A JSON answer as text. AMC answers are floats (27.0): an integral value is written as an integer
// ("27"), as the reference's strip_string turns str(27.0) into.
std::string AnswerText(const Doc& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) {
      return fmt::format("{}", static_cast<long long>(x));
    }
    return fmt::format("{}", x);
  }
  return v.is_null() ? std::string() : v.dump();
}

// parse_ground_truth strips the "$" around an OlympiadBench answer, and strip_string then removes
// every other one ("$69$,$84$" -> "69,84").
std::string RemoveDollars(std::string s) {
  std::erase(s, '$');
  return s;
}

// What each data set's rows must hold for a prompt and a gold answer.
Status CheckRow(const std::string& dataset, const Doc& d, const std::string& where) {
  if (!d.is_object()) return DataLoss("{}: not a JSON object", where);
  if (!d.contains("question") && !d.contains("problem")) {
    return DataLoss("{}: lacks \"question\"/\"problem\"", where);
  }
  const char* gold = dataset == "minerva_math"    ? "solution"
                     : dataset == "olympiadbench" ? "final_answer"
                                                  : "answer";
  if (!d.contains(gold)) return DataLoss("{}: lacks \"{}\"", where, gold);
  if (dataset == "olympiadbench" && (!d[gold].is_array() || d[gold].empty())) {
    return DataLoss("{}: \"final_answer\" is not a non-empty list", where);
  }
  return OkStatus();
}

// DATA/math/NAME/test.jsonl, where `rvec data pull math` writes and testdata/ keeps them; else
// DATA/NAME/test.jsonl, so that --data-dir may also name the math folder itself.
Status LoadMath(const std::string& dataset, const std::filesystem::path& data_dir,
                std::vector<Doc>* test) {
  auto path = data_dir / "math" / dataset / "test.jsonl";
  if (!DataFileExists(path) && DataFileExists(data_dir / dataset / "test.jsonl")) {
    path = data_dir / dataset / "test.jsonl";
  }
  if (!DataFileExists(path)) return MissingDataError(path, "math");
  ASSIGN_OR_RETURN(*test, ReadJsonLines(path));
  for (size_t i = 0; i < test->size(); ++i) {
    RETURN_IF_ERROR(
        CheckRow(dataset, (*test)[i], fmt::format("{}: line {}", path.string(), i + 1)));
  }
  return OkStatus();
}

const MathPromptStyle* FindStyle(const std::string& name) {
  for (const auto& s : Styles()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& MathPromptStyles() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& s : Styles()) names.push_back(s.name);
    return names;
  }();
  return kNames;
}

Status ValidateMathPromptStyle(const std::string& style) {
  if (FindStyle(style) != nullptr) return OkStatus();
  std::string known;
  for (const auto& s : MathPromptStyles()) known += (known.empty() ? "" : ", ") + s;
  return InvalidArgument("unknown --prompt-style '{}'; styles: {}", style, known);
}

const std::vector<std::string>& MathTaskNames() {
  static const std::vector<std::string> kNames = {"math500", "aime24", "amc23", "minerva_math",
                                                  "olympiadbench"};
  return kNames;
}

std::string MathGoldAnswer(const std::string& dataset, const Doc& doc) {
  if (dataset == "minerva_math") return math::LastBoxed(StringField(doc, "solution"));
  if (dataset == "olympiadbench") {
    auto it = doc.find("final_answer");
    if (it == doc.end() || !it->is_array() || it->empty()) return "";
    return RemoveDollars(AnswerText((*it)[0]));
  }
  auto it = doc.find("answer");
  return it == doc.end() ? std::string() : AnswerText(*it);
}

std::string MathQuestion(const std::string& dataset, const Doc& doc) {
  std::string q =
      doc.contains("question") ? StringField(doc, "question") : StringField(doc, "problem");
  const std::string gold = PyLower(MathGoldAnswer(dataset, doc));
  if (gold == "true" || gold == "false") q += " (True or False)";
  if (gold == "yes" || gold == "no") q += " (Yes or No)";
  return PyStrip(q);
}

Status ApplyMathPromptStyle(const std::string& style_name, bool chat, TaskConfig* config) {
  const std::string name = style_name.empty() ? kDefaultMathPromptStyle : style_name;
  const MathPromptStyle* style = FindStyle(name);
  if (style == nullptr) return ValidateMathPromptStyle(name).WithContext("task " + config->name);
  const std::string dataset = config->name;
  if (std::find(MathTaskNames().begin(), MathTaskNames().end(), dataset) == MathTaskNames().end()) {
    // A derived task (--perturb) already rewrote the prompt text this would replace.
    return Unimplemented("task {}: the math prompt styles apply to the unperturbed math tasks only",
                         dataset);
  }
  const std::string prefix = (style->fewshot ? CotDemos(dataset) : "") + style->plain_prefix;
  const auto plain = [style, prefix, dataset](const Doc& d) {
    return StripSpaces(prefix + MathQuestion(dataset, d) + style->plain_suffix);
  };
  config->description.clear();
  if (!chat) {
    config->doc_to_text = plain;
  } else if (style->chat_system != nullptr) {
    config->description = style->chat_system;
    const std::string suffix = style->chat_suffix;
    config->doc_to_text = [suffix, dataset](const Doc& d) {
      return MathQuestion(dataset, d) + suffix;
    };
  } else {
    config->doc_to_text = [plain](const Doc& d) { return PyStrip(plain(d)); };
  }
  config->generation.until = {"</s>", "<|im_end|>", "<|endoftext|>"};
  if (style->extra_stop != nullptr) config->generation.until.push_back(style->extra_stop);
  return OkStatus();
}

TaskConfig MathTaskConfig(const std::string& dataset) {
  TaskConfig c;
  c.name = dataset;
  c.version = "1.0";
  c.dataset = "math";
  c.output_type = OutputType::kGenerateUntil;
  c.target_delimiter = "";
  c.doc_to_target = [dataset](const Doc& d) { return MathGoldAnswer(dataset, d); };
  c.num_fewshot = 0;
  // math_eval.py defaults: --max_tokens_per_call 2048, --temperature 0 (greedy), --top_p 1.
  c.generation.max_gen_toks = 2048;
  c.generation.temperature = 0.0;
  c.generation.top_p = 1.0;
  c.generation.do_sample = false;
  Filter boxed;
  boxed.name = kFilterName;
  boxed.apply = [](const std::string& response, const Doc&) {
    return math::ExtractAnswer(response);
  };
  c.filters = {std::move(boxed)};
  GenerationMetric em;
  em.name = "exact_match";
  em.score = [](const std::string& prediction, const std::string& reference,
                const Doc&) -> StatusOr<double> {
    if (prediction.empty()) return 0.0;
    return math::MathEqual(prediction, reference) ? 1.0 : 0.0;
  };
  c.metrics = {std::move(em)};
  // maj@K (--samples K) counts equivalent answers ("1/2", "0.5") as one vote.
  c.same_answer = [](const std::string& a, const std::string& b, const Doc&) {
    return a == b || (!a.empty() && !b.empty() && math::MathEqual(a, b));
  };
  c.load = [dataset](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>*) {
    return LoadMath(dataset, dir, test);
  };
  c.apply_prompt_style = ApplyMathPromptStyle;
  // The default style as plain text; the runner re-applies the chosen style knowing whether a chat
  // template renders the prompt.
  (void)ApplyMathPromptStyle("", false, &c);
  return c;
}

void RegisterMathTasks(TaskRegistry& registry) {
  TaskGroup group;
  group.name = "math";
  group.version = "1.0";
  group.aggregate_metrics = {std::string("exact_match,") + kFilterName};
  for (const auto& name : MathTaskNames()) {
    group.subtasks.push_back(name);
    registry.AddTask(name, [name] { return MathTaskConfig(name); });
  }
  registry.AddGroup(std::move(group));
}

}  // namespace rvec::eval
