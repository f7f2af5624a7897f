// The Raft wire adapter: every core message through Kafka's codecs and back, bytes checked by hand
// against the schemas, log entries as record batches, malformed input, and the fetch size budget.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>

#include "base/crc32c.h"

#include "cluster/raft_wire.h"
#include "cluster/records.h"
#include "raft/node.h"
#include "wire/protocol.h"
#include "wire/record_batch.h"

namespace bulwark::cluster {
namespace {

using raft::EntryKind;
using raft::ErrorCode;
using raft::LogEntry;

std::string hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
    out.push_back(' ');
  }
  return out;
}
#define EXPECT_BYTES(actual, expected) EXPECT_EQ(hex(actual), hex(expected))

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes be32(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  return {static_cast<std::uint8_t>(u >> 24), static_cast<std::uint8_t>(u >> 16), static_cast<std::uint8_t>(u >> 8),
          static_cast<std::uint8_t>(u)};
}

Bytes be64(std::int64_t v) {
  Bytes out = be32(static_cast<std::int32_t>(static_cast<std::uint64_t>(v) >> 32));
  Bytes low = be32(static_cast<std::int32_t>(static_cast<std::uint64_t>(v) & 0xffffffffu));
  out.insert(out.end(), low.begin(), low.end());
  return out;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes payload(std::size_t n, std::uint8_t seed) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
  return out;
}

LogEntry data_entry(std::int64_t offset, std::int32_t epoch, Bytes value) {
  return LogEntry{offset, epoch, EntryKind::data, std::move(value)};
}

LogEntry leader_change_entry(std::int64_t offset, std::int32_t epoch, raft::NodeId leader,
                             std::vector<raft::NodeId> voters, std::vector<raft::NodeId> granting) {
  return LogEntry{offset, epoch, EntryKind::leader_change,
                  raft::encode_leader_change(raft::LeaderChange{leader, std::move(voters), std::move(granting)})};
}

// Offsets 10..17: epochs 3, 4 and 5, with the leader change that opens epochs 3 and 4.
std::vector<LogEntry> mixed_entries() {
  return {
      leader_change_entry(10, 3, 1, {1, 2, 3}, {1, 2}),
      data_entry(11, 3, text("a")),
      data_entry(12, 3, payload(300, 1)),
      data_entry(13, 3, Bytes{}),
      leader_change_entry(14, 4, 2, {1, 2, 3}, {2, 3}),
      data_entry(15, 4, text("bb")),
      data_entry(16, 4, payload(5, 9)),
      data_entry(17, 5, text("c")),
  };
}

std::vector<std::size_t> batch_ends(const Bytes& records) {
  auto split = wire::split_batches(ByteView(records));
  EXPECT_TRUE(split.ok());
  std::vector<std::size_t> ends;
  std::size_t end = 0;
  for (ByteView b : split->batches) ends.push_back(end += b.size());
  return ends;
}

// ---- Field-by-field comparison ---------------------------------------------------------------------

void expect_same(const raft::VoteRequest& a, const raft::VoteRequest& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.candidate_epoch, b.candidate_epoch);
  EXPECT_EQ(a.candidate_id, b.candidate_id);
  EXPECT_EQ(a.last_offset_epoch, b.last_offset_epoch);
  EXPECT_EQ(a.last_offset, b.last_offset);
}
void expect_same(const raft::VoteResponse& a, const raft::VoteResponse& b) {
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_epoch, b.leader_epoch);
  EXPECT_EQ(a.vote_granted, b.vote_granted);
}
void expect_same(const raft::BeginQuorumEpochRequest& a, const raft::BeginQuorumEpochRequest& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_epoch, b.leader_epoch);
}
void expect_same(const raft::BeginQuorumEpochResponse& a, const raft::BeginQuorumEpochResponse& b) {
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_epoch, b.leader_epoch);
}
void expect_same(const raft::EndQuorumEpochRequest& a, const raft::EndQuorumEpochRequest& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_epoch, b.leader_epoch);
  EXPECT_EQ(a.preferred_successors, b.preferred_successors);
}
void expect_same(const raft::EndQuorumEpochResponse& a, const raft::EndQuorumEpochResponse& b) {
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_epoch, b.leader_epoch);
}
void expect_same(const raft::FetchRequest& a, const raft::FetchRequest& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.replica_id, b.replica_id);
  EXPECT_EQ(a.max_wait_ms, b.max_wait_ms);
  EXPECT_EQ(a.current_leader_epoch, b.current_leader_epoch);
  EXPECT_EQ(a.fetch_offset, b.fetch_offset);
  EXPECT_EQ(a.last_fetched_epoch, b.last_fetched_epoch);
  EXPECT_EQ(a.log_start_offset, b.log_start_offset);
  EXPECT_EQ(a.partition_max_bytes, b.partition_max_bytes);
}
void expect_same(const raft::FetchResponse& a, const raft::FetchResponse& b) {
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.high_watermark, b.high_watermark);
  EXPECT_EQ(a.log_start_offset, b.log_start_offset);
  EXPECT_EQ(a.diverging_epoch, b.diverging_epoch);
  EXPECT_EQ(a.current_leader, b.current_leader);
  EXPECT_EQ(a.snapshot_id, b.snapshot_id);
  EXPECT_EQ(a.records, b.records);
}
void expect_same(const raft::FetchSnapshotRequest& a, const raft::FetchSnapshotRequest& b) {
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.replica_id, b.replica_id);
  EXPECT_EQ(a.max_bytes, b.max_bytes);
  EXPECT_EQ(a.current_leader_epoch, b.current_leader_epoch);
  EXPECT_EQ(a.snapshot_id, b.snapshot_id);
  EXPECT_EQ(a.position, b.position);
}
void expect_same(const raft::FetchSnapshotResponse& a, const raft::FetchSnapshotResponse& b) {
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.snapshot_id, b.snapshot_id);
  EXPECT_EQ(a.current_leader, b.current_leader);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.unaligned_records, b.unaligned_records);
}

// ---- Sample messages -------------------------------------------------------------------------------

raft::VoteRequest sample_vote_request() { return {"cluster-A", 7, 2, 6, 1234}; }
raft::VoteResponse sample_vote_response() { return {ErrorCode::fenced_leader_epoch, 3, 8, false}; }
raft::BeginQuorumEpochRequest sample_begin_request() { return {"cluster-A", 3, 9}; }
raft::BeginQuorumEpochResponse sample_begin_response() { return {ErrorCode::none, 3, 9}; }
raft::EndQuorumEpochRequest sample_end_request() { return {"cluster-A", 3, 9, {2, 1, 5}}; }
raft::EndQuorumEpochResponse sample_end_response() { return {ErrorCode::inconsistent_voter_set, -1, 10}; }

