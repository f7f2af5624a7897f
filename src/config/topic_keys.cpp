// The topic-level keys (Kafka 3.7's LogConfig): types, ranges and the server.properties synonym each one
// defaults from. CreateTopics and a topic's stored configs are checked against this one table, with
// the same validator as server.properties, so no value can be accepted over the wire that start-up
// would refuse.
#include <algorithm>
#include <cstdlib>

#include "config/config.h"

namespace bulwark::config {
namespace {

constexpr auto S = KeyStatus::supported;
constexpr auto N = KeyStatus::not_enforced;
constexpr std::optional<std::string_view> null = std::nullopt;
constexpr std::int64_t kLongMax = INT64_MAX;
constexpr std::int64_t kNoMin = INT64_MIN;
// LegacyRecord.RECORD_OVERHEAD_V0: Kafka's floor for segment.bytes (and log.segment.bytes).
constexpr std::int64_t kMinSegmentBytes = 14;

using enum KeyType;

std::vector<TopicKeySpec> make_topic_specs() {
  // {name, type, default, status, per-listener, min, max, allowed}, broker synonym
  return {
      {{"segment.bytes", int32, "1073741824", S, false, kMinSegmentBytes}, "log.segment.bytes"},
      {{"segment.ms", int64, "604800000", S, false, 1}, "log.roll.ms"},
      {{"retention.ms", int64, "604800000", S, false, -1}, "log.retention.ms"},
      {{"retention.bytes", int64, "-1", S}, "log.retention.bytes"},
      {{"flush.messages", int64, "9223372036854775807", S, false, 1}, "log.flush.interval.messages"},
      {{"flush.ms", int64, "9223372036854775807", S, false, 0}, "log.flush.interval.ms"},
      {{"max.message.bytes", int32, "1048588", S, false, 0}, "message.max.bytes"},
      {{"min.insync.replicas", int32, "1", S, false, 1}, "min.insync.replicas"},
      {{"message.timestamp.type", string, "CreateTime", S, false, kNoMin, kLongMax, {"CreateTime", "LogAppendTime"}},
       "log.message.timestamp.type"},
      // compact: the log cleaner (storage/cleaner.h); delete: retention. Both: compact,delete.
      {{"cleanup.policy", list, "delete", S, false, kNoMin, kLongMax, {"delete", "compact"}}, "log.cleanup.policy"},
      {{"delete.retention.ms", int64, "86400000", S, false, 0}, "log.cleaner.delete.retention.ms"},
      {{"min.compaction.lag.ms", int64, "0", S, false, 0}, "log.cleaner.min.compaction.lag.ms"},
      {{"max.compaction.lag.ms", int64, "9223372036854775807", S, false, 1}, "log.cleaner.max.compaction.lag.ms"},
      {{"min.cleanable.dirty.ratio", string, "0.5", S}, "log.cleaner.min.cleanable.ratio"},
      // Old segments are unlinked at once: readers keep their open descriptors (POSIX), which is
      // what Kafka's delay exists for.
      {{"file.delete.delay.ms", int64, "60000", S, false, 0}, "log.segment.delete.delay.ms"},
      {{"compression.type", string, "producer", S, false, kNoMin, kLongMax,
        {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}},
       "compression.type"},
      // Kafka keys Bulwark does not act on yet: refused by name rather than as unknown.
      {{"segment.jitter.ms", int64, "0", N, false, 0}, "log.roll.jitter.ms"},
      {{"segment.index.bytes", int32, "10485760", N, false, 4}, "log.index.size.max.bytes"},
      {{"index.interval.bytes", int32, "4096", N, false, 0}, "log.index.interval.bytes"},
      {{"unclean.leader.election.enable", boolean, "false", N}, "unclean.leader.election.enable"},
      {{"preallocate", boolean, "false", N}, "log.preallocate"},
      {{"message.format.version", string, null, N}, "log.message.format.version"},
      {{"message.timestamp.difference.max.ms", int64, "9223372036854775807", N, false, 0},
       "log.message.timestamp.difference.max.ms"},
      {{"message.timestamp.before.max.ms", int64, "9223372036854775807", N, false, 0},
       "log.message.timestamp.before.max.ms"},
      {{"message.timestamp.after.max.ms", int64, "9223372036854775807", N, false, 0},
       "log.message.timestamp.after.max.ms"},
      {{"message.downconversion.enable", boolean, "true", N}, "log.message.downconversion.enable"},
      {{"leader.replication.throttled.replicas", list, "", N}, ""},
      {{"follower.replication.throttled.replicas", list, "", N}, ""},
      {{"remote.storage.enable", boolean, "false", N}, ""},
      {{"local.retention.ms", int64, "-2", N, false, -2}, "log.local.retention.ms"},
      {{"local.retention.bytes", int64, "-2", N, false, -2}, "log.local.retention.bytes"},
  };
}

}  // namespace

const std::vector<TopicKeySpec>& topic_key_specs() {
  static const std::vector<TopicKeySpec> specs = make_topic_specs();
  return specs;
}

std::optional<std::string> topic_config_error(std::string_view key, std::string_view value) {
  const auto& specs = topic_key_specs();
  auto it = std::find_if(specs.begin(), specs.end(), [&](const TopicKeySpec& t) { return t.spec.name == key; });
  if (it == specs.end()) return "Unknown topic config name: " + std::string(key);
  const std::string name(key);
  if (key == "min.cleanable.dirty.ratio") {
    char* end = nullptr;
    const std::string text(value);
    const double ratio = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(ratio >= 0 && ratio <= 1))
      return "Invalid value " + text + " for configuration " + name + ": Value must be between 0 and 1";
  }
  if (auto why = check_key_value(it->spec, value))
    return "Invalid value " + std::string(value) + " for configuration " + name + ": " + *why;
  if (it->spec.status == KeyStatus::not_enforced)
    return "Topic config " + name + " is a Kafka config that Bulwark does not act on yet";
  return std::nullopt;
}

}  // namespace bulwark::config
