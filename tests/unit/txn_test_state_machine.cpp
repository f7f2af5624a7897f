// The transaction coordinator's state machine (txn/metadata.h), case by case against Kafka 3.7's
// TransactionCoordinator: InitProducerId bumps and rotations (KIP-360), fencing, AddPartitions,
// EndTxn with its retries, KIP-890 verification, timeouts and expiration.
#include <gtest/gtest.h>

#include "txn/metadata.h"

namespace bulwark::txn {
namespace {

constexpr std::int64_t kPid = 1000;

struct Ids {
  std::int64_t next = 2000;
  int calls = 0;
  ProducerIdSource source() {
    return [this]() -> std::optional<std::int64_t> {
      ++calls;
      return next++;
    };
  }
};

TopicPartition tp(const std::string& topic, std::int32_t p) { return TopicPartition{topic, p}; }

// A fresh id after its first InitProducerId: Empty, epoch 0.
Transaction initialised(std::int64_t now = 100) {
  Transaction txn = new_transaction("t1", kPid, 60000, now);
  Ids ids;
  InitOutcome init = prepare_init(txn, 60000, std::nullopt, ids.source(), now);
  EXPECT_EQ(init.kind, InitOutcome::Kind::write);
  complete_pending(txn);
  return txn;
}

Transaction ongoing(std::int64_t now = 200) {
  Transaction txn = initialised();
  EXPECT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("a", 0), tp("a", 1)}, now).kind, AddOutcome::Kind::write);
  complete_pending(txn);
  return txn;
}

TEST(TxnStateMachine, FirstInitGivesEpochZero) {
  Transaction txn = new_transaction("t1", kPid, 60000, 5);
  EXPECT_EQ(txn.current.producer_epoch, kNoProducerEpoch);
  Ids ids;
  InitOutcome init = prepare_init(txn, 30000, std::nullopt, ids.source(), 10);
  ASSERT_EQ(init.kind, InitOutcome::Kind::write);
  ASSERT_TRUE(txn.pending);
  EXPECT_EQ(txn.pending->producer_id, kPid);
  EXPECT_EQ(txn.pending->producer_epoch, 0);
  EXPECT_EQ(txn.pending->timeout_ms, 30000);
  EXPECT_EQ(txn.pending->state, TxnState::empty);
  // Not current until written.
  EXPECT_EQ(txn.current.producer_epoch, kNoProducerEpoch);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_epoch, 0);
  EXPECT_FALSE(txn.pending);
  EXPECT_EQ(ids.calls, 0);
}

TEST(TxnStateMachine, SecondInitBumpsEpoch) {
  Transaction txn = initialised();
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_id, kPid);
  EXPECT_EQ(txn.current.producer_epoch, 1);
  EXPECT_EQ(txn.current.last_producer_epoch, kNoProducerEpoch);
}

TEST(TxnStateMachine, InitWhilePendingIsConcurrent) {
  Transaction txn = initialised();
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 300).kind, InitOutcome::Kind::write);
  InitOutcome again = prepare_init(txn, 60000, std::nullopt, ids.source(), 301);
  EXPECT_EQ(again.kind, InitOutcome::Kind::error);
  EXPECT_EQ(again.error, TxnError::concurrent_transactions);
}

TEST(TxnStateMachine, AbandonedWriteLeavesStateUnchanged) {
  Transaction txn = initialised();
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 300).kind, InitOutcome::Kind::write);
  abandon_pending(txn);
  EXPECT_EQ(txn.current.producer_epoch, 0);
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 301).kind, InitOutcome::Kind::write);
  EXPECT_EQ(txn.pending->producer_epoch, 1);
}

TEST(TxnStateMachine, Kip360ExpectedEpochBumpsAndRecordsLastEpoch) {
  Transaction txn = initialised();
  Ids ids;
  ProducerIdAndEpoch expected{kPid, 0};
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_epoch, 1);
  EXPECT_EQ(txn.current.last_producer_epoch, 0);
}

