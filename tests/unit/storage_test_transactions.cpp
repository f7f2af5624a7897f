// Transactions in the partition log (storage/log.h): the first unstable offset with interleaved
// producers, the aborted-transaction index, markers' epoch checks, recovery after a restart and after a
// torn tail, truncation rolling back, retention and the follower path.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "storage/cleaner.h"
#include "storage/file.h"
#include "storage/log.h"
#include "temp_dir.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

LogConfig small_segments() {
  LogConfig c;
  c.segment_bytes = 300;  // a few batches per segment
  c.retention_ms = -1;
  return c;
}

Bytes data_batch(std::int64_t producer_id, std::int16_t epoch, std::int32_t sequence, bool transactional,
                 int records = 1) {
  std::vector<wire::Record> rs;
  for (int i = 0; i < records; ++i) {
    wire::Record r;
    r.offset = i;
    r.timestamp = wall_clock_ms();
    r.value = Bytes{1, 2, 3};
    rs.push_back(std::move(r));
  }
  wire::BatchOptions o;
  o.producer_id = producer_id;
  o.producer_epoch = epoch;
  o.base_sequence = sequence;
  o.transactional = transactional;
  auto batch = wire::encode_batch(rs, o);
  EXPECT_TRUE(batch.ok());
  return *batch;
}

AppendOptions leader() {
  AppendOptions o;
  o.now_ms = wall_clock_ms();
  return o;
}

AppendOptions coordinator() {
  AppendOptions o = leader();
  o.markers = true;
  return o;
}

std::int64_t append_ok(PartitionLog& log, const Bytes& batch, const AppendOptions& options) {
  auto r = log.append(batch, options);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->base_offset : -1;
}

std::int64_t marker(PartitionLog& log, std::int64_t pid, std::int16_t epoch, bool commit, std::int32_t coord_epoch = 0) {
  return append_ok(log, build_txn_marker_batch(pid, epoch, {commit, coord_epoch}, wall_clock_ms()), coordinator());
}

TEST(StorageTransactions, IdleProducersExpireButNotWithAnOpenTransaction) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  append_ok(**log, data_batch(7, 0, 0, false), leader());  // idempotent only
  append_ok(**log, data_batch(8, 0, 0, true), leader());   // a transaction left open
  append_ok(**log, data_batch(9, 0, 0, true), leader());
  marker(**log, 9, 0, true);  // and one committed
  const auto now = wall_clock_ms();
  EXPECT_EQ((*log)->expire_producers(now, 60'000), 0u) << "producers younger than the expiration went";
  EXPECT_EQ((*log)->expire_producers(now + 60'000, 60'000), 2u);
  EXPECT_FALSE((*log)->producer_state(7).has_value());
  EXPECT_FALSE((*log)->producer_state(9).has_value());
  ASSERT_TRUE((*log)->producer_state(8).has_value()) << "a producer with an open transaction was forgotten";
  EXPECT_EQ((*log)->first_unstable_offset(), 1) << "the open transaction no longer holds the LSO back";
  // A forgotten producer starts again as a new one: sequence 0 is taken, not a duplicate or out of order.
  auto again = (*log)->append(data_batch(7, 0, 0, false), leader());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->duplicate);
}

TEST(StorageTransactions, MarkerBatchRoundTrips) {
  const Bytes batch = build_txn_marker_batch(7, 3, {true, 12}, 1000);
  auto h = wire::parse_batch_header(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->is_control());
  EXPECT_TRUE(h->is_transactional());
  EXPECT_EQ(h->producer_id, 7);
  EXPECT_EQ(h->producer_epoch, 3);
  auto m = parse_txn_marker(batch);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->commit);
  EXPECT_EQ(m->coordinator_epoch, 12);
  EXPECT_FALSE(parse_txn_marker(data_batch(1, 0, 0, true)).has_value());
}