raft::FetchRequest sample_fetch_request() {
  raft::FetchRequest r;
  r.cluster_id = "cluster-A";
  r.replica_id = 2;
  r.max_wait_ms = 500;
  r.current_leader_epoch = 9;
  r.fetch_offset = 4096;
  r.last_fetched_epoch = 8;
  r.log_start_offset = 1000;
  r.partition_max_bytes = 1 << 20;
  return r;
}

raft::FetchResponse sample_fetch_response() {
  raft::FetchResponse r;
  r.error_code = ErrorCode::none;
  r.high_watermark = 15;
  r.log_start_offset = 10;
  r.current_leader = {1, 5};
  r.records = mixed_entries();
  return r;
}

raft::FetchSnapshotRequest sample_snapshot_request() {
  raft::FetchSnapshotRequest r;
  r.cluster_id = "cluster-A";
  r.replica_id = 3;
  r.max_bytes = 65536;
  r.current_leader_epoch = 9;
  r.snapshot_id = {5000, 7};
  r.position = 131072;
  return r;
}

raft::FetchSnapshotResponse sample_snapshot_response() {
  raft::FetchSnapshotResponse r;
  r.snapshot_id = {5000, 7};
  r.current_leader = {1, 9};
  r.size = 200000;
  r.position = 131072;
  r.unaligned_records = payload(777, 3);
  return r;
}

std::vector<raft::Message> sample_requests() {
  return {sample_vote_request(), sample_begin_request(), sample_end_request(), sample_fetch_request(),
          sample_snapshot_request()};
}

std::vector<raft::Message> sample_responses() {
  raft::FetchResponse diverging;
  diverging.error_code = ErrorCode::none;
  diverging.high_watermark = 20;
  diverging.log_start_offset = 0;
  diverging.diverging_epoch = {4, 17};
  diverging.current_leader = {1, 6};
  raft::FetchResponse snapshot;
  snapshot.error_code = ErrorCode::none;
  snapshot.high_watermark = 9000;
  snapshot.log_start_offset = 5000;
  snapshot.current_leader = {1, 9};
  snapshot.snapshot_id = {5000, 7};
  raft::FetchResponse not_leader;
  not_leader.error_code = ErrorCode::not_leader_or_follower;
  not_leader.current_leader = {3, 9};
  return {sample_vote_response(), raft::VoteResponse{ErrorCode::none, -1, 8, true}, sample_begin_response(),
          sample_end_response(), sample_fetch_response(), diverging, snapshot, not_leader, sample_snapshot_response(),
          raft::FetchSnapshotResponse{ErrorCode::snapshot_not_found, {1, 1}, {1, 9}, 0, 0, {}}};
}

void expect_same_message(const raft::Message& a, const raft::Message& b) {
  ASSERT_EQ(a.index(), b.index()) << raft::message_name(a) << " vs " << raft::message_name(b);
  std::visit([&](const auto& x) { expect_same(x, std::get<std::decay_t<decltype(x)>>(b)); }, a);
}

// ---- Round trips -----------------------------------------------------------------------------------

TEST(RaftWire, VersionsAreKafka37s) {
  EXPECT_EQ(raft_request_version(52), 0);
  EXPECT_EQ(raft_request_version(53), 0);
  EXPECT_EQ(raft_request_version(54), 0);
  EXPECT_EQ(raft_request_version(1), 16);
  EXPECT_EQ(raft_request_version(59), 0);
  EXPECT_EQ(raft_request_version(0), -1);
  for (std::int16_t v = 13; v <= 16; ++v) EXPECT_TRUE(raft_version_supported(1, v));
  EXPECT_FALSE(raft_version_supported(1, 12));
  EXPECT_FALSE(raft_version_supported(52, 1));
  EXPECT_TRUE(raft_version_supported(55, 0));
  EXPECT_TRUE(raft_version_supported(55, 1));
  // Every version the adapter speaks is one the generated codecs support.
  for (std::int16_t key : {52, 53, 54, 1, 59}) EXPECT_TRUE(wire::api_version_supported(key, raft_request_version(key)));
}

TEST(RaftWire, EveryRequestRoundTripsThroughBytes) {
  for (const raft::Message& request : sample_requests()) {
    SCOPED_TRACE(raft::message_name(request));
    EXPECT_TRUE(is_request(request));
    auto body = encode_request(request);
    ASSERT_TRUE(body.ok()) << body.error().message;
    EXPECT_EQ(body->api_key, api_key_of(request));
    EXPECT_EQ(body->api_version, raft_request_version(body->api_key));
    auto back = decode_request(body->api_key, body->api_version, ByteView(body->body));
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same_message(request, *back);
  }
}

TEST(RaftWire, EveryResponseRoundTripsThroughBytes) {
  for (const raft::Message& response : sample_responses()) {
    SCOPED_TRACE(raft::message_name(response));
    EXPECT_FALSE(is_request(response));
    const std::int16_t key = api_key_of(response);
    auto body = encode_response(response, raft_request_version(key));
    ASSERT_TRUE(body.ok()) << body.error().message;
    auto back = decode_response(key, body->api_version, ByteView(body->body));
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same_message(response, *back);
  }
}

TEST(RaftWire, FetchRoundTripsAtEveryAcceptedVersion) {
  for (std::int16_t v = kMinFetchVersion; v <= kFetchVersion; ++v) {
    SCOPED_TRACE(v);
    const raft::FetchRequest request = sample_fetch_request();
    msg::FetchRequest w = to_wire(request, v);
    // Kafka's FetchRequest.SimpleBuilder: ReplicaState from v15, the top-level ReplicaId before.
    EXPECT_EQ(w.replica_id, v >= 15 ? -1 : 2);
    EXPECT_EQ(w.replica_state.replica_id, v >= 15 ? 2 : -1);
    ByteWriter bw;
    w.encode(bw, v);
    auto back = decode_request(1, v, ByteView(bw.buffer()));
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same(request, std::get<raft::FetchRequest>(*back));

    auto body = encode_response(sample_fetch_response(), v);
    ASSERT_TRUE(body.ok());
    auto response = decode_response(1, v, ByteView(body->body));
    ASSERT_TRUE(response.ok()) << response.error().message;
    expect_same(sample_fetch_response(), std::get<raft::FetchResponse>(*response));
  }
}