TEST(TxnStateMachine, Kip360RetriedBumpAnswersSameEpoch) {
  Transaction txn = initialised();
  Ids ids;
  ProducerIdAndEpoch expected{kPid, 0};
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  // The answer was lost; the producer retries with the epoch it had.
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 301).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_epoch, 1);
  EXPECT_EQ(txn.current.last_producer_epoch, 0);
}

TEST(TxnStateMachine, Kip360StaleEpochIsFenced) {
  Transaction txn = initialised();
  Ids ids;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 300 + i).kind, InitOutcome::Kind::write);
    complete_pending(txn);
  }
  ASSERT_EQ(txn.current.producer_epoch, 3);
  InitOutcome stale = prepare_init(txn, 60000, ProducerIdAndEpoch{kPid, 1}, ids.source(), 400);
  EXPECT_EQ(stale.kind, InitOutcome::Kind::error);
  EXPECT_EQ(stale.error, TxnError::producer_fenced);
  EXPECT_FALSE(txn.pending);
}

TEST(TxnStateMachine, Kip360UnknownProducerIdIsFenced) {
  Transaction txn = initialised();
  Ids ids;
  InitOutcome other = prepare_init(txn, 60000, ProducerIdAndEpoch{kPid + 77, 0}, ids.source(), 300);
  EXPECT_EQ(other.kind, InitOutcome::Kind::error);
  EXPECT_EQ(other.error, TxnError::producer_fenced);
}

TEST(TxnStateMachine, Kip360FreshMetadataAcceptsAnyExpectedProducer) {
  // A producer recovering from UNKNOWN_PRODUCER_ID against an id the coordinator just created.
  Transaction txn = new_transaction("t1", kPid, 60000, 5);
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, ProducerIdAndEpoch{555, 7}, ids.source(), 10).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_id, kPid);
  EXPECT_EQ(txn.current.producer_epoch, 0);
}

TEST(TxnStateMachine, ExhaustedEpochRotatesProducerId) {
  Transaction txn = initialised();
  txn.current.producer_epoch = kMaxProducerEpoch - 1;
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(ids.calls, 1);
  EXPECT_EQ(txn.current.producer_id, 2000);
  EXPECT_EQ(txn.current.producer_epoch, 0);
  EXPECT_EQ(txn.current.last_producer_id, kPid);
  EXPECT_EQ(txn.current.last_producer_epoch, kNoProducerEpoch);
}

TEST(TxnStateMachine, Kip360RotationRetryWithOldIdGetsNewId) {
  Transaction txn = initialised();
  txn.current.producer_epoch = kMaxProducerEpoch - 1;
  Ids ids;
  ProducerIdAndEpoch expected{kPid, kMaxProducerEpoch - 1};
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_id, 2000);
  EXPECT_EQ(txn.current.last_producer_epoch, kMaxProducerEpoch - 1);
  // Retry of the rotation (answer lost): the previous id with its exhausted epoch is accepted and
  // gets the same new id and epoch, without another id.
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 301).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(ids.calls, 1);
  EXPECT_EQ(txn.current.producer_id, 2000);
  EXPECT_EQ(txn.current.producer_epoch, 0);
}

TEST(TxnStateMachine, Kip360RetryOfTheBumpThatExhaustedTheEpoch) {
  Transaction txn = initialised();
  txn.current.producer_epoch = kMaxProducerEpoch - 2;
  Ids ids;
  ProducerIdAndEpoch expected{kPid, kMaxProducerEpoch - 2};
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 300).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  ASSERT_EQ(txn.current.producer_epoch, kMaxProducerEpoch - 1);
  // The answer was lost: the retry gets the same (now exhausted) epoch, not a new producer id.
  ASSERT_EQ(prepare_init(txn, 60000, expected, ids.source(), 301).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_id, kPid);
  EXPECT_EQ(txn.current.producer_epoch, kMaxProducerEpoch - 1);
  EXPECT_EQ(ids.calls, 0);
  // An older epoch is fenced; the current one rotates.
  EXPECT_EQ(prepare_init(txn, 60000, ProducerIdAndEpoch{kPid, 5}, ids.source(), 302).error, TxnError::producer_fenced);
  ASSERT_EQ(prepare_init(txn, 60000, ProducerIdAndEpoch{kPid, kMaxProducerEpoch - 1}, ids.source(), 303).kind,
            InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_id, 2000);
  EXPECT_EQ(txn.current.producer_epoch, 0);
}

