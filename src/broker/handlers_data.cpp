// Produce (acks=all waits for the ISR), Fetch (with long polling; followers and consumers), ListOffsets,
// DeleteRecords, InitProducerId and OffsetForLeaderEpoch: the data path.
#include <algorithm>
#include <atomic>
#include <set>

#include "base/log.h"
#include "broker/leader_hints.h"
#include "broker/replication_wait.h"
#include "broker/state.h"
#include "wire/generated/delete_records.h"
#include "wire/generated/fetch.h"
#include "wire/generated/init_producer_id.h"
#include "wire/generated/list_offsets.h"
#include "wire/generated/offset_for_leader_epoch.h"
#include "wire/generated/produce.h"
#include "wire/legacy_messages.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;

namespace {

using ProducePartitionResponse = wire::msg::ProduceResponse::PartitionProduceResponse;

// An acks=all batch appended on the leader: the high watermark that covers it.
struct PendingAck {
  std::int64_t required_offset;
  std::int32_t min_insync;
};

// The Produce response, sent once every acks=all batch has settled (ReplicationWait) or at once.
class DelayedProduce : public std::enable_shared_from_this<DelayedProduce> {
 public:
  DelayedProduce(BrokerState& state, const Call& call)
      : state_(state), header_(call.header), responder_(call.responder), listener_(call.ctx.peer.listener),
        wait_(std::make_shared<ReplicationWait>(state, call.ctx.loop)) {}

  wire::msg::ProduceResponse& response() { return response_; }
  void add(ProducePartitionResponse& out, std::shared_ptr<replication::Partition> partition, PendingAck ack) {
    wait_->add(std::move(partition), ack.required_offset, ack.min_insync);
    waiting_.push_back(&out);
  }
  void throttle(std::int64_t ms) { response_.throttle_time_ms = static_cast<std::int32_t>(ms); }

  // From any thread; the waiting happens on the connection's event loop.
  void start(std::int32_t timeout_ms) {
    auto self = shared_from_this();
    wait_->start(std::chrono::milliseconds(timeout_ms), [self](std::size_t i, KafkaError error) { self->settle(i, error); },
                 [self] { self->send(); });
  }

 private:
  void settle(std::size_t index, KafkaError error) {
    if (error == KafkaError::none) return;
    waiting_[index]->error_code = code(error);
    waiting_[index]->error_message = message_for(error);
  }

  static const char* message_for(KafkaError error) {
    switch (error) {
      case KafkaError::not_leader_or_follower:
        return "This server is no longer the leader for that topic-partition.";
      case KafkaError::not_enough_replicas_after_append:
        return "Messages are written to the log, but to fewer in-sync replicas than required.";
      default:
        return "The in-sync replicas did not confirm the records in time.";
    }
  }

  void send() {
    if (header_.api_version >= 10) add_leader_hints();
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { response_.encode(w, header_.api_version); }),
                       std::chrono::milliseconds(response_.throttle_time_ms));
  }

  void add_leader_hints() {
    const auto image = state_.image();
    for (auto& topic : response_.responses)
      for (auto& partition : topic.partition_responses)
        add_leader_hint(*image, listener_, topic.name, partition.index, partition, response_.node_endpoints);
  }

  BrokerState& state_;
  wire::RequestHeader header_;
  net::Responder responder_;
  const std::string listener_;
  wire::msg::ProduceResponse response_;
  std::shared_ptr<ReplicationWait> wait_;
  std::vector<ProducePartitionResponse*> waiting_;  // per append of wait_, in order
};

