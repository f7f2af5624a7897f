// QuorumStore: what a KRaft node persists and what it gets back at start, including torn tails,
// damage, snapshots and failed fsyncs (through storage::FaultEnv).
#include "cluster/quorum_store.h"

#include <gtest/gtest.h>

#include "temp_dir.h"
#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "raft/node.h"
#include "storage/fault_env.h"

namespace bulwark::cluster {
namespace {

namespace fs = std::filesystem;
using raft::LogEntry;
using raft::LogWrite;
using raft::Ready;

using test::TempDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

QuorumStore open_store(const fs::path& dir, storage::Env* env = storage::Env::posix(), std::vector<raft::NodeId> voters = {1}) {
  auto store = QuorumStore::open(dir, "test", 1, std::move(voters), env);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return std::move(*store);
}

std::vector<LogEntry> data_entries(int64_t from, int64_t count, int32_t epoch) {
  std::vector<LogEntry> out;
  for (int64_t i = 0; i < count; ++i)
    out.push_back(LogEntry{from + i, epoch, raft::EntryKind::data, {static_cast<uint8_t>(from + i), 0xab}});
  return out;
}

Ready append_ready(uint64_t id, std::vector<LogEntry> entries) {
  Ready r;
  r.write_id = id;
  r.log_writes.push_back(LogWrite{LogWrite::Kind::append, std::move(entries), 0, {}});
  return r;
}

Ready write_ready(uint64_t id, LogWrite::Kind kind, int64_t offset, raft::SnapshotId snapshot = {}) {
  Ready r;
  r.write_id = id;
  r.log_writes.push_back(LogWrite{kind, {}, offset, snapshot});
  return r;
}

void apply_ok(QuorumStore& store, const Ready& ready) {
  auto durable = store.apply(ready);
  ASSERT_TRUE(durable.ok()) << durable.error().message;
}

int checkpoint_count(const fs::path& dir) {
  int n = 0;
  for (const auto& item : fs::directory_iterator(dir / kMetadataPartitionDir))
    if (item.path().extension() == ".checkpoint") ++n;
  return n;
}

// A driver with this store as its disk: applies every Ready and reports what it made durable.
void drive(raft::RaftNode& node, QuorumStore& store, int64_t now) {
  while (node.has_ready()) {
    Ready ready = node.take_ready();
    auto durable = store.apply(ready);
    ASSERT_TRUE(durable.ok()) << durable.error().message;
    if (durable->quorum_state) node.on_quorum_state_persisted(now, durable->write_id);
    if (durable->log) node.on_log_durable(now, durable->write_id);
  }
}

raft::Config single_voter_config() {
  raft::Config config;
  config.cluster_id = "test";
  config.node_id = 1;
  config.voters = {1};
  return config;
}

// A single voter elects itself and commits `proposals` proposals of two payloads each.
raft::RaftNode run_single_voter(QuorumStore& store, int proposals, int64_t& now) {
  auto created = raft::RaftNode::create(single_voter_config(), store.take_persisted(), 7, now);
  EXPECT_TRUE(created.ok());
  raft::RaftNode node = std::move(*created);
  while (node.role() != raft::Role::leader && now < 100000) {
    now += 10;
    node.tick(now);
    drive(node, store, now);
  }
  EXPECT_EQ(node.role(), raft::Role::leader);
  for (int i = 0; i < proposals; ++i) {
    auto result = node.propose(now, {{uint8_t(i), 1}, {uint8_t(i), 2}});
    EXPECT_EQ(result.error, raft::ErrorCode::none);
    drive(node, store, now);
  }
  return node;
}

std::vector<LogEntry> log_of(const raft::RaftNode& node) {
  std::vector<LogEntry> out;
  for (int64_t o = node.log().start_offset(); o < node.log().end_offset(); ++o) out.push_back(node.log().at(o));
  return out;
}

TEST(QuorumStore, FirstStartIsEmpty) {
  TempDir tmp;
  QuorumStore store = open_store(tmp.path());
  EXPECT_TRUE(fs::is_directory(tmp.path() / "__cluster_metadata-0"));
  raft::PersistedState persisted = store.take_persisted();
  EXPECT_FALSE(persisted.quorum_state);
  EXPECT_FALSE(persisted.snapshot.valid());
  EXPECT_TRUE(persisted.log.empty());
  EXPECT_EQ(store.log_end_offset(), 0);
}

TEST(QuorumStore, RealNodeStateSurvivesReopen) {
  TempDir tmp;
  int64_t now = 0;
  std::vector<LogEntry> expected_log;
  raft::QuorumStateData expected_state;
  {
    QuorumStore store = open_store(tmp.path());
    raft::RaftNode node = run_single_voter(store, 3, now);
    EXPECT_EQ(node.high_watermark(), node.log().end_offset());  // committed: durable on this store
    expected_log = log_of(node);
    ASSERT_EQ(expected_log.size(), 7u);  // LeaderChange + 3 x 2 data entries
    expected_state = raft::QuorumStateData{"test", 1, node.epoch(), node.voted_id(), 0, {1}};
  }
  QuorumStore store = open_store(tmp.path());
  raft::PersistedState persisted = store.take_persisted();
  ASSERT_TRUE(persisted.quorum_state);
  EXPECT_EQ(*persisted.quorum_state, expected_state);
  EXPECT_EQ(persisted.log, expected_log);

  // The restarted node continues the same log.
  auto created = raft::RaftNode::create(single_voter_config(), persisted, 8, now);
  ASSERT_TRUE(created.ok());
  raft::RaftNode node = std::move(*created);
  drive(node, store, now);
  // The only voter stands again at once: a new epoch, which starts with its LeaderChange entry.
  EXPECT_EQ(node.log().end_offset(), 8);
  node.propose(now, {{9}});
  drive(node, store, now);
  const std::vector<LogEntry> longer = log_of(node);
  QuorumStore reopened = open_store(tmp.path());
  EXPECT_EQ(reopened.take_persisted().log, longer);
}

TEST(QuorumStore, QuorumStateFileIsKafkaJson) {
  TempDir tmp;
  QuorumStore store = open_store(tmp.path());
  Ready ready;
  ready.write_id = 1;
  ready.quorum_state = raft::QuorumStateData{"test", 1, 4, 1, 0, {1}};
  auto durable = store.apply(ready);
  ASSERT_TRUE(durable.ok());
  EXPECT_TRUE(durable->quorum_state);
  EXPECT_FALSE(durable->log);
  EXPECT_EQ(slurp(tmp.path() / "__cluster_metadata-0" / "quorum-state"),
            R"({"clusterId":"test","leaderId":1,"leaderEpoch":4,"votedId":1,"appliedOffset":0,)"
            R"("currentVoters":[{"voterId":1}],"data_version":0})");
}

TEST(QuorumStore, TruncateMidBatchSurvivesReopen) {
  TempDir tmp;
  {
    QuorumStore store = open_store(tmp.path());
    apply_ok(store, append_ready(1, data_entries(0, 3, 1)));
    apply_ok(store, append_ready(2, data_entries(3, 3, 1)));
    apply_ok(store, write_ready(3, LogWrite::Kind::truncate, 4));
    EXPECT_EQ(store.log_end_offset(), 4);
  }
  {
    QuorumStore store = open_store(tmp.path());
    EXPECT_EQ(store.take_persisted().log, data_entries(0, 4, 1));
    apply_ok(store, append_ready(4, data_entries(4, 2, 2)));
    apply_ok(store, write_ready(5, LogWrite::Kind::truncate, 3));  // at a batch boundary
    apply_ok(store, append_ready(6, data_entries(3, 1, 3)));
  }
  QuorumStore store = open_store(tmp.path());
  auto expected = data_entries(0, 3, 1);
  expected.push_back(data_entries(3, 1, 3)[0]);
  EXPECT_EQ(store.take_persisted().log, expected);
}

TEST(QuorumStore, RefusesOtherVotersNamingBoth) {
  TempDir tmp;
  {
    QuorumStore store = open_store(tmp.path());
    Ready ready;
    ready.write_id = 1;
    ready.quorum_state = raft::QuorumStateData{"test", 1, 2, 1, 0, {1}};
    apply_ok(store, ready);
  }
  auto store = QuorumStore::open(tmp.path(), "test", 1, {1, 3}, storage::Env::posix());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::invalid_argument);
  EXPECT_NE(store.error().message.find("[1]"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("[1,3]"), std::string::npos) << store.error().message;
}

TEST(QuorumStore, RefusesOtherClusterIdNamingBoth) {
  TempDir tmp;
  {
    QuorumStore store = open_store(tmp.path());
    Ready ready;
    ready.write_id = 1;
    ready.quorum_state = raft::QuorumStateData{"test", 1, 2, 1, 0, {1}};
    apply_ok(store, ready);
  }
  auto store = QuorumStore::open(tmp.path(), "other-cluster", 1, {1}, storage::Env::posix());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("'test'"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("'other-cluster'"), std::string::npos) << store.error().message;
}

// Three batches of three entries; returns the file size after each.
std::vector<uintmax_t> three_batches(const fs::path& dir) {
  QuorumStore store = open_store(dir);
  std::vector<uintmax_t> sizes;
  for (int b = 0; b < 3; ++b) {
    apply_ok(store, append_ready(b + 1, data_entries(3 * b, 3, 1)));
    sizes.push_back(fs::file_size(store.log_path()));
  }
  return sizes;
}

TEST(QuorumStore, TornTailRecoversToLastWholeBatchAtEveryCut) {
  TempDir tmp;
  const auto sizes = three_batches(tmp.path());
  const fs::path log = tmp.path() / "__cluster_metadata-0" / "metadata.log";
  const std::string whole = slurp(log);
  for (uintmax_t cut = sizes[1]; cut < sizes[2]; ++cut) {
    spit(log, whole.substr(0, cut));
    QuorumStore store = open_store(tmp.path());
    EXPECT_EQ(store.take_persisted().log, data_entries(0, 6, 1)) << "cut at " << cut;
    EXPECT_EQ(fs::file_size(log), sizes[1]) << "cut at " << cut;
  }
  // A last batch of full length whose bytes did not all land (bad CRC) is torn too, and appending
  // after the recovery works.
  std::string garbled = whole;
  garbled[sizes[2] - 1] ^= 0x5a;
  spit(log, garbled);
  {
    QuorumStore store = open_store(tmp.path());
    EXPECT_EQ(store.take_persisted().log, data_entries(0, 6, 1));
    apply_ok(store, append_ready(9, data_entries(6, 2, 2)));
  }
  auto expected = data_entries(0, 6, 1);
  for (auto& e : data_entries(6, 2, 2)) expected.push_back(e);
  EXPECT_EQ(open_store(tmp.path()).take_persisted().log, expected);
}

TEST(QuorumStore, DamageBeforeTheTailIsAnErrorNamingTheOffset) {
  TempDir tmp;
  const auto sizes = three_batches(tmp.path());
  const fs::path log = tmp.path() / "__cluster_metadata-0" / "metadata.log";
  const std::string whole = slurp(log);
  std::string damaged = whole;
  damaged[sizes[1] - 1] ^= 0x01;  // inside the second batch's CRC-covered records
  spit(log, damaged);
  auto store = QuorumStore::open(tmp.path(), "test", 1, {1}, storage::Env::posix());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::corrupt);
  const std::string& message = store.error().message;
  EXPECT_NE(message.find("metadata.log"), std::string::npos) << message;
  EXPECT_NE(message.find("byte " + std::to_string(sizes[0])), std::string::npos) << message;
  EXPECT_NE(message.find("base offset 3"), std::string::npos) << message;
  EXPECT_EQ(slurp(log), damaged);  // nothing was cut off
}

TEST(QuorumStore, SnapshotAndDropPrefixReopenToSnapshotAndSuffix) {
  TempDir tmp;
  Bytes snapshot_bytes(kSnapshotChunkBytes * 2 + 12345);  // several data batches
  for (size_t i = 0; i < snapshot_bytes.size(); ++i) snapshot_bytes[i] = static_cast<uint8_t>(i * 7);
  {
    QuorumStore store = open_store(tmp.path());
    apply_ok(store, append_ready(1, data_entries(0, 6, 1)));
    ASSERT_TRUE(store.save_snapshot({2, 1}, Bytes{1, 2}).ok());
    ASSERT_TRUE(store.save_snapshot({4, 1}, snapshot_bytes).ok());
    EXPECT_EQ(checkpoint_count(tmp.path()), 1);  // the older one went once the newer was durable
    EXPECT_TRUE(fs::exists(tmp.path() / "__cluster_metadata-0" / "00000000000000000004-0000000001.checkpoint"));
    apply_ok(store, write_ready(2, LogWrite::Kind::drop_prefix, 4, {4, 1}));
    EXPECT_EQ(store.log_start_offset(), 4);
  }
  QuorumStore store = open_store(tmp.path());
  raft::PersistedState persisted = store.take_persisted();
  EXPECT_EQ(persisted.snapshot, (raft::SnapshotId{4, 1}));
  EXPECT_EQ(persisted.snapshot_bytes, snapshot_bytes);
  EXPECT_EQ(persisted.log, data_entries(4, 2, 1));
}

TEST(QuorumStore, RealNodeSnapshotDropsThePrefixAndRestarts) {
  TempDir tmp;
  int64_t now = 0;
  std::vector<LogEntry> suffix;
  raft::SnapshotId id;
  {
    QuorumStore store = open_store(tmp.path());
    raft::RaftNode node = run_single_voter(store, 3, now);
    auto snapshot_id = node.snapshot_id_at(5);
    ASSERT_TRUE(snapshot_id.ok()) << snapshot_id.error().message;
    id = *snapshot_id;
    ASSERT_TRUE(store.save_snapshot(id, Bytes{4, 2}).ok());
    ASSERT_TRUE(node.on_snapshot_saved(now, id, {4, 2}).ok());
    drive(node, store, now);  // carries the drop_prefix
    EXPECT_EQ(store.log_start_offset(), 5);
    suffix = log_of(node);
  }
  QuorumStore store = open_store(tmp.path());
  raft::PersistedState persisted = store.take_persisted();
  EXPECT_EQ(persisted.snapshot, id);
  EXPECT_EQ(persisted.snapshot_bytes, (Bytes{4, 2}));
  EXPECT_EQ(persisted.log, suffix);
  EXPECT_EQ(persisted.log.front().offset, 5);
  auto created = raft::RaftNode::create(single_voter_config(), persisted, 9, now);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->log().start_offset(), 5);
  EXPECT_EQ(created->log().end_offset(), 8);  // the restarted only voter's new LeaderChange
}

