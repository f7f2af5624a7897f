#include "txn/metadata.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "txn/invariant.h"

namespace bulwark::txn {

void invariant_failed(const char* name, const char* file, int line) {
  std::fprintf(stderr, "transaction coordinator invariant violated: %s (%s:%d)\n", name, file, line);
  std::abort();
}

namespace {

constexpr const char* kStateNames[] = {"Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
                                       "CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence"};

bool is_idle(TxnState s) {
  return s == TxnState::empty || s == TxnState::complete_commit || s == TxnState::complete_abort;
}

bool is_preparing(TxnState s) { return s == TxnState::prepare_commit || s == TxnState::prepare_abort; }

// The target of a transition: the current metadata with the fields that change.
TxnMetadata transit(const TxnMetadata& from, TxnState to, std::int64_t now_ms) {
  TXN_INVARIANT(valid_transition(from.state, to), "txn_transition_valid");
  TxnMetadata target = from;
  target.state = to;
  target.last_update_ms = std::max(now_ms, from.last_update_ms);
  return target;
}

void set_pending(Transaction& txn, TxnMetadata target) {
  TXN_INVARIANT(!txn.pending.has_value(), "txn_one_pending_transition");
  txn.pending = std::move(target);
}

}  // namespace

const char* state_name(TxnState state) {
  auto i = static_cast<std::size_t>(state);
  return i < std::size(kStateNames) ? kStateNames[i] : "Unknown";
}

std::optional<TxnState> state_from_name(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kStateNames); ++i) {
    if (name == kStateNames[i]) return static_cast<TxnState>(i);
  }
  return std::nullopt;
}

std::optional<TxnState> state_from_id(std::int8_t id) {
  if (id < 0 || static_cast<std::size_t>(id) >= std::size(kStateNames)) return std::nullopt;
  return static_cast<TxnState>(id);
}

const char* error_name(TxnError error) {
  switch (error) {
    case TxnError::none: return "NONE";
    case TxnError::concurrent_transactions: return "CONCURRENT_TRANSACTIONS";
    case TxnError::producer_fenced: return "PRODUCER_FENCED";
    case TxnError::invalid_producer_epoch: return "INVALID_PRODUCER_EPOCH";
    case TxnError::invalid_producer_id_mapping: return "INVALID_PRODUCER_ID_MAPPING";
    case TxnError::invalid_txn_state: return "INVALID_TXN_STATE";
    case TxnError::invalid_transaction_timeout: return "INVALID_TRANSACTION_TIMEOUT";
    case TxnError::invalid_request: return "INVALID_REQUEST";
    case TxnError::transaction_abortable: return "TRANSACTION_ABORTABLE";
    case TxnError::not_coordinator: return "NOT_COORDINATOR";
    case TxnError::coordinator_load_in_progress: return "COORDINATOR_LOAD_IN_PROGRESS";
    case TxnError::coordinator_not_available: return "COORDINATOR_NOT_AVAILABLE";
    case TxnError::transactional_id_not_found: return "TRANSACTIONAL_ID_NOT_FOUND";
    case TxnError::unknown_server_error: return "UNKNOWN_SERVER_ERROR";
  }
  return "UNKNOWN_SERVER_ERROR";
}

bool valid_transition(TxnState from, TxnState to) {
  switch (to) {
    case TxnState::empty: return is_idle(from);
    case TxnState::ongoing: return from == TxnState::ongoing || is_idle(from);
    case TxnState::prepare_commit: return from == TxnState::ongoing;
    case TxnState::prepare_abort: return from == TxnState::ongoing || from == TxnState::prepare_epoch_fence;
    case TxnState::complete_commit: return from == TxnState::prepare_commit;
    case TxnState::complete_abort: return from == TxnState::prepare_abort;
    case TxnState::dead: return is_idle(from);
    case TxnState::prepare_epoch_fence: return from == TxnState::ongoing;
  }
  return false;
}

Transaction new_transaction(std::string transactional_id, std::int64_t producer_id, std::int32_t timeout_ms,
                            std::int64_t now_ms) {
  Transaction txn;
  txn.current.transactional_id = std::move(transactional_id);
  txn.current.producer_id = producer_id;
  txn.current.timeout_ms = timeout_ms;
  txn.current.last_update_ms = now_ms;
  return txn;
}

