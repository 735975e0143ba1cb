// SciQ as lm-eval defines it: 4-way log-likelihood multiple choice (acc, acc_norm), gold last.
#include "base/fs.h"
#include "eval/python/pyre.h"
#include "eval/task.h"

namespace rvec::eval {

namespace {

std::string Field(const Doc& d, const char* key) {
  auto it = d.find(key);
  return (it != d.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

TaskConfig SciqConfig() {
  TaskConfig c;
  c.name = "sciq";
  c.version = "1.0";
  c.dataset = "sciq";
  c.output_type = OutputType::kMultipleChoice;
  c.doc_to_text = [](const Doc& d) {
    return PyLStrip(Field(d, "support")) + "\nQuestion: " + Field(d, "question") + "\nAnswer:";
  };
  c.doc_to_choice = [](const Doc& d) {
    return std::vector<std::string>{Field(d, "distractor1"), Field(d, "distractor2"),
                                    Field(d, "distractor3"), Field(d, "correct_answer")};
  };
  c.doc_to_gold = [](const Doc&) { return size_t{3}; };
  c.doc_to_target = [](const Doc& d) { return Field(d, "correct_answer"); };
  c.num_fewshot = 0;
  c.load = [](const std::filesystem::path& dir, std::vector<Doc>* test, std::vector<Doc>*) {
    const auto path = dir / "sciq" / "test.json";
    if (!DataFileExists(path)) return MissingDataError(path, "sciq");
    ASSIGN_OR_RETURN(*test, ReadJsonArray(path));
    for (size_t i = 0; i < test->size(); ++i) {
      for (const char* k :
           {"question", "distractor1", "distractor2", "distractor3", "correct_answer", "support"}) {
        if (!(*test)[i].contains(k)) {
          return DataLoss("{}: element {} lacks field '{}'", path.string(), i, k);
        }
      }
    }
    return OkStatus();
  };
  return c;
}

}  // namespace

void RegisterSciqTasks(TaskRegistry& registry) { registry.AddTask("sciq", SciqConfig); }

}  // namespace rvec::eval