// Appends one partition's records as leader; for acks=all, what the answer waits for.
std::optional<PendingAck> produce_to_partition(BrokerState& state, Call& call, const TopicInfo& topic,
                                               replication::Partition& partition, ByteView records, std::int16_t acks,
                                               ProducePartitionResponse& out) {
  const storage::TopicPartition tp{topic.name, out.index};
  const auto min_insync = state.min_insync_replicas(topic);
  if (acks == -1 && partition.isr().size() < static_cast<std::size_t>(min_insync)) {
    out.error_code = code(KafkaError::not_enough_replicas);
    out.error_message = "The in-sync replicas are " + std::to_string(partition.isr().size()) +
                        ", fewer than min.insync.replicas " + std::to_string(min_insync) + ".";
    return std::nullopt;
  }
  auto log_config = partition.log()->config();
  storage::AppendOptions options;
  options.max_message_bytes = log_config.max_message_bytes;
  options.timestamp_type = log_config.timestamp_type;
  options.now_ms = state.now_ms();
  auto appended = partition.append_as_leader(records, options);
  if (!appended) {
    out.error_code = code(KafkaError::not_leader_or_follower);
    out.error_message = "This server is no longer the leader for that topic-partition.";
    return std::nullopt;
  }
  if (!appended->result.ok()) {
    // Storage errors are logged by storage, once per interval with a count (a full disk under load would
    // otherwise write one line per request).
    const auto& failure = appended->result.error();
    if (failure.code != storage::LogError::io)
      log::warn("produce to {}-{} from {} rejected: {}", tp.topic, tp.partition, call.ctx.peer.remote_address, failure.message);
    out.error_code = code(to_kafka_error(failure.code));
    out.error_message = failure.message;
    return std::nullopt;
  }
  const auto& result = *appended->result;
  out.base_offset = result.base_offset;
  out.log_append_time_ms = result.log_append_time;
  out.log_start_offset = result.log_start_offset;
  if (!result.duplicate) {
    state.notifier.notify(tp);  // followers and consumers waiting on this partition
    state.metrics.produced(tp.topic, records.size(), result.last_offset - result.base_offset + 1);
  }
  if (acks != -1 || partition.high_watermark() > result.last_offset) return std::nullopt;
  return PendingAck{result.last_offset + 1, min_insync};
}

// Produce v0-v2 may carry v0/v1 message sets: they become one v2 batch before the append, as Kafka 3.7
// converts them (nullopt: the records are v2 already; Kafka does not check the magic below v3 either).
Result<std::optional<Bytes>> convert_legacy_records(std::int16_t version, ByteView records) {
  if (version >= 3 || wire::first_entry_magic(records) == 2) return std::optional<Bytes>{};
  auto batch = wire::convert_legacy_messages(records);
  if (!batch.ok()) return batch.error();
  return std::optional<Bytes>(std::move(*batch));
}

KafkaError legacy_error(const Error& error) {
  if (error.kind == ErrorKind::corrupt) return KafkaError::corrupt_message;
  if (error.kind == ErrorKind::unsupported) return KafkaError::unsupported_compression_type;
  return KafkaError::invalid_record;
}

struct PartitionRefusal {
  KafkaError error;
  std::string message;
};

// KIP-98: a partition's batches are transactional exactly when the request names a transactional id;
// KIP-890: a transactional write must go to a partition the coordinator added to the open transaction.
std::optional<PartitionRefusal> check_transactional_batches(const BrokerState& state,
                                                             const std::optional<std::string>& transactional_id,
                                                             const std::string& topic, std::int32_t partition,
                                                             ByteView records) {
  auto split = wire::split_batches(records);
  if (!split.ok() || split->batches.empty()) return std::nullopt;  // the log refuses it with its reason
  std::optional<wire::BatchHeader> first;
  for (ByteView batch : split->batches) {
    auto h = wire::parse_batch_header(batch);
    if (!h.ok()) return std::nullopt;
    if (h->is_transactional() != transactional_id.has_value()) {
      if (h->is_transactional())  // Kafka checks this before anything else in the request
        return PartitionRefusal{KafkaError::transactional_id_authorization_failed,
                                "Transactional records need a transactional id."};
      return PartitionRefusal{KafkaError::invalid_record,
                              "A produce request with a transactional id must carry transactional batches."};
    }
    if (!first) first = *h;
  }
  if (!transactional_id) return std::nullopt;
  const KafkaError verified =
      state.verify_transactional_partition(*transactional_id, first->producer_id, first->producer_epoch, topic, partition);
  if (verified == KafkaError::none) return std::nullopt;
  return PartitionRefusal{verified, "The partition is not part of the producer's ongoing transaction."};
}

QuotaClient quota_client(Call& call) { return {session_of(call).principal.name, call.header.client_id.value_or("")}; }

// Kafka's Produce and Fetch throttle: the larger of the byte-rate throttle and the request-rate one
// (over the time the handler worked on the request).
std::int64_t record_quotas(BrokerState& state, const QuotaClient& who, QuotaKind bytes_kind, double bytes,
                           std::chrono::nanoseconds busy) {
  if (!state.quotas) return 0;
  const auto image = state.image();
  const auto& quotas = image->client_quotas();
  if (quotas.empty()) return 0;
  const auto now = state.now_ms();
  const auto by_bytes = state.quotas->record(bytes_kind, quotas, who.user, who.client_id, bytes, now);
  const auto by_time = state.quotas->record(QuotaKind::request, quotas, who.user, who.client_id,
                                            thread_time_percent(busy.count()), now);
  const auto throttle = std::max(by_bytes, by_time);
  if (throttle > 0) {  // counted under the quota that decided, as Kafka's throttle-time sensors
    const char* type = by_time > by_bytes ? "request" : bytes_kind == QuotaKind::produce ? "produce" : "fetch";
    state.metrics.throttled(type, who.user, who.client_id, throttle);
  }
  return throttle;
}

}  // namespace

