// The active controller's decisions (KIP-631), as pure functions of the metadata image: each takes
// the image (everything committed, plus whatever this controller has proposed and not yet seen
// committed) and a request, and returns the records to append and the response to send once they are
// committed. Nothing here does I/O, reads a clock or draws randomness of its own: time and ids come in
// as arguments, so the simulator and unit tests drive the real logic.
//
// Every function validates first and returns no records when it refuses (the response then carries
// Kafka's error code and message). Records are in the order Kafka's controller writes them, so that
// applying them with MetadataDelta in that order always succeeds on the image they were made from.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/image.h"
#include "cluster/records.h"
#include "wire/generated/allocate_producer_ids.h"
#include "wire/generated/alter_configs.h"
#include "wire/generated/alter_partition.h"
#include "wire/generated/incremental_alter_configs.h"
#include "wire/generated/alter_user_scram_credentials.h"
#include "wire/generated/broker_heartbeat.h"
#include "wire/generated/broker_registration.h"
#include "wire/generated/create_acls.h"
#include "wire/generated/create_partitions.h"
#include "wire/generated/alter_partition_reassignments.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/list_partition_reassignments.h"
#include "wire/generated/delete_acls.h"
#include "wire/generated/delete_topics.h"
#include "wire/generated/elect_leaders.h"