TEST(StorageTransactions, FirstUnstableOffsetFollowsInterleavedProducers) {
  TempDir dir;
  auto log = PartitionLog::open(dir.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  EXPECT_EQ(l.first_unstable_offset(), -1);
  append_ok(l, data_batch(-1, -1, -1, false), leader());       // 0: plain
  append_ok(l, data_batch(1, 0, 0, true), leader());           // 1: txn of producer 1
  append_ok(l, data_batch(2, 0, 0, true, 2), leader());        // 2-3: txn of producer 2
  append_ok(l, data_batch(1, 0, 1, true), leader());           // 4
  EXPECT_EQ(l.first_unstable_offset(), 1);
  EXPECT_EQ(l.producer_state(1)->txn_first_offset, 1);
  EXPECT_EQ(marker(l, 1, 0, true), 5);                         // 5: producer 1 commits
  EXPECT_EQ(l.first_unstable_offset(), 2);
  EXPECT_EQ(l.producer_state(1)->txn_first_offset, -1);
  append_ok(l, data_batch(1, 0, 2, true), leader());           // 6: producer 1's next transaction
  EXPECT_EQ(marker(l, 2, 0, false), 7);                        // 7: producer 2 aborts
  EXPECT_EQ(l.first_unstable_offset(), 6);
  EXPECT_EQ(marker(l, 1, 0, false), 8);                        // 8: producer 1 aborts
  EXPECT_EQ(l.first_unstable_offset(), -1);

  auto aborted = l.aborted_transactions(0, l.log_end_offset());
  ASSERT_EQ(aborted.size(), 2u);
  EXPECT_EQ(aborted[0], (AbortedTxn{2, 2, 7, 6}));  // producer 1's open transaction held the LSO at 6
  EXPECT_EQ(aborted[1], (AbortedTxn{1, 6, 8, 9}));
  // Overlap with a fetched range: last >= from and first < upper.
  EXPECT_EQ(l.aborted_transactions(8, 100).size(), 1u);
  EXPECT_EQ(l.aborted_transactions(0, 3).size(), 1u);
  EXPECT_TRUE(l.aborted_transactions(9, 100).empty());
  EXPECT_TRUE(l.aborted_transactions(0, 2).empty());
}

TEST(StorageTransactions, ClientsCannotWriteControlBatches) {
  TempDir dir;
  auto log = PartitionLog::open(dir.path() / "t-0", {});
  ASSERT_TRUE(log.ok());
  auto r = (*log)->append(build_txn_marker_batch(1, 0, {true, 0}, 0), leader());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), LogError::invalid_record);
  auto data = (*log)->append(data_batch(1, 0, 0, true), coordinator());
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.code(), LogError::invalid_record);
  EXPECT_EQ((*log)->log_end_offset(), 0);
}

TEST(StorageTransactions, MarkersAreFencedByProducerAndCoordinatorEpochs) {
  TempDir dir;
  auto log = PartitionLog::open(dir.path() / "t-0", {});
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  append_ok(l, data_batch(5, 2, 0, true), leader());
  marker(l, 5, 2, true, /*coord_epoch=*/4);
  auto old_coordinator = l.append(build_txn_marker_batch(5, 2, {false, 3}, 0), coordinator());
  ASSERT_FALSE(old_coordinator.ok());
  EXPECT_EQ(old_coordinator.code(), LogError::coordinator_fenced);
  auto old_epoch = l.append(build_txn_marker_batch(5, 1, {false, 4}, 0), coordinator());
  ASSERT_FALSE(old_epoch.ok());
  EXPECT_EQ(old_epoch.code(), LogError::invalid_producer_epoch);
  // A data batch from the old epoch is fenced as before.
  auto fenced = l.append(data_batch(5, 1, 0, true), leader());
  ASSERT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.code(), LogError::invalid_producer_epoch);
  // A timed-out transaction is aborted with a bumped epoch: accepted, and the epoch moves on.
  append_ok(l, data_batch(5, 2, 1, true), leader());
  marker(l, 5, 3, false, 4);
  EXPECT_EQ(l.producer_state(5)->epoch, 3);
  EXPECT_EQ(l.producer_state(5)->coordinator_epoch, 4);
  EXPECT_EQ(l.first_unstable_offset(), -1);
}

