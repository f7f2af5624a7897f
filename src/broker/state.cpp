#include "broker/state.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "base/clock.h"
#include "base/files.h"
#include "base/log.h"
#include "broker/access.h"
#include "broker/controller_channel.h"

namespace bulwark::broker {
namespace {

// cleanup.policy (or log.cleanup.policy): a list of delete and/or compact.
void set_cleanup_policy(storage::LogConfig& c, const std::string& list) {
  c.compact = list.find("compact") != std::string::npos;
  c.delete_by_retention = list.find("delete") != std::string::npos;
}

}  // namespace

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
  notifications_.fetch_add(1);
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

Result<std::int64_t> ProducerIdAllocator::next() {
  std::lock_guard lock(mu_);
  if (next_ >= end_) {
    auto block = source_();
    if (!block.ok()) return block.error();
    next_ = block->start;
    end_ = block->start + block->length;
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
  std::string policy;
  for (const auto& p : config.log_cleanup_policy) policy += p + ",";
  set_cleanup_policy(c, policy.empty() ? "delete" : policy);
  c.delete_retention_ms = config.log_cleaner_delete_retention_ms;
  c.min_cleanable_dirty_ratio = config.log_cleaner_min_cleanable_ratio;
  c.min_compaction_lag_ms = config.log_cleaner_min_compaction_lag_ms;
  c.max_compaction_lag_ms = config.log_cleaner_max_compaction_lag_ms;
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
  number("delete.retention.ms", c.delete_retention_ms);
  number("min.compaction.lag.ms", c.min_compaction_lag_ms);
  number("max.compaction.lag.ms", c.max_compaction_lag_ms);
  if (auto it = topic.configs.find("min.cleanable.dirty.ratio"); it != topic.configs.end())
    c.min_cleanable_dirty_ratio = std::strtod(it->second.c_str(), nullptr);  // validated at creation
  if (auto it = topic.configs.find("cleanup.policy"); it != topic.configs.end()) set_cleanup_policy(c, it->second);
  if (auto it = topic.configs.find("message.timestamp.type"); it != topic.configs.end())
    c.timestamp_type = it->second == "LogAppendTime" ? storage::TimestampType::log_append_time
                                                     : storage::TimestampType::create_time;
  return c;
}

std::int64_t BrokerState::now_ms() const { return wall_clock_ms(); }


std::int32_t BrokerState::controller_id() const {
  // Clients send controller-only requests to the node named here; any broker forwards them to the active
  // controller. So, as Kafka's KRaft brokers do, name a live broker: the quorum's leader when it is one
  // (the combined role), this node otherwise (also while the quorum has no leader).
  const auto leader = quorum_leader ? quorum_leader() : -1;
  const auto* broker = leader >= 0 ? image()->broker(leader) : nullptr;
  return broker && !broker->fenced ? leader : node_id();
}

void BrokerState::forward_to_controller(Call& call, std::int16_t api_key, std::int16_t api_version, Bytes body,
                                        std::chrono::milliseconds timeout, std::function<void(Result<Bytes>)> done) {
  if (!controller) return done(make_error(ErrorKind::unavailable, "this node has no controller channel"));
  const auto& session = session_of(call);
  const auto& peer = call.ctx.peer;
  Bytes address(peer.remote_address.begin(), peer.remote_address.end());
  controller->forward(api_key, api_version, std::move(body),
                      serialize_principal(session.principal.type, session.principal.name), std::move(address),
                      std::chrono::steady_clock::now() + timeout, std::move(done));
}

std::shared_ptr<storage::PartitionLog> BrokerState::partition(const std::string& topic, std::int32_t partition) const {
  return logs->get({topic, partition});
}

std::shared_ptr<replication::Partition> BrokerState::hosted_partition(const std::optional<TopicInfo>& topic,
                                                                      std::int32_t partition) const {
  if (!topic || partition < 0 || partition >= topic->partitions || offline_topics.reason(topic->name)) return nullptr;
  auto hosted = replicas->get({topic->name, partition});
  return hosted && hosted->role() == replication::Role::leader ? hosted : nullptr;
}

std::int32_t BrokerState::min_insync_replicas(const TopicInfo& topic) const {
  auto it = topic.configs.find("min.insync.replicas");
  if (it == topic.configs.end()) return config.min_insync_replicas;
  try {
    return std::stoi(it->second);  // validated when the config was stored
  } catch (...) {
    return config.min_insync_replicas;
  }
}

BrokerState::LookupError BrokerState::lookup_error(const std::optional<TopicInfo>& topic, std::int32_t partition) const {
  if (topic) {
    if (auto why = offline_topics.reason(topic->name)) return {KafkaError::kafka_storage_error, *why};
    const auto* state = image()->partition(topic->name, partition);
    if (state && state->leader != node_id())
      return {state->has_leader() ? KafkaError::not_leader_or_follower : KafkaError::leader_not_available,
              "This server is not the leader for that topic-partition."};
    // Led here by the image, but this node has not taken the leadership up yet (or its log failed to open).
    if (state) return {KafkaError::not_leader_or_follower, "This server is not yet the leader for that topic-partition."};
  }
  return {KafkaError::unknown_topic_or_partition, "This server does not host this topic-partition."};
}

std::optional<KafkaError> BrokerState::leader_epoch_error(const std::string& topic, std::int32_t partition,
                                                         std::int32_t current_leader_epoch) const {
  if (current_leader_epoch < 0) return std::nullopt;
  const auto* state = image()->partition(topic, partition);
  if (!state || current_leader_epoch == state->leader_epoch) return std::nullopt;
  return current_leader_epoch < state->leader_epoch ? KafkaError::fenced_leader_epoch : KafkaError::unknown_leader_epoch;
}

void BrokerState::reconcile_logs(const cluster::MetadataImage* before, const cluster::MetadataImage& after) {
  for (const auto* topic : after.topics()) {
    const auto* old = before ? before->topic(topic->id) : nullptr;
    const auto* old_configs = before ? before->configs({cluster::ConfigResourceType::topic, topic->name}) : nullptr;
    const auto* new_configs = after.configs({cluster::ConfigResourceType::topic, topic->name});
    const bool configs_same = old_configs == new_configs || (old_configs && new_configs && *old_configs == *new_configs);
    if (old == topic && configs_same) continue;  // images share unchanged topics
    auto info = topic_info(after, *topic);
    if (auto why = invalid_topic_configs_reason(info.configs)) {
      std::string reason = "topic " + info.name + " is offline: its stored config is invalid (" + *why + ")";
      // Said once: the topic changes again (leader, ISR) while it stays offline for the same reason.
      if (offline_topics.reason(info.name) != reason) {
        log::error("{}; every other topic serves. Delete the topic or correct its configs.", reason);
        offline_topics.mark(info.name, std::move(reason));
      }
      // The log manager opened its logs with the broker defaults: keep retention from deleting what the
      // topic's own (unreadable) settings may have meant to keep.
      auto frozen = default_log_config();
      frozen.retention_ms = -1;
      frozen.retention_bytes = -1;
      for (const auto& [index, partition] : topic->partitions)
        if (auto log = logs->get({info.name, index})) log->set_config(frozen);
      continue;
    }
    auto log_config = log_config_for(info);
    for (const auto& [index, partition] : topic->partitions) {
      if (std::find(partition.replicas.begin(), partition.replicas.end(), node_id()) == partition.replicas.end()) {
        // A reassignment moved this replica away: its copy goes, as Kafka's StopReplica with deletion.
        const auto* was = old ? old->partition(index) : nullptr;
        if (was && std::find(was->replicas.begin(), was->replicas.end(), node_id()) != was->replicas.end()) {
          if (auto removed = logs->remove({info.name, index}); !removed.ok() && removed.code() != storage::LogError::not_found)
            log::warn("deleting the log of {}-{}: {}", info.name, index, removed.error().message);
          else
            log::info("{}-{} moved to brokers {}: its log here is deleted", info.name, index, fmt::join(partition.replicas, ","));
        }
        continue;
      }
      auto log = logs->get_or_create({info.name, index}, log_config);
      if (!log.ok()) {
        log::error("cannot open the log of {}-{}: {}", info.name, index, log.error().message);
        continue;
      }
      (*log)->set_config(log_config);
    }
    if (!old) log::info("topic {} ({} partition(s)) is in the metadata image", info.name, topic->partitions.size());
  }
  if (!before) return;
  for (const auto* topic : before->topics()) {
    if (after.topic(topic->id)) continue;
    for (const auto& [index, partition] : topic->partitions)
      if (auto removed = logs->remove({topic->name, index}); !removed.ok() && removed.code() != storage::LogError::not_found)
        log::warn("deleting the log of {}-{}: {}", topic->name, index, removed.error().message);
    offline_topics.clear(topic->name);
    log::info("deleted topic {}", topic->name);
  }
}

void ImageWaiters::wait(const cluster::ImagePtr& current, Predicate predicate,
                        std::chrono::steady_clock::time_point deadline, Callback callback) {
  if (predicate(*current)) return callback(true);
  std::lock_guard lock(mu_);
  waiters_.push_back({std::move(predicate), deadline, std::move(callback)});
}

void ImageWaiters::on_image(const cluster::MetadataImage& image) {
  std::vector<std::pair<Callback, bool>> due;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(waiters_, [&](Waiter& w) {
      bool satisfied = w.predicate(image);
      if (!satisfied && now < w.deadline) return false;
      due.emplace_back(std::move(w.callback), satisfied);
      return true;
    });
  }
  for (auto& [callback, satisfied] : due) callback(satisfied);
}

void ImageWaiters::fail_all() {
  std::vector<Waiter> all;
  {
    std::lock_guard lock(mu_);
    all.swap(waiters_);
  }
  for (auto& w : all) w.callback(false);
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
    case storage::LogError::invalid_record: return KafkaError::invalid_record;
    case storage::LogError::coordinator_fenced: return KafkaError::transaction_coordinator_fenced;
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
