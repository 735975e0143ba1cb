// Runs a library operation with a byte progress bar (unless --quiet/--json) and times it: the
// shared shape of the streaming commands (extract, apply, control).
#pragma once

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>

#include "base/progress.h"
#include "base/status.h"
#include "cli/command.h"

namespace rvec::cli {

template <typename T>
struct Timed {
  T value;
  double seconds = 0;
};

// `op(Progress*)` returns StatusOr<T>.
template <typename Op,
          typename T = std::remove_cvref_t<decltype(std::declval<Op>()(nullptr).value())>>
StatusOr<Timed<T>> RunWithProgress(const std::string& label, Op&& op) {
  Progress progress(label, 0, ShouldShowProgress(Globals().quiet || Globals().json), "B");
  const auto start = std::chrono::steady_clock::now();
  StatusOr<T> result = op(&progress);
  progress.Finish();
  if (!result.ok()) return result.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Timed<T>{std::move(result).value(), seconds};
}

// The shared ending of these commands. Under --json, prints the report's ToJson() with "seconds"
// and returns true: there is nothing more to print. Otherwise prints the report's warnings to
// stderr as "rvec: KIND: ..." and returns false, and the command prints its one-line summary.
template <typename Report>
bool PrintJsonOrWarnings(const Timed<Report>& timed, const char* kind = "warning") {
  if (Globals().json) {
    nlohmann::json j = timed.value.ToJson();
    j["seconds"] = timed.seconds;
    PrintJson(j.dump(2));
    return true;
  }
  for (const auto& w : timed.value.warnings)
    std::fprintf(stderr, "rvec: %s: %s\n", kind, w.c_str());
  return false;
}

}  // namespace rvec::cli
