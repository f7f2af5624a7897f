#include "broker/state.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "base/files.h"
#include "base/log.h"

namespace bulwark::broker {

std::uint64_t AppendNotifier::watch(const std::vector<storage::TopicPartition>& partitions, Callback callback) {
  std::lock_guard lock(mu_);
  auto id = next_id_++;
  watches_[id] = Watch{partitions, std::move(callback)};
  return id;
}

void AppendNotifier::unwatch(std::uint64_t id) {
  std::lock_guard lock(mu_);
  watches_.erase(id);
}

void AppendNotifier::notify(const storage::TopicPartition& partition) {
  std::vector<Callback> to_call;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, watch] : watches_)
      for (const auto& tp : watch.partitions)
        if (tp == partition) {
          to_call.push_back(watch.callback);
          break;
        }
  }
  for (auto& callback : to_call) callback();  // outside the lock: callbacks post to event loops
}

namespace {
constexpr std::int64_t kProducerIdBlock = 1000;
}

Result<std::unique_ptr<ProducerIdAllocator>> ProducerIdAllocator::open(std::filesystem::path file) {
  std::unique_ptr<ProducerIdAllocator> allocator(new ProducerIdAllocator(file));
  auto text = read_file(file);
  if (text.ok()) {
    try {
      allocator->next_ = std::stoll(*text);
    } catch (...) {
      return make_error(ErrorKind::corrupt, file.string() + " does not hold a producer id");
    }
    if (allocator->next_ < 0) return make_error(ErrorKind::corrupt, file.string() + " holds a negative producer id");
  } else if (text.error().kind != ErrorKind::not_found) {
    return text.error();
  }
  allocator->reserved_until_ = allocator->next_;
  return allocator;
}

Result<std::int64_t> ProducerIdAllocator::next() {
  std::lock_guard lock(mu_);
  if (next_ >= reserved_until_) {
    // Reserve the next block on disk first, so a crash never hands out an id twice.
    auto until = next_ + kProducerIdBlock;
    BULWARK_TRY(write_file_atomic(file_, std::to_string(until) + "\n", kDataFileMode, Overwrite::allow));
    reserved_until_ = until;
  }
  return next_++;
}

config::Endpoint BrokerState::advertised_for(const std::string& listener) const {
  for (const auto& endpoint : config.advertised_listeners)
    if (endpoint.listener == listener) return endpoint;
  if (!config.advertised_listeners.empty()) return config.advertised_listeners.front();
  return config::Endpoint{listener, "localhost", 0, config::SecurityProtocol::plaintext};
}

storage::LogConfig BrokerState::default_log_config() const {
  storage::LogConfig c;
  c.segment_bytes = config.log_segment_bytes;
  if (config.log_roll_ms > 0) c.segment_ms = config.log_roll_ms;
  c.retention_ms = config.log_retention_ms;
  c.retention_bytes = config.log_retention_bytes;
  c.flush_interval_messages = config.log_flush_interval_messages;
  c.flush_interval_ms = config.log_flush_interval_ms;
  c.max_message_bytes = config.message_max_bytes;
  c.timestamp_type = config.log_message_timestamp_type == "LogAppendTime" ? storage::TimestampType::log_append_time
                                                                          : storage::TimestampType::create_time;
  return c;
}

storage::LogConfig BrokerState::log_config_for(const TopicInfo& topic) const {
  auto c = default_log_config();
  auto number = [&](const char* key, auto& field) {
    auto it = topic.configs.find(key);
    if (it == topic.configs.end()) return;
    try {
      field = static_cast<std::remove_reference_t<decltype(field)>>(std::stoll(it->second));
    } catch (...) {
      // validated when the topic was created; an unreadable value keeps the broker default
    }
  };
  number("segment.bytes", c.segment_bytes);
  number("segment.ms", c.segment_ms);
  number("retention.ms", c.retention_ms);
  number("retention.bytes", c.retention_bytes);
  number("flush.messages", c.flush_interval_messages);
  number("flush.ms", c.flush_interval_ms);
  number("max.message.bytes", c.max_message_bytes);
  if (auto it = topic.configs.find("message.timestamp.type"); it != topic.configs.end())
    c.timestamp_type = it->second == "LogAppendTime" ? storage::TimestampType::log_append_time
                                                     : storage::TimestampType::create_time;
  return c;
}

