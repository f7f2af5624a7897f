// Config administration as kafka-configs.sh does it for topics and brokers: the entity named by
// --entity-type/--entity-name/--entity-default (or the --topic/--broker/--broker-defaults shortcuts),
// --add-config and --delete-config parsed by Kafka's rules (k=[a,b] for values with commas), Kafka's
// printed --describe form, and the DescribeConfigs/IncrementalAlterConfigs round trips.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "client/topics.h"

namespace bulwark::client {

// DescribeConfigs resource types.
enum class ConfigResourceType : std::int8_t { topic = 2, broker = 4 };

// Which entity the flags name. No name and not the default: every entity of the type (describe only).
struct ConfigEntity {
  ConfigResourceType type = ConfigResourceType::topic;
  std::optional<std::string> name;  // a topic name or a broker id
  bool is_default = false;          // --entity-default: the cluster-wide broker default ("")
  std::string resource_name() const { return is_default ? std::string() : name.value_or(""); }
};

// The entity flags as given (kafka-configs.sh's names).
struct EntityFlags {
  std::optional<std::string> entity_type;  // --entity-type
  std::optional<std::string> entity_name;  // --entity-name
  bool entity_default = false;             // --entity-default
  std::optional<std::string> topic;        // --topic
  std::optional<std::string> broker;       // --broker
  bool broker_defaults = false;            // --broker-defaults
};

// ---- Parsing (pure) ------------------------------------------------------------------------------

// Errors (invalid_argument) say which flags clash, in kafka-configs.sh's terms; `need_name` (alter)
// insists on one entity.
Result<ConfigEntity> config_entity(const EntityFlags& flags, bool need_name);
// --add-config "k=v,k2=[a,b]": split on commas outside brackets, then on '=' outside brackets; the
// brackets are dropped from values; keys and values trimmed.
Result<ConfigPairs> parse_add_config(std::string_view text);
// --delete-config "k,k2".
Result<std::vector<std::string>> parse_delete_config(std::string_view text);

// ---- What DescribeConfigs says -------------------------------------------------------------------

struct ConfigSynonym {
  std::string name;
  std::optional<std::string> value;  // nullopt: sensitive (or unset)
  std::int8_t source = 0;
};

struct ConfigEntry {
  std::string name;
  std::optional<std::string> value;
  bool read_only = false;
  bool is_default = false;
  bool is_sensitive = false;
  std::int8_t source = -1;
  std::vector<ConfigSynonym> synonyms;
};

struct ResourceConfigs {
  BrokerAnswer answer;  // the broker's error for this resource, if any
  std::vector<ConfigEntry> entries;
};

// Kafka's ConfigEntry.ConfigSource names (DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...).
std::string_view config_source_name(std::int8_t source);

// ---- Printed forms (pure) ------------------------------------------------------------------------

// "topic orders", "broker 1".
std::string entity_label(const ConfigEntity& entity);
// "Dynamic configs for topic orders are:", "All configs for broker 1 are:", "Default configs for
// brokers in the cluster are:".
std::string describe_heading(const ConfigEntity& entity, bool all);
// What kafka-configs.sh --describe shows of an entity's configs, sorted by name: every entry with
// --all, otherwise those set dynamically on that entity (source DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG
// or DYNAMIC_DEFAULT_BROKER_CONFIG for the default).
std::vector<ConfigEntry> entries_to_show(const ConfigEntity& entity, std::vector<ConfigEntry> entries, bool all);
// "  k=v sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:k=v, DEFAULT_CONFIG:log.k=w}" per entry. A broker
// that lists no synonyms gets the entry's own source as the one synonym (Kafka's list starts with it).
std::string render_config_entries(const std::vector<ConfigEntry>& entries);
// "Completed updating config for topic orders." / "Completed updating default config for brokers in
// the cluster."
std::string altered_message(const ConfigEntity& entity);
// The keys --delete-config names that the entity does not have set (Kafka refuses those).
std::vector<std::string> missing_keys(const std::vector<std::string>& keys, const std::vector<ConfigEntry>& shown);

// ---- Round trips ---------------------------------------------------------------------------------

struct ConfigResource {
  ConfigResourceType type = ConfigResourceType::topic;
  std::string name;
};
// One result per resource, in the order given, synonyms included. A broker resource must go to that
// broker (kafka-configs does the same); the default broker resource ("") to any.
Result<std::vector<ResourceConfigs>> describe_configs(AdminConnection& connection,
                                                      const std::vector<ConfigResource>& resources);
// SET for each of `set`, DELETE for each of `remove`, in one IncrementalAlterConfigs request.
Result<BrokerAnswer> incremental_alter_configs(AdminConnection& connection, const ConfigResource& resource,
                                               const ConfigPairs& set, const std::vector<std::string>& remove);

}  // namespace bulwark::client
