// Consumer groups at the protocol edge: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups and OffsetDelete. The group
// logic lives in groups/coordinator.h; these handlers translate requests and Kafka error codes.
// JoinGroup and SyncGroup may be answered later, from whichever thread completes the rebalance.
#include <algorithm>
#include <cctype>
#include <set>

#include "base/log.h"
#include "broker/group_handlers.h"
#include "broker/group_partitions.h"
#include "broker/state.h"
#include "groups/coordinator.h"
#include "wire/generated/delete_groups.h"
#include "wire/generated/describe_groups.h"
#include "wire/generated/find_coordinator.h"
#include "wire/generated/heartbeat.h"
#include "wire/generated/join_group.h"
#include "wire/generated/leave_group.h"
#include "wire/generated/list_groups.h"
#include "wire/generated/offset_commit.h"
#include "wire/generated/offset_delete.h"
#include "wire/generated/offset_fetch.h"
#include "wire/generated/sync_group.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;

using groups::GroupError;

std::int16_t kafka_code(GroupError error) {
  switch (error) {
    case GroupError::none: return 0;
    case GroupError::offset_metadata_too_large: return 12;
    case GroupError::coordinator_load_in_progress: return 14;
    case GroupError::coordinator_not_available: return 15;
    case GroupError::not_coordinator: return 16;
    case GroupError::illegal_generation: return 22;
    case GroupError::inconsistent_group_protocol: return 23;
    case GroupError::invalid_group_id: return 24;
    case GroupError::unknown_member_id: return 25;
    case GroupError::invalid_session_timeout: return 26;
    case GroupError::rebalance_in_progress: return 27;
    case GroupError::non_empty_group: return 68;
    case GroupError::group_id_not_found: return 69;
    case GroupError::member_id_required: return 79;
    case GroupError::group_max_size_reached: return 81;
    case GroupError::fenced_instance_id: return 82;
    case GroupError::group_subscribed_to_topic: return 86;
    case GroupError::invalid_request: return code(KafkaError::invalid_request);
    case GroupError::unknown_topic_or_partition: return code(KafkaError::unknown_topic_or_partition);
    case GroupError::group_authorization_failed: return code(KafkaError::group_authorization_failed);
    case GroupError::topic_authorization_failed: return code(KafkaError::topic_authorization_failed);
    case GroupError::unstable_offset_commit: return 88;
    case GroupError::fenced_member_epoch: return 110;
    case GroupError::unreleased_instance_id: return 111;
    case GroupError::unsupported_assignor: return 112;
    case GroupError::stale_member_epoch: return 113;
    case GroupError::unsupported_version: return code(KafkaError::unsupported_version);
  }
  return code(KafkaError::unknown_server_error);
}

namespace {

constexpr std::int16_t kCoordinatorNotAvailable = 15;

std::string client_host(const Call& call) { return "/" + call.ctx.peer.remote_address; }

bool partition_exists(const BrokerState& state, const std::string& topic, std::int32_t partition) {
  auto info = state.topics->find(topic);
  return info && partition >= 0 && partition < info->partitions;
}

}  // namespace

Status open_group_coordinator(BrokerState& state) {
  groups::GroupSettings settings;
  const auto& cfg = state.config;
  if (cfg.group_min_session_timeout_ms > 0) settings.min_session_timeout_ms = cfg.group_min_session_timeout_ms;
  if (cfg.group_max_session_timeout_ms > 0) settings.max_session_timeout_ms = cfg.group_max_session_timeout_ms;
  settings.initial_rebalance_delay_ms = std::max(0, cfg.group_initial_rebalance_delay_ms);
  if (cfg.offsets_retention_minutes > 0) settings.offsets_retention_ms = std::int64_t{cfg.offsets_retention_minutes} * 60000;
  // A short retention (tests) is checked often enough to matter.
  settings.consumer.session_timeout_ms = cfg.consumer_group_session_timeout_ms;
  settings.consumer.heartbeat_interval_ms = cfg.consumer_group_heartbeat_interval_ms;
  settings.consumer.max_size = cfg.consumer_group_max_size;
  settings.offsets_retention_check_interval_ms = std::min<std::int64_t>(600000, std::max<std::int64_t>(1000, settings.offsets_retention_ms / 4));
  state.group_coordinators = std::make_unique<GroupCoordinators>(state, settings);
  state.group_coordinators->start();
  // Markers appended to __consumer_offsets complete the transactional offsets waiting there.
  state.on_offsets_transaction_marker = [&state](std::int32_t offsets_partition, std::int64_t producer_id,
                                                 std::int16_t producer_epoch, bool committed) {
    if (state.group_coordinators)
      state.group_coordinators->on_transaction_marker(offsets_partition, producer_id, producer_epoch, committed);
  };
  return Status::success();
}

