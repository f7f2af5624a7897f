// The transaction coordinator spread over the partitions of __transaction_state, as Kafka's
// TransactionStateManager: transactional id t belongs to partition abs(javaHashCode(t)) % partitions
// (the group coordinator's placement), and its coordinator is that partition's leader. A partition is
// loaded (its log replayed through txn::replay_log) when this broker becomes its leader and dropped
// when it stops being it; meanwhile its ids answer COORDINATOR_LOAD_IN_PROGRESS, and ids of
// partitions led elsewhere NOT_COORDINATOR.
//
// Every change is the state machine's (txn/metadata.h): prepared, appended to the partition as its
// leader, and made current once the high watermark covers it; only then is the client answered.
// After PrepareCommit/PrepareAbort the coordinator sends WriteTxnMarkers (v1) to the leader of every
// partition in the transaction over the inter-broker listener, retrying retriable errors and leader
// moves as Kafka's TransactionMarkerChannelManager, and writes CompleteCommit/CompleteAbort once every
// partition acknowledged. A periodic task aborts transactions past their timeout (bumping the epoch,
// which fences their producer) and removes ids idle for transactional.id.expiration.ms.
//
// Threading: the request entry points from any thread; their callbacks run on the manager's thread
// (or at once on the caller's, when no write is needed). Loads, writes' completion, marker retries
// and the periodic tasks run on the manager's own thread; marker responses on the outbound client's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/outbound.h"
#include "replication/partition.h"
#include "txn/metadata.h"

namespace bulwark::broker {

struct BrokerState;

inline constexpr const char* kTransactionStateTopic = "__transaction_state";

struct TxnSettings {
  std::int32_t num_partitions = 50;           // transaction.state.log.num.partitions
  std::int16_t replication_factor = 3;        // transaction.state.log.replication.factor
  std::int32_t min_isr = 2;                   // transaction.state.log.min.isr
  std::int32_t segment_bytes = 104857600;     // transaction.state.log.segment.bytes
  std::int32_t max_timeout_ms = 900000;       // transaction.max.timeout.ms
  std::int64_t id_expiration_ms = 604800000;  // transactional.id.expiration.ms
  std::int64_t abort_interval_ms = 10000;     // transaction.abort.timed.out.transaction.cleanup.interval.ms
  std::int64_t remove_interval_ms = 3600000;  // transaction.remove.expired.transaction.cleanup.interval.ms
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds marker_retry_backoff{100};
};

class TxnCoordinators {
 public:
  // `markers` dials the other brokers' inter-broker listener; null = markers cannot be sent (the
  // reason is logged, transactions then stay in PrepareCommit/PrepareAbort).
  TxnCoordinators(BrokerState& state, TxnSettings settings, std::unique_ptr<net::OutboundClient> markers);
  ~TxnCoordinators();  // stop()
  TxnCoordinators(const TxnCoordinators&) = delete;
  TxnCoordinators& operator=(const TxnCoordinators&) = delete;

  void start();
  void stop();
  void on_image();  // leadership may have moved: reconcile soon

  const TxnSettings& settings() const { return settings_; }
  std::optional<std::int32_t> partition_for(const std::string& transactional_id) const;
  // Asks the controller to create the topic (once at a time), as FindCoordinator does in Kafka.
  void create_topic();

  using InitDone = std::function<void(txn::TxnError, std::int64_t producer_id, std::int16_t producer_epoch)>;
  void init_producer_id(const std::string& transactional_id, std::int32_t timeout_ms,
                        std::optional<txn::ProducerIdAndEpoch> expected, InitDone done);

  using Done = std::function<void(txn::TxnError)>;
  void add_partitions(const std::string& transactional_id, std::int64_t producer_id, std::int16_t producer_epoch,
                      std::set<txn::TopicPartition> partitions, Done done);
  txn::VerifyOutcome verify(const std::string& transactional_id, std::int64_t producer_id,
                            std::int16_t producer_epoch, const std::set<txn::TopicPartition>& partitions);
  void end_txn(const std::string& transactional_id, std::int64_t producer_id, std::int16_t producer_epoch,
               bool commit, Done done);