void handle_produce(BrokerState& state, Call& call) {
  const auto started = std::chrono::steady_clock::now();
  wire::msg::ProduceRequest request;
  if (!decode_request(call, request)) return;
  const bool valid_acks = request.acks == 0 || request.acks == 1 || request.acks == -1;

  // Transactional produce: WRITE on the transactional id first (Kafka fails the whole request).
  const bool may_write_transaction =
      !request.transactional_id ||
      authorized(state, call, Operation::write, ResourceType::transactional_id, *request.transactional_id);
  auto delayed = std::make_shared<DelayedProduce>(state, call);
  auto& response = delayed->response();
  response.responses.reserve(request.topic_data.size());
  for (const auto& topic_data : request.topic_data) {
    auto& topic_response = response.responses.emplace_back();
    topic_response.name = topic_data.name;
    topic_response.partition_responses.reserve(topic_data.partition_data.size());
    auto topic = state.topics->find(topic_data.name);
    const bool may_write = authorized(state, call, Operation::write, ResourceType::topic, topic_data.name);
    const bool transactional = request.transactional_id.has_value();
    for (const auto& partition_data : topic_data.partition_data) {
      auto& out = topic_response.partition_responses.emplace_back();
      out.index = partition_data.index;
      out.base_offset = -1;
      auto fail = [&](KafkaError error, std::string message) {
        out.error_code = code(error);
        out.error_message = std::move(message);
      };
      std::shared_ptr<replication::Partition> partition;
      if (!valid_acks) {
        fail(KafkaError::invalid_required_acks, "acks must be -1, 0 or 1");
      } else if (!may_write_transaction) {
        fail(KafkaError::transactional_id_authorization_failed, "Transactional Id authorization failed.");
      } else if (transactional && !state.verify_transactional_partition) {
        fail(KafkaError::invalid_request, "transactions are not supported by Bulwark yet");
      } else if (!may_write) {
        fail(KafkaError::topic_authorization_failed, "Topic authorization failed.");
      } else if (!(partition = state.hosted_partition(topic, partition_data.index))) {
        auto missing = state.lookup_error(topic, partition_data.index);
        fail(missing.error, std::move(missing.message));
      } else if (!partition_data.records || partition_data.records->empty()) {
        fail(KafkaError::invalid_record, "the produce request carries no records");
      } else if (auto refused = check_transactional_batches(state, request.transactional_id, topic_data.name,
                                                            partition_data.index, *partition_data.records)) {
        fail(refused->error, std::move(refused->message));
      } else if (auto legacy = convert_legacy_records(call.header.api_version, *partition_data.records); !legacy.ok()) {
        fail(legacy_error(legacy.error()), legacy.error().message);
      } else if (auto ack = produce_to_partition(state, call, *topic, *partition,
                                                 *legacy ? ByteView(**legacy) : ByteView(*partition_data.records),
                                                 request.acks, out)) {
        delayed->add(out, std::move(partition), *ack);
      }
    }
  }
  // Kafka counts the whole request against producer_byte_rate.
  const auto request_bytes = static_cast<double>(call.body.position() + call.body.remaining());
  const auto throttle =
      record_quotas(state, quota_client(call), QuotaKind::produce, request_bytes, std::chrono::steady_clock::now() - started);
  if (request.acks == 0) {
    call.responder.respond_none(std::chrono::milliseconds(throttle));  // acks=0: the client reads no response
    return;
  }
  delayed->throttle(throttle);
  delayed->start(request.timeout_ms);
}

