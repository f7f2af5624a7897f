// The consumer group coordinator: Kafka's classic rebalance protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), KIP-848's consumer protocol (consumer_heartbeat; the groups' state machine is
// consumer/consumer_group.h, kept in memory) and committed offsets, independent of the wire format.
//
// Groups move Empty -> PreparingRebalance -> CompletingRebalance -> Stable as Kafka's do. Joins and
// syncs that must wait are answered later through the callback passed in; every wait ends, either
// when the group completes the step or when a deadline passes in tick() (rebalance timeout, session
// timeout, initial rebalance delay, pending-sync timeout).
//
// Time comes from the injected clock only, and deadlines are checked only in tick(), so tests drive
// the state machine with a fake clock. The broker calls tick() every few tens of milliseconds
// (start_background_ticks).
//
// Durability: committed offsets and group metadata go to a GroupStore as records in the format of
// Kafka's __consumer_offsets (see records.h); open() replays them, so offsets survive restarts.
//
// Thread safety: every public method may be called from any thread (one mutex). Callbacks run on the
// calling thread (or the ticking thread) after the mutex is released, never under it.
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

#include "base/bytes.h"
#include "base/result.h"
#include "groups/consumer/consumer_group.h"
#include "groups/errors.h"
#include "groups/records.h"

namespace bulwark::groups {


enum class GroupState { empty, preparing_rebalance, completing_rebalance, stable, dead };
const char* to_string(GroupState state);  // Kafka's names: "Empty", "PreparingRebalance", ...

struct GroupSettings {
  std::int32_t min_session_timeout_ms = 6000;        // group.min.session.timeout.ms
  std::int32_t max_session_timeout_ms = 1800000;     // group.max.session.timeout.ms
  std::int32_t initial_rebalance_delay_ms = 3000;    // group.initial.rebalance.delay.ms
  std::int32_t max_group_size = INT32_MAX;           // group.max.size
  std::int64_t offsets_retention_ms = 7ll * 24 * 3600 * 1000;  // offsets.retention.minutes
  std::int64_t offsets_retention_check_interval_ms = 600000;   // offsets.retention.check.interval.ms
  std::size_t max_member_metadata_bytes = 1 << 20;   // per member, all protocols together
  std::size_t max_offset_metadata_bytes = 4096;      // offset.metadata.max.bytes
  std::int64_t new_member_join_timeout_ms = 300000;  // Kafka's NewMemberJoinTimeoutMs
  consumer::ConsumerGroupSettings consumer;          // KIP-848's consumer protocol (group.consumer.*)
};

// Where records go and come from. The broker's is a partition log (log_store.h); tests may use memory.
class GroupStore {
 public:
  virtual ~GroupStore() = default;
  virtual Status append(const std::vector<StoredRecord>& records) = 0;
  virtual Result<std::vector<StoredRecord>> load() = 0;
};

using Clock = std::function<std::int64_t()>;  // milliseconds

struct Protocol {
  std::string name;
  Bytes metadata;
};

struct JoinRequest {
  std::string group_id;
  std::string member_id;  // "" on the first join
  std::optional<std::string> group_instance_id;  // static membership (KIP-345)
  std::string protocol_type;
  std::vector<Protocol> protocols;
  std::int32_t session_timeout_ms = 0;
  std::int32_t rebalance_timeout_ms = 0;
  std::string client_id;
  std::string client_host;
  bool require_known_member_id = false;  // JoinGroup v4+: MEMBER_ID_REQUIRED before a first join
};

struct JoinedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  Bytes metadata;
};

struct JoinResult {
  GroupError error = GroupError::none;
  std::int32_t generation_id = -1;
  std::string protocol_type;
  std::optional<std::string> protocol_name;
  std::string leader_id;
  std::string member_id;
  std::vector<JoinedMember> members;  // only for the leader
  bool skip_assignment = false;       // a static leader rejoined with nothing changed (KIP-814)
};

struct SyncRequest {
  std::string group_id;
  std::int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::vector<std::pair<std::string, Bytes>> assignments;  // member id -> assignment (leader only)
};

struct SyncResult {
  GroupError error = GroupError::none;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  Bytes assignment;
};

