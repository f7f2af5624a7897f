#include <gtest/gtest.h>

#include "temp_dir.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/image.h"
#include "replication/fetcher.h"
#include "replication/partition.h"
#include "storage/log.h"
#include "wire/record_batch.h"

namespace bulwark::replication {
namespace {

using test::TempDir;

constexpr std::int32_t kSelf = 1;
constexpr std::int64_t kLagMs = 10000;
// Wall-clock-like times: a follower's "never caught up" is 0, far in the past of these.
constexpr std::int64_t kT0 = 1'000'000'000;

// A v2 batch of `records` records at base_offset, stamped with partitionLeaderEpoch when >= 0.
Bytes make_batch(int records, std::int64_t base_offset = 0, std::int32_t leader_epoch = -1) {
  std::vector<wire::Record> out;
  for (int i = 0; i < records; ++i) {
    wire::Record r;
    r.offset = base_offset + i;
    r.timestamp = 1000 + i;
    std::string value = "value-" + std::to_string(i);
    r.value = Bytes(value.begin(), value.end());
    out.push_back(std::move(r));
  }
  wire::BatchOptions options;
  options.base_offset = base_offset;
  options.partition_leader_epoch = leader_epoch;
  auto batch = wire::encode_batch(out, options);
  EXPECT_TRUE(batch.ok()) << batch.error().message;
  return *batch;
}

cluster::PartitionState state(std::int32_t leader, std::int32_t leader_epoch, std::vector<std::int32_t> replicas,
                              std::vector<std::int32_t> isr, std::int32_t partition_epoch = 0) {
  cluster::PartitionState s;
  s.partition = 0;
  s.leader = leader;
  s.leader_epoch = leader_epoch;
  s.replicas = std::move(replicas);
  s.isr = std::move(isr);
  s.partition_epoch = partition_epoch;
  return s;
}

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = storage::PartitionLog::open(tmp_.path() / "t-0", storage::LogConfig{});
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    log_ = *opened;
    partition_ = std::make_unique<Partition>(storage::TopicPartition{"t", 0}, kSelf, log_, 0, kLagMs);
  }

  // Appends `records` records as leader; returns whether the high watermark moved.
  bool lead_append(int records) {
    auto appended = partition_->append_as_leader(make_batch(records), storage::AppendOptions{});
    EXPECT_TRUE(appended.has_value());
    if (!appended) return false;
    EXPECT_TRUE(appended->result.ok()) << appended->result.error().message;
    return appended->high_watermark_moved;
  }

  TempDir tmp_;
  std::shared_ptr<storage::PartitionLog> log_;
  std::unique_ptr<Partition> partition_;
};

using Ids = std::vector<std::int32_t>;

TEST_F(PartitionTest, LeaderAloneInIsrMovesHighWatermarkAtOnce) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 4, {1, 2, 3}, {1}), kT0));
  EXPECT_EQ(partition_->role(), Role::leader);
  EXPECT_EQ(partition_->high_watermark(), 0);
  auto appended = partition_->append_as_leader(make_batch(3), storage::AppendOptions{});
  ASSERT_TRUE(appended.has_value());
  ASSERT_TRUE(appended->result.ok());
  EXPECT_EQ(appended->result->base_offset, 0);
  EXPECT_EQ(appended->result->last_offset, 2);
  EXPECT_TRUE(appended->high_watermark_moved);
  EXPECT_EQ(partition_->high_watermark(), 3);
  EXPECT_EQ(log_->latest_epoch(), 4) << "the leader stamps its epoch on the batch";
  EXPECT_TRUE(lead_append(2));
  EXPECT_EQ(partition_->high_watermark(), 5);
}

