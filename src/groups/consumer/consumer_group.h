// One consumer group of KIP-848's consumer protocol (ConsumerGroupHeartbeat), as a pure state machine:
// no clock (every call takes `now`), no I/O, no lock (the coordinator serialises calls). Kafka 3.7's
// GroupMetadataManager.consumerGroupHeartbeat and CurrentAssignmentBuilder are the reference.
//
// Epochs. The group epoch rises whenever what the assignment depends on changes: a member joins or
// leaves, a subscription changes, a subscribed topic appears or gains partitions. The next heartbeat
// then computes a target assignment with the server-side assignor (assignors.h) for that epoch.
// Each member reconciles towards its target on its own heartbeats:
//  - partitions it owns that its target no longer has are first *pending revocation*: the member is
//    told its assignment without them and keeps its epoch until a heartbeat shows it no longer owns
//    them (or its rebalance timeout passes, which fences it);
//  - then its epoch becomes the target epoch, and it is given the target's partitions that no other
//    member still owns (assigned or pending revocation); the others follow on later heartbeats, as
//    their previous owners release them.
// So a partition is never assigned to two members at once.
//
// Leaving: member epoch -1 removes the member (the group epoch rises); -2 (a static member's
// temporary leave) keeps its assignment for the instance id until its session times out. Sessions
// (group.consumer.session.timeout.ms, renewed by every heartbeat) are checked in expire().
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "groups/consumer/assignors.h"
#include "groups/errors.h"

namespace bulwark::groups::consumer {

constexpr std::int32_t kLeaveEpoch = -1;        // LEAVE_GROUP_MEMBER_EPOCH
constexpr std::int32_t kStaticLeaveEpoch = -2;  // LEAVE_GROUP_STATIC_MEMBER_EPOCH

using TopicId = std::array<std::uint8_t, 16>;

struct TopicMetadata {
  TopicId id{};
  std::int32_t partitions = 0;
  bool operator==(const TopicMetadata&) const = default;
};
// The current metadata image's view of a topic by name; nullopt when it does not exist.
using TopicLookup = std::function<std::optional<TopicMetadata>(const std::string& name)>;

struct ConsumerGroupSettings {
  std::int32_t session_timeout_ms = 45000;     // group.consumer.session.timeout.ms
  std::int32_t heartbeat_interval_ms = 5000;   // group.consumer.heartbeat.interval.ms
  std::int32_t max_size = INT32_MAX;           // group.consumer.max.size
  std::string default_assignor = "uniform";    // the first of group.consumer.assignors
};

struct HeartbeatRequest {
  std::string group_id;
  std::string member_id;  // "" on the first join: the coordinator makes one
  std::int32_t member_epoch = 0;
  std::optional<std::string> instance_id;
  std::optional<std::string> rack_id;
  std::int32_t rebalance_timeout_ms = -1;  // -1: unchanged
  std::optional<std::vector<std::string>> subscribed_topics;  // nullopt: unchanged
  std::optional<std::string> server_assignor;
  std::optional<Partitions> owned;  // nullopt: unchanged since the last heartbeat
  std::string client_id;
  std::string client_host;
};

struct HeartbeatResult {
  GroupError error = GroupError::none;
  std::string message;  // why, for the response's error_message
  std::string member_id;
  std::int32_t member_epoch = 0;
  std::int32_t heartbeat_interval_ms = 0;
  std::optional<Partitions> assignment;  // sent when it changed, on a join, or when the member sent its owned partitions
};

// Kafka's request checks (throwIfConsumerGroupHeartbeatRequestIsInvalid), before any group is looked up.
GroupError validate_heartbeat(const HeartbeatRequest& request, std::string& message);

enum class ConsumerGroupState { empty, assigning, reconciling, stable };
const char* to_string(ConsumerGroupState state);  // Kafka's names: "empty", "assigning", ...

enum class MemberState { stable, revoking, assigning };

struct MemberDescription {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::optional<std::string> rack_id;
  std::int32_t member_epoch = 0;
  std::string client_id;
  std::string client_host;
  std::vector<std::string> subscribed_topics;
  Partitions assigned;
  Partitions target;
};

struct GroupDescription {
  std::string group_id;
  ConsumerGroupState state = ConsumerGroupState::empty;
  std::int32_t group_epoch = 0;
  std::int32_t assignment_epoch = 0;
  std::string assignor;
  std::vector<MemberDescription> members;
};

class ConsumerGroup {
 public:
  ConsumerGroup(std::string group_id, const ConsumerGroupSettings& settings);

  // A heartbeat already checked by validate_heartbeat. new_member_id makes the id of a joining member.
  HeartbeatResult heartbeat(const HeartbeatRequest& request, std::int64_t now, const TopicLookup& topics,
                            const std::function<std::string()>& new_member_id);
  // Removes the members whose session or revocation deadline has passed; returns their ids.
  std::vector<std::string> expire(std::int64_t now);

  // OffsetCommit v9 / OffsetFetch v9 (Kafka's ConsumerGroup.validateOffsetCommit/validateOffsetFetch).
  GroupError validate_offset_commit(const std::string& member_id, std::int32_t member_epoch) const;
  GroupError validate_offset_fetch(const std::optional<std::string>& member_id, std::int32_t member_epoch) const;

  ConsumerGroupState state() const;
  bool empty() const { return members_.empty(); }
  std::int32_t group_epoch() const { return group_epoch_; }
  std::int32_t assignment_epoch() const { return assignment_epoch_; }
  std::set<std::string> subscribed_topics() const;
  GroupDescription describe() const;

 private:
  struct Member {
    std::string id;
    std::optional<std::string> instance_id;
    std::optional<std::string> rack_id;
    std::string client_id;
    std::string client_host;
    std::int32_t rebalance_timeout_ms = 0;
    std::vector<std::string> subscribed;  // sorted
    std::optional<std::string> server_assignor;
    std::int32_t epoch = 0;
    std::int32_t previous_epoch = -1;
    std::int32_t target_epoch = 0;
    MemberState state = MemberState::stable;
    Partitions assigned;
    Partitions pending_revocation;
    Partitions pending_assignment;
    std::int64_t session_deadline = 0;
    std::int64_t revocation_deadline = 0;  // 0: not revoking
    bool operator==(const Member&) const = default;
  };

  GroupError find_member(const HeartbeatRequest& request, const std::function<std::string()>& new_member_id,
                         Member*& member, bool& replaced_static, std::string& message);
  HeartbeatResult leave(const HeartbeatRequest& request, std::string& message);
  void remove_member(std::string member_id, const char* reason);  // by value: callers pass the member's own id
  bool refresh_subscription_metadata(const TopicLookup& topics);
  void compute_target_assignment();
  bool reconcile(Member& member, const std::optional<Partitions>& owned);
  void take_free_partitions(const Member& member, Partitions& assigned, Partitions& pending) const;
  bool owned_by_other(const std::string& member_id, const std::string& topic, std::int32_t partition) const;
  std::string preferred_assignor() const;

  std::string group_id_;
  ConsumerGroupSettings settings_;
  std::int32_t group_epoch_ = 0;
  std::int32_t assignment_epoch_ = 0;
  std::map<std::string, TopicMetadata> subscription_metadata_;  // subscribed topics that exist
  std::map<std::string, Partitions> target_;                   // member id -> target assignment
  std::map<std::string, Member> members_;
  std::string last_assignor_;
};

// A member id as Kafka 3.7's coordinator makes them (Uuid.randomUuid(): 22 base64url characters).
std::string random_member_id();

}  // namespace bulwark::groups::consumer
