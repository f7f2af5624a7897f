#include "broker/request_pool.h"

#include <pthread.h>

#include <algorithm>
#include <string>

namespace bulwark::broker {

RequestPool::RequestPool(int threads) {
  const int n = std::max(threads, 1);
  workers_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  for (int i = 0; i < n; ++i)
    workers_[static_cast<std::size_t>(i)]->thread = std::thread([w = workers_[static_cast<std::size_t>(i)].get(), name = "bw-io-" + std::to_string(i)] {
      pthread_setname_np(pthread_self(), name.c_str());  // what top -H and /proc/<pid>/task/*/comm show
      run(*w);
    });
}

RequestPool::~RequestPool() { stop(); }

void RequestPool::submit(std::uint64_t connection_id, std::function<void()> work) {
  auto& worker = *workers_[connection_id % workers_.size()];
  {
    std::lock_guard lock(worker.mu);
    if (worker.stopping) return;
    worker.queue.push_back(std::move(work));
  }
  worker.cv.notify_one();
}

void RequestPool::stop() {
  for (auto& worker : workers_) {
    std::lock_guard lock(worker->mu);
    worker->stopping = true;
    worker->queue.clear();
  }
  for (auto& worker : workers_) {
    worker->cv.notify_all();
    if (worker->thread.joinable()) worker->thread.join();
  }
}

void RequestPool::run(Worker& worker) {
  std::unique_lock lock(worker.mu);
  for (;;) {
    worker.cv.wait(lock, [&] { return worker.stopping || !worker.queue.empty(); });
    if (worker.stopping) return;
    auto work = std::move(worker.queue.front());
    worker.queue.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // what it captured is released outside the lock
    lock.lock();
  }
}

}  // namespace bulwark::broker
