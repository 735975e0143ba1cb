// The hand-over queue between rvec serve's request threads and Engine::Serve, and per-token
// log-probabilities with their top alternatives.
#include <algorithm>
#include <cmath>

#include "model/engine.h"
#include "model/logprobs.h"

namespace rvec {

Status StreamQueue::Submit(StreamRequest request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return FailedPrecondition("the engine is shutting down and takes no new requests");
    queue_.push_back(std::move(request));
  }
  cv_.notify_all();
  return OkStatus();
}

void StreamQueue::Close(bool drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A cancelling close overrides an earlier draining one (a second SIGTERM).
    drain_ = closed_ ? drain_ && drain : drain;
    closed_ = true;
  }
  cv_.notify_all();
}

size_t StreamQueue::Waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

bool StreamQueue::Take(std::vector<StreamRequest>* out, bool block) {
  std::unique_lock<std::mutex> lock(mu_);
  if (block) cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
  while (!queue_.empty()) {
    out->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return !(closed_ && out->empty());
}

bool StreamQueue::Closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

bool StreamQueue::Draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ && drain_;
}

TokenLogprob ComputeLogprob(const float* logits, size_t vocab, int32_t id, int top_n) {
  double mx = logits[0];
  for (size_t v = 1; v < vocab; ++v) mx = std::max(mx, double(logits[v]));
  double sum = 0;
  for (size_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob t;
  t.id = id;
  t.logprob = double(logits[id]) - lse;
  const size_t n = std::min<size_t>(std::max(top_n, 0), vocab);
  if (n == 0) return t;
  std::vector<int32_t> order(vocab);
  for (size_t v = 0; v < vocab; ++v) order[v] = static_cast<int32_t>(v);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  std::partial_sort(order.begin(), order.begin() + n, order.end(), better);
  t.top.reserve(n);
  for (size_t k = 0; k < n; ++k) t.top.emplace_back(order[k], double(logits[order[k]]) - lse);
  return t;
}

}  // namespace rvec