GroupCoordinators::Lookup coordinator_for(const BrokerState& state, const std::string& group_id) {
  if (!state.group_coordinators) return {nullptr, GroupError::coordinator_not_available, nullptr, nullptr};
  return state.group_coordinators->for_group(group_id);
}

namespace {

// Where clients of `listener` find the coordinator of `group_id`: the leader of its __consumer_offsets
// partition. nullopt (COORDINATOR_NOT_AVAILABLE, clients retry) while the topic is being created or
// the partition has no leader.
std::optional<cluster::Endpoint> coordinator_endpoint(BrokerState& state, const std::string& group_id,
                                                     const std::string& listener, std::int32_t& node_id) {
  auto index = state.group_coordinators->partition_for(group_id);
  if (!index) {
    state.group_coordinators->create_topic();
    return std::nullopt;
  }
  const auto image = state.image();
  const auto* partition = image->partition(kOffsetsTopic, *index);
  if (!partition || !partition->has_leader()) return std::nullopt;
  const auto* broker = image->broker(partition->leader);
  const auto* endpoint = broker && !broker->fenced ? broker->endpoint(listener) : nullptr;
  if (!endpoint) return std::nullopt;
  node_id = partition->leader;
  return *endpoint;
}

}  // namespace

namespace {
bool may_read_group(const BrokerState& state, Call& call, const std::string& group_id) {
  return authorized(state, call, Operation::read, ResourceType::group, group_id);
}
}  // namespace

void handle_find_coordinator(BrokerState& state, Call& call) {
  wire::msg::FindCoordinatorRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  auto answer = [&](const std::string& key, std::int8_t key_type) {
    wire::msg::FindCoordinatorResponse::Coordinator c;
    c.key = key;
    c.node_id = -1;
    c.port = -1;
    if (key_type == 0 && !authorized(state, call, Operation::describe, ResourceType::group, key)) {
      c.error_code = code(KafkaError::group_authorization_failed);
      c.error_message = "Group authorization failed.";
    } else if (key_type == 1) {
      auto t = find_transaction_coordinator(state, call, key);  // handlers_txn.cpp
      c.error_code = t.error_code;
      c.error_message = t.error_message;
      c.node_id = t.node_id;
      c.host = t.host;
      c.port = t.port;
    } else if (key_type != 0) {
      c.error_code = code(KafkaError::invalid_request);
      c.error_message = "unknown key type " + std::to_string(key_type);
    } else if (!state.group_coordinators) {
      c.error_code = kCoordinatorNotAvailable;
      c.error_message = "the group coordinator is not running";
    } else if (auto endpoint = coordinator_endpoint(state, key, call.ctx.peer.listener, c.node_id)) {
      c.host = endpoint->host;
      c.port = endpoint->port;
      c.error_message = std::nullopt;
    } else {
      c.node_id = -1;
      c.error_code = kCoordinatorNotAvailable;
      c.error_message = "The coordinator is not available.";
    }
    return c;
  };
  wire::msg::FindCoordinatorResponse response;
  if (version >= 4) {
    for (const auto& key : request.coordinator_keys) response.coordinators.push_back(answer(key, request.key_type));
  } else {
    auto c = answer(request.key, request.key_type);
    response.error_code = c.error_code;
    response.error_message = c.error_message;
    response.node_id = c.node_id;
    response.host = c.host;
    response.port = c.port;
  }
  respond(call, response);
}