namespace {

constexpr std::int32_t kMaxFetchWaitMs = 30'000;

// The last stable offset: the first offset of the oldest open transaction, capped by the high watermark.
std::int64_t last_stable_offset(const storage::PartitionLog& log, std::int64_t high_watermark) {
  const std::int64_t unstable = log.first_unstable_offset();
  return unstable >= 0 ? std::min(unstable, high_watermark) : high_watermark;
}

// The aborted transactions a read_committed consumer needs for the batches it is given: those
// overlapping [fetch_offset, end of the data).
[[gnu::noinline]] void fill_aborted(wire::msg::FetchResponse::PartitionData& partition, const storage::PartitionLog& log,
                                    std::int64_t fetch_offset, std::int64_t upto) {
  auto& out = partition.aborted_transactions.emplace();
  if (!partition.records || partition.records->empty()) return;
  const ByteView data(*partition.records);
  std::int64_t end = upto;
  if (auto split = wire::split_batches(data); split.ok() && !split->batches.empty())
    if (auto last = wire::parse_batch_header(split->batches.back()); last.ok()) end = std::min(end, last->last_offset() + 1);
  auto aborted = log.aborted_transactions(fetch_offset, end);
  out.reserve(aborted.size());
  for (const auto& a : aborted) {
    wire::msg::FetchResponse::AbortedTransaction entry;
    entry.producer_id = a.producer_id;
    entry.first_offset = a.first_offset;
    out.push_back(entry);
  }
}

// One Fetch request from arrival to answer. Lives on its connection's event loop thread: the timer and
// the append notifications both post there, so no locking is needed.
class FetchOperation : public std::enable_shared_from_this<FetchOperation> {
 public:
  FetchOperation(BrokerState& state, const Call& call, FetchContext context, std::set<std::string> denied_topics,
                 std::vector<wire::msg::FetchRequest::FetchTopic> unknown_ids, QuotaClient who)
      : state_(state),
        header_(call.header),
        responder_(call.responder),
        loop_(call.ctx.loop),
        listener_(call.ctx.peer.listener),
        session_(std::move(context)),
        request_(session_.effective),
        replica_id_(request_.replica_id >= 0 ? request_.replica_id : request_.replica_state.replica_id),
        denied_topics_(std::move(denied_topics)),
        unknown_ids_(std::move(unknown_ids)),
        who_(std::move(who)) {}

  // From any thread (the request pool runs it when the connection has requests there); the waiting
  // happens on the connection's event loop.
  void start() {
    if (replica_id_ >= 0) record_replica_fetches();
    notifications_seen_ = state_.notifier.notifications();
    std::size_t bytes = 0;
    auto response = timed_gather(bytes);
    if (bytes >= static_cast<std::size_t>(std::max(request_.min_bytes, 0)) || request_.max_wait_ms <= 0 || errors_) {
      send(response);
      return;
    }
    loop_.post([self = shared_from_this()] { self->wait(); });
  }

 private:
  void wait() {
    std::vector<storage::TopicPartition> partitions;
    for (const auto& topic : request_.topics)
      for (const auto& partition : topic.partitions) partitions.push_back({topic.topic, partition.partition});
    std::weak_ptr<FetchOperation> weak = shared_from_this();
    watch_id_ = state_.notifier.watch(partitions, [weak] {
      if (auto self = weak.lock()) self->loop_.post([self] { self->try_complete(false); });
    });
    auto self = shared_from_this();
    // Capped so that fetches parked by clients that went away cannot pile up for days.
    const auto max_wait = std::chrono::milliseconds(std::min(request_.max_wait_ms, kMaxFetchWaitMs));
    timer_id_ = loop_.run_after(max_wait, [self] { self->try_complete(true); });
    // Records may have arrived between the first look and the watch: look again only then.
    if (state_.notifier.notifications() != notifications_seen_) try_complete(false);
  }

  void try_complete(bool timed_out) {
    if (done_) return;
    std::size_t bytes = 0;
    auto response = timed_gather(bytes);
    if (!timed_out && bytes < static_cast<std::size_t>(request_.min_bytes) && !errors_) return;
    if (!timed_out) loop_.cancel(timer_id_);
    send(response);
  }

  wire::msg::FetchResponse timed_gather(std::size_t& bytes) {
    const auto started = std::chrono::steady_clock::now();
    auto response = gather(bytes);
    busy_ += std::chrono::steady_clock::now() - started;
    return response;
  }

