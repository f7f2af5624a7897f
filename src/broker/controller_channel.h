// How this node's broker reaches the active controller: directly in-process when this node is the
// active controller (the combined role), otherwise over the controller listener of the quorum's
// leader, as Kafka's brokers do. Requests only a controller may serve are forwarded in an Envelope
// carrying the client's principal and address; BrokerRegistration and BrokerHeartbeat go as they are.
// NOT_CONTROLLER, an unknown leader and transport failures are retried (after the retry backoff, on
// whichever node then leads) until the caller's deadline; then the caller gets ErrorKind::unavailable.
//
// Threading: send() and forward() from any thread; callbacks run on the channel's own thread or on
// the thread that completed the local controller's request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/controller_service.h"
#include "cluster/quorum_driver.h"
#include "config/config.h"
#include "net/outbound.h"

namespace bulwark::broker {

// Kafka's DefaultPrincipalData, version-prefixed (as Kafka's Envelope carries the principal).
Bytes serialize_principal(const std::string& type, const std::string& name);

class ControllerChannel {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(Result<Bytes>)>;  // the response body

  struct Options {
    std::int32_t node_id = -1;
    std::vector<config::QuorumVoter> voters;  // controller listener addresses by node id
    net::OutboundOptions outbound;
    std::chrono::milliseconds retry_backoff{100};
  };

  // `local` is this node's controller service, or null when this node is not a controller.
  static Result<std::unique_ptr<ControllerChannel>> create(Options options, cluster::QuorumDriver& quorum,
                                                           cluster::ControllerService* local);
  ~ControllerChannel();
  ControllerChannel(const ControllerChannel&) = delete;
  ControllerChannel& operator=(const ControllerChannel&) = delete;

  // A controller API request as it is (BrokerRegistration, BrokerHeartbeat, AllocateProducerIds).
  void send(std::int16_t api_key, std::int16_t api_version, Bytes body, Clock::time_point deadline, Done done);
  // A client request only the controller serves, forwarded in an Envelope; done gets the inner response body.
  void forward(std::int16_t api_key, std::int16_t api_version, Bytes body, Bytes principal, Bytes client_address,
               Clock::time_point deadline, Done done);

  void stop();  // pending requests fail with ErrorKind::unavailable

 private:
  struct Attempt {
    std::int16_t api_key = 0;
    std::int16_t api_version = 0;
    Bytes body;
    Clock::time_point deadline;
    Done done;
    // Decodes a response: the body to hand back, or unavailable to retry.
    std::function<Result<Bytes>(Bytes)> unwrap;
    // What the local controller is given (the inner request when enveloped).
    std::int16_t local_key = 0;
    std::int16_t local_version = 0;
    Bytes local_body;
  };

  ControllerChannel(Options options, cluster::QuorumDriver& quorum, cluster::ControllerService* local,
                    std::unique_ptr<net::OutboundClient> client);
  void attempt(std::shared_ptr<Attempt> a);
  void retry_later(std::shared_ptr<Attempt> a, const std::string& why);
  void run();

  Options options_;
  cluster::QuorumDriver& quorum_;
  cluster::ControllerService* local_;
  std::unique_ptr<net::OutboundClient> client_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::multimap<Clock::time_point, std::shared_ptr<Attempt>> retries_;
  std::thread thread_;
};

}  // namespace bulwark::broker
