// Internal to cluster/: the sections a MetadataImage is made of. Each is immutable once an image holds
// it; a delta copies a section the first time a record changes it and shares the rest.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "cluster/image.h"

namespace bulwark::cluster {

struct FeaturesSection {
  std::map<std::string, std::int16_t, std::less<>> levels;
  std::int8_t zk_migration_state = 0;
  bool operator==(const FeaturesSection&) const = default;
};

struct ClusterSection {
  std::map<std::int32_t, BrokerRegistration> brokers;
  std::map<std::int32_t, ControllerRegistration> controllers;
  bool operator==(const ClusterSection&) const = default;
};

struct TopicsSection {
  std::map<Uuid, std::shared_ptr<const TopicImage>> by_id;
  std::map<std::string, Uuid, std::less<>> by_name;
};

struct ConfigsSection {
  std::map<ConfigResource, ConfigMap> resources;  // no empty maps: a resource without keys is absent
  bool operator==(const ConfigsSection&) const = default;
};

struct QuotasSection {
  std::map<ClientQuotaEntity, std::map<std::string, double>> entities;  // no empty maps
  bool operator==(const QuotasSection&) const = default;
};

struct AclsSection {
  std::map<Uuid, AclEntry> by_id;
  bool operator==(const AclsSection&) const = default;
};

struct ScramSection {
  std::map<std::pair<std::string, ScramMechanism>, ScramCredential> credentials;
  bool operator==(const ScramSection&) const = default;
};

struct TokensSection {
  std::map<std::string, DelegationToken, std::less<>> by_id;
  bool operator==(const TokensSection&) const = default;
};

struct MetadataImage::Sections {
  std::shared_ptr<const FeaturesSection> features;
  std::shared_ptr<const ClusterSection> cluster;
  std::shared_ptr<const TopicsSection> topics;
  std::shared_ptr<const ConfigsSection> configs;
  std::shared_ptr<const QuotasSection> quotas;
  std::shared_ptr<const ProducerIdBlock> producer_ids;
  std::shared_ptr<const AclsSection> acls;
  std::shared_ptr<const ScramSection> scram;
  std::shared_ptr<const TokensSection> tokens;
};

}  // namespace bulwark::cluster
