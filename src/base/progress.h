// Progress reporting for long operations: a bar with rate and ETA on a terminal, silent otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace rvec {

// Libraries take a Progress* (may be null) and call Advance(); the CLI decides whether it draws.
class Progress {
 public:
  // `enabled` is false for --quiet or when stderr is not a terminal (see ShouldShowProgress).
  Progress(std::string label, uint64_t total, bool enabled, std::string unit = "");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Advance(uint64_t amount = 1);
  void SetTotal(uint64_t total);
  void SetLabel(std::string label);
  void Finish();

 private:
  void Draw(bool final_draw);

  std::mutex mutex_;
  std::string label_;
  std::string unit_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// True when stderr is a terminal and `quiet` is false.
bool ShouldShowProgress(bool quiet);

// Formats a byte count as "1.54 GB" and a duration as "1m 05s".
std::string HumanBytes(uint64_t bytes);
std::string HumanDuration(double seconds);

}  // namespace rvec
