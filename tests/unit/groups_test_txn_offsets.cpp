// Transactional offsets (TxnOffsetCommit, KIP-98/447) in the group coordinator: pending until the
// producer's marker, COMMIT/ABORT, ordering against plain commits as Kafka's record offsets decide,
// OffsetFetch require_stable, replay of transactional records and markers (an open transaction at the
// log end stays pending), generation checks of v3 (Kafka's validateOffsetCommit), and deletion/expiry keeping open transactions.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "groups/coordinator.h"
#include "groups/log_store.h"
#include "storage/log.h"
#include "wire/record_batch.h"

namespace bulwark::groups {
namespace {

class MemoryStore : public GroupStore {
 public:
  explicit MemoryStore(std::shared_ptr<std::vector<StoredRecord>> records) : records_(std::move(records)) {}
  Status append(const std::vector<StoredRecord>& records) override {
    records_->insert(records_->end(), records.begin(), records.end());
    return Status::success();
  }
  Result<std::vector<StoredRecord>> load() override { return *records_; }

 private:
  std::shared_ptr<std::vector<StoredRecord>> records_;
};

// What WriteTxnMarkers leaves in the log: a control record of the producer, EndTransactionMarker key.
StoredRecord marker(std::int64_t producer_id, bool committed) {
  StoredRecord r{Bytes{0, 0, 0, static_cast<std::uint8_t>(committed ? 1 : 0)}, std::nullopt};
  r.kind = committed ? RecordKind::commit_marker : RecordKind::abort_marker;
  r.producer_id = producer_id;
  r.producer_epoch = 0;
  return r;
}

class TxnOffsetsTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    coordinator.reset();
    auto c = GroupCoordinator::open(settings, std::make_unique<MemoryStore>(records), [this] { return now; });
    ASSERT_TRUE(c.ok()) << c.error().message;
    coordinator = std::move(*c);
  }

  std::vector<GroupError> txn_commit(std::int64_t producer_id, std::vector<PartitionOffset> offsets,
                                     const std::string& group = "g", std::int32_t generation = -1,
                                     const std::string& member = "",
                                     std::optional<std::string> instance = std::nullopt) {
    TxnCommitRequest r;
    r.group_id = group;
    r.producer_id = producer_id;
    r.producer_epoch = 3;
    r.generation_id = generation;
    r.member_id = member;
    r.group_instance_id = std::move(instance);
    r.offsets = std::move(offsets);
    return coordinator->txn_commit(r);
  }
  void plain_commit(const std::string& topic, std::int32_t partition, std::int64_t offset, const std::string& group = "g") {
    CommitRequest r;
    r.group_id = group;
    r.offsets = {{topic, partition, offset, -1, "", GroupError::none}};
    ASSERT_EQ(coordinator->commit(r), std::vector<GroupError>{GroupError::none});
  }
  // The marker as the broker delivers it: appended to the log first, then announced.
  void end_txn(std::int64_t producer_id, bool committed) {
    records->push_back(marker(producer_id, committed));
    coordinator->on_transaction_marker(producer_id, 0, committed);
  }
  PartitionOffset fetched(const std::string& topic, std::int32_t partition, const std::string& group = "g",
                          bool require_stable = false) {
    auto r = coordinator->fetch_offsets(group, std::vector<TopicPartitionKey>{{topic, partition}}, require_stable);
    EXPECT_EQ(r.offsets.size(), 1u);
    return r.offsets.empty() ? PartitionOffset{} : r.offsets[0];
  }
  std::int64_t offset_of(const std::string& topic, std::int32_t partition, const std::string& group = "g") {
    return fetched(topic, partition, group).offset;
  }

  static PartitionOffset po(const std::string& topic, std::int32_t partition, std::int64_t offset) {
    return {topic, partition, offset, 7, "meta", GroupError::none};
  }

  GroupSettings settings = [] {
    GroupSettings s;
    s.initial_rebalance_delay_ms = 0;
    s.offsets_retention_ms = 60000;
    s.offsets_retention_check_interval_ms = 1000;
    return s;
  }();
  std::int64_t now = 1'000'000;
  std::shared_ptr<std::vector<StoredRecord>> records = std::make_shared<std::vector<StoredRecord>>();
  std::unique_ptr<GroupCoordinator> coordinator;
};