void complete_pending(Transaction& txn) {
  TXN_INVARIANT(txn.pending.has_value(), "txn_complete_needs_pending");
  const TxnMetadata& from = txn.current;
  const TxnMetadata& to = *txn.pending;
  TXN_INVARIANT(to.state != TxnState::prepare_epoch_fence, "txn_epoch_fence_never_written");
  TXN_INVARIANT(valid_transition(from.state, to.state), "txn_transition_valid");
  TXN_INVARIANT(to.producer_id != from.producer_id || to.producer_epoch >= from.producer_epoch,
                "txn_epoch_only_rises");
  TXN_INVARIANT(to.state != TxnState::ongoing || !to.partitions.empty(), "txn_ongoing_has_partitions");
  TXN_INVARIANT(!is_idle(to.state) || to.partitions.empty(), "txn_idle_has_no_partitions");
  txn.current = std::move(*txn.pending);
  txn.pending.reset();
  txn.failed_epoch_fence = false;
}

void abandon_pending(Transaction& txn) { txn.pending.reset(); }

namespace {

bool valid_expected_producer(const TxnMetadata& m, const ProducerIdAndEpoch& expected) {
  // KIP-360: a fresh id (no epoch yet), the current id, or the previous one when its epoch ran out
  // (a retry of the rotation whose answer was lost).
  return m.producer_epoch == kNoProducerEpoch || expected.producer_id == m.producer_id ||
         (expected.producer_id == m.last_producer_id && epoch_exhausted(expected.epoch));
}

InitOutcome init_error(TxnError e) { return InitOutcome{InitOutcome::Kind::error, e}; }

InitOutcome rotate_producer_id(Transaction& txn, std::int32_t timeout_ms, bool has_expected,
                               const ProducerIdSource& new_producer_id, std::int64_t now_ms) {
  std::optional<std::int64_t> id = new_producer_id ? new_producer_id() : std::nullopt;
  if (!id) return init_error(TxnError::coordinator_not_available);
  TxnMetadata target = transit(txn.current, TxnState::empty, now_ms);
  target.last_producer_id = txn.current.producer_id;
  target.producer_id = *id;
  target.producer_epoch = 0;
  target.last_producer_epoch = has_expected ? txn.current.producer_epoch : kNoProducerEpoch;
  target.timeout_ms = timeout_ms;
  target.partitions.clear();
  target.txn_start_ms = -1;
  set_pending(txn, std::move(target));
  return InitOutcome{InitOutcome::Kind::write, TxnError::none};
}

InitOutcome bump_epoch(Transaction& txn, std::int32_t timeout_ms, const std::optional<ProducerIdAndEpoch>& expected,
                       std::int64_t now_ms) {
  const TxnMetadata& m = txn.current;
  std::int16_t next_epoch = static_cast<std::int16_t>(m.producer_epoch + 1);
  std::int16_t last_epoch = kNoProducerEpoch;
  if (expected) {
    if (m.producer_epoch == kNoProducerEpoch || expected->epoch == m.producer_epoch) {
      last_epoch = m.producer_epoch;
    } else if (expected->epoch == m.last_producer_epoch) {
      // A retry of a bump whose answer was lost: answer the same epoch again.
      next_epoch = m.producer_epoch;
      last_epoch = m.last_producer_epoch;
    } else {
      return init_error(TxnError::producer_fenced);
    }
  }
  // An exhausted epoch rotates the producer id instead (prepare_init); only a retry gets here with one.
  if (next_epoch != m.producer_epoch && epoch_exhausted(m.producer_epoch)) return init_error(TxnError::producer_fenced);
  TXN_INVARIANT(next_epoch <= kMaxProducerEpoch - 1, "txn_bump_leaves_an_epoch_for_fencing");
  TxnMetadata target = transit(m, TxnState::empty, now_ms);
  target.producer_epoch = next_epoch;
  target.last_producer_epoch = last_epoch;
  target.timeout_ms = timeout_ms;
  target.partitions.clear();
  target.txn_start_ms = -1;
  set_pending(txn, std::move(target));
  return InitOutcome{InitOutcome::Kind::write, TxnError::none};
}

// Marks the ongoing transaction for an abort under a bumped epoch; the bump fences its producer.
void prepare_fence(Transaction& txn, std::int64_t now_ms) {
  TXN_INVARIANT(txn.current.producer_epoch < kMaxProducerEpoch, "txn_fence_needs_epoch_left");
  TxnMetadata target = transit(txn.current, TxnState::prepare_epoch_fence, now_ms);
  if (!txn.failed_epoch_fence) target.producer_epoch = static_cast<std::int16_t>(target.producer_epoch + 1);
  target.last_producer_epoch = kNoProducerEpoch;
  set_pending(txn, std::move(target));
}

}  // namespace

