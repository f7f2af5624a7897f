// Metadata and DescribeCluster: what the cluster looks like to a client.
#include <algorithm>

#include "base/log.h"
#include "broker/group_partitions.h"
#include "broker/leader_hints.h"
#include "broker/state.h"
#include "wire/generated/describe_cluster.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/metadata.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;
namespace {

wire::msg::MetadataResponse::MetadataResponseTopic describe_topic(const BrokerState& state,
                                                                 const cluster::MetadataImage& image,
                                                                 const TopicInfo& topic) {
  wire::msg::MetadataResponse::MetadataResponseTopic out;
  out.name = topic.name;
  out.topic_id = topic.id;
  out.is_internal = topic.name == kOffsetsTopic;
  const bool offline = state.offline_topics.reason(topic.name).has_value();
  const auto* topic_image = image.topic(topic.id);
  if (!topic_image) return out;
  for (const auto& [index, p] : topic_image->partitions) {
    wire::msg::MetadataResponse::MetadataResponsePartition partition;
    partition.partition_index = index;
    partition.leader_id = p.leader;
    partition.leader_epoch = p.leader_epoch;
    partition.replica_nodes = p.replicas;
    partition.isr_nodes = p.isr;
    for (auto replica : p.replicas) {
      const auto* broker = image.broker(replica);
      if (!broker || broker->fenced) partition.offline_replicas.push_back(replica);
    }
    if (!p.has_leader()) partition.error_code = code(KafkaError::leader_not_available);
    if (offline && p.leader == state.node_id()) {  // as Kafka shows a partition whose leader's log is offline
      partition.error_code = code(KafkaError::leader_not_available);
      partition.leader_id = -1;
      partition.isr_nodes.clear();
      partition.offline_replicas = {state.node_id()};
    }
    out.partitions.push_back(std::move(partition));
  }
  return out;
}

// Auto-creation (Metadata for a topic that does not exist): asks the controller for the topic with the
// broker defaults and answers LEADER_NOT_AVAILABLE meanwhile, as Kafka does; the client asks again.
void auto_create(BrokerState& state, Call& call, const std::string& name) {
  wire::msg::CreateTopicsRequest create;
  wire::msg::CreateTopicsRequest::CreatableTopic topic;
  topic.name = name;
  topic.num_partitions = -1;
  topic.replication_factor = -1;
  create.topics.push_back(std::move(topic));
  constexpr std::int16_t kCreateTopicsVersion = 7;
  state.forward_to_controller(call, create.api_key, kCreateTopicsVersion,
                              wire::encode_message(create, kCreateTopicsVersion), std::chrono::seconds(30),
                              [name](Result<Bytes> answer) {
                                if (!answer.ok()) log::warn("auto-creating topic {} failed: {}", name, answer.error().message);
                              });
}

wire::msg::MetadataResponse::MetadataResponseTopic topic_error(std::optional<std::string> name, KafkaError error) {
  wire::msg::MetadataResponse::MetadataResponseTopic out;
  out.name = std::move(name);
  out.error_code = code(error);
  return out;
}

}  // namespace

void handle_metadata(BrokerState& state, Call& call) {
  wire::msg::MetadataRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;

  wire::msg::MetadataResponse response;
  const auto image = state.image();
  response.brokers = brokers_for<wire::msg::MetadataResponse::MetadataResponseBroker>(*image, call.ctx.peer.listener);
  response.cluster_id = state.cluster_id;
  response.controller_id = state.controller_id();

  // v0: an empty list means every topic; v1+: null means every topic and empty means none.
  const bool all_topics = !request.topics.has_value() || (version == 0 && request.topics->empty());
  if (all_topics) {
    // Listing everything shows only the topics the principal may describe, without audit lines.
    for (const auto& topic : state.topics->list())
      if (authorized(state, call, Operation::describe, ResourceType::topic, topic.name, false))
        response.topics.push_back(describe_topic(state, *image, topic));
  } else {
    // Kafka 0.x-3 clients may always create topics through Metadata; v4+ say whether they want to.
    const bool may_create = state.config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
    for (const auto& wanted : *request.topics) {
      std::optional<TopicInfo> topic;
      if (wanted.name) {
        topic = state.topics->find(*wanted.name);
      } else if (wanted.topic_id != wire::Uuid{}) {
        topic = state.topics->find(wanted.topic_id);
        if (!topic) {
          auto missing = topic_error(std::nullopt, KafkaError::unknown_topic_id);
          missing.topic_id = wanted.topic_id;
          response.topics.push_back(std::move(missing));
          continue;
        }
      }
      const std::string& name = wanted.name ? *wanted.name : topic->name;
      if (!authorized(state, call, Operation::describe, ResourceType::topic, name)) {
        auto denied = topic_error(name, KafkaError::topic_authorization_failed);
        if (topic) denied.topic_id = topic->id;
        response.topics.push_back(std::move(denied));
        continue;
      }
      if (!topic && wanted.name) {
        if (invalid_topic_name_reason(*wanted.name)) {
          response.topics.push_back(topic_error(wanted.name, KafkaError::invalid_topic_exception));
          continue;
        }
        if (!may_create || *wanted.name == kOffsetsTopic) {  // the group coordinators create that one
          response.topics.push_back(topic_error(wanted.name, KafkaError::unknown_topic_or_partition));
          continue;
        }
        if (!authorized(state, call, Operation::create, ResourceType::cluster, security::kClusterResourceName, false) &&
            !authorized(state, call, Operation::create, ResourceType::topic, *wanted.name)) {
          response.topics.push_back(topic_error(wanted.name, KafkaError::topic_authorization_failed));
          continue;
        }
        auto_create(state, call, *wanted.name);
        response.topics.push_back(topic_error(wanted.name, KafkaError::leader_not_available));
        continue;
      }
      if (topic) response.topics.push_back(describe_topic(state, *image, *topic));
    }
  }
  if (version >= 8) {
    if (request.include_topic_authorized_operations)
      for (auto& t : response.topics)
        if (t.error_code == 0 && t.name) t.topic_authorized_operations = authorized_operations(state, call, ResourceType::topic, *t.name);
    if (version <= 10 && request.include_cluster_authorized_operations)
      response.cluster_authorized_operations =
          authorized_operations(state, call, ResourceType::cluster, security::kClusterResourceName);
  }
  respond(call, response);
}

void handle_describe_cluster(BrokerState& state, Call& call) {
  wire::msg::DescribeClusterRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeClusterResponse response;
  response.cluster_id = state.cluster_id;
  response.controller_id = state.controller_id();
  response.brokers = brokers_for<wire::msg::DescribeClusterResponse::DescribeClusterBroker>(*state.image(),
                                                                                          call.ctx.peer.listener);
  if (request.include_cluster_authorized_operations)
    response.cluster_authorized_operations =
        authorized_operations(state, call, ResourceType::cluster, security::kClusterResourceName);
  respond(call, response);
}

}  // namespace bulwark::broker