  // A consumer over its quota hears an empty answer with the throttle time, and the records it was
  // not given do not count (Kafka's getThrottledResponse and unrecordQuotaSensor). Decided before the
  // session remembers the answer, so what was not sent is sent later. Counted: the records' bytes.
  bool send_if_throttled(const wire::msg::FetchResponse& response) {
    if (replica_id_ >= 0 || !state_.quotas) return false;
    double bytes = 0;
    for (const auto& topic : response.responses)
      for (const auto& partition : topic.partitions)
        if (partition.records) bytes += static_cast<double>(partition.records->size());
    const auto throttle = record_quotas(state_, who_, QuotaKind::fetch, bytes, busy_);
    if (throttle <= 0) return false;
    if (const auto image = state_.image(); !image->client_quotas().empty())
      state_.quotas->unrecord(QuotaKind::fetch, image->client_quotas(), who_.user, who_.client_id, bytes, state_.now_ms());
    wire::msg::FetchResponse empty;
    empty.throttle_time_ms = static_cast<std::int32_t>(throttle);
    empty.session_id = session_.session_id;
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { empty.encode(w, header_.api_version); }),
                       std::chrono::milliseconds(throttle));
    return true;
  }

  void send(wire::msg::FetchResponse& response) {
    done_ = true;
    if (send_if_throttled(response)) {
      if (watch_id_) state_.notifier.unwatch(watch_id_);
      return;
    }
    state_.fetch_sessions->finish(session_, response);
    if (watch_id_) state_.notifier.unwatch(watch_id_);
    if (header_.api_version >= 16) add_leader_hints(response);
    if (replica_id_ < 0)  // as Kafka's BytesOutPerSec: what consumers read, not replication
      for (const auto& topic : response.responses)
        for (const auto& partition : topic.partitions)
          if (partition.records && !partition.records->empty()) state_.metrics.fetched(topic.topic, partition.records->size());
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { response.encode(w, header_.api_version); }));
  }

  // The leader's view of each follower moves once per fetch, on arrival (Kafka's updateFollowerFetchState).
  void record_replica_fetches() {
    for (const auto& topic : request_.topics) {
      if (denied_topics_.count(topic.topic)) continue;
      auto info = state_.topics->find(topic.topic);
      for (const auto& p : topic.partitions) {
        auto partition = state_.hosted_partition(info, p.partition);
        if (!partition || partition->diverging_epoch(p.fetch_offset, p.last_fetched_epoch)) continue;
        if (partition->record_follower_fetch(replica_id_, p.fetch_offset, state_.now_ms()))
          state_.notifier.notify(partition->topic_partition());  // the high watermark moved
      }
    }
  }

  // A consumer under consumer_byte_rate gets at most what its quota's window holds per fetch.
  std::size_t quota_window_bytes() const {
    if (replica_id_ >= 0 || !state_.quotas) return SIZE_MAX;
    const auto image = state_.image();
    const auto bound = state_.quotas->max_value_in_window(QuotaKind::fetch, image->client_quotas(), who_.user, who_.client_id);
    return bound ? static_cast<std::size_t>(std::clamp(*bound, 1.0, 1e18)) : SIZE_MAX;
  }

  void add_leader_hints(wire::msg::FetchResponse& response) const {
    const auto image = state_.image();
    for (auto& topic : response.responses)
      for (auto& partition : topic.partitions)
        add_leader_hint(*image, listener_, topic.topic, partition.partition_index, partition, response.node_endpoints);
  }

  // v13+: the topics whose ids this broker does not know, each partition UNKNOWN_TOPIC_ID.
  void answer_unknown_ids(wire::msg::FetchResponse& response) {
    for (const auto& topic : unknown_ids_) {
      auto& topic_out = response.responses.emplace_back();
      topic_out.topic_id = topic.topic_id;
      for (const auto& partition : topic.partitions)
        topic_out.partitions.push_back(error_partition(partition.partition, KafkaError::unknown_topic_id));
    }
  }

  static wire::msg::FetchResponse::PartitionData blank_partition(std::int32_t index) {
    wire::msg::FetchResponse::PartitionData out;
    out.records.emplace();  // present even when empty, as clients expect
    out.partition_index = index;
    out.high_watermark = -1;
    out.last_stable_offset = -1;
    out.log_start_offset = -1;
    return out;
  }

  // Errors are answered at once.
  wire::msg::FetchResponse::PartitionData error_partition(std::int32_t index, KafkaError error) {
    auto out = blank_partition(index);
    out.error_code = code(error);
    errors_ = true;
    return out;
  }

  // Why a partition cannot be read, or nullopt. v13+ names a topic by id: a topic that is gone, or was
  // recreated under another id, is UNKNOWN_TOPIC_ID, as in Kafka.
  std::optional<KafkaError> partition_error(const std::optional<TopicInfo>& info, const wire::msg::FetchRequest::FetchTopic& topic,
                                            const wire::msg::FetchRequest::FetchPartition& partition,
                                            std::shared_ptr<replication::Partition>& hosted) const {
    const bool by_id = header_.api_version >= 13;
    if (by_id && (!info || info->id != topic.topic_id)) return KafkaError::unknown_topic_id;
    if (denied_topics_.count(topic.topic)) return KafkaError::topic_authorization_failed;
    if (!(hosted = state_.hosted_partition(info, partition.partition))) return state_.lookup_error(info, partition.partition).error;
    return state_.leader_epoch_error(info->name, partition.partition, partition.current_leader_epoch);
  }

  wire::msg::FetchResponse gather(std::size_t& total_bytes) {
    wire::msg::FetchResponse response;
    errors_ = false;
    answer_unknown_ids(response);
    std::size_t budget = std::min(request_.max_bytes > 0 ? static_cast<std::size_t>(request_.max_bytes) : SIZE_MAX,
                                  quota_window_bytes());
    for (const auto& topic : request_.topics) {
      wire::msg::FetchResponse::FetchableTopicResponse topic_out;
      topic_out.topic = topic.topic;
      topic_out.topic_id = topic.topic_id;
      auto info = state_.topics->find(topic.topic);
      for (const auto& partition : topic.partitions) {
        std::shared_ptr<replication::Partition> hosted;
        if (auto error = partition_error(info, topic, partition, hosted)) {
          topic_out.partitions.push_back(error_partition(partition.partition, *error));
          continue;
        }
        auto out = blank_partition(partition.partition);
        if (auto split = replica_id_ >= 0 ? hosted->diverging_epoch(partition.fetch_offset, partition.last_fetched_epoch)
                                          : std::nullopt) {
          out.high_watermark = hosted->high_watermark();
          out.log_start_offset = hosted->log()->log_start_offset();
          out.diverging_epoch.epoch = split->epoch;
          out.diverging_epoch.end_offset = split->end_offset;
          errors_ = true;  // answered at once: the follower truncates before it fetches again
        } else {
          const auto& log = hosted->log();
          const auto high_watermark = hosted->high_watermark();
          const auto last_stable = last_stable_offset(*log, high_watermark);
          out.high_watermark = high_watermark;
          out.last_stable_offset = last_stable;
          out.log_start_offset = log->log_start_offset();
          // Followers read up to the log end; consumers what every ISR member has, read_committed ones
          // only what no open transaction holds back (the last stable offset).
          const bool read_committed = replica_id_ < 0 && request_.isolation_level == 1;
          const auto upto = replica_id_ >= 0 ? log->log_end_offset() : read_committed ? last_stable : high_watermark;
          // KIP-74: the first partition with data returns at least one whole batch even above the limits.
          std::size_t limit = std::min<std::size_t>(budget, std::max(partition.partition_max_bytes, 0));
          if (limit > 0 || total_bytes == 0) {
            auto data = log->read(partition.fetch_offset, std::max<std::size_t>(limit, 1), upto);
            if (!data.ok()) {
              out.error_code = code(to_kafka_error(data.code()));
              errors_ = true;
            } else if (total_bytes == 0 || data->bytes.size() <= budget) {
              total_bytes += data->bytes.size();
              budget -= std::min(budget, data->bytes.size());
              *out.records = std::move(data->bytes);
            }
          }
          if (read_committed) fill_aborted(out, *log, partition.fetch_offset, upto);
        }
        topic_out.partitions.push_back(std::move(out));
      }
      response.responses.push_back(std::move(topic_out));
    }
    return response;
  }

  BrokerState& state_;
  wire::RequestHeader header_;
  net::Responder responder_;
  net::EventLoop& loop_;
  const std::string listener_;
  FetchContext session_;
  const wire::msg::FetchRequest& request_;  // every partition of the session
  const std::int32_t replica_id_;  // a follower's broker id, -1 for consumers
  const std::set<std::string> denied_topics_;  // no READ: TOPIC_AUTHORIZATION_FAILED
  const std::vector<wire::msg::FetchRequest::FetchTopic> unknown_ids_;  // v13+: UNKNOWN_TOPIC_ID
  const QuotaClient who_;
  std::chrono::nanoseconds busy_{0};  // spent gathering: what request_percentage counts
  bool done_ = false;
  bool errors_ = false;
  std::uint64_t watch_id_ = 0;
  net::TimerId timer_id_ = 0;
  std::uint64_t notifications_seen_ = 0;  // AppendNotifier::notifications() before the first look
};

