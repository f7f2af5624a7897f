// The partitions this broker hosts, kept in line with the metadata image (Kafka's ReplicaManager):
// leaders track their followers and the high watermark and change the ISR through AlterPartition;
// followers fetch from their leaders (replication/fetcher.h). The high watermarks are checkpointed in
// each log dir's replication-offset-checkpoint, in Kafka's format, every
// replica.high.watermark.checkpoint.interval.ms and at stop.
//
// Threading: get() and the image hook from any thread; the ISR checks and checkpoints run on the
// manager's own thread; fetch responses are applied on the fetcher's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/image.h"
#include "net/outbound.h"
#include "replication/partition.h"
#include "storage/log.h"

namespace bulwark::replication {

class FollowerFetcher;

struct ReplicationSettings {
  std::int32_t node_id = -1;
  std::vector<std::filesystem::path> log_dirs;
  std::string inter_broker_listener;          // inter.broker.listener.name: where followers dial leaders
  std::int64_t lag_time_max_ms = 30000;       // replica.lag.time.max.ms
  std::int32_t fetch_wait_max_ms = 500;       // replica.fetch.wait.max.ms
  std::int32_t fetch_min_bytes = 1;           // replica.fetch.min.bytes
  std::int32_t fetch_max_bytes = 1048576;     // replica.fetch.max.bytes (per partition)
  std::int32_t fetch_response_max_bytes = 10485760;  // replica.fetch.response.max.bytes
  std::int32_t fetch_backoff_ms = 1000;              // replica.fetch.backoff.ms
  std::int64_t checkpoint_interval_ms = 5000;        // replica.high.watermark.checkpoint.interval.ms
  net::OutboundOptions outbound;                     // how this node dials the inter-broker listener
  std::string fetch_disabled_reason;  // why followers cannot dial (said at start-up); "" when they can
};

// Sends an AlterPartition body (at `version`) to the active controller; done gets the response body.
using AlterPartitionSender = std::function<void(Bytes body, std::int16_t version, std::function<void(Result<Bytes>)> done)>;
// Something a waiter may care about happened on a partition: its log end or its high watermark moved.
using PartitionNotifier = std::function<void(const storage::TopicPartition&)>;

class ReplicaManager {
 public:
  // broker_epoch: this broker's current registration epoch (-1 until registered).
  static Result<std::unique_ptr<ReplicaManager>> create(ReplicationSettings settings, storage::LogManager& logs,
                                                        AlterPartitionSender alter_partition,
                                                        std::function<std::int64_t()> broker_epoch,
                                                        PartitionNotifier notify);
  ~ReplicaManager();  // stop()
  ReplicaManager(const ReplicaManager&) = delete;
  ReplicaManager& operator=(const ReplicaManager&) = delete;

  std::shared_ptr<Partition> get(const storage::TopicPartition& tp) const;

  // After the broker's logs were reconciled with a new image: partitions appear, disappear and change
  // role; followers fetch from their new leaders.
  void apply_image(const cluster::MetadataImage* before, const cluster::MetadataImage& after);

  void start();
  // Stops fetching and the ISR checks, and writes the high watermark checkpoints.
  void stop();

  // What the follower side reports (tests, tools): partitions by leader id.
  std::map<std::int32_t, std::vector<storage::TopicPartition>> fetch_assignment() const;

 private:
  ReplicaManager(ReplicationSettings settings, storage::LogManager& logs, AlterPartitionSender alter_partition,
                 std::function<std::int64_t()> broker_epoch, PartitionNotifier notify);
  void run();
  void send_isr_changes(std::int64_t now_ms);
  void on_alter_partition_response(std::vector<std::pair<std::shared_ptr<Partition>, IsrChange>> sent,
                                   Result<Bytes> response);
  void write_checkpoints();

  const ReplicationSettings settings_;
  storage::LogManager& logs_;
  AlterPartitionSender alter_partition_;
  std::function<std::int64_t()> broker_epoch_;
  PartitionNotifier notify_;
  std::map<storage::TopicPartition, std::int64_t> checkpointed_;  // read at start
  std::unique_ptr<FollowerFetcher> fetcher_;
  std::map<std::filesystem::path, std::string> last_checkpoint_;  // what each dir's file holds (checkpoint thread)

  mutable std::mutex mu_;
  std::map<storage::TopicPartition, std::shared_ptr<Partition>> partitions_;
  std::map<storage::TopicPartition, std::string> last_asked_;  // the ISR change last logged, per partition
  std::int64_t last_failure_log_ms_ = 0;
  bool said_fetch_disabled_ = false;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bulwark::replication
