// Transactions, the data path (docs/transactions.md, "Storage and the data path"): WriteTxnMarkers, the
// transaction coordinator's request to partition leaders to end a transaction with a COMMIT or ABORT
// control batch, and DescribeProducers, the producer state of partitions this node leads.
#include <algorithm>
#include <memory>

#include "base/log.h"
#include "broker/group_partitions.h"
#include "broker/replication_wait.h"
#include "broker/state.h"
#include "wire/generated/describe_producers.h"
#include "wire/generated/write_txn_markers.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;

namespace {

using MarkersResponse = wire::msg::WriteTxnMarkersResponse;
using MarkerPartitionResult = MarkersResponse::WritableTxnMarkerPartitionResult;

// Kafka answers WriteTxnMarkers once the markers are replicated (acks=all) or request.timeout.ms passed.
constexpr std::int32_t kMarkerTimeoutMs = 30'000;

// One marker appended on the leader: the high watermark that covers it, and what it ends.
struct PendingMarker {
  std::int64_t required_offset;
  std::int32_t min_insync;
  std::int64_t producer_id;
  std::int16_t producer_epoch;
  bool committed;
};

// The WriteTxnMarkers response, sent once every marker is replicated (ReplicationWait), as Produce with
// acks=all is.
class DelayedMarkers : public std::enable_shared_from_this<DelayedMarkers> {
 public:
  DelayedMarkers(BrokerState& state, const Call& call)
      : state_(state), header_(call.header), responder_(call.responder),
        wait_(std::make_shared<ReplicationWait>(state, call.ctx.loop)) {}

  MarkersResponse& response() { return response_; }
  void add(MarkerPartitionResult& out, std::shared_ptr<replication::Partition> partition, PendingMarker marker) {
    waiting_.push_back(Waiting{&out, partition->topic_partition(), marker});
    wait_->add(std::move(partition), marker.required_offset, marker.min_insync);
  }

  void start() {
    auto self = shared_from_this();
    wait_->start(std::chrono::milliseconds(kMarkerTimeoutMs),
                 [self](std::size_t i, KafkaError error) { self->settle(i, error); }, [self] { self->send(); });
  }

 private:
  struct Waiting {
    MarkerPartitionResult* out;
    storage::TopicPartition tp;
    PendingMarker marker;
  };

  // A replicated marker on __consumer_offsets: the group coordinator turns the producer's pending
  // transactional offsets into committed ones (or drops them).
  void settle(std::size_t index, KafkaError error) {
    const auto& w = waiting_[index];
    if (error != KafkaError::none) {
      w.out->error_code = code(error);
    } else if (w.tp.topic == kOffsetsTopic && state_.on_offsets_transaction_marker) {
      state_.on_offsets_transaction_marker(w.tp.partition, w.marker.producer_id, w.marker.producer_epoch,
                                           w.marker.committed);
    }
  }

  void send() {
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { response_.encode(w, header_.api_version); }));
  }

  BrokerState& state_;
  wire::RequestHeader header_;
  net::Responder responder_;
  MarkersResponse response_;
  std::shared_ptr<ReplicationWait> wait_;
  std::vector<Waiting> waiting_;  // per append of wait_, in order
};

