// What every request handler shares: configuration, logs, topics, producer ids and the waiters for
// new data. Internal to the broker folder.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "broker/access.h"
#include "broker/errors.h"
#include "broker/topics.h"
#include "config/config.h"
#include "groups/coordinator.h"
#include "net/server.h"
#include "storage/log.h"
#include "wire/protocol.h"

namespace bulwark::broker {

// Wakes delayed fetches when a partition they wait on gets new data.
class AppendNotifier {
 public:
  using Callback = std::function<void()>;
  std::uint64_t watch(const std::vector<storage::TopicPartition>& partitions, Callback callback);
  void unwatch(std::uint64_t id);
  void notify(const storage::TopicPartition& partition);

 private:
  struct Watch {
    std::vector<storage::TopicPartition> partitions;
    Callback callback;
  };
  std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Watch> watches_;
};

// Producer ids unique across restarts: blocks of ids are reserved in a file before use.
class ProducerIdAllocator {
 public:
  static Result<std::unique_ptr<ProducerIdAllocator>> open(std::filesystem::path file);
  Result<std::int64_t> next();

 private:
  explicit ProducerIdAllocator(std::filesystem::path file) : file_(std::move(file)) {}
  std::filesystem::path file_;
  std::mutex mu_;
  std::int64_t next_ = 0;
  std::int64_t reserved_until_ = 0;
};

// Topics kept offline because what is stored for them cannot be served (an invalid stored config): they
// answer KAFKA_STORAGE_ERROR and no log work runs on them, while every other topic serves.
class OfflineTopics {
 public:
  void mark(const std::string& topic, std::string reason);
  void clear(const std::string& topic);
  std::optional<std::string> reason(const std::string& topic) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> reasons_;
};

// Why a set of topic configs cannot be stored (the first bad key, in Kafka's words); nullopt = valid.
std::optional<std::string> invalid_topic_configs_reason(const std::map<std::string, std::string>& configs);

struct BrokerState {
  config::BrokerConfig config;
  std::string cluster_id;
  std::unique_ptr<storage::LogManager> logs;
  std::unique_ptr<TopicRegistry> topics;
  std::unique_ptr<ProducerIdAllocator> producer_ids;
  std::unique_ptr<groups::GroupCoordinator> groups;  // null until open_group_coordinator
  AppendNotifier notifier;
  // Security: null acls = no authorizer configured (everything allowed, ACL APIs answer SECURITY_DISABLED).
  std::unique_ptr<AclStore> acls;
  std::map<std::string, security::PrincipalMappingRules> mapping_rules;  // per SSL listener
  std::map<std::string, ListenerSasl> sasl;                              // per SASL listener
  std::unique_ptr<ScramStore> scram;
  OfflineTopics offline_topics;

  std::int32_t node_id() const { return config.node_id; }
  // The advertised endpoint clients of `listener` should use (the first advertised one otherwise).
  config::Endpoint advertised_for(const std::string& listener) const;
  // Kafka's log settings: broker defaults overridden by the topic's configs.
  storage::LogConfig log_config_for(const TopicInfo& topic) const;
  storage::LogConfig default_log_config() const;
  std::int64_t now_ms() const;

