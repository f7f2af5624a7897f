// MetadataDelta: Kafka's replay semantics for every metadata record (apache/kafka metadata/image/*Delta
// and PartitionRegistration.merge), checked against the image so far. Every replay validates first and
// mutates after, so a record that does not fit leaves the delta as it was.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "cluster/image.h"
#include "cluster/image_sections.h"

namespace bulwark::cluster {

namespace {

// A section shared with the base image until the first write, then privately owned until the next
// build() freezes it (after which a write copies again, so built images never change).
template <class T>
class CopyOnWrite {
 public:
  explicit CopyOnWrite(std::shared_ptr<const T> base) : current_(std::move(base)) {}
  const T& get() const { return *current_; }
  T& mut() {
    if (!owned_) {
      owned_ = std::make_shared<T>(*current_);
      current_ = owned_;
    }
    return *owned_;
  }
  std::shared_ptr<const T> freeze() {
    owned_.reset();
    return current_;
  }

 private:
  std::shared_ptr<const T> current_;
  std::shared_ptr<T> owned_;
};

Error not_found(std::string message) { return make_error(ErrorKind::not_found, std::move(message)); }
Error already_exists(std::string message) { return make_error(ErrorKind::already_exists, std::move(message)); }
Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

std::string str(std::int64_t v) { return std::to_string(v); }

std::vector<Endpoint> to_endpoints(const auto& record_endpoints) {
  std::vector<Endpoint> out;
  for (const auto& e : record_endpoints) out.push_back(Endpoint{e.name, e.host, e.port, e.security_protocol});
  return out;
}

std::vector<SupportedFeature> to_features(const auto& record_features) {
  std::vector<SupportedFeature> out;
  for (const auto& f : record_features) {
    out.push_back(SupportedFeature{f.name, f.min_supported_version, f.max_supported_version});
  }
  return out;
}

bool unique_listeners(const std::vector<Endpoint>& endpoints) {
  std::set<std::string_view> names;
  for (const auto& e : endpoints) {
    if (!names.insert(e.listener).second) return false;
  }
  return true;
}

bool known_config_type(std::int8_t code) { return code == 2 || code == 4 || code == 8 || code == 16; }

// The ACL codes a stored ACL may carry (no UNKNOWN, ANY or MATCH).
bool valid_acl_codes(std::int8_t resource_type, std::int8_t pattern_type, std::int8_t operation,
                     std::int8_t permission) {
  return resource_type >= 2 && resource_type <= 7 && (pattern_type == 3 || pattern_type == 4) && operation >= 2 &&
         operation <= 14 && (permission == 2 || permission == 3);
}

bool valid_mechanism(std::int8_t code) { return code == 1 || code == 2; }

ClientQuotaEntity to_entity(const rec::ClientQuotaRecord& r) {
  ClientQuotaEntity entity;
  for (const auto& e : r.entity) entity.emplace_back(e.entity_type, e.entity_name);
  std::sort(entity.begin(), entity.end());
  return entity;
}

}  // namespace

class MetadataDelta::Impl {
 public:
  explicit Impl(const MetadataImage::Sections& base)
      : features_(base.features),
        cluster_(base.cluster),
        topics_(base.topics),
        configs_(base.configs),
        quotas_(base.quotas),
        producer_ids_(base.producer_ids),
        acls_(base.acls),
        scram_(base.scram),
        tokens_(base.tokens) {}

  std::shared_ptr<const MetadataImage::Sections> freeze() {
    auto s = std::make_shared<MetadataImage::Sections>();
    s->features = features_.freeze();
    s->cluster = cluster_.freeze();
    s->topics = topics_.freeze();
    s->configs = configs_.freeze();
    s->quotas = quotas_.freeze();
    s->producer_ids = producer_ids_.freeze();
    s->acls = acls_.freeze();
    s->scram = scram_.freeze();
    s->tokens = tokens_.freeze();
    owned_topics_.clear();
    return s;
  }

