// rvec entry point: builds the subcommand table, parses flags, runs one command, maps errors to
// exit codes.
#include <algorithm>
#include <cstdio>

#include "base/fs.h"
#include "cli/command.h"
#include "cli/version.h"

namespace rvec::cli {

GlobalOptions& Globals() {
  static GlobalOptions options;
  return options;
}

std::vector<CommandInfo>& Registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

void AddCommonFlags(CLI::App& app, bool with_json) {
  app.add_flag("-q,--quiet", Globals().quiet, "No progress output");
  if (with_json) app.add_flag("--json", Globals().json, "Machine-readable JSON output on stdout");
  app.add_option("--threads", Globals().threads, "Worker threads (default: all cores)");
}

void PrintJson(const std::string& json_text) {
  std::fwrite(json_text.data(), 1, json_text.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace rvec::cli

int main(int argc, char** argv) {
  using namespace rvec::cli;
  CLI::App app{
      "rvec: extract, analyse, apply and evaluate reasoning vectors (task arithmetic "
      "between Hugging Face checkpoints).\n\nExample:\n  rvec synth --preset tiny-qwen2 "
      "-o /tmp/tiny && rvec inspect /tmp/tiny"};
  app.set_version_flag("--version", std::string("rvec ") + rvec::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  auto& registry = Registry();
  std::stable_sort(registry.begin(), registry.end(),
                   [](const CommandInfo& a, const CommandInfo& b) { return a.order < b.order; });
  std::function<rvec::Status()> action;
  for (auto& info : registry) {
    CLI::App* sub = app.add_subcommand(info.name, info.summary);
    auto run = info.setup(*sub);
    // A command may describe itself at length; the top-level list shows only its summary, and
    // the long text moves into the command's own --help.
    const std::string long_description = sub->get_description();
    if (long_description != info.summary) {
      const std::string footer = sub->get_footer();
      sub->description(info.summary);
      sub->footer(long_description + (footer.empty() ? "" : "\n\n" + footer));
    }
    sub->callback([&action, run] { action = run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!action) return 2;
  const rvec::Status status = action();
  for (const std::string& note : rvec::TakeCleanupNotes()) {
    std::fprintf(stderr, "rvec: note: %s\n", note.c_str());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "rvec: error: %s\n", status.message().c_str());
    switch (status.code()) {
      case rvec::StatusCode::kInvalidArgument:
        return 2;
      case rvec::StatusCode::kAlreadyExists:
        return 3;
      default:
        return 1;
    }
  }
  return 0;
}
