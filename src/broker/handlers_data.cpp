// Produce, Fetch (with long polling), ListOffsets, DeleteRecords and InitProducerId: the data path.
#include <algorithm>
#include <atomic>
#include <set>

#include "base/log.h"
#include "broker/state.h"
#include "wire/generated/delete_records.h"
#include "wire/generated/fetch.h"
#include "wire/generated/init_producer_id.h"
#include "wire/generated/list_offsets.h"
#include "wire/generated/produce.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;

void handle_produce(BrokerState& state, Call& call) {
  wire::msg::ProduceRequest request;
  if (!decode_request(call, request)) return;
  const bool valid_acks = request.acks == 0 || request.acks == 1 || request.acks == -1;

  wire::msg::ProduceResponse response;
  for (const auto& topic_data : request.topic_data) {
    wire::msg::ProduceResponse::TopicProduceResponse topic_response;
    topic_response.name = topic_data.name;
    auto topic = state.topics->find(topic_data.name);
    const bool may_write = authorized(state, call, Operation::write, ResourceType::topic, topic_data.name);
    for (const auto& partition_data : topic_data.partition_data) {
      wire::msg::ProduceResponse::PartitionProduceResponse out;
      out.index = partition_data.index;
      out.base_offset = -1;
      auto fail = [&](KafkaError error, std::string message) {
        out.error_code = code(error);
        out.error_message = std::move(message);
      };
      std::shared_ptr<storage::PartitionLog> log;
      if (!valid_acks) {
        fail(KafkaError::invalid_required_acks, "acks must be -1, 0 or 1");
      } else if (request.transactional_id) {
        fail(KafkaError::invalid_request, "transactions are not supported by Bulwark yet");
      } else if (!may_write) {
        fail(KafkaError::topic_authorization_failed, "Topic authorization failed.");
      } else if (!(log = state.hosted_partition(topic, partition_data.index))) {
        auto missing = state.lookup_error(topic, partition_data.index);
        fail(missing.error, std::move(missing.message));
      } else if (!partition_data.records || partition_data.records->empty()) {
        fail(KafkaError::invalid_record, "the produce request carries no records");
      } else {
        auto log_config = log->config();
        storage::AppendOptions options;
        options.max_message_bytes = log_config.max_message_bytes;
        options.timestamp_type = log_config.timestamp_type;
        options.now_ms = state.now_ms();
        if (const auto* led = state.image()->partition(topic_data.name, partition_data.index)) options.leader_epoch = led->leader_epoch;
        auto appended = log->append(*partition_data.records, options);
        if (appended.ok()) {
          out.base_offset = appended->base_offset;
          out.log_append_time_ms = appended->log_append_time;
          out.log_start_offset = appended->log_start_offset;
          if (!appended->duplicate) state.notifier.notify({topic_data.name, partition_data.index});
        } else {
          // Storage errors are logged by storage, once per interval with a count (a full disk under
          // load would otherwise write one line per request).
          if (appended.code() != storage::LogError::io)
            log::warn("produce to {}-{} from {} rejected: {}", topic_data.name, partition_data.index,
                      call.ctx.peer.remote_address, appended.error().message);
          fail(to_kafka_error(appended.code()), appended.error().message);
        }
      }
      topic_response.partition_responses.push_back(std::move(out));
    }
    response.responses.push_back(std::move(topic_response));
  }
  if (request.acks == 0) {
    call.responder.respond_none();  // acks=0: the client reads no response
    return;
  }
  respond(call, response);
}

namespace {

constexpr std::int32_t kMaxFetchWaitMs = 30'000;

// One Fetch request from arrival to answer. Lives on its connection's event loop thread: the timer and
// the append notifications both post there, so no locking is needed.
class FetchOperation : public std::enable_shared_from_this<FetchOperation> {
 public:
  FetchOperation(BrokerState& state, const Call& call, wire::msg::FetchRequest request,
                 std::set<std::string> denied_topics)
      : state_(state),
        header_(call.header),
        responder_(call.responder),
        loop_(call.ctx.loop),
        request_(std::move(request)),
        denied_topics_(std::move(denied_topics)) {}

  void start() {
    std::size_t bytes = 0;
    auto response = gather(bytes);
    if (bytes >= static_cast<std::size_t>(std::max(request_.min_bytes, 0)) || request_.max_wait_ms <= 0 || errors_) {
      send(response);
      return;
    }
    std::vector<storage::TopicPartition> partitions;
    for (const auto& topic : request_.topics)
      for (const auto& partition : topic.partitions) partitions.push_back({topic.topic, partition.partition});
    std::weak_ptr<FetchOperation> weak = shared_from_this();
    watch_id_ = state_.notifier.watch(partitions, [weak] {
      if (auto self = weak.lock()) self->loop_.post([self] { self->try_complete(false); });
    });
    auto self = shared_from_this();
    // Capped so that fetches parked by clients that went away cannot pile up for days.
    const auto wait = std::chrono::milliseconds(std::min(request_.max_wait_ms, kMaxFetchWaitMs));
    timer_id_ = loop_.run_after(wait, [self] { self->try_complete(true); });
  }

 private:
  void try_complete(bool timed_out) {
    if (done_) return;
    std::size_t bytes = 0;
    auto response = gather(bytes);
    if (!timed_out && bytes < static_cast<std::size_t>(request_.min_bytes) && !errors_) return;
    if (!timed_out) loop_.cancel(timer_id_);
    send(response);
  }

  void send(const wire::msg::FetchResponse& response) {
    done_ = true;
    if (watch_id_) state_.notifier.unwatch(watch_id_);
    responder_.respond(encode_response_frame(header_, [&](ByteWriter& w) { response.encode(w, header_.api_version); }));
  }

