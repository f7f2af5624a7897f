// The active controller at run time: the controller logic (cluster/controller.h) on the node that
// leads the quorum. It becomes active once its epoch's LeaderChange entry is committed and applied (so
// its image holds everything earlier leaders committed), keeps a working image of everything it has
// proposed, proposes each decision's records through the quorum driver, and answers a request once its
// records are committed and applied to the published image. It tracks broker sessions and fences a
// broker whose heartbeats stop for broker.session.timeout.ms.
//
// Requests arrive as bytes (a body after its request header) from two places: the controller listener
// (BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds, and Envelope around
// CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders, CreateAcls, DeleteAcls, AlterUserScramCredentials)
// and, on a combined node, the local broker. When not active it answers NOT_CONTROLLER (in the
// Envelope's error code for enveloped requests), and the sender retries on the new leader.
//
// Threading: handle() from any thread; the driver hooks (on_committed, on_change) from the driver
// thread. One mutex; callbacks run outside it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/controller.h"
#include "cluster/metadata_loader.h"
#include "cluster/quorum_driver.h"

namespace bulwark::cluster {

inline constexpr std::int16_t kNotController = 41;

class ControllerService {
 public:
  using Done = std::function<void(Result<Bytes>)>;  // the response body at the request's version

  ControllerService(ControllerSettings settings, std::int32_t node_id, QuorumDriver& driver, MetadataLoader& loader);
  ~ControllerService();  // stop()
  ControllerService(const ControllerService&) = delete;
  ControllerService& operator=(const ControllerService&) = delete;

  // Records the first active controller of a new cluster writes after the bootstrap records (the
  // migration of a data dir written before the metadata log). Set before start().
  void set_first_records(std::function<std::vector<AnyRecord>(const MetadataImage&)> first_records) {
    first_records_ = std::move(first_records);
  }

  void start();  // the session timer thread
  void stop();   // fails pending requests with NOT_CONTROLLER

  // A controller request: BrokerRegistration (62), BrokerHeartbeat (63), AlterPartition (56),
  // AllocateProducerIds (67), Envelope (58), or one of the enveloped APIs directly (from the local
  // broker). Unknown keys and undecodable bodies get an error value (the router closes the connection).
  void handle(std::int16_t api_key, std::int16_t api_version, ByteView body, Done done);

  // Driver hooks: call on_committed after the loader applied the entries.
  void on_committed(const std::vector<raft::LogEntry>& entries);
  void on_change(const QuorumStatus& status);

  bool active() const;

 private:
  struct Pending {
    std::int64_t last_offset = 0;
    Done done;
    Bytes response;
  };
  using Encoder = std::function<Bytes()>;

  // Runs `decide` on the working image under the lock; proposes its records (if any) and answers with
  // `encode` once they are applied. `decide` returns the records and fills the response `encode` reads.
  void submit(std::function<std::vector<AnyRecord>(const MetadataImage&)> decide, Encoder encode, Done done,
              std::function<Bytes()> not_controller);
  Status propose_locked(std::vector<AnyRecord> records, Pending& pending);
  void handle_enveloped(std::int16_t api_key, std::int16_t api_version, ByteView body, Done done);
  void handle_registration(std::int16_t version, ByteView body, Done done);
  void handle_heartbeat(std::int16_t version, ByteView body, Done done);
  void handle_alter_partition(std::int16_t version, ByteView body, Done done);
  void activate_locked(std::int64_t leader_change_offset);
  void deactivate_locked(std::vector<Done>& failed);
  void complete_applied(std::int64_t applied_offset);
  void expire_sessions();
  void rebalance_leaders_if_due();
  void run_timer();
  std::int64_t now_ms() const;
  IdSource ids();

  ControllerSettings settings_;
  std::int32_t node_id_;
  std::function<std::vector<AnyRecord>(const MetadataImage&)> first_records_;
  QuorumDriver& driver_;
  MetadataLoader& loader_;

  mutable std::mutex mu_;
  bool active_ = false;
  std::int32_t leader_epoch_ = -1;   // the epoch this node leads as the active controller (or -1)
  std::int32_t latest_epoch_ = -1;   // the highest epoch the driver has reported
  ImagePtr working_;                 // committed image + our proposals in flight
  std::int64_t next_offset_ = 0;     // where our next proposal lands in the log
  std::map<std::int64_t, Pending> pending_;  // by last offset
  std::map<std::int32_t, std::int64_t> last_heartbeat_ms_;
  std::int64_t next_rebalance_ms_ = 0;  // 0: set one interval after activation
  std::mt19937_64 rng_{std::random_device{}()};

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace bulwark::cluster
