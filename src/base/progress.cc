// Progress bar drawing: at most ten redraws a second, one line, carriage-return updates.
#include "base/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace rvec {

Progress::Progress(std::string label, uint64_t total, bool enabled, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled) {
  start_ = std::chrono::steady_clock::now();
  last_draw_ = start_ - std::chrono::seconds(1);
}

Progress::~Progress() { Finish(); }

void Progress::SetTotal(uint64_t total) {
  std::lock_guard<std::mutex> lock(mutex_);
  total_ = total;
}

void Progress::SetLabel(std::string label) {
  std::lock_guard<std::mutex> lock(mutex_);
  label_ = std::move(label);
}

void Progress::Advance(uint64_t amount) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += amount;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(false);
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  Draw(true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void Progress::Draw(bool final_draw) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
  constexpr int kWidth = 28;
  const int filled = static_cast<int>(frac * kWidth + 0.5);
  std::string bar(static_cast<size_t>(std::min(filled, kWidth)), '#');
  bar.resize(kWidth, '.');
  std::string amount;
  if (unit_ == "B") {
    amount = fmt::format("{}/{}", HumanBytes(done_), HumanBytes(total_));
  } else {
    amount = fmt::format("{}/{}{}{}", done_, total_, unit_.empty() ? "" : " ", unit_);
  }
  std::string eta;
  if (!final_draw && done_ > 0 && total_ > done_) {
    eta = fmt::format(" eta {}", HumanDuration(elapsed * static_cast<double>(total_ - done_) /
                                               static_cast<double>(done_)));
  } else {
    eta = fmt::format(" {}", HumanDuration(elapsed));
  }
  std::fprintf(stderr, "\r%s [%s] %3.0f%% %s%s\x1b[K", label_.c_str(), bar.c_str(), frac * 100,
               amount.c_str(), eta.c_str());
  std::fflush(stderr);
}

bool ShouldShowProgress(bool quiet) { return !quiet && ::isatty(STDERR_FILENO); }

std::string HumanBytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

std::string HumanDuration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const long s = static_cast<long>(seconds);
  if (s < 3600) return fmt::format("{}m {:02}s", s / 60, s % 60);
  return fmt::format("{}h {:02}m", s / 3600, (s / 60) % 60);
}

}  // namespace rvec
