// kafka-configs.sh's entity and config parsing, its printed forms, and the config round trips.
#include "client/configs.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "wire/generated/describe_configs.h"
#include "wire/generated/incremental_alter_configs.h"

namespace bulwark::client {
namespace {

constexpr std::int8_t kSourceTopic = 1;
constexpr std::int8_t kSourceDynamicBroker = 2;
constexpr std::int8_t kSourceDynamicDefaultBroker = 3;
constexpr std::int8_t kSourceDefault = 5;
constexpr std::int8_t kOpSet = 0;
constexpr std::int8_t kOpDelete = 1;

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(" \t") - first + 1));
}

// Splits on `separator` where it is outside [...], as kafka-configs.sh's lookahead regex does.
std::vector<std::string_view> split_outside_brackets(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') ++depth;
    else if (text[i] == ']' && depth > 0) --depth;
    else if (text[i] == separator && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

std::string without_brackets(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '[' && c != ']') out += c;
  }
  return out;
}

Result<ConfigResourceType> entity_type_from(const std::string& text) {
  if (text == "topics" || text == "topic") return ConfigResourceType::topic;
  if (text == "brokers" || text == "broker") return ConfigResourceType::broker;
  if (text == "users") {
    return usage("--entity-type users: Bulwark has no client quotas; for SCRAM credentials use `bulwark scram`");
  }
  if (text == "clients" || text == "ips" || text == "client-metrics" || text == "broker-loggers" || text == "groups") {
    return usage(fmt::format("--entity-type {} is not supported: bulwark configs handles topics and brokers", text));
  }
  return usage(fmt::format("--entity-type '{}' is not an entity type: use topics or brokers", text));
}

Status check_broker_id(const std::string& name) {
  std::int32_t id = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (name.empty() || ec != std::errc() || ptr != name.data() + name.size() || id < 0) {
    return usage(fmt::format("The entity name for brokers must be a valid integer broker id, but it is: {}", name));
  }
  return Status::success();
}

// The one entity type the flags name, from --entity-type and the shortcuts.
Result<ConfigResourceType> one_type(const EntityFlags& f) {
  std::vector<ConfigResourceType> types;
  if (f.entity_type) {
    auto type = entity_type_from(*f.entity_type);
    if (!type) return type.error();
    types.push_back(*type);
  }
  if (f.topic) types.push_back(ConfigResourceType::topic);
  if (f.broker || f.broker_defaults) types.push_back(ConfigResourceType::broker);
  if (types.empty()) {
    return usage("name an entity: --entity-type topics|brokers (with --entity-name or --entity-default), --topic, "
                 "--broker or --broker-defaults");
  }
  if (std::any_of(types.begin(), types.end(), [&](ConfigResourceType t) { return t != types.front(); })) {
    return usage("the flags name both a topic and a broker: one entity type at a time");
  }
  return types.front();
}

std::string_view bool_text(bool value) { return value ? "true" : "false"; }

}  // namespace

Result<ConfigEntity> config_entity(const EntityFlags& f, bool need_name) {
  auto type = one_type(f);
  if (!type) return type.error();
  const int names = (f.entity_name ? 1 : 0) + (f.entity_default ? 1 : 0) + (f.topic ? 1 : 0) + (f.broker ? 1 : 0) +
                    (f.broker_defaults ? 1 : 0);
  if (names > 1) {
    return usage("name one entity: --entity-name, --entity-default, --topic, --broker and --broker-defaults "
                 "exclude each other");
  }
  ConfigEntity entity;
  entity.type = *type;
  entity.is_default = f.entity_default || f.broker_defaults;
  if (f.entity_name) entity.name = *f.entity_name;
  if (f.topic) entity.name = *f.topic;
  if (f.broker) entity.name = *f.broker;
  if (entity.is_default && entity.type == ConfigResourceType::topic) {
    return usage("--entity-default is the cluster-wide broker default; topics have none (their defaults are the "
                 "brokers' log.* configs)");
  }
  if (entity.name && entity.type == ConfigResourceType::broker) BULWARK_TRY(check_broker_id(*entity.name));
  if (entity.name && entity.type == ConfigResourceType::topic) BULWARK_TRY(validate_topic_name(*entity.name));
  if (need_name && !entity.name && !entity.is_default) {
    return usage("--alter needs one entity: --entity-name (or --topic/--broker) or --entity-default");
  }
  return entity;
}

Result<ConfigPairs> parse_add_config(std::string_view text) {
  ConfigPairs out;
  for (auto item : split_outside_brackets(text, ',')) {
    auto parts = split_outside_brackets(item, '=');
    if (parts.size() != 2 || trimmed(parts[0]).empty()) {
      return usage(fmt::format("--add-config: '{}' is not key=value (a value with commas or '=' goes in brackets: "
                               "k=[a,b])",
                               trimmed(item)));
    }
    out.emplace_back(trimmed(parts[0]), trimmed(without_brackets(parts[1])));
  }
  return out;
}

Result<std::vector<std::string>> parse_delete_config(std::string_view text) {
  std::vector<std::string> out;
  for (auto item : split_outside_brackets(text, ',')) {
    auto key = trimmed(item);
    if (key.empty()) return usage(fmt::format("--delete-config '{}' has an empty key", text));
    out.push_back(std::move(key));
  }
  return out;
}