TEST(RaftWire, FetchNestsUnderTheMetadataTopicId) {
  msg::FetchRequest w = to_wire(sample_fetch_request());
  ASSERT_EQ(w.topics.size(), 1u);
  const wire::Uuid one{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(w.topics[0].topic_id, one);
  EXPECT_EQ(uuid_string(w.topics[0].topic_id), "AAAAAAAAAAAAAAAAAAAAAQ");
  ASSERT_EQ(w.topics[0].partitions.size(), 1u);
  EXPECT_EQ(w.topics[0].partitions[0].partition, 0);
  EXPECT_EQ(w.cluster_id, std::optional<std::string>("cluster-A"));
  EXPECT_EQ(w.max_bytes, 1 << 20);
  EXPECT_EQ(w.session_epoch, -1);

  auto response = to_wire(sample_fetch_response());
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->responses.size(), 1u);
  EXPECT_EQ(response->responses[0].topic_id, one);
  EXPECT_EQ(response->responses[0].partitions[0].current_leader.leader_id, 1);
  EXPECT_EQ(response->responses[0].partitions[0].current_leader.leader_epoch, 5);
}

TEST(RaftWire, FetchFromAKafkaFollowerUsesTheRequestMaxBytes) {
  // KafkaRaftClient.buildFetchRequest leaves PartitionMaxBytes 0 and sets MaxBytes to 8 MiB.
  msg::FetchRequest w = to_wire(sample_fetch_request());
  w.topics[0].partitions[0].partition_max_bytes = 0;
  w.max_bytes = kKafkaRaftMaxFetchBytes;
  auto r = from_wire(w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->partition_max_bytes, kKafkaRaftMaxFetchBytes);
  // A request-level cap below the partition's wins.
  w.topics[0].partitions[0].partition_max_bytes = 5000;
  w.max_bytes = 4000;
  EXPECT_EQ(from_wire(w)->partition_max_bytes, 4000);
}

TEST(RaftWire, DescribeQuorumAnswersFromTheDescription) {
  raft::QuorumDescription d;
  d.leader_id = 1;
  d.leader_epoch = 4;
  d.high_watermark = 99;
  d.current_voters = {{1, 100, -1, 5000}, {2, 99, 4990, 4980}, {3, 50, 4000, 3000}};
  d.observers = {{7, 98, 4995, 4900}};
  for (std::int16_t v = 0; v <= 1; ++v) {
    SCOPED_TRACE(v);
    ByteWriter w;
    to_wire(d).encode(w, v);
    auto decoded_wire = [&] {
      msg::DescribeQuorumResponse m;
      ByteReader r(ByteView(w.buffer()));
      EXPECT_TRUE(m.decode(r, v));
      EXPECT_TRUE(r.at_end());
      return m;
    }();
    auto back = from_wire(decoded_wire);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->error_code, ErrorCode::none);
    EXPECT_EQ(back->leader_id, 1);
    EXPECT_EQ(back->leader_epoch, 4);
    EXPECT_EQ(back->high_watermark, 99);
    ASSERT_EQ(back->current_voters.size(), 3u);
    ASSERT_EQ(back->observers.size(), 1u);
    EXPECT_EQ(back->current_voters[1].replica_id, 2);
    EXPECT_EQ(back->current_voters[1].log_end_offset, 99);
    // v0 has no timestamps: they read back as "unknown".
    EXPECT_EQ(back->current_voters[1].last_fetch_timestamp, v >= 1 ? 4990 : -1);
    EXPECT_EQ(back->current_voters[1].last_caught_up_timestamp, v >= 1 ? 4980 : -1);
    EXPECT_EQ(back->observers[0].replica_id, 7);
  }
  EXPECT_TRUE(check_describe_quorum_request(describe_quorum_request()).ok());
  msg::DescribeQuorumRequest other = describe_quorum_request();
  other.topics[0].topic_name = "payments";
  EXPECT_FALSE(check_describe_quorum_request(other).ok());
  msg::DescribeQuorumResponse refusal = describe_quorum_partition_error(other, kUnknownTopicOrPartition);
  ASSERT_EQ(refusal.topics.size(), 1u);
  EXPECT_EQ(refusal.topics[0].topic_name, "payments");
  EXPECT_EQ(refusal.topics[0].partitions[0].error_code, kUnknownTopicOrPartition);
}

// ---- Bytes checked by hand against the schemas -----------------------------------------------------

TEST(RaftWire, VoteRequestBytesMatchTheSchema) {
  auto body = encode_request(raft::VoteRequest{"abc", 5, 2, 4, 100});
  ASSERT_TRUE(body.ok());
  // VoteRequest v0 is flexible: compact strings and arrays (length + 1), a tag section per struct.
  const Bytes expected = concat({
      {0x04, 'a', 'b', 'c'},  // ClusterId
      {0x02},                 // Topics: one
      {0x13}, text("__cluster_metadata"),
      {0x02},                 // Partitions: one
      be32(0),                // PartitionIndex
      be32(5),                // CandidateEpoch
      be32(2),                // CandidateId
      be32(4),                // LastOffsetEpoch
      be64(100),              // LastOffset
      {0x00},                 // partition tags
      {0x00},                 // topic tags
      {0x00},                 // top-level tags
  });
  EXPECT_BYTES(body->body, expected);

  // The frame: size, request header v2 (key 52, version 0, correlation id, client id, tags), body.
  const Bytes frame = encode_request_frame(*body, 77, std::string("c1"));
  const Bytes header = concat({{0x00, 0x34, 0x00, 0x00}, be32(77), {0x00, 0x02, 'c', '1'}, {0x00}});
  EXPECT_BYTES(frame, concat({be32(static_cast<std::int32_t>(header.size() + expected.size())), header, expected}));
}

TEST(RaftWire, BeginQuorumEpochBytesMatchTheSchema) {
  auto body = encode_request(raft::BeginQuorumEpochRequest{"abc", 3, 9});
  ASSERT_TRUE(body.ok());
  // BeginQuorumEpoch v0 is not flexible: int16 string lengths, int32 array counts, no tags.
  const Bytes expected = concat({
      {0x00, 0x03, 'a', 'b', 'c'},
      be32(1),
      {0x00, 0x12}, text("__cluster_metadata"),
      be32(1),
      be32(0),  // PartitionIndex
      be32(3),  // LeaderId
      be32(9),  // LeaderEpoch
  });
  EXPECT_BYTES(body->body, expected);

  auto response = encode_response(raft::BeginQuorumEpochResponse{ErrorCode::fenced_leader_epoch, 3, 10}, 0);
  ASSERT_TRUE(response.ok());
  EXPECT_BYTES(response->body, concat({{0x00, 0x00}, be32(1), {0x00, 0x12}, text("__cluster_metadata"), be32(1),
                                       be32(0), {0x00, 74}, be32(3), be32(10)}));
  // Response header v0 (not flexible): the correlation id alone.
  EXPECT_BYTES(encode_response_frame(*response, 5),
               concat({be32(static_cast<std::int32_t>(4 + response->body.size())), be32(5), response->body}));
}

