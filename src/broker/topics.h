// The broker's view of topics: names, topic ids, partition counts and per-topic config overrides, as
// the metadata image holds them (cluster/image.h). Changes go through the controller.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "cluster/image.h"

namespace bulwark::broker {

using TopicId = cluster::Uuid;
TopicId random_topic_id();
std::string topic_id_to_string(const TopicId& id);  // Kafka's base64url form

struct TopicInfo {
  std::string name;
  TopicId id{};
  std::int32_t partitions = 0;
  std::int16_t replication_factor = 1;
  std::map<std::string, std::string> configs;  // overrides only
};

// Kafka's rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..". Returns the reason when invalid.
std::optional<std::string> invalid_topic_name_reason(const std::string& name);

// The topics as the metadata image has them (a view: nothing is stored here). Thread-safe: every call
// reads the image published at that moment.
class TopicRegistry {
 public:
  explicit TopicRegistry(const cluster::ImagePublisher& images) : images_(images) {}

  std::optional<TopicInfo> find(const std::string& name) const;
  std::optional<TopicInfo> find(const TopicId& id) const;
  std::vector<TopicInfo> list() const;

 private:
  const cluster::ImagePublisher& images_;
};

TopicInfo topic_info(const cluster::MetadataImage& image, const cluster::TopicImage& topic);

// The topic registry of a data dir written before the metadata log (bulwark-topics.json), for its
// one-time migration into records; an empty list when the file does not exist.
Result<std::vector<TopicInfo>> read_legacy_topic_registry(const std::filesystem::path& file);


}  // namespace bulwark::broker