// Appends one marker as leader; what the answer waits for, or nullopt with out's error set.
std::optional<PendingMarker> append_marker(BrokerState& state, const TopicInfo& topic, replication::Partition& partition,
                                           const wire::msg::WriteTxnMarkersRequest::WritableTxnMarker& marker,
                                           MarkerPartitionResult& out) {
  const storage::TopicPartition tp{topic.name, out.partition_index};
  const auto min_insync = state.min_insync_replicas(topic);
  if (partition.isr().size() < static_cast<std::size_t>(min_insync)) {
    out.error_code = code(KafkaError::not_enough_replicas);
    return std::nullopt;
  }
  const Bytes batch = storage::build_txn_marker_batch(
      marker.producer_id, marker.producer_epoch, {marker.transaction_result, marker.coordinator_epoch}, state.now_ms());
  storage::AppendOptions options;
  options.max_message_bytes = partition.log()->config().max_message_bytes;
  options.now_ms = state.now_ms();
  options.markers = true;
  auto appended = partition.append_as_leader(batch, options);
  if (!appended) {
    out.error_code = code(KafkaError::not_leader_or_follower);
    return std::nullopt;
  }
  if (!appended->result.ok()) {
    const auto& failure = appended->result.error();
    if (failure.code != storage::LogError::io)
      log::warn("transaction marker for producer {} on {}-{} refused: {}", marker.producer_id, tp.topic, tp.partition,
                failure.message);
    out.error_code = code(to_kafka_error(failure.code));
    return std::nullopt;
  }
  state.notifier.notify(tp);  // followers, and read_committed consumers waiting for the last stable offset
  return PendingMarker{appended->result->last_offset + 1, min_insync, marker.producer_id, marker.producer_epoch,
                       marker.transaction_result};
}

}  // namespace

void handle_write_txn_markers(BrokerState& state, Call& call) {
  wire::msg::WriteTxnMarkersRequest request;
  if (!decode_request(call, request)) return;
  const bool cluster_action = authorized_cluster(state, call, Operation::cluster_action);
  auto delayed = std::make_shared<DelayedMarkers>(state, call);
  auto& response = delayed->response();
  response.markers.resize(request.markers.size());
  for (std::size_t m = 0; m < request.markers.size(); ++m) {
    const auto& marker = request.markers[m];
    auto& marker_out = response.markers[m];
    marker_out.producer_id = marker.producer_id;
    marker_out.topics.resize(marker.topics.size());
    for (std::size_t t = 0; t < marker.topics.size(); ++t) {
      const auto& topic = marker.topics[t];
      auto& topic_out = marker_out.topics[t];
      topic_out.name = topic.name;
      auto info = state.topics->find(topic.name);
      topic_out.partitions.resize(topic.partition_indexes.size());
      for (std::size_t p = 0; p < topic.partition_indexes.size(); ++p) {
        auto& out = topic_out.partitions[p];
        out.partition_index = topic.partition_indexes[p];
        std::shared_ptr<replication::Partition> partition;
        if (!cluster_action) {
          out.error_code = code(KafkaError::cluster_authorization_failed);
        } else if (!(partition = state.hosted_partition(info, out.partition_index))) {
          out.error_code = code(state.lookup_error(info, out.partition_index).error);
        } else if (auto pending = append_marker(state, *info, *partition, marker, out)) {
          delayed->add(out, std::move(partition), *pending);
        }
      }
    }
  }
  delayed->start();
}

void handle_describe_producers(BrokerState& state, Call& call) {
  wire::msg::DescribeProducersRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeProducersResponse response;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    auto info = state.topics->find(topic.name);
    const bool may_read = authorized(state, call, Operation::read, ResourceType::topic, topic.name);
    for (const auto index : topic.partition_indexes) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = index;
      std::shared_ptr<replication::Partition> partition;
      if (!may_read) {
        out.error_code = code(KafkaError::topic_authorization_failed);
      } else if (!(partition = state.hosted_partition(info, index))) {
        auto missing = state.lookup_error(info, index);
        out.error_code = code(missing.error);
        out.error_message = missing.message;
      } else {
        for (const auto& [id, producer] : partition->log()->producer_states()) {
          auto& p = out.active_producers.emplace_back();
          p.producer_id = id;
          p.producer_epoch = producer.epoch;
          p.last_sequence = producer.batches.empty() ? -1 : producer.batches.back().last_sequence;
          p.last_timestamp = producer.last_timestamp;
          p.coordinator_epoch = producer.coordinator_epoch;
          p.current_txn_start_offset = producer.txn_first_offset;
        }
      }
    }
  }
  respond(call, response);
}

}  // namespace bulwark::broker