void handle_join_group(BrokerState& state, Call& call) {
  wire::msg::JoinGroupRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  auto reply = [header = call.header, responder = call.responder](const groups::JoinResult& result) mutable {
    wire::msg::JoinGroupResponse response;
    response.error_code = kafka_code(result.error);
    response.generation_id = result.generation_id;
    response.member_id = result.member_id;
    response.leader = result.leader_id;
    if (result.error == GroupError::none) response.protocol_type = result.protocol_type;
    response.protocol_name = result.protocol_name;
    if (header.api_version < 7 && !response.protocol_name) response.protocol_name = std::string();
    response.skip_assignment = result.skip_assignment;
    for (const auto& m : result.members) response.members.push_back({m.member_id, m.group_instance_id, m.metadata, {}});
    responder.respond(encode_response_frame(header, [&](ByteWriter& w) { response.encode(w, header.api_version); }));
  };
  const bool allowed = may_read_group(state, call, request.group_id);
  auto lookup = coordinator_for(state, request.group_id);
  if (!allowed || !lookup.coordinator) {
    groups::JoinResult r;
    r.error = allowed ? lookup.error : GroupError::group_authorization_failed;
    r.member_id = request.member_id;
    reply(r);
    return;
  }
  groups::JoinRequest join;
  join.group_id = std::move(request.group_id);
  join.member_id = std::move(request.member_id);
  join.group_instance_id = std::move(request.group_instance_id);
  join.protocol_type = std::move(request.protocol_type);
  for (auto& p : request.protocols) join.protocols.push_back({std::move(p.name), std::move(p.metadata)});
  join.session_timeout_ms = request.session_timeout_ms;
  join.rebalance_timeout_ms = version >= 1 ? request.rebalance_timeout_ms : request.session_timeout_ms;
  join.client_id = call.header.client_id.value_or("");
  join.client_host = client_host(call);
  join.require_known_member_id = version >= 4;
  lookup.coordinator->join(std::move(join), std::move(reply));
}

void handle_sync_group(BrokerState& state, Call& call) {
  wire::msg::SyncGroupRequest request;
  if (!decode_request(call, request)) return;
  auto reply = [header = call.header, responder = call.responder](const groups::SyncResult& result) mutable {
    wire::msg::SyncGroupResponse response;
    response.error_code = kafka_code(result.error);
    response.protocol_type = result.protocol_type;
    response.protocol_name = result.protocol_name;
    response.assignment = result.assignment;
    responder.respond(encode_response_frame(header, [&](ByteWriter& w) { response.encode(w, header.api_version); }));
  };
  const bool allowed = may_read_group(state, call, request.group_id);
  auto lookup = coordinator_for(state, request.group_id);
  if (!allowed || !lookup.coordinator) {
    groups::SyncResult r;
    r.error = allowed ? lookup.error : GroupError::group_authorization_failed;
    reply(r);
    return;
  }
  groups::SyncRequest sync;
  sync.group_id = std::move(request.group_id);
  sync.generation_id = request.generation_id;
  sync.member_id = std::move(request.member_id);
  sync.group_instance_id = std::move(request.group_instance_id);
  sync.protocol_type = std::move(request.protocol_type);
  sync.protocol_name = std::move(request.protocol_name);
  for (auto& a : request.assignments) sync.assignments.emplace_back(std::move(a.member_id), std::move(a.assignment));
  lookup.coordinator->sync(std::move(sync), std::move(reply));
}

void handle_heartbeat(BrokerState& state, Call& call) {
  wire::msg::HeartbeatRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::HeartbeatResponse response;
  auto lookup = coordinator_for(state, request.group_id);
  if (!may_read_group(state, call, request.group_id))
    response.error_code = code(KafkaError::group_authorization_failed);
  else if (!lookup.coordinator)
    response.error_code = kafka_code(lookup.error);
  else
    response.error_code = kafka_code(lookup.coordinator->heartbeat(request.group_id, request.generation_id,
                                                                   request.member_id, request.group_instance_id));
  respond(call, response);
}

void handle_leave_group(BrokerState& state, Call& call) {
  wire::msg::LeaveGroupRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  wire::msg::LeaveGroupResponse response;
  const bool allowed = may_read_group(state, call, request.group_id);
  auto lookup = coordinator_for(state, request.group_id);
  if (!allowed || !lookup.coordinator) {
    response.error_code = allowed ? kafka_code(lookup.error) : code(KafkaError::group_authorization_failed);
    respond(call, response);
    return;
  }
  std::vector<groups::MemberIdentity> members;
  if (version < 3) {
    members.push_back({request.member_id, std::nullopt});
  } else {
    for (const auto& m : request.members) members.push_back({m.member_id, m.group_instance_id});
  }
  auto result = lookup.coordinator->leave(request.group_id, members);
  response.error_code = kafka_code(result.error);
  if (version < 3) {
    if (result.error == GroupError::none && !result.members.empty())
      response.error_code = kafka_code(result.members.front().second);
  } else {
    for (const auto& [identity, error] : result.members)
      response.members.push_back({identity.member_id, identity.group_instance_id, kafka_code(error), {}});
  }
  respond(call, response);
}