TEST(RaftWire, FramesDecodeWithTheBrokersHeaderCode) {
  auto body = encode_request(sample_fetch_request());
  ASSERT_TRUE(body.ok());
  const Bytes frame = encode_request_frame(*body, 1234, std::nullopt);
  ByteReader r(ByteView(frame).subspan(4));
  auto header = wire::decode_request_header(r);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->api_key, 1);
  EXPECT_EQ(header->api_version, 16);
  EXPECT_EQ(header->correlation_id, 1234);
  EXPECT_EQ(header->client_id, std::nullopt);
  auto back = decode_request(header->api_key, header->api_version, r.rest());
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(sample_fetch_request(), std::get<raft::FetchRequest>(*back));

  auto response = encode_response(sample_fetch_response(), 16);
  ASSERT_TRUE(response.ok());
  const Bytes response_frame = encode_response_frame(*response, 1234);
  ByteReader rr(ByteView(response_frame).subspan(4));
  auto correlation = wire::decode_response_header(rr, 1, 16);
  ASSERT_TRUE(correlation.ok());
  EXPECT_EQ(*correlation, 1234);
  auto decoded = decode_response(1, 16, rr.rest());
  ASSERT_TRUE(decoded.ok());
  expect_same(sample_fetch_response(), std::get<raft::FetchResponse>(*decoded));
}

// ---- Entries <-> batches -----------------------------------------------------------------------------

TEST(RaftWireRecords, MixedEpochsAndKindsBecomeOneBatchPerRun) {
  const std::vector<LogEntry> entries = mixed_entries();
  auto encoded = encode_entries(entries, RecordEncoding{.max_bytes = SIZE_MAX, .timestamp_ms = 1700000000000});
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  EXPECT_EQ(encoded->entry_count, entries.size());

  auto split = wire::split_batches(ByteView(encoded->records));
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->trailing_bytes, 0u);
  ASSERT_EQ(split->batches.size(), 5u);
  const std::int64_t bases[] = {10, 11, 14, 15, 17};
  const std::int32_t epochs[] = {3, 3, 4, 4, 5};
  const bool control[] = {true, false, true, false, false};
  const std::int32_t counts[] = {1, 3, 1, 2, 1};
  for (std::size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    auto h = wire::parse_batch_header(split->batches[i]);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->base_offset, bases[i]);
    EXPECT_EQ(h->partition_leader_epoch, epochs[i]);
    EXPECT_EQ(h->is_control(), control[i]);
    EXPECT_EQ((h->attributes & 0x20) != 0, control[i]);
    EXPECT_FALSE(h->is_transactional());
    EXPECT_EQ(h->compression(), wire::Compression::none);
    EXPECT_EQ(h->record_count, counts[i]);
    EXPECT_EQ(h->last_offset_delta, counts[i] - 1);
    EXPECT_EQ(h->producer_id, -1);
    EXPECT_EQ(h->base_timestamp, 1700000000000);
    EXPECT_TRUE(wire::batch_crc_ok(split->batches[i]));
  }

  // The first control record, byte for byte: key int16 version 0 + int16 type 2 (LEADER_CHANGE);
  // value LeaderChangeMessage v0 (flexible): Version, LeaderId, Voters, GrantingVoters.
  auto records = wire::decode_records(split->batches[0]);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_BYTES(*(*records)[0].key, (Bytes{0x00, 0x00, 0x00, 0x02}));
  EXPECT_BYTES(*(*records)[0].value, concat({{0x00, 0x00}, be32(1),                              // Version, LeaderId
                                             {0x04}, be32(1), {0x00}, be32(2), {0x00}, be32(3), {0x00},  // Voters
                                             {0x03}, be32(1), {0x00}, be32(2), {0x00},                // GrantingVoters
                                             {0x00}}));
  // Data records: null key, the payload as value.
  auto data = wire::decode_records(split->batches[1]);
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->size(), 3u);
  EXPECT_FALSE((*data)[0].key.has_value());
  EXPECT_EQ(*(*data)[0].value, text("a"));
  EXPECT_EQ((*data)[2].offset, 13);
  EXPECT_TRUE((*data)[2].value->empty());

  auto back = decode_entries(ByteView(encoded->records));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, entries);
}

TEST(RaftWireRecords, EmptyRecordsAreNoEntries) {
  auto encoded = encode_entries({});
  ASSERT_TRUE(encoded.ok());
  EXPECT_TRUE(encoded->records.empty());
  EXPECT_EQ(encoded->entry_count, 0u);
  auto back = decode_entries(ByteView());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->empty());
}

TEST(RaftWireRecords, KafkaStyleBatchesDecode) {
  // A batch shaped the way Kafka's leader writes it, built with the batch code directly: a data batch
  // with snappy compression and a control batch whose key is version 0, type 2.
  std::vector<wire::Record> data(2);
  data[0].offset = 0;
  data[0].value = text("first");
  data[1].offset = 1;
  data[1].value = text("second");
  wire::BatchOptions data_options;
  data_options.compression = wire::Compression::snappy;
  data_options.base_offset = 0;
  data_options.partition_leader_epoch = 1;
  auto data_batch = wire::encode_batch(data, data_options);
  ASSERT_TRUE(data_batch.ok());

  rec::LeaderChangeMessage change;
  change.leader_id = 3;
  change.voters.emplace_back().voter_id = 3;
  change.granting_voters.emplace_back().voter_id = 3;
  std::vector<wire::Record> control(1);
  control[0].offset = 2;
  control[0].key = encode_control_key(ControlRecordType::leader_change);
  control[0].value = encode_control_value(change);
  wire::BatchOptions control_options;
  control_options.control = true;
  control_options.base_offset = 2;
  control_options.partition_leader_epoch = 2;
  auto control_batch = wire::encode_batch(control, control_options);
  ASSERT_TRUE(control_batch.ok());

  auto back = decode_entries(ByteView(concat({*data_batch, *control_batch})));
  ASSERT_TRUE(back.ok()) << back.error().message;
  const std::vector<LogEntry> expected = {data_entry(0, 1, text("first")), data_entry(1, 1, text("second")),
                                          leader_change_entry(2, 2, 3, {3}, {3})};
  EXPECT_EQ(*back, expected);
}

// ---- Malformed input ---------------------------------------------------------------------------------

template <class W>
Bytes encoded(const W& w, std::int16_t version) {
  ByteWriter bw;
  w.encode(bw, version);
  return bw.take();
}