TEST(TxnStateMachine, RotationWithoutProducerIdIsRetriable) {
  Transaction txn = initialised();
  txn.current.producer_epoch = kMaxProducerEpoch - 1;
  ProducerIdSource none = []() -> std::optional<std::int64_t> { return std::nullopt; };
  InitOutcome init = prepare_init(txn, 60000, std::nullopt, none, 300);
  EXPECT_EQ(init.kind, InitOutcome::Kind::error);
  EXPECT_EQ(init.error, TxnError::coordinator_not_available);
  EXPECT_FALSE(txn.pending);
}

TEST(TxnStateMachine, InitDuringOngoingFencesByAbortingFirst) {
  Transaction txn = ongoing();
  Ids ids;
  InitOutcome init = prepare_init(txn, 60000, std::nullopt, ids.source(), 500);
  ASSERT_EQ(init.kind, InitOutcome::Kind::fence);
  ASSERT_TRUE(txn.pending);
  EXPECT_EQ(txn.pending->state, TxnState::prepare_epoch_fence);
  EXPECT_EQ(txn.pending->producer_epoch, 1);
  // The coordinator's own abort with the bumped epoch.
  EndOutcome end = prepare_end(txn, kPid, 1, false, false, 500);
  ASSERT_EQ(end.kind, EndOutcome::Kind::write);
  EXPECT_EQ(txn.pending->state, TxnState::prepare_abort);
  EXPECT_EQ(txn.pending->producer_epoch, 1);
  EXPECT_EQ(txn.pending->partitions.size(), 2u);
  complete_pending(txn);
  // The old producer (epoch 0) is fenced now.
  AddOutcome add = prepare_add_partitions(txn, kPid, 0, {tp("a", 0)}, 501);
  EXPECT_EQ(add.error, TxnError::producer_fenced);
  EndOutcome old_end = prepare_end(txn, kPid, 0, true, true, 501);
  EXPECT_EQ(old_end.error, TxnError::producer_fenced);
  // While the abort completes the new producer's retry is CONCURRENT_TRANSACTIONS.
  EXPECT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 502).error, TxnError::concurrent_transactions);
  ASSERT_TRUE(prepare_complete(txn, 503));
  complete_pending(txn);
  EXPECT_EQ(txn.current.state, TxnState::complete_abort);
  EXPECT_TRUE(txn.current.partitions.empty());
  // Its retry then bumps a second time.
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 504).kind, InitOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.producer_epoch, 2);
  EXPECT_EQ(txn.current.state, TxnState::empty);
}

TEST(TxnStateMachine, FailedFenceWriteDoesNotBumpTwice) {
  Transaction txn = ongoing();
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 500).kind, InitOutcome::Kind::fence);
  ASSERT_EQ(prepare_end(txn, kPid, 1, false, false, 500).kind, EndOutcome::Kind::write);
  abandon_pending(txn);  // the PrepareAbort write failed
  EXPECT_TRUE(txn.failed_epoch_fence);
  EXPECT_EQ(txn.current.state, TxnState::ongoing);
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 600).kind, InitOutcome::Kind::fence);
  EXPECT_EQ(txn.pending->producer_epoch, 1);
  ASSERT_EQ(prepare_end(txn, kPid, 1, false, false, 600).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_FALSE(txn.failed_epoch_fence);
}

TEST(TxnStateMachine, ClientEndDuringFenceIsConcurrent) {
  Transaction txn = ongoing();
  Ids ids;
  ASSERT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 500).kind, InitOutcome::Kind::fence);
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 500).error, TxnError::concurrent_transactions);
  EXPECT_EQ(prepare_end(txn, kPid, 1, true, false, 500).error, TxnError::concurrent_transactions);
}

