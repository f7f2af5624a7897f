// The values the consensus core exchanges with its peers. Each struct mirrors one KRaft RPC of Kafka
// 3.7 field for field (the single-partition part of it: the metadata log is one partition, so the
// topic/partition nesting is left to the wire adapter), and error codes are Kafka's numbers, so an
// adapter maps them 1:1 onto the generated codecs in wire/ without this folder depending on wire/.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace bulwark::raft {

using NodeId = int32_t;
constexpr NodeId kNoNode = -1;
constexpr int32_t kNoEpoch = -1;
constexpr int64_t kNoOffset = -1;

// Kafka's error codes (org.apache.kafka.common.protocol.Errors), as wire values.
enum class ErrorCode : int16_t {
  none = 0,
  offset_out_of_range = 1,
  not_leader_or_follower = 6,
  broker_not_available = 8,
  invalid_request = 42,
  fenced_leader_epoch = 74,
  unknown_leader_epoch = 75,
  inconsistent_voter_set = 94,
  snapshot_not_found = 98,
  position_out_of_range = 99,
  inconsistent_cluster_id = 104,
};
const char* error_name(ErrorCode code);

enum class EntryKind : uint8_t {
  data,           // a client (controller) record batch
  leader_change,  // control record LEADER_CHANGE (type 2), the first entry of every epoch
};

struct LogEntry {
  int64_t offset = 0;
  int32_t epoch = 0;
  EntryKind kind = EntryKind::data;
  std::vector<uint8_t> payload;
  friend bool operator==(const LogEntry&, const LogEntry&) = default;
};

// LeaderChangeMessage (control record value).
struct LeaderChange {
  NodeId leader_id = kNoNode;
  std::vector<NodeId> voters;
  std::vector<NodeId> granting_voters;
  friend bool operator==(const LeaderChange&, const LeaderChange&) = default;
};
std::vector<uint8_t> encode_leader_change(const LeaderChange& change);
bool decode_leader_change(const std::vector<uint8_t>& bytes, LeaderChange& out);

// Snapshot identity: the offset one past its last record, and that record's epoch (KIP-630).
struct SnapshotId {
  int64_t end_offset = kNoOffset;
  int32_t epoch = kNoEpoch;
  bool valid() const { return end_offset >= 0 && epoch >= 0; }
  friend bool operator==(const SnapshotId&, const SnapshotId&) = default;
};

struct LeaderIdAndEpoch {
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
  friend bool operator==(const LeaderIdAndEpoch&, const LeaderIdAndEpoch&) = default;
};

struct EpochEndOffset {
  int32_t epoch = kNoEpoch;
  int64_t end_offset = kNoOffset;
  bool present() const { return epoch >= 0; }
  friend bool operator==(const EpochEndOffset&, const EpochEndOffset&) = default;
};

struct VoteRequest {
  std::string cluster_id;
  int32_t candidate_epoch = 0;
  NodeId candidate_id = kNoNode;
  int32_t last_offset_epoch = 0;
  int64_t last_offset = 0;  // the candidate's log end offset
};

struct VoteResponse {
  ErrorCode error_code = ErrorCode::none;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
  bool vote_granted = false;
};

struct BeginQuorumEpochRequest {
  std::string cluster_id;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = 0;
};

struct BeginQuorumEpochResponse {
  ErrorCode error_code = ErrorCode::none;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
};

struct EndQuorumEpochRequest {
  std::string cluster_id;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = 0;
  std::vector<NodeId> preferred_successors;
};

struct EndQuorumEpochResponse {
  ErrorCode error_code = ErrorCode::none;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
};

struct FetchRequest {
  std::string cluster_id;
  NodeId replica_id = kNoNode;
  int32_t max_wait_ms = 0;
  int32_t current_leader_epoch = kNoEpoch;
  int64_t fetch_offset = 0;
  int32_t last_fetched_epoch = kNoEpoch;
  int64_t log_start_offset = 0;
  int32_t partition_max_bytes = 0;
};

struct FetchResponse {
  ErrorCode error_code = ErrorCode::none;
  int64_t high_watermark = kNoOffset;
  int64_t log_start_offset = kNoOffset;
  EpochEndOffset diverging_epoch;
  // Always filled by this core (Kafka fills it on errors); it is how a response is matched to the
  // epoch it belongs to without a correlation id.
  LeaderIdAndEpoch current_leader;
  SnapshotId snapshot_id;
  std::vector<LogEntry> records;
};

struct FetchSnapshotRequest {
  std::string cluster_id;
  NodeId replica_id = kNoNode;
  int32_t max_bytes = 0;
  int32_t current_leader_epoch = kNoEpoch;
  SnapshotId snapshot_id;
  int64_t position = 0;
};

struct FetchSnapshotResponse {
  ErrorCode error_code = ErrorCode::none;
  SnapshotId snapshot_id;
  LeaderIdAndEpoch current_leader;
  int64_t size = 0;
  int64_t position = 0;
  std::vector<uint8_t> unaligned_records;
};

using Message = std::variant<VoteRequest, VoteResponse, BeginQuorumEpochRequest, BeginQuorumEpochResponse,
                             EndQuorumEpochRequest, EndQuorumEpochResponse, FetchRequest, FetchResponse,
                             FetchSnapshotRequest, FetchSnapshotResponse>;
const char* message_name(const Message& message);

// DescribeQuorum's partition data, answered from the leader's view.
struct ReplicaDescription {
  NodeId replica_id = kNoNode;
  int64_t log_end_offset = kNoOffset;
  int64_t last_fetch_timestamp = -1;
  int64_t last_caught_up_timestamp = -1;
};

struct QuorumDescription {
  ErrorCode error_code = ErrorCode::none;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
  int64_t high_watermark = kNoOffset;
  std::vector<ReplicaDescription> current_voters;
  std::vector<ReplicaDescription> observers;
};

}  // namespace bulwark::raft