// Fetch v13+ names topics by id (KIP-516): the ids become names before the session sees the request. A
// topic id this broker does not know is taken out and answered UNKNOWN_TOPIC_ID; an unknown forgotten
// one keeps its id, so that the session can still forget a deleted topic's partitions.
std::vector<wire::msg::FetchRequest::FetchTopic> resolve_topic_ids(const cluster::MetadataImage& image,
                                                                   wire::msg::FetchRequest& request) {
  std::vector<wire::msg::FetchRequest::FetchTopic> known, unknown;
  for (auto& topic : request.topics) {
    const auto* found = image.topic(topic.topic_id);
    if (found) topic.topic = found->name;
    (found ? known : unknown).push_back(std::move(topic));
  }
  request.topics = std::move(known);
  for (auto& topic : request.forgotten_topics_data)
    if (const auto* found = image.topic(topic.topic_id)) topic.topic = found->name;
  return unknown;
}

}  // namespace

void handle_fetch(BrokerState& state, Call& call) {
  wire::msg::FetchRequest request;
  if (!decode_request(call, request)) return;
  auto unknown_ids = call.header.api_version >= 13 ? resolve_topic_ids(*state.image(), request)
                                                   : std::vector<wire::msg::FetchRequest::FetchTopic>{};
  // A follower's fetch (replica id set) needs CLUSTER_ACTION; a consumer's needs READ on each topic.
  const auto replica_id = request.replica_id >= 0 ? request.replica_id : request.replica_state.replica_id;
  const bool replica = replica_id >= 0;
  auto context = state.fetch_sessions->begin(std::move(request), {session_of(call).principal.to_string(), replica_id},
                                             state.now_ms());
  if (context.error) {
    wire::msg::FetchResponse response;
    response.error_code = context.error;
    return respond(call, response);
  }
  const bool cluster_action = replica && authorized_cluster(state, call, Operation::cluster_action);
  std::set<std::string> denied;
  for (const auto& topic : context.effective.topics)
    if (replica ? !cluster_action : !authorized(state, call, Operation::read, ResourceType::topic, topic.topic))
      denied.insert(topic.topic);
  std::make_shared<FetchOperation>(state, call, std::move(context), std::move(denied), std::move(unknown_ids),
                                   quota_client(call))
      ->start();
}