std::int64_t BrokerState::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


BrokerState::CreateOutcome BrokerState::create_topic(const std::string& name, std::int32_t partitions,
                                                     std::int16_t replication_factor,
                                                     std::map<std::string, std::string> configs,
                                                     bool validate_only) {
  if (auto why = invalid_topic_name_reason(name)) return {KafkaError::invalid_topic_exception, *why, std::nullopt};
  if (name == "__consumer_offsets")  // the group coordinator's own log lives under this name
    return {KafkaError::invalid_topic_exception, "the topic name __consumer_offsets is reserved for committed offsets", {}};
  if (partitions == -1) partitions = config.num_partitions;
  if (replication_factor == -1) replication_factor = static_cast<std::int16_t>(config.default_replication_factor);
  if (partitions <= 0) return {KafkaError::invalid_partitions, "Number of partitions must be larger than 0.", {}};
  if (partitions > 100000)
    return {KafkaError::invalid_partitions, "Number of partitions is above Bulwark's limit of 100000.", {}};
  if (replication_factor <= 0)
    return {KafkaError::invalid_replication_factor, "Replication factor must be larger than 0.", {}};
  if (replication_factor > 1)
    return {KafkaError::invalid_replication_factor,
            "Unable to replicate the partition " + std::to_string(replication_factor) +
                " time(s): The target replication factor of " + std::to_string(replication_factor) +
                " cannot be reached because only 1 broker(s) are registered.",
            {}};
  if (auto why = invalid_topic_configs_reason(configs)) return {KafkaError::invalid_config, *why, {}};
  if (topics->find(name)) return {KafkaError::topic_already_exists, "Topic '" + name + "' already exists.", {}};
  if (validate_only) {
    TopicInfo info{name, TopicId{}, partitions, replication_factor, configs};
    return {KafkaError::none, "", info};
  }
  auto created = topics->create(name, partitions, replication_factor, std::move(configs));
  if (!created.ok()) {
    auto code = created.error().kind == ErrorKind::already_exists ? KafkaError::topic_already_exists
                                                                   : KafkaError::kafka_storage_error;
    return {code, created.error().message, {}};
  }
  auto log_config = log_config_for(*created);
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto log = logs->get_or_create({name, p}, log_config);
    if (!log.ok()) {
      log::error("cannot create the log of {}-{}: {}; the topic is not created", name, p, log.error().message);
      // An answer of failure must leave no topic behind: unregister it and drop the logs made so far.
      if (auto removed = topics->remove(name); !removed.ok())
        log::error("cannot unregister the half-created topic {}: {}", name, removed.error().message);
      for (std::int32_t made = 0; made < p; ++made) (void)logs->remove({name, made});
      return {KafkaError::kafka_storage_error, log.error().message, {}};
    }
  }
  log::info("created topic {} with {} partition(s)", name, partitions);
  return {KafkaError::none, "", *created};
}

KafkaError BrokerState::delete_topic(const std::string& name, std::string& message) {
  auto topic = topics->find(name);
  if (!topic) {
    message = "This server does not host this topic-partition.";
    return KafkaError::unknown_topic_or_partition;
  }
  if (auto removed = topics->remove(name); !removed.ok()) {
    message = removed.error().message;
    return KafkaError::kafka_storage_error;
  }
  for (std::int32_t p = 0; p < topic->partitions; ++p) {
    if (auto removed = logs->remove({name, p}); !removed.ok() && removed.code() != storage::LogError::not_found)
      log::warn("deleting the log of {}-{}: {}", name, p, removed.error().message);
  }
  offline_topics.clear(name);
  log::info("deleted topic {}", name);
  return KafkaError::none;
}

std::shared_ptr<storage::PartitionLog> BrokerState::partition(const std::string& topic, std::int32_t partition) const {
  return logs->get({topic, partition});
}