TEST_F(PartitionTest, HighWatermarkIsTheSmallestIsrLogEndAndNeverGoesBack) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2, 3}), kT0));
  EXPECT_FALSE(lead_append(10));
  EXPECT_EQ(partition_->high_watermark(), 0) << "followers have not fetched yet";

  EXPECT_FALSE(partition_->record_follower_fetch(2, 7, kT0 + 100));
  EXPECT_EQ(partition_->high_watermark(), 0) << "3 has fetched nothing";
  EXPECT_TRUE(partition_->record_follower_fetch(3, 4, kT0 + 100));
  EXPECT_EQ(partition_->high_watermark(), 4);
  EXPECT_TRUE(partition_->record_follower_fetch(3, 9, kT0 + 200));
  EXPECT_EQ(partition_->high_watermark(), 7);
  EXPECT_TRUE(partition_->record_follower_fetch(2, 10, kT0 + 300));
  EXPECT_EQ(partition_->high_watermark(), 9);
  EXPECT_TRUE(partition_->record_follower_fetch(3, 10, kT0 + 300));
  EXPECT_EQ(partition_->high_watermark(), 10);

  // A follower fetching from lower down later (it truncated) does not lower the high watermark.
  EXPECT_FALSE(partition_->record_follower_fetch(2, 5, kT0 + 400));
  EXPECT_EQ(partition_->high_watermark(), 10);
  EXPECT_EQ(partition_->followers().at(2).log_end_offset, 5);
  EXPECT_FALSE(lead_append(5));
  EXPECT_EQ(partition_->high_watermark(), 10);
}

TEST_F(PartitionTest, RecordFollowerFetchIgnoredOffLeaderAndForUnknownReplicas) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2}, {1, 2}), kT0));
  EXPECT_FALSE(lead_append(3));
  EXPECT_FALSE(partition_->record_follower_fetch(9, 3, kT0)) << "9 is no replica";
  EXPECT_EQ(partition_->followers().count(9), 0u);
  EXPECT_TRUE(partition_->record_follower_fetch(2, 3, kT0));
  ASSERT_TRUE(partition_->apply(state(2, 2, {1, 2}, {1, 2}), kT0));
  EXPECT_FALSE(partition_->record_follower_fetch(2, 3, kT0)) << "a follower tracks no fetches";
}

TEST_F(PartitionTest, CaughtUpFollowerOutsideIsrHoldsHighWatermark) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2}), kT0));
  EXPECT_FALSE(lead_append(10));
  // 3 fetches from the log end: caught up, so it counts although it is outside the ISR.
  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 100));
  EXPECT_EQ(partition_->followers().at(3).last_caught_up_ms, kT0 + 100);
  EXPECT_FALSE(lead_append(10));  // log end 20
  EXPECT_TRUE(partition_->record_follower_fetch(2, 20, kT0 + 200));
  EXPECT_EQ(partition_->high_watermark(), 10) << "3 (caught up, at 10) holds the high watermark";
  // 3 fetches from where the log end was at its previous fetch: caught up as of that fetch.
  EXPECT_TRUE(partition_->record_follower_fetch(3, 20, kT0 + 300));
  EXPECT_EQ(partition_->high_watermark(), 20);
}

TEST_F(PartitionTest, LaggingFollowerOutsideIsrDoesNotHoldHighWatermark) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2}), kT0));
  EXPECT_FALSE(lead_append(10));
  EXPECT_FALSE(partition_->record_follower_fetch(3, 2, kT0 + 100));  // behind: never caught up
  EXPECT_EQ(partition_->followers().at(3).last_caught_up_ms, 0);
  EXPECT_TRUE(partition_->record_follower_fetch(2, 10, kT0 + 100));
  EXPECT_EQ(partition_->high_watermark(), 10);

  // Caught up once, long ago: no longer counts.
  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 200));
  EXPECT_FALSE(lead_append(10));  // log end 20
  EXPECT_FALSE(partition_->record_follower_fetch(3, 12, kT0 + 200 + kLagMs + 1));
  EXPECT_EQ(partition_->followers().at(3).last_caught_up_ms, kT0 + 200);
  EXPECT_TRUE(partition_->record_follower_fetch(2, 20, kT0 + 200 + kLagMs + 2));
  EXPECT_EQ(partition_->high_watermark(), 20);
}

