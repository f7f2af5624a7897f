// KIP-848's consumer protocol at the protocol edge: ConsumerGroupHeartbeat (API 68) and
// ConsumerGroupDescribe (API 69), v0 as Kafka 3.7 serves them. The group logic is groups/consumer/;
// these handlers check the config and ACLs, map topic ids to names through the metadata image, and
// translate the coordinator's errors.
//
// As Kafka 3.7: both APIs are always listed in ApiVersions, and answer UNSUPPORTED_VERSION unless
// group.coordinator.rebalance.protocols names "consumer"; the heartbeat needs READ on the group and the
// describe DESCRIBE on it. Kafka 3.7 checks no topic ACL for a subscription (Fetch and OffsetCommit
// still check READ on each topic), and neither does Bulwark.
#include "base/log.h"
#include "broker/group_handlers.h"
#include "broker/state.h"
#include "groups/consumer/consumer_group.h"
#include "wire/generated/consumer_group_describe.h"
#include "wire/generated/consumer_group_heartbeat.h"

namespace bulwark::broker {

using groups::GroupError;
using security::Operation;
using security::ResourceType;
namespace consumer = groups::consumer;

namespace {

constexpr const char* kDisabled =
    "The consumer group protocol is not enabled: add 'consumer' to group.coordinator.rebalance.protocols.";

consumer::TopicLookup topic_lookup(const std::shared_ptr<const cluster::MetadataImage>& image) {
  return [image](const std::string& name) -> std::optional<consumer::TopicMetadata> {
    const auto* topic = image->topic(name);
    if (!topic) return std::nullopt;
    return consumer::TopicMetadata{topic->id, static_cast<std::int32_t>(topic->partitions.size())};
  };
}

// The owned partitions a member reports, by name; topics the image no longer has are left out (the
// member cannot own what does not exist).
consumer::Partitions owned_by_name(const cluster::MetadataImage& image,
                                   const std::vector<wire::msg::ConsumerGroupHeartbeatRequest::TopicPartitions>& owned) {
  consumer::Partitions out;
  for (const auto& tp : owned)
    if (const auto* topic = image.topic(tp.topic_id)) out[topic->name].insert(tp.partitions.begin(), tp.partitions.end());
  return out;
}

template <class TopicPartitions>
std::vector<TopicPartitions> by_topic_id(const cluster::MetadataImage& image, const consumer::Partitions& partitions) {
  std::vector<TopicPartitions> out;
  for (const auto& [name, ids] : partitions) {
    const auto* topic = image.topic(name);
    if (!topic) continue;
    TopicPartitions tp;
    tp.topic_id = topic->id;
    if constexpr (requires { tp.topic_name; }) tp.topic_name = name;
    tp.partitions.assign(ids.begin(), ids.end());
    out.push_back(std::move(tp));
  }
  return out;
}

}  // namespace

void handle_consumer_group_heartbeat(BrokerState& state, Call& call) {
  wire::msg::ConsumerGroupHeartbeatRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::ConsumerGroupHeartbeatResponse response;
  auto fail = [&](std::int16_t error_code, std::string message) {
    response.error_code = error_code;
    if (!message.empty()) response.error_message = std::move(message);
    respond(call, response);
  };
  if (!state.config.consumer_group_protocol) return fail(kafka_code(GroupError::unsupported_version), kDisabled);
  if (!authorized(state, call, Operation::read, ResourceType::group, request.group_id))
    return fail(code(KafkaError::group_authorization_failed), "");
  const auto image = state.image();
  consumer::HeartbeatRequest hb;
  hb.group_id = request.group_id;
  hb.member_id = request.member_id;
  hb.member_epoch = request.member_epoch;
  hb.instance_id = request.instance_id;
  hb.rack_id = request.rack_id;
  hb.rebalance_timeout_ms = request.rebalance_timeout_ms;
  hb.subscribed_topics = request.subscribed_topic_names;
  hb.server_assignor = request.server_assignor;
  if (request.topic_partitions) hb.owned = owned_by_name(*image, *request.topic_partitions);
  hb.client_id = call.header.client_id.value_or("");
  hb.client_host = "/" + call.ctx.peer.remote_address;
  std::string message;
  if (auto invalid = consumer::validate_heartbeat(hb, message); invalid != GroupError::none)
    return fail(kafka_code(invalid), message);
  auto lookup = coordinator_for(state, request.group_id);
  if (!lookup.coordinator) return fail(kafka_code(lookup.error), "");
  auto result = lookup.coordinator->consumer_heartbeat(hb, topic_lookup(image));
  if (result.error != GroupError::none) return fail(kafka_code(result.error), result.message);
  response.member_id = result.member_id;
  response.member_epoch = result.member_epoch;
  response.heartbeat_interval_ms = result.heartbeat_interval_ms;
  if (result.assignment) {
    response.assignment.emplace();
    response.assignment->topic_partitions =
        by_topic_id<wire::msg::ConsumerGroupHeartbeatResponse::TopicPartitions>(*image, *result.assignment);
  }
  respond(call, response);
}

void handle_consumer_group_describe(BrokerState& state, Call& call) {
  wire::msg::ConsumerGroupDescribeRequest request;
  if (!decode_request(call, request)) return;
  using Resp = wire::msg::ConsumerGroupDescribeResponse;
  Resp response;
  const auto image = state.image();
  for (const auto& group_id : request.group_ids) {
    Resp::DescribedGroup out;
    out.group_id = group_id;
    auto lookup = coordinator_for(state, group_id);
    std::optional<consumer::GroupDescription> described;
    if (!state.config.consumer_group_protocol) {
      out.error_code = kafka_code(GroupError::unsupported_version);
      out.error_message = kDisabled;
    } else if (!authorized(state, call, Operation::describe, ResourceType::group, group_id)) {
      out.error_code = code(KafkaError::group_authorization_failed);
    } else if (!lookup.coordinator) {
      out.error_code = kafka_code(lookup.error);
    } else if (!(described = lookup.coordinator->describe_consumer_group(group_id))) {
      out.error_code = kafka_code(GroupError::group_id_not_found);
      out.error_message = "Group " + group_id + " is not a consumer group.";
    } else {
      out.group_state = consumer::to_string(described->state);
      out.group_epoch = described->group_epoch;
      out.assignment_epoch = described->assignment_epoch;
      out.assignor_name = described->assignor;
      for (const auto& m : described->members) {
        Resp::Member member;
        member.member_id = m.member_id;
        member.instance_id = m.instance_id;
        member.rack_id = m.rack_id;
        member.member_epoch = m.member_epoch;
        member.client_id = m.client_id;
        member.client_host = m.client_host;
        member.subscribed_topic_names = m.subscribed_topics;
        member.assignment.topic_partitions = by_topic_id<Resp::TopicPartitions>(*image, m.assigned);
        member.target_assignment.topic_partitions = by_topic_id<Resp::TopicPartitions>(*image, m.target);
        out.members.push_back(std::move(member));
      }
      if (request.include_authorized_operations)
        out.authorized_operations = authorized_operations(state, call, ResourceType::group, group_id);
    }
    response.groups.push_back(std::move(out));
  }
  respond(call, response);
}

}  // namespace bulwark::broker