std::string_view config_source_name(std::int8_t source) {
  switch (source) {
    case 1: return "DYNAMIC_TOPIC_CONFIG";
    case 2: return "DYNAMIC_BROKER_CONFIG";
    case 3: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case 4: return "STATIC_BROKER_CONFIG";
    case 5: return "DEFAULT_CONFIG";
    case 6: return "DYNAMIC_BROKER_LOGGER_CONFIG";
    case 7: return "DYNAMIC_CLIENT_METRICS_CONFIG";
    case 8: return "DYNAMIC_GROUP_CONFIG";
    default: return "UNKNOWN";
  }
}

std::string entity_label(const ConfigEntity& entity) {
  return fmt::format("{} {}", entity.type == ConfigResourceType::topic ? "topic" : "broker", entity.name.value_or(""));
}

std::string describe_heading(const ConfigEntity& entity, bool all) {
  if (entity.is_default) return "Default configs for brokers in the cluster are:";
  return fmt::format("{} configs for {} are:", all ? "All" : "Dynamic", entity_label(entity));
}

std::vector<ConfigEntry> entries_to_show(const ConfigEntity& entity, std::vector<ConfigEntry> entries, bool all) {
  const std::int8_t wanted = entity.type == ConfigResourceType::topic ? kSourceTopic
                             : entity.is_default                     ? kSourceDynamicDefaultBroker
                                                                     : kSourceDynamicBroker;
  if (!all) {
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const ConfigEntry& e) { return e.source != wanted; }),
                  entries.end());
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const ConfigEntry& a, const ConfigEntry& b) { return a.name < b.name; });
  return entries;
}

std::string render_config_entries(const std::vector<ConfigEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    // A sensitive value is never printed, even by a broker that sends it.
    auto shown = [&](const std::optional<std::string>& v) { return e.is_sensitive || !v ? std::string("null") : *v; };
    std::string synonyms;
    for (const auto& s : e.synonyms) {
      synonyms += fmt::format("{}{}:{}={}", synonyms.empty() ? "" : ", ", config_source_name(s.source), s.name,
                              shown(s.value));
    }
    if (e.synonyms.empty() && config_source_name(e.source) != "UNKNOWN") {
      synonyms = fmt::format("{}:{}={}", config_source_name(e.source), e.name, shown(e.value));
    }
    out += fmt::format("  {}={} sensitive={} synonyms={{{}}}\n", e.name, shown(e.value), bool_text(e.is_sensitive),
                       synonyms);
  }
  return out;
}

std::string altered_message(const ConfigEntity& entity) {
  if (entity.is_default) return "Completed updating default config for brokers in the cluster.";
  return fmt::format("Completed updating config for {}.", entity_label(entity));
}

std::vector<std::string> missing_keys(const std::vector<std::string>& keys, const std::vector<ConfigEntry>& shown) {
  std::vector<std::string> out;
  for (const auto& key : keys) {
    if (std::none_of(shown.begin(), shown.end(), [&](const ConfigEntry& e) { return e.name == key; }))
      out.push_back(key);
  }
  return out;
}

Result<std::vector<ResourceConfigs>> describe_configs(AdminConnection& connection,
                                                      const std::vector<ConfigResource>& resources) {
  wire::msg::DescribeConfigsRequest request;
  request.include_synonyms = true;
  for (const auto& r : resources) {
    wire::msg::DescribeConfigsRequest::DescribeConfigsResource resource;
    resource.resource_type = static_cast<std::int8_t>(r.type);
    resource.resource_name = r.name;
    resource.configuration_keys = std::nullopt;  // all of them
    request.resources.push_back(std::move(resource));
  }
  auto response = connection.call<wire::msg::DescribeConfigsRequest, wire::msg::DescribeConfigsResponse>(request);
  if (!response) return response.error();
  std::vector<ResourceConfigs> out;
  for (const auto& r : resources) {
    auto it = std::find_if(response->results.begin(), response->results.end(), [&](const auto& result) {
      return result.resource_type == static_cast<std::int8_t>(r.type) && result.resource_name == r.name;
    });
    if (it == response->results.end()) {
      return make_error(ErrorKind::corrupt,
                        fmt::format("the broker's DescribeConfigs answer does not mention '{}'", r.name));
    }
    ResourceConfigs configs{{it->error_code, it->error_message}, {}};
    for (auto& c : it->configs) {
      ConfigEntry entry{c.name, c.value, c.read_only, c.is_default || c.config_source == kSourceDefault,
                        c.is_sensitive, c.config_source, {}};
      for (auto& s : c.synonyms) entry.synonyms.push_back({s.name, s.value, s.source});
      configs.entries.push_back(std::move(entry));
    }
    out.push_back(std::move(configs));
  }
  return out;
}

Result<BrokerAnswer> incremental_alter_configs(AdminConnection& connection, const ConfigResource& resource,
                                               const ConfigPairs& set, const std::vector<std::string>& remove) {
  wire::msg::IncrementalAlterConfigsRequest request;
  wire::msg::IncrementalAlterConfigsRequest::AlterConfigsResource r;
  r.resource_type = static_cast<std::int8_t>(resource.type);
  r.resource_name = resource.name;
  for (const auto& [key, value] : set) r.configs.push_back({key, kOpSet, value, {}});
  for (const auto& key : remove) r.configs.push_back({key, kOpDelete, std::nullopt, {}});
  request.resources.push_back(std::move(r));
  auto response =
      connection.call<wire::msg::IncrementalAlterConfigsRequest, wire::msg::IncrementalAlterConfigsResponse>(request);
  if (!response) return response.error();
  if (response->responses.empty()) {
    return make_error(ErrorKind::corrupt, "the broker's IncrementalAlterConfigs answer is empty");
  }
  const auto& answer = response->responses.front();
  return BrokerAnswer{answer.error_code, answer.error_message};
}

}  // namespace bulwark::client
