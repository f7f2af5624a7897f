// The cluster's metadata image: an immutable snapshot of everything the metadata log says (features,
// brokers, controllers, topics and partitions, configs, quotas, ACLs, SCRAM credentials, delegation
// tokens, the next producer id block) as of one log offset.
//
// Images are built by MetadataDelta, which applies records in log order on top of an image and checks
// that each one fits (a partition of an unknown topic, an unregister of an unknown broker ... are error
// values, and a record that fails leaves nothing of itself behind). Images share unchanged sections and
// unchanged topics with the image they were built from, so a delta costs what it changes.
// ImagePublisher hands the current image to readers by atomic pointer swap.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/records.h"

namespace bulwark::cluster {

inline constexpr std::int32_t kNoLeader = -1;        // PartitionRecord/PartitionChangeRecord: no leader
inline constexpr std::int32_t kNoLeaderChange = -2;  // PartitionChangeRecord: the leader did not change
inline constexpr std::string_view kMetadataVersionFeature = "metadata.version";

struct Endpoint {
  std::string listener;
  std::string host;
  std::uint16_t port = 0;
  std::int16_t security_protocol = 0;  // Kafka's SecurityProtocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL)
  bool operator==(const Endpoint&) const = default;
};

struct SupportedFeature {
  std::string name;
  std::int16_t min_version = 0;
  std::int16_t max_version = 0;
  bool operator==(const SupportedFeature&) const = default;
};

struct BrokerRegistration {
  std::int32_t id = -1;
  Uuid incarnation_id{};
  std::int64_t epoch = -1;  // the offset of its RegisterBrokerRecord
  std::vector<Endpoint> endpoints;
  std::vector<SupportedFeature> supported_features;
  std::optional<std::string> rack;
  bool fenced = true;
  bool in_controlled_shutdown = false;
  bool is_migrating_zk_broker = false;
  std::vector<Uuid> log_dirs;

  const Endpoint* endpoint(std::string_view listener) const;
  bool operator==(const BrokerRegistration&) const = default;
};

struct ControllerRegistration {
  std::int32_t id = -1;
  Uuid incarnation_id{};
  bool zk_migration_ready = false;
  std::vector<Endpoint> endpoints;
  std::vector<SupportedFeature> supported_features;
  bool operator==(const ControllerRegistration&) const = default;
};

struct PartitionState {
  std::int32_t partition = -1;
  std::vector<std::int32_t> replicas;  // preferred order
  std::vector<std::int32_t> isr;
  std::vector<std::int32_t> removing_replicas;
  std::vector<std::int32_t> adding_replicas;
  std::int32_t leader = kNoLeader;
  std::int8_t leader_recovery_state = 0;  // 1 while recovering from an unclean election
  std::int32_t leader_epoch = 0;
  std::int32_t partition_epoch = 0;       // +1 on every change
  std::vector<Uuid> directories;          // per replica, or empty when not known
  std::vector<std::int32_t> eligible_leader_replicas;
  std::vector<std::int32_t> last_known_elr;

  bool has_leader() const { return leader >= 0; }
  bool operator==(const PartitionState&) const = default;
};

struct TopicImage {
  std::string name;
  Uuid id{};
  std::map<std::int32_t, PartitionState> partitions;

