// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and brokers.
//
// A change is decided by the active controller (cluster::incremental_alter_configs), stored as
// ConfigRecords, and applied by every node from its image: topic configs by the logs, dynamic broker
// configs (listener.name.<l>.ssl.*) by the TLS reloader. The broker first answers what it alone can
// decide: ACLs, a broker id that is not its own (kafka-configs sends a broker's change to that broker),
// and new TLS material that does not load or pass the reload checks here. The client hears back once
// the change is in this node's image, so its listeners have reloaded by then.
#include <algorithm>
#include <set>
#include <type_traits>

#include "broker/forwarding.h"
#include "broker/state.h"
#include "broker/tls_reloader.h"
#include "cluster/controller.h"
#include "wire/generated/alter_configs.h"
#include "wire/generated/describe_configs.h"
#include "wire/generated/incremental_alter_configs.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;
namespace msg = wire::msg;

namespace {

constexpr std::int8_t kResourceTopic = 2;
constexpr std::int8_t kResourceBroker = 4;
constexpr std::int16_t kRequestTimedOut = 7;
// DescribeConfigs config sources.
constexpr std::int8_t kSourceTopicConfig = 1;
constexpr std::int8_t kSourceDynamicBroker = 2;
constexpr std::int8_t kSourceDynamicDefaultBroker = 3;
constexpr std::int8_t kSourceStaticBrokerConfig = 4;
constexpr std::int8_t kSourceDefault = 5;
// Config types (v3+).
constexpr std::int8_t kTypeString = 2, kTypeInt = 3, kTypeLong = 5, kTypeList = 7, kTypePassword = 9;

struct TopicConfigDefault {
  const char* name;
  std::int8_t type;
  std::string value;
};

std::vector<TopicConfigDefault> topic_defaults(const BrokerState& state) {
  const auto& c = state.config;
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
    return out;
  };
  return {
      {"cleanup.policy", kTypeList, c.log_cleanup_policy.empty() ? "delete" : join(c.log_cleanup_policy)},
      {"compression.type", kTypeString, c.compression_type.empty() ? "producer" : c.compression_type},
      {"max.message.bytes", kTypeInt, std::to_string(c.message_max_bytes)},
      {"message.timestamp.type", kTypeString,
       c.log_message_timestamp_type.empty() ? "CreateTime" : c.log_message_timestamp_type},
      {"min.insync.replicas", kTypeInt, std::to_string(c.min_insync_replicas)},
      {"retention.bytes", kTypeLong, std::to_string(c.log_retention_bytes)},
      {"retention.ms", kTypeLong, std::to_string(c.log_retention_ms)},
      {"segment.bytes", kTypeInt, std::to_string(c.log_segment_bytes)},
      {"segment.ms", kTypeLong, std::to_string(state.default_log_config().segment_ms)},
      {"flush.messages", kTypeLong, std::to_string(c.log_flush_interval_messages)},
      {"flush.ms", kTypeLong, std::to_string(c.log_flush_interval_ms)},
  };
}

bool wanted(const std::optional<std::vector<std::string>>& keys, const std::string& name) {
  return !keys || keys->empty() || std::find(keys->begin(), keys->end(), name) != keys->end();
}

using DescribeEntry = msg::DescribeConfigsResponse::DescribeConfigsResourceResult;

void describe_topic(const BrokerState& state, const TopicInfo& topic, const msg::DescribeConfigsRequest::DescribeConfigsResource& resource,
                    std::vector<DescribeEntry>& out) {
  for (const auto& d : topic_defaults(state)) {
    if (!wanted(resource.configuration_keys, d.name)) continue;
    DescribeEntry entry;
    entry.name = d.name;
    auto override_it = topic.configs.find(d.name);
    const bool overridden = override_it != topic.configs.end();
    entry.value = overridden ? override_it->second : d.value;
    entry.is_default = !overridden;
    entry.config_source = overridden ? kSourceTopicConfig : kSourceDefault;
    entry.config_type = d.type;
    out.push_back(std::move(entry));
  }
}

// The dynamic configs in force (this broker's, then the cluster default), then server.properties. A
// key set in several places is shown once, from where it takes effect, with the others as synonyms.
void describe_broker(const BrokerState& state, const msg::DescribeConfigsRequest::DescribeConfigsResource& resource,
                     bool include_synonyms, std::vector<DescribeEntry>& out) {
  struct Source {
    const cluster::ConfigMap* values;
    std::int8_t source;
  };
  auto image = state.image();
  std::vector<Source> sources = {
      {image->configs({cluster::ConfigResourceType::broker, std::to_string(state.node_id())}), kSourceDynamicBroker},
      {image->configs({cluster::ConfigResourceType::broker, ""}), kSourceDynamicDefaultBroker}};
  cluster::ConfigMap static_values;
  for (const auto& property : state.config.properties.entries) static_values[property.key] = property.value;
  sources.push_back({&static_values, kSourceStaticBrokerConfig});
  std::set<std::string> shown;
  for (const auto& from : sources) {
    if (from.values == nullptr) continue;
    for (const auto& [key, value] : *from.values) {
      if (!wanted(resource.configuration_keys, key) || !shown.insert(key).second) continue;
      const bool sensitive = config::is_sensitive_key(key);
      DescribeEntry entry;
      entry.name = key;
      entry.value = sensitive ? std::nullopt : std::optional<std::string>(value);  // hidden as Kafka hides them
      entry.is_sensitive = sensitive;
      entry.read_only = !config::is_dynamic_tls_key(key);
      entry.config_source = from.source;
      entry.config_type = sensitive ? kTypePassword : kTypeString;
      if (include_synonyms) {
        for (const auto& other : sources) {
          if (other.values == nullptr) continue;
          auto it = other.values->find(key);
          if (it == other.values->end()) continue;
          msg::DescribeConfigsResponse::DescribeConfigsSynonym synonym;
          synonym.name = key;
          synonym.value = sensitive ? std::nullopt : std::optional<std::string>(it->second);
          synonym.source = other.source;
          entry.synonyms.push_back(std::move(synonym));
        }
      }
      out.push_back(std::move(entry));
    }
  }
}

