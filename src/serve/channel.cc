// RequestGroup and GroupSink: engine-thread events handed to the waiting HTTP handler.
#include "serve/channel.h"

#include <utility>

namespace rvec::serve {

bool RequestGroup::WaitForChange(uint64_t* version, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool changed = cv_.wait_for(lock, timeout, [&] { return version_ != *version; });
  *version = version_;
  return changed;
}

bool RequestGroup::WaitAllDone(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return remaining_ == 0; });
}

std::vector<ChoiceState> RequestGroup::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return choices_;
}

bool RequestGroup::AllDone() const {
  std::lock_guard<std::mutex> lock(mu_);
  return remaining_ == 0;
}

ChoiceUpdate RequestGroup::Poll(size_t i, size_t token_from, size_t text_from) const {
  std::lock_guard<std::mutex> lock(mu_);
  const ChoiceState& c = choices_[i];
  ChoiceUpdate u;
  if (token_from < c.tokens.size()) u.tokens.assign(c.tokens.begin() + token_from, c.tokens.end());
  if (text_from < c.text.size()) u.text = c.text.substr(text_from);
  u.done = c.done;
  if (c.done) u.result = c.result;
  return u;
}

void RequestGroup::PromptLogprobs(size_t i, std::vector<TokenLogprob> logprobs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    choices_[i].prompt_logprobs = std::move(logprobs);
    ++version_;
  }
  cv_.notify_all();
}

void RequestGroup::Token(size_t i, const TokenLogprob& token, const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    choices_[i].tokens.push_back(token);
    choices_[i].text += text;
    ++version_;
  }
  cv_.notify_all();
}

void RequestGroup::Done(size_t i, StatusOr<GenerateResult> result) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // OnDone comes exactly once per request; a second call would be an engine bug, kept harmless.
    if (!choices_[i].done) {
      choices_[i].done = true;
      choices_[i].result = std::move(result);
      --remaining_;
    }
    ++version_;
  }
  cv_.notify_all();
}

void GroupSink::OnPromptLogprobs(std::vector<TokenLogprob> logprobs) {
  group_->PromptLogprobs(index_, std::move(logprobs));
}

void GroupSink::OnToken(const TokenLogprob& token, const std::string& text) {
  group_->Token(index_, token, text);
}

void GroupSink::OnDone(StatusOr<GenerateResult> result) { group_->Done(index_, std::move(result)); }

}  // namespace rvec::serve