  // --- Features ---

  Status replay(const rec::FeatureLevelRecord& r) {
    if (r.name == kMetadataVersionFeature) {
      if (r.feature_level < 1)
        return invalid("FeatureLevelRecord: metadata.version " + str(r.feature_level) + " is below 1");
      features_.mut().levels[r.name] = r.feature_level;
      return {};
    }
    if (r.feature_level < 0)
      return invalid("FeatureLevelRecord: " + r.name + " level " + str(r.feature_level) + " is negative");
    if (r.feature_level == 0) {
      features_.mut().levels.erase(r.name);  // level 0: the feature is off
    } else {
      features_.mut().levels[r.name] = r.feature_level;
    }
    return {};
  }

  Status replay(const rec::ZkMigrationStateRecord& r) {
    if (r.zk_migration_state < 0 || r.zk_migration_state > 3) {
      return invalid("ZkMigrationStateRecord: unknown state " + str(r.zk_migration_state));
    }
    features_.mut().zk_migration_state = r.zk_migration_state;
    return {};
  }

  // --- Brokers and controllers ---

  Status replay(const rec::RegisterBrokerRecord& r) {
    if (r.broker_id < 0) return invalid("RegisterBrokerRecord: broker id " + str(r.broker_id) + " is negative");
    BrokerRegistration b;
    b.id = r.broker_id;
    b.incarnation_id = r.incarnation_id;
    b.epoch = r.broker_epoch;
    b.endpoints = to_endpoints(r.end_points);
    b.supported_features = to_features(r.features);
    b.rack = r.rack;
    b.fenced = r.fenced;
    b.in_controlled_shutdown = r.in_controlled_shutdown;
    b.is_migrating_zk_broker = r.is_migrating_zk_broker;
    b.log_dirs = r.log_dirs;
    if (!unique_listeners(b.endpoints)) {
      return invalid("RegisterBrokerRecord: broker " + str(r.broker_id) + " names a listener twice");
    }
    cluster_.mut().brokers[r.broker_id] = std::move(b);  // a re-registration replaces the old one
    return {};
  }

  Status replay(const rec::UnregisterBrokerRecord& r) {
    BULWARK_TRY(check_broker(r.broker_id, r.broker_epoch, "unregister"));
    cluster_.mut().brokers.erase(r.broker_id);
    return {};
  }

  Status replay(const rec::FenceBrokerRecord& r) {
    BULWARK_TRY(check_broker(r.id, r.epoch, "fence"));
    cluster_.mut().brokers.at(r.id).fenced = true;
    return {};
  }

  Status replay(const rec::UnfenceBrokerRecord& r) {
    BULWARK_TRY(check_broker(r.id, r.epoch, "unfence"));
    cluster_.mut().brokers.at(r.id).fenced = false;
    return {};
  }

  Status replay(const rec::BrokerRegistrationChangeRecord& r) {
    BULWARK_TRY(check_broker(r.broker_id, r.broker_epoch, "change"));
    if (r.fenced < -1 || r.fenced > 1) {
      return invalid("BrokerRegistrationChangeRecord: unknown fenced value " + str(r.fenced));
    }
    if (r.in_controlled_shutdown < 0 || r.in_controlled_shutdown > 1) {
      return invalid("BrokerRegistrationChangeRecord: unknown inControlledShutdown value " +
                     str(r.in_controlled_shutdown));
    }
    BrokerRegistration& b = cluster_.mut().brokers.at(r.broker_id);
    if (r.fenced != 0) b.fenced = r.fenced == 1;  // -1 unfenced, 0 unchanged, 1 fenced
    if (r.in_controlled_shutdown == 1) b.in_controlled_shutdown = true;
    if (!r.log_dirs.empty()) b.log_dirs = r.log_dirs;
    return {};
  }

