// CreateTopics, DeleteTopics and CreatePartitions. The broker checks what it can decide alone (ACLs,
// delete.topic.enable), forwards the rest to the active controller, and answers once the controller's
// records have reached this node's image (so a client may use the topic here right after the answer).
#include <set>
#include <tuple>

#include "base/log.h"
#include "broker/forwarding.h"
#include "broker/state.h"
#include "cluster/controller.h"
#include "wire/generated/alter_partition_reassignments.h"
#include "wire/generated/create_partitions.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/delete_topics.h"
#include "wire/generated/elect_leaders.h"
#include "wire/generated/list_partition_reassignments.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;
namespace msg = wire::msg;

namespace {

constexpr std::int16_t kRequestTimedOut = 7;

std::chrono::milliseconds request_timeout(std::int32_t timeout_ms) {
  return std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 30000);
}

}  // namespace

void handle_create_topics(BrokerState& state, Call& call) {
  msg::CreateTopicsRequest request;
  if (!decode_request(call, request)) return;
  msg::CreateTopicsResponse response;
  // Kafka: CREATE on the cluster allows every topic; otherwise CREATE on each topic.
  const bool create_any = authorized(state, call, Operation::create, ResourceType::cluster,
                                     security::kClusterResourceName, false);
  auto forwarded = request;
  forwarded.topics.clear();
  for (const auto& topic : request.topics) {
    msg::CreateTopicsResponse::CreatableTopicResult out;
    out.name = topic.name;
    out.num_partitions = -1;
    out.replication_factor = -1;
    if (!create_any && !authorized(state, call, Operation::create, ResourceType::topic, topic.name)) {
      out.error_code = code(KafkaError::topic_authorization_failed);
      out.error_message = "Authorization failed.";
    } else if (topic.name == "__consumer_offsets") {  // the group coordinator's own log lives under this name
      out.error_code = code(KafkaError::invalid_topic_exception);
      out.error_message = "the topic name __consumer_offsets is reserved for committed offsets";
    } else {
      forwarded.topics.push_back(topic);
      continue;
    }
    response.topics.push_back(std::move(out));
  }
  if (forwarded.topics.empty()) return respond(call, response);
  const bool validate_only = request.validate_only;
  forward_and_answer<msg::CreateTopicsRequest, msg::CreateTopicsResponse>(
      state, call, forwarded, std::move(response), request_timeout(request.timeout_ms),
      [forwarded](msg::CreateTopicsResponse& response, std::optional<msg::CreateTopicsResponse> answer,
                  const std::string& failure) {
        if (answer) {
          for (auto& topic : answer->topics) response.topics.push_back(std::move(topic));
          return;
        }
        for (const auto& topic : forwarded.topics) {
          msg::CreateTopicsResponse::CreatableTopicResult out;
          out.name = topic.name;
          out.num_partitions = -1;
          out.replication_factor = -1;
          out.error_code = kRequestTimedOut;
          out.error_message = failure;
          response.topics.push_back(std::move(out));
        }
      },
      [validate_only](const msg::CreateTopicsResponse& response) -> ImageWaiters::Predicate {
        std::vector<std::string> created;
        if (!validate_only)
          for (const auto& topic : response.topics)
            if (topic.error_code == 0) created.push_back(topic.name);
        return [created](const cluster::MetadataImage& image) {
          return std::all_of(created.begin(), created.end(), [&](const auto& name) { return image.topic(name) != nullptr; });
        };
      });
}

