// The broker's topic metadata: names, topic ids, partition counts and per-topic config overrides.
// Single-node for now: persisted as one JSON file in the metadata log dir, rewritten atomically on
// every change (the cluster work replaces this with the Raft metadata log).
//
// Thread safety: internally synchronized; snapshots are returned by value.
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

namespace bulwark::broker {

using TopicId = std::array<std::uint8_t, 16>;
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

class TopicRegistry {
 public:
  static Result<std::unique_ptr<TopicRegistry>> open(const std::filesystem::path& file);

  std::optional<TopicInfo> find(const std::string& name) const;
  std::optional<TopicInfo> find(const TopicId& id) const;
  std::vector<TopicInfo> list() const;

  Result<TopicInfo> create(const std::string& name, std::int32_t partitions, std::int16_t replication_factor,
                           std::map<std::string, std::string> configs);
  Status remove(const std::string& name);
  Status set_partitions(const std::string& name, std::int32_t partitions);

 private:
  explicit TopicRegistry(std::filesystem::path file) : file_(std::move(file)) {}
  Status save_locked() const;

  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::map<std::string, TopicInfo> topics_;
};

}  // namespace bulwark::broker
