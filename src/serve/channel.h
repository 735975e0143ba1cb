// The hand-over from the engine thread to an HTTP handler thread: one RequestGroup per HTTP
// request (its n × prompts choices), filled by StreamSinks and read under one mutex+condvar.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/engine.h"

namespace rvec::serve {

struct ChoiceState {
  std::vector<TokenLogprob> prompt_logprobs;
  std::vector<TokenLogprob> tokens;
  std::string text;  // the engine's text deltas so far
  bool done = false;
  StatusOr<GenerateResult> result = Status(StatusCode::kInternal, "not finished");
};

// What is new in one choice since a reader's last look.
struct ChoiceUpdate {
  std::vector<TokenLogprob> tokens;  // from the given token index on
  std::string text;                  // from the given byte offset on
  bool done = false;
  StatusOr<GenerateResult> result = Status(StatusCode::kInternal, "not finished");
};

class RequestGroup {
 public:
  explicit RequestGroup(size_t choices) : choices_(choices), remaining_(choices) {}

  // Waits until something changed since `*version` (updating it) or `timeout` passed.
  // Returns false on timeout.
  bool WaitForChange(uint64_t* version, std::chrono::milliseconds timeout);
  // Waits until every choice is done or `timeout` passed; true when all are done.
  bool WaitAllDone(std::chrono::milliseconds timeout);
  // A copy of the choices, for building responses outside the lock.
  std::vector<ChoiceState> Snapshot() const;
  bool AllDone() const;
  ChoiceUpdate Poll(size_t i, size_t token_from, size_t text_from) const;

  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // For the sinks (engine thread).
  void PromptLogprobs(size_t i, std::vector<TokenLogprob> logprobs);
  void Token(size_t i, const TokenLogprob& token, const std::string& text);
  void Done(size_t i, StatusOr<GenerateResult> result);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ChoiceState> choices_;
  size_t remaining_;
  uint64_t version_ = 0;
  std::atomic<bool> cancelled_{false};
};

// The StreamSink of choice `index` of a group.
class GroupSink : public StreamSink {
 public:
  GroupSink(std::shared_ptr<RequestGroup> group, size_t index)
      : group_(std::move(group)), index_(index) {}
  void OnPromptLogprobs(std::vector<TokenLogprob> logprobs) override;
  void OnToken(const TokenLogprob& token, const std::string& text) override;
  void OnDone(StatusOr<GenerateResult> result) override;
  bool Cancelled() const override { return group_->cancelled(); }

 private:
  std::shared_ptr<RequestGroup> group_;
  size_t index_;
};

}  // namespace rvec::serve
