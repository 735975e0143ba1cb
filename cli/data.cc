// `rvec data`: downloads (pull) and checks (verify) the evaluation data sets from their public
// sources at pinned commits, with SHA-256 pins and progress bars.
#include "eval/data.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/progress.h"
#include "cli/command.h"
#include "eval/runner.h"

namespace rvec::cli {
namespace {

struct DataFlags {
  std::vector<std::string> names;
  std::string data_dir;
  std::string mirror;
  bool force = false;
  double timeout = 120.0;
};

Status Pull(const DataFlags& f) {
  eval::PullOptions o;
  o.data_dir = eval::ResolveDataDir(f.data_dir);
  o.mirror = f.mirror;
  o.force = f.force;
  o.timeout_s = f.timeout;
  o.show_progress = ShouldShowProgress(Globals().quiet);
  ASSIGN_OR_RETURN(eval::PullReport r, eval::PullData(f.names, o));
  if (Globals().json) {
    PrintJson(nlohmann::json({{"data_dir", o.data_dir.string()},
                              {"downloaded", r.downloaded},
                              {"already_present", r.already_present}})
                  .dump(2));
  } else {
    std::printf("%s: %zu file(s) downloaded, %zu already present and verified\n",
                o.data_dir.c_str(), r.downloaded.size(), r.already_present.size());
  }
  return OkStatus();
}

Status Verify(const DataFlags& f) {
  const auto dir = eval::ResolveDataDir(f.data_dir);
  ASSIGN_OR_RETURN(auto problems, eval::VerifyData(f.names, dir));
  if (Globals().json) {
    PrintJson(nlohmann::json({{"data_dir", dir.string()}, {"problems", problems}}).dump(2));
  } else {
    for (const auto& p : problems) std::printf("%s\n", p.c_str());
    if (problems.empty())
      std::printf("%s: all files present with their pinned SHA-256\n", dir.c_str());
  }
  if (!problems.empty()) {
    return DataLoss("{} problem(s) in {}; run `rvec data pull`", problems.size(), dir.string());
  }
  return OkStatus();
}

const RegisterCommand kRegister(
    "data", "Download / verify evaluation data sets (pinned sources, SHA-256)", 62,
    [](CLI::App& app) {
      auto f = std::make_shared<DataFlags>();
      auto action = std::make_shared<std::function<Status()>>();
      app.description(
          "Data sets are stored as their public sources name them (gsm8k/test.jsonl, "
          "sciq/test.json, bbh/bbh/<task>.json, ...) under --data-dir, else $RVEC_DATA, else "
          "~/.local/share/rvec/data.\n\nExamples:\n  rvec data pull gsm8k sciq bbh\n"
          "  rvec data pull --data-dir ./data\n  rvec data verify");
      app.require_subcommand(1);
      for (const char* name : {"pull", "verify"}) {
        CLI::App* sub = app.add_subcommand(
            name, std::string(name) == "pull"
                      ? "Download data sets (all when none named) and check their SHA-256"
                      : "Check that the data sets are present with their pinned SHA-256");
        sub->add_option("names", f->names, "Tasks or data sets (gsm8k, sciq, bbh, humaneval, ...)");
        sub->add_option("--data-dir", f->data_dir, "Data directory");
        if (std::string(name) == "pull") {
          sub->add_option(
              "--mirror", f->mirror,
              "Fetch MIRROR/<path> instead of the public sources (hashes still checked)");
          sub->add_flag("--force", f->force, "Re-download files already present");
          sub->add_option("--timeout", f->timeout, "Seconds per request (default 120)");
          sub->callback([f, action] { *action = [f] { return Pull(*f); }; });
        } else {
          sub->callback([f, action] { *action = [f] { return Verify(*f); }; });
        }
        AddCommonFlags(*sub);
      }
      return [action] { return *action ? (*action)() : InvalidArgument("pull or verify?"); };
    });

}  // namespace
}  // namespace rvec::cli