TEST_F(PartitionTest, LaggingIsrMemberLeavesButTheLeaderNever) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 3, {1, 2, 3}, {1, 2, 3}, 7), kT0));
  EXPECT_FALSE(partition_->next_isr_change(kT0 + kLagMs).has_value()) << "everyone counts as caught up at election";
  EXPECT_FALSE(partition_->record_follower_fetch(2, 0, kT0 + 5000));  // at the log end (0): caught up
  auto change = partition_->next_isr_change(kT0 + kLagMs + 1);
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->topic, "t");
  EXPECT_EQ(change->partition, 0);
  EXPECT_EQ(change->leader_epoch, 3);
  EXPECT_EQ(change->partition_epoch, 7);
  EXPECT_EQ(change->new_isr, (Ids{1, 2}));
  EXPECT_EQ(partition_->maximal_isr(), (Ids{1, 2, 3})) << "a shrink only counts once committed";

  EXPECT_FALSE(partition_->next_isr_change(kT0 + kLagMs + 2).has_value()) << "one change in flight";
  partition_->complete_isr_change(*change, std::make_pair(Ids{1, 2}, 8));
  EXPECT_EQ(partition_->isr(), (Ids{1, 2}));

  // Much later: a follower at the leader's log end stays in sync however long ago it fetched (Kafka's
  // isFollowerOutOfSync); once the log end moves past it, it lags. The leader always stays.
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 100 * kLagMs).has_value());
  lead_append(1);
  auto alone = partition_->next_isr_change(kT0 + 100 * kLagMs);
  ASSERT_TRUE(alone.has_value());
  EXPECT_EQ(alone->partition_epoch, 8);
  EXPECT_EQ(alone->new_isr, (Ids{1}));
}

TEST_F(PartitionTest, CaughtUpFollowerJoinsAndHighWatermarkWaitsForIt) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2}, 4), kT0));
  EXPECT_FALSE(lead_append(10));
  EXPECT_TRUE(partition_->record_follower_fetch(2, 10, kT0 + 100));
  EXPECT_EQ(partition_->high_watermark(), 10);
  EXPECT_FALSE(partition_->record_follower_fetch(3, 4, kT0 + 200));
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 300).has_value()) << "3 is below the high watermark";

  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 400));
  auto change = partition_->next_isr_change(kT0 + 500);
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->new_isr, (Ids{1, 2, 3}));
  EXPECT_EQ(change->partition_epoch, 4);
  EXPECT_EQ(partition_->isr(), (Ids{1, 2}));
  EXPECT_EQ(partition_->maximal_isr(), (Ids{1, 2, 3}));
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 600).has_value()) << "one change in flight";

  // 3 falls behind while the expansion is in flight: counted as a member, it holds the high
  // watermark (it would not as a mere caught-up follower: its last catch-up is older than lag_ms).
  EXPECT_FALSE(lead_append(5));  // log end 15
  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 400 + kLagMs + 1));
  EXPECT_FALSE(partition_->record_follower_fetch(2, 15, kT0 + 400 + kLagMs + 1));
  EXPECT_EQ(partition_->high_watermark(), 10);

  // The controller refuses: 3 is no member after all, and the high watermark moves on.
  partition_->complete_isr_change(*change, std::nullopt);
  EXPECT_EQ(partition_->isr(), (Ids{1, 2}));
  EXPECT_EQ(partition_->maximal_isr(), (Ids{1, 2}));
  EXPECT_EQ(partition_->high_watermark(), 15);
}

