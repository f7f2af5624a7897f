// The broker's side of KIP-631's lifecycle: it registers with the active controller (BrokerRegistration:
// its listeners, rack, features and a fresh incarnation id) and heartbeats every
// broker.heartbeat.interval.ms with the metadata offset it has applied. The controller unfences it once
// it has caught up, and fences it when the heartbeats stop. A heartbeat refused for a stale epoch, or
// from a controller that has lost the registration, makes it register again. shutdown() is the
// controlled shutdown of SIGTERM: heartbeats asking to shut down until the controller has moved the
// broker's leaderships away (should_shut_down) or the grace period ends.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/controller_channel.h"
#include "wire/generated/broker_registration.h"

namespace bulwark::broker {

class BrokerLifecycle {
 public:
  struct Options {
    std::int32_t node_id = -1;
    std::string cluster_id;
    std::vector<wire::msg::BrokerRegistrationRequest::Listener> listeners;  // advertised
    std::optional<std::string> rack;
    std::chrono::milliseconds heartbeat_interval{2000};
    std::function<std::int64_t()> applied_offset;  // the metadata offset this node has applied
  };

  BrokerLifecycle(Options options, ControllerChannel& channel);
  ~BrokerLifecycle();  // stop()

  void start();
  // Controlled shutdown, then the thread stops.
  void shutdown(std::chrono::milliseconds grace);
  void stop();

  std::int64_t broker_epoch() const { return epoch_.load(); }  // -1 until registered
  bool fenced() const { return fenced_.load(); }

 private:
  struct Answer {
    std::int16_t error = 0;
    bool fenced = true;
    bool should_shut_down = false;
  };
  std::optional<Answer> call(std::int16_t api_key, std::int16_t version, Bytes body);
  bool register_once();
  std::optional<Answer> heartbeat(bool want_shut_down);
  void run();
  bool wait(std::chrono::milliseconds delay);  // false once stopping

  Options options_;
  ControllerChannel& channel_;
  wire::Uuid incarnation_{};
  std::atomic<std::int64_t> epoch_{-1};
  std::atomic<bool> fenced_{true};
  std::atomic<bool> shutting_down_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bulwark::broker
