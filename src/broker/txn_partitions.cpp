#include "broker/txn_partitions.h"

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "broker/controller_channel.h"
#include "broker/group_partitions.h"
#include "broker/state.h"
#include "groups/log_store.h"
#include "txn/records.h"
#include "wire/generated/create_topics.h"
#include "wire/generated/write_txn_markers.h"

namespace bulwark::broker {

using txn::TxnError;
using Clock = std::chrono::steady_clock;

TxnCoordinators::TxnCoordinators(BrokerState& state, TxnSettings settings, std::unique_ptr<net::OutboundClient> markers)
    : state_(state), settings_(settings), markers_(std::move(markers)) {}

TxnCoordinators::~TxnCoordinators() { stop(); }

void TxnCoordinators::start() {
  if (markers_) {
    auto started = markers_->start();
    if (!started.ok()) {
      log::error("transaction markers cannot be sent: {}", started.error().message);
      markers_.reset();
    }
  }
  thread_ = std::thread([this] { run(); });
}

void TxnCoordinators::stop() {
  {
    std::lock_guard lock(wake_mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (markers_) markers_->stop();
  std::map<std::int32_t, std::shared_ptr<Shard>> shards;
  {
    std::lock_guard lock(mu_);
    shards.swap(shards_);
  }
  for (auto& [index, shard] : shards) {
    std::lock_guard lock(shard->mu);
    shard->active = false;
  }
  std::vector<PendingWrite> pending;
  {
    std::lock_guard lock(work_mu_);
    pending.swap(pending_);
    jobs_.clear();
  }
  for (auto& p : pending) p.done(false);
}

void TxnCoordinators::wake() {
  {
    std::lock_guard lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

void TxnCoordinators::on_image() {
  {
    std::lock_guard lock(wake_mu_);
    wake_ = true;
    image_changed_ = true;
  }
  wake_cv_.notify_all();
}

std::optional<std::int32_t> TxnCoordinators::partition_for(const std::string& transactional_id) const {
  const auto image = state_.image();
  const auto* topic = image->topic(kTransactionStateTopic);
  if (!topic || topic->partitions.empty()) return std::nullopt;
  // Kafka places transactional ids exactly as group ids.
  return offsets_partition_for(transactional_id, static_cast<std::int32_t>(topic->partitions.size()));
}

std::shared_ptr<TxnCoordinators::Shard> TxnCoordinators::shard_for(const std::string& transactional_id,
                                                                   TxnError& error) const {
  auto index = partition_for(transactional_id);
  if (!index) {
    error = TxnError::coordinator_not_available;
    return nullptr;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = shards_.find(*index); it != shards_.end()) return it->second;
  }
  auto hosted = state_.replicas->get({kTransactionStateTopic, *index});
  const bool leads = hosted && hosted->role() == replication::Role::leader;
  error = leads ? TxnError::coordinator_load_in_progress : TxnError::not_coordinator;
  return nullptr;
}

bool TxnCoordinators::coordinates(const std::string& transactional_id) {
  TxnError error = TxnError::none;
  return shard_for(transactional_id, error) != nullptr;
}

// ---- Writing to __transaction_state ---------------------------------------------------------------

void TxnCoordinators::write(const std::shared_ptr<Shard>& shard, const txn::TxnMetadata& target,
                            std::function<void(bool)> done) {
  groups::StoredRecord record;
  record.key = txn::encode_log_key(target.transactional_id);
  if (target.state != txn::TxnState::dead) record.value = txn::encode_log_value(target);  // Dead: a tombstone
  const auto now = state_.now_ms();
  auto batch = groups::encode_group_batch({record}, now);
  if (!batch.ok()) {
    log::error("{}: cannot encode a record: {}", kTransactionStateTopic, batch.error().message);
    return done(false);
  }
  storage::AppendOptions options;
  options.now_ms = now;
  options.max_message_bytes = INT32_MAX;  // a transaction with many partitions may be large
  auto appended = shard->partition->append_as_leader(*batch, options);
  if (!appended || !appended->result.ok()) return done(false);
  state_.notifier.notify(shard->partition->topic_partition());  // followers waiting in a fetch
  {
    std::lock_guard lock(work_mu_);
    pending_.push_back(PendingWrite{shard, appended->result->last_offset + 1, Clock::now() + settings_.write_timeout,
                                    std::move(done)});
  }
  wake();
}

// Settles the writes whose fate is known: replicated (the high watermark covers them), or lost (the
// leadership moved or the time ran out). Polled by the manager thread while writes are pending.
void TxnCoordinators::check_writes() {
  std::vector<std::pair<std::function<void(bool)>, bool>> settled;
  {
    std::lock_guard lock(work_mu_);
    const auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      const auto& p = *it->shard->partition;
      const bool leads = p.role() == replication::Role::leader && p.leader_epoch() == it->shard->leader_epoch;
      if (leads && p.high_watermark() >= it->end_offset) {
        settled.emplace_back(std::move(it->done), true);
      } else if (!leads || now >= it->deadline) {
        settled.emplace_back(std::move(it->done), false);
      } else {
        ++it;
        continue;
      }
      it = pending_.erase(it);
    }
  }
  for (auto& [done, ok] : settled) done(ok);
}

// Why a write did not make it: the leadership left (clients look for the new coordinator), or the
// log could not take it or the ISR did not catch up in time (clients retry here).
TxnError TxnCoordinators::write_failure(const Shard& shard) const {
  const bool leads = shard.active && shard.partition->role() == replication::Role::leader &&
                     shard.partition->leader_epoch() == shard.leader_epoch;
  return leads ? TxnError::coordinator_not_available : TxnError::not_coordinator;
}

bool TxnCoordinators::finish_write(Shard& shard, const std::string& id, bool written) {
  auto it = shard.txns.find(id);
  if (!shard.active || it == shard.txns.end() || !it->second.pending) return false;
  if (!written) {
    txn::abandon_pending(it->second);
    return false;
  }
  const bool dead = it->second.pending->state == txn::TxnState::dead;
  txn::complete_pending(it->second);
  if (dead) shard.txns.erase(it);
  return true;
}

// ---- Requests -------------------------------------------------------------------------------------

void TxnCoordinators::init_producer_id(const std::string& id, std::int32_t timeout_ms,
                                       std::optional<txn::ProducerIdAndEpoch> expected, InitDone done) {
  if (id.empty()) return done(TxnError::invalid_request, -1, -1);
  if (timeout_ms <= 0 || timeout_ms > settings_.max_timeout_ms) return done(TxnError::invalid_transaction_timeout, -1, -1);
  TxnError error = TxnError::none;
  auto shard = shard_for(id, error);
  if (!shard) return done(error, -1, -1);
  auto new_id = [this]() -> std::optional<std::int64_t> {
    auto next = state_.producer_ids->next();
    if (!next.ok()) {
      log::warn("cannot allocate a producer id: {}", next.error().message);
      return std::nullopt;
    }
    return *next;
  };
  std::unique_lock lock(shard->mu);
  if (!shard->active) return done(TxnError::not_coordinator, -1, -1);
  auto it = shard->txns.find(id);
  if (it == shard->txns.end()) {
    auto pid = new_id();
    if (!pid) return done(TxnError::coordinator_not_available, -1, -1);
    it = shard->txns.emplace(id, txn::new_transaction(id, *pid, timeout_ms, state_.now_ms())).first;
  }
  txn::Transaction& t = it->second;
  txn::InitOutcome outcome = txn::prepare_init(t, timeout_ms, expected, new_id, state_.now_ms());
  if (outcome.kind == txn::InitOutcome::Kind::error) return done(outcome.error, -1, -1);
  if (outcome.kind == txn::InitOutcome::Kind::fence) {
    const auto fenced_epoch = t.pending->producer_epoch;
    auto end = txn::prepare_end(t, t.current.producer_id, fenced_epoch, false, false, state_.now_ms());
    if (end.kind != txn::EndOutcome::Kind::write) {
      txn::abandon_pending(t);
      return done(end.error == TxnError::none ? TxnError::concurrent_transactions : end.error, -1, -1);
    }
    lock.unlock();
    // The fenced transaction is aborted; the client hears CONCURRENT_TRANSACTIONS and retries.
    return write_end(shard, id, [done](TxnError e) {
      done(e == TxnError::none ? TxnError::concurrent_transactions : e, -1, -1);
    });
  }
  txn::TxnMetadata target = *t.pending;
  lock.unlock();
  write(shard, target, [this, shard, id, target, done](bool ok) {
    bool written = false;
    {
      std::lock_guard l(shard->mu);
      written = finish_write(*shard, id, ok);
    }
    if (!written) return done(write_failure(*shard), -1, -1);
    log::info("transactional id {}: producer id {} epoch {}", id, target.producer_id, target.producer_epoch);
    done(TxnError::none, target.producer_id, target.producer_epoch);
  });
}

TxnCoordinators::Found TxnCoordinators::find_transaction(const std::string& id) {
  Found found;
  if (id.empty()) {
    found.error = TxnError::invalid_request;
    return found;
  }
  found.shard = shard_for(id, found.error);
  if (!found.shard) return found;
  found.lock = std::unique_lock(found.shard->mu);
  auto it = found.shard->txns.find(id);
  if (!found.shard->active) found.error = TxnError::not_coordinator;
  else if (it == found.shard->txns.end()) found.error = TxnError::invalid_producer_id_mapping;
  else found.txn = &it->second;
  return found;
}

void TxnCoordinators::add_partitions(const std::string& id, std::int64_t producer_id, std::int16_t producer_epoch,
                                     std::set<txn::TopicPartition> partitions, Done done) {
  auto found = find_transaction(id);
  if (!found.txn) return done(found.error);
  auto outcome = txn::prepare_add_partitions(*found.txn, producer_id, producer_epoch, partitions, state_.now_ms());
  if (outcome.kind != txn::AddOutcome::Kind::write) return done(outcome.error);
  txn::TxnMetadata target = *found.txn->pending;
  found.lock.unlock();
  auto shard = std::move(found.shard);
  write(shard, target, [this, shard, id, done](bool ok) {
    bool written = false;
    {
      std::lock_guard l(shard->mu);
      written = finish_write(*shard, id, ok);
    }
    done(written ? TxnError::none : (write_failure(*shard)));
  });
}

txn::VerifyOutcome TxnCoordinators::verify(const std::string& id, std::int64_t producer_id, std::int16_t producer_epoch,
                                           const std::set<txn::TopicPartition>& partitions) {
  txn::VerifyOutcome out;
  auto fail = [&](TxnError e) {
    out.error = e;
    for (const auto& tp : partitions) out.partitions[tp] = e;
    return out;
  };
  auto found = find_transaction(id);
  if (!found.txn) return fail(found.error);
  return txn::verify_partitions(*found.txn, producer_id, producer_epoch, partitions);
}

void TxnCoordinators::end_txn(const std::string& id, std::int64_t producer_id, std::int16_t producer_epoch, bool commit,
                              Done done) {
  auto found = find_transaction(id);
  if (!found.txn) return done(found.error);
  auto outcome = txn::prepare_end(*found.txn, producer_id, producer_epoch, commit, true, state_.now_ms());
  if (outcome.kind != txn::EndOutcome::Kind::write) return done(outcome.error);
  found.lock.unlock();
  write_end(found.shard, id, std::move(done));
}

// Writes the pending PrepareCommit/PrepareAbort of `id`, answers, then sends the markers.
void TxnCoordinators::write_end(const std::shared_ptr<Shard>& shard, const std::string& id, Done done) {
  txn::TxnMetadata target;
  {
    std::lock_guard lock(shard->mu);
    auto it = shard->txns.find(id);
    if (!shard->active || it == shard->txns.end() || !it->second.pending) return done(TxnError::not_coordinator);
    target = *it->second.pending;
  }
  write(shard, target, [this, shard, id, target, done](bool ok) {
    bool written = false;
    {
      std::lock_guard l(shard->mu);
      written = finish_write(*shard, id, ok);
    }
    if (!written) return done(write_failure(*shard));
    done(TxnError::none);
    queue_markers(shard, target);
  });
}

TxnCoordinators::Described TxnCoordinators::describe(const std::string& id) {
  Described out;
  if (id.empty()) {
    out.error = TxnError::invalid_request;
    return out;
  }
  auto shard = shard_for(id, out.error);
  if (!shard) return out;
  std::lock_guard lock(shard->mu);
  auto it = shard->txns.find(id);
  if (!shard->active) {
    out.error = TxnError::not_coordinator;
  } else if (it == shard->txns.end() || it->second.current.state == txn::TxnState::dead) {
    out.error = TxnError::transactional_id_not_found;
  } else {
    out.metadata = it->second.current;
  }
  return out;
}

txn::TxnError TxnCoordinators::list(std::vector<txn::TxnMetadata>& out) {
  const auto shards = all_shards();
  for (auto& shard : shards) {
    std::lock_guard lock(shard->mu);
    if (!shard->active) continue;
    for (const auto& [id, t] : shard->txns) out.push_back(t.current);
  }
  return TxnError::none;
}

// ---- Markers --------------------------------------------------------------------------------------

void TxnCoordinators::queue_markers(const std::shared_ptr<Shard>& shard, const txn::TxnMetadata& prepared) {
  auto job = std::make_shared<MarkerJob>();
  job->shard = shard;
  job->transactional_id = prepared.transactional_id;
  job->producer_id = prepared.producer_id;
  job->producer_epoch = prepared.producer_epoch;
  job->commit = prepared.state == txn::TxnState::prepare_commit;
  job->remaining = prepared.partitions;
  job->next_attempt = Clock::now();
  {
    std::lock_guard lock(work_mu_);
    jobs_.push_back(std::move(job));
  }
  wake();
}

namespace {

// Kafka's TransactionMarkerRequestCompletionHandler: partitions that need no (more) marker. Every
// other error is retried: a transaction must not complete while a partition may lack its marker
// (read_committed consumers would wait on it forever).
bool marker_settled(std::int16_t error) {
  return error == 0 || error == code(KafkaError::unsupported_for_message_format) ||
         error == code(KafkaError::unsupported_version);
}

// The usual retriable errors, not worth a log line each time.
bool expected_marker_retry(std::int16_t error) {
  switch (static_cast<KafkaError>(error)) {
    case KafkaError::unknown_topic_or_partition:
    case KafkaError::not_leader_or_follower:
    case KafkaError::leader_not_available:
    case KafkaError::not_enough_replicas:
    case KafkaError::not_enough_replicas_after_append:
    case KafkaError::request_timed_out:
    case KafkaError::kafka_storage_error:
      return true;
    default:
      return false;
  }
}

constexpr std::int16_t kInvalidProducerEpoch = 47;
constexpr std::int16_t kTransactionCoordinatorFenced = 52;
constexpr std::int16_t kMarkersVersion = 1;

}  // namespace

// Sends the due jobs' markers, one WriteTxnMarkers per leader per job. Partitions of deleted topics
// need none; partitions without a leader wait for one.
void TxnCoordinators::send_markers() {
  if (!markers_) return;
  std::vector<std::shared_ptr<MarkerJob>> due;
  {
    std::lock_guard lock(work_mu_);
    const auto now = Clock::now();
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      auto& job = *it;
      const bool stale = !job->shard->active || job->shard->partition->leader_epoch() != job->shard->leader_epoch;
      if (stale) {  // the next leader of this partition reloads it and sends the markers again
        it = jobs_.erase(it);
        continue;
      }
      if (!job->in_flight && job->next_attempt <= now) due.push_back(job);
      ++it;
    }
  }
  const auto image = state_.image();
  const auto& listener = state_.config.inter_broker_listener_name;
  for (auto& job : due) {
    std::map<std::int32_t, std::vector<txn::TopicPartition>> by_leader;
    std::vector<txn::TopicPartition> gone;
    for (const auto& tp : job->remaining) {
      const auto* topic = image->topic(tp.topic);
      const auto* partition = topic ? topic->partition(tp.partition) : nullptr;
      if (!partition) gone.push_back(tp);
      else if (partition->has_leader()) by_leader[partition->leader].push_back(tp);
    }
    std::unique_lock lock(work_mu_);
    for (const auto& tp : gone) job->remaining.erase(tp);
    if (job->remaining.empty()) {
      lock.unlock();
      on_markers_acked(job->shard, job->transactional_id);
      continue;
    }
    job->next_attempt = Clock::now() + settings_.marker_retry_backoff;
    if (by_leader.empty()) continue;
    job->in_flight = true;
    auto outstanding = std::make_shared<std::atomic<int>>(static_cast<int>(by_leader.size()));
    lock.unlock();
    for (auto& [leader, partitions] : by_leader) {
      const auto* broker = image->broker(leader);
      const auto* endpoint = broker ? broker->endpoint(listener) : nullptr;
      if (!endpoint) {
        if (--*outstanding == 0) {
          std::lock_guard l(work_mu_);
          job->in_flight = false;
        }
        continue;
      }
      markers_->set_peer(leader, endpoint->host, endpoint->port);
      wire::msg::WriteTxnMarkersRequest request;
      wire::msg::WriteTxnMarkersRequest::WritableTxnMarker marker;
      marker.producer_id = job->producer_id;
      marker.producer_epoch = job->producer_epoch;
      marker.transaction_result = job->commit;
      marker.coordinator_epoch = job->shard->leader_epoch;
      std::map<std::string, std::vector<std::int32_t>> topics;
      for (const auto& tp : partitions) topics[tp.topic].push_back(tp.partition);
      for (auto& [name, ids] : topics) {
        wire::msg::WriteTxnMarkersRequest::WritableTxnMarkerTopic t;
        t.name = name;
        t.partition_indexes = ids;
        marker.topics.push_back(std::move(t));
      }
      request.markers.push_back(std::move(marker));
      net::OutboundRequest out;
      out.api_key = request.api_key;
      out.api_version = kMarkersVersion;
      out.body = wire::encode_message(request, kMarkersVersion);
      markers_->send(leader, std::move(out), [this, job, outstanding](net::OutboundResponse response) {
        bool all_done = false;
        {
          std::lock_guard l(work_mu_);
          if (response.ok()) {
            auto decoded = wire::decode_message<wire::msg::WriteTxnMarkersResponse>(response.body, kMarkersVersion);
            if (decoded) {
              for (const auto& m : decoded->markers)
                for (const auto& t : m.topics)
                  for (const auto& p : t.partitions) {
                    if (p.error_code == kInvalidProducerEpoch || p.error_code == kTransactionCoordinatorFenced) {
                      // A newer coordinator or producer epoch owns this transaction now: stop
                      // sending (Kafka drops these markers too).
                      log::warn("transaction {}: marker on {}-{} refused with error {}; no longer sent",
                                job->transactional_id, t.name, p.partition_index, p.error_code);
                      job->remaining.erase(txn::TopicPartition{t.name, p.partition_index});
                    } else if (marker_settled(p.error_code)) {
                      job->remaining.erase(txn::TopicPartition{t.name, p.partition_index});
                    } else if (!expected_marker_retry(p.error_code) && job->logged_errors.insert(p.error_code).second) {
                      constexpr std::int16_t kClusterAuthorizationFailed = 31;
                      log::warn("transaction {}: marker on {}-{} failed with error {}{}; retrying",
                                job->transactional_id, t.name, p.partition_index, p.error_code,
                                p.error_code == kClusterAuthorizationFailed
                                    ? " (CLUSTER_AUTHORIZATION_FAILED: the leader's authorizer does not let this "
                                      "broker's principal write transaction markers; list every broker's principal "
                                      "in super.users, as Kafka needs too)"
                                    : "");
                    }
                  }
            }
          }
          if (--*outstanding == 0) {
            job->in_flight = false;
            all_done = job->remaining.empty();
          }
        }
        if (all_done) on_markers_acked(job->shard, job->transactional_id);
        wake();
      });
    }
  }
}

// Every marker is written: CompleteCommit/CompleteAbort goes to the log.
void TxnCoordinators::on_markers_acked(const std::shared_ptr<Shard>& shard, const std::string& id) {
  {
    std::lock_guard lock(work_mu_);
    jobs_.erase(std::remove_if(jobs_.begin(), jobs_.end(),
                               [&](const auto& j) { return j->shard == shard && j->transactional_id == id; }),
                jobs_.end());
  }
  txn::TxnMetadata target;
  {
    std::lock_guard lock(shard->mu);
    auto it = shard->txns.find(id);
    if (!shard->active || it == shard->txns.end() || !txn::prepare_complete(it->second, state_.now_ms())) return;
    target = *it->second.pending;
  }
  write(shard, target, [this, shard, id](bool ok) {
    std::lock_guard l(shard->mu);
    if (!finish_write(*shard, id, ok))
      log::warn("transaction {}: its completion was not written; the next leader writes it", id);
  });
}

// ---- Periodic tasks -------------------------------------------------------------------------------

std::vector<std::shared_ptr<TxnCoordinators::Shard>> TxnCoordinators::all_shards() {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Shard>> shards;
  for (auto& [index, shard] : shards_) shards.push_back(shard);
  return shards;
}

void TxnCoordinators::abort_timed_out() {
  const auto shards = all_shards();
  const auto now = state_.now_ms();
  for (auto& shard : shards) {
    std::vector<std::string> aborting;
    {
      std::lock_guard lock(shard->mu);
      for (auto& [id, t] : shard->txns)
        if (txn::prepare_timeout_abort(t, now)) aborting.push_back(id);
    }
    for (const auto& id : aborting) {
      log::info("transaction {} ran past its timeout: aborting it and fencing its producer", id);
      write_end(shard, id, [id](TxnError e) {
        if (e != TxnError::none) log::warn("aborting timed-out transaction {}: {}", id, txn::error_name(e));
      });
    }
  }
}

void TxnCoordinators::remove_expired() {
  const auto shards = all_shards();
  const auto now = state_.now_ms();
  for (auto& shard : shards) {
    std::vector<txn::TxnMetadata> dead;
    {
      std::lock_guard lock(shard->mu);
      for (auto& [id, t] : shard->txns)
        if (txn::expired(t, now, settings_.id_expiration_ms) && txn::prepare_dead(t, now)) dead.push_back(*t.pending);
    }
    for (const auto& target : dead) {
      write(shard, target, [this, shard, id = target.transactional_id](bool ok) {
        std::lock_guard l(shard->mu);
        if (finish_write(*shard, id, ok)) log::info("transactional id {} expired and was removed", id);
      });
    }
  }
}

// ---- Leadership -----------------------------------------------------------------------------------

bool TxnCoordinators::reconcile() {
  bool loaded_all = true;
  std::map<std::int32_t, std::shared_ptr<replication::Partition>> led;
  {
    const auto image = state_.image();
    if (const auto* topic = image->topic(kTransactionStateTopic)) {
      for (const auto& [index, partition] : topic->partitions) {
        if (partition.leader != state_.node_id()) continue;
        auto hosted = state_.replicas->get({kTransactionStateTopic, index});
        if (hosted && hosted->role() == replication::Role::leader) led.emplace(index, std::move(hosted));
      }
    }
  }
  std::vector<std::shared_ptr<Shard>> resigned;
  {
    std::lock_guard lock(mu_);
    for (auto it = shards_.begin(); it != shards_.end();) {
      auto now_led = led.find(it->first);
      if (now_led != led.end() && now_led->second == it->second->partition &&
          now_led->second->leader_epoch() == it->second->leader_epoch) {
        ++it;
        continue;
      }
      resigned.push_back(it->second);
      it = shards_.erase(it);
    }
  }
  for (auto& shard : resigned) {
    std::lock_guard lock(shard->mu);
    shard->active = false;
    shard->txns.clear();
    log::info("{}-{}: no longer coordinating its transactions", kTransactionStateTopic, shard->index);
  }
  for (auto& [index, partition] : led) {
    {
      std::lock_guard lock(mu_);
      if (shards_.count(index)) continue;
    }
    auto records = groups::read_group_records(*partition->log());
    std::vector<txn::LogRecord> log_records;
    if (records.ok()) {
      for (auto& r : *records) log_records.push_back(txn::LogRecord{std::move(r.key), std::move(r.value)});
    }
    auto replayed = records.ok() ? txn::replay_log(log_records) : Result<std::map<std::string, txn::Transaction>>(records.error());
    if (!replayed.ok()) {
      log::error("{}-{}: cannot load its transactions: {} (retrying)", kTransactionStateTopic, index,
                 replayed.error().message);
      loaded_all = false;
      continue;
    }
    auto shard = std::make_shared<Shard>();
    shard->index = index;
    shard->partition = partition;
    shard->leader_epoch = partition->leader_epoch();
    shard->txns = std::move(*replayed);
    std::vector<txn::TxnMetadata> resend;
    for (const auto& [id, t] : shard->txns) {
      const auto s = t.current.state;
      if (s == txn::TxnState::prepare_commit || s == txn::TxnState::prepare_abort) resend.push_back(t.current);
    }
    {
      std::lock_guard lock(mu_);
      shards_[index] = shard;
    }
    log::info("{}-{}: coordinating {} transactional id(s) (leader epoch {})", kTransactionStateTopic, index,
              shard->txns.size(), shard->leader_epoch);
    // A transaction left half-ended by the previous coordinator is finished here (as Kafka does).
    for (const auto& prepared : resend) queue_markers(shard, prepared);
  }
  return loaded_all;
}

void TxnCoordinators::run() {
  auto last_abort = Clock::now();
  auto last_remove = Clock::now();
  std::unique_lock lock(wake_mu_);
  while (!stopping_) {
    std::chrono::milliseconds wait{100};
    {
      std::lock_guard l(work_mu_);
      // Pending writes are polled for their high watermark: a few milliseconds of latency per write.
      if (!pending_.empty()) wait = std::chrono::milliseconds(2);
      else if (!jobs_.empty()) wait = std::min(wait, settings_.marker_retry_backoff);
    }
    wake_cv_.wait_for(lock, wait, [this] { return stopping_ || wake_; });
    if (stopping_) break;
    wake_ = false;
    const bool image_changed = std::exchange(image_changed_, false);
    lock.unlock();
    if (image_changed || retry_load_) retry_load_ = !reconcile();
    check_writes();
    send_markers();
    const auto now = Clock::now();
    if (now - last_abort >= std::chrono::milliseconds(settings_.abort_interval_ms)) {
      last_abort = now;
      abort_timed_out();
    }
    if (now - last_remove >= std::chrono::milliseconds(settings_.remove_interval_ms)) {
      last_remove = now;
      remove_expired();
    }
    lock.lock();
  }
}

void TxnCoordinators::create_topic() {
  if (!state_.controller || creating_.exchange(true)) return;
  const auto image = state_.image();
  const auto live = static_cast<std::int16_t>(std::min<std::size_t>(image->live_brokers().size(), INT16_MAX));
  const std::int16_t factor = std::max<std::int16_t>(1, std::min(settings_.replication_factor, live));
  if (factor < settings_.replication_factor)
    log::warn("transaction.state.log.replication.factor is {} but {} broker(s) are live: {} is created with {} "
              "copies of each partition",
              settings_.replication_factor, live, kTransactionStateTopic, factor);
  wire::msg::CreateTopicsRequest request;
  request.timeout_ms = 30000;
  wire::msg::CreateTopicsRequest::CreatableTopic topic;
  topic.name = kTransactionStateTopic;
  topic.num_partitions = std::max(1, settings_.num_partitions);
  topic.replication_factor = factor;
  // As Kafka's TransactionLog: compacted, never deleted by retention, min ISR from the broker keys.
  const std::string min_isr = std::to_string(std::max(1, std::min<std::int32_t>(settings_.min_isr, factor)));
  for (const auto& [key, value] :
       {std::pair<const char*, std::string>{"cleanup.policy", "compact"},
        std::pair<const char*, std::string>{"retention.ms", "-1"},
        std::pair<const char*, std::string>{"min.insync.replicas", min_isr},
        std::pair<const char*, std::string>{"segment.bytes", std::to_string(settings_.segment_bytes)}}) {
    wire::msg::CreateTopicsRequest::CreateableTopicConfig config;
    config.name = key;
    config.value = value;
    topic.configs.push_back(std::move(config));
  }
  request.topics.push_back(std::move(topic));
  constexpr std::int16_t version = 7;
  auto principal = serialize_principal("User", "bulwark-node-" + std::to_string(state_.node_id()));
  state_.controller->forward(
      request.api_key, version, wire::encode_message(request, version), std::move(principal), {},
      Clock::now() + std::chrono::seconds(30), [this](Result<Bytes> answer) {
        creating_ = false;
        if (!answer.ok()) return log::warn("creating {}: {}", kTransactionStateTopic, answer.error().message);
        auto response = wire::decode_message<wire::msg::CreateTopicsResponse>(*answer, version);
        if (!response || response->topics.empty()) return log::warn("creating {}: a malformed answer", kTransactionStateTopic);
        const auto& result = response->topics.front();
        constexpr std::int16_t kTopicAlreadyExists = 36;
        if (result.error_code != 0 && result.error_code != kTopicAlreadyExists)
          log::warn("creating {}: error {} ({})", kTransactionStateTopic, result.error_code,
                    result.error_message.value_or(""));
      });
}

}  // namespace bulwark::broker