void handle_list_offsets(BrokerState& state, Call& call) {
  wire::msg::ListOffsetsRequest request;
  if (!decode_request(call, request)) return;
  // Kafka's special timestamps: -3 (v7+, KIP-734) the record with the largest timestamp, -4 (v8+, KIP-405)
  // the start of the local log, which is the whole log here (no tiered storage).
  constexpr std::int64_t kLatest = -1, kEarliest = -2, kMaxTimestamp = -3, kEarliestLocal = -4;
  wire::msg::ListOffsetsResponse response;
  for (const auto& topic : request.topics) {
    wire::msg::ListOffsetsResponse::ListOffsetsTopicResponse topic_out;
    topic_out.name = topic.name;
    auto info = state.topics->find(topic.name);
    const bool may_describe = authorized(state, call, Operation::describe, ResourceType::topic, topic.name);
    for (const auto& partition : topic.partitions) {
      wire::msg::ListOffsetsResponse::ListOffsetsPartitionResponse out;
      out.partition_index = partition.partition_index;
      out.timestamp = -1;
      out.offset = -1;
      std::shared_ptr<replication::Partition> hosted;
      if (!may_describe) {
        out.error_code = code(KafkaError::topic_authorization_failed);
      } else if (!(hosted = state.hosted_partition(info, partition.partition_index))) {
        out.error_code = code(state.lookup_error(info, partition.partition_index).error);
      } else if (auto stale = state.leader_epoch_error(topic.name, partition.partition_index,
                                                       partition.current_leader_epoch)) {
        out.error_code = code(*stale);
      } else if (partition.timestamp == kLatest) {
        // What a consumer can read up to: read_committed stops at the last stable offset.
        const auto high_watermark = hosted->high_watermark();
        out.offset = request.isolation_level == 1 ? last_stable_offset(*hosted->log(), high_watermark) : high_watermark;
      } else if (partition.timestamp == kEarliest || partition.timestamp == kEarliestLocal) {
        out.offset = hosted->log()->log_start_offset();
      } else if (partition.timestamp < 0 && partition.timestamp != kMaxTimestamp) {
        out.error_code = code(KafkaError::unsupported_version);
      } else {
        auto& log = *hosted->log();
        auto found = partition.timestamp == kMaxTimestamp ? log.offset_of_max_timestamp()
                                                          : log.offset_for_timestamp(partition.timestamp);
        // As Kafka: only a record a consumer could read (below the high watermark, or for read_committed
        // the last stable offset) is an answer.
        const auto high_watermark = hosted->high_watermark();
        const auto readable = request.isolation_level == 1 ? last_stable_offset(log, high_watermark) : high_watermark;
        if (!found.ok()) {
          out.error_code = code(to_kafka_error(found.code()));
        } else if (found->has_value() && (*found)->offset < readable) {
          out.timestamp = (*found)->timestamp;
          out.offset = (*found)->offset;
        }
      }
      if (const auto* led = state.image()->partition(topic.name, partition.partition_index)) out.leader_epoch = led->leader_epoch;
      topic_out.partitions.push_back(std::move(out));
    }
    response.topics.push_back(std::move(topic_out));
  }
  respond(call, response);
}