struct MemberIdentity {
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct LeaveResult {
  GroupError error = GroupError::none;                             // the whole request
  std::vector<std::pair<MemberIdentity, GroupError>> members;  // one per member asked to leave
};

struct PartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = -1;
  std::int32_t leader_epoch = -1;
  std::string metadata;
  GroupError error = GroupError::none;  // in answers
};

struct CommitRequest {
  std::string group_id;
  std::int32_t generation_id = -1;  // -1 with member "": a simple (standalone) commit
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<PartitionOffset> offsets;
  bool member_epoch_version = false;  // OffsetCommit v9+: generation_id is a consumer group's member epoch
};

// Who asks OffsetFetch v9+ (KIP-848): a consumer group member's id and epoch are checked.
struct FetchingMember {
  std::optional<std::string> member_id;  // nullopt with epoch -1: an admin client, not checked
  std::int32_t member_epoch = -1;
};

// TxnOffsetCommit: offsets written in the producer's transaction, pending until its marker.
struct TxnCommitRequest {
  std::string group_id;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t generation_id = -1;  // v3 (KIP-447); -1 with member "" and no instance: not checked
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<PartitionOffset> offsets;
};

struct FetchOffsetsResult {
  GroupError error = GroupError::none;
  std::vector<PartitionOffset> offsets;  // offset -1 for partitions without a committed offset
};

struct GroupListing {
  std::string group_id;
  std::string protocol_type;
  GroupState state = GroupState::empty;
  std::optional<consumer::ConsumerGroupState> consumer_state;  // set for consumer-protocol groups
  std::string state_name() const;  // Kafka's name of the state: "Stable", or "stable" for a consumer group
};

struct MemberDescription {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  Bytes metadata;    // for the selected protocol, in Stable only (as Kafka)
  Bytes assignment;  // in Stable only
};

struct GroupDescription {
  std::string group_id;
  GroupState state = GroupState::dead;  // dead for unknown groups, as Kafka answers
  std::string protocol_type;
  std::string protocol_name;
  std::int32_t generation_id = 0;
  std::string leader_id;
  std::vector<MemberDescription> members;
};

struct TopicPartitionKey {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartitionKey&) const = default;
};

class GroupCoordinator {
 public:
  using JoinCallback = std::function<void(JoinResult)>;
  using SyncCallback = std::function<void(SyncResult)>;

  // Replays the store (a corrupt record is skipped with a warning; a store that cannot be read is an
  // error) and returns a coordinator serving every group.
  static Result<std::unique_ptr<GroupCoordinator>> open(GroupSettings settings, std::unique_ptr<GroupStore> store,
                                                        Clock clock);
  ~GroupCoordinator();  // stops background ticks; pending callbacks are dropped unanswered
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  void join(JoinRequest request, JoinCallback done);
  void sync(SyncRequest request, SyncCallback done);
  GroupError heartbeat(const std::string& group_id, std::int32_t generation_id, const std::string& member_id,
                       const std::optional<std::string>& group_instance_id);
  LeaveResult leave(const std::string& group_id, const std::vector<MemberIdentity>& members);

  // One error per offset (in the same order). A store failure fails them all.
  std::vector<GroupError> commit(const CommitRequest& request);
  // Transactional offsets (KIP-98/447): stored as transactional records of the producer and kept pending,
  // invisible to fetch_offsets, until on_transaction_marker. One error per offset, as commit().
  std::vector<GroupError> txn_commit(const TxnCommitRequest& request);
  // A COMMIT or ABORT marker of `producer_id` was appended to this coordinator's partition: its pending
  // offsets in every group become the committed ones (unless a plain commit came later in the log) or
  // are dropped. Replay applies the markers it reads the same way.
  void on_transaction_marker(std::int64_t producer_id, std::int16_t producer_epoch, bool committed);
  // partitions nullopt: every committed offset of the group. require_stable (OffsetFetch v7+): a
  // partition with a pending transactional offset answers unstable_offset_commit instead.
  FetchOffsetsResult fetch_offsets(const std::string& group_id,
                                   const std::optional<std::vector<TopicPartitionKey>>& partitions,
                                   bool require_stable = false, const FetchingMember& member = {});
  // One error per partition; the group error is group_id_not_found or none.
  GroupError delete_offsets(const std::string& group_id, const std::vector<TopicPartitionKey>& partitions,
                            std::vector<GroupError>& partition_errors);
  GroupError delete_group(const std::string& group_id);