TEST(QuorumStore, LogAboveTheSnapshotIsAnError) {
  TempDir tmp;
  {
    QuorumStore store = open_store(tmp.path());
    apply_ok(store, append_ready(1, data_entries(0, 6, 1)));
    ASSERT_TRUE(store.save_snapshot({4, 1}, Bytes{1}).ok());
    apply_ok(store, write_ready(2, LogWrite::Kind::drop_prefix, 4, {4, 1}));
  }
  fs::remove(tmp.path() / "__cluster_metadata-0" / snapshot_file_name({4, 1}));
  auto store = QuorumStore::open(tmp.path(), "test", 1, {1}, storage::Env::posix());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::corrupt);
  EXPECT_NE(store.error().message.find("starts at offset 4"), std::string::npos) << store.error().message;
}

TEST(QuorumStore, InstalledSnapshotResetsTheLog) {
  TempDir tmp;
  {
    QuorumStore store = open_store(tmp.path());
    apply_ok(store, append_ready(1, data_entries(0, 6, 1)));
    ASSERT_TRUE(store.install_snapshot(raft::SnapshotInstall{{10, 2}, {5, 5, 5}}).ok());
    apply_ok(store, write_ready(2, LogWrite::Kind::reset, 10, {10, 2}));
    apply_ok(store, append_ready(3, data_entries(10, 2, 3)));
  }
  raft::PersistedState persisted = open_store(tmp.path()).take_persisted();
  EXPECT_EQ(persisted.snapshot, (raft::SnapshotId{10, 2}));
  EXPECT_EQ(persisted.snapshot_bytes, (Bytes{5, 5, 5}));
  EXPECT_EQ(persisted.log, data_entries(10, 2, 3));
}