  Status replay(const rec::RegisterControllerRecord& r) {
    if (r.controller_id < 0)
      return invalid("RegisterControllerRecord: controller id " + str(r.controller_id) + " is negative");
    ControllerRegistration c;
    c.id = r.controller_id;
    c.incarnation_id = r.incarnation_id;
    c.zk_migration_ready = r.zk_migration_ready;
    c.endpoints = to_endpoints(r.end_points);
    c.supported_features = to_features(r.features);
    if (!unique_listeners(c.endpoints)) {
      return invalid("RegisterControllerRecord: controller " + str(r.controller_id) + " names a listener twice");
    }
    cluster_.mut().controllers[r.controller_id] = std::move(c);
    return {};
  }

  // --- Topics and partitions ---

  Status replay(const rec::TopicRecord& r) {
    if (r.name.empty()) return invalid("TopicRecord: empty topic name");
    if (r.topic_id == Uuid{}) return invalid("TopicRecord: topic " + r.name + " has the zero topic id");
    const TopicsSection& topics = topics_.get();
    if (topics.by_id.contains(r.topic_id)) {
      return already_exists("TopicRecord: topic id " + uuid_string(r.topic_id) + " already exists (topic " +
                            topics.by_id.at(r.topic_id)->name + ")");
    }
    if (topics.by_name.contains(r.name)) return already_exists("TopicRecord: topic " + r.name + " already exists");
    auto topic = std::make_shared<TopicImage>();
    topic->name = r.name;
    topic->id = r.topic_id;
    TopicsSection& m = topics_.mut();
    m.by_id[r.topic_id] = topic;
    m.by_name[r.name] = r.topic_id;
    owned_topics_[r.topic_id] = std::move(topic);
    return {};
  }

  Status replay(const rec::PartitionRecord& r) {
    const TopicImage* topic = find_topic(r.topic_id);
    if (topic == nullptr) {
      return not_found("PartitionRecord: partition " + str(r.partition_id) + " of unknown topic id " +
                       uuid_string(r.topic_id));
    }
    if (r.partition_id < 0) return invalid("PartitionRecord: negative partition id in topic " + topic->name);
    if (!r.directories.empty() && r.directories.size() != r.replicas.size()) {
      return invalid("PartitionRecord: " + topic->name + "-" + str(r.partition_id) + " has " +
                     str(static_cast<std::int64_t>(r.directories.size())) + " directories for " +
                     str(static_cast<std::int64_t>(r.replicas.size())) + " replicas");
    }
    if (r.leader < kNoLeader)
      return invalid("PartitionRecord: " + topic->name + "-" + str(r.partition_id) + " has leader " + str(r.leader));
    PartitionState p;
    p.partition = r.partition_id;
    p.replicas = r.replicas;
    p.isr = r.isr;
    p.removing_replicas = r.removing_replicas;
    p.adding_replicas = r.adding_replicas;
    p.leader = r.leader;
    p.leader_recovery_state = r.leader_recovery_state;
    p.leader_epoch = r.leader_epoch;
    p.partition_epoch = r.partition_epoch;
    p.directories = r.directories;
    p.eligible_leader_replicas = r.eligible_leader_replicas.value_or(std::vector<std::int32_t>{});
    p.last_known_elr = r.last_known_elr.value_or(std::vector<std::int32_t>{});
    mutable_topic(r.topic_id).partitions[r.partition_id] = std::move(p);
    return {};
  }

