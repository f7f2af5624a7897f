// kafka-topics.sh's parsing and printed forms, and the topic round trips.
#include "client/topics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <regex>

#include "client/configs.h"
#include "config/meta_properties.h"
#include "wire/generated/create_partitions.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/delete_topics.h"
#include "wire/generated/metadata.h"

namespace bulwark::client {
namespace {

// The broker waits this long for the controller before answering (Kafka's admin client default).
constexpr std::int32_t kAdminTimeoutMs = 30000;

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0;;) {
    const auto end = text.find(separator, start);
    out.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::optional<std::int32_t> parse_int(std::string_view text) {
  std::int32_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::string join_ids(const std::vector<std::int32_t>& ids) {
  std::string out;
  for (auto id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

// Kafka's Topic.isInternal names, for brokers that do not flag them.
bool internal_name(std::string_view name) { return name == "__consumer_offsets" || name == "__transaction_state"; }

ErrorKind kind_for(std::int16_t code) {
  return code == 29 || code == 31 ? ErrorKind::unauthenticated : ErrorKind::io;
}

// Why the broker refused, for the codes topic and config requests answer with.
std::string reason_for(std::int16_t code, std::string_view action, std::string_view identity) {
  switch (code) {
    case 29:
    case 31: return fmt::format("the broker says {} may not {}", identity, action);
    case 3: return fmt::format("could not {}: the topic does not exist", action);
    case 36: return fmt::format("could not {}: the topic already exists", action);
    case 17: return fmt::format("could not {}: the topic name is not valid", action);
    case 37: return fmt::format("could not {}: the broker refused the partition count", action);
    case 38: return fmt::format("could not {}: the broker refused the replication factor", action);
    case 39: return fmt::format("could not {}: the broker refused the replica assignment", action);
    case 40: return fmt::format("could not {}: the broker refused a config as invalid", action);
    case 44: return fmt::format("could not {}: the broker's policy refused it", action);
    case 42: return fmt::format("could not {}: the broker refused the request as invalid", action);
    case 35: return fmt::format("could not {}: the broker does not support this request version", action);
    case 7: return fmt::format("could not {}: the broker timed out before the change was committed", action);
    case 41: return fmt::format("could not {}: the broker is not the controller and could not forward it", action);
    default: return fmt::format("could not {}", action);
  }
}

template <class T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& item) { return item.name == name; });
  return it == items.end() ? nullptr : &*it;
}

Error missing_answer(std::string_view what, std::string_view name) {
  return make_error(ErrorKind::corrupt, fmt::format("the broker's {} answer does not mention topic '{}'", what, name));
}

std::string_view action_flag(TopicAction action) {
  switch (action) {
    case TopicAction::create: return "--create";
    case TopicAction::list: return "--list";
    case TopicAction::describe: return "--describe";
    case TopicAction::alter: return "--alter";
    case TopicAction::remove: return "--delete";
  }
  return "";
}

// kafka-topics.sh's checkInvalidArgs: `flag`, when given, goes with the `allowed` actions only.
Status only_with(bool given, std::string_view flag, TopicAction action, std::initializer_list<TopicAction> allowed) {
  if (!given || std::find(allowed.begin(), allowed.end(), action) != allowed.end()) return Status::success();
  std::string names;
  for (auto a : allowed) names += std::string(names.empty() ? "" : " or ") + std::string(action_flag(a));
  return usage(fmt::format("{} goes with {}, not {}", flag, names, action_flag(action)));
}

Status check_counts(const TopicOptions& o, TopicAction action) {
  if (o.partitions && *o.partitions < 1) return usage("--partitions must be at least 1");
  if (o.replication_factor && (*o.replication_factor < 1 || *o.replication_factor > 32767)) {
    return usage("--replication-factor must be between 1 and 32767");
  }
  if (o.replica_assignment && action == TopicAction::create && (o.partitions || o.replication_factor)) {
    return usage("--replica-assignment gives the partitions and their replicas: drop --partitions and "
                 "--replication-factor");
  }
  if (action == TopicAction::alter && !o.partitions) {
    return usage("--alter needs --partitions (the new, larger partition count); configs change with "
                 "`bulwark configs --alter --topic T --add-config k=v`");
  }
  return Status::success();
}

}  // namespace

Result<TopicAction> check_topic_options(const TopicOptions& o) {
  if (o.actions.size() != 1) {
    return usage("Command must include exactly one action: --list, --describe, --create, --alter or --delete");
  }
  const TopicAction action = o.actions.front();
  using A = TopicAction;
  if (!o.topic && (action == A::create || action == A::alter || action == A::remove)) {
    return usage(fmt::format("{} needs --topic", action_flag(action)));
  }
  if (o.topic && action == A::create) BULWARK_TRY(validate_topic_name(*o.topic));
  BULWARK_TRY(only_with(o.partitions.has_value(), "--partitions", action, {A::create, A::alter}));
  BULWARK_TRY(only_with(o.replication_factor.has_value(), "--replication-factor", action, {A::create}));
  BULWARK_TRY(only_with(o.replica_assignment.has_value(), "--replica-assignment", action, {A::create, A::alter}));
  if (!o.configs.empty() && action != A::create) {
    return usage("--config goes with --create only; change a topic's configs with `bulwark configs --alter --topic T "
                 "--add-config k=v`");
  }
  BULWARK_TRY(only_with(o.if_not_exists, "--if-not-exists", action, {A::create}));
  BULWARK_TRY(only_with(o.if_exists, "--if-exists", action, {A::alter, A::remove, A::describe}));
  BULWARK_TRY(only_with(o.exclude_internal, "--exclude-internal", action, {A::list, A::describe}));
  BULWARK_TRY(only_with(o.under_replicated, "--under-replicated-partitions", action, {A::describe}));
  BULWARK_TRY(only_with(o.unavailable, "--unavailable-partitions", action, {A::describe}));
  BULWARK_TRY(only_with(o.topics_with_overrides, "--topics-with-overrides", action, {A::describe}));
  BULWARK_TRY(check_counts(o, action));
  return action;
}

Status validate_topic_name(std::string_view name) {
  if (name.empty()) return usage("the topic name is empty");
  if (name == "." || name == "..") return usage(fmt::format("the topic name cannot be '{}'", name));
  if (name.size() > 249) return usage(fmt::format("the topic name is {} characters long; at most 249", name.size()));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return usage(fmt::format("the topic name '{}' has '{}': only ASCII letters, digits, '.', '_' and '-'", name, c));
    }
  }
  return Status::success();
}