TEST_F(PartitionTest, JoiningFollowerMustReachTheLeaderEpochStart) {
  // As a follower: 10 records, high watermark 5.
  ASSERT_TRUE(partition_->apply(state(2, 1, {1, 2, 3}, {1, 2}), kT0));
  ASSERT_TRUE(partition_->append_as_follower(make_batch(10, 0, 1), 1, kT0)->ok());
  ASSERT_TRUE(partition_->update_follower_high_watermark(5));
  // Leader at epoch 2 from offset 10; the high watermark it had stays.
  ASSERT_TRUE(partition_->apply(state(kSelf, 2, {1, 2, 3}, {1, 2}), kT0));
  EXPECT_EQ(partition_->high_watermark(), 5);

  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 100));  // caught up
  EXPECT_FALSE(partition_->record_follower_fetch(3, 7, kT0 + 200));   // truncated back to 7
  EXPECT_EQ(partition_->followers().at(3).last_caught_up_ms, kT0 + 100);
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 300).has_value())
      << "7 is past the high watermark (5) but before the epoch start (10)";
  EXPECT_FALSE(partition_->record_follower_fetch(3, 10, kT0 + 400));
  auto change = partition_->next_isr_change(kT0 + 500);
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->new_isr, (Ids{1, 2, 3}));
  EXPECT_EQ(change->leader_epoch, 2);
}

TEST_F(PartitionTest, RefusedIsrChangeIsRetriedAndCommittedOneUpdatesIsr) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2}, 4), kT0));
  EXPECT_FALSE(partition_->record_follower_fetch(3, 0, kT0 + 100));  // at the (empty) log end
  auto first = partition_->next_isr_change(kT0 + 200);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->new_isr, (Ids{1, 2, 3}));
  partition_->complete_isr_change(*first, std::nullopt);
  EXPECT_EQ(partition_->isr(), (Ids{1, 2}));

  auto retry = partition_->next_isr_change(kT0 + 300);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->new_isr, (Ids{1, 2, 3}));
  // An answer at a partition epoch not newer than ours changes nothing.
  partition_->complete_isr_change(*retry, std::make_pair(Ids{1}, 4));
  EXPECT_EQ(partition_->isr(), (Ids{1, 2}));
  auto third = partition_->next_isr_change(kT0 + 400);
  ASSERT_TRUE(third.has_value());
  partition_->complete_isr_change(*third, std::make_pair(Ids{1, 2, 3}, 5));
  EXPECT_EQ(partition_->isr(), (Ids{1, 2, 3}));
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 500).has_value()) << "nothing left to change";
}

TEST_F(PartitionTest, NextIsrChangeOnlyOnLeader) {
  ASSERT_TRUE(partition_->apply(state(2, 1, {1, 2, 3}, {2}), kT0));
  EXPECT_FALSE(partition_->next_isr_change(kT0 + 100 * kLagMs).has_value());
}

TEST_F(PartitionTest, ApplyReportsRoleAndEpochChanges) {
  EXPECT_EQ(partition_->role(), Role::none);
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2}, {1, 2}, 1), kT0));
  EXPECT_EQ(partition_->role(), Role::leader);
  EXPECT_EQ(partition_->leader_id(), kSelf);
  EXPECT_EQ(partition_->leader_epoch(), 1);
  EXPECT_EQ(partition_->followers().size(), 1u);
  EXPECT_FALSE(partition_->apply(state(kSelf, 1, {1, 2}, {1, 2}, 1), kT0));

  EXPECT_TRUE(partition_->apply(state(2, 2, {1, 2}, {1, 2}, 2), kT0));
  EXPECT_EQ(partition_->role(), Role::follower);
  EXPECT_EQ(partition_->leader_id(), 2);
  EXPECT_EQ(partition_->leader_epoch(), 2);
  EXPECT_TRUE(partition_->followers().empty());
  EXPECT_FALSE(partition_->apply(state(2, 2, {1, 2}, {1, 2}, 2), kT0));

  EXPECT_TRUE(partition_->apply(state(kSelf, 3, {1, 2}, {1, 2}, 3), kT0));
  EXPECT_EQ(partition_->role(), Role::leader);
  EXPECT_EQ(partition_->leader_epoch(), 3);

  EXPECT_TRUE(partition_->apply(state(2, 4, {2, 3}, {2, 3}, 4), kT0));
  EXPECT_EQ(partition_->role(), Role::none) << "no replica any more";
}

