// The adapter between the pure Raft core's messages (raft/messages.h) and Kafka's wire codecs
// (wire/generated), so that the bytes between controllers are Kafka 3.7's own KRaft RPCs.
//
// The core speaks about one partition; on the wire every RPC nests it as one topic
// `__cluster_metadata` with one partition 0 (Fetch names the topic by Kafka's fixed metadata topic id
// instead, from v13 on). Log entries travel as v2 record batches: a run of entries of one epoch and
// kind is one batch (partitionLeaderEpoch = the Raft epoch), LEADER_CHANGE entries as control batches.
//
// from_wire refuses (ErrorKind::invalid_argument, never a crash) anything other than exactly that one
// partition, and ErrorKind::corrupt for record bytes that do not check out. A response carrying only
// a top-level error (Kafka answers a request it refuses that way) becomes the core's response with
// that error and no leader. Error codes the core does not know become broker_not_available: "this
// peer could not serve the request now", which the core handles as retry-later.
//
// A null ClusterId (Kafka sends one only when it does not know it) becomes "".
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "raft/messages.h"
#include "wire/generated/begin_quorum_epoch.h"
#include "wire/generated/describe_quorum.h"
#include "wire/generated/end_quorum_epoch.h"
#include "wire/generated/fetch.h"
#include "wire/generated/fetch_snapshot.h"
#include "wire/generated/vote.h"