void handle_offset_commit(BrokerState& state, Call& call) {
  wire::msg::OffsetCommitRequest request;
  if (!decode_request(call, request)) return;
  groups::CommitRequest commit;
  commit.group_id = request.group_id;
  commit.generation_id = request.generation_id_or_member_epoch;
  commit.member_id = request.member_id;
  commit.group_instance_id = request.group_instance_id;
  commit.member_epoch_version = call.header.api_version >= 9;
  // Where each partition's answer comes from: an index into commit.offsets, or an error of its own.
  struct Slot {
    std::int32_t partition;
    std::optional<std::size_t> index;
    std::int16_t error;
  };
  std::vector<std::vector<Slot>> slots;
  const bool group_allowed = may_read_group(state, call, request.group_id);
  for (const auto& topic : request.topics) {
    auto& topic_slots = slots.emplace_back();
    const bool topic_allowed =
        group_allowed && authorized(state, call, Operation::read, ResourceType::topic, topic.name);
    for (const auto& p : topic.partitions) {
      if (!group_allowed || !topic_allowed) {
        topic_slots.push_back({p.partition_index, std::nullopt,
                               code(group_allowed ? KafkaError::topic_authorization_failed
                                                  : KafkaError::group_authorization_failed)});
        continue;
      }
      if (!partition_exists(state, topic.name, p.partition_index)) {
        topic_slots.push_back({p.partition_index, std::nullopt, code(KafkaError::unknown_topic_or_partition)});
        continue;
      }
      groups::PartitionOffset o;
      o.topic = topic.name;
      o.partition = p.partition_index;
      o.offset = p.committed_offset;
      o.leader_epoch = p.committed_leader_epoch;
      o.metadata = p.committed_metadata.value_or("");
      topic_slots.push_back({p.partition_index, commit.offsets.size(), 0});
      commit.offsets.push_back(std::move(o));
    }
  }
  auto lookup = coordinator_for(state, request.group_id);
  std::vector<GroupError> errors(commit.offsets.size(), lookup.error);
  if (lookup.coordinator && !commit.offsets.empty()) errors = lookup.coordinator->commit(commit);
  auto answer = [topics = std::move(request.topics), slots = std::move(slots), reply = DeferredReply{call.header, call.responder}](
                    const std::vector<GroupError>& errors) mutable {
    wire::msg::OffsetCommitResponse response;
    for (std::size_t t = 0; t < topics.size(); ++t) {
      wire::msg::OffsetCommitResponse::OffsetCommitResponseTopic topic_out;
      topic_out.name = topics[t].name;
      for (const auto& slot : slots[t])
        topic_out.partitions.push_back({slot.partition, slot.index ? kafka_code(errors[*slot.index]) : slot.error, {}});
      response.topics.push_back(std::move(topic_out));
    }
    reply.send(response);
  };
  const bool stored = std::find(errors.begin(), errors.end(), GroupError::none) != errors.end();
  if (!stored || !lookup.store) return answer(errors);
  // Answered once the ISR has the offsets: a commit acknowledged is one the next coordinator loads.
  when_replicated(state, call.ctx.loop, lookup.partition, lookup.store->appended_end(),
                  std::chrono::milliseconds(std::max(1, state.config.offsets_commit_timeout_ms)),
                  [answer = std::move(answer), errors](bool replicated) mutable {
                    if (!replicated)
                      for (auto& e : errors)
                        if (e == GroupError::none) e = GroupError::coordinator_not_available;
                    answer(errors);
                  });
}