void handle_delete_records(BrokerState& state, Call& call) {
  wire::msg::DeleteRecordsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DeleteRecordsResponse response;
  for (const auto& topic : request.topics) {
    wire::msg::DeleteRecordsResponse::DeleteRecordsTopicResult topic_out;
    topic_out.name = topic.name;
    auto info = state.topics->find(topic.name);
    const bool may_delete = authorized(state, call, Operation::remove, ResourceType::topic, topic.name);
    for (const auto& partition : topic.partitions) {
      wire::msg::DeleteRecordsResponse::DeleteRecordsPartitionResult out;
      out.partition_index = partition.partition_index;
      out.low_watermark = -1;
      std::shared_ptr<replication::Partition> hosted;
      if (!may_delete) {
        out.error_code = code(KafkaError::topic_authorization_failed);
      } else if (!(hosted = state.hosted_partition(info, partition.partition_index))) {
        out.error_code = code(state.lookup_error(info, partition.partition_index).error);
      } else {
        // -1 means "up to the high watermark"; nothing above it may go (Kafka's rule).
        const auto high_watermark = hosted->high_watermark();
        auto target = partition.offset == -1 ? high_watermark : partition.offset;
        if (target < 0 || target > high_watermark) {
          out.error_code = code(KafkaError::offset_out_of_range);
        } else if (auto moved = hosted->log()->delete_records_before(target); moved.ok()) {
          out.low_watermark = *moved;
        } else {
          out.error_code = code(to_kafka_error(moved.code()));
        }
      }
      topic_out.partitions.push_back(std::move(out));
    }
    response.topics.push_back(std::move(topic_out));
  }
  respond(call, response);
}

void handle_init_producer_id(BrokerState& state, Call& call) {
  wire::msg::InitProducerIdRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::InitProducerIdResponse response;
  response.producer_id = -1;
  response.producer_epoch = -1;
  if (!request.transactional_id && !authorized_idempotent_write(state, call)) {
    response.error_code = code(KafkaError::cluster_authorization_failed);
  } else if (request.transactional_id) {
    // The transaction coordinator's (handlers_txn.cpp); it answers, now or once the log has it.
    return handle_transactional_init_producer_id(state, call, *request.transactional_id, request.transaction_timeout_ms,
                                                 request.producer_id, request.producer_epoch);
  } else if (request.producer_id >= 0 && request.producer_epoch >= 0 && request.producer_epoch < INT16_MAX - 1) {
    // KIP-360: an idempotent producer bumping its epoch keeps its id.
    response.producer_id = request.producer_id;
    response.producer_epoch = static_cast<std::int16_t>(request.producer_epoch + 1);
  } else if (auto id = state.producer_ids->next(); id.ok()) {
    response.producer_id = *id;
    response.producer_epoch = 0;
  } else {
    log::warn("cannot allocate a producer id: {}", id.error().message);
    response.error_code = 15;  // COORDINATOR_NOT_AVAILABLE: the client retries (the controller gives ids)
  }
  respond(call, response);
}

}  // namespace bulwark::broker

namespace bulwark::broker {

// OffsetForLeaderEpoch (KIP-101/KIP-279): where an epoch ends in the leader's log, for older followers
// and for consumers checking for truncation after a leader change (KIP-320).
void handle_offset_for_leader_epoch(BrokerState& state, Call& call) {
  wire::msg::OffsetForLeaderEpochRequest request;
  if (!decode_request(call, request)) return;
  const bool replica = request.replica_id >= 0;
  const bool cluster_action = replica && authorized_cluster(state, call, Operation::cluster_action);
  wire::msg::OffsetForLeaderEpochResponse response;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.topic = topic.topic;
    auto info = state.topics->find(topic.topic);
    const bool allowed = replica ? cluster_action : authorized(state, call, Operation::describe, ResourceType::topic, topic.topic);
    for (const auto& p : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition = p.partition;
      std::shared_ptr<replication::Partition> hosted;
      if (!allowed) {
        out.error_code = code(replica ? KafkaError::cluster_authorization_failed : KafkaError::topic_authorization_failed);
      } else if (!(hosted = state.hosted_partition(info, p.partition))) {
        out.error_code = code(state.lookup_error(info, p.partition).error);
      } else if (auto stale = state.leader_epoch_error(topic.topic, p.partition, p.current_leader_epoch)) {
        out.error_code = code(*stale);
      } else {
        const auto end = hosted->end_offset_for_epoch(p.leader_epoch);
        out.leader_epoch = end.epoch;
        out.end_offset = end.end_offset;
      }
    }
  }
  respond(call, response);
}

}  // namespace bulwark::broker
