// What every request handler shares: configuration, logs, topics, producer ids and the waiters for
// new data. Internal to the broker folder.
#pragma once

#include <atomic>
#include <chrono>
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
#include "broker/broker_metrics.h"
#include "broker/errors.h"
#include "broker/fetch_sessions.h"
#include "broker/quotas.h"
#include "broker/topics.h"
#include "cluster/image.h"
#include "cluster/metadata_loader.h"
#include "config/config.h"
#include "groups/coordinator.h"
#include "net/server.h"
#include "replication/replica_manager.h"
#include "storage/log.h"
#include "wire/protocol.h"

namespace bulwark::broker {

// Wakes delayed fetches and produces when a partition they wait on changes: its log end or high
// watermark moved, or its leadership changed.
class AppendNotifier {
 public:
  using Callback = std::function<void()>;
  std::uint64_t watch(const std::vector<storage::TopicPartition>& partitions, Callback callback);
  void unwatch(std::uint64_t id);
  void notify(const storage::TopicPartition& partition);
  // How many notify() calls so far: a waiter that read it before looking can tell whether anything
  // was appended before its watch was in place.
  std::uint64_t notifications() const { return notifications_.load(); }

 private:
  std::atomic<std::uint64_t> notifications_{0};
  struct Watch {
    std::vector<storage::TopicPartition> partitions;
    Callback callback;
  };
  std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Watch> watches_;
};

// Producer ids unique across the cluster and across restarts: blocks of ids come from the active
// controller (AllocateProducerIds, a ProducerIdsRecord in the metadata log) before any id of them is used.
class ProducerIdAllocator {
 public:
  struct Block {
    std::int64_t start = 0;
    std::int32_t length = 0;
  };
  using BlockSource = std::function<Result<Block>()>;  // blocks; called while no id is left
  explicit ProducerIdAllocator(BlockSource source) : source_(std::move(source)) {}
  Result<std::int64_t> next();

 private:
  BlockSource source_;
  std::mutex mu_;
  std::int64_t next_ = 0;
  std::int64_t end_ = 0;
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

class ControllerChannel;
class TlsReloader;
class GroupCoordinators;
class TxnCoordinators;
}  // namespace bulwark::broker
namespace bulwark::cluster {
class QuorumDriver;
class ControllerService;
}  // namespace bulwark::cluster
namespace bulwark::broker {

// Callbacks waiting for the local metadata image to satisfy a condition (a topic created by the
// controller showing up here), run by the image listener after each publish or when their time is up.
class ImageWaiters {
 public:
  using Predicate = std::function<bool(const cluster::MetadataImage&)>;
  using Callback = std::function<void(bool satisfied)>;
  // Runs `callback(true)` at once when the image already satisfies `predicate`.
  void wait(const cluster::ImagePtr& current, Predicate predicate, std::chrono::steady_clock::time_point deadline,
            Callback callback);
  void on_image(const cluster::MetadataImage& image);  // runs the satisfied and the expired ones
  void fail_all();