namespace {

template <class TopicOut, class PartitionOut>
std::vector<TopicOut> group_by_topic(const std::vector<groups::PartitionOffset>& offsets) {
  std::vector<TopicOut> out;
  std::map<std::string, std::size_t> index;  // topic -> position in out, keeping first-seen order
  for (const auto& o : offsets) {
    auto [it, inserted] = index.emplace(o.topic, out.size());
    if (inserted) {
      out.emplace_back();
      out.back().name = o.topic;
    }
    auto& topic = out[it->second];
    PartitionOut p;
    p.partition_index = o.partition;
    p.committed_offset = o.offset;
    p.committed_leader_epoch = o.leader_epoch;
    p.metadata = o.metadata;
    p.error_code = kafka_code(o.error);
    topic.partitions.push_back(std::move(p));
  }
  return out;
}

}  // namespace

void handle_offset_fetch(BrokerState& state, Call& call) {
  wire::msg::OffsetFetchRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  wire::msg::OffsetFetchResponse response;
  using Resp = wire::msg::OffsetFetchResponse;
  auto fetch = [&](const std::string& group_id, const std::optional<std::vector<groups::TopicPartitionKey>>& wanted,
                   std::int16_t& error, const groups::FetchingMember& member = {}) {
    groups::FetchOffsetsResult result;
    if (!authorized(state, call, Operation::describe, ResourceType::group, group_id)) {
      error = code(KafkaError::group_authorization_failed);
      return result;
    }
    auto lookup = coordinator_for(state, group_id);
    if (!lookup.coordinator) {
      error = kafka_code(lookup.error);
      return result;
    }
    // require_stable (v7+): partitions an open transaction holds answer UNSTABLE_OFFSET_COMMIT (per partition,
    // in every version, as Kafka), so the consumer waits for the transaction instead of rereading.
    result = lookup.coordinator->fetch_offsets(group_id, wanted, version >= 7 && request.require_stable, member);
    error = kafka_code(result.error);
    // Offsets of topics the principal may not describe: an error when asked for by name, left out
    // when the client asked for all of them (Kafka's rule).
    std::erase_if(result.offsets, [&](groups::PartitionOffset& o) {
      if (authorized(state, call, Operation::describe, ResourceType::topic, o.topic, wanted.has_value())) return false;
      if (!wanted) return true;
      o.error = GroupError::topic_authorization_failed;
      o.offset = -1;
      o.metadata.clear();
      return false;
    });
    return result;
  };
  if (version < 8) {
    std::optional<std::vector<groups::TopicPartitionKey>> wanted;
    if (request.topics) {
      wanted.emplace();
      for (const auto& t : *request.topics)
        for (auto p : t.partition_indexes) wanted->push_back({t.name, p});
    }
    std::int16_t error = 0;
    auto result = fetch(request.group_id, wanted, error);
    response.error_code = error;
    response.topics = group_by_topic<Resp::OffsetFetchResponseTopic, Resp::OffsetFetchResponsePartition>(result.offsets);
    if (version < 2 && error != 0)  // no top-level error before v2: every partition carries it
      for (auto& t : response.topics)
        for (auto& p : t.partitions) p.error_code = error;
  } else {
    for (const auto& group : request.groups) {
      std::optional<std::vector<groups::TopicPartitionKey>> wanted;
      if (group.topics) {
        wanted.emplace();
        for (const auto& t : *group.topics)
          for (auto p : t.partition_indexes) wanted->push_back({t.name, p});
      }
      Resp::OffsetFetchResponseGroup out;
      out.group_id = group.group_id;
      // v9 (KIP-848): a consumer group member names itself and its epoch, which must be current.
      groups::FetchingMember member{group.member_id, group.member_epoch};
      auto result = fetch(group.group_id, wanted, out.error_code, member);
      out.topics = group_by_topic<Resp::OffsetFetchResponseTopics, Resp::OffsetFetchResponsePartitions>(result.offsets);
      response.groups.push_back(std::move(out));
    }
  }
  respond(call, response);
}