TEST_F(PartitionTest, ApplyKeepsTheNewerIsr) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2, 3}, 5), kT0));
  EXPECT_FALSE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1}, 3), kT0));
  EXPECT_EQ(partition_->isr(), (Ids{1, 2, 3})) << "an older partition epoch does not overwrite";
  EXPECT_FALSE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2}, 6), kT0));
  EXPECT_EQ(partition_->isr(), (Ids{1, 2})) << "a newer one does, without a role change";
}

TEST_F(PartitionTest, ApplySettlesTheIsrChangeInFlight) {
  ASSERT_TRUE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1, 2, 3}, 5), kT0));
  ASSERT_TRUE(partition_->next_isr_change(kT0 + kLagMs + 1).has_value());
  EXPECT_FALSE(partition_->next_isr_change(kT0 + kLagMs + 2).has_value());
  EXPECT_FALSE(partition_->apply(state(kSelf, 1, {1, 2, 3}, {1}, 6), kT0 + kLagMs + 3));
  EXPECT_EQ(partition_->isr(), (Ids{1}));
  EXPECT_EQ(partition_->maximal_isr(), (Ids{1}));
}

TEST_F(PartitionTest, RoleGuardsOnAppendsAndTruncation) {
  ASSERT_TRUE(partition_->apply(state(2, 5, {1, 2}, {1, 2}), kT0));
  EXPECT_FALSE(partition_->append_as_leader(make_batch(1), storage::AppendOptions{}).has_value());
  EXPECT_FALSE(partition_->append_as_follower(make_batch(1), 4, kT0).has_value()) << "stale leader epoch";
  EXPECT_FALSE(partition_->append_as_follower(make_batch(1), 6, kT0).has_value()) << "unknown leader epoch";
  EXPECT_FALSE(partition_->truncate_as_follower(0, 4).has_value());
  EXPECT_FALSE(partition_->restart_as_follower(0, 4).has_value());
  EXPECT_EQ(log_->log_end_offset(), 0);

  ASSERT_TRUE(partition_->apply(state(kSelf, 6, {1, 2}, {1, 2}), kT0));
  EXPECT_FALSE(partition_->append_as_follower(make_batch(1), 6, kT0).has_value()) << "a leader";
  EXPECT_FALSE(partition_->truncate_as_follower(0, 6).has_value());
  EXPECT_FALSE(partition_->restart_as_follower(0, 6).has_value());
  EXPECT_FALSE(partition_->update_follower_high_watermark(0));
  EXPECT_EQ(log_->log_end_offset(), 0);
}

TEST_F(PartitionTest, FollowerKeepsLeaderOffsetsAndEpochs) {
  ASSERT_TRUE(partition_->apply(state(2, 5, {1, 2}, {1, 2}), kT0));
  auto restarted = partition_->restart_as_follower(100, 5);
  ASSERT_TRUE(restarted.has_value());
  ASSERT_TRUE(restarted->ok());
  EXPECT_EQ(log_->log_start_offset(), 100);

  auto first = partition_->append_as_follower(make_batch(3, 100, 4), 5, kT0);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->ok()) << first->error().message;
  auto second = partition_->append_as_follower(make_batch(2, 103, 5), 5, kT0);
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->ok()) << second->error().message;
  EXPECT_EQ(log_->log_end_offset(), 105);
  EXPECT_EQ(log_->leader_epochs(), (std::vector<storage::EpochStart>{{4, 100}, {5, 103}}));
  auto read = log_->read(103, 1 << 20, 105);
  ASSERT_TRUE(read.ok());
  auto header = wire::parse_batch_header(read->bytes);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->base_offset, 103);

  // Offsets below the log end are refused, not renumbered.
  auto behind = partition_->append_as_follower(make_batch(1, 104, 5), 5, kT0);
  ASSERT_TRUE(behind.has_value());
  EXPECT_FALSE(behind->ok());
  EXPECT_EQ(behind->code(), storage::LogError::invalid_argument);
  EXPECT_EQ(log_->log_end_offset(), 105);
  // A gap (the leader's log was compacted) is kept as the leader has it, as Kafka's follower does.
  auto gap = partition_->append_as_follower(make_batch(1, 200, 5), 5, kT0);
  ASSERT_TRUE(gap.has_value());
  ASSERT_TRUE(gap->ok()) << gap->error().message;
  EXPECT_EQ(log_->log_end_offset(), 201);
}