TEST(RaftWireMalformed, WrongTopicOrPartitionsAreRefused) {
  msg::VoteRequest good = to_wire(sample_vote_request());
  ASSERT_TRUE(from_wire(good).ok());

  msg::VoteRequest wrong_topic = good;
  wrong_topic.topics[0].topic_name = "__consumer_offsets";
  msg::VoteRequest no_topics = good;
  no_topics.topics.clear();
  msg::VoteRequest two_topics = good;
  two_topics.topics.push_back(good.topics[0]);
  msg::VoteRequest two_partitions = good;
  two_partitions.topics[0].partitions.push_back(good.topics[0].partitions[0]);
  two_partitions.topics[0].partitions[1].partition_index = 1;
  msg::VoteRequest no_partitions = good;
  no_partitions.topics[0].partitions.clear();
  msg::VoteRequest partition_one = good;
  partition_one.topics[0].partitions[0].partition_index = 1;
  for (const auto* bad : {&wrong_topic, &no_topics, &two_topics, &two_partitions, &no_partitions, &partition_one}) {
    auto r = from_wire(*bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    // Also through the bytes path.
    auto decoded = decode_request(52, 0, ByteView(encoded(*bad, 0)));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().kind, ErrorKind::invalid_argument);
  }

  // Fetch is matched by topic id, as Kafka's raft client does.
  msg::FetchRequest fetch = to_wire(sample_fetch_request());
  fetch.topics[0].topic_id[15] = 2;
  EXPECT_FALSE(from_wire(fetch).ok());
  auto fetch_response = to_wire(sample_fetch_response());
  ASSERT_TRUE(fetch_response.ok());
  fetch_response->responses[0].partitions.push_back(fetch_response->responses[0].partitions[0]);
  EXPECT_FALSE(from_wire(*fetch_response).ok());

  msg::FetchSnapshotRequest snapshot = to_wire(sample_snapshot_request());
  snapshot.topics[0].name = "other";
  EXPECT_FALSE(from_wire(snapshot).ok());
  msg::BeginQuorumEpochResponse begin = to_wire(sample_begin_response());
  begin.topics[0].partitions[0].partition_index = 3;
  EXPECT_FALSE(from_wire(begin).ok());
  msg::EndQuorumEpochRequest end = to_wire(sample_end_request());
  end.topics.clear();
  EXPECT_FALSE(from_wire(end).ok());
}

TEST(RaftWireMalformed, RequestValuesKafkaRefusesAreRefused) {
  raft::VoteRequest stale_log = sample_vote_request();
  stale_log.last_offset_epoch = stale_log.candidate_epoch;  // the log cannot hold the candidate's epoch
  EXPECT_FALSE(from_wire(to_wire(stale_log)).ok());
  raft::VoteRequest negative = sample_vote_request();
  negative.last_offset = -1;
  EXPECT_FALSE(from_wire(to_wire(negative)).ok());

  raft::FetchRequest fetch = sample_fetch_request();
  fetch.fetch_offset = -5;
  EXPECT_FALSE(from_wire(to_wire(fetch)).ok());
  fetch = sample_fetch_request();
  fetch.last_fetched_epoch = fetch.current_leader_epoch + 1;
  EXPECT_FALSE(from_wire(to_wire(fetch)).ok());

  raft::BeginQuorumEpochRequest begin = sample_begin_request();
  begin.leader_epoch = -1;
  EXPECT_FALSE(from_wire(to_wire(begin)).ok());
}

TEST(RaftWireMalformed, TopLevelErrorsAndUnknownCodes) {
  // Kafka refuses a whole request with a top-level error and no topics.
  for (std::int16_t key : {52, 53, 54, 1, 59}) {
    SCOPED_TRACE(key);
    auto body = encode_error_response(key, raft_request_version(key), error_to_wire(ErrorCode::inconsistent_cluster_id));
    ASSERT_TRUE(body.ok());
    auto r = decode_response(key, raft_request_version(key), ByteView(body->body));
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::visit(
        [](const auto& m) {
          if constexpr (requires { m.error_code; }) {
            EXPECT_EQ(m.error_code, ErrorCode::inconsistent_cluster_id);
          }
        },
        *r);
  }
  auto vote = decode_response(52, 0, ByteView(encode_error_response(52, 0, 42)->body));
  ASSERT_TRUE(vote.ok());
  EXPECT_EQ(std::get<raft::VoteResponse>(*vote).leader_epoch, raft::kNoEpoch);
  EXPECT_FALSE(std::get<raft::VoteResponse>(*vote).vote_granted);

  // Codes the core knows pass 1:1; others (UNKNOWN_SERVER_ERROR, UNSUPPORTED_VERSION, ...) mean "retry".
  EXPECT_EQ(error_from_wire(74), ErrorCode::fenced_leader_epoch);
  EXPECT_EQ(error_from_wire(0), ErrorCode::none);
  EXPECT_EQ(error_from_wire(-1), ErrorCode::broker_not_available);
  EXPECT_EQ(error_from_wire(kUnsupportedVersion), ErrorCode::broker_not_available);
  EXPECT_EQ(error_from_wire(13), ErrorCode::broker_not_available);
  msg::VoteResponse odd = to_wire(sample_vote_response());
  odd.topics[0].partitions[0].error_code = 31;  // CLUSTER_AUTHORIZATION_FAILED
  EXPECT_EQ(from_wire(odd)->error_code, ErrorCode::broker_not_available);
}

TEST(RaftWireMalformed, UnsupportedKeysVersionsAndDirections) {
  auto body = encode_request(sample_vote_request());
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(decode_request(52, 1, ByteView(body->body)).error().kind, ErrorKind::unsupported);
  EXPECT_EQ(decode_request(0, 0, ByteView(body->body)).error().kind, ErrorKind::unsupported);
  EXPECT_EQ(decode_request(1, 12, ByteView(body->body)).error().kind, ErrorKind::unsupported);
  EXPECT_EQ(decode_response(55, 1, ByteView(body->body)).error().kind, ErrorKind::unsupported);
  EXPECT_FALSE(encode_request(sample_vote_response()).ok());
  EXPECT_FALSE(encode_response(sample_vote_request(), 0).ok());
  EXPECT_EQ(encode_response(sample_fetch_response(), 11).error().kind, ErrorKind::unsupported);
}

