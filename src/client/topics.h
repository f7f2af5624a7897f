// Topic administration as kafka-topics.sh does it: --config and --replica-assignment parsed by Kafka's
// rules, topics selected by name or regular expression, Kafka's printed --list and --describe forms,
// the Metadata/CreateTopics/DeleteTopics/CreatePartitions round trips, and broker error codes on admin
// requests explained in plain words (shared with client/configs.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "wire/generated/codec_support.h"

namespace bulwark::client {

using ConfigPairs = std::vector<std::pair<std::string, std::string>>;

// ---- Parsing (pure) ------------------------------------------------------------------------------

// kafka-topics.sh's Topic.validate: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
Status validate_topic_name(std::string_view name);
// --config k=v (repeatable): each exactly one '=', key and value trimmed.
Result<ConfigPairs> parse_topic_configs(const std::vector<std::string>& entries);
// --replica-assignment "1:2:3,2:3:1": one broker list per partition, all of the same length, no broker
// twice in a partition.
Result<std::vector<std::vector<std::int32_t>>> parse_replica_assignment(std::string_view text);

// kafka-topics.sh's options as given: the action flags (or subcommands) and the rest.
enum class TopicAction { create, list, describe, alter, remove };
struct TopicOptions {
  std::vector<TopicAction> actions;  // exactly one is valid
  std::optional<std::string> topic;
  std::optional<std::int32_t> partitions;
  std::optional<std::int32_t> replication_factor;
  std::vector<std::string> configs;
  std::optional<std::string> replica_assignment;
  bool if_not_exists = false;
  bool if_exists = false;
  bool exclude_internal = false;
  bool under_replicated = false;     // --under-replicated-partitions
  bool unavailable = false;          // --unavailable-partitions
  bool topics_with_overrides = false;
};
// The one action, once the options hang together as kafka-topics.sh's checks demand (which options go
// with which action, --topic where one is needed, positive counts). Errors are invalid_argument.
Result<TopicAction> check_topic_options(const TopicOptions& options);

// ---- What Metadata says --------------------------------------------------------------------------

struct PartitionInfo {
  std::int32_t partition = 0;
  std::int32_t leader = -1;  // -1: none
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
};

struct TopicInfo {
  std::string name;
  wire::Uuid id{};
  bool internal = false;
  std::vector<PartitionInfo> partitions;  // by partition index
  ConfigPairs overrides;                  // the non-default configs (DescribeConfigs), for --describe
};

struct ClusterTopics {
  std::vector<TopicInfo> topics;                  // by name
  std::set<std::int32_t> brokers;                 // the live brokers
  std::map<std::int32_t, HostPort> addresses;     // where they listen (on the listener we reached)
};

// The topics --topic selects: Kafka takes it as a regular expression matching whole names (a plain name
// matches itself). Without a pattern, every topic; --exclude-internal drops __consumer_offsets and
// the like. A pattern that does not parse is an invalid_argument error.
Result<std::vector<TopicInfo>> select_topics(const std::vector<TopicInfo>& all,
                                             const std::optional<std::string>& pattern, bool exclude_internal);

// ---- Printed forms (pure) ------------------------------------------------------------------------

// --list: one name per line.
std::string render_topic_list(const std::vector<TopicInfo>& topics);

// --describe's reporting options: with any of the first two only matching partitions are printed
// (no topic line); with_overrides prints only the topic lines of topics with overrides.
struct DescribeFilter {
  bool under_replicated = false;
  bool unavailable = false;
  bool with_overrides = false;
  bool reporting() const { return under_replicated || unavailable; }
};

// kafka-topics.sh's form: "Topic: T\tTopicId: ...\tPartitionCount: N\tReplicationFactor: R\tConfigs: k=v,..."
// then "\tTopic: T\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2" per partition.
std::string render_topic_description(const TopicInfo& topic, const DescribeFilter& filter,
                                     const std::set<std::int32_t>& live_brokers);

// ---- Errors --------------------------------------------------------------------------------------

// What the broker answered for one topic or resource.
struct BrokerAnswer {
  std::int16_t error_code = 0;
  std::optional<std::string> error_message;
};

// A broker error on an admin request, in plain words: `action` is what was attempted ("create topic
// 'orders'"), `identity` who we are (AdminConnection::identity()), named in authorization failures.
std::string explain_admin_error(std::int16_t code, const std::optional<std::string>& message, std::string_view action,
                                std::string_view identity);
// The same as an Error (kind unauthenticated for authorization failures, io otherwise).
Error admin_error(const BrokerAnswer& answer, std::string_view action, std::string_view identity);

// ---- Round trips ---------------------------------------------------------------------------------

// Every topic (Metadata for all topics, which never creates one) and the live brokers.
Result<ClusterTopics> fetch_topics(AdminConnection& connection);
// Fills each topic's overrides (DescribeConfigs, one request for all). A topic the broker will not
// describe keeps none; only a failed round trip is an error.
Status fetch_topic_overrides(AdminConnection& connection, std::vector<TopicInfo>& topics);

struct NewTopic {
  std::string name;
  std::int32_t partitions = -1;          // -1: the broker's num.partitions
  std::int16_t replication_factor = -1;  // -1: the broker's default.replication.factor
  std::vector<std::vector<std::int32_t>> assignment;  // replaces partitions and replication factor
  ConfigPairs configs;
};
Result<BrokerAnswer> create_topic(AdminConnection& connection, const NewTopic& topic);
// One answer per name, in the order given.
Result<std::vector<BrokerAnswer>> delete_topics(AdminConnection& connection, const std::vector<std::string>& names);
// Grows `name` to `count` partitions; `assignment` (optional) places the new ones.
Result<BrokerAnswer> create_partitions(AdminConnection& connection, const std::string& name, std::int32_t count,
                                       const std::vector<std::vector<std::int32_t>>& assignment);

}  // namespace bulwark::client