namespace bulwark::cluster {

namespace msg = wire::msg;

inline constexpr std::string_view kMetadataTopicName = "__cluster_metadata";
inline constexpr std::int32_t kMetadataPartition = 0;
// Kafka's Uuid.METADATA_TOPIC_ID = Uuid(0, 1), "AAAAAAAAAAAAAAAAAAAAAQ" in base64.
inline constexpr wire::Uuid kMetadataTopicId = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// The API versions this adapter speaks (requests it sends, and the only ones it answers, except Fetch
// and DescribeQuorum, which it answers in a range). Kafka 3.7 defines only v0 of Vote,
// BeginQuorumEpoch, EndQuorumEpoch and FetchSnapshot. Its raft client sends Fetch through
// FetchRequest.SimpleBuilder, i.e. at the highest version both ends support: v16 between 3.7
// controllers (replica id in ReplicaState, v15+). It checks the topic id, so a Fetch below v13 (topic
// names) can never be valid for the metadata log.
inline constexpr std::int16_t kVoteVersion = 0;
inline constexpr std::int16_t kBeginQuorumEpochVersion = 0;
inline constexpr std::int16_t kEndQuorumEpochVersion = 0;
inline constexpr std::int16_t kFetchVersion = 16;
inline constexpr std::int16_t kMinFetchVersion = 13;
inline constexpr std::int16_t kFetchSnapshotVersion = 0;
inline constexpr std::int16_t kDescribeQuorumVersion = 1;
inline constexpr std::int16_t kMinDescribeQuorumVersion = 0;

// Kafka's KafkaRaftClient.MAX_FETCH_SIZE_BYTES, the request-level MaxBytes it sends.
inline constexpr std::int32_t kKafkaRaftMaxFetchBytes = 8 * 1024 * 1024;

// Kafka error codes the adapter itself answers with.
inline constexpr std::int16_t kUnknownTopicOrPartition = 3;
inline constexpr std::int16_t kUnsupportedVersion = 35;

// Error codes: the core's are Kafka's numbers; anything else maps to broker_not_available.
raft::ErrorCode error_from_wire(std::int16_t code);
bool is_core_error_code(std::int16_t code);
inline std::int16_t error_to_wire(raft::ErrorCode code) { return static_cast<std::int16_t>(code); }

// ---- Log entries <-> record batches ----------------------------------------------------------------

struct RecordEncoding {
  // Total size budget of the record bytes. Whole batches only, and at least one entry even when it
  // alone exceeds the budget (KIP-74: a fetch always makes progress).
  std::size_t max_bytes = std::numeric_limits<std::size_t>::max();
  std::int64_t timestamp_ms = 0;  // base and max timestamp of every batch (entries carry none)
};

struct EncodedEntries {
  Bytes records;
  std::size_t entry_count = 0;  // how many leading entries fit the budget
};

// Entries must have ascending contiguous offsets, non-decreasing epochs >= 0, and leader_change
// payloads that decode_leader_change accepts (they are re-encoded as Kafka's LeaderChangeMessage).
Result<EncodedEntries> encode_entries(const std::vector<raft::LogEntry>& entries, const RecordEncoding& encoding = {});

// Checks every batch's CRC, offsets (contiguous within and across batches), epochs (>= 0, never
// decreasing), and control records (LEADER_CHANGE only). A partial trailing batch (Kafka's log reads
// may cut one) is dropped when at least one whole batch precedes it; bytes holding no whole batch are
// corrupt.
Result<std::vector<raft::LogEntry>> decode_entries(ByteView records);

// ---- Message structs --------------------------------------------------------------------------------

msg::VoteRequest to_wire(const raft::VoteRequest& request);
msg::VoteResponse to_wire(const raft::VoteResponse& response);
msg::BeginQuorumEpochRequest to_wire(const raft::BeginQuorumEpochRequest& request);
msg::BeginQuorumEpochResponse to_wire(const raft::BeginQuorumEpochResponse& response);
msg::EndQuorumEpochRequest to_wire(const raft::EndQuorumEpochRequest& request);
msg::EndQuorumEpochResponse to_wire(const raft::EndQuorumEpochResponse& response);
// The replica id goes into ReplicaState from v15 on, into the top-level ReplicaId before (as Kafka's
// FetchRequest.SimpleBuilder does).
msg::FetchRequest to_wire(const raft::FetchRequest& request, std::int16_t version = kFetchVersion);
// Fails only when the entries cannot be encoded (see encode_entries); entries past the budget are left
// out (the follower fetches them next).
Result<msg::FetchResponse> to_wire(const raft::FetchResponse& response, const RecordEncoding& encoding = {});
msg::FetchSnapshotRequest to_wire(const raft::FetchSnapshotRequest& request);
msg::FetchSnapshotResponse to_wire(const raft::FetchSnapshotResponse& response);
msg::DescribeQuorumResponse to_wire(const raft::QuorumDescription& description);

Result<raft::VoteRequest> from_wire(const msg::VoteRequest& request);
Result<raft::VoteResponse> from_wire(const msg::VoteResponse& response);
Result<raft::BeginQuorumEpochRequest> from_wire(const msg::BeginQuorumEpochRequest& request);
Result<raft::BeginQuorumEpochResponse> from_wire(const msg::BeginQuorumEpochResponse& response);
Result<raft::EndQuorumEpochRequest> from_wire(const msg::EndQuorumEpochRequest& request);
Result<raft::EndQuorumEpochResponse> from_wire(const msg::EndQuorumEpochResponse& response);
// PartitionMaxBytes, capped by the request's MaxBytes; MaxBytes alone when the partition's is 0 (as a
// Kafka 3.7 follower sends it).
Result<raft::FetchRequest> from_wire(const msg::FetchRequest& request);
Result<raft::FetchResponse> from_wire(const msg::FetchResponse& response);
Result<raft::FetchSnapshotRequest> from_wire(const msg::FetchSnapshotRequest& request);
Result<raft::FetchSnapshotResponse> from_wire(const msg::FetchSnapshotResponse& response);
Result<raft::QuorumDescription> from_wire(const msg::DescribeQuorumResponse& response);

// DescribeQuorum requests come from admin clients; the answer is the leader's QuorumDescription.
msg::DescribeQuorumRequest describe_quorum_request();
Status check_describe_quorum_request(const msg::DescribeQuorumRequest& request);
// Kafka's answer to a DescribeQuorum for another partition: every partition asked for, with `error`.
msg::DescribeQuorumResponse describe_quorum_partition_error(const msg::DescribeQuorumRequest& request, std::int16_t error);

// ---- Bodies and frames ------------------------------------------------------------------------------

struct WireBody {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  Bytes body;  // the message after the request/response header
};

std::int16_t api_key_of(const raft::Message& message);
bool is_request(const raft::Message& message);
// True for the five request keys the core handles (not DescribeQuorum).
bool is_raft_api(std::int16_t api_key);
// Whether this adapter accepts `api_version` of a raft request (inbound).
bool raft_version_supported(std::int16_t api_key, std::int16_t api_version);
// The version a request of this key is sent at (kVoteVersion, ...), -1 for other keys.
std::int16_t raft_request_version(std::int16_t api_key);

// A request at the adapter's version of its API. Fails for a response or unencodable records.
Result<WireBody> encode_request(const raft::Message& request);
// A response in the version its request came in (raft_version_supported). For Fetch, pass the
// request's partition_max_bytes (from_wire folds MaxBytes into it) as encoding.max_bytes: the core
// limits payload bytes, the budget the whole batches.
Result<WireBody> encode_response(const raft::Message& response, std::int16_t api_version,
                                 const RecordEncoding& encoding = {});
// ErrorKind::unsupported for a key or version the adapter does not speak; corrupt for bytes that do
// not decode or trailing bytes; invalid_argument for a well-formed message from_wire refuses.
Result<raft::Message> decode_request(std::int16_t api_key, std::int16_t api_version, ByteView body);
Result<raft::Message> decode_response(std::int16_t api_key, std::int16_t api_version, ByteView body);
// Kafka's answer to a raft request it refuses as a whole (e.g. INVALID_REQUEST for the wrong topic,
// INCONSISTENT_CLUSTER_ID): the top-level error and no topics.
Result<WireBody> encode_error_response(std::int16_t api_key, std::int16_t api_version, std::int16_t error);

// Whole frames: int32 size, header, body.
Bytes encode_request_frame(const WireBody& request, std::int32_t correlation_id,
                           const std::optional<std::string>& client_id);
Bytes encode_response_frame(const WireBody& response, std::int32_t correlation_id);

}  // namespace bulwark::cluster
