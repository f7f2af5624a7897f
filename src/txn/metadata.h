// The transaction coordinator's state machine for one transactional id (KIP-98, KIP-360 epoch bumps,
// KIP-890 part 1 verification), as Kafka 3.7's TransactionMetadata and TransactionCoordinator decide
// it. Pure: no I/O, no clock (the time is passed in), no locks; the caller serialises calls per id.
//
// Every change is two steps, because the coordinator must write it to __transaction_state before it
// is true: a prepare_* call validates the request and records the target as the pending transition
// (Transaction::pending); once the record is replicated, complete_pending() makes it current, and if
// the write failed abandon_pending() drops it. While a transition is pending other requests are
// answered CONCURRENT_TRANSACTIONS.
//
// The records it writes are exactly the pending targets (records.h encodes them); PrepareEpochFence is
// the one pending state never written: it only marks that an ongoing transaction is being aborted
// to fence its producer, and becomes PrepareAbort at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::txn {

// Kafka's TransactionState ids, as stored in TransactionLogValue.transaction_status.
enum class TxnState : std::int8_t {
  empty = 0,
  ongoing = 1,
  prepare_commit = 2,
  prepare_abort = 3,
  complete_commit = 4,
  complete_abort = 5,
  dead = 6,
  prepare_epoch_fence = 7,
};

// Kafka's names ("Empty", "Ongoing", "PrepareCommit", ...): DescribeTransactions and ListTransactions.
const char* state_name(TxnState state);
std::optional<TxnState> state_from_name(std::string_view name);
std::optional<TxnState> state_from_id(std::int8_t id);

// The coordinator's own errors; the broker maps them to Kafka's codes at the protocol edge.
enum class TxnError {
  none,
  concurrent_transactions,
  producer_fenced,
  invalid_producer_epoch,
  invalid_producer_id_mapping,
  invalid_txn_state,
  invalid_transaction_timeout,
  invalid_request,
  transaction_abortable,  // KIP-890: the partition is not in the transaction
  not_coordinator,
  coordinator_load_in_progress,
  coordinator_not_available,
  transactional_id_not_found,
  unknown_server_error,
};
const char* error_name(TxnError error);

inline constexpr std::int64_t kNoProducerId = -1;
inline constexpr std::int16_t kNoProducerEpoch = -1;
inline constexpr std::int16_t kMaxProducerEpoch = 32767;
// Kafka rotates the producer id one epoch early, so a fencing bump always has an epoch left.
inline bool epoch_exhausted(std::int16_t epoch) { return epoch >= kMaxProducerEpoch - 1; }

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  friend bool operator<(const TopicPartition& a, const TopicPartition& b) {
    return a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition;
  }
  friend bool operator==(const TopicPartition& a, const TopicPartition& b) {
    return a.topic == b.topic && a.partition == b.partition;
  }
};

struct TxnMetadata {
  std::string transactional_id;
  std::int64_t producer_id = kNoProducerId;
  std::int64_t last_producer_id = kNoProducerId;  // KIP-360: the id before a rotation
  std::int16_t producer_epoch = kNoProducerEpoch;
  std::int16_t last_producer_epoch = kNoProducerEpoch;  // KIP-360: lets a retried bump be answered
  std::int32_t timeout_ms = 0;
  TxnState state = TxnState::empty;
  std::set<TopicPartition> partitions;
  std::int64_t txn_start_ms = -1;  // -1 when no transaction is open
  std::int64_t last_update_ms = -1;
};

struct Transaction {
  TxnMetadata current;
  std::optional<TxnMetadata> pending;  // the transition being written
  // An epoch fence whose write failed already bumped the epoch in memory: do not bump it again.
  bool failed_epoch_fence = false;
};

// A new transactional id starts Empty with no epoch; the first InitProducerId bumps it to 0.
Transaction new_transaction(std::string transactional_id, std::int64_t producer_id, std::int32_t timeout_ms,
                            std::int64_t now_ms);

// Makes the pending transition current (after its record is replicated).
void complete_pending(Transaction& txn);
// Drops the pending transition (its write failed). An epoch fence's failure is remembered.
void abandon_pending(Transaction& txn);

struct ProducerIdAndEpoch {
  std::int64_t producer_id = kNoProducerId;
  std::int16_t epoch = kNoProducerEpoch;
};

// Hands out a fresh producer id, or nullopt when none can be had now.
using ProducerIdSource = std::function<std::optional<std::int64_t>()>;

struct InitOutcome {
  enum class Kind {
    error,  // answer `error`
    write,  // write the pending Empty transition, then answer its producer id and epoch
    fence,  // an ongoing transaction must be aborted first: call prepare_end(abort, from_client=false)
            // with the pending epoch, write that, and answer CONCURRENT_TRANSACTIONS (the client retries)
  };
  Kind kind = Kind::error;
  TxnError error = TxnError::none;
};

// InitProducerId for an existing transactional id. `expected` is KIP-360's producer id and epoch
// (absent for a fresh producer).
InitOutcome prepare_init(Transaction& txn, std::int32_t timeout_ms, const std::optional<ProducerIdAndEpoch>& expected,
                         const ProducerIdSource& new_producer_id, std::int64_t now_ms);

struct AddOutcome {
  enum class Kind { error, already_added, write };
  Kind kind = Kind::error;
  TxnError error = TxnError::none;
};
AddOutcome prepare_add_partitions(Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch,
                                  const std::set<TopicPartition>& partitions, std::int64_t now_ms);

// KIP-890 verify_only: per partition NONE when it is in the open transaction, TRANSACTION_ABORTABLE
// when not; or one error for all of them.
struct VerifyOutcome {
  TxnError error = TxnError::none;
  std::map<TopicPartition, TxnError> partitions;
};
VerifyOutcome verify_partitions(const Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch,
                                const std::set<TopicPartition>& partitions);

struct EndOutcome {
  enum class Kind {
    error,           // answer `error`
    already_ended,   // a retry of a completed end: answer NONE with the current id and epoch
    write,           // write the pending PrepareCommit/PrepareAbort, answer, then send markers
  };
  Kind kind = Kind::error;
  TxnError error = TxnError::none;
};
// EndTxn. `from_client` is false for the coordinator's own aborts (fencing, timeouts), which carry a
// bumped epoch.
EndOutcome prepare_end(Transaction& txn, std::int64_t producer_id, std::int16_t producer_epoch, bool commit,
                       bool from_client, std::int64_t now_ms);

// After PrepareCommit/PrepareAbort is written and every marker acknowledged: the pending
// CompleteCommit/CompleteAbort with no partitions. Fails (false) in any other state.
bool prepare_complete(Transaction& txn, std::int64_t now_ms);

// Whether the open transaction ran past its timeout and nothing is pending for it.
bool timed_out(const Transaction& txn, std::int64_t now_ms);
// Timeout expiry: fence the producer (epoch bump) and abort. False when it cannot be done now
// (nothing ongoing, something pending, or the epoch is at its maximum).
bool prepare_timeout_abort(Transaction& txn, std::int64_t now_ms);

// transactional.id.expiration.ms: an idle id (Empty or Complete*, nothing pending, not updated for
// `expiration_ms`) may be removed; prepare_dead makes Dead the pending state (written as a tombstone).
bool expired(const Transaction& txn, std::int64_t now_ms, std::int64_t expiration_ms);
bool prepare_dead(Transaction& txn, std::int64_t now_ms);

// Whether `to` may follow `from` (Kafka's TransactionState.validPreviousStates).
bool valid_transition(TxnState from, TxnState to);

}  // namespace bulwark::txn
