// Consumer groups spread over the partitions of __consumer_offsets, as in Kafka: group g belongs to
// partition abs(javaHashCode(g)) % partitions, and its coordinator is that partition's leader. Each
// partition this broker leads has a GroupCoordinator of its own, loaded from the replicated log when
// the leadership arrives and resigned (waiting joins answered NOT_COORDINATOR) when it leaves; so a
// group fails over with its partition, and with it every committed offset the ISR had.
//
// The topic is created on the first FindCoordinator, as Kafka does, with offsets.topic.num.partitions
// and offsets.topic.replication.factor (fewer copies when fewer brokers are registered, said in the
// log). A data dir from before replicated offsets holds __consumer_offsets-0 alone: the topic is then
// created with that one partition, so every group keeps finding its offsets there.
//
// Threading: lookups from any thread; loads, resignations and the coordinators' ticks on the
// manager's own thread, woken by image changes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "groups/coordinator.h"
#include "replication/partition.h"

namespace bulwark::broker {

struct BrokerState;

inline constexpr const char* kOffsetsTopic = "__consumer_offsets";

// Kafka's partitionFor: Utils.abs(groupId.hashCode()) % partitions, with Java's String.hashCode over
// UTF-16 code units.
std::int32_t offsets_partition_for(const std::string& group_id, std::int32_t partitions);

// The coordinator's store on a partition this broker leads: appends go through the partition as its
// leader (stamped with the leader epoch, fetched by the followers), load() reads its log.
class ReplicatedGroupStore : public groups::GroupStore {
 public:
  ReplicatedGroupStore(std::shared_ptr<replication::Partition> partition, BrokerState& state)
      : partition_(std::move(partition)), state_(state) {}
  Status append(const std::vector<groups::StoredRecord>& records) override;
  Result<std::vector<groups::StoredRecord>> load() override;
  // The log end after the latest append: what the high watermark must reach for it to be replicated.
  std::int64_t appended_end() const { return appended_end_.load(); }

 private:
  std::shared_ptr<replication::Partition> partition_;
  BrokerState& state_;
  std::atomic<std::int64_t> appended_end_{0};
};

class GroupCoordinators {
 public:
  GroupCoordinators(BrokerState& state, groups::GroupSettings settings);
  ~GroupCoordinators();  // stop()
  GroupCoordinators(const GroupCoordinators&) = delete;
  GroupCoordinators& operator=(const GroupCoordinators&) = delete;

  void start();
  void stop();  // resigns every coordinator
  void on_image();  // leadership may have moved: reconcile soon

  struct Lookup {
    std::shared_ptr<groups::GroupCoordinator> coordinator;  // null: `error` says why
    groups::GroupError error = groups::GroupError::none;
    std::shared_ptr<replication::Partition> partition;
    const ReplicatedGroupStore* store = nullptr;  // lives as long as `coordinator`
  };
  Lookup for_group(const std::string& group_id) const;
  // The coordinators of every partition led here (ListGroups).
  std::vector<std::shared_ptr<groups::GroupCoordinator>> all() const;
  // The partition of `group_id` when the topic exists.
  std::optional<std::int32_t> partition_for(const std::string& group_id) const;

  // A COMMIT or ABORT marker of `producer_id` was appended to __consumer_offsets-`offsets_partition`:
  // that partition's coordinator completes or drops the producer's pending offsets. A marker that
  // arrives while the partition is loading is applied once the load is done (applying one the load
  // replayed already is harmless: the producer has nothing pending by then).
  void on_transaction_marker(std::int32_t offsets_partition, std::int64_t producer_id, std::int16_t producer_epoch,
                             bool committed);

  // Asks the controller to create the topic (once at a time); FindCoordinator answers
  // COORDINATOR_NOT_AVAILABLE meanwhile and clients retry.
  void create_topic();

 private:
  struct Entry {
    std::shared_ptr<replication::Partition> partition;
    std::int32_t leader_epoch = -1;
    std::shared_ptr<groups::GroupCoordinator> coordinator;
    const ReplicatedGroupStore* store = nullptr;
  };
  void run();
  bool reconcile();
  std::map<std::int32_t, std::shared_ptr<replication::Partition>> led_partitions() const;

  BrokerState& state_;
  groups::GroupSettings settings_;
  mutable std::mutex mu_;
  std::map<std::int32_t, Entry> entries_;  // by partition index
  struct Marker {
    std::int64_t producer_id;
    std::int16_t producer_epoch;
    bool committed;
  };
  std::map<std::int32_t, std::vector<Marker>> markers_while_loading_;  // partitions being loaded
  std::atomic<bool> creating_{false};

  std::thread thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = true;  // the first round reconciles with whatever image is there already
  bool retry_load_ = false;  // the manager thread's own
  bool stopping_ = false;
};

}  // namespace bulwark::broker