TEST(TxnStateMachine, InitDuringPrepareIsConcurrent) {
  Transaction txn = ongoing();
  ASSERT_EQ(prepare_end(txn, kPid, 0, true, true, 300).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  Ids ids;
  EXPECT_EQ(prepare_init(txn, 60000, std::nullopt, ids.source(), 301).error, TxnError::concurrent_transactions);
}

TEST(TxnStateMachine, AddPartitionsOpensTransaction) {
  Transaction txn = initialised();
  AddOutcome add = prepare_add_partitions(txn, kPid, 0, {tp("a", 0)}, 250);
  ASSERT_EQ(add.kind, AddOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.state, TxnState::ongoing);
  EXPECT_EQ(txn.current.txn_start_ms, 250);
  // More partitions keep the start time.
  ASSERT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("b", 3)}, 260).kind, AddOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.txn_start_ms, 250);
  EXPECT_EQ(txn.current.last_update_ms, 260);
  EXPECT_EQ(txn.current.partitions, (std::set<TopicPartition>{tp("a", 0), tp("b", 3)}));
}

TEST(TxnStateMachine, AddPartitionsAlreadyPresentNeedsNoWrite) {
  Transaction txn = ongoing();
  AddOutcome add = prepare_add_partitions(txn, kPid, 0, {tp("a", 1)}, 300);
  EXPECT_EQ(add.kind, AddOutcome::Kind::already_added);
  EXPECT_FALSE(txn.pending);
}

TEST(TxnStateMachine, AddPartitionsErrors) {
  Transaction txn = ongoing();
  EXPECT_EQ(prepare_add_partitions(txn, kPid + 1, 0, {tp("x", 0)}, 300).error, TxnError::invalid_producer_id_mapping);
  EXPECT_EQ(prepare_add_partitions(txn, kPid, 5, {tp("x", 0)}, 300).error, TxnError::producer_fenced);
  EXPECT_EQ(prepare_add_partitions(txn, kPid, 0, {}, 300).error, TxnError::invalid_request);
  ASSERT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("x", 0)}, 300).kind, AddOutcome::Kind::write);
  EXPECT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("y", 0)}, 300).error, TxnError::concurrent_transactions);
  complete_pending(txn);
  ASSERT_EQ(prepare_end(txn, kPid, 0, false, true, 301).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("y", 0)}, 302).error, TxnError::concurrent_transactions);
}

TEST(TxnStateMachine, CommitRunsPrepareThenComplete) {
  Transaction txn = ongoing(200);
  EndOutcome end = prepare_end(txn, kPid, 0, true, true, 400);
  ASSERT_EQ(end.kind, EndOutcome::Kind::write);
  EXPECT_EQ(txn.pending->state, TxnState::prepare_commit);
  complete_pending(txn);
  EXPECT_EQ(txn.current.partitions.size(), 2u);  // the markers still need them
  ASSERT_TRUE(prepare_complete(txn, 401));
  ASSERT_TRUE(txn.pending);
  EXPECT_EQ(txn.pending->state, TxnState::complete_commit);
  EXPECT_TRUE(txn.pending->partitions.empty());
  EXPECT_EQ(txn.pending->txn_start_ms, 200);
  complete_pending(txn);
  EXPECT_EQ(txn.current.state, TxnState::complete_commit);
  EXPECT_EQ(txn.current.producer_epoch, 0);  // EndTxn v0-3 (transactions v1) does not bump
}

TEST(TxnStateMachine, PrepareCompleteOnlyAfterPrepare) {
  Transaction txn = ongoing();
  EXPECT_FALSE(prepare_complete(txn, 300));
  EXPECT_FALSE(txn.pending);
  Transaction idle = initialised();
  EXPECT_FALSE(prepare_complete(idle, 300));
}

