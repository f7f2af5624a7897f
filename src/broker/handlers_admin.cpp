// CreateTopics, DeleteTopics and CreatePartitions.
#include "base/log.h"
#include "broker/state.h"
#include "wire/generated/create_partitions.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/delete_topics.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;

void handle_create_topics(BrokerState& state, Call& call) {
  wire::msg::CreateTopicsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::CreateTopicsResponse response;
  // Kafka: CREATE on the cluster allows every topic; otherwise CREATE on each topic.
  const bool create_any = authorized(state, call, Operation::create, ResourceType::cluster,
                                     security::kClusterResourceName, false);
  for (const auto& topic : request.topics) {
    wire::msg::CreateTopicsResponse::CreatableTopicResult out;
    out.name = topic.name;
    out.num_partitions = -1;
    out.replication_factor = -1;
    std::int32_t partitions = topic.num_partitions;
    std::int16_t replication = topic.replication_factor;
    BrokerState::CreateOutcome outcome;
    if (!create_any && !authorized(state, call, Operation::create, ResourceType::topic, topic.name)) {
      outcome = {KafkaError::topic_authorization_failed, "Authorization failed.", {}};
    } else if (!topic.assignments.empty()) {
      // Manual assignment: every replica must be this node (the only one until the cluster arrives).
      bool ok = partitions == -1 && replication == -1;
      for (const auto& assignment : topic.assignments)
        for (auto broker : assignment.broker_ids) ok = ok && broker == state.node_id();
      partitions = static_cast<std::int32_t>(topic.assignments.size());
      replication = topic.assignments.empty() ? 1 : static_cast<std::int16_t>(topic.assignments[0].broker_ids.size());
      if (!ok) outcome = {KafkaError::invalid_replica_assignment, "replica assignments may only name broker " +
                                                                     std::to_string(state.node_id()), {}};
    }
    if (outcome.error == KafkaError::none) {
      std::map<std::string, std::string> configs;
      for (const auto& c : topic.configs)
        if (c.value) configs[c.name] = *c.value;
      outcome = state.create_topic(topic.name, partitions, replication, std::move(configs), request.validate_only);
    }
    out.error_code = code(outcome.error);
    if (outcome.error != KafkaError::none) {
      out.error_message = outcome.message;
    } else if (outcome.topic) {
      out.topic_id = outcome.topic->id;
      out.num_partitions = outcome.topic->partitions;
      out.replication_factor = outcome.topic->replication_factor;
      out.configs = std::vector<wire::msg::CreateTopicsResponse::CreatableTopicConfigs>{};
      if (authorized(state, call, Operation::describe_configs, ResourceType::topic, topic.name, false)) {
        for (const auto& [name, value] : outcome.topic->configs)
          out.configs->push_back({name, value, false, /*DYNAMIC_TOPIC_CONFIG*/ 1, false, {}});
      } else {
        out.topic_config_error_code = code(KafkaError::topic_authorization_failed);
      }
    }
    response.topics.push_back(std::move(out));
  }
  respond(call, response);
}

void handle_delete_topics(BrokerState& state, Call& call) {
  wire::msg::DeleteTopicsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DeleteTopicsResponse response;
  auto delete_one = [&](std::optional<std::string> name, wire::Uuid id) {
    wire::msg::DeleteTopicsResponse::DeletableTopicResult out;
    out.topic_id = id;
    if (!name && id != wire::Uuid{}) {
      if (auto topic = state.topics->find(id)) name = topic->name;
    }
    out.name = name;
    if (!state.config.delete_topic_enable) {
      out.error_code = code(KafkaError::topic_deletion_disabled);
      out.error_message = "Topic deletion is disabled (delete.topic.enable=false).";
    } else if (!name) {
      out.error_code = code(KafkaError::unknown_topic_id);
    } else if (!authorized(state, call, Operation::remove, ResourceType::topic, *name)) {
      out.error_code = code(KafkaError::topic_authorization_failed);
      out.error_message = "Topic authorization failed.";
    } else {
      std::string message;
      out.error_code = code(state.delete_topic(*name, message));
      if (out.error_code != 0) out.error_message = message;
    }
    response.responses.push_back(std::move(out));
  };
  if (call.header.api_version >= 6) {
    for (const auto& topic : request.topics) delete_one(topic.name, topic.topic_id);
  } else {
    for (const auto& name : request.topic_names) delete_one(name, wire::Uuid{});
  }
  respond(call, response);
}

void handle_create_partitions(BrokerState& state, Call& call) {
  wire::msg::CreatePartitionsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::CreatePartitionsResponse response;
  for (const auto& topic : request.topics) {
    wire::msg::CreatePartitionsResponse::CreatePartitionsTopicResult out;
    out.name = topic.name;
    auto info = state.topics->find(topic.name);
    auto fail = [&](KafkaError error, std::string message) {
      out.error_code = code(error);
      out.error_message = std::move(message);
    };
    if (!authorized(state, call, Operation::alter, ResourceType::topic, topic.name)) {
      fail(KafkaError::topic_authorization_failed, "Topic authorization failed.");
    } else if (!info) {
      fail(KafkaError::unknown_topic_or_partition, "The topic '" + topic.name + "' does not exist.");
    } else if (auto offline = state.offline_topics.reason(topic.name)) {
      fail(KafkaError::invalid_config, *offline);
    } else if (topic.count <= info->partitions) {
      fail(KafkaError::invalid_partitions, "Topic currently has " + std::to_string(info->partitions) +
                                               " partitions, which is higher than or equal to the requested " +
                                               std::to_string(topic.count) + ".");
    } else if (topic.count > 100000) {
      fail(KafkaError::invalid_partitions, "Number of partitions is above Bulwark's limit of 100000.");
    } else if (!request.validate_only) {
      auto log_config = state.log_config_for(*info);
      bool created = true;
      for (auto p = info->partitions; p < topic.count && created; ++p) {
        auto log = state.logs->get_or_create({topic.name, p}, log_config);
        if (!log.ok()) {
          fail(KafkaError::kafka_storage_error, log.error().message);
          created = false;
        }
      }
      if (created) {
        if (auto saved = state.topics->set_partitions(topic.name, topic.count); !saved.ok())
          fail(KafkaError::kafka_storage_error, saved.error().message);
        else
          log::info("topic {} now has {} partitions", topic.name, topic.count);
      }
    }
    response.results.push_back(std::move(out));
  }
  respond(call, response);
}

}  // namespace bulwark::broker