  Status replay(const rec::PartitionChangeRecord& r) {
    const TopicImage* topic = find_topic(r.topic_id);
    if (topic == nullptr) {
      return not_found("PartitionChangeRecord: partition " + str(r.partition_id) + " of unknown topic id " +
                       uuid_string(r.topic_id));
    }
    const PartitionState* old = topic->partition(r.partition_id);
    const std::string where = topic->name + "-" + str(r.partition_id);
    if (old == nullptr) return not_found("PartitionChangeRecord: unknown partition " + where);
    const auto& replicas = r.replicas ? *r.replicas : old->replicas;
    if (r.directories && !r.directories->empty() && r.directories->size() != replicas.size()) {
      return invalid("PartitionChangeRecord: " + where + " has " +
                     str(static_cast<std::int64_t>(r.directories->size())) + " directories for " +
                     str(static_cast<std::int64_t>(replicas.size())) + " replicas");
    }
    if (r.leader < kNoLeaderChange) return invalid("PartitionChangeRecord: " + where + " has leader " + str(r.leader));
    if (r.leader_recovery_state < -1 || r.leader_recovery_state > 1) {
      return invalid("PartitionChangeRecord: " + where + " has unknown leader recovery state " +
                     str(r.leader_recovery_state));
    }
    PartitionState p = *old;
    if (r.replicas) {
      p.replicas = *r.replicas;
      // Directories follow their replicas; a new replica set without new directories has unknown ones.
      if (!r.directories && p.directories.size() != p.replicas.size()) p.directories.clear();
    }
    if (r.directories) p.directories = *r.directories;
    if (r.isr) p.isr = *r.isr;
    if (r.removing_replicas) p.removing_replicas = *r.removing_replicas;
    if (r.adding_replicas) p.adding_replicas = *r.adding_replicas;
    if (r.leader != kNoLeaderChange) {
      p.leader = r.leader;
      p.leader_epoch = old->leader_epoch + 1;  // only a leader change (or an explicit re-election) bumps it
    }
    if (r.leader_recovery_state != -1) p.leader_recovery_state = r.leader_recovery_state;
    if (r.eligible_leader_replicas) p.eligible_leader_replicas = *r.eligible_leader_replicas;
    if (r.last_known_elr) p.last_known_elr = *r.last_known_elr;
    p.partition_epoch = old->partition_epoch + 1;
    mutable_topic(r.topic_id).partitions[r.partition_id] = std::move(p);
    return {};
  }

  Status replay(const rec::RemoveTopicRecord& r) {
    const TopicImage* topic = find_topic(r.topic_id);
    if (topic == nullptr) return not_found("RemoveTopicRecord: unknown topic id " + uuid_string(r.topic_id));
    const std::string name = topic->name;
    TopicsSection& m = topics_.mut();
    m.by_id.erase(r.topic_id);
    m.by_name.erase(name);
    owned_topics_.erase(r.topic_id);
    // The topic's configs go with it.
    const ConfigResource resource{ConfigResourceType::topic, name};
    if (configs_.get().resources.contains(resource)) configs_.mut().resources.erase(resource);
    return {};
  }

  // --- Configs and quotas ---

  Status replay(const rec::ConfigRecord& r) {
    if (!known_config_type(r.resource_type)) {
      return invalid("ConfigRecord: unknown resource type " + str(r.resource_type) + " for " + r.resource_name);
    }
    if (r.name.empty()) return invalid("ConfigRecord: empty config name for " + r.resource_name);
    const ConfigResource resource{static_cast<ConfigResourceType>(r.resource_type), r.resource_name};
    if (!r.value) {
      const auto& resources = configs_.get().resources;
      auto it = resources.find(resource);
      if (it == resources.end() || !it->second.contains(r.name)) return {};  // deleting what is not set
      auto& map = configs_.mut().resources.at(resource);
      map.erase(r.name);
      if (map.empty()) configs_.mut().resources.erase(resource);
      return {};
    }
    configs_.mut().resources[resource][r.name] = *r.value;
    return {};
  }