  const PartitionState* partition(std::int32_t index) const;
  bool operator==(const TopicImage&) const = default;
};

// Kafka's ConfigResource.Type codes. Cluster-wide broker defaults are the broker resource named "".
enum class ConfigResourceType : std::int8_t {
  topic = 2,
  broker = 4,
  broker_logger = 8,
  client_metrics = 16,
};

struct ConfigResource {
  ConfigResourceType type = ConfigResourceType::topic;
  std::string name;
  auto operator<=>(const ConfigResource&) const = default;
};

// Kafka's DescribeConfigs ConfigSource codes, for the sources the image holds.
enum class ConfigSource : std::int8_t {
  topic = 1,
  dynamic_broker = 2,
  dynamic_default_broker = 3,
  dynamic_broker_logger = 6,
  client_metrics = 7,
};

struct ConfigValue {
  std::string value;
  ConfigSource source = ConfigSource::topic;
  bool operator==(const ConfigValue&) const = default;
};

using ConfigMap = std::map<std::string, std::string, std::less<>>;

struct AclEntry {
  Uuid id{};
  std::int8_t resource_type = 0;  // Kafka's ResourceType code
  std::string resource_name;
  std::int8_t pattern_type = 0;  // 3 LITERAL, 4 PREFIXED
  std::string principal;
  std::string host;
  std::int8_t operation = 0;   // Kafka's AclOperation code
  std::int8_t permission = 0;  // 2 DENY, 3 ALLOW
  bool operator==(const AclEntry&) const = default;
};

enum class ScramMechanism : std::int8_t { sha256 = 1, sha512 = 2 };

struct ScramCredential {
  std::string user;
  ScramMechanism mechanism = ScramMechanism::sha256;
  Bytes salt;
  Bytes stored_key;
  Bytes server_key;
  std::int32_t iterations = 0;
  bool operator==(const ScramCredential&) const = default;
};

// (entity type, entity name or nullopt for the default entity), sorted by type.
using ClientQuotaEntity = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct DelegationToken {
  std::string token_id;
  std::string owner;
  std::string requester;
  std::vector<std::string> renewers;
  std::int64_t issue_timestamp = 0;
  std::int64_t max_timestamp = 0;
  std::int64_t expiration_timestamp = 0;
  bool operator==(const DelegationToken&) const = default;
};

struct ProducerIdBlock {
  std::int64_t next_producer_id = 0;  // the first id of the next block to hand out
  std::int32_t broker_id = -1;        // who asked for the last block
  std::int64_t broker_epoch = -1;
  bool operator==(const ProducerIdBlock&) const = default;
};

// Where in the metadata log an image stands: the last record it includes.
struct LogPosition {
  std::int64_t offset = -1;
  std::int32_t epoch = -1;
  bool operator==(const LogPosition&) const = default;
};

// What a listener lookup returns: a broker and its endpoint on that listener.
struct BrokerEndpoint {
  std::int32_t broker_id = -1;
  const Endpoint* endpoint = nullptr;
  const std::optional<std::string>* rack = nullptr;
};

class MetadataImage;
using ImagePtr = std::shared_ptr<const MetadataImage>;

class MetadataImage {
 public:
  // The image before any record.
  static ImagePtr empty();

  LogPosition position() const { return position_; }
  std::int64_t offset() const { return position_.offset; }

  // Features: finalized levels by name. metadata.version is 0 until a FeatureLevelRecord sets it.
  std::int16_t metadata_version() const;
  std::optional<std::int16_t> feature_level(std::string_view name) const;
  const std::map<std::string, std::int16_t, std::less<>>& features() const;
  std::int8_t zk_migration_state() const;

  // Brokers and controllers.
  const std::map<std::int32_t, BrokerRegistration>& brokers() const;
  const BrokerRegistration* broker(std::int32_t id) const;
  // Registered and not fenced, by id.
  std::vector<const BrokerRegistration*> live_brokers() const;
  // Every broker (unfenced only unless include_fenced) with an endpoint on this listener, by id.
  std::vector<BrokerEndpoint> endpoints_for(std::string_view listener, bool include_fenced = false) const;
  const std::map<std::int32_t, ControllerRegistration>& controllers() const;
  const ControllerRegistration* controller(std::int32_t id) const;

  // Topics and partitions.
  std::size_t topic_count() const;
  const TopicImage* topic(std::string_view name) const;
  const TopicImage* topic(const Uuid& id) const;
  const PartitionState* partition(std::string_view topic_name, std::int32_t index) const;
  const PartitionState* partition(const Uuid& topic_id, std::int32_t index) const;
  // All topics in name order.
  std::vector<const TopicImage*> topics() const;

