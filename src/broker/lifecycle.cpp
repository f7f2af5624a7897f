#include "broker/lifecycle.h"

#include <future>

#include <openssl/rand.h>

#include "base/log.h"
#include "cluster/controller.h"
#include "wire/generated/broker_heartbeat.h"
#include "wire/protocol.h"

namespace bulwark::broker {
namespace {

namespace msg = wire::msg;
constexpr std::int16_t kRegistrationVersion = 3;
constexpr std::int16_t kHeartbeatVersion = 1;
constexpr std::int16_t kStaleBrokerEpoch = 77;
constexpr std::int16_t kBrokerIdNotRegistered = 102;

}  // namespace

BrokerLifecycle::BrokerLifecycle(Options options, ControllerChannel& channel)
    : options_(std::move(options)), channel_(channel) {
  do {
    RAND_bytes(incarnation_.data(), static_cast<int>(incarnation_.size()));
  } while (incarnation_ == wire::Uuid{});
}

BrokerLifecycle::~BrokerLifecycle() { stop(); }

void BrokerLifecycle::start() {
  thread_ = std::thread([this] { run(); });
}

void BrokerLifecycle::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool BrokerLifecycle::wait(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, delay, [this] { return stopping_; });
  return !stopping_;
}

// One request to the active controller, waiting up to a heartbeat interval (at least a second).
std::optional<BrokerLifecycle::Answer> BrokerLifecycle::call(std::int16_t api_key, std::int16_t version, Bytes body) {
  auto timeout = std::max(options_.heartbeat_interval, std::chrono::milliseconds(1000));
  auto promise = std::make_shared<std::promise<Result<Bytes>>>();
  auto future = promise->get_future();
  channel_.send(api_key, version, std::move(body), ControllerChannel::Clock::now() + timeout,
                [promise](Result<Bytes> response) { promise->set_value(std::move(response)); });
  auto response = future.get();
  if (!response.ok()) return std::nullopt;
  ByteReader r(*response);
  Answer answer;
  if (api_key == msg::BrokerRegistrationRequest::api_key) {
    msg::BrokerRegistrationResponse decoded;
    if (!decoded.decode(r, version)) return std::nullopt;
    answer.error = decoded.error_code;
    if (decoded.error_code == 0) epoch_ = decoded.broker_epoch;
  } else {
    msg::BrokerHeartbeatResponse decoded;
    if (!decoded.decode(r, version)) return std::nullopt;
    answer = {decoded.error_code, decoded.is_fenced, decoded.should_shut_down};
  }
  return answer;
}

bool BrokerLifecycle::register_once() {
  msg::BrokerRegistrationRequest request;
  request.broker_id = options_.node_id;
  request.cluster_id = options_.cluster_id;
  request.incarnation_id = incarnation_;
  request.listeners = options_.listeners;
  request.features.push_back({std::string(cluster::kMetadataVersionFeature), 1, cluster::kMetadataVersion, {}});
  request.rack = options_.rack;
  request.previous_broker_epoch = epoch_.load();
  auto answer = call(request.api_key, kRegistrationVersion, wire::encode_message(request, kRegistrationVersion));
  if (!answer) return false;
  if (answer->error != 0) {
    log::warn("broker {}: the controller refused its registration (error code {}); retrying", options_.node_id,
              answer->error);
    return false;
  }
  log::info("broker {} registered with the controller, broker epoch {}", options_.node_id, epoch_.load());
  return true;
}

std::optional<BrokerLifecycle::Answer> BrokerLifecycle::heartbeat(bool want_shut_down) {
  msg::BrokerHeartbeatRequest request;
  request.broker_id = options_.node_id;
  request.broker_epoch = epoch_.load();
  request.current_metadata_offset = options_.applied_offset();
  request.want_fence = false;
  request.want_shut_down = want_shut_down;
  auto answer = call(request.api_key, kHeartbeatVersion, wire::encode_message(request, kHeartbeatVersion));
  if (answer && answer->error == 0) {
    if (fenced_.load() && !answer->fenced) log::info("broker {} is unfenced: it serves as a broker of the cluster", options_.node_id);
    fenced_ = answer->fenced;
  }
  return answer;
}

void BrokerLifecycle::run() {
  bool registered = false;
  while (true) {
    if (!registered) {
      registered = register_once();
      // Heartbeat soon after registering: the unfence comes with the first caught-up heartbeat.
      if (!wait(registered ? std::chrono::milliseconds(50) : std::chrono::milliseconds(500))) return;
      continue;
    }
    auto answer = heartbeat(false);
    if (answer && (answer->error == kStaleBrokerEpoch || answer->error == kBrokerIdNotRegistered)) {
      log::warn("broker {}: heartbeat refused (error code {}); registering again", options_.node_id, answer->error);
      registered = false;
      continue;
    }
    // While fenced, heartbeat quickly so the unfence follows the catch-up closely.
    auto delay = fenced_.load() ? std::chrono::milliseconds(100) : options_.heartbeat_interval;
    if (!wait(delay)) return;
  }
}

void BrokerLifecycle::shutdown(std::chrono::milliseconds grace) {
  stop();
  if (epoch_.load() < 0 || grace.count() <= 0) return;
  const auto until = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < until) {
    auto answer = heartbeat(true);
    if (answer && answer->error == 0 && answer->should_shut_down) {
      log::info("broker {}: controlled shutdown complete", options_.node_id);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  log::warn("broker {}: controlled shutdown did not finish within {} ms; stopping anyway", options_.node_id,
            grace.count());
}

}  // namespace bulwark::broker