  wire::msg::FetchResponse gather(std::size_t& total_bytes) {
    wire::msg::FetchResponse response;
    errors_ = false;
    std::size_t budget = request_.max_bytes > 0 ? static_cast<std::size_t>(request_.max_bytes) : SIZE_MAX;
    for (const auto& topic : request_.topics) {
      wire::msg::FetchResponse::FetchableTopicResponse topic_out;
      topic_out.topic = topic.topic;
      topic_out.topic_id = topic.topic_id;
      auto info = state_.topics->find(topic.topic);
      const bool denied = denied_topics_.count(topic.topic) > 0;
      for (const auto& partition : topic.partitions) {
        wire::msg::FetchResponse::PartitionData out;
        out.partition_index = partition.partition;
        out.high_watermark = -1;
        out.last_stable_offset = -1;
        out.log_start_offset = -1;
        std::shared_ptr<storage::PartitionLog> log;
        if (denied) {
          out.error_code = code(KafkaError::topic_authorization_failed);
          errors_ = true;
        } else if (!(log = state_.hosted_partition(info, partition.partition))) {
          out.error_code = code(state_.lookup_error(info, partition.partition).error);
          errors_ = true;
        } else if (auto stale = state_.leader_epoch_error(info->name, partition.partition, partition.current_leader_epoch)) {
          out.error_code = code(*stale);
          errors_ = true;
        } else {
          const auto end = log->log_end_offset();
          out.high_watermark = end;
          out.last_stable_offset = end;
          out.log_start_offset = log->log_start_offset();
          // KIP-74: the first partition with data returns at least one whole batch even above the limits.
          std::size_t limit = std::min<std::size_t>(budget, std::max(partition.partition_max_bytes, 0));
          if (limit > 0 || total_bytes == 0) {
            auto data = log->read(partition.fetch_offset, std::max<std::size_t>(limit, 1), end);
            if (!data.ok()) {
              out.error_code = code(to_kafka_error(data.code()));
              errors_ = true;
            } else if (total_bytes == 0 || data->bytes.size() <= budget) {
              total_bytes += data->bytes.size();
              budget -= std::min(budget, data->bytes.size());
              out.records = std::move(data->bytes);
            }
          }
        }
        if (!out.records) out.records = Bytes{};
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
  wire::msg::FetchRequest request_;
  const std::set<std::string> denied_topics_;  // no READ: TOPIC_AUTHORIZATION_FAILED
  bool done_ = false;
  bool errors_ = false;
  std::uint64_t watch_id_ = 0;
  net::TimerId timer_id_ = 0;
};

}  // namespace

void handle_fetch(BrokerState& state, Call& call) {
  wire::msg::FetchRequest request;
  if (!decode_request(call, request)) return;
  // A follower's fetch (replica id set) needs CLUSTER_ACTION; a consumer's needs READ on each topic.
  const bool replica = request.replica_id >= 0 || request.replica_state.replica_id >= 0;
  const bool cluster_action = replica && authorized_cluster(state, call, Operation::cluster_action);
  std::set<std::string> denied;
  for (const auto& topic : request.topics)
    if (replica ? !cluster_action : !authorized(state, call, Operation::read, ResourceType::topic, topic.topic))
      denied.insert(topic.topic);
  // Fetch sessions (KIP-227) are not kept: session id 0 in the answer tells the client to send full
  // fetches, which every client supports.
  std::make_shared<FetchOperation>(state, call, std::move(request), std::move(denied))->start();
}

void handle_list_offsets(BrokerState& state, Call& call) {
  wire::msg::ListOffsetsRequest request;
  if (!decode_request(call, request)) return;
  constexpr std::int64_t kLatest = -1, kEarliest = -2;
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
      std::shared_ptr<storage::PartitionLog> log;
      if (!may_describe) {
        out.error_code = code(KafkaError::topic_authorization_failed);
      } else if (!(log = state.hosted_partition(info, partition.partition_index))) {
        out.error_code = code(state.lookup_error(info, partition.partition_index).error);
      } else if (auto stale = state.leader_epoch_error(topic.name, partition.partition_index,
                                                       partition.current_leader_epoch)) {
        out.error_code = code(*stale);
      } else if (partition.timestamp == kLatest) {
        out.offset = log->log_end_offset();
      } else if (partition.timestamp == kEarliest) {
        out.offset = log->log_start_offset();
      } else if (partition.timestamp < 0) {
        out.error_code = code(KafkaError::unsupported_version);
      } else {
        auto found = log->offset_for_timestamp(partition.timestamp);
        if (!found.ok()) {
          out.error_code = code(to_kafka_error(found.code()));
        } else if (found->has_value()) {
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
      std::shared_ptr<storage::PartitionLog> log;
      if (!may_delete) {
        out.error_code = code(KafkaError::topic_authorization_failed);
      } else if (!(log = state.hosted_partition(info, partition.partition_index))) {
        out.error_code = code(state.lookup_error(info, partition.partition_index).error);
      } else {
        // -1 means "up to the high watermark", which on one node is the log end.
        auto target = partition.offset == -1 ? log->log_end_offset() : partition.offset;
        if (target < 0 || target > log->log_end_offset()) {
          out.error_code = code(KafkaError::offset_out_of_range);
        } else if (auto moved = log->delete_records_before(target); moved.ok()) {
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
    response.error_code = code(KafkaError::invalid_request);
    log::warn("InitProducerId with a transactional id from {}: transactions are not supported yet",
              call.ctx.peer.remote_address);
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