void handle_delete_topics(BrokerState& state, Call& call) {
  msg::DeleteTopicsRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  msg::DeleteTopicsResponse response;
  auto forwarded = request;
  forwarded.topics.clear();
  forwarded.topic_names.clear();
  auto image = state.image();
  auto answer_here = [&](std::optional<std::string> name, wire::Uuid id, KafkaError error, std::string message) {
    msg::DeleteTopicsResponse::DeletableTopicResult out;
    out.name = std::move(name);
    out.topic_id = id;
    out.error_code = code(error);
    out.error_message = std::move(message);
    response.responses.push_back(std::move(out));
  };
  auto consider = [&](std::optional<std::string> name, wire::Uuid id) {
    if (!name && id != wire::Uuid{})
      if (const auto* topic = image->topic(id)) name = topic->name;
    if (!state.config.delete_topic_enable)
      return answer_here(name, id, KafkaError::topic_deletion_disabled,
                         "Topic deletion is disabled (delete.topic.enable=false).");
    if (!name) return answer_here(name, id, KafkaError::unknown_topic_id, "");
    if (!authorized(state, call, Operation::remove, ResourceType::topic, *name))
      return answer_here(name, id, KafkaError::topic_authorization_failed, "Topic authorization failed.");
    if (version >= 6) forwarded.topics.push_back({name, id, {}});
    else forwarded.topic_names.push_back(*name);
  };
  if (version >= 6) {
    for (const auto& topic : request.topics) consider(topic.name, topic.topic_id);
  } else {
    for (const auto& name : request.topic_names) consider(name, wire::Uuid{});
  }
  if (forwarded.topics.empty() && forwarded.topic_names.empty()) return respond(call, response);
  forward_and_answer<msg::DeleteTopicsRequest, msg::DeleteTopicsResponse>(
      state, call, forwarded, std::move(response), request_timeout(request.timeout_ms),
      [forwarded](msg::DeleteTopicsResponse& response, std::optional<msg::DeleteTopicsResponse> answer,
                  const std::string& failure) {
        if (answer) {
          for (auto& topic : answer->responses) response.responses.push_back(std::move(topic));
          return;
        }
        auto failed = [&](std::optional<std::string> name, wire::Uuid id) {
          msg::DeleteTopicsResponse::DeletableTopicResult out;
          out.name = std::move(name);
          out.topic_id = id;
          out.error_code = kRequestTimedOut;
          out.error_message = failure;
          response.responses.push_back(std::move(out));
        };
        for (const auto& topic : forwarded.topics) failed(topic.name, topic.topic_id);
        for (const auto& name : forwarded.topic_names) failed(name, wire::Uuid{});
      },
      [](const msg::DeleteTopicsResponse& response) -> ImageWaiters::Predicate {
        std::vector<std::string> deleted;
        for (const auto& topic : response.responses)
          if (topic.error_code == 0 && topic.name) deleted.push_back(*topic.name);
        return [deleted](const cluster::MetadataImage& image) {
          return std::none_of(deleted.begin(), deleted.end(), [&](const auto& name) { return image.topic(name) != nullptr; });
        };
      });
}

void handle_create_partitions(BrokerState& state, Call& call) {
  msg::CreatePartitionsRequest request;
  if (!decode_request(call, request)) return;
  msg::CreatePartitionsResponse response;
  auto forwarded = request;
  forwarded.topics.clear();
  for (const auto& topic : request.topics) {
    auto fail = [&](KafkaError error, std::string message) {
      msg::CreatePartitionsResponse::CreatePartitionsTopicResult out;
      out.name = topic.name;
      out.error_code = code(error);
      out.error_message = std::move(message);
      response.results.push_back(std::move(out));
    };
    if (!authorized(state, call, Operation::alter, ResourceType::topic, topic.name))
      fail(KafkaError::topic_authorization_failed, "Topic authorization failed.");
    else if (auto offline = state.offline_topics.reason(topic.name))
      fail(KafkaError::invalid_config, *offline);
    else if (topic.count > 100000)
      fail(KafkaError::invalid_partitions, "Number of partitions is above Bulwark's limit of 100000.");
    else
      forwarded.topics.push_back(topic);
  }
  if (forwarded.topics.empty()) return respond(call, response);
  const bool validate_only = request.validate_only;
  forward_and_answer<msg::CreatePartitionsRequest, msg::CreatePartitionsResponse>(
      state, call, forwarded, std::move(response), request_timeout(request.timeout_ms),
      [forwarded](msg::CreatePartitionsResponse& response, std::optional<msg::CreatePartitionsResponse> answer,
                  const std::string& failure) {
        if (answer) {
          for (auto& topic : answer->results) response.results.push_back(std::move(topic));
          return;
        }
        for (const auto& topic : forwarded.topics) response.results.push_back({topic.name, kRequestTimedOut, failure, {}});
      },
      [forwarded, validate_only](const msg::CreatePartitionsResponse& response) -> ImageWaiters::Predicate {
        std::map<std::string, std::int32_t> grown;
        if (!validate_only)
          for (const auto& result : response.results)
            if (result.error_code == 0)
              for (const auto& topic : forwarded.topics)
                if (topic.name == result.name) grown[topic.name] = topic.count;
        return [grown](const cluster::MetadataImage& image) {
          return std::all_of(grown.begin(), grown.end(), [&](const auto& entry) {
            const auto* topic = image.topic(entry.first);
            return topic && static_cast<std::int32_t>(topic->partitions.size()) >= entry.second;
          });
        };
      });
}

}  // namespace bulwark::broker