std::shared_ptr<storage::PartitionLog> BrokerState::hosted_partition(const std::optional<TopicInfo>& topic,
                                                                     std::int32_t partition) const {
  if (!topic || partition < 0 || partition >= topic->partitions || offline_topics.reason(topic->name)) return nullptr;
  return logs->get({topic->name, partition});
}

BrokerState::LookupError BrokerState::lookup_error(const std::optional<TopicInfo>& topic) const {
  if (topic)
    if (auto why = offline_topics.reason(topic->name)) return {KafkaError::kafka_storage_error, *why};
  return {KafkaError::unknown_topic_or_partition, "This server does not host this topic-partition."};
}

Status BrokerState::open_topic_logs() {
  for (const auto& topic : topics->list()) {
    if (auto why = invalid_topic_configs_reason(topic.configs)) {
      std::string reason = "topic " + topic.name + " is offline: its stored config is invalid (" + *why + ")";
      log::error("{}; every other topic serves. Delete the topic or correct its configs, then restart.", reason);
      offline_topics.mark(topic.name, std::move(reason));
      continue;
    }
    auto log_config = log_config_for(topic);
    for (std::int32_t p = 0; p < topic.partitions; ++p) {
      auto log = logs->get_or_create({topic.name, p}, log_config);
      if (!log.ok()) return static_cast<Error>(log.error());
      (*log)->set_config(log_config);
    }
  }
  for (const auto& tp : logs->list()) {
    if (!offline_topics.reason(tp.topic)) continue;
    // The log manager opened it with the broker defaults: keep retention from deleting what the
    // topic's own (unreadable) settings may have meant to keep.
    if (auto log = logs->get(tp)) {
      auto frozen = default_log_config();
      frozen.retention_ms = -1;
      frozen.retention_bytes = -1;
      log->set_config(frozen);
    }
  }
  return Status::success();
}

void OfflineTopics::mark(const std::string& topic, std::string reason) {
  std::lock_guard lock(mu_);
  reasons_[topic] = std::move(reason);
}

void OfflineTopics::clear(const std::string& topic) {
  std::lock_guard lock(mu_);
  reasons_.erase(topic);
}

std::optional<std::string> OfflineTopics::reason(const std::string& topic) const {
  std::lock_guard lock(mu_);
  auto it = reasons_.find(topic);
  if (it == reasons_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> invalid_topic_configs_reason(const std::map<std::string, std::string>& configs) {
  for (const auto& [key, value] : configs)
    if (auto why = config::topic_config_error(key, value)) return why;
  return std::nullopt;
}

KafkaError to_kafka_error(storage::LogError error) {
  switch (error) {
    case storage::LogError::corrupt_message: return KafkaError::corrupt_message;
    case storage::LogError::message_too_large: return KafkaError::message_too_large;
    case storage::LogError::out_of_order_sequence: return KafkaError::out_of_order_sequence_number;
    case storage::LogError::invalid_producer_epoch: return KafkaError::invalid_producer_epoch;
    case storage::LogError::offset_out_of_range: return KafkaError::offset_out_of_range;
    case storage::LogError::not_found: return KafkaError::unknown_topic_or_partition;
    case storage::LogError::invalid_argument: return KafkaError::invalid_request;
    case storage::LogError::already_exists: return KafkaError::unknown_server_error;
    case storage::LogError::io: return KafkaError::kafka_storage_error;
  }
  return KafkaError::unknown_server_error;
}

Bytes encode_response_frame(const wire::RequestHeader& header, const std::function<void(ByteWriter&)>& encode_body) {
  ByteWriter w;
  wire::encode_response_header(w, header.api_key, header.api_version, header.correlation_id);
  encode_body(w);
  return w.take();
}

void send_response_bytes(Call& call, const std::function<void(ByteWriter&)>& encode_body) {
  call.responder.respond(encode_response_frame(call.header, encode_body));
}

void reject_malformed(Call& call, const char* api_name) {
  log::warn("closing connection {} from {}: malformed {} v{} request", call.ctx.peer.connection_id,
            call.ctx.peer.remote_address, api_name, call.header.api_version);
  call.responder.close_connection();
}

}  // namespace bulwark::broker