TEST_F(PartitionTest, FollowerHighWatermarkIsCappedByItsLogEnd) {
  ASSERT_TRUE(partition_->apply(state(2, 5, {1, 2}, {1, 2}), kT0));
  ASSERT_TRUE(partition_->append_as_follower(make_batch(3, 0, 5), 5, kT0)->ok());
  ASSERT_TRUE(partition_->append_as_follower(make_batch(2, 3, 5), 5, kT0)->ok());
  EXPECT_TRUE(partition_->update_follower_high_watermark(100));
  EXPECT_EQ(partition_->high_watermark(), 5);
  EXPECT_FALSE(partition_->update_follower_high_watermark(100));
  EXPECT_TRUE(partition_->update_follower_high_watermark(4)) << "a new leader may have a lower one";
  EXPECT_EQ(partition_->high_watermark(), 4);
  EXPECT_TRUE(partition_->update_follower_high_watermark(5));

  auto cut = partition_->truncate_as_follower(3, 5);
  ASSERT_TRUE(cut.has_value());
  ASSERT_TRUE(cut->ok());
  EXPECT_EQ(log_->log_end_offset(), 3);
  EXPECT_EQ(partition_->high_watermark(), 3) << "truncation lowers the high watermark with the log end";
}

// DeleteRecords (or retention) on the leader reaches the follower through the fetch's log start offset.
TEST_F(PartitionTest, FollowerMovesItsLogStartToTheLeadersUpToItsHighWatermark) {
  ASSERT_TRUE(partition_->apply(state(2, 5, {1, 2}, {1, 2}), kT0));
  wire::msg::FetchResponse::PartitionData data;
  data.records = make_batch(6, 0, 5);
  data.high_watermark = 4;
  data.log_start_offset = 0;
  ASSERT_TRUE(apply_fetched(*partition_, 5, data, [](const storage::TopicPartition&) {}));
  EXPECT_EQ(log_->log_end_offset(), 6);
  EXPECT_EQ(log_->log_start_offset(), 0);

  data.records = Bytes{};
  data.log_start_offset = 5;  // the leader deleted records below 5; this follower has only 4 committed
  ASSERT_TRUE(apply_fetched(*partition_, 5, data, [](const storage::TopicPartition&) {}));
  EXPECT_EQ(log_->log_start_offset(), 4) << "a follower's log start never passes its high watermark";
  data.high_watermark = 6;
  ASSERT_TRUE(apply_fetched(*partition_, 5, data, [](const storage::TopicPartition&) {}));
  EXPECT_EQ(log_->log_start_offset(), 5);
  EXPECT_FALSE(partition_->follow_log_start(6, 4).has_value()) << "an answer to an older epoch moved the log start";
}