TEST(QuorumStore, IncompleteSnapshotFilesAreIgnored) {
  TempDir tmp;
  const fs::path part_dir = tmp.path() / "__cluster_metadata-0";
  {
    QuorumStore store = open_store(tmp.path());
    apply_ok(store, append_ready(1, data_entries(0, 6, 1)));
    ASSERT_TRUE(store.save_snapshot({5, 1}, Bytes{9, 9}).ok());
    ASSERT_TRUE(store.save_snapshot({2, 1}, Bytes{1, 2}).ok());  // older than the latest: removed again
  }
  EXPECT_EQ(checkpoint_count(tmp.path()), 1);
  const std::string complete = slurp(part_dir / "00000000000000000005-0000000001.checkpoint");
  // A newer checkpoint without its footer, and an unfinished .part write.
  spit(part_dir / "00000000000000000006-0000000001.checkpoint", complete.substr(0, complete.size() - 10));
  spit(part_dir / "00000000000000000006-0000000001.checkpoint.part", complete);
  spit(part_dir / "metadata.log.rewrite", "half a rewrite");
  raft::PersistedState persisted = open_store(tmp.path()).take_persisted();
  EXPECT_EQ(persisted.snapshot, (raft::SnapshotId{5, 1}));
  EXPECT_EQ(persisted.snapshot_bytes, (Bytes{9, 9}));
  EXPECT_EQ(persisted.log, data_entries(0, 6, 1));
  EXPECT_FALSE(fs::exists(part_dir / "00000000000000000006-0000000001.checkpoint.part"));
  EXPECT_FALSE(fs::exists(part_dir / "metadata.log.rewrite"));
}