  Status replay(const rec::ClientQuotaRecord& r) {
    if (r.entity.empty()) return invalid("ClientQuotaRecord: no entity for " + r.key);
    if (!r.remove && !std::isfinite(r.value)) return invalid("ClientQuotaRecord: " + r.key + " is not a finite number");
    ClientQuotaEntity entity = to_entity(r);
    for (std::size_t i = 1; i < entity.size(); ++i) {
      if (entity[i].first == entity[i - 1].first) {
        return invalid("ClientQuotaRecord: entity type " + entity[i].first + " given twice");
      }
    }
    if (r.remove) {
      const auto& entities = quotas_.get().entities;
      auto it = entities.find(entity);
      if (it == entities.end() || !it->second.contains(r.key)) return {};
      auto& map = quotas_.mut().entities.at(entity);
      map.erase(r.key);
      if (map.empty()) quotas_.mut().entities.erase(entity);
      return {};
    }
    quotas_.mut().entities[entity][r.key] = r.value;
    return {};
  }

  // --- Producer ids ---

  Status replay(const rec::ProducerIdsRecord& r) {
    if (r.next_producer_id < producer_ids_.get().next_producer_id) {
      return invalid("ProducerIdsRecord: next producer id " + str(r.next_producer_id) + " is below the current " +
                     str(producer_ids_.get().next_producer_id) + " (ids would be handed out twice)");
    }
    producer_ids_.mut() = ProducerIdBlock{r.next_producer_id, r.broker_id, r.broker_epoch};
    return {};
  }

  // --- ACLs ---

  Status replay(const rec::AccessControlEntryRecord& r) {
    if (!valid_acl_codes(r.resource_type, r.pattern_type, r.operation, r.permission_type)) {
      return invalid("AccessControlEntryRecord: ACL " + uuid_string(r.id) +
                     " has an unknown resource type, pattern, "
                     "operation or permission code");
    }
    if (acls_.get().by_id.contains(r.id)) {
      return already_exists("AccessControlEntryRecord: ACL id " + uuid_string(r.id) + " already exists");
    }
    acls_.mut().by_id[r.id] = AclEntry{r.id,        r.resource_type, r.resource_name, r.pattern_type,
                                       r.principal, r.host,          r.operation,     r.permission_type};
    return {};
  }

  Status replay(const rec::RemoveAccessControlEntryRecord& r) {
    if (!acls_.get().by_id.contains(r.id)) {
      return not_found("RemoveAccessControlEntryRecord: unknown ACL id " + uuid_string(r.id));
    }
    acls_.mut().by_id.erase(r.id);
    return {};
  }

  // --- SCRAM ---

  Status replay(const rec::UserScramCredentialRecord& r) {
    if (!valid_mechanism(r.mechanism)) {
      return invalid("UserScramCredentialRecord: unknown mechanism " + str(r.mechanism) + " for user " + r.name);
    }
    if (r.iterations <= 0) {
      return invalid("UserScramCredentialRecord: " + str(r.iterations) + " iterations for user " + r.name);
    }
    const auto mechanism = static_cast<ScramMechanism>(r.mechanism);
    scram_.mut().credentials[{r.name, mechanism}] =
        ScramCredential{r.name, mechanism, r.salt, r.stored_key, r.server_key, r.iterations};
    return {};
  }

  Status replay(const rec::RemoveUserScramCredentialRecord& r) {
    if (!valid_mechanism(r.mechanism)) {
      return invalid("RemoveUserScramCredentialRecord: unknown mechanism " + str(r.mechanism) + " for user " + r.name);
    }
    const auto key = std::make_pair(r.name, static_cast<ScramMechanism>(r.mechanism));
    if (!scram_.get().credentials.contains(key)) {
      return not_found("RemoveUserScramCredentialRecord: user " + r.name + " has no credential for mechanism " +
                       str(r.mechanism));
    }
    scram_.mut().credentials.erase(key);
    return {};
  }

  // --- Delegation tokens ---

  Status replay(const rec::DelegationTokenRecord& r) {
    if (r.token_id.empty()) return invalid("DelegationTokenRecord: empty token id");
    tokens_.mut().by_id[r.token_id] = DelegationToken{
        r.token_id, r.owner, r.requester, r.renewers, r.issue_timestamp, r.max_timestamp, r.expiration_timestamp};
    return {};
  }