TEST(RaftWireMalformed, EveryTruncatedBodyAndTrailingBytesAreRefused) {
  for (const raft::Message& request : sample_requests()) {
    SCOPED_TRACE(raft::message_name(request));
    auto body = encode_request(request);
    ASSERT_TRUE(body.ok());
    for (std::size_t n = 0; n < body->body.size(); ++n) {
      auto r = decode_request(body->api_key, body->api_version, ByteView(body->body).first(n));
      ASSERT_FALSE(r.ok()) << "prefix " << n;
      EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
    }
    Bytes longer = body->body;
    longer.push_back(0);
    EXPECT_EQ(decode_request(body->api_key, body->api_version, ByteView(longer)).error().kind, ErrorKind::corrupt);
  }
  for (const raft::Message& response : sample_responses()) {
    SCOPED_TRACE(raft::message_name(response));
    const std::int16_t key = api_key_of(response);
    auto body = encode_response(response, raft_request_version(key));
    ASSERT_TRUE(body.ok());
    for (std::size_t n = 0; n < body->body.size(); ++n)
      ASSERT_FALSE(decode_response(key, body->api_version, ByteView(body->body).first(n)).ok()) << "prefix " << n;
  }
}

Bytes mixed_records() {
  auto encoded = encode_entries(mixed_entries());
  EXPECT_TRUE(encoded.ok());
  return encoded->records;
}

TEST(RaftWireMalformed, TruncatedRecordsGiveWholeBatchesOrAnError) {
  const Bytes records = mixed_records();
  const std::vector<std::size_t> ends = batch_ends(records);
  const std::vector<LogEntry> all = mixed_entries();
  const std::size_t entries_through[] = {1, 4, 5, 7, 8};  // entries in batches 0..i
  for (std::size_t n = 1; n < records.size(); ++n) {
    auto r = decode_entries(ByteView(records).first(n));
    std::size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= n) ++whole;
    if (whole == 0) {
      // Not even one whole batch: nothing usable, an error.
      ASSERT_FALSE(r.ok()) << "prefix " << n;
      EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
    } else {
      // A partial trailing batch is dropped, as Kafka's readers drop it.
      ASSERT_TRUE(r.ok()) << "prefix " << n << ": " << r.error().message;
      const std::vector<LogEntry> expected(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(entries_through[whole - 1]));
      ASSERT_EQ(*r, expected) << "prefix " << n;
    }
  }
}

TEST(RaftWireMalformed, EveryFlippedByteInsideACrcIsCaught) {
  const Bytes records = mixed_records();
  const std::vector<std::size_t> ends = batch_ends(records);
  std::size_t start = 0;
  for (std::size_t end : ends) {
    // Every byte the CRC covers: attributes to the end of the batch.
    for (std::size_t i = start + wire::kBatchAttributesOffset; i < end; ++i) {
      Bytes bad = records;
      bad[i] ^= 0x40;
      auto r = decode_entries(ByteView(bad));
      ASSERT_FALSE(r.ok()) << "byte " << i;
      EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
    }
    start = end;
  }
  // The stored CRC itself.
  Bytes bad = records;
  bad[wire::kBatchCrcOffset] ^= 1;
  EXPECT_NE(decode_entries(ByteView(bad)).error().message.find("CRC"), std::string::npos);
}

Bytes batch_of(std::vector<wire::Record> records, const wire::BatchOptions& options) {
  auto b = wire::encode_batch(records, options);
  EXPECT_TRUE(b.ok());
  return *b;
}

wire::Record data_record(std::int64_t offset, std::string_view value) {
  wire::Record r;
  r.offset = offset;
  r.value = text(value);
  return r;
}

wire::BatchOptions options_at(std::int64_t base, std::int32_t epoch, bool control = false) {
  wire::BatchOptions o;
  o.base_offset = base;
  o.partition_leader_epoch = epoch;
  o.control = control;
  return o;
}

