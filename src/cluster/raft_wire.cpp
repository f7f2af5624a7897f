#include "cluster/raft_wire.h"

#include <variant>

#include "cluster/records.h"
#include "wire/generated/api_table.h"
#include "wire/protocol.h"
#include "wire/record_batch.h"

namespace bulwark::cluster {

namespace {

Error refused(std::string_view what, const std::string& why) {
  return make_error(ErrorKind::invalid_argument, std::string(what) + ": " + why);
}

Error corrupt(const std::string& why) { return make_error(ErrorKind::corrupt, why); }

// ---- The one partition -----------------------------------------------------------------------------

// The single partition of a request or response, or why it is not exactly __cluster_metadata-0.
template <class Topic, class TopicOk, class IndexOf>
auto single_partition(std::string_view what, const std::vector<Topic>& topics, TopicOk topic_ok, IndexOf index_of)
    -> Result<const typename decltype(Topic::partitions)::value_type*> {
  if (topics.size() != 1)
    return refused(what, std::to_string(topics.size()) + " topics, expected exactly one (__cluster_metadata)");
  if (!topic_ok(topics[0])) return refused(what, "the topic is not __cluster_metadata");
  const auto& partitions = topics[0].partitions;
  if (partitions.size() != 1)
    return refused(what, std::to_string(partitions.size()) + " partitions, expected exactly partition 0");
  if (index_of(partitions[0]) != kMetadataPartition)
    return refused(what, "partition " + std::to_string(index_of(partitions[0])) + ", expected partition 0");
  return &partitions[0];
}

template <class Topic>
bool named_metadata_topic(const Topic& topic) {
  return topic.topic_name == kMetadataTopicName;
}

std::string cluster_id_from_wire(const std::optional<std::string>& id) { return id.value_or(std::string()); }

// Adds the one topic (`__cluster_metadata`, by name) and its partition 0 to a KRaft message.
template <class Message>
auto& add_metadata_partition(Message& w) {
  auto& topic = w.topics.emplace_back();
  topic.topic_name = std::string(kMetadataTopicName);
  auto& partition = topic.partitions.emplace_back();
  partition.partition_index = kMetadataPartition;
  return partition;
}

// BeginQuorumEpoch and EndQuorumEpoch answer in the same shape: an error, the leader and its epoch.
template <class Wire, class Raft>
Wire epoch_response_to_wire(const Raft& response) {
  Wire w;
  auto& p = add_metadata_partition(w);
  p.error_code = error_to_wire(response.error_code);
  p.leader_id = response.leader_id;
  p.leader_epoch = response.leader_epoch;
  return w;
}

template <class Raft, class Wire>
Result<Raft> epoch_response_from_wire(const Wire& w, std::string_view what) {
  Raft r;
  if (w.error_code != 0) {
    r.error_code = error_from_wire(w.error_code);
    return r;
  }
  auto p = single_partition(what, w.topics, named_metadata_topic<typename Wire::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  r.error_code = error_from_wire((*p)->error_code);
  r.leader_id = (*p)->leader_id;
  r.leader_epoch = (*p)->leader_epoch;
  return r;
}

// ---- Record sizes (to keep whole batches within a budget) -------------------------------------------

std::size_t uvarint_size(std::uint64_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

std::size_t varint_size(std::int64_t v) {
  return uvarint_size((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

std::size_t nullable_size(const std::optional<Bytes>& b) {
  return b ? varint_size(static_cast<std::int64_t>(b->size())) + b->size() : varint_size(-1);
}

// One record as encode_batch writes it: timestamp delta 0, no headers.
std::size_t record_size(std::int64_t offset_delta, const wire::Record& r) {
  const std::size_t body = 1 + varint_size(0) + varint_size(offset_delta) + nullable_size(r.key) + nullable_size(r.value) +
                           varint_size(0);
  return varint_size(static_cast<std::int64_t>(body)) + body;
}

// ---- LEADER_CHANGE: the core's payload <-> Kafka's LeaderChangeMessage ------------------------------

Result<Bytes> leader_change_value(const raft::LogEntry& entry) {
  raft::LeaderChange change;
  if (!raft::decode_leader_change(entry.payload, change))
    return make_error(ErrorKind::invalid_argument,
                      "the leader_change entry at offset " + std::to_string(entry.offset) + " does not hold a LeaderChange");
  rec::LeaderChangeMessage message;
  message.version = 0;  // ControlRecordUtils.LEADER_CHANGE_CURRENT_VERSION
  message.leader_id = change.leader_id;
  for (raft::NodeId id : change.voters) message.voters.emplace_back().voter_id = id;
  for (raft::NodeId id : change.granting_voters) message.granting_voters.emplace_back().voter_id = id;
  return encode_control_value(ControlRecord{std::move(message)});
}

Result<Bytes> leader_change_payload(const wire::Record& record) {
  const std::string where = "the control record at offset " + std::to_string(record.offset);
  if (!record.key || !record.value) return corrupt(where + " has a null key or value");
  auto control = decode_control_record(ByteView(*record.key), ByteView(*record.value));
  if (!control.ok()) return corrupt(where + ": " + control.error().message);
  const auto* message = std::get_if<rec::LeaderChangeMessage>(&*control);
  if (!message) return corrupt(where + " is not LEADER_CHANGE, the only control record a Raft log holds");
  raft::LeaderChange change;
  change.leader_id = message->leader_id;
  for (const auto& voter : message->voters) change.voters.push_back(voter.voter_id);
  for (const auto& voter : message->granting_voters) change.granting_voters.push_back(voter.voter_id);
  return raft::encode_leader_change(change);
}

Status check_entries(const std::vector<raft::LogEntry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const raft::LogEntry& e = entries[i];
    if (e.offset < 0 || e.epoch < 0)
      return make_error(ErrorKind::invalid_argument, "entry " + std::to_string(i) + " has a negative offset or epoch");
    if (i > 0 && (e.offset != entries[i - 1].offset + 1 || e.epoch < entries[i - 1].epoch))
      return make_error(ErrorKind::invalid_argument,
                        "entries must have contiguous offsets and non-decreasing epochs (entry " + std::to_string(i) + ")");
  }
  return Status::success();
}

// Checks one whole batch and appends its entries.
Status decode_batch(ByteView batch, std::vector<raft::LogEntry>& out) {
  auto header = wire::parse_batch_header(batch);
  if (!header.ok()) return corrupt(header.error().message);
  const wire::BatchHeader& h = *header;
  const std::string where = "the record batch at offset " + std::to_string(h.base_offset);
  if (!wire::batch_crc_ok(batch)) return corrupt(where + " fails its CRC");
  if (h.base_offset < 0) return corrupt(where + " has a negative base offset");
  if (!out.empty() && h.base_offset != out.back().offset + 1)
    return corrupt(where + " does not follow offset " + std::to_string(out.back().offset));
  if (h.partition_leader_epoch < 0) return corrupt(where + " has no leader epoch");
  if (!out.empty() && h.partition_leader_epoch < out.back().epoch)
    return corrupt(where + " has epoch " + std::to_string(h.partition_leader_epoch) + ", lower than the batch before it");
  if (h.is_transactional()) return corrupt(where + " is transactional, which a Raft log never is");
  if (static_cast<std::int64_t>(h.record_count) != static_cast<std::int64_t>(h.last_offset_delta) + 1)
    return corrupt(where + " has gaps: " + std::to_string(h.record_count) + " records, last offset delta " +
                   std::to_string(h.last_offset_delta));
  auto records = wire::decode_records(batch);
  if (!records.ok()) return corrupt(where + ": " + records.error().message);
  if (records->size() != static_cast<std::size_t>(h.record_count))
    return corrupt(where + " holds " + std::to_string(records->size()) + " records, its header says " +
                   std::to_string(h.record_count));
  for (std::size_t i = 0; i < records->size(); ++i) {
    const wire::Record& r = (*records)[i];
    if (r.offset != h.base_offset + static_cast<std::int64_t>(i))
      return corrupt(where + ": record " + std::to_string(i) + " has offset " + std::to_string(r.offset));
    raft::LogEntry entry;
    entry.offset = r.offset;
    entry.epoch = h.partition_leader_epoch;
    if (h.is_control()) {
      auto payload = leader_change_payload(r);
      if (!payload.ok()) return payload.error();
      entry.kind = raft::EntryKind::leader_change;
      entry.payload = std::move(*payload);
    } else {
      if (!r.value) return corrupt(where + ": record " + std::to_string(i) + " has a null value");
      entry.kind = raft::EntryKind::data;
      entry.payload = *r.value;
    }
    out.push_back(std::move(entry));
  }
  return Status::success();
}

// ---- Bodies ------------------------------------------------------------------------------------------

template <class M>
Result<M> decode_body(ByteView body, std::int16_t version, std::string_view what) {
  ByteReader r(body);
  M message;
  if (!message.decode(r, version))
    return corrupt(std::string(what) + " v" + std::to_string(version) + " is truncated or malformed");
  if (!r.at_end())
    return corrupt(std::string(what) + " v" + std::to_string(version) + " has " + std::to_string(r.remaining()) +
                   " bytes after its end");
  return message;
}

template <class Wire>
Result<raft::Message> decode_as(ByteView body, std::int16_t version, std::string_view what) {
  auto wire_message = decode_body<Wire>(body, version, what);
  if (!wire_message.ok()) return wire_message.error();
  auto core = from_wire(*wire_message);
  if (!core.ok()) return core.error();
  return raft::Message(std::move(*core));
}

template <class M>
WireBody error_body(std::int16_t version, std::int16_t error) {
  M message;
  message.error_code = error;
  return WireBody{M::api_key, version, wire::encode_message(message, version)};
}

Error unsupported(std::int16_t api_key, std::int16_t api_version) {
  const wire::ApiInfo* info = wire::find_api(api_key);
  const std::string name = info ? std::string(info->name) : "API " + std::to_string(api_key);
  return make_error(ErrorKind::unsupported,
                    "the raft wire adapter does not speak " + name + " v" + std::to_string(api_version));
}

}  // namespace

// ---- Errors ------------------------------------------------------------------------------------------

bool is_core_error_code(std::int16_t code) {
  switch (static_cast<raft::ErrorCode>(code)) {
    case raft::ErrorCode::none:
    case raft::ErrorCode::offset_out_of_range:
    case raft::ErrorCode::not_leader_or_follower:
    case raft::ErrorCode::broker_not_available:
    case raft::ErrorCode::invalid_request:
    case raft::ErrorCode::fenced_leader_epoch:
    case raft::ErrorCode::unknown_leader_epoch:
    case raft::ErrorCode::inconsistent_voter_set:
    case raft::ErrorCode::snapshot_not_found:
    case raft::ErrorCode::position_out_of_range:
    case raft::ErrorCode::inconsistent_cluster_id:
      return true;
  }
  return false;
}

raft::ErrorCode error_from_wire(std::int16_t code) {
  return is_core_error_code(code) ? static_cast<raft::ErrorCode>(code) : raft::ErrorCode::broker_not_available;
}

// ---- Entries <-> batches -------------------------------------------------------------------------------

Result<EncodedEntries> encode_entries(const std::vector<raft::LogEntry>& entries, const RecordEncoding& encoding) {
  BULWARK_TRY(check_entries(entries));
  EncodedEntries out;
  std::size_t next = 0;
  bool budget_spent = false;
  while (next < entries.size() && !budget_spent) {
    const raft::LogEntry& first = entries[next];
    const bool control = first.kind == raft::EntryKind::leader_change;
    std::vector<wire::Record> records;
    std::size_t batch_size = wire::kBatchHeaderSize;
    for (std::size_t i = next; i < entries.size() && entries[i].epoch == first.epoch && entries[i].kind == first.kind; ++i) {
      wire::Record r;
      r.offset = entries[i].offset;
      r.timestamp = encoding.timestamp_ms;
      if (control) {
        r.key = encode_control_key(ControlRecordType::leader_change);
        auto value = leader_change_value(entries[i]);
        if (!value.ok()) return value.error();
        r.value = std::move(*value);
      } else {
        r.value = entries[i].payload;
      }
      const std::size_t size = record_size(static_cast<std::int64_t>(i - next), r);
      const bool very_first = out.entry_count == 0 && records.empty();
      if (!very_first && out.records.size() + batch_size + size > encoding.max_bytes) {
        budget_spent = true;
        break;
      }
      batch_size += size;
      records.push_back(std::move(r));
    }
    if (records.empty()) break;
    wire::BatchOptions options;
    options.base_offset = first.offset;
    options.control = control;
    options.partition_leader_epoch = first.epoch;
    auto batch = wire::encode_batch(records, options);
    if (!batch.ok()) return batch.error();
    if (batch->size() != batch_size)
      return make_error(ErrorKind::internal, "record batch size accounting is off: " + std::to_string(batch->size()) +
                                                 " bytes, expected " + std::to_string(batch_size));
    out.records.insert(out.records.end(), batch->begin(), batch->end());
    out.entry_count += records.size();
    next += records.size();
  }
  return out;
}

Result<std::vector<raft::LogEntry>> decode_entries(ByteView records) {
  std::vector<raft::LogEntry> out;
  if (records.empty()) return out;
  auto split = wire::split_batches(records);
  if (!split.ok()) return corrupt(split.error().message);
  if (split->batches.empty())
    return corrupt("the " + std::to_string(records.size()) + " record bytes hold no whole batch");
  for (ByteView batch : split->batches) BULWARK_TRY(decode_batch(batch, out));
  return out;
}

// ---- Vote ----------------------------------------------------------------------------------------------

msg::VoteRequest to_wire(const raft::VoteRequest& request) {
  msg::VoteRequest w;
  w.cluster_id = request.cluster_id;
  auto& p = add_metadata_partition(w);
  p.candidate_epoch = request.candidate_epoch;
  p.candidate_id = request.candidate_id;
  p.last_offset_epoch = request.last_offset_epoch;
  p.last_offset = request.last_offset;
  return w;
}

Result<raft::VoteRequest> from_wire(const msg::VoteRequest& w) {
  constexpr std::string_view what = "Vote request";
  auto p = single_partition(what, w.topics, named_metadata_topic<msg::VoteRequest::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  // Kafka's KafkaRaftClient.handleVoteRequest answers these with INVALID_REQUEST.
  if (q.candidate_id < 0 || q.last_offset < 0 || q.last_offset_epoch < 0 || q.last_offset_epoch >= q.candidate_epoch)
    return refused(what, "the candidate id, last offset or last offset epoch is invalid");
  raft::VoteRequest r;
  r.cluster_id = cluster_id_from_wire(w.cluster_id);
  r.candidate_epoch = q.candidate_epoch;
  r.candidate_id = q.candidate_id;
  r.last_offset_epoch = q.last_offset_epoch;
  r.last_offset = q.last_offset;
  return r;
}

msg::VoteResponse to_wire(const raft::VoteResponse& response) {
  msg::VoteResponse w;
  auto& p = add_metadata_partition(w);
  p.error_code = error_to_wire(response.error_code);
  p.leader_id = response.leader_id;
  p.leader_epoch = response.leader_epoch;
  p.vote_granted = response.vote_granted;
  return w;
}

Result<raft::VoteResponse> from_wire(const msg::VoteResponse& w) {
  raft::VoteResponse r;
  if (w.error_code != 0) {
    r.error_code = error_from_wire(w.error_code);
    return r;
  }
  auto p = single_partition("Vote response", w.topics, named_metadata_topic<msg::VoteResponse::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  r.error_code = error_from_wire((*p)->error_code);
  r.leader_id = (*p)->leader_id;
  r.leader_epoch = (*p)->leader_epoch;
  r.vote_granted = (*p)->vote_granted;
  return r;
}

// ---- BeginQuorumEpoch / EndQuorumEpoch -----------------------------------------------------------------

msg::BeginQuorumEpochRequest to_wire(const raft::BeginQuorumEpochRequest& request) {
  msg::BeginQuorumEpochRequest w;
  w.cluster_id = request.cluster_id;
  auto& p = add_metadata_partition(w);
  p.leader_id = request.leader_id;
  p.leader_epoch = request.leader_epoch;
  return w;
}

Result<raft::BeginQuorumEpochRequest> from_wire(const msg::BeginQuorumEpochRequest& w) {
  constexpr std::string_view what = "BeginQuorumEpoch request";
  auto p = single_partition(what, w.topics, named_metadata_topic<msg::BeginQuorumEpochRequest::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  if ((*p)->leader_id < 0 || (*p)->leader_epoch < 0) return refused(what, "the leader id or epoch is negative");
  raft::BeginQuorumEpochRequest r;
  r.cluster_id = cluster_id_from_wire(w.cluster_id);
  r.leader_id = (*p)->leader_id;
  r.leader_epoch = (*p)->leader_epoch;
  return r;
}

msg::BeginQuorumEpochResponse to_wire(const raft::BeginQuorumEpochResponse& response) {
  return epoch_response_to_wire<msg::BeginQuorumEpochResponse>(response);
}

Result<raft::BeginQuorumEpochResponse> from_wire(const msg::BeginQuorumEpochResponse& w) {
  return epoch_response_from_wire<raft::BeginQuorumEpochResponse>(w, "BeginQuorumEpoch response");
}

msg::EndQuorumEpochRequest to_wire(const raft::EndQuorumEpochRequest& request) {
  msg::EndQuorumEpochRequest w;
  w.cluster_id = request.cluster_id;
  auto& p = add_metadata_partition(w);
  p.leader_id = request.leader_id;
  p.leader_epoch = request.leader_epoch;
  p.preferred_successors = request.preferred_successors;
  return w;
}

Result<raft::EndQuorumEpochRequest> from_wire(const msg::EndQuorumEpochRequest& w) {
  constexpr std::string_view what = "EndQuorumEpoch request";
  auto p = single_partition(what, w.topics, named_metadata_topic<msg::EndQuorumEpochRequest::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  if ((*p)->leader_id < 0 || (*p)->leader_epoch < 0) return refused(what, "the leader id or epoch is negative");
  raft::EndQuorumEpochRequest r;
  r.cluster_id = cluster_id_from_wire(w.cluster_id);
  r.leader_id = (*p)->leader_id;
  r.leader_epoch = (*p)->leader_epoch;
  r.preferred_successors = (*p)->preferred_successors;
  return r;
}

msg::EndQuorumEpochResponse to_wire(const raft::EndQuorumEpochResponse& response) {
  return epoch_response_to_wire<msg::EndQuorumEpochResponse>(response);
}

Result<raft::EndQuorumEpochResponse> from_wire(const msg::EndQuorumEpochResponse& w) {
  return epoch_response_from_wire<raft::EndQuorumEpochResponse>(w, "EndQuorumEpoch response");
}

// ---- Fetch -----------------------------------------------------------------------------------------------

msg::FetchRequest to_wire(const raft::FetchRequest& request, std::int16_t version) {
  msg::FetchRequest w;
  w.cluster_id = request.cluster_id;
  if (version >= 15) {
    w.replica_state.replica_id = request.replica_id;
  } else {
    w.replica_id = request.replica_id;
  }
  w.max_wait_ms = request.max_wait_ms;
  w.min_bytes = 0;
  w.max_bytes = request.partition_max_bytes > 0 ? request.partition_max_bytes : kKafkaRaftMaxFetchBytes;
  w.isolation_level = 0;
  w.session_id = 0;
  w.session_epoch = -1;  // FINAL_EPOCH: a full fetch, no session
  auto& topic = w.topics.emplace_back();
  topic.topic = std::string(kMetadataTopicName);  // v0-12
  topic.topic_id = kMetadataTopicId;                // v13+
  auto& p = topic.partitions.emplace_back();
  p.partition = kMetadataPartition;
  p.current_leader_epoch = request.current_leader_epoch;
  p.fetch_offset = request.fetch_offset;
  p.last_fetched_epoch = request.last_fetched_epoch;
  p.log_start_offset = request.log_start_offset;
  p.partition_max_bytes = request.partition_max_bytes;
  return w;
}

Result<raft::FetchRequest> from_wire(const msg::FetchRequest& w) {
  constexpr std::string_view what = "Fetch request";
  // Kafka's raft client checks the topic id alone (RaftUtil.hasValidTopicPartition).
  auto p = single_partition(what, w.topics, [](const auto& t) { return t.topic_id == kMetadataTopicId; },
                            [](const auto& q) { return q.partition; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  // Kafka's KafkaRaftClient.handleFetchRequest answers these with INVALID_REQUEST.
  if (w.max_wait_ms < 0 || q.fetch_offset < 0 || q.last_fetched_epoch < 0 || q.last_fetched_epoch > q.current_leader_epoch)
    return refused(what, "the max wait, fetch offset or last fetched epoch is invalid");
  raft::FetchRequest r;
  r.cluster_id = cluster_id_from_wire(w.cluster_id);
  r.replica_id = w.replica_state.replica_id >= 0 ? w.replica_state.replica_id : w.replica_id;
  r.max_wait_ms = w.max_wait_ms;
  r.current_leader_epoch = q.current_leader_epoch;
  r.fetch_offset = q.fetch_offset;
  r.last_fetched_epoch = q.last_fetched_epoch;
  r.log_start_offset = q.log_start_offset;
  r.partition_max_bytes = q.partition_max_bytes;
  if (r.partition_max_bytes <= 0 || (w.max_bytes > 0 && w.max_bytes < r.partition_max_bytes))
    r.partition_max_bytes = w.max_bytes;
  return r;
}

Result<msg::FetchResponse> to_wire(const raft::FetchResponse& response, const RecordEncoding& encoding) {
  auto records = encode_entries(response.records, encoding);
  if (!records.ok()) return records.error();
  msg::FetchResponse w;
  w.error_code = 0;
  w.session_id = 0;
  auto& topic = w.responses.emplace_back();
  topic.topic = std::string(kMetadataTopicName);
  topic.topic_id = kMetadataTopicId;
  auto& p = topic.partitions.emplace_back();
  p.partition_index = kMetadataPartition;
  p.error_code = error_to_wire(response.error_code);
  p.high_watermark = response.high_watermark;
  p.log_start_offset = response.log_start_offset;
  p.diverging_epoch.epoch = response.diverging_epoch.epoch;
  p.diverging_epoch.end_offset = response.diverging_epoch.end_offset;
  p.current_leader.leader_id = response.current_leader.leader_id;
  p.current_leader.leader_epoch = response.current_leader.leader_epoch;
  p.snapshot_id.end_offset = response.snapshot_id.end_offset;
  p.snapshot_id.epoch = response.snapshot_id.epoch;
  p.records = std::move(records->records);
  return w;
}

Result<raft::FetchResponse> from_wire(const msg::FetchResponse& w) {
  raft::FetchResponse r;
  if (w.error_code != 0) {
    r.error_code = error_from_wire(w.error_code);
    return r;
  }
  auto p = single_partition("Fetch response", w.responses, [](const auto& t) { return t.topic_id == kMetadataTopicId; },
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  r.error_code = error_from_wire(q.error_code);
  r.high_watermark = q.high_watermark;
  r.log_start_offset = q.log_start_offset;
  r.diverging_epoch = raft::EpochEndOffset{q.diverging_epoch.epoch, q.diverging_epoch.end_offset};
  r.current_leader = raft::LeaderIdAndEpoch{q.current_leader.leader_id, q.current_leader.leader_epoch};
  r.snapshot_id = raft::SnapshotId{q.snapshot_id.end_offset, q.snapshot_id.epoch};
  if (q.records) {
    auto entries = decode_entries(ByteView(*q.records));
    if (!entries.ok()) return make_error(entries.error().kind, "Fetch response records: " + entries.error().message);
    r.records = std::move(*entries);
  }
  return r;
}

// ---- FetchSnapshot -----------------------------------------------------------------------------------------

msg::FetchSnapshotRequest to_wire(const raft::FetchSnapshotRequest& request) {
  msg::FetchSnapshotRequest w;
  w.cluster_id = request.cluster_id;
  w.replica_id = request.replica_id;
  w.max_bytes = request.max_bytes;
  auto& topic = w.topics.emplace_back();
  topic.name = std::string(kMetadataTopicName);
  auto& p = topic.partitions.emplace_back();
  p.partition = kMetadataPartition;
  p.current_leader_epoch = request.current_leader_epoch;
  p.snapshot_id.end_offset = request.snapshot_id.end_offset;
  p.snapshot_id.epoch = request.snapshot_id.epoch;
  p.position = request.position;
  return w;
}

Result<raft::FetchSnapshotRequest> from_wire(const msg::FetchSnapshotRequest& w) {
  auto p = single_partition("FetchSnapshot request", w.topics, [](const auto& t) { return t.name == kMetadataTopicName; },
                            [](const auto& q) { return q.partition; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  raft::FetchSnapshotRequest r;
  r.cluster_id = cluster_id_from_wire(w.cluster_id);
  r.replica_id = w.replica_id;
  r.max_bytes = w.max_bytes;
  r.current_leader_epoch = q.current_leader_epoch;
  r.snapshot_id = raft::SnapshotId{q.snapshot_id.end_offset, q.snapshot_id.epoch};
  r.position = q.position;
  return r;
}

msg::FetchSnapshotResponse to_wire(const raft::FetchSnapshotResponse& response) {
  msg::FetchSnapshotResponse w;
  auto& topic = w.topics.emplace_back();
  topic.name = std::string(kMetadataTopicName);
  auto& p = topic.partitions.emplace_back();
  p.index = kMetadataPartition;
  p.error_code = error_to_wire(response.error_code);
  p.snapshot_id.end_offset = response.snapshot_id.end_offset;
  p.snapshot_id.epoch = response.snapshot_id.epoch;
  p.current_leader.leader_id = response.current_leader.leader_id;
  p.current_leader.leader_epoch = response.current_leader.leader_epoch;
  p.size = response.size;
  p.position = response.position;
  p.unaligned_records = response.unaligned_records;
  return w;
}

Result<raft::FetchSnapshotResponse> from_wire(const msg::FetchSnapshotResponse& w) {
  raft::FetchSnapshotResponse r;
  if (w.error_code != 0) {
    r.error_code = error_from_wire(w.error_code);
    return r;
  }
  auto p = single_partition("FetchSnapshot response", w.topics, [](const auto& t) { return t.name == kMetadataTopicName; },
                            [](const auto& q) { return q.index; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  r.error_code = error_from_wire(q.error_code);
  r.snapshot_id = raft::SnapshotId{q.snapshot_id.end_offset, q.snapshot_id.epoch};
  r.current_leader = raft::LeaderIdAndEpoch{q.current_leader.leader_id, q.current_leader.leader_epoch};
  r.size = q.size;
  r.position = q.position;
  if (q.unaligned_records) r.unaligned_records = *q.unaligned_records;
  return r;
}

// ---- DescribeQuorum ----------------------------------------------------------------------------------------

namespace {

std::vector<msg::DescribeQuorumResponse::ReplicaState> replicas_to_wire(const std::vector<raft::ReplicaDescription>& in) {
  std::vector<msg::DescribeQuorumResponse::ReplicaState> out;
  for (const auto& d : in) {
    auto& s = out.emplace_back();
    s.replica_id = d.replica_id;
    s.log_end_offset = d.log_end_offset;
    s.last_fetch_timestamp = d.last_fetch_timestamp;
    s.last_caught_up_timestamp = d.last_caught_up_timestamp;
  }
  return out;
}

std::vector<raft::ReplicaDescription> replicas_from_wire(const std::vector<msg::DescribeQuorumResponse::ReplicaState>& in) {
  std::vector<raft::ReplicaDescription> out;
  for (const auto& s : in)
    out.push_back(raft::ReplicaDescription{s.replica_id, s.log_end_offset, s.last_fetch_timestamp, s.last_caught_up_timestamp});
  return out;
}

}  // namespace

msg::DescribeQuorumResponse to_wire(const raft::QuorumDescription& description) {
  msg::DescribeQuorumResponse w;
  auto& p = add_metadata_partition(w);
  p.error_code = error_to_wire(description.error_code);
  p.leader_id = description.leader_id;
  p.leader_epoch = description.leader_epoch;
  p.high_watermark = description.high_watermark;
  p.current_voters = replicas_to_wire(description.current_voters);
  p.observers = replicas_to_wire(description.observers);
  return w;
}

Result<raft::QuorumDescription> from_wire(const msg::DescribeQuorumResponse& w) {
  raft::QuorumDescription d;
  if (w.error_code != 0) {
    d.error_code = error_from_wire(w.error_code);
    return d;
  }
  auto p = single_partition("DescribeQuorum response", w.topics,
                            named_metadata_topic<msg::DescribeQuorumResponse::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  const auto& q = **p;
  d.error_code = error_from_wire(q.error_code);
  d.leader_id = q.leader_id;
  d.leader_epoch = q.leader_epoch;
  d.high_watermark = q.high_watermark;
  d.current_voters = replicas_from_wire(q.current_voters);
  d.observers = replicas_from_wire(q.observers);
  return d;
}

msg::DescribeQuorumRequest describe_quorum_request() {
  msg::DescribeQuorumRequest w;
  auto& topic = w.topics.emplace_back();
  topic.topic_name = std::string(kMetadataTopicName);
  topic.partitions.emplace_back().partition_index = kMetadataPartition;
  return w;
}

Status check_describe_quorum_request(const msg::DescribeQuorumRequest& request) {
  auto p = single_partition("DescribeQuorum request", request.topics,
                            named_metadata_topic<msg::DescribeQuorumRequest::TopicData>,
                            [](const auto& q) { return q.partition_index; });
  if (!p.ok()) return p.error();
  return Status::success();
}

msg::DescribeQuorumResponse describe_quorum_partition_error(const msg::DescribeQuorumRequest& request, std::int16_t error) {
  msg::DescribeQuorumResponse w;
  for (const auto& asked : request.topics) {
    auto& topic = w.topics.emplace_back();
    topic.topic_name = asked.topic_name;
    for (const auto& partition : asked.partitions) {
      auto& p = topic.partitions.emplace_back();
      p.partition_index = partition.partition_index;
      p.error_code = error;
    }
  }
  return w;
}

// ---- Bodies and frames -------------------------------------------------------------------------------------

namespace {

// The raft::Message alternatives in order, request then response per API.
constexpr std::int16_t kApiKeyByIndex[] = {
    msg::VoteRequest::api_key,      msg::VoteResponse::api_key,         msg::BeginQuorumEpochRequest::api_key,
    msg::BeginQuorumEpochResponse::api_key, msg::EndQuorumEpochRequest::api_key, msg::EndQuorumEpochResponse::api_key,
    msg::FetchRequest::api_key,     msg::FetchResponse::api_key,        msg::FetchSnapshotRequest::api_key,
    msg::FetchSnapshotResponse::api_key};
static_assert(std::size(kApiKeyByIndex) == std::variant_size_v<raft::Message>);

}  // namespace

std::int16_t api_key_of(const raft::Message& message) { return kApiKeyByIndex[message.index()]; }
bool is_request(const raft::Message& message) { return message.index() % 2 == 0; }

bool is_raft_api(std::int16_t api_key) { return raft_request_version(api_key) >= 0; }

std::int16_t raft_request_version(std::int16_t api_key) {
  switch (api_key) {
    case msg::VoteRequest::api_key: return kVoteVersion;
    case msg::BeginQuorumEpochRequest::api_key: return kBeginQuorumEpochVersion;
    case msg::EndQuorumEpochRequest::api_key: return kEndQuorumEpochVersion;
    case msg::FetchRequest::api_key: return kFetchVersion;
    case msg::FetchSnapshotRequest::api_key: return kFetchSnapshotVersion;
    default: return -1;
  }
}

bool raft_version_supported(std::int16_t api_key, std::int16_t api_version) {
  if (api_key == msg::FetchRequest::api_key) return api_version >= kMinFetchVersion && api_version <= kFetchVersion;
  if (api_key == msg::DescribeQuorumRequest::api_key)
    return api_version >= kMinDescribeQuorumVersion && api_version <= kDescribeQuorumVersion;
  return is_raft_api(api_key) && api_version == raft_request_version(api_key);
}

Result<WireBody> encode_request(const raft::Message& request) {
  const std::int16_t key = api_key_of(request);
  const std::int16_t version = raft_request_version(key);
  if (const auto* m = std::get_if<raft::VoteRequest>(&request)) return WireBody{key, version, wire::encode_message(to_wire(*m), version)};
  if (const auto* m = std::get_if<raft::BeginQuorumEpochRequest>(&request))
    return WireBody{key, version, wire::encode_message(to_wire(*m), version)};
  if (const auto* m = std::get_if<raft::EndQuorumEpochRequest>(&request))
    return WireBody{key, version, wire::encode_message(to_wire(*m), version)};
  if (const auto* m = std::get_if<raft::FetchRequest>(&request))
    return WireBody{key, version, wire::encode_message(to_wire(*m, version), version)};
  if (const auto* m = std::get_if<raft::FetchSnapshotRequest>(&request))
    return WireBody{key, version, wire::encode_message(to_wire(*m), version)};
  return make_error(ErrorKind::invalid_argument, std::string(raft::message_name(request)) + " is not a request");
}

Result<WireBody> encode_response(const raft::Message& response, std::int16_t api_version, const RecordEncoding& encoding) {
  const std::int16_t key = api_key_of(response);
  if (is_request(response))
    return make_error(ErrorKind::invalid_argument, std::string(raft::message_name(response)) + " is not a response");
  if (!raft_version_supported(key, api_version)) return unsupported(key, api_version);
  if (const auto* m = std::get_if<raft::VoteResponse>(&response))
    return WireBody{key, api_version, wire::encode_message(to_wire(*m), api_version)};
  if (const auto* m = std::get_if<raft::BeginQuorumEpochResponse>(&response))
    return WireBody{key, api_version, wire::encode_message(to_wire(*m), api_version)};
  if (const auto* m = std::get_if<raft::EndQuorumEpochResponse>(&response))
    return WireBody{key, api_version, wire::encode_message(to_wire(*m), api_version)};
  if (const auto* m = std::get_if<raft::FetchResponse>(&response)) {
    auto w = to_wire(*m, encoding);
    if (!w.ok()) return w.error();
    return WireBody{key, api_version, wire::encode_message(*w, api_version)};
  }
  const auto& m = std::get<raft::FetchSnapshotResponse>(response);
  return WireBody{key, api_version, wire::encode_message(to_wire(m), api_version)};
}

Result<raft::Message> decode_request(std::int16_t api_key, std::int16_t api_version, ByteView body) {
  if (!is_raft_api(api_key) || !raft_version_supported(api_key, api_version)) return unsupported(api_key, api_version);
  switch (api_key) {
    case msg::VoteRequest::api_key:
      return decode_as<msg::VoteRequest>(body, api_version, "Vote request");
    case msg::BeginQuorumEpochRequest::api_key:
      return decode_as<msg::BeginQuorumEpochRequest>(body, api_version,
                                                                                   "BeginQuorumEpoch request");
    case msg::EndQuorumEpochRequest::api_key:
      return decode_as<msg::EndQuorumEpochRequest>(body, api_version, "EndQuorumEpoch request");
    case msg::FetchRequest::api_key:
      return decode_as<msg::FetchRequest>(body, api_version, "Fetch request");
    default:
      return decode_as<msg::FetchSnapshotRequest>(body, api_version, "FetchSnapshot request");
  }
}

Result<raft::Message> decode_response(std::int16_t api_key, std::int16_t api_version, ByteView body) {
  if (!is_raft_api(api_key) || !raft_version_supported(api_key, api_version)) return unsupported(api_key, api_version);
  switch (api_key) {
    case msg::VoteResponse::api_key:
      return decode_as<msg::VoteResponse>(body, api_version, "Vote response");
    case msg::BeginQuorumEpochResponse::api_key:
      return decode_as<msg::BeginQuorumEpochResponse>(body, api_version,
                                                                                     "BeginQuorumEpoch response");
    case msg::EndQuorumEpochResponse::api_key:
      return decode_as<msg::EndQuorumEpochResponse>(body, api_version,
                                                                                 "EndQuorumEpoch response");
    case msg::FetchResponse::api_key:
      return decode_as<msg::FetchResponse>(body, api_version, "Fetch response");
    default:
      return decode_as<msg::FetchSnapshotResponse>(body, api_version,
                                                                               "FetchSnapshot response");
  }
}

Result<WireBody> encode_error_response(std::int16_t api_key, std::int16_t api_version, std::int16_t error) {
  if (!is_raft_api(api_key) || !raft_version_supported(api_key, api_version)) return unsupported(api_key, api_version);
  switch (api_key) {
    case msg::VoteResponse::api_key: return error_body<msg::VoteResponse>(api_version, error);
    case msg::BeginQuorumEpochResponse::api_key: return error_body<msg::BeginQuorumEpochResponse>(api_version, error);
    case msg::EndQuorumEpochResponse::api_key: return error_body<msg::EndQuorumEpochResponse>(api_version, error);
    case msg::FetchResponse::api_key: return error_body<msg::FetchResponse>(api_version, error);
    default: return error_body<msg::FetchSnapshotResponse>(api_version, error);
  }
}

Bytes encode_request_frame(const WireBody& request, std::int32_t correlation_id,
                           const std::optional<std::string>& client_id) {
  ByteWriter w;
  w.write_i32(0);
  wire::encode_request_header(w, wire::RequestHeader{request.api_key, request.api_version, correlation_id, client_id});
  w.write_bytes(ByteView(request.body));
  w.patch_u32(0, static_cast<std::uint32_t>(w.size() - 4));
  return w.take();
}

Bytes encode_response_frame(const WireBody& response, std::int32_t correlation_id) {
  ByteWriter w;
  w.write_i32(0);
  wire::encode_response_header(w, response.api_key, response.api_version, correlation_id);
  w.write_bytes(ByteView(response.body));
  w.patch_u32(0, static_cast<std::uint32_t>(w.size() - 4));
  return w.take();
}

}  // namespace bulwark::cluster