// Kafka's rules for what is dynamic and what a topic may hold; the controller applies the same.
cluster::ControllerSettings config_rules() {
  cluster::ControllerSettings rules;
  rules.topic_config_error = [](const std::string& key, const std::string& value) {
    return config::topic_config_error(key, value);
  };
  rules.broker_config_error = [](const std::string& key, const std::optional<std::string>& value, bool per_broker) {
    return config::dynamic_broker_config_error(key, value ? std::optional<std::string_view>(*value) : std::nullopt,
                                               per_broker);
  };
  return rules;
}

// This broker's dynamic configs once `records` (ConfigRecords for it) are applied.
config::DynamicConfigs after_records(const cluster::ConfigMap* current, const std::vector<cluster::AnyRecord>& records) {
  config::DynamicConfigs next;
  if (current != nullptr) next = *current;
  for (const auto& record : records) {
    const auto* c = std::get_if<cluster::rec::ConfigRecord>(&record.record);
    if (c == nullptr) continue;
    if (c->value) next[c->name] = *c->value;
    else next.erase(c->name);
  }
  return next;
}

// Why the TLS material a change to this broker's dynamic configs names would not be used here.
std::optional<std::string> tls_change_error(const BrokerState& state, const config::DynamicConfigs& next) {
  if (state.tls == nullptr) return std::nullopt;
  auto image = state.image();
  config::BrokerConfig effective = state.config;
  effective.properties = config::with_dynamic_configs(
      effective.properties, image->configs({cluster::ConfigResourceType::broker, ""}), &next);
  for (const auto& listener : state.config.listeners) {
    if (!config::uses_tls(listener.protocol)) continue;
    auto in_force = state.tls->security(listener.listener);
    auto proposed = effective.security_for(listener.listener);
    if (!in_force || same_tls_settings(*in_force, proposed)) continue;
    if (auto valid = state.tls->validate(proposed); !valid.ok())
      return "listener " + listener.listener + ": " + valid.error().message;
  }
  return std::nullopt;
}

// The checks only this broker can make, for one resource of either request; an error code and
// message, or nullopt to forward it. `as_request` makes the one-resource request the controller's
// rules take, to see what records it would make.
template <class Request, class Resource>
std::optional<std::pair<KafkaError, std::string>> check_locally(const BrokerState& state, Call& call,
                                                                const Resource& resource, const Request& as_request) {
  if (resource.resource_type == kResourceTopic) {
    if (!authorized(state, call, Operation::alter_configs, ResourceType::topic, resource.resource_name))
      return std::pair{KafkaError::topic_authorization_failed, std::string("Topic authorization failed.")};
    return std::nullopt;
  }
  if (resource.resource_type != kResourceBroker)
    return std::pair{KafkaError::invalid_request, std::string("Bulwark alters topic and broker configs only")};
  if (!authorized_cluster(state, call, Operation::alter_configs))
    return std::pair{KafkaError::cluster_authorization_failed, std::string("Cluster authorization failed.")};
  const std::string me = std::to_string(state.node_id());
  if (!resource.resource_name.empty() && resource.resource_name != me)
    return std::pair{KafkaError::invalid_request, "Unexpected broker id, expected " + me +
                                                      " or empty string, but received " + resource.resource_name};
  if (resource.resource_name != me) return std::nullopt;  // the cluster default holds no TLS material
  auto image = state.image();
  auto decision = [&] {
    if constexpr (std::is_same_v<Request, msg::IncrementalAlterConfigsRequest>)
      return cluster::incremental_alter_configs(*image, as_request, config_rules());
    else
      return cluster::alter_configs(*image, as_request, config_rules());
  }();
  const auto& answer = decision.response.responses.front();
  if (answer.error_code != 0) return std::nullopt;  // the controller says why
  const auto* current = image->configs({cluster::ConfigResourceType::broker, me});
  if (auto why = tls_change_error(state, after_records(current, decision.records)))
    return std::pair{KafkaError::invalid_config, *why};
  return std::nullopt;
}