 private:
  struct Waiter {
    Predicate predicate;
    std::chrono::steady_clock::time_point deadline;
    Callback callback;
  };
  std::mutex mu_;
  std::vector<Waiter> waiters_;
};

struct BrokerState {
  config::BrokerConfig config;
  std::string cluster_id;
  std::unique_ptr<storage::LogManager> logs;
  // The hosted partitions' replication state (role, ISR, high watermark), from the image.
  std::unique_ptr<replication::ReplicaManager> replicas;
  // The cluster's metadata, as this node has applied it from the metadata log.
  cluster::ImagePublisher images;
  ImageWaiters image_waiters;
  ControllerChannel* controller = nullptr;  // how requests reach the active controller (owned by Broker)
  std::function<std::int32_t()> quorum_leader;  // the quorum leader's id as this node knows it
  cluster::QuorumDriver* quorum = nullptr;                  // owned by Broker
  cluster::ControllerService* controller_service = nullptr;  // null unless process.roles has controller
  TlsReloader* tls = nullptr;  // the listeners' TLS material (owned by Broker)
  mutable BrokerMetrics metrics;  // counted through const views too (an ACL check)
  std::unique_ptr<TopicRegistry> topics;
  std::unique_ptr<ProducerIdAllocator> producer_ids;
  std::unique_ptr<GroupCoordinators> group_coordinators;  // null until open_group_coordinator (brokers only)
  std::shared_ptr<TxnCoordinators> txn_coordinators;      // null until open_txn_coordinator (brokers only)
  AppendNotifier notifier;
  std::unique_ptr<FetchSessionCache> fetch_sessions;  // KIP-227
  std::unique_ptr<ClientQuotaManager> quotas;         // null = no client quotas enforced (docs/quotas.md)
  // Security: null acls = no authorizer configured (everything allowed, ACL APIs answer SECURITY_DISABLED).
  std::unique_ptr<AclStore> acls;
  std::map<std::string, security::PrincipalMappingRules> mapping_rules;  // per SSL listener
  std::map<std::string, ListenerSasl> sasl;                              // per SASL listener
  std::unique_ptr<ScramStore> scram;
  OfflineTopics offline_topics;
  // Transactions (docs/transactions.md). Set by the transaction coordinator; unset = transactions are off.
  // KIP-890: whether `partition` was added to the producer's open transaction (NONE when it was).
  std::function<KafkaError(const std::string& transactional_id, std::int64_t producer_id,
                           std::int16_t producer_epoch, const std::string& topic, std::int32_t partition)>
      verify_transactional_partition;
  // Called after a COMMIT or ABORT marker is appended to a partition of __consumer_offsets.
  std::function<void(std::int32_t offsets_partition, std::int64_t producer_id, std::int16_t producer_epoch,
                     bool committed)>
      on_offsets_transaction_marker;

  std::int32_t node_id() const { return config.node_id; }
  // The advertised endpoint clients of `listener` should use (the first advertised one otherwise).
  config::Endpoint advertised_for(const std::string& listener) const;
  // Kafka's log settings: broker defaults overridden by the topic's configs.
  storage::LogConfig log_config_for(const TopicInfo& topic) const;
  storage::LogConfig default_log_config() const;
  // min.insync.replicas: the topic's override, else the broker's.
  std::int32_t min_insync_replicas(const TopicInfo& topic) const;
  std::int64_t now_ms() const;