TEST(StorageTransactions, RecoveryRebuildsOpenTransactionsAndTheAbortIndex) {
  TempDir dir;
  const auto path = dir.path() / "t-0";
  {
    auto log = PartitionLog::open(path, small_segments());
    ASSERT_TRUE(log.ok());
    auto& l = **log;
    for (int i = 0; i < 3; ++i) {
      append_ok(l, data_batch(1, 0, i, true), leader());
      append_ok(l, data_batch(2, 0, i, true), leader());
    }
    marker(l, 1, 0, false, 1);  // 6
    append_ok(l, data_batch(3, 0, 0, true), leader());  // 7: left open
    marker(l, 2, 0, true, 1);   // 8
    EXPECT_GT(l.segment_count(), 2u);
    EXPECT_EQ(l.first_unstable_offset(), 7);
  }
  auto log = PartitionLog::open(path, small_segments());
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  EXPECT_EQ(l.first_unstable_offset(), 7);
  auto aborted = l.aborted_transactions(0, 100);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0], (AbortedTxn{1, 0, 6, 1}));  // producer 2's transaction from offset 1 was still open
  EXPECT_EQ(l.producer_state(1)->coordinator_epoch, 1);
  EXPECT_EQ(l.producer_state(3)->txn_first_offset, 7);
  // The coordinator epoch survives too: an older coordinator is still fenced.
  auto stale = l.append(build_txn_marker_batch(1, 0, {true, 0}, 0), coordinator());
  EXPECT_EQ(stale.code(), LogError::coordinator_fenced);
  marker(l, 3, 0, false, 1);
  EXPECT_EQ(l.first_unstable_offset(), -1);
  EXPECT_EQ(l.aborted_transactions(0, 100).size(), 2u);
}

TEST(StorageTransactions, TornMarkerLeavesTheTransactionOpen) {
  TempDir dir;
  const auto path = dir.path() / "t-0";
  std::uint64_t size_before_marker = 0;
  fs::path active;
  {
    auto log = PartitionLog::open(path, {});
    ASSERT_TRUE(log.ok());
    append_ok(**log, data_batch(1, 0, 0, true), leader());
    active = path / "00000000000000000000.log";
    size_before_marker = fs::file_size(active);
    marker(**log, 1, 0, false);
    EXPECT_EQ((*log)->aborted_transactions(0, 10).size(), 1u);
  }
  // The marker's write was torn: half of it reached the disk.
  const auto full = fs::file_size(active);
  fs::resize_file(active, size_before_marker + (full - size_before_marker) / 2);
  auto log = PartitionLog::open(path, {});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->log_end_offset(), 1);
  EXPECT_EQ((*log)->first_unstable_offset(), 0);
  EXPECT_TRUE((*log)->aborted_transactions(0, 10).empty());
}

