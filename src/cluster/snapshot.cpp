// An image as the records that rebuild it (what a KRaft snapshot holds), in Kafka's section order.
#include "cluster/image.h"
#include "cluster/image_sections.h"

namespace bulwark::cluster {

namespace {

template <class Out>
void endpoints_to(const std::vector<Endpoint>& endpoints, Out& out) {
  for (const auto& e : endpoints) {
    auto& r = out.emplace_back();
    r.name = e.listener;
    r.host = e.host;
    r.port = e.port;
    r.security_protocol = e.security_protocol;
  }
}

template <class Out>
void features_to(const std::vector<SupportedFeature>& features, Out& out) {
  for (const auto& f : features) {
    auto& r = out.emplace_back();
    r.name = f.name;
    r.min_supported_version = f.min_version;
    r.max_supported_version = f.max_version;
  }
}

void write_features(const MetadataImage& image, std::vector<AnyRecord>& out) {
  // metadata.version first: a reader needs it to interpret what follows.
  if (auto mv = image.feature_level(kMetadataVersionFeature)) {
    rec::FeatureLevelRecord r;
    r.name = std::string(kMetadataVersionFeature);
    r.feature_level = *mv;
    out.push_back(make_record(std::move(r)));
  }
  for (const auto& [name, level] : image.features()) {
    if (name == kMetadataVersionFeature) continue;
    rec::FeatureLevelRecord r;
    r.name = name;
    r.feature_level = level;
    out.push_back(make_record(std::move(r)));
  }
  if (image.zk_migration_state() != 0) {
    rec::ZkMigrationStateRecord r;
    r.zk_migration_state = image.zk_migration_state();
    out.push_back(make_record(std::move(r)));
  }
}

void write_cluster(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const auto& [id, b] : image.brokers()) {
    rec::RegisterBrokerRecord r;
    r.broker_id = id;
    r.is_migrating_zk_broker = b.is_migrating_zk_broker;
    r.incarnation_id = b.incarnation_id;
    r.broker_epoch = b.epoch;
    endpoints_to(b.endpoints, r.end_points);
    features_to(b.supported_features, r.features);
    r.rack = b.rack;
    r.fenced = b.fenced;
    r.in_controlled_shutdown = b.in_controlled_shutdown;
    r.log_dirs = b.log_dirs;
    out.push_back(make_record(std::move(r)));
  }
  for (const auto& [id, c] : image.controllers()) {
    rec::RegisterControllerRecord r;
    r.controller_id = id;
    r.incarnation_id = c.incarnation_id;
    r.zk_migration_ready = c.zk_migration_ready;
    endpoints_to(c.endpoints, r.end_points);
    features_to(c.supported_features, r.features);
    out.push_back(make_record(std::move(r)));
  }
}

std::optional<std::vector<std::int32_t>> nullable(const std::vector<std::int32_t>& v) {
  if (v.empty()) return std::nullopt;
  return v;
}

void write_topics(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const TopicImage* t : image.topics()) {
    rec::TopicRecord topic;
    topic.name = t->name;
    topic.topic_id = t->id;
    out.push_back(make_record(std::move(topic)));
    for (const auto& [index, p] : t->partitions) {
      rec::PartitionRecord r;
      r.partition_id = index;
      r.topic_id = t->id;
      r.replicas = p.replicas;
      r.isr = p.isr;
      r.removing_replicas = p.removing_replicas;
      r.adding_replicas = p.adding_replicas;
      r.leader = p.leader;
      r.leader_recovery_state = p.leader_recovery_state;
      r.leader_epoch = p.leader_epoch;
      r.partition_epoch = p.partition_epoch;
      r.directories = p.directories;
      r.eligible_leader_replicas = nullable(p.eligible_leader_replicas);
      r.last_known_elr = nullable(p.last_known_elr);
      out.push_back(make_record(std::move(r)));
    }
  }
}

void write_configs(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const ConfigResource& resource : image.config_resources()) {
    for (const auto& [key, value] : *image.configs(resource)) {
      rec::ConfigRecord r;
      r.resource_type = static_cast<std::int8_t>(resource.type);
      r.resource_name = resource.name;
      r.name = key;
      r.value = value;
      out.push_back(make_record(std::move(r)));
    }
  }
}

void write_quotas(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const auto& [entity, values] : image.client_quotas()) {
    for (const auto& [key, value] : values) {
      rec::ClientQuotaRecord r;
      for (const auto& [type, name] : entity) {
        auto& e = r.entity.emplace_back();
        e.entity_type = type;
        e.entity_name = name;
      }
      r.key = key;
      r.value = value;
      r.remove = false;
      out.push_back(make_record(std::move(r)));
    }
  }
}

void write_producer_ids(const MetadataImage& image, std::vector<AnyRecord>& out) {
  const ProducerIdBlock& block = image.producer_ids();
  if (block == ProducerIdBlock{}) return;
  rec::ProducerIdsRecord r;
  r.broker_id = block.broker_id;
  r.broker_epoch = block.broker_epoch;
  r.next_producer_id = block.next_producer_id;
  out.push_back(make_record(std::move(r)));
}

void write_acls(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const AclEntry& acl : image.acls()) {
    rec::AccessControlEntryRecord r;
    r.id = acl.id;
    r.resource_type = acl.resource_type;
    r.resource_name = acl.resource_name;
    r.pattern_type = acl.pattern_type;
    r.principal = acl.principal;
    r.host = acl.host;
    r.operation = acl.operation;
    r.permission_type = acl.permission;
    out.push_back(make_record(std::move(r)));
  }
}

void write_scram(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const ScramCredential* c : image.scram_credentials()) {
    rec::UserScramCredentialRecord r;
    r.name = c->user;
    r.mechanism = static_cast<std::int8_t>(c->mechanism);
    r.salt = c->salt;
    r.stored_key = c->stored_key;
    r.server_key = c->server_key;
    r.iterations = c->iterations;
    out.push_back(make_record(std::move(r)));
  }
}

void write_tokens(const MetadataImage& image, std::vector<AnyRecord>& out) {
  for (const auto& [id, t] : image.delegation_tokens()) {
    rec::DelegationTokenRecord r;
    r.owner = t.owner;
    r.requester = t.requester;
    r.renewers = t.renewers;
    r.issue_timestamp = t.issue_timestamp;
    r.max_timestamp = t.max_timestamp;
    r.expiration_timestamp = t.expiration_timestamp;
    r.token_id = id;
    out.push_back(make_record(std::move(r)));
  }
}

}  // namespace

std::vector<AnyRecord> snapshot_records(const MetadataImage& image) {
  std::vector<AnyRecord> out;
  write_features(image, out);
  write_cluster(image, out);
  write_topics(image, out);
  write_configs(image, out);
  write_quotas(image, out);
  write_producer_ids(image, out);
  write_acls(image, out);
  write_scram(image, out);
  write_tokens(image, out);
  return out;
}

Result<ImagePtr> image_from_snapshot(std::span<const AnyRecord> records, LogPosition position) {
  MetadataDelta delta(MetadataImage::empty());
  for (std::size_t i = 0; i < records.size(); ++i) {
    Status status = delta.apply(records[i]);
    if (!status.ok()) {
      return make_error(status.error().kind,
                        "snapshot record " + std::to_string(i) + ": " + status.error().message);
    }
  }
  return delta.build(position);
}

}  // namespace bulwark::cluster