  cluster::ImagePtr image() const { return images.current(); }
  // The controller id Metadata and DescribeCluster name: a live broker that reaches the active controller.
  std::int32_t controller_id() const;
  // Sends a request only the controller serves (CreateTopics, DeleteTopics, CreatePartitions, ...) to
  // the active controller in an Envelope with the caller's principal; `done` gets the response body, or
  // an error when no controller answered within `timeout`.
  void forward_to_controller(Call& call, std::int16_t api_key, std::int16_t api_version, Bytes body,
                             std::chrono::milliseconds timeout, std::function<void(Result<Bytes>)> done);
  // Brings the local logs in line with a new image: creates the logs of partitions this node hosts,
  // removes those of deleted topics, applies changed topic configs, and marks topics whose stored
  // configs are invalid offline.
  void reconcile_logs(const cluster::MetadataImage* before, const cluster::MetadataImage& after);
  std::shared_ptr<storage::PartitionLog> partition(const std::string& topic, std::int32_t partition) const;
  // A partition of `topic` that this broker leads; null when the topic is unknown, offline, the index
  // out of range or the partition led elsewhere. `lookup_error` says which, with Kafka's code.
  std::shared_ptr<replication::Partition> hosted_partition(const std::optional<TopicInfo>& topic,
                                                           std::int32_t partition) const;
  struct LookupError {
    KafkaError error;
    std::string message;
  };
  LookupError lookup_error(const std::optional<TopicInfo>& topic, std::int32_t partition) const;
  // A client's CurrentLeaderEpoch (KIP-320) against the image: FENCED_LEADER_EPOCH when it is older,
  // UNKNOWN_LEADER_EPOCH when newer (this node has not seen that epoch yet); nullopt when it matches or
  // the client sent none (-1).
  std::optional<KafkaError> leader_epoch_error(const std::string& topic, std::int32_t partition,
                                               std::int32_t current_leader_epoch) const;
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

// An answer sent after the handler returned (once the controller's records are committed, ...).
struct DeferredReply {
  wire::RequestHeader header;
  net::Responder responder;
  template <class Response>
  void send(const Response& response) {
    responder.respond(encode_response_frame(header, [&](ByteWriter& w) { response.encode(w, header.api_version); }));
  }
};

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
void handle_alter_configs(BrokerState& state, Call& call);
void handle_incremental_alter_configs(BrokerState& state, Call& call);
void handle_produce(BrokerState& state, Call& call);
void handle_fetch(BrokerState& state, Call& call);
void handle_list_offsets(BrokerState& state, Call& call);
void handle_delete_records(BrokerState& state, Call& call);
void handle_init_producer_id(BrokerState& state, Call& call);
void handle_offset_for_leader_epoch(BrokerState& state, Call& call);
// Transactions, the data path (handlers_txn_markers.cpp): markers from the coordinator, producer state.
void handle_write_txn_markers(BrokerState& state, Call& call);
void handle_describe_producers(BrokerState& state, Call& call);
void handle_create_topics(BrokerState& state, Call& call);
void handle_delete_topics(BrokerState& state, Call& call);
void handle_create_partitions(BrokerState& state, Call& call);
void handle_elect_leaders(BrokerState& state, Call& call);
void handle_alter_partition_reassignments(BrokerState& state, Call& call);
void handle_list_partition_reassignments(BrokerState& state, Call& call);
void handle_describe_log_dirs(BrokerState& state, Call& call);  // handlers_log_dirs.cpp
// Consumer groups (handlers_groups.cpp, over the partitions of __consumer_offsets: group_partitions.h).
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
// KIP-848's consumer protocol (handlers_consumer_groups.cpp).
void handle_consumer_group_heartbeat(BrokerState& state, Call& call);
void handle_consumer_group_describe(BrokerState& state, Call& call);
void handle_txn_offset_commit(BrokerState& state, Call& call);  // handlers_txn_offsets.cpp
// handlers_txn.cpp: the transaction coordinator (docs/transactions.md; open_txn_coordinator is in
// broker/txn_partitions.h).
struct CoordinatorAnswer {
  std::int16_t error_code = 0;
  std::optional<std::string> error_message;
  std::int32_t node_id = -1;
  std::string host;
  std::int32_t port = -1;
};
// FindCoordinator's key_type 1 (TRANSACTION) for `transactional_id`.
CoordinatorAnswer find_transaction_coordinator(BrokerState& state, Call& call, const std::string& transactional_id);
// InitProducerId with a transactional id (handle_init_producer_id delegates here).
void handle_transactional_init_producer_id(BrokerState& state, Call& call, const std::string& transactional_id,
                                           std::int32_t timeout_ms, std::int64_t producer_id,
                                           std::int16_t producer_epoch);
void handle_add_partitions_to_txn(BrokerState& state, Call& call);
void handle_add_offsets_to_txn(BrokerState& state, Call& call);
void handle_end_txn(BrokerState& state, Call& call);
void handle_describe_transactions(BrokerState& state, Call& call);
void handle_list_transactions(BrokerState& state, Call& call);
// The controller listener (handlers_controller.cpp): false when the API is not one of its own.
bool handle_controller_listener(BrokerState& state, Call& call);
void handle_describe_quorum(BrokerState& state, Call& call);
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
// Client quotas (handlers_quotas.cpp).
void handle_describe_client_quotas(BrokerState& state, Call& call);
void handle_alter_client_quotas(BrokerState& state, Call& call);

}  // namespace bulwark::broker