InitOutcome prepare_init(Transaction& txn, std::int32_t timeout_ms, const std::optional<ProducerIdAndEpoch>& expected,
                         const ProducerIdSource& new_producer_id, std::int64_t now_ms) {
  if (txn.pending) return init_error(TxnError::concurrent_transactions);
  const TxnMetadata& m = txn.current;
  if (expected && !valid_expected_producer(m, *expected)) return init_error(TxnError::producer_fenced);
  switch (m.state) {
    case TxnState::prepare_commit:
    case TxnState::prepare_abort:
      return init_error(TxnError::concurrent_transactions);
    case TxnState::empty:
    case TxnState::complete_commit:
    case TxnState::complete_abort:
      if (epoch_exhausted(m.producer_epoch) && (!expected || expected->epoch == m.producer_epoch)) {
        return rotate_producer_id(txn, timeout_ms, expected.has_value(), new_producer_id, now_ms);
      }
      return bump_epoch(txn, timeout_ms, expected, now_ms);
    case TxnState::ongoing:
      // The epoch of the fence is never answered: the client gets CONCURRENT_TRANSACTIONS, retries
      // once the abort completed, and that retry bumps again (rotating the id if the epochs ran out).
      prepare_fence(txn, now_ms);
      return InitOutcome{InitOutcome::Kind::fence, TxnError::none};
    case TxnState::dead:
    case TxnState::prepare_epoch_fence:
      break;
  }
  TXN_INVARIANT(false, "txn_no_dead_or_fence_state_is_current");
}

AddOutcome prepare_add_partitions(Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch,
                                  const std::set<TopicPartition>& partitions, std::int64_t now_ms) {
  const TxnMetadata& m = txn.current;
  auto error = [](TxnError e) { return AddOutcome{AddOutcome::Kind::error, e}; };
  if (m.producer_id != producer_id) return error(TxnError::invalid_producer_id_mapping);
  if (m.producer_epoch != producer_epoch) return error(TxnError::producer_fenced);
  if (txn.pending || is_preparing(m.state)) return error(TxnError::concurrent_transactions);
  if (partitions.empty()) return error(TxnError::invalid_request);
  if (m.state == TxnState::ongoing &&
      std::includes(m.partitions.begin(), m.partitions.end(), partitions.begin(), partitions.end())) {
    return AddOutcome{AddOutcome::Kind::already_added, TxnError::none};
  }
  if (!valid_transition(m.state, TxnState::ongoing)) return error(TxnError::invalid_txn_state);
  TxnMetadata target = transit(m, TxnState::ongoing, now_ms);
  target.partitions.insert(partitions.begin(), partitions.end());
  if (is_idle(m.state)) target.txn_start_ms = now_ms;  // a new transaction opens
  set_pending(txn, std::move(target));
  return AddOutcome{AddOutcome::Kind::write, TxnError::none};
}

VerifyOutcome verify_partitions(const Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch,
                                const std::set<TopicPartition>& partitions) {
  const TxnMetadata& m = txn.current;
  VerifyOutcome out;
  if (m.producer_id != producer_id) {
    out.error = TxnError::invalid_producer_id_mapping;
  } else if (m.producer_epoch != producer_epoch) {
    out.error = TxnError::producer_fenced;
  } else if (is_preparing(m.state)) {
    out.error = TxnError::concurrent_transactions;
  }
  for (const TopicPartition& tp : partitions) {
    if (out.error != TxnError::none) {
      out.partitions[tp] = out.error;
    } else {
      out.partitions[tp] = m.partitions.count(tp) ? TxnError::none : TxnError::transaction_abortable;
    }
  }
  return out;
}