  // Creates the topic in the registry and its partition logs. Error codes are Kafka's.
  struct CreateOutcome {
    KafkaError error = KafkaError::none;
    std::string message;
    std::optional<TopicInfo> topic;
  };
  CreateOutcome create_topic(const std::string& name, std::int32_t partitions, std::int16_t replication_factor,
                             std::map<std::string, std::string> configs, bool validate_only);
  KafkaError delete_topic(const std::string& name, std::string& message);
  std::shared_ptr<storage::PartitionLog> partition(const std::string& topic, std::int32_t partition) const;
  // The log of a partition of `topic` that this broker hosts; null when the topic is unknown, offline
  // or the index out of range. `lookup_error` says which, with Kafka's code.
  std::shared_ptr<storage::PartitionLog> hosted_partition(const std::optional<TopicInfo>& topic,
                                                          std::int32_t partition) const;
  struct LookupError {
    KafkaError error;
    std::string message;
  };
  LookupError lookup_error(const std::optional<TopicInfo>& topic) const;
  // Opens the logs of every registered topic at start-up; a topic whose stored configs are invalid is
  // reported and kept offline instead of stopping the broker.
  Status open_topic_logs();
};

KafkaError to_kafka_error(storage::LogError error);

// One request in flight: its header, body reader and the handle that answers it.
struct Call {
  net::RequestContext& ctx;
  wire::RequestHeader header;
  ByteReader& body;
  net::Responder responder;
};

template <class Request>
bool decode_request(Call& call, Request& request);  // closes the connection on malformed input

// The response frame (header + body) for a request; the network layer adds the size prefix.
Bytes encode_response_frame(const wire::RequestHeader& header, const std::function<void(ByteWriter&)>& encode_body);
void send_response_bytes(Call& call, const std::function<void(ByteWriter&)>& encode_body);
template <class Response>
void respond(Call& call, const Response& response) {
  send_response_bytes(call, [&](ByteWriter& w) { response.encode(w, call.header.api_version); });
}
void reject_malformed(Call& call, const char* api_name);

template <class Request>
bool decode_request(Call& call, Request& request) {
  if (request.decode(call.body, call.header.api_version)) return true;
  reject_malformed(call, wire::find_api(call.header.api_key)->name);
  return false;
}

// The handlers, one per API (handlers_*.cpp).
void handle_metadata(BrokerState& state, Call& call);
void handle_describe_cluster(BrokerState& state, Call& call);
void handle_describe_configs(BrokerState& state, Call& call);
void handle_produce(BrokerState& state, Call& call);
void handle_fetch(BrokerState& state, Call& call);
void handle_list_offsets(BrokerState& state, Call& call);
void handle_delete_records(BrokerState& state, Call& call);
void handle_init_producer_id(BrokerState& state, Call& call);
void handle_create_topics(BrokerState& state, Call& call);
void handle_delete_topics(BrokerState& state, Call& call);
void handle_create_partitions(BrokerState& state, Call& call);
// Consumer groups (handlers_groups.cpp); open_group_coordinator replays __consumer_offsets-0 at start-up.
Status open_group_coordinator(BrokerState& state);
void handle_find_coordinator(BrokerState& state, Call& call);
void handle_join_group(BrokerState& state, Call& call);
void handle_sync_group(BrokerState& state, Call& call);
void handle_heartbeat(BrokerState& state, Call& call);
void handle_leave_group(BrokerState& state, Call& call);
void handle_offset_commit(BrokerState& state, Call& call);
void handle_offset_fetch(BrokerState& state, Call& call);
void handle_list_groups(BrokerState& state, Call& call);
void handle_describe_groups(BrokerState& state, Call& call);
void handle_delete_groups(BrokerState& state, Call& call);
void handle_offset_delete(BrokerState& state, Call& call);
// Security (handlers_security.cpp): ACLs, SASL logins and SCRAM credentials.
void handle_create_acls(BrokerState& state, Call& call);
void handle_describe_acls(BrokerState& state, Call& call);
void handle_delete_acls(BrokerState& state, Call& call);
void handle_sasl_handshake(BrokerState& state, Call& call);
void handle_sasl_authenticate(BrokerState& state, Call& call);
// A bare SASL token after SaslHandshake v0 (no request header; answered with a bare token).
void handle_raw_sasl_token(BrokerState& state, net::RequestContext& ctx, Bytes frame, net::Responder responder);
void handle_describe_user_scram_credentials(BrokerState& state, Call& call);
void handle_alter_user_scram_credentials(BrokerState& state, Call& call);

}  // namespace bulwark::broker