  std::vector<GroupListing> list_groups() const;
  // DescribeGroups: a consumer-protocol group is Dead here, as Kafka 3.7 answers (ConsumerGroupDescribe
  // describes it).
  GroupDescription describe(const std::string& group_id) const;

  // KIP-848's ConsumerGroupHeartbeat (already checked with consumer::validate_heartbeat): creates the
  // group on a join, refuses a group id a classic group with members holds (GROUP_ID_NOT_FOUND, as
  // Kafka 3.7). The group state lives in memory only (docs/groups.md).
  consumer::HeartbeatResult consumer_heartbeat(const consumer::HeartbeatRequest& request,
                                               const consumer::TopicLookup& topics);
  // ConsumerGroupDescribe; nullopt when no consumer group has this id.
  std::optional<consumer::GroupDescription> describe_consumer_group(const std::string& group_id) const;

  // This coordinator stops serving (its partition is led elsewhere now): every waiting JoinGroup and
  // SyncGroup is answered with `error`, and so is every later call that would change a group.
  void resign(GroupError error);

  // Checks every deadline against the clock and expires old offsets; call often.
  void tick();
  // A thread calling tick() every interval until destruction (for the broker; tests call tick()).
  void start_background_ticks(std::chrono::milliseconds interval);
  void stop_background_ticks();

  struct Group;
  struct Member;

 private:
  GroupCoordinator(GroupSettings settings, std::unique_ptr<GroupStore> store, Clock clock);
  Status replay(const std::vector<StoredRecord>& records);

  // Every *_locked method runs under mu_; callbacks it wants to run go to deferred_.
  Group* find_group_locked(const std::string& group_id);
  Group& get_or_create_group_locked(const std::string& group_id);
  void join_unknown_member_locked(Group& group, JoinRequest& request, JoinCallback& done, std::int64_t now);
  void join_known_member_locked(Group& group, JoinRequest& request, JoinCallback& done, std::int64_t now);
  void add_member_and_rebalance_locked(Group& group, JoinRequest& request, const std::string& member_id,
                                       JoinCallback done, std::int64_t now);
  void update_member_and_rebalance_locked(Group& group, Member& member, JoinRequest& request, JoinCallback done,
                                          std::int64_t now);
  void replace_static_member_locked(Group& group, const std::string& old_id, const std::string& new_id);
  void prepare_rebalance_locked(Group& group, std::int64_t now, const char* reason);
  void maybe_complete_join_locked(Group& group, std::int64_t now, bool deadline_passed);
  void complete_join_locked(Group& group, std::int64_t now);
  void remove_member_locked(Group& group, std::string member_id, std::int64_t now, const char* reason);  // by value: callers pass references into maps it edits
  JoinResult join_result_for_locked(const Group& group, const Member& member) const;
  void store_group_locked(Group& group);
  void replay_offset_locked(const OffsetKey& key, const StoredRecord& record, std::size_t& skipped);
  void complete_transaction_locked(std::int64_t producer_id, bool committed);
  void expire_offsets_locked(std::int64_t now);
  GroupError validate_consumer_commit_locked(const CommitRequest& request) const;
  void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }
  void run_deferred(std::unique_lock<std::mutex>& lock);

  GroupSettings settings_;
  std::unique_ptr<GroupStore> store_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Group>> groups_;  // classic groups, and every group's offsets
  std::map<std::string, consumer::ConsumerGroup> consumer_groups_;  // KIP-848 groups (their offsets: groups_)
  std::vector<std::function<void()>> deferred_;
  std::int64_t next_retention_check_ = 0;
  GroupError resigned_ = GroupError::none;  // see resign()
  // Log order of offset records (replayed and appended alike): a transaction's offsets apply at its
  // COMMIT only over plain commits older than them, as Kafka compares record offsets.
  std::uint64_t next_position_ = 0;

  std::thread ticker_;
  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool ticker_stop_ = false;
};

// The topics a consumer-protocol subscription names (ConsumerProtocolSubscription, any version), or
// empty when the bytes are not one.
std::vector<std::string> subscribed_topics(ByteView metadata);

}  // namespace bulwark::groups
