// MetadataImage: lookups, equality and digest. Building images is delta.cpp's, snapshots snapshot.cpp's.
#include "cluster/image.h"

#include "cluster/image_sections.h"

namespace bulwark::cluster {

const Endpoint* BrokerRegistration::endpoint(std::string_view listener) const {
  for (const auto& e : endpoints) {
    if (e.listener == listener) return &e;
  }
  return nullptr;
}

const PartitionState* TopicImage::partition(std::int32_t index) const {
  auto it = partitions.find(index);
  return it == partitions.end() ? nullptr : &it->second;
}

MetadataImage::MetadataImage(std::shared_ptr<const Sections> sections, LogPosition position)
    : sections_(std::move(sections)), position_(position) {}

ImagePtr MetadataImage::empty() {
  static const ImagePtr image = [] {
    auto s = std::make_shared<Sections>();
    s->features = std::make_shared<FeaturesSection>();
    s->cluster = std::make_shared<ClusterSection>();
    s->topics = std::make_shared<TopicsSection>();
    s->configs = std::make_shared<ConfigsSection>();
    s->quotas = std::make_shared<QuotasSection>();
    s->producer_ids = std::make_shared<ProducerIdBlock>();
    s->acls = std::make_shared<AclsSection>();
    s->scram = std::make_shared<ScramSection>();
    s->tokens = std::make_shared<TokensSection>();
    return std::make_shared<const MetadataImage>(std::move(s), LogPosition{});
  }();
  return image;
}

// --- Features ---------------------------------------------------------------------------------

std::int16_t MetadataImage::metadata_version() const { return feature_level(kMetadataVersionFeature).value_or(0); }

std::optional<std::int16_t> MetadataImage::feature_level(std::string_view name) const {
  const auto& levels = sections_->features->levels;
  auto it = levels.find(name);
  if (it == levels.end()) return std::nullopt;
  return it->second;
}

const std::map<std::string, std::int16_t, std::less<>>& MetadataImage::features() const {
  return sections_->features->levels;
}

std::int8_t MetadataImage::zk_migration_state() const { return sections_->features->zk_migration_state; }

// --- Brokers and controllers ------------------------------------------------------------------

const std::map<std::int32_t, BrokerRegistration>& MetadataImage::brokers() const { return sections_->cluster->brokers; }

const BrokerRegistration* MetadataImage::broker(std::int32_t id) const {
  const auto& brokers = sections_->cluster->brokers;
  auto it = brokers.find(id);
  return it == brokers.end() ? nullptr : &it->second;
}

std::vector<const BrokerRegistration*> MetadataImage::live_brokers() const {
  std::vector<const BrokerRegistration*> out;
  for (const auto& [id, b] : sections_->cluster->brokers) {
    if (!b.fenced) out.push_back(&b);
  }
  return out;
}

std::vector<BrokerEndpoint> MetadataImage::endpoints_for(std::string_view listener, bool include_fenced) const {
  std::vector<BrokerEndpoint> out;
  for (const auto& [id, b] : sections_->cluster->brokers) {
    if (b.fenced && !include_fenced) continue;
    if (const Endpoint* e = b.endpoint(listener)) out.push_back(BrokerEndpoint{id, e, &b.rack});
  }
  return out;
}

const std::map<std::int32_t, ControllerRegistration>& MetadataImage::controllers() const {
  return sections_->cluster->controllers;
}

const ControllerRegistration* MetadataImage::controller(std::int32_t id) const {
  const auto& controllers = sections_->cluster->controllers;
  auto it = controllers.find(id);
  return it == controllers.end() ? nullptr : &it->second;
}

// --- Topics -----------------------------------------------------------------------------------

std::size_t MetadataImage::topic_count() const { return sections_->topics->by_id.size(); }

const TopicImage* MetadataImage::topic(std::string_view name) const {
  const auto& by_name = sections_->topics->by_name;
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : topic(it->second);
}

const TopicImage* MetadataImage::topic(const Uuid& id) const {
  const auto& by_id = sections_->topics->by_id;
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : it->second.get();
}

const PartitionState* MetadataImage::partition(std::string_view topic_name, std::int32_t index) const {
  const TopicImage* t = topic(topic_name);
  return t ? t->partition(index) : nullptr;
}

const PartitionState* MetadataImage::partition(const Uuid& topic_id, std::int32_t index) const {
  const TopicImage* t = topic(topic_id);
  return t ? t->partition(index) : nullptr;
}

std::vector<const TopicImage*> MetadataImage::topics() const {
  std::vector<const TopicImage*> out;
  out.reserve(sections_->topics->by_name.size());
  for (const auto& [name, id] : sections_->topics->by_name) out.push_back(topic(id));
  return out;
}

// --- Configs ----------------------------------------------------------------------------------

const ConfigMap* MetadataImage::configs(const ConfigResource& resource) const {
  const auto& resources = sections_->configs->resources;
  auto it = resources.find(resource);
  return it == resources.end() ? nullptr : &it->second;
}

namespace {

ConfigSource own_source(ConfigResourceType type, bool cluster_default) {
  switch (type) {
    case ConfigResourceType::topic:
      return ConfigSource::topic;
    case ConfigResourceType::broker:
      return cluster_default ? ConfigSource::dynamic_default_broker : ConfigSource::dynamic_broker;
    case ConfigResourceType::broker_logger:
      return ConfigSource::dynamic_broker_logger;
    case ConfigResourceType::client_metrics:
      return ConfigSource::client_metrics;
  }
  return ConfigSource::topic;
}

}  // namespace

std::optional<ConfigValue> MetadataImage::config(const ConfigResource& resource, std::string_view key) const {
  const bool cluster_default = resource.type == ConfigResourceType::broker && resource.name.empty();
  if (const ConfigMap* own = configs(resource)) {
    auto it = own->find(key);
    if (it != own->end()) return ConfigValue{it->second, own_source(resource.type, cluster_default)};
  }
  if (resource.type == ConfigResourceType::broker && !cluster_default) {
    return config(ConfigResource{ConfigResourceType::broker, ""}, key);
  }
  return std::nullopt;
}

std::vector<ConfigResource> MetadataImage::config_resources() const {
  std::vector<ConfigResource> out;
  for (const auto& [resource, map] : sections_->configs->resources) out.push_back(resource);
  return out;
}

// --- Quotas, tokens, ACLs, SCRAM, producer ids ------------------------------------------------

const std::map<ClientQuotaEntity, std::map<std::string, double>>& MetadataImage::client_quotas() const {
  return sections_->quotas->entities;
}

const std::map<std::string, DelegationToken, std::less<>>& MetadataImage::delegation_tokens() const {
  return sections_->tokens->by_id;
}

std::vector<AclEntry> MetadataImage::acls() const {
  std::vector<AclEntry> out;
  out.reserve(sections_->acls->by_id.size());
  for (const auto& [id, acl] : sections_->acls->by_id) out.push_back(acl);
  return out;
}

std::size_t MetadataImage::acl_count() const { return sections_->acls->by_id.size(); }

const AclEntry* MetadataImage::acl(const Uuid& id) const {
  const auto& by_id = sections_->acls->by_id;
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : &it->second;
}

const ScramCredential* MetadataImage::scram_credential(std::string_view user, ScramMechanism mechanism) const {
  const auto& creds = sections_->scram->credentials;
  auto it = creds.find(std::make_pair(std::string(user), mechanism));
  return it == creds.end() ? nullptr : &it->second;
}

std::vector<const ScramCredential*> MetadataImage::scram_credentials() const {
  std::vector<const ScramCredential*> out;
  for (const auto& [key, cred] : sections_->scram->credentials) out.push_back(&cred);
  return out;
}

const ProducerIdBlock& MetadataImage::producer_ids() const { return *sections_->producer_ids; }

// --- Equality and digest ----------------------------------------------------------------------

namespace {

bool same_topics(const TopicsSection& a, const TopicsSection& b) {
  if (&a == &b) return true;
  if (a.by_name != b.by_name || a.by_id.size() != b.by_id.size()) return false;
  for (auto ia = a.by_id.begin(), ib = b.by_id.begin(); ia != a.by_id.end(); ++ia, ++ib) {
    if (ia->first != ib->first) return false;
    if (ia->second != ib->second && !(*ia->second == *ib->second)) return false;
  }
  return true;
}

template <class T>
bool same(const std::shared_ptr<const T>& a, const std::shared_ptr<const T>& b) {
  return a == b || *a == *b;
}

}  // namespace

bool MetadataImage::operator==(const MetadataImage& other) const {
  const Sections& a = *sections_;
  const Sections& b = *other.sections_;
  return position_ == other.position_ && same(a.features, b.features) && same(a.cluster, b.cluster) &&
         same_topics(*a.topics, *b.topics) && same(a.configs, b.configs) && same(a.quotas, b.quotas) &&
         same(a.producer_ids, b.producer_ids) && same(a.acls, b.acls) && same(a.scram, b.scram) &&
         same(a.tokens, b.tokens);
}

std::uint64_t MetadataImage::digest() const {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](ByteView bytes) {
    for (std::uint8_t b : bytes) {
      h ^= b;
      h *= 1099511628211ull;
    }
  };
  ByteWriter position;
  position.write_i64(position_.offset);
  position.write_i32(position_.epoch);
  mix(position.buffer());
  for (const AnyRecord& record : snapshot_records(*this)) {
    const Bytes bytes = encode_record(record);
    ByteWriter length;
    length.write_u32(static_cast<std::uint32_t>(bytes.size()));  // so record boundaries count too
    mix(length.buffer());
    mix(bytes);
  }
  return h;
}

}  // namespace bulwark::cluster