TEST(RaftWireMalformed, OffsetsEpochsAndControlRecordsAreChecked) {
  const Bytes b10 = batch_of({data_record(10, "x")}, options_at(10, 1));
  const Bytes b11 = batch_of({data_record(11, "y")}, options_at(11, 1));
  const Bytes b12 = batch_of({data_record(12, "z")}, options_at(12, 1));
  ASSERT_TRUE(decode_entries(ByteView(concat({b10, b11, b12}))).ok());
  // A gap between batches, an overlap, a batch out of order.
  EXPECT_FALSE(decode_entries(ByteView(concat({b10, b12}))).ok());
  EXPECT_FALSE(decode_entries(ByteView(concat({b10, b10}))).ok());
  EXPECT_FALSE(decode_entries(ByteView(concat({b11, b10}))).ok());
  // A gap inside a batch (a compacted batch: offsets 0 and 2 in two records).
  EXPECT_FALSE(decode_entries(ByteView(batch_of({data_record(0, "a"), data_record(2, "b")}, options_at(0, 1)))).ok());
  // Epochs going back.
  EXPECT_FALSE(
      decode_entries(ByteView(concat({batch_of({data_record(0, "a")}, options_at(0, 2)), batch_of({data_record(1, "b")}, options_at(1, 1))})))
          .ok());
  // No leader epoch.
  EXPECT_FALSE(decode_entries(ByteView(batch_of({data_record(0, "a")}, options_at(0, -1)))).ok());
  // A null value.
  wire::Record tombstone;
  tombstone.offset = 0;
  EXPECT_FALSE(decode_entries(ByteView(batch_of({tombstone}, options_at(0, 1)))).ok());
  // Transactional batches never belong to a Raft log.
  wire::BatchOptions txn = options_at(0, 1);
  txn.transactional = true;
  txn.producer_id = 5;
  txn.producer_epoch = 0;
  EXPECT_FALSE(decode_entries(ByteView(batch_of({data_record(0, "a")}, txn))).ok());

  // Control records other than LEADER_CHANGE, or not decoding as one.
  wire::Record commit_marker;
  commit_marker.offset = 0;
  commit_marker.key = Bytes{0, 0, 0, 1};  // type 1 = COMMIT
  commit_marker.value = Bytes{0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(decode_entries(ByteView(batch_of({commit_marker}, options_at(0, 1, true)))).ok());
  wire::Record snapshot_header;
  snapshot_header.offset = 0;
  snapshot_header.key = encode_control_key(ControlRecordType::snapshot_header);
  snapshot_header.value = encode_control_value(rec::SnapshotHeaderRecord{});
  EXPECT_FALSE(decode_entries(ByteView(batch_of({snapshot_header}, options_at(0, 1, true)))).ok());
  wire::Record garbage_change;
  garbage_change.offset = 0;
  garbage_change.key = encode_control_key(ControlRecordType::leader_change);
  garbage_change.value = Bytes{0xff};
  EXPECT_FALSE(decode_entries(ByteView(batch_of({garbage_change}, options_at(0, 1, true)))).ok());

  // A batch header with a record count that disagrees with its last offset delta.
  Bytes miscounted = batch_of({data_record(0, "a"), data_record(1, "b")}, options_at(0, 1));
  miscounted[60] = 3;  // recordCount low byte (CRC-covered: caught either way, never a crash)
  EXPECT_FALSE(decode_entries(ByteView(miscounted)).ok());

  // Garbage that is not a batch at all.
  EXPECT_FALSE(decode_entries(ByteView(payload(200, 0))).ok());
}

TEST(RaftWireMalformed, FetchResponseWithBadRecordsIsRefused) {
  auto w = to_wire(sample_fetch_response());
  ASSERT_TRUE(w.ok());
  Bytes& records = *w->responses[0].partitions[0].records;
  records[records.size() - 1] ^= 0x01;
  auto r = from_wire(*w);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
}

TEST(RaftWireMalformed, UnencodableEntriesAreRefused) {
  EXPECT_FALSE(encode_entries({data_entry(0, 1, text("a")), data_entry(2, 1, text("b"))}).ok());   // gap
  EXPECT_FALSE(encode_entries({data_entry(0, 2, text("a")), data_entry(1, 1, text("b"))}).ok());   // epoch back
  EXPECT_FALSE(encode_entries({data_entry(-1, 1, text("a"))}).ok());                               // negative
  EXPECT_FALSE(encode_entries({LogEntry{0, 1, EntryKind::leader_change, Bytes{1, 2, 3}}}).ok());  // not a LeaderChange
  raft::FetchResponse response = sample_fetch_response();
  response.records.push_back(data_entry(100, 5, text("far")));
  EXPECT_FALSE(to_wire(response).ok());
  EXPECT_FALSE(encode_response(response, kFetchVersion).ok());
}

// Random damage must give an error value or well-formed entries, never a crash. The CRC is re-sealed
// after each mutation so that the structural checks behind it are reached too.
void reseal_crcs(Bytes& records) {
  std::size_t pos = 0;
  while (records.size() - pos >= wire::kBatchHeaderSize) {
    auto h = wire::parse_batch_header(ByteView(records).subspan(pos));
    if (!h.ok()) return;
    const std::size_t total = h->total_size();
    const std::uint32_t crc = crc32c(ByteView(records).subspan(pos + wire::kBatchAttributesOffset, total - wire::kBatchAttributesOffset));
    for (int i = 0; i < 4; ++i) records[pos + wire::kBatchCrcOffset + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
    pos += total;
  }
}

TEST(RaftWireMalformed, RandomDamageNeverCrashes) {
  std::mt19937 rng(20261202);
  const Bytes records = mixed_records();
  std::size_t accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    Bytes bad = records;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<std::uint8_t>(rng());
    if (round % 2 == 0) reseal_crcs(bad);
    auto r = decode_entries(ByteView(bad));
    if (!r.ok()) continue;
    ++accepted;
    // Whatever is accepted obeys the log's rules.
    for (std::size_t i = 1; i < r->size(); ++i) {
      ASSERT_EQ((*r)[i].offset, (*r)[i - 1].offset + 1);
      ASSERT_GE((*r)[i].epoch, (*r)[i - 1].epoch);
    }
    for (const LogEntry& e : *r) {
      raft::LeaderChange change;
      if (e.kind == EntryKind::leader_change) {
        ASSERT_TRUE(raft::decode_leader_change(e.payload, change));
      }
    }
  }
  // Most damage is refused; some (a changed payload byte, re-sealed) is indistinguishable from data.
  EXPECT_LT(accepted, 3000u);

  auto body = encode_response(sample_fetch_response(), kFetchVersion);
  ASSERT_TRUE(body.ok());
  for (int round = 0; round < 3000; ++round) {
    Bytes bad = body->body;
    bad[rng() % bad.size()] = static_cast<std::uint8_t>(rng());
    (void)decode_response(1, kFetchVersion, ByteView(bad));
  }
}

// ---- The size budget ----------------------------------------------------------------------------------

TEST(RaftWireRecords, BudgetKeepsWholeBatchesAndAtLeastOneEntry) {
  std::vector<LogEntry> entries;
  entries.push_back(leader_change_entry(0, 1, 1, {1, 2, 3}, {1, 2}));
  for (std::int64_t i = 1; i < 60; ++i) entries.push_back(data_entry(i, i < 30 ? 1 : 2, payload(100, static_cast<std::uint8_t>(i))));
  auto all = encode_entries(entries);
  ASSERT_TRUE(all.ok());
  const std::size_t full = all->records.size();

  for (std::size_t budget : {std::size_t{0}, std::size_t{1}, std::size_t{61}, std::size_t{150}, std::size_t{400},
                             std::size_t{1000}, std::size_t{3333}, full - 1, full, full + 1000}) {
    SCOPED_TRACE(budget);
    auto part = encode_entries(entries, RecordEncoding{.max_bytes = budget});
    ASSERT_TRUE(part.ok());
    ASSERT_GE(part->entry_count, 1u);
    if (part->entry_count > 1) {
      EXPECT_LE(part->records.size(), budget);
    }
    // Whole batches only: they split without trailing bytes and decode to exactly the leading entries.
    auto split = wire::split_batches(ByteView(part->records));
    ASSERT_TRUE(split.ok());
    EXPECT_EQ(split->trailing_bytes, 0u);
    auto back = decode_entries(ByteView(part->records));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, std::vector<LogEntry>(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(part->entry_count)));
    // And no more would have fitted: one more entry goes over the budget.
    if (part->entry_count < entries.size()) {
      auto one_more = encode_entries(std::vector<LogEntry>(
          entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(part->entry_count + 1)));
      ASSERT_TRUE(one_more.ok());
      EXPECT_GT(one_more->records.size(), budget);
    } else {
      EXPECT_EQ(part->records.size(), full);
    }
  }
  // A single entry larger than the budget still goes (progress, KIP-74).
  auto big = encode_entries({data_entry(0, 1, payload(5000, 1)), data_entry(1, 1, text("x"))}, RecordEncoding{.max_bytes = 100});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->entry_count, 1u);

  // Through the Fetch response: the entries past the budget are left for the next fetch.
  raft::FetchResponse response = sample_fetch_response();
  response.records = entries;
  auto w = to_wire(response, RecordEncoding{.max_bytes = 1000});
  ASSERT_TRUE(w.ok());
  EXPECT_LE(w->responses[0].partitions[0].records->size(), 1000u);
  auto back = from_wire(*w);
  ASSERT_TRUE(back.ok());
  ASSERT_FALSE(back->records.empty());
  EXPECT_LT(back->records.size(), entries.size());
  EXPECT_EQ(back->records.front(), entries.front());
}


