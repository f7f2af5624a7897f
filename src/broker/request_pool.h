// Kafka's request handler pool (num.io.threads): the requests that write to storage (Produce appends,
// and the fdatasync a flush policy asks for) run here, so a slow disk never stalls a network thread and
// the connections it serves.
//
// Each worker has its own FIFO queue and a connection's requests always go to the same worker, so one
// connection's appends happen in the order it sent them (idempotent sequences depend on it), while
// different connections proceed side by side.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bulwark::broker {

class RequestPool {
 public:
  explicit RequestPool(int threads);
  ~RequestPool();  // stops
  RequestPool(const RequestPool&) = delete;
  RequestPool& operator=(const RequestPool&) = delete;

  // Runs work on the worker that owns connection_id. Dropped once stop() has begun.
  void submit(std::uint64_t connection_id, std::function<void()> work);
  // Finishes the work running now, drops what is queued, joins. Idempotent.
  void stop();
  std::size_t threads() const { return workers_.size(); }

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
    std::thread thread;
  };
  static void run(Worker& worker);

  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace bulwark::broker