  struct Described {
    txn::TxnError error = txn::TxnError::none;
    txn::TxnMetadata metadata;
  };
  Described describe(const std::string& transactional_id);
  // Every transaction of the partitions loaded here (ListTransactions); COORDINATOR_LOAD_IN_PROGRESS
  // while one this broker leads is loading.
  txn::TxnError list(std::vector<txn::TxnMetadata>& out);

  // Whether this broker coordinates `transactional_id` (its partition is loaded here).
  bool coordinates(const std::string& transactional_id);
  // The client that dials other brokers (markers, KIP-890 verification); null when it could not be made.
  net::OutboundClient* outbound() { return markers_.get(); }

 private:
  struct Shard {
    std::int32_t index = 0;
    std::shared_ptr<replication::Partition> partition;
    std::int32_t leader_epoch = -1;  // the coordinator epoch the markers carry
    std::mutex mu;
    std::atomic<bool> active{true};  // false once resigned: late completions answer NOT_COORDINATOR
    std::map<std::string, txn::Transaction> txns;
  };
  struct PendingWrite {
    std::shared_ptr<Shard> shard;
    std::int64_t end_offset = 0;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };
  struct MarkerJob {
    std::shared_ptr<Shard> shard;
    std::string transactional_id;
    std::int64_t producer_id = 0;
    std::int16_t producer_epoch = 0;
    bool commit = false;
    std::set<txn::TopicPartition> remaining;
    bool in_flight = false;
    std::chrono::steady_clock::time_point next_attempt;
    std::set<std::int16_t> logged_errors;  // unexpected errors are logged once per transaction
  };

  std::shared_ptr<Shard> shard_for(const std::string& transactional_id, txn::TxnError& error) const;
  // The shard coordinating an id, locked, and the id's transaction (null with the error when the id is
  // empty, not coordinated here or unknown).
  struct Found {
    std::shared_ptr<Shard> shard;
    std::unique_lock<std::mutex> lock;
    txn::Transaction* txn = nullptr;
    txn::TxnError error = txn::TxnError::none;
  };
  Found find_transaction(const std::string& transactional_id);
  // Appends `target` for `id` to the shard's partition; done(true) once replicated, on the manager's thread.
  void write(const std::shared_ptr<Shard>& shard, const txn::TxnMetadata& target, std::function<void(bool)> done);
  // Completes (or abandons) the pending transition of `id` after its write.
  bool finish_write(Shard& shard, const std::string& id, bool written);
  txn::TxnError write_failure(const Shard& shard) const;
  void write_end(const std::shared_ptr<Shard>& shard, const std::string& id, Done done);
  void queue_markers(const std::shared_ptr<Shard>& shard, const txn::TxnMetadata& prepared);
  void send_markers();
  void on_markers_acked(const std::shared_ptr<Shard>& shard, const std::string& id);
  void check_writes();
  void abort_timed_out();
  void remove_expired();
  std::vector<std::shared_ptr<Shard>> all_shards();  // a snapshot, taken under mu_
  void run();
  bool reconcile();
  void wake();

  BrokerState& state_;
  TxnSettings settings_;
  std::unique_ptr<net::OutboundClient> markers_;
  mutable std::mutex mu_;
  std::map<std::int32_t, std::shared_ptr<Shard>> shards_;  // by partition index
  std::atomic<bool> creating_{false};

  std::mutex work_mu_;  // pending_ and jobs_
  std::vector<PendingWrite> pending_;
  std::vector<std::shared_ptr<MarkerJob>> jobs_;

  std::thread thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = true;
  bool image_changed_ = true;
  bool retry_load_ = false;
  bool stopping_ = false;
  std::uint64_t watch_ = 0;
};

// Starts the coordinator on a broker: settings from the transaction.* keys, `markers` the options to
// dial the other brokers' inter-broker listener (an error leaves markers unsent, said in the log).
// Sets state.verify_transactional_partition.
Status open_txn_coordinator(BrokerState& state, Result<net::OutboundOptions> markers);

}  // namespace bulwark::broker
