// Transactions, the data path (docs/transactions.md, "Storage and the data path"): WriteTxnMarkers, the
// transaction coordinator's request to partition leaders to end a transaction with a COMMIT or ABORT
// control batch, and DescribeProducers, the producer state of partitions this node leads.
#include <algorithm>
#include <memory>

#include "base/log.h"
#include "broker/group_partitions.h"
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

// One marker appended on the leader, waiting until the ISR has it.
struct PendingMarker {
  std::size_t marker_index;
  std::size_t topic_index;
  std::size_t partition_index;
  storage::TopicPartition tp;
  std::shared_ptr<replication::Partition> partition;
  std::int64_t required_offset;  // the high watermark that covers the marker
  std::int32_t min_insync;
  std::int64_t producer_id;
  std::int16_t producer_epoch;
  bool committed;
  bool done = false;
};

// The WriteTxnMarkers response waits for every marker's replication, as DelayedProduce does for acks=all.
// Lives on the connection's event loop thread (the timer and the notifications post there).
class DelayedMarkers : public std::enable_shared_from_this<DelayedMarkers> {
 public:
  DelayedMarkers(BrokerState& state, const Call& call, MarkersResponse response)
      : state_(state), header_(call.header), responder_(call.responder), loop_(call.ctx.loop),
        response_(std::move(response)) {}

  MarkersResponse& response() { return response_; }
  void add(PendingMarker marker) { pending_.push_back(std::move(marker)); }

  void start() {
    if (check()) return send();
    loop_.post([self = shared_from_this()] { self->wait(); });
  }

 private:
  MarkerPartitionResult& result_of(const PendingMarker& m) {
    return response_.markers[m.marker_index].topics[m.topic_index].partitions[m.partition_index];
  }

  void wait() {
    std::vector<storage::TopicPartition> partitions;
    for (const auto& m : pending_) partitions.push_back(m.tp);
    std::weak_ptr<DelayedMarkers> weak = shared_from_this();
    watch_id_ = state_.notifier.watch(partitions, [weak] {
      if (auto self = weak.lock()) self->loop_.post([self] { self->try_complete(false); });
    });
    auto self = shared_from_this();
    timer_id_ = loop_.run_after(std::chrono::milliseconds(kMarkerTimeoutMs), [self] { self->try_complete(true); });
    if (check()) try_complete(false);
  }

  bool check() {
    bool all = true;
    for (auto& m : pending_) {
      if (m.done) continue;
      const bool leads = m.partition->role() == replication::Role::leader && state_.replicas->get(m.tp) == m.partition;
      if (!leads) {
        settle(m, KafkaError::not_leader_or_follower);
      } else if (m.partition->high_watermark() >= m.required_offset) {
        if (m.partition->isr().size() < static_cast<std::size_t>(m.min_insync)) {
          settle(m, KafkaError::not_enough_replicas_after_append);
        } else {
          m.done = true;
          replicated(m);
        }
      } else {
        all = false;
      }
    }
    return all;
  }

  // The group coordinator turns pending transactional offsets into committed ones (or drops them).
  void replicated(const PendingMarker& m) {
    if (m.tp.topic == kOffsetsTopic && state_.on_offsets_transaction_marker)
      state_.on_offsets_transaction_marker(m.tp.partition, m.producer_id, m.producer_epoch, m.committed);
  }

  void settle(PendingMarker& m, KafkaError error) {
    result_of(m).error_code = code(error);
    m.done = true;
  }

  void try_complete(bool timed_out) {
    if (sent_) return;
    if (!check()) {
      if (!timed_out) return;
      for (auto& m : pending_)
        if (!m.done) settle(m, KafkaError::request_timed_out);
    } else if (!timed_out) {
      loop_.cancel(timer_id_);
    }
    send();
  }

  void send() {
    sent_ = true;
    if (watch_id_) state_.notifier.unwatch(watch_id_);
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { response_.encode(w, header_.api_version); }));
  }

  BrokerState& state_;
  wire::RequestHeader header_;
  net::Responder responder_;
  net::EventLoop& loop_;
  MarkersResponse response_;
  std::vector<PendingMarker> pending_;
  bool sent_ = false;
  std::uint64_t watch_id_ = 0;
  net::TimerId timer_id_ = 0;
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
  return PendingMarker{0, 0, 0, tp, nullptr, appended->result->last_offset + 1, min_insync,
                       marker.producer_id, marker.producer_epoch, marker.transaction_result};
}

}  // namespace

void handle_write_txn_markers(BrokerState& state, Call& call) {
  wire::msg::WriteTxnMarkersRequest request;
  if (!decode_request(call, request)) return;
  const bool cluster_action = authorized_cluster(state, call, Operation::cluster_action);
  auto delayed = std::make_shared<DelayedMarkers>(state, call, MarkersResponse{});
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
          pending->marker_index = m;
          pending->topic_index = t;
          pending->partition_index = p;
          pending->partition = std::move(partition);
          delayed->add(std::move(*pending));
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