TEST_F(TxnOffsetsTest, PendingOffsetsAreInvisibleUntilTheCommitMarker) {
  ASSERT_EQ(txn_commit(1, {po("t", 0, 10), po("t", 1, 11)}),
            (std::vector<GroupError>{GroupError::none, GroupError::none}));
  // Stored as one transactional append of the producer.
  ASSERT_EQ(records->size(), 2u);
  for (const auto& r : *records) {
    EXPECT_EQ(r.kind, RecordKind::transactional);
    EXPECT_EQ(r.producer_id, 1);
    EXPECT_EQ(r.producer_epoch, 3);
  }
  EXPECT_EQ(offset_of("t", 0), -1);
  EXPECT_TRUE(coordinator->fetch_offsets("g", std::nullopt).offsets.empty());
  end_txn(1, true);
  auto p0 = fetched("t", 0);
  EXPECT_EQ(p0.offset, 10);
  EXPECT_EQ(p0.leader_epoch, 7);
  EXPECT_EQ(p0.metadata, "meta");
  EXPECT_EQ(offset_of("t", 1), 11);
  EXPECT_EQ(coordinator->fetch_offsets("g", std::nullopt).offsets.size(), 2u);
}

TEST_F(TxnOffsetsTest, AbortDropsThePendingOffsets) {
  plain_commit("t", 0, 5);
  txn_commit(1, {po("t", 0, 10), po("t", 1, 11)});
  end_txn(1, false);
  EXPECT_EQ(offset_of("t", 0), 5);
  EXPECT_EQ(offset_of("t", 1), -1);
  end_txn(1, true);  // a late COMMIT of the same producer has nothing left to apply
  EXPECT_EQ(offset_of("t", 0), 5);
  EXPECT_EQ(offset_of("t", 1), -1);
}

TEST_F(TxnOffsetsTest, MarkersApplyToTheirProducerInEveryGroup) {
  txn_commit(1, {po("t", 0, 10)}, "g");
  txn_commit(1, {po("t", 0, 20)}, "h");
  txn_commit(2, {po("t", 1, 30)}, "g");
  end_txn(1, true);
  EXPECT_EQ(offset_of("t", 0, "g"), 10);
  EXPECT_EQ(offset_of("t", 0, "h"), 20);
  EXPECT_EQ(offset_of("t", 1, "g"), -1);  // producer 2 is still open
  end_txn(2, true);
  EXPECT_EQ(offset_of("t", 1, "g"), 30);
}

TEST_F(TxnOffsetsTest, ALaterPlainCommitWinsOverAnEarlierTransactionalOne) {
  txn_commit(1, {po("t", 0, 10)});
  plain_commit("t", 0, 20);  // appended after the transactional record
  EXPECT_EQ(offset_of("t", 0), 20);
  end_txn(1, true);
  EXPECT_EQ(offset_of("t", 0), 20);

  plain_commit("t", 1, 20);  // appended before the transactional record
  txn_commit(2, {po("t", 1, 10)});
  end_txn(2, true);
  EXPECT_EQ(offset_of("t", 1), 10);

  // The same order survives a reload.
  open();
  EXPECT_EQ(offset_of("t", 0), 20);
  EXPECT_EQ(offset_of("t", 1), 10);
}

TEST_F(TxnOffsetsTest, RequireStableAnswersUnstableOffsetCommitForPendingPartitions) {
  plain_commit("t", 0, 5);
  plain_commit("t", 1, 6);
  txn_commit(1, {po("t", 0, 10)});
  auto unstable = fetched("t", 0, "g", true);
  EXPECT_EQ(unstable.error, GroupError::unstable_offset_commit);
  EXPECT_EQ(unstable.offset, -1);
  EXPECT_EQ(fetched("t", 1, "g", true).error, GroupError::none);
  EXPECT_EQ(fetched("t", 1, "g", true).offset, 6);
  // Without require_stable the last committed offset is answered.
  EXPECT_EQ(fetched("t", 0, "g", false).error, GroupError::none);
  EXPECT_EQ(fetched("t", 0, "g", false).offset, 5);
  // All partitions of the group: the pending one carries the error.
  auto all = coordinator->fetch_offsets("g", std::nullopt, true);
  ASSERT_EQ(all.offsets.size(), 2u);
  for (const auto& o : all.offsets)
    EXPECT_EQ(o.error, o.partition == 0 ? GroupError::unstable_offset_commit : GroupError::none) << o.partition;
  // Another group is not affected.
  EXPECT_EQ(fetched("t", 0, "other", true).error, GroupError::none);
  end_txn(1, true);
  EXPECT_EQ(fetched("t", 0, "g", true).error, GroupError::none);
  EXPECT_EQ(fetched("t", 0, "g", true).offset, 10);
}