TEST_F(PartitionTest, CheckpointedHighWatermarkIsClampedToTheLog) {
  ASSERT_TRUE(log_->append(make_batch(4), storage::AppendOptions{}).ok());
  Partition high(storage::TopicPartition{"t", 0}, kSelf, log_, 100, kLagMs);
  EXPECT_EQ(high.high_watermark(), 4);
  Partition low(storage::TopicPartition{"t", 0}, kSelf, log_, -5, kLagMs);
  EXPECT_EQ(low.high_watermark(), 0);
  Partition mid(storage::TopicPartition{"t", 0}, kSelf, log_, 2, kLagMs);
  EXPECT_EQ(mid.high_watermark(), 2);
}

TEST_F(PartitionTest, EndOffsetForEpochOnNewLeaderWithoutBatchesOfItsEpoch) {
  // As a follower: epochs 1 (offsets 0..2) and 3 (3..4) from the old leader.
  ASSERT_TRUE(partition_->apply(state(2, 3, {1, 2}, {1, 2}), kT0));
  ASSERT_TRUE(partition_->append_as_follower(make_batch(3, 0, 1), 3, kT0)->ok());
  ASSERT_TRUE(partition_->append_as_follower(make_batch(2, 3, 3), 3, kT0)->ok());
  using E = storage::EpochEndOffset;
  EXPECT_EQ(partition_->end_offset_for_epoch(3), (E{3, 5})) << "follower: the log's answer";
  EXPECT_EQ(partition_->end_offset_for_epoch(4), (E{})) << "follower: above the log's latest";

  // Leader at epoch 5, no batch of it yet: epoch 5 starts at 5.
  ASSERT_TRUE(partition_->apply(state(kSelf, 5, {1, 2}, {1, 2}), kT0));
  EXPECT_EQ(partition_->end_offset_for_epoch(5), (E{5, 5})) << "current epoch: the log end";
  EXPECT_EQ(partition_->end_offset_for_epoch(6), (E{})) << "above the current epoch";
  EXPECT_EQ(partition_->end_offset_for_epoch(4), (E{3, 5})) << "between latest and current: ends at its start";
  EXPECT_EQ(partition_->end_offset_for_epoch(3), (E{3, 5})) << "the log's latest";
  EXPECT_EQ(partition_->end_offset_for_epoch(2), (E{1, 3})) << "the log's answer";
  EXPECT_EQ(partition_->end_offset_for_epoch(0), (E{0, 0})) << "below the first epoch";
  EXPECT_EQ(partition_->end_offset_for_epoch(-1), (E{}));

  // Once it appended, the log knows the epoch and answers itself.
  EXPECT_FALSE(lead_append(2));  // offsets 5..6 at epoch 5
  EXPECT_EQ(log_->latest_epoch(), 5);
  EXPECT_EQ(partition_->end_offset_for_epoch(5), (E{5, 7}));
  EXPECT_EQ(partition_->end_offset_for_epoch(4), (E{3, 5}));
  EXPECT_EQ(partition_->end_offset_for_epoch(6), (E{}));
}

TEST_F(PartitionTest, EndOffsetForEpochOnNewLeaderWithNoEpochsAtAll) {
  ASSERT_TRUE(partition_->apply(state(2, 1, {1, 2}, {1, 2}), kT0));
  ASSERT_TRUE(partition_->restart_as_follower(50, 1)->ok());
  ASSERT_TRUE(partition_->apply(state(kSelf, 2, {1, 2}, {1, 2}), kT0));
  ASSERT_EQ(log_->latest_epoch(), -1);
  using E = storage::EpochEndOffset;
  EXPECT_EQ(partition_->end_offset_for_epoch(2), (E{2, 50}));
  EXPECT_EQ(partition_->end_offset_for_epoch(1), (E{1, 50})) << "an earlier epoch ends where this one starts";
  EXPECT_EQ(partition_->end_offset_for_epoch(0), (E{0, 50}));
  EXPECT_EQ(partition_->end_offset_for_epoch(3), (E{}));
  EXPECT_EQ(partition_->end_offset_for_epoch(-1), (E{}));
}

}  // namespace
}  // namespace bulwark::replication
