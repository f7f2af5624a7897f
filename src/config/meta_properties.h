// meta.properties, the file `kafka-storage.sh format` writes into every log directory (and
// metadata.log.dir) of a KRaft node, and Kafka's UUIDs. The broker calls check_storage() at start-up:
// like Kafka in KRaft mode, it refuses to run on a directory that was never formatted, or that belongs
// to another cluster or node. A ZooKeeper-mode configuration (BrokerConfig::zookeeper_mode) is the
// exception: like ZooKeeper-mode Kafka, check_storage() then writes meta.properties on first start.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace bulwark::config {

inline constexpr std::string_view kMetaPropertiesFile = "meta.properties";

// Kafka's Uuid.randomUuid().toString(): a random (version 4) UUID as 22 characters of base64url without
// padding; like Kafka it never returns one of the reserved ids or one that starts with '-'.
std::string random_uuid();
// Kafka's Uuid.fromString: base64url (padding optional) that decodes to exactly 16 bytes.
Result<std::array<std::uint8_t, 16>> decode_uuid(std::string_view text);
std::string encode_uuid(const std::array<std::uint8_t, 16>& bytes);

struct MetaProperties {
  int version = 1;  // 1 = KRaft; 0 = ZooKeeper mode (refused)
  std::string cluster_id;
  std::optional<std::int32_t> node_id;
  std::string directory_id;  // empty when the file has none (written before Kafka 3.7)
};

// The file as Kafka 3.7 writes it: "#", "#<date>", then cluster.id, directory.id, node.id, version.
std::string render_meta_properties(const MetaProperties& meta, std::chrono::system_clock::time_point now);
Result<MetaProperties> parse_meta_properties(std::string_view text, std::string source);

enum class DirectoryState {
  missing,        // the directory does not exist
  not_formatted,  // it exists but has no meta.properties
  formatted,      // meta.properties read and valid
  broken,         // meta.properties (or the directory) cannot be read or parsed
};

struct DirectoryStatus {
  std::string path;
  DirectoryState state = DirectoryState::missing;
  std::optional<MetaProperties> meta;
  std::string problem;  // for `broken`
};

DirectoryStatus inspect_directory(const std::filesystem::path& dir);
// log.dirs, then metadata.log.dir if set and not already among them.
std::vector<std::string> storage_directories(const BrokerConfig& config);

struct FormatOutcome {
  std::vector<std::string> formatted;  // directories written now
  std::vector<std::string> skipped;    // already formatted for this cluster (with ignore_formatted)
};
// `bulwark storage format`: checks the cluster id and every directory first, then writes; nothing is
// written when any check fails. A directory formatted for another cluster or node always fails.
Result<FormatOutcome> format_storage(const BrokerConfig& config, std::string_view cluster_id, bool ignore_formatted);

// Start-up check: every directory formatted, same cluster.id, node.id equal to the config's.
// Returns the cluster's meta properties (directory_id of the first directory).
// With config.zookeeper_mode, missing or unformatted directories are formatted first (creating them),
// exactly as format_storage would, for the cluster of the already formatted ones or a new random
// cluster id; one info line per directory is logged. Kafka's own ZooKeeper-mode files (version=0) are
// still refused: Bulwark writes and reads version=1 only.
Result<MetaProperties> check_storage(const BrokerConfig& config);

}  // namespace bulwark::config