TEST_F(TxnOffsetsTest, ReplayAppliesMarkersAndKeepsAnOpenTransactionPending) {
  plain_commit("t", 0, 1);
  txn_commit(1, {po("t", 0, 10)});  // committed
  txn_commit(2, {po("t", 1, 20)});  // aborted
  txn_commit(3, {po("t", 2, 30)});  // open at the log end
  records->push_back(marker(1, true));
  records->push_back(marker(2, false));
  open();
  EXPECT_EQ(offset_of("t", 0), 10);
  EXPECT_EQ(offset_of("t", 1), -1);
  EXPECT_EQ(offset_of("t", 2), -1);
  EXPECT_EQ(fetched("t", 2, "g", true).error, GroupError::unstable_offset_commit);
  // The open transaction completes live after the load.
  end_txn(3, true);
  EXPECT_EQ(offset_of("t", 2), 30);
  open();
  EXPECT_EQ(offset_of("t", 2), 30);
  EXPECT_EQ(fetched("t", 2, "g", true).error, GroupError::none);
}

TEST_F(TxnOffsetsTest, GenerationChecksOfVersion3) {
  // A stable group of one member, generation 1.
  JoinRequest j;
  j.group_id = "g";
  j.protocol_type = "consumer";
  j.protocols = {{"range", Bytes{}}};
  j.session_timeout_ms = 10000;
  j.rebalance_timeout_ms = 10000;
  j.group_instance_id = "instance-1";
  std::optional<JoinResult> joined;
  coordinator->join(j, [&](JoinResult r) { joined = std::move(r); });
  coordinator->tick();
  ASSERT_TRUE(joined.has_value());
  ASSERT_EQ(joined->error, GroupError::none);
  const auto member = joined->member_id;
  const auto generation = joined->generation_id;
  const std::vector<GroupError> ok{GroupError::none};
  const auto stored_before = records->size();

  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "g", generation + 1, member, "instance-1"),
            std::vector<GroupError>{GroupError::illegal_generation});
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "g", generation, "someone-else"),
            std::vector<GroupError>{GroupError::unknown_member_id});
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "g", generation, "someone-else", "instance-1"),
            std::vector<GroupError>{GroupError::fenced_instance_id});
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "g", -1, "someone-else"),
            std::vector<GroupError>{GroupError::unknown_member_id});  // the group is not empty
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "nogroup", 1, "m"), std::vector<GroupError>{GroupError::unknown_member_id});
  EXPECT_EQ(txn_commit(4, {po("t", 0, 1)}, "empty", -1, "m"), ok);  // generation -1 into an empty group
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1)}, "g", generation, member, "instance-1"), ok);
  // v0-v2 (generation -1, no member): not checked, even in a non-empty group.
  EXPECT_EQ(txn_commit(1, {po("t", 1, 2)}), ok);
  // Refused ones left nothing pending.
  end_txn(1, true);
  EXPECT_EQ(offset_of("t", 0), 1);
  EXPECT_EQ(offset_of("t", 1), 2);
  EXPECT_EQ(records->size(), stored_before + 3u + 1u /* marker */);
}

TEST_F(TxnOffsetsTest, OversizedMetadataIsRefusedPerPartition) {
  auto big = po("t", 1, 2);
  big.metadata = std::string(settings.max_offset_metadata_bytes + 1, 'm');
  EXPECT_EQ(txn_commit(1, {po("t", 0, 1), big}),
            (std::vector<GroupError>{GroupError::none, GroupError::offset_metadata_too_large}));
  EXPECT_EQ(txn_commit(-1, {po("t", 0, 1)}), std::vector<GroupError>{GroupError::invalid_request});
}