// The values a successful SET or DELETE leaves in the image, to answer once they are visible here.
template <class Request>
ImageWaiters::Predicate visible_after(const Request& forwarded, const std::vector<std::pair<std::int8_t, std::string>>& ok) {
  struct Expect {
    cluster::ConfigResource resource;
    std::string key;
    std::optional<std::string> value;
  };
  std::vector<Expect> expected;
  for (const auto& resource : forwarded.resources) {
    if (std::find(ok.begin(), ok.end(), std::pair{resource.resource_type, resource.resource_name}) == ok.end()) continue;
    const cluster::ConfigResource where{static_cast<cluster::ConfigResourceType>(resource.resource_type),
                                        resource.resource_name};
    for (const auto& config : resource.configs) {
      std::int8_t op = 0;
      if constexpr (std::is_same_v<Request, msg::IncrementalAlterConfigsRequest>) op = config.config_operation;
      if (op == 0 || op == 1) expected.push_back({where, config.name, op == 0 ? config.value : std::nullopt});
    }
  }
  return [expected](const cluster::MetadataImage& image) {
    return std::all_of(expected.begin(), expected.end(), [&](const Expect& e) {
      std::optional<std::string> value;
      if (const auto* configs = image.configs(e.resource))
        if (auto it = configs->find(e.key); it != configs->end()) value = it->second;
      return value == e.value;
    });
  };
}

template <class Request, class Response>
void alter(BrokerState& state, Call& call) {
  Request request;
  if (!decode_request(call, request)) return;
  Response response;
  auto forwarded = request;
  forwarded.resources.clear();
  for (const auto& resource : request.resources) {
    auto one = request;
    one.resources = {resource};
    if (auto refused = check_locally(state, call, resource, one)) {
      typename Response::AlterConfigsResourceResponse out;
      out.error_code = code(refused->first);
      out.error_message = refused->second;
      out.resource_type = resource.resource_type;
      out.resource_name = resource.resource_name;
      response.responses.push_back(std::move(out));
    } else {
      forwarded.resources.push_back(resource);
    }
  }
  if (forwarded.resources.empty()) return respond(call, response);
  const bool validate_only = request.validate_only;
  forward_and_answer<Request, Response>(
      state, call, forwarded, std::move(response), std::chrono::milliseconds(30000),
      [forwarded](Response& response, std::optional<Response> answer, const std::string& failure) {
        if (answer) {
          for (auto& result : answer->responses) response.responses.push_back(std::move(result));
          return;
        }
        for (const auto& resource : forwarded.resources) {
          typename Response::AlterConfigsResourceResponse out;
          out.error_code = kRequestTimedOut;
          out.error_message = failure;
          out.resource_type = resource.resource_type;
          out.resource_name = resource.resource_name;
          response.responses.push_back(std::move(out));
        }
      },
      [forwarded, validate_only](const Response& response) -> ImageWaiters::Predicate {
        std::vector<std::pair<std::int8_t, std::string>> ok;
        if (!validate_only)
          for (const auto& result : response.responses)
            if (result.error_code == 0) ok.emplace_back(result.resource_type, result.resource_name);
        return visible_after(forwarded, ok);
      });
}

}  // namespace

void handle_describe_configs(BrokerState& state, Call& call) {
  msg::DescribeConfigsRequest request;
  if (!decode_request(call, request)) return;
  msg::DescribeConfigsResponse response;
  for (const auto& resource : request.resources) {
    msg::DescribeConfigsResponse::DescribeConfigsResult result;
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    if (resource.resource_type == kResourceTopic) {
      auto topic = state.topics->find(resource.resource_name);
      if (!authorized(state, call, Operation::describe_configs, ResourceType::topic, resource.resource_name)) {
        result.error_code = code(KafkaError::topic_authorization_failed);
        result.error_message = "Topic authorization failed.";
      } else if (!topic) {
        result.error_code = code(KafkaError::unknown_topic_or_partition);
        result.error_message = "Topic " + resource.resource_name + " does not exist.";
      } else {
        describe_topic(state, *topic, resource, result.configs);
      }
    } else if (resource.resource_type == kResourceBroker) {
      if (!authorized_cluster(state, call, Operation::describe_configs)) {
        result.error_code = code(KafkaError::cluster_authorization_failed);
        result.error_message = "Cluster authorization failed.";
      } else if (!resource.resource_name.empty() && resource.resource_name != std::to_string(state.node_id())) {
        result.error_code = code(KafkaError::invalid_request);
        result.error_message = "Broker " + resource.resource_name + " is not this broker";
      } else {
        describe_broker(state, resource, request.include_synonyms, result.configs);
      }
    } else {
      result.error_code = code(KafkaError::invalid_request);
      result.error_message = "Bulwark describes topic and broker configs only";
    }
    response.results.push_back(std::move(result));
  }
  respond(call, response);
}

void handle_alter_configs(BrokerState& state, Call& call) {
  alter<msg::AlterConfigsRequest, msg::AlterConfigsResponse>(state, call);
}

void handle_incremental_alter_configs(BrokerState& state, Call& call) {
  alter<msg::IncrementalAlterConfigsRequest, msg::IncrementalAlterConfigsResponse>(state, call);
}

}  // namespace bulwark::broker