TEST(StorageTransactions, TruncationRollsBackProducerStateAndTheIndex) {
  TempDir dir;
  auto log = PartitionLog::open(dir.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  append_ok(l, data_batch(1, 0, 0, true), leader());  // 0
  marker(l, 1, 0, false);                              // 1
  append_ok(l, data_batch(1, 0, 1, true), leader());  // 2
  marker(l, 1, 0, false);                              // 3
  append_ok(l, data_batch(2, 0, 0, true), leader());  // 4
  EXPECT_EQ(l.first_unstable_offset(), 4);
  ASSERT_TRUE(l.truncate_to(3).ok());  // the second abort and producer 2 go
  EXPECT_EQ(l.first_unstable_offset(), 2);
  EXPECT_EQ(l.aborted_transactions(0, 100).size(), 1u);
  EXPECT_FALSE(l.producer_state(2).has_value());
  ASSERT_TRUE(l.restart_at(10).ok());
  EXPECT_EQ(l.first_unstable_offset(), -1);
  EXPECT_TRUE(l.aborted_transactions(0, 100).empty());
}

TEST(StorageTransactions, RetentionDropsTheIndexWithTheSegments) {
  TempDir dir;
  LogConfig config = small_segments();
  config.segment_bytes = 160;  // about two batches per segment
  auto log = PartitionLog::open(dir.path() / "t-0", config);
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  for (int i = 0; i < 4; ++i) {
    append_ok(l, data_batch(1, 0, i, true), leader());
    marker(l, 1, 0, false);
  }
  ASSERT_EQ(l.aborted_transactions(0, 100).size(), 4u);
  ASSERT_GT(l.segment_count(), 2u);
  auto start = l.delete_records_before(5);
  ASSERT_TRUE(start.ok());
  for (const auto& a : l.aborted_transactions(0, 100)) EXPECT_GE(a.last_offset, l.segment_base_offsets().front());
  EXPECT_LT(l.aborted_transactions(0, 100).size(), 4u);
}

TEST(StorageTransactions, FollowerPathLearnsTransactionsFromCopiedBatches) {
  TempDir dir;
  auto leader_log = PartitionLog::open(dir.path() / "leader" / "t-0", {});
  auto follower_log = PartitionLog::open(dir.path() / "follower" / "t-0", {});
  ASSERT_TRUE(leader_log.ok() && follower_log.ok());
  append_ok(**leader_log, data_batch(9, 1, 0, true), leader());
  append_ok(**leader_log, data_batch(8, 1, 0, true), leader());
  marker(**leader_log, 9, 1, false, 2);
  auto copied = (*leader_log)->read(0, 1 << 20, (*leader_log)->log_end_offset());
  ASSERT_TRUE(copied.ok());
  AppendOptions follower;
  follower.assign_offsets = false;
  append_ok(**follower_log, copied->bytes, follower);
  EXPECT_EQ((*follower_log)->first_unstable_offset(), 1);
  EXPECT_EQ((*follower_log)->aborted_transactions(0, 10), (*leader_log)->aborted_transactions(0, 10));
  EXPECT_EQ((*follower_log)->producer_state(9)->coordinator_epoch, 2);
}

Bytes keyed_batch(std::int64_t producer_id, std::int32_t sequence, bool transactional, const std::string& key) {
  wire::Record r;
  r.timestamp = wall_clock_ms();
  r.key = Bytes(key.begin(), key.end());
  r.value = Bytes{1, 2, 3};
  wire::BatchOptions o;
  o.producer_id = producer_id;
  o.producer_epoch = producer_id >= 0 ? 0 : -1;
  o.base_sequence = producer_id >= 0 ? sequence : -1;
  o.transactional = transactional;
  auto batch = wire::encode_batch({r}, o);
  EXPECT_TRUE(batch.ok());
  return *batch;
}

TEST(StorageTransactions, CleanerStopsAtTheFirstOpenTransaction) {
  TempDir dir;
  LogConfig config = small_segments();
  config.segment_bytes = 100;  // one batch per segment
  config.compact = true;
  config.delete_by_retention = false;
  config.min_cleanable_dirty_ratio = 0.0;
  auto log = PartitionLog::open(dir.path() / "t-0", config);
  ASSERT_TRUE(log.ok());
  auto& l = **log;
  append_ok(l, keyed_batch(-1, -1, false, "k"), leader());  // 0
  append_ok(l, keyed_batch(-1, -1, false, "k"), leader());  // 1: supersedes 0
  append_ok(l, keyed_batch(4, 0, true, "k"), leader());     // 2: an open transaction
  append_ok(l, keyed_batch(-1, -1, false, "k"), leader());  // 3
  append_ok(l, keyed_batch(-1, -1, false, "x"), leader());  // 4
  ASSERT_EQ(l.first_unstable_offset(), 2);
  CleanRequest request;
  request.now_ms = wall_clock_ms();
  request.cleanable_end = l.log_end_offset();
  request.ignore_dirty_ratio = true;
  auto cleaned = l.clean(request);
  ASSERT_TRUE(cleaned.ok()) << cleaned.error().message;
  // Only [0, 2) was cleanable: offset 0 went, the transaction's record and everything after it stayed.
  EXPECT_LE(cleaned->dirty_end, 2);
  std::vector<std::int64_t> kept;
  for (std::int64_t offset = l.log_start_offset(); offset < l.log_end_offset();) {  // read() stays in one segment
    auto data = l.read(offset, 1 << 20, l.log_end_offset());
    ASSERT_TRUE(data.ok());
    auto split = wire::split_batches(data->bytes);
    ASSERT_TRUE(split.ok() && !split->batches.empty());
    for (ByteView b : split->batches) {
      auto records = wire::decode_records(b);
      ASSERT_TRUE(records.ok());
      for (const auto& r : *records) kept.push_back(r.offset);
      offset = wire::parse_batch_header(b)->last_offset() + 1;
    }
  }
  EXPECT_EQ(kept, (std::vector<std::int64_t>{1, 2, 3, 4}));
}

std::vector<std::int64_t> record_offsets(PartitionLog& l) {
  std::vector<std::int64_t> kept;
  for (std::int64_t offset = l.log_start_offset(); offset < l.log_end_offset();) {
    auto data = l.read(offset, 1 << 20, l.log_end_offset());
    EXPECT_TRUE(data.ok());
    if (!data.ok()) break;
    auto split = wire::split_batches(data->bytes);
    EXPECT_TRUE(split.ok() && !split->batches.empty());
    if (!split.ok() || split->batches.empty()) break;
    for (ByteView b : split->batches) {
      auto records = wire::decode_records(b);
      EXPECT_TRUE(records.ok());
      if (records.ok())
        for (const auto& r : *records) kept.push_back(r.offset);
      offset = wire::parse_batch_header(b)->last_offset() + 1;
    }
  }
  return kept;
}

TEST(StorageTransactions, CleanerDropsAbortedRecordsAndKeepsWhatTheySuperseded) {
  TempDir dir;
  LogConfig config = small_segments();
  config.segment_bytes = 100;  // one batch per segment
  config.compact = true;
  config.delete_by_retention = false;
  config.min_cleanable_dirty_ratio = 0.0;
  const auto path = dir.path() / "t-0";
  {
    auto log = PartitionLog::open(path, config);
    ASSERT_TRUE(log.ok());
    auto& l = **log;
    append_ok(l, keyed_batch(-1, -1, false, "k"), leader());  // 0: committed value of k
    append_ok(l, keyed_batch(4, 0, true, "k"), leader());     // 1: aborted value of k
    marker(l, 4, 0, false);                                    // 2
    append_ok(l, keyed_batch(-1, -1, false, "x"), leader());  // 3
    append_ok(l, keyed_batch(-1, -1, false, "y"), leader());  // 4 (active segment)
    CleanRequest request;
    request.now_ms = wall_clock_ms();
    request.cleanable_end = l.log_end_offset();
    request.ignore_dirty_ratio = true;
    auto cleaned = l.clean(request);
    ASSERT_TRUE(cleaned.ok()) << cleaned.error().message;
    EXPECT_TRUE(cleaned->cleaned) << cleaned->reason;
    // Offset 1 is gone (its header stays: producer 4's last batch); 0 was not superseded by it; the marker stays.
    EXPECT_EQ(record_offsets(l), (std::vector<std::int64_t>{0, 2, 3, 4}));
    EXPECT_EQ(l.aborted_transactions(0, 100).size(), 1u);
  }
  auto log = PartitionLog::open(path, config);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->first_unstable_offset(), -1);
  auto aborted = (*log)->aborted_transactions(0, 100);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].producer_id, 4);
  EXPECT_EQ(aborted[0].last_offset, 2);
}

}  // namespace
}  // namespace bulwark::storage