TEST(QuorumStore, FailedFsyncIsAnErrorAndLaterWritesAreRefused) {
  TempDir tmp;
  storage::FaultEnv env;
  QuorumStore store = open_store(tmp.path(), &env);
  apply_ok(store, append_ready(1, data_entries(0, 2, 1)));
  env.fail_sync(1, EIO);
  auto failed = store.apply(append_ready(2, data_entries(2, 2, 1)));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, ErrorKind::io);
  EXPECT_TRUE(store.failed());
  // The next fsync would succeed, but the store must not pretend the first never failed.
  auto refused = store.apply(append_ready(3, data_entries(4, 1, 1)));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("refusing"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(store.save_snapshot({2, 1}, Bytes{1}).ok());
  EXPECT_EQ(checkpoint_count(tmp.path()), 0);
}

TEST(QuorumStore, PowerLossKeepsWhatWasReportedDurable) {
  TempDir tmp;
  storage::FaultEnv env;
  {
    QuorumStore store = open_store(tmp.path(), &env);
    apply_ok(store, append_ready(1, data_entries(0, 3, 1)));
    env.fail_write(1, EIO, true);  // the next append never reaches the disk
    EXPECT_FALSE(store.apply(append_ready(2, data_entries(3, 3, 1))).ok());
    env.power_loss();
  }
  env.clear();
  EXPECT_EQ(open_store(tmp.path(), &env).take_persisted().log, data_entries(0, 3, 1));
}

}  // namespace
}  // namespace bulwark::cluster