namespace {

EndOutcome end_error(TxnError e) { return EndOutcome{EndOutcome::Kind::error, e}; }

// A repeat of an end that already happened (or is happening) is not an error for the same result.
EndOutcome end_in_state(TxnState state, bool commit) {
  switch (state) {
    case TxnState::complete_commit:
      return commit ? EndOutcome{EndOutcome::Kind::already_ended, TxnError::none} : end_error(TxnError::invalid_txn_state);
    case TxnState::complete_abort:
      return !commit ? EndOutcome{EndOutcome::Kind::already_ended, TxnError::none} : end_error(TxnError::invalid_txn_state);
    case TxnState::prepare_commit:
      return end_error(commit ? TxnError::concurrent_transactions : TxnError::invalid_txn_state);
    case TxnState::prepare_abort:
      return end_error(!commit ? TxnError::concurrent_transactions : TxnError::invalid_txn_state);
    case TxnState::empty:
      return end_error(TxnError::invalid_txn_state);
    default:
      break;
  }
  TXN_INVARIANT(false, "txn_no_dead_or_fence_state_is_current");
}

}  // namespace

EndOutcome prepare_end(Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch, bool commit,
                       bool from_client, std::int64_t now_ms) {
  TxnMetadata& m = txn.current;
  const bool fencing = txn.pending && txn.pending->state == TxnState::prepare_epoch_fence;
  const bool valid_epoch = (!from_client || producer_epoch == m.producer_epoch) && producer_epoch >= m.producer_epoch;
  if (m.producer_id != producer_id) return end_error(TxnError::invalid_producer_id_mapping);
  if (!valid_epoch) return end_error(TxnError::producer_fenced);
  if (txn.pending && (!fencing || from_client || commit)) return end_error(TxnError::concurrent_transactions);
  if (m.state != TxnState::ongoing) return end_in_state(m.state, commit);
  if (fencing) {
    // The fence becomes the abort: the bumped epoch is taken now, before the write, so the markers
    // carry it. Until the abort is written the log is behind memory (see failed_epoch_fence).
    txn.pending.reset();
    m.producer_epoch = producer_epoch;
    m.last_producer_epoch = kNoProducerEpoch;
    txn.failed_epoch_fence = true;
  }
  set_pending(txn, transit(m, commit ? TxnState::prepare_commit : TxnState::prepare_abort, now_ms));
  return EndOutcome{EndOutcome::Kind::write, TxnError::none};
}

bool prepare_complete(Transaction& txn, std::int64_t now_ms) {
  if (txn.pending || !is_preparing(txn.current.state)) return false;
  TxnState to = txn.current.state == TxnState::prepare_commit ? TxnState::complete_commit : TxnState::complete_abort;
  TxnMetadata target = transit(txn.current, to, now_ms);
  target.partitions.clear();
  set_pending(txn, std::move(target));
  return true;
}

bool timed_out(const Transaction& txn, std::int64_t now_ms) {
  const TxnMetadata& m = txn.current;
  return m.state == TxnState::ongoing && !txn.pending && m.txn_start_ms >= 0 &&
         m.txn_start_ms + m.timeout_ms < now_ms;
}

bool prepare_timeout_abort(Transaction& txn, std::int64_t now_ms) {
  if (!timed_out(txn, now_ms)) return false;
  const TxnMetadata& m = txn.current;
  if (m.producer_epoch >= kMaxProducerEpoch) {
    // No epoch left to fence with: abort under the current one.
    return prepare_end(txn, m.producer_id, m.producer_epoch, false, false, now_ms).kind == EndOutcome::Kind::write;
  }
  prepare_fence(txn, now_ms);
  std::int16_t fenced_epoch = txn.pending->producer_epoch;
  EndOutcome end = prepare_end(txn, m.producer_id, fenced_epoch, false, false, now_ms);
  if (end.kind != EndOutcome::Kind::write) {
    abandon_pending(txn);
    return false;
  }
  return true;
}

bool expired(const Transaction& txn, std::int64_t now_ms, std::int64_t expiration_ms) {
  const TxnMetadata& m = txn.current;
  return is_idle(m.state) && !txn.pending && m.last_update_ms + expiration_ms <= now_ms;
}

bool prepare_dead(Transaction& txn, std::int64_t now_ms) {
  if (txn.pending || !is_idle(txn.current.state)) return false;
  TxnMetadata target = transit(txn.current, TxnState::dead, now_ms);
  target.partitions.clear();
  set_pending(txn, std::move(target));
  return true;
}

}  // namespace bulwark::txn
