// `rvec demo`: the whole pipeline on built-in miniature models (see src/pipeline/demo.h).
#include "pipeline/demo.h"

#include <cstdio>
#include <cstdlib>

#include "base/fs.h"
#include "base/progress.h"
#include "cli/command.h"
#include "cli/version.h"
#include "eval/data.h"
#include "eval/runner.h"

namespace rvec::cli {
namespace {

struct DemoFlags {
  std::string out = "rvec-demo", data_dir, tasks = "gsm8k,sciq,bbh_cot_fewshot";
  std::string preset = "tiny-qwen2";
  size_t limit = 10;
  bool force = false;
};

Status RunDemoCommand(const DemoFlags& f) {
  pipeline::DemoOptions o;
  o.workdir = f.out;
  o.preset = f.preset;
  // The demo runs offline everywhere: unless told otherwise it reads the data that ship with rvec.
  const char* env = std::getenv("RVEC_DATA");
  o.data_dir = (f.data_dir.empty() && !(env && *env)) ? eval::BundledDataDir()
                                                      : eval::ResolveDataDir(f.data_dir);
  o.tasks.clear();
  size_t pos = 0;
  while (pos <= f.tasks.size()) {
    const size_t comma = f.tasks.find(',', pos);
    const std::string t =
        f.tasks.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!t.empty()) o.tasks.push_back(t);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  o.limit = f.limit;
  o.force = f.force;
  o.threads = Globals().threads;
  o.show_progress = ShouldShowProgress(Globals().quiet || Globals().json);
  o.version = kVersion;
  const bool quiet = Globals().quiet || Globals().json;
  ASSIGN_OR_RETURN(pipeline::DemoResult r, pipeline::RunDemo(o, [quiet](const std::string& line) {
                     if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
                   }));
  if (Globals().json) {
    nlohmann::json j = r.transfer.report;
    j["demo_seconds"] = r.seconds;
    j["vector_matches_perturbation"] = r.vector_matches;
    PrintJson(j.dump(2));
  } else {
    auto md = ReadFileToString(r.transfer.report_md);
    if (md.ok()) std::fwrite(md->data(), 1, md->size(), stdout);
    std::printf("\nDemo finished in %s. Report: %s (also report.html, report.json)\n",
                HumanDuration(r.seconds).c_str(), r.transfer.report_md.c_str());
  }
  if (!r.vector_matches) {
    return Internal(
        "the known-vector check failed: the extracted vector differs from the "
        "perturbation that made GRPO (see the report)");
  }
  return OkStatus();
}

const RegisterCommand kDemo(
    "demo", "Run the whole pipeline on built-in miniature models (offline, a few minutes)", 5,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<DemoFlags>();
      app.footer(
          "Example:\n  rvec demo -o rvec-demo --limit 10\n\n"
          "Makes a random base model, SFT / GRPO / instruct variants that share its initialisation "
          "(GRPO = SFT + a known perturbation), then runs `rvec transfer` on real GSM8K, SciQ and "
          "BBH documents (the test sets ship with rvec, so it needs no network). The models are "
          "random: the scores show that the pipeline works, not the "
          "effect.");
      app.add_option("-o,--out", f->out, "Work directory (default rvec-demo)");
      app.add_option(
          "--data-dir", f->data_dir,
          "Benchmark data (default: $RVEC_DATA, else the test sets that ship with rvec)");
      app.add_option("--tasks", f->tasks, "Tasks (default gsm8k,sciq,bbh_cot_fewshot)");
      app.add_option("--limit", f->limit, "Docs per task (default 10)");
      app.add_option("--preset", f->preset, "Miniature architecture (default tiny-qwen2)");
      app.add_flag("--force", f->force, "Redo every step");
      AddCommonFlags(app);
      return [f] { return RunDemoCommand(*f); };
    });

}  // namespace
}  // namespace rvec::cli
