// ThreadPool implementation: one mutex, tasks claimed one at a time (tasks are coarse chunks).
#include "base/threading.h"

#include <cstdlib>
#include <string>

namespace rvec {
namespace {

// About 50-100 microseconds of polling before a thread blocks.
constexpr int kSpinIterations = 4000;

inline void SpinPause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(size_t num_threads) {
  if (num_threads == 0) num_threads = DefaultThreadCount();
  for (size_t w = 1; w < num_threads; ++w) {
    workers_.emplace_back([this, w] { WorkerLoop(w); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunTasks(size_t worker) {
  for (;;) {
    size_t task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_task_ >= num_tasks_) return;
      task = next_task_++;
    }
    (*fn_)(task, worker);
  }
}

void ThreadPool::WorkerLoop(size_t worker) {
  size_t seen_generation = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations; ++i) {
      if (spin_generation_.load(std::memory_order_acquire) != seen_generation) break;
      SpinPause();
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen_generation; });
      if (stop_) return;
      seen_generation = generation_;
      ++active_;
      spin_active_.fetch_add(1, std::memory_order_relaxed);
    }
    RunTasks(worker);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_;
      spin_active_.fetch_sub(1, std::memory_order_release);
    }
    done_.notify_all();
  }
}

void ThreadPool::ParallelFor(size_t num_tasks,
                             const std::function<void(size_t task, size_t worker)>& fn) {
  if (num_tasks == 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (size_t t = 0; t < num_tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    num_tasks_ = num_tasks;
    next_task_ = 0;
    ++generation_;
    spin_generation_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  RunTasks(0);
  for (int i = 0; i < kSpinIterations; ++i) {
    if (spin_active_.load(std::memory_order_acquire) == 0) break;
    SpinPause();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return active_ == 0 && next_task_ >= num_tasks_; });
  fn_ = nullptr;
}

size_t DefaultThreadCount() {
  if (const char* env = std::getenv("RVEC_THREADS")) {
    const long n = std::strtol(env, nullptr, 10);
    if (n > 0) return static_cast<size_t>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

}  // namespace rvec