// ---- The core over Kafka's bytes ------------------------------------------------------------------

// Three cores whose every message travels as a Kafka frame: encoded, framed, header parsed, decoded.
class WireNetwork {
 public:
  WireNetwork() {
    for (raft::NodeId id : {1, 2, 3}) {
      raft::Config config;
      config.cluster_id = "wire-cluster";
      config.node_id = id;
      config.voters = {1, 2, 3};
      config.max_fetch_bytes = 600;  // small, so fetches are cut by the budget
      auto node = raft::RaftNode::create(config, {}, 7 + static_cast<std::uint64_t>(id), 0);
      EXPECT_TRUE(node.ok());
      nodes_.emplace(id, std::move(*node));
    }
  }

  void step(std::int64_t now) {
    for (auto& [id, node] : nodes_) node.tick(now);
    for (int round = 0; round < 50; ++round) {
      for (auto& [id, node] : nodes_) settle(id, node, now);
      if (in_flight_.empty()) break;
      std::deque<std::pair<raft::NodeId, raft::OutgoingMessage>> batch;
      batch.swap(in_flight_);
      for (auto& [from, out] : batch) deliver(now, from, out);
    }
  }

  raft::RaftNode* leader() {
    for (auto& [id, node] : nodes_)
      if (node.role() == raft::Role::leader) return &node;
    return nullptr;
  }
  std::map<raft::NodeId, raft::RaftNode>& nodes() { return nodes_; }
  const std::vector<LogEntry>& committed(raft::NodeId id) { return committed_[id]; }
  int frames() const { return frames_; }

 private:
  void settle(raft::NodeId id, raft::RaftNode& node, std::int64_t now) {
    while (node.has_ready()) {
      raft::Ready r = node.take_ready();
      for (auto& e : r.committed) committed_[id].push_back(std::move(e));
      for (auto& m : r.messages) in_flight_.emplace_back(id, std::move(m));
      if (r.write_id) {
        node.on_quorum_state_persisted(now, r.write_id);
        node.on_log_durable(now, r.write_id);
      }
    }
  }

  void deliver(std::int64_t now, raft::NodeId from, const raft::OutgoingMessage& out) {
    ++frames_;
    const std::int16_t key = api_key_of(out.message);
    Bytes frame;
    if (is_request(out.message)) {
      auto body = encode_request(out.message);
      ASSERT_TRUE(body.ok()) << body.error().message;
      frame = encode_request_frame(*body, out.correlation_id, "raft-" + std::to_string(from));
    } else {
      auto body = encode_response(out.message, raft_request_version(key));
      ASSERT_TRUE(body.ok()) << body.error().message;
      frame = encode_response_frame(*body, out.correlation_id);
    }
    ByteReader r(ByteView(frame).subspan(4));
    raft::Message message;
    std::int32_t correlation_id = 0;
    if (is_request(out.message)) {
      auto header = wire::decode_request_header(r);
      ASSERT_TRUE(header.ok());
      auto decoded = decode_request(header->api_key, header->api_version, r.rest());
      ASSERT_TRUE(decoded.ok()) << raft::message_name(out.message) << ": " << decoded.error().message;
      message = std::move(*decoded);
      correlation_id = header->correlation_id;
    } else {
      auto header = wire::decode_response_header(r, key, raft_request_version(key));
      ASSERT_TRUE(header.ok());
      auto decoded = decode_response(key, raft_request_version(key), r.rest());
      ASSERT_TRUE(decoded.ok()) << raft::message_name(out.message) << ": " << decoded.error().message;
      message = std::move(*decoded);
      correlation_id = *header;
    }
    EXPECT_EQ(correlation_id, out.correlation_id);
    nodes_.at(out.to).receive(now, from, message, correlation_id);
  }

  std::map<raft::NodeId, raft::RaftNode> nodes_;
  std::map<raft::NodeId, std::vector<LogEntry>> committed_;
  std::deque<std::pair<raft::NodeId, raft::OutgoingMessage>> in_flight_;
  int frames_ = 0;
};

TEST(RaftWireCore, ThreeCoresElectReplicateAndHandOverOverKafkasBytes) {
  WireNetwork net;
  std::int64_t now = 0;
  auto run_until = [&](auto done) {
    for (int i = 0; i < 2000 && !done(); ++i) net.step(now += 10);
    return done();
  };
  ASSERT_TRUE(run_until([&] { return net.leader() != nullptr; }));
  const raft::NodeId first_leader = net.leader()->id();
  std::vector<Bytes> proposed;
  for (int i = 0; i < 40; ++i) proposed.push_back(payload(50 + i, static_cast<std::uint8_t>(i)));
  ASSERT_EQ(net.leader()->propose(now, std::vector<Bytes>(proposed.begin(), proposed.begin() + 20)).error, ErrorCode::none);
  auto all_committed = [&](std::size_t count) {
    for (raft::NodeId id : {1, 2, 3}) {
      std::size_t data = 0;
      for (const LogEntry& e : net.committed(id)) data += e.kind == EntryKind::data;
      if (data < count) return false;
    }
    return true;
  };
  ASSERT_TRUE(run_until([&] { return all_committed(20); }));

  // Graceful hand-over: EndQuorumEpoch, a new election, BeginQuorumEpoch, all over the wire.
  net.nodes().at(first_leader).resign(now);
  ASSERT_TRUE(run_until([&] { return net.leader() != nullptr && net.leader()->id() != first_leader; }));
  ASSERT_EQ(net.leader()->propose(now, std::vector<Bytes>(proposed.begin() + 20, proposed.end())).error, ErrorCode::none);
  ASSERT_TRUE(run_until([&] { return all_committed(40); }));

  // Every node applied the same log, leader changes included, and the data is what was proposed.
  const std::vector<LogEntry>& reference = net.committed(1);
  std::vector<Bytes> data;
  std::size_t leader_changes = 0;
  for (const LogEntry& e : reference) {
    if (e.kind == EntryKind::data) data.push_back(e.payload);
    leader_changes += e.kind == EntryKind::leader_change;
  }
  EXPECT_EQ(data, proposed);
  EXPECT_GE(leader_changes, 2u);
  for (raft::NodeId id : {2, 3}) {
    const auto& other = net.committed(id);
    const std::size_t n = std::min(other.size(), reference.size());
    EXPECT_EQ(std::vector<LogEntry>(other.begin(), other.begin() + static_cast<std::ptrdiff_t>(n)),
              std::vector<LogEntry>(reference.begin(), reference.begin() + static_cast<std::ptrdiff_t>(n)));
  }
  EXPECT_GT(net.frames(), 20);
}

}  // namespace
}  // namespace bulwark::cluster