  // Configs. config() finds a key on the resource itself and, for a broker, then in the cluster-wide
  // broker defaults (the broker resource ""); static and built-in defaults are not in the image.
  const ConfigMap* configs(const ConfigResource& resource) const;
  std::optional<ConfigValue> config(const ConfigResource& resource, std::string_view key) const;
  std::vector<ConfigResource> config_resources() const;

  // Client quotas (KIP-546), delegation tokens.
  const std::map<ClientQuotaEntity, std::map<std::string, double>>& client_quotas() const;
  const std::map<std::string, DelegationToken, std::less<>>& delegation_tokens() const;

  // ACLs in id order, and one by id.
  std::vector<AclEntry> acls() const;
  std::size_t acl_count() const;
  const AclEntry* acl(const Uuid& id) const;

  // SCRAM credentials.
  const ScramCredential* scram_credential(std::string_view user, ScramMechanism mechanism) const;
  std::vector<const ScramCredential*> scram_credentials() const;

  const ProducerIdBlock& producer_ids() const;

  // Same position and same content.
  bool operator==(const MetadataImage& other) const;
  // A 64-bit FNV-1a digest of the position and of the snapshot records' encodings: equal images have
  // equal digests (for comparing replicas cheaply; not a cryptographic commitment).
  std::uint64_t digest() const;

  struct Sections;  // the shared, copy-on-write parts (image.cpp)
  explicit MetadataImage(std::shared_ptr<const Sections> sections, LogPosition position);

 private:
  friend class MetadataDelta;
  std::shared_ptr<const Sections> sections_;
  LogPosition position_;
};

// Applies records on top of a base image. apply() either applies the whole record or, when the record
// does not fit the image so far, returns an error and changes nothing. build() produces an image of
// everything applied so far; the delta may go on applying afterwards without touching that image.
class MetadataDelta {
 public:
  explicit MetadataDelta(ImagePtr base);
  ~MetadataDelta();
  MetadataDelta(const MetadataDelta&) = delete;
  MetadataDelta& operator=(const MetadataDelta&) = delete;

  Status apply(const AnyRecord& record);
  std::size_t applied() const { return applied_; }
  // The image as of `position` (the last record applied). Records of a metadata transaction
  // (Begin/End/AbortTransactionRecord) are the caller's to group: the delta treats the markers as
  // no-ops.
  ImagePtr build(LogPosition position);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::size_t applied_ = 0;
};

// A record and where it sits in the log.
struct PositionedRecord {
  AnyRecord record;
  LogPosition position;
};

// All or nothing: the image after every record, or the first error (naming the record's offset).
Result<ImagePtr> apply_records(const ImagePtr& base, std::span<const PositionedRecord> records);

// What a KRaft snapshot of the image contains: records that rebuild it from the empty image, in
// Kafka's section order (features with metadata.version first, brokers, controllers, topics with their
// partitions, configs, client quotas, producer ids, ACLs, SCRAM, delegation tokens).
std::vector<AnyRecord> snapshot_records(const MetadataImage& image);
// Rebuilds an image from a snapshot's records; position is the snapshot's (last contained record).
Result<ImagePtr> image_from_snapshot(std::span<const AnyRecord> records, LogPosition position);

// Hands the current image to any number of readers without locks on their side; one writer (the
// metadata loader) publishes newer images by pointer swap. Readers keep the image they loaded alive.
class ImagePublisher {
 public:
  explicit ImagePublisher(ImagePtr initial = MetadataImage::empty());

  ImagePtr current() const { return image_.load(std::memory_order_acquire); }
  // Refuses an image behind the current one (a publisher never goes back in the log).
  Status publish(ImagePtr next);

 private:
  std::atomic<ImagePtr> image_;
};

}  // namespace bulwark::cluster
