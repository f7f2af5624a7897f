// TxnOffsetCommit (API 28, v0-3): a transactional producer commits its consumer's offsets inside its
// transaction (KIP-98; v3 carries the consumer's generation, KIP-447). The offsets are written to
// __consumer_offsets as transactional records of the producer and stay pending in the group until the
// transaction's COMMIT or ABORT marker reaches that partition (GroupCoordinators::on_transaction_marker).
// docs/groups.md, "Transactional offsets".
#include <algorithm>

#include "base/log.h"
#include "broker/group_handlers.h"
#include "wire/generated/txn_offset_commit.h"

namespace bulwark::broker {

using groups::GroupError;
using security::Operation;
using security::ResourceType;

namespace {

constexpr std::int16_t kInvalidTxnState = 48;  // INVALID_TXN_STATE

using Request = wire::msg::TxnOffsetCommitRequest;
using Response = wire::msg::TxnOffsetCommitResponse;

// Where each partition's answer comes from: an index into the coordinator's offsets, or its own error.
struct Slot {
  std::int32_t partition;
  std::optional<std::size_t> index;
  std::int16_t error;
};

// Kafka's order of checks: WRITE on the transactional id, READ on the group, then READ on each topic
// and the partition's existence. Partitions that pass go to `offsets`.
std::vector<std::vector<Slot>> sort_partitions(BrokerState& state, Call& call, const Request& request,
                                               std::vector<groups::PartitionOffset>& offsets) {
  std::int16_t request_error = 0;
  if (!authorized(state, call, Operation::write, ResourceType::transactional_id, request.transactional_id))
    request_error = code(KafkaError::transactional_id_authorization_failed);
  else if (!authorized(state, call, Operation::read, ResourceType::group, request.group_id))
    request_error = code(KafkaError::group_authorization_failed);
  std::vector<std::vector<Slot>> slots;
  for (const auto& topic : request.topics) {
    auto& topic_slots = slots.emplace_back();
    std::int16_t topic_error = request_error;
    if (topic_error == 0 && !authorized(state, call, Operation::read, ResourceType::topic, topic.name))
      topic_error = code(KafkaError::topic_authorization_failed);
    const auto info = topic_error == 0 ? state.topics->find(topic.name) : std::nullopt;
    for (const auto& p : topic.partitions) {
      std::int16_t error = topic_error;
      if (error == 0 && (!info || p.partition_index < 0 || p.partition_index >= info->partitions))
        error = code(KafkaError::unknown_topic_or_partition);
      if (error != 0) {
        topic_slots.push_back({p.partition_index, std::nullopt, error});
        continue;
      }
      groups::PartitionOffset o;
      o.topic = topic.name;
      o.partition = p.partition_index;
      o.offset = p.committed_offset;
      o.leader_epoch = p.committed_leader_epoch;
      o.metadata = p.committed_metadata.value_or("");
      topic_slots.push_back({p.partition_index, offsets.size(), 0});
      offsets.push_back(std::move(o));
    }
  }
  return slots;
}

// KIP-890's defence: the offsets partition must be in the producer's open transaction (AddOffsetsToTxn
// put it there), or a late or hanging TxnOffsetCommit would write outside any transaction. Without a
// transaction coordinator nothing can be verified, so nothing is accepted.
std::int16_t verification_error(const BrokerState& state, Call& call, const Request& request,
                                std::int32_t offsets_partition) {
  if (!state.verify_transactional_partition) {
    log::warn("TxnOffsetCommit from {} (transactional id {}, group {}) refused with INVALID_TXN_STATE: this broker "
              "has no transaction coordinator to verify the transaction",
              call.ctx.peer.remote_address, request.transactional_id, request.group_id);
    return kInvalidTxnState;
  }
  return code(state.verify_transactional_partition(request.transactional_id, request.producer_id,
                                                   request.producer_epoch, kOffsetsTopic, offsets_partition));
}

}  // namespace

void handle_txn_offset_commit(BrokerState& state, Call& call) {
  Request request;
  if (!decode_request(call, request)) return;
  groups::TxnCommitRequest commit;
  auto slots = sort_partitions(state, call, request, commit.offsets);
  commit.group_id = request.group_id;
  commit.producer_id = request.producer_id;
  commit.producer_epoch = request.producer_epoch;
  commit.generation_id = request.generation_id;
  commit.member_id = request.member_id;
  commit.group_instance_id = request.group_instance_id;

  auto answer = [topics = std::move(request.topics), slots = std::move(slots),
                 reply = DeferredReply{call.header, call.responder}](const std::vector<std::int16_t>& errors) mutable {
    Response response;
    for (std::size_t t = 0; t < topics.size(); ++t) {
      Response::TxnOffsetCommitResponseTopic topic_out;
      topic_out.name = topics[t].name;
      for (const auto& slot : slots[t])
        topic_out.partitions.push_back({slot.partition, slot.index ? errors[*slot.index] : slot.error, {}});
      response.topics.push_back(std::move(topic_out));
    }
    reply.send(response);
  };
  auto codes = [](const std::vector<GroupError>& errors) {
    std::vector<std::int16_t> out;
    for (auto e : errors) out.push_back(kafka_code(e));
    return out;
  };
  if (commit.offsets.empty()) return answer({});

  auto lookup = coordinator_for(state, request.group_id);
  if (!lookup.coordinator) return answer(codes(std::vector<GroupError>(commit.offsets.size(), lookup.error)));
  if (auto error = verification_error(state, call, request, lookup.partition->topic_partition().partition); error != 0)
    return answer(std::vector<std::int16_t>(commit.offsets.size(), error));

  auto errors = lookup.coordinator->txn_commit(commit);
  const bool stored = std::find(errors.begin(), errors.end(), GroupError::none) != errors.end();
  if (!stored || !lookup.store) return answer(codes(errors));
  // As OffsetCommit: answered once the ISR has the records, so the next coordinator loads them.
  when_replicated(state, call.ctx.loop, lookup.partition, lookup.store->appended_end(),
                  std::chrono::milliseconds(std::max(1, state.config.offsets_commit_timeout_ms)),
                  [answer = std::move(answer), errors, codes](bool replicated) mutable {
                    if (!replicated)
                      for (auto& e : errors)
                        if (e == GroupError::none) e = GroupError::coordinator_not_available;
                    answer(codes(errors));
                  });
}

}  // namespace bulwark::broker