namespace bulwark::broker {

// ElectLeaders (kafka-leader-election.sh): ALTER on the cluster, then the controller decides.
void handle_elect_leaders(BrokerState& state, Call& call) {
  msg::ElectLeadersRequest request;
  if (!decode_request(call, request)) return;
  if (!authorized(state, call, Operation::alter, ResourceType::cluster, security::kClusterResourceName)) {
    msg::ElectLeadersResponse response;
    response.error_code = code(KafkaError::cluster_authorization_failed);
    for (const auto& topic : request.topic_partitions.value_or(std::vector<msg::ElectLeadersRequest::TopicPartitions>{})) {
      auto& result = response.replica_election_results.emplace_back();
      result.topic = topic.topic;
      for (auto index : topic.partitions)
        result.partition_result.push_back({index, code(KafkaError::cluster_authorization_failed), "Cluster authorization failed.", {}});
    }
    return respond(call, response);
  }
  forward_and_answer<msg::ElectLeadersRequest, msg::ElectLeadersResponse>(
      state, call, request, msg::ElectLeadersResponse{}, request_timeout(request.timeout_ms),
      [](msg::ElectLeadersResponse& response, std::optional<msg::ElectLeadersResponse> answer, const std::string&) {
        if (answer) response = std::move(*answer);
        else response.error_code = kRequestTimedOut;
      },
      // The new leaders are on this broker's image before the answer, so a Metadata right after shows them.
      [preferred = request.election_type == 0](const msg::ElectLeadersResponse& response) -> ImageWaiters::Predicate {
        std::vector<std::pair<std::string, std::int32_t>> elected;
        for (const auto& topic : response.replica_election_results)
          for (const auto& p : topic.partition_result)
            if (p.error_code == 0) elected.emplace_back(topic.topic, p.partition_id);
        return [elected, preferred](const cluster::MetadataImage& image) {
          return std::all_of(elected.begin(), elected.end(), [&](const auto& tp) {
            const auto* p = image.partition(tp.first, tp.second);
            return p && (preferred ? !p->replicas.empty() && p->leader == p->replicas.front() : p->has_leader());
          });
        };
      });
}

// AlterPartitionReassignments (kafka-reassign-partitions.sh --execute, and --cancel): ALTER on the
// cluster, then the controller starts them; answered once this broker's image shows them started.
void handle_alter_partition_reassignments(BrokerState& state, Call& call) {
  msg::AlterPartitionReassignmentsRequest request;
  if (!decode_request(call, request)) return;
  if (!authorized(state, call, Operation::alter, ResourceType::cluster, security::kClusterResourceName)) {
    msg::AlterPartitionReassignmentsResponse response;
    response.error_code = code(KafkaError::cluster_authorization_failed);
    response.error_message = "Cluster authorization failed.";
    return respond(call, response);
  }
  forward_and_answer<msg::AlterPartitionReassignmentsRequest, msg::AlterPartitionReassignmentsResponse>(
      state, call, request, msg::AlterPartitionReassignmentsResponse{}, request_timeout(request.timeout_ms),
      [](msg::AlterPartitionReassignmentsResponse& response, std::optional<msg::AlterPartitionReassignmentsResponse> answer,
         const std::string&) {
        if (answer) response = std::move(*answer);
        else response.error_code = kRequestTimedOut;
      },
      [request](const msg::AlterPartitionReassignmentsResponse& response) -> ImageWaiters::Predicate {
        // Started: the target replicas are replicas in this broker's image (or the cancel took them out).
        std::vector<std::tuple<std::string, std::int32_t, std::optional<std::vector<std::int32_t>>>> accepted;
        for (std::size_t t = 0; t < response.responses.size() && t < request.topics.size(); ++t)
          for (std::size_t i = 0; i < response.responses[t].partitions.size() && i < request.topics[t].partitions.size(); ++i)
            if (response.responses[t].partitions[i].error_code == 0)
              accepted.emplace_back(request.topics[t].name, request.topics[t].partitions[i].partition_index,
                                    request.topics[t].partitions[i].replicas);
        return [accepted](const cluster::MetadataImage& image) {
          return std::all_of(accepted.begin(), accepted.end(), [&](const auto& a) {
            const auto* p = image.partition(std::get<0>(a), std::get<1>(a));
            if (!p) return true;
            const auto& target = std::get<2>(a);
            if (!target) return p->adding_replicas.empty() && p->removing_replicas.empty();
            return std::all_of(target->begin(), target->end(),
                               [&](std::int32_t r) { return std::find(p->replicas.begin(), p->replicas.end(), r) != p->replicas.end(); });
          });
        };
      });
}

// ListPartitionReassignments (kafka-reassign-partitions.sh --verify, --list): DESCRIBE on the cluster,
// answered from this broker's image.
void handle_list_partition_reassignments(BrokerState& state, Call& call) {
  msg::ListPartitionReassignmentsRequest request;
  if (!decode_request(call, request)) return;
  if (!authorized(state, call, Operation::describe, ResourceType::cluster, security::kClusterResourceName)) {
    msg::ListPartitionReassignmentsResponse response;
    response.error_code = code(KafkaError::cluster_authorization_failed);
    response.error_message = "Cluster authorization failed.";
    return respond(call, response);
  }
  respond(call, cluster::list_partition_reassignments(*state.image(), request));
}

}  // namespace bulwark::broker