namespace bulwark::cluster {

struct ControllerSettings {
  std::int32_t default_partitions = 1;          // num.partitions
  std::int16_t default_replication_factor = 1;  // default.replication.factor
  std::int64_t session_timeout_ms = 9000;       // broker.session.timeout.ms
  std::int32_t producer_id_block_size = 1000;   // Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
  bool auto_leader_rebalance = true;                  // auto.leader.rebalance.enable
  std::int64_t leader_imbalance_check_interval_ms = 300000;  // leader.imbalance.check.interval.seconds
  std::int32_t leader_imbalance_percent = 10;               // leader.imbalance.per.broker.percentage
  // Why a topic config key/value cannot be stored (Kafka's INVALID_CONFIG message), nullopt when valid.
  std::function<std::optional<std::string>(const std::string& key, const std::string& value)> topic_config_error;
  // Why a broker config key (= value; nullopt = deleted) cannot change at run time; per_broker: for one
  // broker rather than the cluster default. Unset: no broker config can change.
  std::function<std::optional<std::string>(const std::string& key, const std::optional<std::string>& value,
                                           bool per_broker)>
      broker_config_error;
};

// Randomness the caller owns (seeded in tests and in the simulator).
struct IdSource {
  std::function<Uuid()> new_uuid;                   // topic ids, ACL ids
  std::function<std::uint32_t(std::uint32_t)> pick;  // uniform in [0, n): placement start
};

template <class Response>
struct Decision {
  std::vector<AnyRecord> records;  // to append, in order; empty when nothing changes
  Response response;               // to send once `records` are committed (as is when records is empty)
};

// ---- Brokers ----------------------------------------------------------------------------------------

// Why a topic name is not one Kafka accepts (1..249 characters of [a-zA-Z0-9._-], not "." or ".."),
// in Kafka's words; nullopt when it is valid.
std::optional<std::string> invalid_topic_name_reason(const std::string& name);

// RegisterBrokerRecord (fenced) for a broker id that is free, or whose registration has the same
// incarnation id (a retry), or whose session has expired (a restart, with a new incarnation). A live
// registration with another incarnation gets DUPLICATE_BROKER_REGISTRATION. The broker epoch in the
// response is the record's offset, which only the log knows: the caller fills it in after proposing.
Decision<wire::msg::BrokerRegistrationResponse> register_broker(const MetadataImage& image,
                                                               const wire::msg::BrokerRegistrationRequest& request,
                                                               bool session_expired);
// The broker epoch is the RegisterBrokerRecord's offset: once the caller knows it (before encoding the
// record), this sets it in the record and in the response. A no-op on a refusal (no records).
void assign_broker_epoch(Decision<wire::msg::BrokerRegistrationResponse>& decision, std::int64_t offset);

// The heartbeat's answer and, when its state changes, the records: unfence (UnfenceBrokerRecord) once
// the broker wants it and has caught up to its own registration (CurrentMetadataOffset >= broker
// epoch); controlled shutdown (BrokerRegistrationChangeRecord in_controlled_shutdown, then the
// partition leadership moves below) when it asks for it; STALE_BROKER_EPOCH for an old epoch,
// BROKER_ID_NOT_REGISTERED for an unknown broker. A broker in controlled shutdown that leads nothing
// any more is fenced (fence_broker's records) and told to shut down: unlike Kafka, this does not wait
// for the other brokers to catch up to the shutdown (the image does not know their offsets). Leader
// elections an unfence makes possible are elect_leaders' (run it on the image after the unfence).
Decision<wire::msg::BrokerHeartbeatResponse> broker_heartbeat(const MetadataImage& image,
                                                             const wire::msg::BrokerHeartbeatRequest& request);

// A broker whose session timed out (or finished a controlled shutdown): FenceBrokerRecord, then a
// PartitionChangeRecord for every partition it led (a new leader from the ISR, or none) or whose ISR it
// was in (removed from it, unless it is the last ISR member: Kafka keeps the last one).
std::vector<AnyRecord> fence_broker(const MetadataImage& image, std::int32_t broker_id);

// Partitions without a leader (or led by a fenced broker) that have an unfenced ISR member: elect it
// (the first such in replica order). Run after an unfence.
std::vector<AnyRecord> elect_leaders(const MetadataImage& image);

// ---- Partitions -------------------------------------------------------------------------------------

// A partition leader's ISR change (Kafka 3.7's ReplicationControlManager.alterPartition): one
// PartitionChangeRecord per partition whose ISR or leader recovery state changes (leader and leader
// epoch unchanged), and per partition the state the record produces (partition epoch + 1), or the
// current state when nothing changes. A broker that is not registered with broker_epoch gets
// STALE_BROKER_EPOCH for the whole response. Per partition, in Kafka's order: UNKNOWN_TOPIC_OR_PARTITION
// (UNKNOWN_TOPIC_ID for v2+, which names topics by id); NOT_CONTROLLER for a leader or partition epoch
// newer than the image's (this controller is behind); FENCED_LEADER_EPOCH for an older leader epoch;
// INVALID_REQUEST when the requester is not the leader (Kafka's code, not NOT_LEADER_OR_FOLLOWER);
// INVALID_UPDATE_VERSION for an older partition epoch; INVALID_REQUEST for an ISR that is not distinct
// replicas including the leader, a recovery state other than 0/1, RECOVERED -> RECOVERING, or
// RECOVERING with more than the leader; INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED below v2) when an
// ISR member is unregistered, fenced, in controlled shutdown or, in v3, has another broker epoch than
// given (-1 skips the check). An ISR that holds every adding replica of a reassignment completes it
// (see alter_partition_reassignments).
Decision<wire::msg::AlterPartitionResponse> alter_partition(const MetadataImage& image,
                                                            const wire::msg::AlterPartitionRequest& request,
                                                            std::int16_t version);

// ElectLeaders (KIP-460). PREFERRED (0): each named partition's leadership moves to its first replica
// when that one is live and in the ISR (PREFERRED_LEADER_NOT_AVAILABLE otherwise, ELECTION_NOT_NEEDED
// when it leads already). UNCLEAN (1): a partition without a live leader gets one from its ISR, else
// any live replica, whose ISR it then is alone (ELIGIBLE_LEADERS_NOT_AVAILABLE when there is none,
// ELECTION_NOT_NEEDED when a live leader exists). A null partition list means every partition, and
// only the ones elected are reported. UNKNOWN_TOPIC_OR_PARTITION for names not in the image.
Decision<wire::msg::ElectLeadersResponse> elect_leaders_request(const MetadataImage& image,
                                                                const wire::msg::ElectLeadersRequest& request);

// auto.leader.rebalance.enable: preferred-leader elections for the partitions of every broker whose
// share of preferred partitions led elsewhere is above imbalance_percent
// (leader.imbalance.per.broker.percentage), when the preferred replica is live and in the ISR.
std::vector<AnyRecord> rebalance_leaders(const MetadataImage& image, std::int32_t imbalance_percent);

// ---- Reassignments (KIP-455) ------------------------------------------------------------------------

// AlterPartitionReassignments: per partition, a PartitionChangeRecord that makes the replicas the
// target followed by the replicas that leave, with adding_replicas (target - current) and
// removing_replicas (current - target). The reassignment completes in alter_partition once every adding
// replica is in the ISR (replicas = target, the ISR without the leaving ones, and a new leader from the
// target when the leader leaves); one that adds nothing (a shrink, a reordering) completes at once.
// Null replicas cancel a reassignment (back to the replicas before it; NO_REASSIGNMENT_IN_PROGRESS when
// there is none); a new target replaces one in progress. INVALID_REPLICA_ASSIGNMENT for an empty or
// duplicated list, an unregistered broker, or a target none of whose replicas is in sync and live;
// UNKNOWN_TOPIC_OR_PARTITION.
Decision<wire::msg::AlterPartitionReassignmentsResponse> alter_partition_reassignments(
    const MetadataImage& image, const wire::msg::AlterPartitionReassignmentsRequest& request);
// The partitions with a reassignment in progress (every topic, or the ones named), from the image.
wire::msg::ListPartitionReassignmentsResponse list_partition_reassignments(
    const MetadataImage& image, const wire::msg::ListPartitionReassignmentsRequest& request);

// ---- Topics -----------------------------------------------------------------------------------------

// Replica placement, striped as Kafka's StripedReplicaPlacer: over the unfenced brokers (not in
// controlled shutdown) in id order
// (rack-aware when any broker has a rack: consecutive replicas of a partition go to different racks
// first), starting at `start` and shifting each partition's followers. INVALID_REPLICATION_FACTOR
// (with Kafka's message) when fewer unfenced brokers than the factor: every error of place_replicas
// is INVALID_REPLICATION_FACTOR.
Result<std::vector<std::vector<std::int32_t>>> place_replicas(const MetadataImage& image, std::int32_t partitions,
                                                             std::int16_t replication_factor, std::uint32_t start);

// TopicRecord, then a ConfigRecord per config, then PartitionRecord for each partition (Kafka's order:
// configs before partitions, so a broker creates the logs with them; leader = first replica, ISR =
// replicas, leader and partition epoch 0). Per topic: INVALID_TOPIC_EXCEPTION for a bad
// name, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REQUEST for
// both assignments and counts, INVALID_CONFIG; validate_only answers as if created and returns no
// records (and the zero topic id). -1 counts use the settings' defaults. A name given twice in one
// request: INVALID_REQUEST "Duplicate topic name." (one result); a name that collides with another
// topic's once '.' and '_' are unified: INVALID_TOPIC_EXCEPTION.
Decision<wire::msg::CreateTopicsResponse> create_topics(const MetadataImage& image,
                                                        const wire::msg::CreateTopicsRequest& request,
                                                        std::int16_t request_version, const ControllerSettings& settings,
                                                        const IdSource& ids);

// RemoveTopicRecord per topic found (by name, or by id from v6), UNKNOWN_TOPIC_OR_PARTITION /
// UNKNOWN_TOPIC_ID otherwise.
Decision<wire::msg::DeleteTopicsResponse> delete_topics(const MetadataImage& image,
                                                        const wire::msg::DeleteTopicsRequest& request,
                                                        std::int16_t request_version);

// PartitionRecords for the new partitions (placed as create_topics places them). INVALID_PARTITIONS
// when the count does not grow, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT for a bad one;
// validate_only answers and returns no records.
Decision<wire::msg::CreatePartitionsResponse> create_partitions(const MetadataImage& image,
                                                                const wire::msg::CreatePartitionsRequest& request,
                                                                const IdSource& ids);

// ---- Configs ---------------------------------------------------------------------------------------

// IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT) and AlterConfigs (the resource's whole set):
// ConfigRecords for topic configs, by the topic rules, and for dynamic broker configs (resource name ""
// for the cluster default, or a broker id), by Kafka's rules for what is dynamic. What only the broker
// that serves a listener can check (that new TLS files load) it checked before forwarding.
Decision<wire::msg::IncrementalAlterConfigsResponse> incremental_alter_configs(
    const MetadataImage& image, const wire::msg::IncrementalAlterConfigsRequest& request,
    const ControllerSettings& settings);
Decision<wire::msg::AlterConfigsResponse> alter_configs(const MetadataImage& image,
                                                        const wire::msg::AlterConfigsRequest& request,
                                                        const ControllerSettings& settings);

// ---- Security ---------------------------------------------------------------------------------------

// AccessControlEntryRecord per valid creation (an identical existing ACL is not duplicated);
// INVALID_REQUEST (with why) for a bad binding.
Decision<wire::msg::CreateAclsResponse> create_acls(const MetadataImage& image, const wire::msg::CreateAclsRequest& request,
                                                    const IdSource& ids);
// RemoveAccessControlEntryRecord per ACL a filter matches (Kafka's filter rules: ANY, MATCH), and the
// matches in the response.
Decision<wire::msg::DeleteAclsResponse> delete_acls(const MetadataImage& image, const wire::msg::DeleteAclsRequest& request);

// UserScramCredentialRecord / RemoveUserScramCredentialRecord. Per user: RESOURCE_NOT_FOUND for a
// deletion of a credential that does not exist, UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL
// (iterations outside 4096..16384, an empty name, a salted password of the wrong length, no salt),
// DUPLICATE_RESOURCE when a user appears twice (whatever the mechanisms, as Kafka's KRaft controller),
// UNSUPPORTED_VERSION below metadata.version 3.5-IV2. stored_key and server_key are derived here from
// the salted password the client sent.
Decision<wire::msg::AlterUserScramCredentialsResponse> alter_scram_credentials(
    const MetadataImage& image, const wire::msg::AlterUserScramCredentialsRequest& request);

// ---- Producer ids -----------------------------------------------------------------------------------

// ProducerIdsRecord for the next block of settings.producer_id_block_size ids; STALE_BROKER_EPOCH /
// BROKER_ID_NOT_REGISTERED for a broker that is not registered with that epoch.
Decision<wire::msg::AllocateProducerIdsResponse> allocate_producer_ids(const MetadataImage& image,
                                                                       const wire::msg::AllocateProducerIdsRequest& request,
                                                                       const ControllerSettings& settings);

// ---- Bootstrap --------------------------------------------------------------------------------------

// What the first active controller of a new cluster writes: FeatureLevelRecord metadata.version at the
// level this code speaks. Empty when the image already has one.
std::vector<AnyRecord> bootstrap_records(const MetadataImage& image);
inline constexpr std::int16_t kMetadataVersion = 19;  // 3.7-IV4, Kafka 3.7's latest

}  // namespace bulwark::cluster