TEST(TxnStateMachine, EndRetriesAreIdempotent) {
  Transaction txn = ongoing();
  ASSERT_EQ(prepare_end(txn, kPid, 0, true, true, 300).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  // Retry while the markers go out.
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 301).error, TxnError::concurrent_transactions);
  ASSERT_TRUE(prepare_complete(txn, 302));
  complete_pending(txn);
  EndOutcome retry = prepare_end(txn, kPid, 0, true, true, 303);
  EXPECT_EQ(retry.kind, EndOutcome::Kind::already_ended);
  EXPECT_EQ(retry.error, TxnError::none);
  EXPECT_FALSE(txn.pending);
  // The opposite result is a state error.
  EXPECT_EQ(prepare_end(txn, kPid, 0, false, true, 304).error, TxnError::invalid_txn_state);
}

TEST(TxnStateMachine, AbortRetriesAreIdempotent) {
  Transaction txn = ongoing();
  ASSERT_EQ(prepare_end(txn, kPid, 0, false, true, 300).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(prepare_end(txn, kPid, 0, false, true, 301).error, TxnError::concurrent_transactions);
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 301).error, TxnError::invalid_txn_state);
  ASSERT_TRUE(prepare_complete(txn, 302));
  complete_pending(txn);
  EXPECT_EQ(prepare_end(txn, kPid, 0, false, true, 303).kind, EndOutcome::Kind::already_ended);
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 303).error, TxnError::invalid_txn_state);
}

TEST(TxnStateMachine, EndWithoutTransactionIsInvalidState) {
  Transaction txn = initialised();
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 300).error, TxnError::invalid_txn_state);
  EXPECT_EQ(prepare_end(txn, kPid, 0, false, true, 300).error, TxnError::invalid_txn_state);
}

TEST(TxnStateMachine, EndErrors) {
  Transaction txn = ongoing();
  EXPECT_EQ(prepare_end(txn, kPid + 1, 0, true, true, 300).error, TxnError::invalid_producer_id_mapping);
  EXPECT_EQ(prepare_end(txn, kPid, 1, true, true, 300).error, TxnError::producer_fenced);
  EXPECT_EQ(prepare_end(txn, kPid, -1, true, true, 300).error, TxnError::producer_fenced);
}

TEST(TxnStateMachine, NewTransactionAfterCommit) {
  Transaction txn = ongoing();
  ASSERT_EQ(prepare_end(txn, kPid, 0, true, true, 300).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  ASSERT_TRUE(prepare_complete(txn, 301));
  complete_pending(txn);
  ASSERT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("c", 0)}, 400).kind, AddOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(txn.current.state, TxnState::ongoing);
  EXPECT_EQ(txn.current.txn_start_ms, 400);
  EXPECT_EQ(txn.current.partitions, (std::set<TopicPartition>{tp("c", 0)}));
}