Result<ConfigPairs> parse_topic_configs(const std::vector<std::string>& entries) {
  ConfigPairs out;
  for (const auto& entry : entries) {
    auto parts = split(entry, '=');
    if (parts.size() != 2 || trim(parts[0]).empty()) {
      return usage(fmt::format("--config '{}' is not key=value (one '=', as kafka-topics.sh takes it)", entry));
    }
    out.emplace_back(std::string(trim(parts[0])), std::string(trim(parts[1])));
  }
  return out;
}

Result<std::vector<std::vector<std::int32_t>>> parse_replica_assignment(std::string_view text) {
  std::vector<std::vector<std::int32_t>> out;
  for (auto partition : split(text, ',')) {
    std::vector<std::int32_t> brokers;
    for (auto id : split(partition, ':')) {
      auto parsed = parse_int(trim(id));
      if (!parsed || *parsed < 0) {
        return usage(fmt::format("--replica-assignment '{}': '{}' is not a broker id", text, trim(id)));
      }
      if (std::find(brokers.begin(), brokers.end(), *parsed) != brokers.end()) {
        return usage(fmt::format("--replica-assignment: partition {} lists broker {} twice", out.size(), *parsed));
      }
      brokers.push_back(*parsed);
    }
    if (!out.empty() && brokers.size() != out.front().size()) {
      return usage(fmt::format("--replica-assignment: partition {} has replication factor {}, partition 0 has {}",
                               out.size(), brokers.size(), out.front().size()));
    }
    out.push_back(std::move(brokers));
  }
  return out;
}