  Status replay(const rec::RemoveDelegationTokenRecord& r) {
    if (!tokens_.get().by_id.contains(r.token_id)) {
      return not_found("RemoveDelegationTokenRecord: unknown token id " + r.token_id);
    }
    tokens_.mut().by_id.erase(r.token_id);
    return {};
  }

  // --- Records without effect on the image ---

  Status replay(const rec::NoOpRecord&) { return {}; }
  // Metadata transactions (KIP-868) group records; grouping is the log loader's job.
  Status replay(const rec::BeginTransactionRecord&) { return {}; }
  Status replay(const rec::EndTransactionRecord&) { return {}; }
  Status replay(const rec::AbortTransactionRecord&) { return {}; }

 private:
  Status check_broker(std::int32_t id, std::int64_t epoch, std::string_view action) const {
    const auto& brokers = cluster_.get().brokers;
    auto it = brokers.find(id);
    if (it == brokers.end()) {
      return not_found("cannot " + std::string(action) + " broker " + str(id) + ": it is not registered");
    }
    if (it->second.epoch != epoch) {
      return invalid("cannot " + std::string(action) + " broker " + str(id) + ": epoch " + str(epoch) +
                     " is not its current epoch " + str(it->second.epoch));
    }
    return {};
  }

  const TopicImage* find_topic(const Uuid& id) const {
    const auto& by_id = topics_.get().by_id;
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second.get();
  }

  // The topic, copied out of the shared section on its first change since the last build.
  TopicImage& mutable_topic(const Uuid& id) {
    auto owned = owned_topics_.find(id);
    if (owned != owned_topics_.end()) return *owned->second;
    auto& slot = topics_.mut().by_id.at(id);
    auto copy = std::make_shared<TopicImage>(*slot);
    slot = copy;
    owned_topics_[id] = copy;
    return *copy;
  }

  CopyOnWrite<FeaturesSection> features_;
  CopyOnWrite<ClusterSection> cluster_;
  CopyOnWrite<TopicsSection> topics_;
  CopyOnWrite<ConfigsSection> configs_;
  CopyOnWrite<QuotasSection> quotas_;
  CopyOnWrite<ProducerIdBlock> producer_ids_;
  CopyOnWrite<AclsSection> acls_;
  CopyOnWrite<ScramSection> scram_;
  CopyOnWrite<TokensSection> tokens_;
  std::map<Uuid, std::shared_ptr<TopicImage>> owned_topics_;  // topics this generation may write in place
};

MetadataDelta::MetadataDelta(ImagePtr base) : impl_(std::make_unique<Impl>(*base->sections_)) {}

MetadataDelta::~MetadataDelta() = default;

Status MetadataDelta::apply(const AnyRecord& record) {
  Status status = std::visit([this](const auto& r) { return impl_->replay(r); }, record.record);
  if (status.ok()) ++applied_;
  return status;
}

ImagePtr MetadataDelta::build(LogPosition position) {
  return std::make_shared<const MetadataImage>(impl_->freeze(), position);
}

Result<ImagePtr> apply_records(const ImagePtr& base, std::span<const PositionedRecord> records) {
  MetadataDelta delta(base);
  LogPosition last = base->position();
  for (const PositionedRecord& r : records) {
    if (r.position.offset <= last.offset) {
      return invalid(std::string(r.record.name()) + " at offset " + str(r.position.offset) +
                     " does not come after offset " + str(last.offset));
    }
    Status status = delta.apply(r.record);
    if (!status.ok()) {
      return make_error(status.error().kind,
                        "metadata record at offset " + str(r.position.offset) + ": " + status.error().message);
    }
    last = r.position;
  }
  return delta.build(last);
}

}  // namespace bulwark::cluster