void handle_list_groups(BrokerState& state, Call& call) {
  wire::msg::ListGroupsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::ListGroupsResponse response;
  if (!state.group_coordinators) {
    response.error_code = kCoordinatorNotAvailable;
    respond(call, response);
    return;
  }
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  std::vector<std::string> filter;
  for (const auto& s : request.states_filter) filter.push_back(lower(s));
  // DESCRIBE on the cluster lists every group; otherwise only the groups the principal may describe.
  const bool describe_all = authorized_cluster(state, call, Operation::describe);
  std::vector<groups::GroupListing> listed;
  for (const auto& coordinator : state.group_coordinators->all())
    for (auto& g : coordinator->list_groups()) listed.push_back(std::move(g));
  for (const auto& g : listed) {
    if (!describe_all && !authorized(state, call, Operation::describe, ResourceType::group, g.group_id, false)) continue;
    const std::string state_name = g.state_name();
    if (!filter.empty() && std::find(filter.begin(), filter.end(), lower(state_name)) == filter.end()) continue;
    response.groups.push_back({g.group_id, g.protocol_type, state_name, {}});
  }
  respond(call, response);
}

void handle_describe_groups(BrokerState& state, Call& call) {
  wire::msg::DescribeGroupsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeGroupsResponse response;
  for (const auto& group_id : request.groups) {
    wire::msg::DescribeGroupsResponse::DescribedGroup out;
    out.group_id = group_id;
    auto lookup = coordinator_for(state, group_id);
    if (!authorized(state, call, Operation::describe, ResourceType::group, group_id)) {
      out.error_code = code(KafkaError::group_authorization_failed);
      out.group_state = "Dead";
    } else if (!lookup.coordinator) {
      out.error_code = kafka_code(lookup.error);
      out.group_state = "Dead";
    } else {
      auto d = lookup.coordinator->describe(group_id);
      out.group_state = groups::to_string(d.state);
      out.protocol_type = d.protocol_type;
      out.protocol_data = d.protocol_name;
      for (auto& m : d.members)
        out.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host, m.metadata, m.assignment, {}});
      if (request.include_authorized_operations)
        out.authorized_operations = authorized_operations(state, call, ResourceType::group, group_id);
    }
    response.groups.push_back(std::move(out));
  }
  respond(call, response);
}

void handle_delete_groups(BrokerState& state, Call& call) {
  wire::msg::DeleteGroupsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DeleteGroupsResponse response;
  for (const auto& group_id : request.groups_names) {
    auto lookup = coordinator_for(state, group_id);
    auto error = !authorized(state, call, Operation::remove, ResourceType::group, group_id)
                     ? code(KafkaError::group_authorization_failed)
                 : !lookup.coordinator ? kafka_code(lookup.error)
                                       : kafka_code(lookup.coordinator->delete_group(group_id));
    response.results.push_back({group_id, error, {}});
  }
  respond(call, response);
}

void handle_offset_delete(BrokerState& state, Call& call) {
  wire::msg::OffsetDeleteRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::OffsetDeleteResponse response;
  const bool allowed = authorized(state, call, Operation::remove, ResourceType::group, request.group_id);
  auto lookup = coordinator_for(state, request.group_id);
  if (!allowed || !lookup.coordinator) {
    response.error_code = allowed ? kafka_code(lookup.error) : code(KafkaError::group_authorization_failed);
    respond(call, response);
    return;
  }
  std::set<std::string> denied_topics;  // no READ on the topic: TOPIC_AUTHORIZATION_FAILED, nothing deleted
  std::vector<groups::TopicPartitionKey> partitions;
  for (const auto& t : request.topics) {
    if (!authorized(state, call, Operation::read, ResourceType::topic, t.name)) {
      denied_topics.insert(t.name);
      continue;
    }
    for (const auto& p : t.partitions) partitions.push_back({t.name, p.partition_index});
  }
  std::vector<GroupError> errors;
  auto group_error = lookup.coordinator->delete_offsets(request.group_id, partitions, errors);
  response.error_code = kafka_code(group_error);
  if (group_error == GroupError::none) {
    std::size_t i = 0;
    for (const auto& t : request.topics) {
      wire::msg::OffsetDeleteResponse::OffsetDeleteResponseTopic topic_out;
      topic_out.name = t.name;
      const bool denied = denied_topics.count(t.name) > 0;
      for (const auto& p : t.partitions) {
        auto error = denied ? code(KafkaError::topic_authorization_failed)
                     : partition_exists(state, t.name, p.partition_index) ? kafka_code(errors[i])
                                                                          : code(KafkaError::unknown_topic_or_partition);
        topic_out.partitions.push_back({p.partition_index, error});
        if (!denied) ++i;
      }
      response.topics.push_back(std::move(topic_out));
    }
  }
  respond(call, response);
}

}  // namespace bulwark::broker