TEST_F(TxnOffsetsTest, DeletionAndExpiryKeepOpenTransactions) {
  plain_commit("t", 0, 5);
  txn_commit(1, {po("t", 0, 10)});
  ASSERT_EQ(coordinator->delete_group("g"), GroupError::none);
  EXPECT_EQ(offset_of("t", 0), -1);
  EXPECT_EQ(fetched("t", 0, "g", true).error, GroupError::unstable_offset_commit);
  // Reloaded after the deletion, the transaction is still open.
  open();
  EXPECT_EQ(fetched("t", 0, "g", true).error, GroupError::unstable_offset_commit);
  end_txn(1, true);
  EXPECT_EQ(offset_of("t", 0), 10);

  // Expiry: the committed offset under an open transaction stays, and so does the group.
  txn_commit(2, {po("t", 0, 50)});
  plain_commit("t", 1, 7);
  now += settings.offsets_retention_ms + settings.offsets_retention_check_interval_ms;
  coordinator->tick();
  EXPECT_EQ(offset_of("t", 0), 10);
  EXPECT_EQ(offset_of("t", 1), -1);  // no transaction holds it: expired
  end_txn(2, true);
  EXPECT_EQ(offset_of("t", 0), 50);
}

// The bytes path: a transactional batch written by the coordinator and a control batch (what
// WriteTxnMarkers appends) in a real partition log, read back at load.
TEST(TxnOffsetsLog, TransactionalBatchesAndMarkersReplayFromThePartitionLog) {
  auto dir = std::filesystem::temp_directory_path() / ("groups_txn_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::int64_t now = 5000;
  Clock clock = [&now] { return now; };
  auto log = storage::PartitionLog::open(dir / "__consumer_offsets-0", {});
  ASSERT_TRUE(log.ok()) << log.error().message;
  auto append_marker = [&](std::int64_t producer_id, bool committed) {
    wire::Record r;
    r.offset = 0;
    r.timestamp = now;
    r.key = Bytes{0, 0, 0, static_cast<std::uint8_t>(committed ? 1 : 0)};
    r.value = Bytes{0, 0, 0, 0, 0, 0};  // version 0, coordinator epoch 0
    wire::BatchOptions options;
    options.transactional = true;
    options.control = true;
    options.producer_id = producer_id;
    options.producer_epoch = 3;
    auto batch = wire::encode_batch({r}, options);
    ASSERT_TRUE(batch.ok());
    storage::AppendOptions append;
    append.now_ms = now;
    append.markers = true;  // as WriteTxnMarkers appends them
    auto appended = (*log)->append(*batch, append);
    ASSERT_TRUE(appended.ok()) << appended.error().message;
  };
  {
    auto c = GroupCoordinator::open({}, std::make_unique<PartitionLogStore>(*log, clock), clock);
    ASSERT_TRUE(c.ok());
    for (std::int64_t producer : {1, 2, 3}) {
      TxnCommitRequest r;
      r.group_id = "g";
      r.producer_id = producer;
      r.producer_epoch = 3;
      r.offsets = {{"t", static_cast<std::int32_t>(producer), 100 + producer, -1, "", GroupError::none}};
      ASSERT_EQ((*c)->txn_commit(r), std::vector<GroupError>{GroupError::none});
    }
    append_marker(1, true);
    append_marker(2, false);
  }
  auto stored = read_group_records(**log);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 5u);
  EXPECT_EQ((*stored)[0].kind, RecordKind::transactional);
  EXPECT_EQ((*stored)[0].producer_id, 1);
  EXPECT_EQ((*stored)[0].producer_epoch, 3);
  EXPECT_EQ((*stored)[3].kind, RecordKind::commit_marker);
  EXPECT_EQ((*stored)[4].kind, RecordKind::abort_marker);
  EXPECT_EQ((*stored)[4].producer_id, 2);
  auto c = GroupCoordinator::open({}, std::make_unique<PartitionLogStore>(*log, clock), clock);
  ASSERT_TRUE(c.ok());
  auto offsets = (*c)->fetch_offsets("g", std::vector<TopicPartitionKey>{{"t", 1}, {"t", 2}, {"t", 3}}, true);
  ASSERT_EQ(offsets.offsets.size(), 3u);
  EXPECT_EQ(offsets.offsets[0].offset, 101);                                // committed
  EXPECT_EQ(offsets.offsets[1].offset, -1);                                 // aborted
  EXPECT_EQ(offsets.offsets[1].error, GroupError::none);
  EXPECT_EQ(offsets.offsets[2].error, GroupError::unstable_offset_commit);  // still open
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bulwark::groups
