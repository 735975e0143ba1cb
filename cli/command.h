// Subcommand registry: each cli/<name>.cc registers itself, so commands never edit a shared file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace rvec::cli {

// Flags every command shares; filled by main before the command runs.
struct GlobalOptions {
  bool quiet = false;
  bool json = false;   // machine-readable output where the command supports it
  size_t threads = 0;  // 0 = all hardware threads (or RVEC_THREADS)
};
GlobalOptions& Globals();

// Builds the subcommand's flags on `app` and returns the action that runs after parsing.
// The action returns a Status; main prints it and picks the exit code.
using CommandSetup = std::function<std::function<Status()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string summary;
  CommandSetup setup;
  int order;  // position in --help
};

std::vector<CommandInfo>& Registry();

struct RegisterCommand {
  RegisterCommand(std::string name, std::string summary, int order, CommandSetup setup) {
    Registry().push_back({std::move(name), std::move(summary), std::move(setup), order});
  }
};

// Adds the shared --quiet/--json/--threads flags to a subcommand.
void AddCommonFlags(CLI::App& app, bool with_json = true);

// Standard output helpers (only the CLI prints).
void PrintJson(const std::string& json_text);

}  // namespace rvec::cli
