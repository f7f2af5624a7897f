// Consumer group administration as kafka-consumer-groups.sh does it: the pure parts (option parsing,
// new offsets for --reset-offsets, the offsets view's rows, Kafka's printed tables, broker errors in
// plain words) and the round trips over a ClusterClient (ListGroups on every broker,
// DescribeGroups/OffsetFetch/OffsetCommit/DeleteGroups/OffsetDelete on the group's coordinator,
// ListOffsets on each partition's leader).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "client/cluster.h"

namespace bulwark::client {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};
std::string to_string(const TopicPartition& tp);  // "orders-3", Kafka's TopicPartition.toString

// ---- Parsing (pure) ------------------------------------------------------------------------------

// --topic T (every partition: `partitions` empty) or --topic T:0,2.
struct TopicSelection {
  std::string topic;
  std::vector<std::int32_t> partitions;
};
Result<TopicSelection> parse_topic_arg(std::string_view arg);

// --to-datetime: YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm|+hhmm|+hh], UTC without a zone (as Kafka's
// Utils.getDateTime). Milliseconds since the epoch.
Result<std::int64_t> parse_datetime(std::string_view text);
// --by-duration: ISO-8601 PnDTnHnMn.nS (java.time.Duration.parse), in milliseconds.
Result<std::int64_t> parse_duration(std::string_view text);

// --state for --list: "Stable,Empty" (any case) checked against the classic group states; Kafka's names.
Result<std::vector<std::string>> parse_group_states(std::string_view text);

// ---- Reset offsets (pure) ------------------------------------------------------------------------

struct ResetSpec {
  enum class Kind { earliest, latest, current, to_offset, shift_by, to_datetime, by_duration };
  Kind kind = Kind::earliest;
  std::int64_t value = 0;  // the offset, the shift, or the timestamp (ms) for to_datetime/by_duration
};

// What the broker told us about one partition before the reset.
struct PartitionOffsets {
  std::optional<std::int64_t> committed;
  std::optional<std::int64_t> log_start;
  std::optional<std::int64_t> log_end;
  std::optional<std::int64_t> by_time;  // ListOffsets for the spec's timestamp; -1 = no record that late
};

// Kafka's rules: --to-offset and --shift-by are clamped into [log start, log end]; --shift-by needs a
// committed offset; a timestamp after the last record falls back to the log end; --to-current is the
// committed offset, or the log end without one. Errors name the partition.
Result<std::int64_t> new_offset(const ResetSpec& spec, const TopicPartition& tp, const PartitionOffsets& offsets);
// The ListOffsets timestamp the spec needs besides earliest/latest, if any.
std::optional<std::int64_t> reset_timestamp(const ResetSpec& spec);

// ---- Groups and what to print (pure) -------------------------------------------------------------

struct GroupListing {
  std::string group_id;
  std::string protocol_type;
  std::string state;  // empty when the broker is older than ListGroups v4
};

struct GroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string host;
  std::vector<TopicPartition> assignment;
};

struct GroupDescription {
  std::string group_id;
  std::string state;          // Kafka's names; "Dead" for a group the coordinator does not know
  std::string protocol_type;  // "consumer" for consumer groups
  std::string protocol;       // the assignor ("range", "cooperative-sticky") while Stable
  std::vector<GroupMember> members;
  std::int32_t coordinator_id = -1;
  std::string coordinator;  // host:port
};

// One line of the offsets view; nullopt prints as "-".
struct OffsetRow {
  std::string group;
  std::optional<std::string> topic;
  std::optional<std::int32_t> partition;
  std::optional<std::int64_t> current_offset;
  std::optional<std::int64_t> log_end_offset;
  std::optional<std::int64_t> lag;
  std::optional<std::string> consumer_id;
  std::optional<std::string> host;
  std::optional<std::string> client_id;
};

// Kafka's rows: members with partitions (most partitions first), each partition sorted, then the
// committed partitions nobody is assigned with "-" for the member. lag = log end - committed.
std::vector<OffsetRow> offset_rows(const GroupDescription& group,
                                   const std::map<TopicPartition, std::int64_t>& committed,
                                   const std::map<TopicPartition, std::int64_t>& log_end);

std::string render_group_list(const std::vector<GroupListing>& groups, bool with_state);
std::string render_offsets(const std::vector<OffsetRow>& rows);
std::string render_members(const GroupDescription& group, bool verbose);
std::string render_state(const GroupDescription& group);
// GROUP TOPIC PARTITION NEW-OFFSET for each group's planned offsets.
std::string render_reset(const std::map<std::string, std::map<TopicPartition, std::int64_t>>& plan);
// TOPIC PARTITION STATUS after --delete-offsets (error code per partition).
std::string render_offset_deletion(const std::map<TopicPartition, std::int16_t>& results);

// What kafka-consumer-groups.sh says before a group's table: nullopt when there is nothing to say.
// "Dead" is an error (the group does not exist); "Empty" and the rebalancing states are notes.
std::optional<std::string> group_state_note(const GroupDescription& group);
bool group_exists(const GroupDescription& group);
// --reset-offsets works only on groups nobody consumes in (Empty, Dead).
bool group_inactive(const GroupDescription& group);

// A broker error about group `group`, in plain words; `action` is what was attempted ("describe",
// "delete", "commit offsets of"), `identity` who we are (AdminConnection::identity()).
std::string explain_group_error(std::int16_t code, std::string_view group, std::string_view action,
                                std::string_view identity);
// The kind of Error a broker code becomes (authorization failures are unauthenticated, unknown groups
// not_found, coordinator trouble unavailable).
ErrorKind group_error_kind(std::int16_t code);

// ---- Round trips ---------------------------------------------------------------------------------

// ListGroups on every broker (each coordinates its own groups); consumer groups only (protocol type
// "consumer" or empty, as Kafka's tool), sorted by name. `states` narrows them (ListGroups v4).
Result<std::vector<GroupListing>> list_groups(ClusterClient& cluster, const std::vector<std::string>& states = {});
Result<GroupDescription> describe_group(ClusterClient& cluster, const std::string& group);
// Every committed offset of the group (OffsetFetch with all topics). Partitions without one are left out.
Result<std::map<TopicPartition, std::int64_t>> committed_offsets(ClusterClient& cluster, const std::string& group);
// ListOffsets at `timestamp` (-1 latest, -2 earliest, or ms) on each partition's leader. Partitions
// whose leader is unknown or that answer with an error are left out (printed as "-").
Result<std::map<TopicPartition, std::int64_t>> list_offsets(ClusterClient& cluster,
                                                            const std::vector<TopicPartition>& partitions,
                                                            std::int64_t timestamp);
// Every partition of the given topics/partitions per Metadata; an unknown topic or partition is an error.
Result<std::vector<TopicPartition>> resolve_partitions(ClusterClient& cluster,
                                                       const std::vector<TopicSelection>& selections);
// OffsetCommit as an admin (generation -1, no member id). Partition errors come back in the map.
Result<std::map<TopicPartition, std::int16_t>> commit_offsets(ClusterClient& cluster, const std::string& group,
                                                              const std::map<TopicPartition, std::int64_t>& offsets);
// DeleteGroups: group -> error code (0 deleted).
Result<std::map<std::string, std::int16_t>> delete_groups(ClusterClient& cluster, const std::vector<std::string>& groups);
struct OffsetDeletion {
  std::int16_t error_code = 0;  // for the whole request
  std::map<TopicPartition, std::int16_t> partitions;
};
Result<OffsetDeletion> delete_offsets(ClusterClient& cluster, const std::string& group,
                                      const std::vector<TopicPartition>& partitions);

}  // namespace bulwark::client