Result<std::vector<TopicInfo>> select_topics(const std::vector<TopicInfo>& all,
                                             const std::optional<std::string>& pattern, bool exclude_internal) {
  std::optional<std::regex> matcher;
  if (pattern) {
    try {
      matcher.emplace(*pattern);
    } catch (const std::regex_error& e) {
      return usage(
          fmt::format("--topic '{}' is neither a topic name nor a regular expression: {}", *pattern, e.what()));
    }
  }
  std::vector<TopicInfo> out;
  for (const auto& topic : all) {
    if (exclude_internal && topic.internal) continue;
    // A name equal to the pattern always matches, whatever characters it holds.
    if (matcher && topic.name != *pattern && !std::regex_match(topic.name, *matcher)) continue;
    out.push_back(topic);
  }
  std::sort(out.begin(), out.end(), [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  return out;
}

std::string render_topic_list(const std::vector<TopicInfo>& topics) {
  std::string out;
  for (const auto& topic : topics) out += topic.name + "\n";
  return out;
}

std::string render_topic_description(const TopicInfo& topic, const DescribeFilter& filter,
                                     const std::set<std::int32_t>& live_brokers) {
  if (filter.with_overrides && topic.overrides.empty()) return "";
  std::string out;
  const bool topic_line = !filter.reporting();
  if (topic_line) {
    std::string configs;
    for (const auto& [key, value] : topic.overrides) configs += (configs.empty() ? "" : ",") + key + "=" + value;
    out += "Topic: " + topic.name;
    if (topic.id != wire::Uuid{}) out += "\tTopicId: " + config::encode_uuid(topic.id);
    out += fmt::format("\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n", topic.partitions.size(),
                       topic.partitions.empty() ? 0 : topic.partitions.front().replicas.size(), configs);
  }
  if (filter.with_overrides) return out;  // kafka-topics.sh prints no partitions with --topics-with-overrides
  for (const auto& p : topic.partitions) {
    const bool under = p.isr.size() < p.replicas.size();
    const bool unavailable = p.leader < 0 || live_brokers.count(p.leader) == 0;
    if (!topic_line && !(filter.under_replicated && under) && !(filter.unavailable && unavailable)) continue;
    out += fmt::format("\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\n", topic.name, p.partition,
                       p.leader < 0 ? std::string("none") : std::to_string(p.leader), join_ids(p.replicas),
                       join_ids(p.isr));
  }
  return out;
}

std::string explain_admin_error(std::int16_t code, const std::optional<std::string>& message, std::string_view action,
                                std::string_view identity) {
  std::string text = reason_for(code, action, identity) + " (" + error_name(code) + ")";
  if (message && !message->empty() && text.find(*message) == std::string::npos) text += ": " + *message;
  return text;
}

Error admin_error(const BrokerAnswer& answer, std::string_view action, std::string_view identity) {
  return make_error(kind_for(answer.error_code),
                    explain_admin_error(answer.error_code, answer.error_message, action, identity));
}

Result<ClusterTopics> fetch_topics(AdminConnection& connection) {
  wire::msg::MetadataRequest request;
  request.topics = std::nullopt;  // every topic
  request.allow_auto_topic_creation = false;
  auto response = connection.call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(request);
  if (!response) return response.error();
  ClusterTopics out;
  for (const auto& b : response->brokers) {
    out.brokers.insert(b.node_id);
    out.addresses[b.node_id] = HostPort{b.host, static_cast<std::uint16_t>(b.port)};
  }
  for (auto& t : response->topics) {
    if (t.error_code != 0 || !t.name) continue;  // a topic we may not describe is not listed, as in Kafka
    TopicInfo topic{*t.name, t.topic_id, t.is_internal || internal_name(*t.name), {}, {}};
    for (auto& p : t.partitions) {
      topic.partitions.push_back({p.partition_index, p.leader_id, std::move(p.replica_nodes), std::move(p.isr_nodes)});
    }
    std::sort(topic.partitions.begin(), topic.partitions.end(),
              [](const PartitionInfo& a, const PartitionInfo& b) { return a.partition < b.partition; });
    out.topics.push_back(std::move(topic));
  }
  std::sort(out.topics.begin(), out.topics.end(),
            [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  return out;
}

Status fetch_topic_overrides(AdminConnection& connection, std::vector<TopicInfo>& topics) {
  if (topics.empty()) return Status::success();
  std::vector<ConfigResource> resources;
  for (const auto& t : topics) resources.push_back({ConfigResourceType::topic, t.name});
  auto described = describe_configs(connection, resources);
  if (!described) return described.error();
  for (std::size_t i = 0; i < topics.size(); ++i) {
    for (const auto& entry : (*described)[i].entries) {
      if (!entry.is_default) topics[i].overrides.emplace_back(entry.name, entry.value.value_or("null"));
    }
  }
  return Status::success();
}

Result<BrokerAnswer> create_topic(AdminConnection& connection, const NewTopic& topic) {
  wire::msg::CreateTopicsRequest request;
  request.timeout_ms = kAdminTimeoutMs;
  wire::msg::CreateTopicsRequest::CreatableTopic t;
  t.name = topic.name;
  t.num_partitions = topic.assignment.empty() ? topic.partitions : -1;
  t.replication_factor = topic.assignment.empty() ? topic.replication_factor : std::int16_t{-1};
  for (std::size_t i = 0; i < topic.assignment.size(); ++i) {
    t.assignments.push_back({static_cast<std::int32_t>(i), topic.assignment[i], {}});
  }
  for (const auto& [key, value] : topic.configs) t.configs.push_back({key, value, {}});
  request.topics.push_back(std::move(t));
  // The broker's defaults (-1) need v4+.
  if (topic.partitions < 0 || topic.replication_factor < 0) {
    auto version = connection.negotiate(request.api_key, 4, request.highest_supported_version);
    if (!version) {
      return usage("this broker needs --partitions and --replication-factor (it predates CreateTopics v4, which "
                   "takes the broker's defaults)");
    }
  }
  auto response = connection.call<wire::msg::CreateTopicsRequest, wire::msg::CreateTopicsResponse>(request);
  if (!response) return response.error();
  const auto* result = find_named(response->topics, topic.name);
  if (result == nullptr) return missing_answer("CreateTopics", topic.name);
  return BrokerAnswer{result->error_code, result->error_message};
}

Result<std::vector<BrokerAnswer>> delete_topics(AdminConnection& connection, const std::vector<std::string>& names) {
  wire::msg::DeleteTopicsRequest request;
  request.timeout_ms = kAdminTimeoutMs;
  for (const auto& name : names) {
    request.topic_names.push_back(name);  // v0-5
    wire::msg::DeleteTopicsRequest::DeleteTopicState state;
    state.name = name;  // v6+
    request.topics.push_back(std::move(state));
  }
  auto response = connection.call<wire::msg::DeleteTopicsRequest, wire::msg::DeleteTopicsResponse>(request);
  if (!response) return response.error();
  std::vector<BrokerAnswer> out;
  for (const auto& name : names) {
    auto it = std::find_if(response->responses.begin(), response->responses.end(),
                           [&](const auto& r) { return r.name == name; });
    if (it == response->responses.end()) return missing_answer("DeleteTopics", name);
    out.push_back({it->error_code, it->error_message});
  }
  return out;
}

Result<BrokerAnswer> create_partitions(AdminConnection& connection, const std::string& name, std::int32_t count,
                                       const std::vector<std::vector<std::int32_t>>& assignment) {
  wire::msg::CreatePartitionsRequest request;
  request.timeout_ms = kAdminTimeoutMs;
  wire::msg::CreatePartitionsRequest::CreatePartitionsTopic topic;
  topic.name = name;
  topic.count = count;
  if (assignment.empty()) {
    topic.assignments = std::nullopt;  // the controller places them
  } else {
    for (const auto& brokers : assignment) topic.assignments->push_back({brokers, {}});
  }
  request.topics.push_back(std::move(topic));
  auto response = connection.call<wire::msg::CreatePartitionsRequest, wire::msg::CreatePartitionsResponse>(request);
  if (!response) return response.error();
  const auto* result = find_named(response->results, name);
  if (result == nullptr) return missing_answer("CreatePartitions", name);
  return BrokerAnswer{result->error_code, result->error_message};
}

}  // namespace bulwark::client
