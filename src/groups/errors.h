// The group coordinator's outcomes, shared by the classic protocol (coordinator.h) and KIP-848's
// consumer protocol (consumer/consumer_group.h). The broker maps them to Kafka's codes in one table.
#pragma once

namespace bulwark::groups {

// Outcomes the broker translates to Kafka error codes in one table.
enum class GroupError {
  none,
  coordinator_not_available,   // the group is being deleted or the store failed; clients retry
  not_coordinator,             // the group's __consumer_offsets partition is led by another broker
  coordinator_load_in_progress,  // this broker took the partition up and is still reading it
  illegal_generation,
  inconsistent_group_protocol,
  invalid_group_id,
  unknown_member_id,
  invalid_session_timeout,
  rebalance_in_progress,
  member_id_required,
  fenced_instance_id,
  group_max_size_reached,
  group_id_not_found,
  non_empty_group,
  group_subscribed_to_topic,
  offset_metadata_too_large,
  invalid_request,             // e.g. member metadata above the cap
  unknown_topic_or_partition,  // set by the broker, never by the coordinator
  group_authorization_failed,  // likewise
  topic_authorization_failed,  // likewise
  unstable_offset_commit,      // OffsetFetch require_stable: a transaction holds a pending offset
  // KIP-848's consumer protocol (ConsumerGroupHeartbeat, OffsetCommit/OffsetFetch v9)
  fenced_member_epoch,         // the member's epoch is not the coordinator's: it must rejoin with epoch 0
  unreleased_instance_id,      // a static member's instance id is still held by a live member
  unsupported_assignor,        // server_assignor names an assignor the broker does not have
  stale_member_epoch,          // OffsetCommit/OffsetFetch v9 with an epoch other than the member's
  unsupported_version,         // the consumer protocol is disabled, or an old OffsetCommit on a consumer group
};
const char* to_string(GroupError error);

}  // namespace bulwark::groups
