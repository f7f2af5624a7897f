// The transaction coordinator at the protocol edge (KIP-98, KIP-360, KIP-890 part 1): FindCoordinator
// key_type 1, InitProducerId with a transactional id, AddPartitionsToTxn v0-4, AddOffsetsToTxn,
// EndTxn, DescribeTransactions and ListTransactions, plus the KIP-890 verification hook the produce
// path calls. The decisions are txn/metadata.h's, the log and markers broker/txn_partitions.h's; these
// handlers authorize, translate and map errors to Kafka's codes.
#include <algorithm>
#include <future>
#include <set>

#include "base/log.h"
#include "broker/group_partitions.h"
#include "broker/state.h"
#include "broker/txn_partitions.h"
#include "wire/generated/add_offsets_to_txn.h"
#include "wire/generated/add_partitions_to_txn.h"
#include "wire/generated/describe_transactions.h"
#include "wire/generated/end_txn.h"
#include "wire/generated/init_producer_id.h"
#include "wire/generated/list_transactions.h"

namespace bulwark::broker {

using security::Operation;
using security::ResourceType;
using txn::TxnError;

namespace {

constexpr std::int16_t kCoordinatorLoadInProgress = 14;
constexpr std::int16_t kCoordinatorNotAvailable = 15;
constexpr std::int16_t kNotCoordinator = 16;
constexpr std::int16_t kInvalidTxnState = 48;
constexpr std::int16_t kConcurrentTransactions = 51;
constexpr std::int16_t kProducerFenced = 90;
constexpr std::int16_t kTransactionalIdNotFound = 105;
constexpr std::int16_t kTransactionAbortable = 120;

std::int16_t kafka_code(TxnError error) {
  switch (error) {
    case TxnError::none: return 0;
    case TxnError::concurrent_transactions: return kConcurrentTransactions;
    case TxnError::producer_fenced: return kProducerFenced;
    case TxnError::invalid_producer_epoch: return code(KafkaError::invalid_producer_epoch);
    case TxnError::invalid_producer_id_mapping: return code(KafkaError::invalid_producer_id_mapping);
    case TxnError::invalid_txn_state: return kInvalidTxnState;
    case TxnError::invalid_transaction_timeout: return code(KafkaError::invalid_transaction_timeout);
    case TxnError::invalid_request: return code(KafkaError::invalid_request);
    case TxnError::transaction_abortable: return kTransactionAbortable;
    case TxnError::not_coordinator: return kNotCoordinator;
    case TxnError::coordinator_load_in_progress: return kCoordinatorLoadInProgress;
    case TxnError::coordinator_not_available: return kCoordinatorNotAvailable;
    case TxnError::transactional_id_not_found: return kTransactionalIdNotFound;
    case TxnError::unknown_server_error: break;
  }
  return code(KafkaError::unknown_server_error);
}

// KIP-588: clients before these versions know PRODUCER_FENCED only as INVALID_PRODUCER_EPOCH.
std::int16_t for_version(std::int16_t error, std::int16_t version, std::int16_t first_version_knowing_fenced) {
  if (error == kProducerFenced && version < first_version_knowing_fenced) return code(KafkaError::invalid_producer_epoch);
  return error;
}

bool may_write_txn(const BrokerState& state, Call& call, const std::string& id) {
  return authorized(state, call, Operation::write, ResourceType::transactional_id, id);
}

TxnCoordinators* coordinator(const BrokerState& state) { return state.txn_coordinators.get(); }

}  // namespace

CoordinatorAnswer find_transaction_coordinator(BrokerState& state, Call& call, const std::string& transactional_id) {
  CoordinatorAnswer out;
  if (!authorized(state, call, Operation::describe, ResourceType::transactional_id, transactional_id)) {
    out.error_code = code(KafkaError::transactional_id_authorization_failed);
    out.error_message = "Transactional Id authorization failed.";
    return out;
  }
  out.error_code = kCoordinatorNotAvailable;
  out.error_message = "The coordinator is not available.";
  auto* coordinators = coordinator(state);
  if (!coordinators) return out;
  if (transactional_id.empty()) {
    out.error_code = code(KafkaError::invalid_request);
    out.error_message = "an empty transactional id";
    return out;
  }
  auto index = coordinators->partition_for(transactional_id);
  if (!index) {
    coordinators->create_topic();
    return out;
  }
  const auto image = state.image();
  const auto* partition = image->partition(kTransactionStateTopic, *index);
  if (!partition || !partition->has_leader()) return out;
  const auto* broker = image->broker(partition->leader);
  const auto* endpoint = broker && !broker->fenced ? broker->endpoint(call.ctx.peer.listener) : nullptr;
  if (!endpoint) return out;
  out.error_code = 0;
  out.error_message = std::nullopt;
  out.node_id = partition->leader;
  out.host = endpoint->host;
  out.port = endpoint->port;
  return out;
}

void handle_transactional_init_producer_id(BrokerState& state, Call& call, const std::string& transactional_id,
                                           std::int32_t timeout_ms, std::int64_t producer_id,
                                           std::int16_t producer_epoch) {
  const auto version = call.header.api_version;
  wire::msg::InitProducerIdResponse response;
  response.producer_id = -1;
  response.producer_epoch = -1;
  auto* coordinators = coordinator(state);
  std::optional<txn::ProducerIdAndEpoch> expected;
  if (producer_id != -1 || producer_epoch != -1) expected = txn::ProducerIdAndEpoch{producer_id, producer_epoch};
  if (!may_write_txn(state, call, transactional_id)) {
    response.error_code = code(KafkaError::transactional_id_authorization_failed);
  } else if (expected && (producer_id < 0 || producer_epoch < 0)) {
    response.error_code = code(KafkaError::invalid_request);  // both or neither (KIP-360)
  } else if (!coordinators) {
    response.error_code = kCoordinatorNotAvailable;
  } else {
    auto reply = std::make_shared<DeferredReply>(DeferredReply{call.header, call.responder});
    coordinators->init_producer_id(
        transactional_id, timeout_ms, expected,
        [reply, version](TxnError error, std::int64_t pid, std::int16_t epoch) {
          wire::msg::InitProducerIdResponse r;
          r.error_code = for_version(kafka_code(error), version, 4);
          r.producer_id = error == TxnError::none ? pid : -1;
          r.producer_epoch = error == TxnError::none ? epoch : -1;
          reply->send(r);
        });
    return;
  }
  respond(call, response);
}

namespace {

using AddTopic = wire::msg::AddPartitionsToTxnRequest::AddPartitionsToTxnTopic;
using AddTopicResult = wire::msg::AddPartitionsToTxnResponse::AddPartitionsToTxnTopicResult;
using AddTxnResult = wire::msg::AddPartitionsToTxnResponse::AddPartitionsToTxnResult;

std::vector<AddTopicResult> results_for(const std::vector<AddTopic>& topics,
                                        const std::function<std::int16_t(const std::string&, std::int32_t)>& error_of) {
  std::vector<AddTopicResult> out;
  for (const auto& t : topics) {
    AddTopicResult r;
    r.name = t.name;
    for (auto p : t.partitions) r.results_by_partition.push_back({p, error_of(t.name, p), {}});
    out.push_back(std::move(r));
  }
  return out;
}

std::set<txn::TopicPartition> partitions_of(const std::vector<AddTopic>& topics) {
  std::set<txn::TopicPartition> out;
  for (const auto& t : topics)
    for (auto p : t.partitions) out.insert({t.name, p});
  return out;
}

// Kafka's per-partition checks before the coordinator is asked: WRITE on the topic, a known partition;
// when one fails the others are OPERATION_NOT_ATTEMPTED.
std::optional<std::vector<AddTopicResult>> refused_partitions(const BrokerState& state, Call& call,
                                                              const std::vector<AddTopic>& topics) {
  std::map<txn::TopicPartition, std::int16_t> errors;
  bool any = false;
  for (const auto& t : topics) {
    const bool allowed = authorized(state, call, Operation::write, ResourceType::topic, t.name);
    auto info = state.topics->find(t.name);
    for (auto p : t.partitions) {
      std::int16_t e = 0;
      if (!allowed) e = code(KafkaError::topic_authorization_failed);
      else if (!info || p < 0 || p >= info->partitions) e = code(KafkaError::unknown_topic_or_partition);
      errors[{t.name, p}] = e;
      any = any || e != 0;
    }
  }
  if (!any) return std::nullopt;
  return results_for(topics, [&](const std::string& topic, std::int32_t p) {
    auto e = errors[{topic, p}];
    return e != 0 ? e : code(KafkaError::operation_not_attempted);
  });
}

// Answers one transaction of AddPartitionsToTxn (every version) through `done`.
void add_or_verify(BrokerState& state, const std::string& id, std::int64_t pid, std::int16_t epoch, bool verify_only,
                   const std::vector<AddTopic>& topics, std::int16_t version,
                   std::function<void(std::vector<AddTopicResult>)> done) {
  auto* coordinators = coordinator(state);
  if (!coordinators) {
    return done(results_for(topics, [](const std::string&, std::int32_t) { return kCoordinatorNotAvailable; }));
  }
  auto partitions = partitions_of(topics);
  if (verify_only) {
    auto outcome = coordinators->verify(id, pid, epoch, partitions);
    return done(results_for(topics, [&](const std::string& topic, std::int32_t p) {
      auto it = outcome.partitions.find({topic, p});
      return kafka_code(it == outcome.partitions.end() ? outcome.error : it->second);
    }));
  }
  coordinators->add_partitions(id, pid, epoch, std::move(partitions), [topics, version, done](TxnError error) {
    const auto e = for_version(kafka_code(error), version, 2);
    done(results_for(topics, [e](const std::string&, std::int32_t) { return e; }));
  });
}

}  // namespace

void handle_add_partitions_to_txn(BrokerState& state, Call& call) {
  wire::msg::AddPartitionsToTxnRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  auto reply = std::make_shared<DeferredReply>(DeferredReply{call.header, call.responder});
  if (version <= 3) {
    const auto& id = request.v3_and_below_transactional_id;
    auto send = [reply](std::vector<AddTopicResult> results) {
      wire::msg::AddPartitionsToTxnResponse r;
      r.results_by_topic_v3_and_below = std::move(results);
      reply->send(r);
    };
    if (!may_write_txn(state, call, id)) {
      return send(results_for(request.v3_and_below_topics, [](const std::string&, std::int32_t) {
        return code(KafkaError::transactional_id_authorization_failed);
      }));
    }
    if (auto refused = refused_partitions(state, call, request.v3_and_below_topics)) return send(std::move(*refused));
    return add_or_verify(state, id, request.v3_and_below_producer_id, request.v3_and_below_producer_epoch, false,
                         request.v3_and_below_topics, version, send);
  }
  // v4 is the brokers' batched form (KIP-890): a broker's own principal, CLUSTER_ACTION.
  if (!authorized_cluster(state, call, Operation::cluster_action)) {
    wire::msg::AddPartitionsToTxnResponse r;
    r.error_code = code(KafkaError::cluster_authorization_failed);
    return reply->send(r);
  }
  struct Gather {
    std::mutex mu;
    wire::msg::AddPartitionsToTxnResponse response;
    std::size_t left = 0;
  };
  auto gather = std::make_shared<Gather>();
  gather->response.results_by_transaction.resize(request.transactions.size());
  gather->left = request.transactions.size();
  if (gather->left == 0) return reply->send(gather->response);
  for (std::size_t i = 0; i < request.transactions.size(); ++i) {
    const auto& t = request.transactions[i];
    gather->response.results_by_transaction[i].transactional_id = t.transactional_id;
    auto done = [gather, reply, i](std::vector<AddTopicResult> results) {
      std::lock_guard lock(gather->mu);
      gather->response.results_by_transaction[i].topic_results = std::move(results);
      if (--gather->left == 0) reply->send(gather->response);
    };
    if (!t.verify_only) {
      if (auto refused = refused_partitions(state, call, t.topics)) {
        done(std::move(*refused));
        continue;
      }
    }
    add_or_verify(state, t.transactional_id, t.producer_id, t.producer_epoch, t.verify_only, t.topics, version, done);
  }
}

void handle_add_offsets_to_txn(BrokerState& state, Call& call) {
  wire::msg::AddOffsetsToTxnRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  wire::msg::AddOffsetsToTxnResponse response;
  auto* coordinators = coordinator(state);
  const auto* offsets = state.image()->topic(kOffsetsTopic);
  if (!may_write_txn(state, call, request.transactional_id)) {
    response.error_code = code(KafkaError::transactional_id_authorization_failed);
  } else if (!authorized(state, call, Operation::read, ResourceType::group, request.group_id)) {
    response.error_code = code(KafkaError::group_authorization_failed);
  } else if (!coordinators || !offsets || offsets->partitions.empty()) {
    // The offsets topic comes with the first FindCoordinator for a group; the client retries.
    if (state.group_coordinators && (!offsets || offsets->partitions.empty())) state.group_coordinators->create_topic();
    response.error_code = kCoordinatorNotAvailable;
  } else {
    const auto index = offsets_partition_for(request.group_id, static_cast<std::int32_t>(offsets->partitions.size()));
    auto reply = std::make_shared<DeferredReply>(DeferredReply{call.header, call.responder});
    coordinators->add_partitions(request.transactional_id, request.producer_id, request.producer_epoch,
                                 {txn::TopicPartition{kOffsetsTopic, index}}, [reply, version](TxnError error) {
                                   wire::msg::AddOffsetsToTxnResponse r;
                                   r.error_code = for_version(kafka_code(error), version, 2);
                                   reply->send(r);
                                 });
    return;
  }
  respond(call, response);
}

void handle_end_txn(BrokerState& state, Call& call) {
  wire::msg::EndTxnRequest request;
  if (!decode_request(call, request)) return;
  const auto version = call.header.api_version;
  wire::msg::EndTxnResponse response;
  auto* coordinators = coordinator(state);
  if (!may_write_txn(state, call, request.transactional_id)) {
    response.error_code = code(KafkaError::transactional_id_authorization_failed);
  } else if (!coordinators) {
    response.error_code = kCoordinatorNotAvailable;
  } else {
    auto reply = std::make_shared<DeferredReply>(DeferredReply{call.header, call.responder});
    coordinators->end_txn(request.transactional_id, request.producer_id, request.producer_epoch, request.committed,
                          [reply, version](TxnError error) {
                            wire::msg::EndTxnResponse r;
                            r.error_code = for_version(kafka_code(error), version, 2);
                            reply->send(r);
                          });
    return;
  }
  respond(call, response);
}

void handle_describe_transactions(BrokerState& state, Call& call) {
  wire::msg::DescribeTransactionsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeTransactionsResponse response;
  auto* coordinators = coordinator(state);
  for (const auto& id : request.transactional_ids) {
    wire::msg::DescribeTransactionsResponse::TransactionState s;
    s.transactional_id = id;
    s.producer_id = -1;
    s.producer_epoch = -1;
    s.transaction_start_time_ms = -1;
    if (!authorized(state, call, Operation::describe, ResourceType::transactional_id, id)) {
      s.error_code = code(KafkaError::transactional_id_authorization_failed);
    } else if (!coordinators) {
      s.error_code = kCoordinatorNotAvailable;
    } else if (auto d = coordinators->describe(id); d.error != TxnError::none) {
      s.error_code = kafka_code(d.error);
    } else {
      const auto& m = d.metadata;
      s.transaction_state = txn::state_name(m.state);
      s.transaction_timeout_ms = m.timeout_ms;
      s.transaction_start_time_ms = m.txn_start_ms;
      s.producer_id = m.producer_id;
      s.producer_epoch = m.producer_epoch;
      for (const auto& tp : m.partitions) {
        // As Kafka: partitions of topics the caller may not describe are left out.
        if (!authorized(state, call, Operation::describe, ResourceType::topic, tp.topic, false)) continue;
        if (s.topics.empty() || s.topics.back().topic != tp.topic) s.topics.push_back({tp.topic, {}, {}});
        s.topics.back().partitions.push_back(tp.partition);
      }
    }
    response.transaction_states.push_back(std::move(s));
  }
  respond(call, response);
}

void handle_list_transactions(BrokerState& state, Call& call) {
  wire::msg::ListTransactionsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::ListTransactionsResponse response;
  auto* coordinators = coordinator(state);
  std::set<txn::TxnState> states;
  for (const auto& name : request.state_filters) {
    if (auto s = txn::state_from_name(name)) states.insert(*s);
    else response.unknown_state_filters.push_back(name);
  }
  const std::set<std::int64_t> producer_ids(request.producer_id_filters.begin(), request.producer_id_filters.end());
  std::vector<txn::TxnMetadata> all;
  if (!coordinators) {
    response.error_code = kCoordinatorNotAvailable;
  } else if (auto e = coordinators->list(all); e != TxnError::none) {
    response.error_code = kafka_code(e);
  } else if (response.unknown_state_filters.empty() || !states.empty()) {
    // Only unknown state names: nothing can match (Kafka answers an empty list).
    for (const auto& m : all) {
      if (!states.empty() && !states.count(m.state)) continue;
      if (!producer_ids.empty() && !producer_ids.count(m.producer_id)) continue;
      if (!authorized(state, call, Operation::describe, ResourceType::transactional_id, m.transactional_id, false)) continue;
      response.transaction_states.push_back({m.transactional_id, m.producer_id, txn::state_name(m.state), {}});
    }
  }
  respond(call, response);
}

namespace {

// KIP-890 for a transactional id coordinated elsewhere: AddPartitionsToTxn v4 verify_only to its
// coordinator. Synchronous, with a timeout: the produce path waits for the answer on its thread (a
// first step; Kafka's AddPartitionsToTxnManager batches these asynchronously).
KafkaError verify_remotely(BrokerState& state, TxnCoordinators& coordinators, const std::string& id,
                           std::int64_t pid, std::int16_t epoch, const std::string& topic, std::int32_t partition) {
  auto* client = coordinators.outbound();
  auto index = coordinators.partition_for(id);
  if (!client || !index) return static_cast<KafkaError>(kCoordinatorNotAvailable);
  const auto image = state.image();
  const auto* p = image->partition(kTransactionStateTopic, *index);
  if (!p || !p->has_leader()) return static_cast<KafkaError>(kNotCoordinator);
  const auto* broker = image->broker(p->leader);
  const auto* endpoint = broker ? broker->endpoint(state.config.inter_broker_listener_name) : nullptr;
  if (!endpoint) return static_cast<KafkaError>(kNotCoordinator);
  client->set_peer(p->leader, endpoint->host, endpoint->port);
  constexpr std::int16_t kVersion = 4;
  wire::msg::AddPartitionsToTxnRequest request;
  wire::msg::AddPartitionsToTxnRequest::AddPartitionsToTxnTransaction t;
  t.transactional_id = id;
  t.producer_id = pid;
  t.producer_epoch = epoch;
  t.verify_only = true;
  t.topics.push_back({topic, {partition}, {}});
  request.transactions.push_back(std::move(t));
  net::OutboundRequest out;
  out.api_key = request.api_key;
  out.api_version = kVersion;
  out.body = wire::encode_message(request, kVersion);
  out.timeout = std::chrono::milliseconds(5000);
  auto answer = std::make_shared<std::promise<std::int16_t>>();
  auto future = answer->get_future();
  client->send(p->leader, std::move(out), [answer, topic, partition](net::OutboundResponse r) {
    std::int16_t e = kCoordinatorNotAvailable;
    if (r.ok()) {
      auto decoded = wire::decode_message<wire::msg::AddPartitionsToTxnResponse>(r.body, kVersion);
      if (decoded) {
        e = decoded->error_code;
        for (const auto& tr : decoded->results_by_transaction)
          for (const auto& top : tr.topic_results)
            for (const auto& pr : top.results_by_partition)
              if (e == 0 && top.name == topic && pr.partition_index == partition) e = pr.partition_error_code;
      }
    }
    answer->set_value(e);
  });
  if (future.wait_for(std::chrono::milliseconds(6000)) != std::future_status::ready)
    return static_cast<KafkaError>(kCoordinatorNotAvailable);
  return static_cast<KafkaError>(future.get());
}

}  // namespace

Status open_txn_coordinator(BrokerState& state, Result<net::OutboundOptions> markers) {
  const auto& cfg = state.config;
  TxnSettings settings;
  settings.num_partitions = cfg.transaction_state_log_num_partitions;
  settings.replication_factor = cfg.transaction_state_log_replication_factor;
  settings.min_isr = cfg.transaction_state_log_min_isr;
  settings.segment_bytes = cfg.transaction_state_log_segment_bytes;
  settings.max_timeout_ms = cfg.transaction_max_timeout_ms;
  settings.id_expiration_ms = cfg.transactional_id_expiration_ms;
  settings.abort_interval_ms = cfg.transaction_abort_timed_out_transaction_cleanup_interval_ms;
  settings.remove_interval_ms = cfg.transaction_remove_expired_transaction_cleanup_interval_ms;
  std::unique_ptr<net::OutboundClient> client;
  if (!markers.ok()) {
    log::error("transaction markers cannot be sent: {}", markers.error().message);
  } else if (auto made = net::OutboundClient::create(std::move(*markers)); made.ok()) {
    client = std::move(*made);
  } else {
    log::error("transaction markers cannot be sent: {}", made.error().message);
  }
  state.txn_coordinators = std::make_shared<TxnCoordinators>(state, settings, std::move(client));
  state.txn_coordinators->start();
  std::weak_ptr<TxnCoordinators> weak = state.txn_coordinators;
  state.verify_transactional_partition = [&state, weak](const std::string& id, std::int64_t pid, std::int16_t epoch,
                                                        const std::string& topic, std::int32_t partition) {
    auto coordinators = weak.lock();
    if (!coordinators) return static_cast<KafkaError>(kCoordinatorNotAvailable);
    if (!coordinators->coordinates(id)) return verify_remotely(state, *coordinators, id, pid, epoch, topic, partition);
    auto outcome = coordinators->verify(id, pid, epoch, {txn::TopicPartition{topic, partition}});
    auto it = outcome.partitions.find({topic, partition});
    return static_cast<KafkaError>(kafka_code(it == outcome.partitions.end() ? outcome.error : it->second));
  };
  return Status::success();
}

}  // namespace bulwark::broker
