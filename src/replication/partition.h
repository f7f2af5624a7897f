// One partition replica on this broker, as Kafka's Partition: its log, its role (leader, follower or
// neither) at a leader epoch, and on the leader the ISR, each follower's log end offset and the high
// watermark. Every handler reaches a partition's data through this object.
//
// Rules it keeps (Kafka's):
// - The high watermark is the smallest log end offset over the leader and every follower that is in
//   the maximal ISR (the ISR plus members an AlterPartition in flight adds, KIP-497) or caught up
//   within replica.lag.time.max.ms. It never goes backwards while this node leads.
// - A follower is caught up when it fetched from the leader's log end (or from where the log end was
//   at its previous fetch); one that has not been for replica.lag.time.max.ms leaves the ISR.
// - A follower outside the ISR rejoins once it has reached the high watermark and the start of the
//   current leader epoch.
// - One ISR change is in flight at a time; the controller's answer to it, or an image with a newer
//   partition epoch, settles it.
//
// Thread safety: every method may be called from any thread. Appends hold leadership_mu_ shared (Kafka's
// leaderIsrUpdateLock) and a change of role or leader epoch holds it exclusively, so an append (and the
// fdatasync it may wait for) runs outside mu_: readers of the high watermark, role and ISR are never
// held up by the disk, and concurrent appends reach the log's group commit together.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cluster/image.h"
#include "storage/log.h"

namespace bulwark::replication {

enum class Role { none, leader, follower };

struct FollowerState {
  std::int64_t log_end_offset = -1;  // -1 until its first fetch
  std::int64_t last_caught_up_ms = 0;
  std::int64_t last_fetch_ms = 0;
  std::int64_t leader_end_at_last_fetch = -1;
};

// An ISR change the leader wants: what AlterPartition carries.
struct IsrChange {
  std::string topic;
  std::int32_t partition = 0;
  std::int32_t leader_epoch = 0;
  std::int32_t partition_epoch = 0;
  std::vector<std::int32_t> new_isr;
};

class Partition {
 public:
  // lag_ms: replica.lag.time.max.ms.
  Partition(storage::TopicPartition tp, std::int32_t local_id, std::shared_ptr<storage::PartitionLog> log,
            std::int64_t checkpointed_high_watermark, std::int64_t lag_ms);

  const storage::TopicPartition& topic_partition() const { return tp_; }
  const std::shared_ptr<storage::PartitionLog>& log() const { return log_; }

  // Applies the image's state of this partition. Returns true when the role or leader epoch changed.
  bool apply(const cluster::PartitionState& state, std::int64_t now_ms);

  Role role() const;
  std::int32_t leader_id() const;
  std::int32_t leader_epoch() const;
  std::vector<std::int32_t> isr() const;          // as committed in the metadata log
  std::vector<std::int32_t> maximal_isr() const;  // plus members an in-flight change adds
  std::int64_t high_watermark() const;

  // Appends a client's records while this node leads (offsets assigned, the leader epoch stamped), and
  // moves the high watermark when the ISR is the leader alone. nullopt when it does not lead any more.
  struct LeaderAppend {
    storage::LogResult<storage::AppendResult> result;
    bool high_watermark_moved = false;
  };
  std::optional<LeaderAppend> append_as_leader(ByteView records, storage::AppendOptions options);
  // A follower applies what its leader sent at `leader_epoch`: records at the leader's offsets, or a
  // truncation. nullopt when the answer is stale (this node no longer follows at that epoch).
  std::optional<storage::LogStatus> append_as_follower(ByteView records, std::int32_t leader_epoch, std::int64_t now_ms);
  std::optional<storage::LogStatus> truncate_as_follower(std::int64_t offset, std::int32_t leader_epoch);
  // The leader's log starts past this follower's log end: start over, empty, at the leader's start.
  std::optional<storage::LogStatus> restart_as_follower(std::int64_t offset, std::int32_t leader_epoch);

  // Where `epoch` ends in this replica's log (OffsetForLeaderEpoch, DivergingEpoch). On a leader whose
  // current epoch has no batch yet, that epoch starts at the log end it had when it took over (Kafka
  // writes that entry into the epoch cache at election).
  storage::EpochEndOffset end_offset_for_epoch(std::int32_t epoch) const;

  // The leader's check of a follower's fetch (KIP-320/KIP-595 DivergingEpoch): where the follower's log
  // diverges from ours when its last fetched epoch ends earlier here than where it fetches from, or is
  // not ours; nullopt when the fetch continues our log (or carries no epoch).
  std::optional<storage::EpochEndOffset> diverging_epoch(std::int64_t fetch_offset, std::int32_t last_fetched_epoch) const;

  // The leader records a follower's fetch from fetch_offset. Returns true when the high watermark moved.
  bool record_follower_fetch(std::int32_t replica_id, std::int64_t fetch_offset, std::int64_t now_ms);
  // A follower takes the leader's high watermark, bounded by its own log end. True when it moved.
  bool update_follower_high_watermark(std::int64_t leader_high_watermark);
  // A follower moves its log start up to the leader's (DeleteRecords, retention on the leader), never past
  // its own high watermark (Kafka's maybeIncrementLogStartOffset). nullopt when it does not follow at
  // that epoch; otherwise the log's answer (done when nothing was to move).
  std::optional<storage::LogStatus> follow_log_start(std::int64_t leader_log_start, std::int32_t leader_epoch);

  // The ISR change due now, if none is in flight: followers lagging longer than replica.lag.time.max.ms
  // leave, caught-up followers outside the ISR join. Marks it in flight.
  std::optional<IsrChange> next_isr_change(std::int64_t now_ms);
  // The controller's answer to `sent`: the ISR and partition epoch now committed (nullopt when it
  // refused; the change is retried later). An answer to anything but the change in flight is stale and
  // ignored (Kafka compares the proposed state), so a late refusal never drops a newer change.
  void complete_isr_change(const IsrChange& sent,
                           std::optional<std::pair<std::vector<std::int32_t>, std::int32_t>> committed);

  std::map<std::int32_t, FollowerState> followers() const;

 private:
  bool advance_high_watermark_locked();
  bool holds_role(Role role, std::optional<std::int32_t> leader_epoch) const;
  std::shared_lock<std::shared_mutex> lock_for_append() const;
  std::vector<std::int32_t> maximal_isr_locked() const;

  const storage::TopicPartition tp_;
  const std::int32_t local_id_;
  const std::shared_ptr<storage::PartitionLog> log_;

  // The gate keeps a waiting leadership change from being starved by a stream of appends: it is held
  // while taking leadership_mu_, exclusively by a change and briefly by each append.
  mutable std::mutex leadership_gate_;
  mutable std::shared_mutex leadership_mu_;  // before mu_ when both are taken
  mutable std::mutex mu_;
  Role role_ = Role::none;
  std::int32_t leader_id_ = -1;
  std::int32_t leader_epoch_ = -1;
  std::int32_t partition_epoch_ = -1;
  std::int64_t leader_epoch_start_offset_ = 0;  // the log end when this node became leader
  std::vector<std::int32_t> replicas_;
  std::vector<std::int32_t> isr_;
  std::optional<IsrChange> pending_isr_;  // the AlterPartition in flight
  std::int64_t now_ms_ = 0;               // the latest time a caller passed in
  std::map<std::int32_t, FollowerState> followers_;
  std::int64_t high_watermark_ = 0;
  const std::int64_t lag_ms_;
};

}  // namespace bulwark::replication
