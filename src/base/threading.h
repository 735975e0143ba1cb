// A small fixed thread pool: ParallelFor(num_tasks, fn(task, worker)) with static task ids, so
// that results never depend on the number of threads when each task writes its own output.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rvec {

class ThreadPool {
 public:
  // num_threads == 0 means one per hardware thread. The calling thread is worker 0.
  explicit ThreadPool(size_t num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t NumWorkers() const { return workers_.size() + 1; }

  // Runs fn(task, worker) for task in [0, num_tasks); tasks are claimed dynamically, so a task
  // must only write state indexed by `task` (or per-`worker` scratch) for determinism.
  void ParallelFor(size_t num_tasks, const std::function<void(size_t task, size_t worker)>& fn);

 private:
  void WorkerLoop(size_t worker);
  void RunTasks(size_t worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t num_tasks_ = 0;
  size_t next_task_ = 0;
  size_t active_ = 0;
  size_t generation_ = 0;
  bool stop_ = false;
  // Lock-free mirrors of generation_ / active_ for the short spin before sleeping: waking a
  // sleeping thread costs tens of microseconds (more in a VM), and a decode step runs hundreds of
  // small parallel loops.
  std::atomic<size_t> spin_generation_{0};
  std::atomic<size_t> spin_active_{0};
};

// Number of threads to use when the user did not say: RVEC_THREADS, else hardware threads.
size_t DefaultThreadCount();

}  // namespace rvec