TEST(TxnStateMachine, VerifyPartitions) {
  Transaction txn = ongoing();
  VerifyOutcome v = verify_partitions(txn, kPid, 0, {tp("a", 0), tp("z", 9)});
  EXPECT_EQ(v.error, TxnError::none);
  EXPECT_EQ(v.partitions.at(tp("a", 0)), TxnError::none);
  EXPECT_EQ(v.partitions.at(tp("z", 9)), TxnError::transaction_abortable);
  EXPECT_EQ(verify_partitions(txn, kPid + 1, 0, {tp("a", 0)}).error, TxnError::invalid_producer_id_mapping);
  VerifyOutcome fenced = verify_partitions(txn, kPid, 3, {tp("a", 0)});
  EXPECT_EQ(fenced.error, TxnError::producer_fenced);
  EXPECT_EQ(fenced.partitions.at(tp("a", 0)), TxnError::producer_fenced);
  ASSERT_EQ(prepare_end(txn, kPid, 0, true, true, 300).kind, EndOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_EQ(verify_partitions(txn, kPid, 0, {tp("a", 0)}).error, TxnError::concurrent_transactions);
  ASSERT_TRUE(prepare_complete(txn, 301));
  complete_pending(txn);
  // After the commit the partition is no longer in a transaction.
  EXPECT_EQ(verify_partitions(txn, kPid, 0, {tp("a", 0)}).partitions.at(tp("a", 0)), TxnError::transaction_abortable);
}

TEST(TxnStateMachine, TimeoutAbortsWithEpochBump) {
  Transaction txn = initialised();
  txn.current.timeout_ms = 1000;
  ASSERT_EQ(prepare_add_partitions(txn, kPid, 0, {tp("a", 0)}, 5000).kind, AddOutcome::Kind::write);
  complete_pending(txn);
  EXPECT_FALSE(timed_out(txn, 6000));
  EXPECT_TRUE(timed_out(txn, 6001));
  EXPECT_FALSE(prepare_timeout_abort(txn, 6000));
  ASSERT_TRUE(prepare_timeout_abort(txn, 6001));
  EXPECT_EQ(txn.pending->state, TxnState::prepare_abort);
  EXPECT_EQ(txn.pending->producer_epoch, 1);
  EXPECT_FALSE(timed_out(txn, 7000));  // pending: not twice
  complete_pending(txn);
  // The producer that timed out is fenced.
  EXPECT_EQ(prepare_end(txn, kPid, 0, true, true, 7000).error, TxnError::producer_fenced);
  ASSERT_TRUE(prepare_complete(txn, 7001));
  complete_pending(txn);
  EXPECT_EQ(txn.current.state, TxnState::complete_abort);
}

TEST(TxnStateMachine, TimeoutAtMaxEpochAbortsWithoutBump) {
  Transaction txn = ongoing(0);
  txn.current.producer_epoch = kMaxProducerEpoch;
  txn.current.timeout_ms = 10;
  ASSERT_TRUE(prepare_timeout_abort(txn, 100));
  EXPECT_EQ(txn.pending->producer_epoch, kMaxProducerEpoch);
  EXPECT_EQ(txn.pending->state, TxnState::prepare_abort);
}

TEST(TxnStateMachine, IdleIdsExpire) {
  Transaction txn = initialised(100);
  EXPECT_FALSE(expired(txn, 1099, 1000));
  EXPECT_TRUE(expired(txn, 1100, 1000));
  ASSERT_TRUE(prepare_dead(txn, 1100));
  EXPECT_EQ(txn.pending->state, TxnState::dead);
  EXPECT_FALSE(expired(txn, 5000, 1000));
  Transaction busy = ongoing(100);
  EXPECT_FALSE(expired(busy, 1'000'000, 1000));
  EXPECT_FALSE(prepare_dead(busy, 1'000'000));
}

TEST(TxnStateMachine, TransitionTable) {
  EXPECT_TRUE(valid_transition(TxnState::empty, TxnState::ongoing));
  EXPECT_TRUE(valid_transition(TxnState::complete_abort, TxnState::empty));
  EXPECT_TRUE(valid_transition(TxnState::prepare_epoch_fence, TxnState::prepare_abort));
  EXPECT_FALSE(valid_transition(TxnState::prepare_epoch_fence, TxnState::prepare_commit));
  EXPECT_FALSE(valid_transition(TxnState::empty, TxnState::prepare_commit));
  EXPECT_FALSE(valid_transition(TxnState::prepare_commit, TxnState::complete_abort));
  EXPECT_FALSE(valid_transition(TxnState::ongoing, TxnState::dead));
  EXPECT_FALSE(valid_transition(TxnState::dead, TxnState::empty));
}

TEST(TxnStateMachine, StateNames) {
  EXPECT_STREQ(state_name(TxnState::prepare_epoch_fence), "PrepareEpochFence");
  EXPECT_STREQ(state_name(TxnState::complete_commit), "CompleteCommit");
  EXPECT_EQ(state_from_name("Ongoing"), TxnState::ongoing);
  EXPECT_EQ(state_from_name("ongoing"), std::nullopt);
  EXPECT_EQ(state_from_id(7), TxnState::prepare_epoch_fence);
  EXPECT_EQ(state_from_id(8), std::nullopt);
}

TEST(TxnStateMachineDeath, CompletingWithoutPendingStops) {
  Transaction txn = initialised();
  EXPECT_DEATH(complete_pending(txn), "txn_complete_needs_pending");
}

}  // namespace
}  // namespace bulwark::txn
