// Storage faults through the fault-injecting Env: failed fdatasync, full disk, power loss, damaged
// sealed segments, the descriptor budget and the log dir lock.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "storage/fault_env.h"
#include "storage/log.h"
#include "storage/segment.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

// One record; idempotent when producer_id >= 0.
Bytes batch(std::int64_t tag, std::int64_t producer_id = -1, std::int32_t sequence = -1) {
  wire::Record r;
  r.timestamp = 1700000000000 + tag;
  char value[64];
  std::snprintf(value, sizeof value, "value-%06lld-%s", static_cast<long long>(tag), std::string(40, 'q').c_str());
  r.value = Bytes(value, value + std::strlen(value));
  wire::BatchOptions options;
  options.producer_id = producer_id;
  options.producer_epoch = producer_id >= 0 ? 0 : -1;
  options.base_sequence = sequence;
  return *wire::encode_batch({r}, options);
}

AppendOptions now() {
  AppendOptions o;
  o.now_ms = 1700000000000;
  return o;
}

LogConfig synced_every_append() {
  LogConfig c;
  c.flush_interval_messages = 1;
  c.retention_ms = -1;
  return c;
}

struct FaultyLog {
  explicit FaultyLog(const fs::path& root, LogConfig config = synced_every_append()) {
    context = std::make_shared<LogDirContext>(root, &env, std::make_shared<FileCache>(8));
    OpenOptions options;
    options.context = context;
    auto opened = PartitionLog::open(root / "t-0", config, options);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    log = *opened;
  }
  FaultEnv env;
  std::shared_ptr<LogDirContext> context;
  std::shared_ptr<PartitionLog> log;
};

// Reopens a partition with the real Env and a fresh context (what a restart sees).
std::shared_ptr<PartitionLog> reopen(const fs::path& dir, LogConfig config = synced_every_append()) {
  auto log = PartitionLog::open(dir, config);
  EXPECT_TRUE(log.ok()) << log.error().message;
  return log.ok() ? *log : nullptr;
}

TEST(StorageFaults, FailedFsyncIsNeverAcknowledgedAndTakesTheDirOffline) {
  TempDir tmp;
  log::set_level(log::Level::error);
  FaultyLog f(tmp.path());
  ASSERT_TRUE(f.log->append(batch(0, 7, 0), now()).ok());
  const int syncs_before = f.env.syncs();

  f.env.fail_sync(1, EIO);
  auto failed = f.log->append(batch(1, 7, 1), now());
  ASSERT_FALSE(failed.ok()) << "a batch whose fdatasync failed was acknowledged";
  EXPECT_EQ(failed.code(), LogError::io);
  EXPECT_TRUE(f.context->offline());
  EXPECT_EQ(f.log->log_end_offset(), 1) << "the failed batch must not count as written";
  auto state = f.log->producer_state(7);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->batches.back().last_sequence, 0) << "the producer table recorded the failed batch";

  // The client's idempotent retry is not answered as a duplicate: it fails too, with no fsync that
  // could pretend the first failure did not happen.
  auto retry = f.log->append(batch(1, 7, 1), now());
  ASSERT_FALSE(retry.ok()) << "the retry of a failed batch was answered (duplicate: "
                           << (retry.ok() && retry->duplicate) << ")";
  EXPECT_EQ(retry.code(), LogError::io);
  EXPECT_EQ(f.env.syncs(), syncs_before) << "an fdatasync ran after the failed one";
  EXPECT_EQ(f.log->read(0, 1 << 20, 10).code(), LogError::io) << "an offline dir serves nothing";
  EXPECT_EQ(f.log->flush().code(), LogError::io);

  // A restart recovers what is on disk; the retry is then appended as new data.
  f.log->close();
  auto again = reopen(tmp.path() / "t-0");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->log_end_offset(), 1);
  auto appended = again->append(batch(1, 7, 1), now());
  ASSERT_TRUE(appended.ok()) << appended.error().message;
  EXPECT_FALSE(appended->duplicate);
  EXPECT_EQ(appended->base_offset, 1);
  log::set_level(log::Level::info);
}

// flush.messages=1 is a group commit: appends that arrive while an fdatasync runs share the next one,
// and none is answered before an fdatasync covered it.
TEST(StorageFaults, GroupCommitSharesOneFsyncBetweenConcurrentAppends) {
  TempDir tmp;
  FaultyLog f(tmp.path());
  f.env.slow_syncs(std::chrono::milliseconds(3));
  constexpr int kThreads = 8, kPerThread = 20;
  std::atomic<int> unsynced_acks{0}, failures{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto appended = f.log->append(batch(t * 1000 + i, 100 + t, i), now());
        if (!appended.ok()) ++failures;
        else if (f.log->recovery_point() <= appended->last_offset) ++unsynced_acks;
      }
    });
  for (auto& p : producers) p.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(unsynced_acks.load(), 0) << "an append was answered before an fdatasync covered it";
  EXPECT_EQ(f.log->log_end_offset(), kThreads * kPerThread);
  std::printf("group commit: %d appends, %d fdatasyncs\n", kThreads * kPerThread, f.env.syncs());
  EXPECT_LT(f.env.syncs(), kThreads * kPerThread / 2) << "appends waiting together did not share an fdatasync";
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(f.log->producer_state(100 + t)->batches.back().last_sequence, kPerThread - 1);

  // Every record is there once, at consecutive offsets.
  f.log->close();
  auto again = reopen(tmp.path() / "t-0");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->log_end_offset(), kThreads * kPerThread);
}

// When a group's fdatasync fails, no append of the group is acknowledged, and what was acknowledged
// before is exactly what a restart finds.
TEST(StorageFaults, GroupCommitFailedFsyncAcknowledgesNoneOfTheGroup) {
  TempDir tmp;
  log::set_level(log::Level::error);
  FaultyLog f(tmp.path());
  f.env.slow_syncs(std::chrono::milliseconds(2));
  f.env.fail_sync(6, EIO);
  constexpr int kThreads = 4, kPerThread = 15;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        if (f.log->append(batch(t * 1000 + i), now()).ok()) ++acknowledged;
    });
  for (auto& p : producers) p.join();
  EXPECT_TRUE(f.context->offline());
  EXPECT_GT(acknowledged.load(), 0);
  EXPECT_LT(acknowledged.load(), kThreads * kPerThread);
  EXPECT_EQ(f.log->log_end_offset(), acknowledged.load()) << "a batch of the failed group counts as written";
  f.log->close();
  auto again = reopen(tmp.path() / "t-0");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->log_end_offset(), acknowledged.load());
  log::set_level(log::Level::info);
}

TEST(StorageFaults, FailedFsyncOnRollTakesTheDirOffline) {
  TempDir tmp;
  log::set_level(log::Level::error);
  LogConfig config;  // default flush policy: only rolls sync
  config.segment_bytes = 200;
  config.retention_ms = -1;
  FaultyLog f(tmp.path(), config);
  ASSERT_TRUE(f.log->append(batch(0), now()).ok());
  ASSERT_TRUE(f.log->append(batch(1), now()).ok());  // the segment is full now
  f.env.fail_sync(1, EIO);
  auto rolled = f.log->append(batch(2), now());
  ASSERT_FALSE(rolled.ok());
  EXPECT_TRUE(f.context->offline());
  EXPECT_EQ(f.log->log_end_offset(), 2);
  log::set_level(log::Level::info);
}

class WriteErrors : public ::testing::TestWithParam<int> {};

// No space (ENOSPC, EDQUOT): the write is cut back off the file, fails alone, and the dir stays online
// and resumes when space returns. A device that fails writes (EIO, EROFS) takes the dir offline.
TEST_P(WriteErrors, FailTheWriteAndOnlyLackOfSpaceKeepsTheDirOnline) {
  const int error = GetParam();
  const bool no_space = is_out_of_space(error);
  TempDir tmp;
  log::set_level(log::Level::error);
  FaultyLog f(tmp.path());
  ASSERT_TRUE(f.log->append(batch(0, 3, 0), now()).ok());
  const auto size = f.log->size_bytes();

  f.env.fail_write(1, error, /*persistent=*/true);
  for (int i = 0; i < 5; ++i) {
    auto refused = f.log->append(batch(1, 3, 1), now());
    ASSERT_FALSE(refused.ok()) << strerror(error);
    EXPECT_EQ(refused.code(), LogError::io);
  }
  EXPECT_EQ(f.context->offline(), !no_space) << strerror(error);
  EXPECT_EQ(f.log->log_end_offset(), 1);
  EXPECT_EQ(fs::file_size(tmp.path() / "t-0" / segment_file_name(0, ".log")), static_cast<std::uintmax_t>(size))
      << "a partial batch was left in the file";
  EXPECT_EQ(f.log->producer_state(3)->batches.back().last_sequence, 0);

  f.env.clear();  // space is back (or the device is replaced)
  auto resumed = f.log->append(batch(1, 3, 1), now());
  if (no_space) {
    ASSERT_TRUE(resumed.ok()) << resumed.error().message;
    EXPECT_FALSE(resumed->duplicate);
    EXPECT_EQ(resumed->base_offset, 1);
    auto read = f.log->read(0, 1 << 20, 10);
    ASSERT_TRUE(read.ok());
    auto split = wire::split_batches(read->bytes);
    EXPECT_EQ(split->batches.size(), 2u);
  } else {
    EXPECT_FALSE(resumed.ok()) << "an offline dir accepted a write";
  }
  log::set_level(log::Level::info);
}

INSTANTIATE_TEST_SUITE_P(Errnos, WriteErrors, ::testing::Values(ENOSPC, EDQUOT, EIO, EROFS));

TEST(StorageFaults, PowerLossDropsOnlyUnsyncedData) {
  TempDir tmp;
  log::set_level(log::Level::error);
  {
    FaultyLog f(tmp.path());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(f.log->append(batch(i), now()).ok());
    auto lazy = synced_every_append();
    lazy.flush_interval_messages = 1000;
    f.log->set_config(lazy);
    for (int i = 10; i < 15; ++i) ASSERT_TRUE(f.log->append(batch(i), now()).ok());
    f.env.power_loss();  // the 5 unsynced batches are gone; the process dies with its files
  }
  auto again = reopen(tmp.path() / "t-0");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->log_end_offset(), 10) << "power loss must drop exactly the unsynced batches";
  auto read = again->read(0, 1 << 20, 10);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(wire::split_batches(read->bytes)->batches.size(), 10u);
  log::set_level(log::Level::info);
}

// Writes 60 one-record batches into segments of 3 batches each; returns the partition dir.
fs::path many_segments(const fs::path& root) {
  LogConfig config;
  config.segment_bytes = 3 * static_cast<std::int64_t>(batch(0).size());
  config.retention_ms = -1;
  auto log = PartitionLog::open(root / "t-0", config);
  EXPECT_TRUE(log.ok());
  for (int i = 0; i < 60; ++i) EXPECT_TRUE((*log)->append(batch(i), now()).ok());
  EXPECT_EQ((*log)->segment_count(), 20u);
  return root / "t-0";
}

void flip_byte(const fs::path& file, std::uint64_t at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

std::vector<std::int64_t> readable_offsets(PartitionLog& log) {
  std::vector<std::int64_t> out;
  std::int64_t next = log.log_start_offset();
  while (next < log.log_end_offset()) {
    auto read = log.read(next, 1 << 20, log.log_end_offset());
    if (!read.ok() || read->bytes.empty()) break;
    auto split = wire::split_batches(read->bytes);
    EXPECT_TRUE(split.ok());
    for (auto b : split->batches) {
      auto h = wire::parse_batch_header(b);
      EXPECT_TRUE(wire::batch_crc_ok(b)) << "a damaged batch was served";
      out.push_back(h->base_offset);
      next = h->last_offset() + 1;
    }
  }
  return out;
}

std::size_t quarantine_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) n += entry.path().string().find(".damaged-") != std::string::npos;
  return n;
}

TEST(StorageFaults, DamagedPayloadInASealedSegmentLosesOnlyThatBatch) {
  TempDir tmp;
  log::set_level(log::Level::error);
  const auto dir = many_segments(tmp.path());
  const auto batch_size = batch(0).size();
  // Segment 30 holds offsets 30..32: damage the payload of offset 31 (unclean start: CRC-checked).
  flip_byte(dir / segment_file_name(30, ".log"), batch_size + batch_size - 5);
  auto log = reopen(dir);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 60);
  EXPECT_EQ(log->segment_count(), 20u) << "later segments must be kept";
  auto offsets = readable_offsets(*log);
  std::vector<std::int64_t> want;
  for (int i = 0; i < 60; ++i) if (i != 31) want.push_back(i);
  EXPECT_EQ(offsets, want);
  EXPECT_EQ(quarantine_files(dir), 1u);
  log::set_level(log::Level::info);
}

TEST(StorageFaults, DamagedHeaderInASealedSegmentKeepsEveryLaterSegment) {
  TempDir tmp;
  log::set_level(log::Level::error);
  const auto dir = many_segments(tmp.path());
  const auto batch_size = batch(0).size();
  flip_byte(dir / segment_file_name(30, ".log"), batch_size + 16);  // magic of offset 31
  {
    LogConfig config;
    config.retention_ms = -1;
    auto log = PartitionLog::open(dir, config, OpenOptions{nullptr, /*verify_crc_from=*/INT64_MAX});
    ASSERT_TRUE(log.ok());  // headers are scanned even without CRC checks
    EXPECT_EQ((*log)->segment_count(), 20u);
    auto offsets = readable_offsets(**log);
    EXPECT_EQ(offsets.size(), 59u);
    EXPECT_EQ(std::count(offsets.begin(), offsets.end(), 31), 0);
    EXPECT_EQ(offsets.back(), 59);
  }
  EXPECT_EQ(quarantine_files(dir), 1u);
  log::set_level(log::Level::info);
}

TEST(StorageFaults, DamageNotCheckedAtOpenIsNeverServed) {
  TempDir tmp;
  log::set_level(log::Level::error);
  const auto dir = many_segments(tmp.path());
  const auto batch_size = batch(0).size();
  flip_byte(dir / segment_file_name(30, ".log"), batch_size + batch_size - 5);
  LogConfig config;
  config.retention_ms = -1;
  // As after a clean shutdown: sealed segments are not CRC-checked at open.
  auto log = PartitionLog::open(dir, config, OpenOptions{nullptr, INT64_MAX});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->read(31, 1 << 20, 60).code(), LogError::corrupt_message);
  auto before = (*log)->read(30, 1 << 20, 60);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(wire::split_batches(before->bytes)->batches.size(), 1u) << "the good batch before it is served alone";
  EXPECT_TRUE((*log)->read(32, 1 << 20, 60).ok());
  log::set_level(log::Level::info);
}

TEST(StorageFaults, RecoveryPointLimitsTheCrcCheckAtOpen) {
  TempDir tmp;
  log::set_level(log::Level::error);
  const auto dir = many_segments(tmp.path());
  const auto batch_size = batch(0).size();
  flip_byte(dir / segment_file_name(3, ".log"), batch_size + batch_size - 5);   // offset 4: below
  flip_byte(dir / segment_file_name(30, ".log"), batch_size + batch_size - 5);  // offset 31: above
  LogConfig config;
  config.retention_ms = -1;
  auto log = PartitionLog::open(dir, config, OpenOptions{nullptr, /*verify_crc_from=*/30});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(quarantine_files(dir), 1u) << "only the segment above the recovery point is checked at open";
  EXPECT_EQ((*log)->read(4, 1 << 20, 60).code(), LogError::corrupt_message) << "but the read path catches the other";
  auto after = (*log)->read(31, 1 << 20, 60);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(wire::parse_batch_header(wire::split_batches(after->bytes)->batches.at(0))->base_offset, 32);
  log::set_level(log::Level::info);
}

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

TEST(StorageFaults, SealedSegmentsShareABoundedSetOfDescriptors) {
  TempDir tmp;
  log::set_level(log::Level::warn);
  const std::size_t baseline = open_descriptors();
  LogConfig config;
  config.segment_bytes = 1;  // one batch per segment
  config.retention_ms = -1;
  LogManagerOptions options;
  options.max_open_segment_files = 4;
  {
    auto manager = LogManager::open({tmp.path()}, config, options);
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    auto log = (*manager)->get_or_create({"tiny", 0}, config);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 40; ++i) ASSERT_TRUE((*log)->append(batch(i), now()).ok());
    EXPECT_EQ((*log)->segment_count(), 40u);
    EXPECT_EQ(readable_offsets(**log).size(), 40u);
    EXPECT_LE(open_descriptors(), baseline + 3 + 4 + 1) << "descriptors grow with the number of segments";
  }
  auto manager = LogManager::open({tmp.path()}, config, options);  // recovery opens each segment in turn
  ASSERT_TRUE(manager.ok());
  EXPECT_EQ((*manager)->get({"tiny", 0})->log_end_offset(), 40);
  EXPECT_LE(open_descriptors(), baseline + 3 + 4 + 1);
  log::set_level(log::Level::info);
}

TEST(StorageFaults, AnEvictedFileStaysUsableWhileItsReaderHoldsIt) {
  TempDir tmp;
  FileCache cache(2);
  for (int i = 0; i < 3; ++i) {
    std::ofstream(tmp.path() / std::to_string(i)) << "file-" << i;
  }
  auto first = cache.get(Env::posix(), tmp.path() / "0");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(cache.get(Env::posix(), tmp.path() / "1").ok());
  ASSERT_TRUE(cache.get(Env::posix(), tmp.path() / "2").ok());  // evicts "0"
  EXPECT_EQ(cache.open_count(), 2u);
  std::uint8_t buffer[6];
  ASSERT_TRUE((*first)->read_exact(0, buffer, sizeof buffer).ok());
  EXPECT_EQ(std::string(buffer, buffer + 6), "file-0");
  EXPECT_EQ(cache.get(Env::posix(), tmp.path() / "missing").error().kind, ErrorKind::not_found);
}

TEST(StorageFaults, ASecondManagerOnTheSameLogDirIsRefused) {
  TempDir tmp;
  LogConfig config;
  auto first = LogManager::open({tmp.path() / "a"}, config);
  ASSERT_TRUE(first.ok());
  auto second = LogManager::open({tmp.path() / "b", tmp.path() / "a"}, config);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find((tmp.path() / "a").string()), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("in use by another process"), std::string::npos);
  first->reset();
  EXPECT_TRUE(LogManager::open({tmp.path() / "a"}, config).ok()) << "the lock goes with its holder";
}

TEST(StorageFaults, CleanShutdownMarkerAndRecoveryPoints) {
  TempDir tmp;
  LogConfig config;
  config.retention_ms = -1;
  {
    auto manager = LogManager::open({tmp.path()}, config);
    ASSERT_TRUE(manager.ok());
    auto log = (*manager)->get_or_create({"t", 0}, config);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->append(batch(i), now()).ok());
  }
  EXPECT_TRUE(fs::exists(tmp.path() / ".kafka_cleanshutdown"));
  auto text = std::ifstream(tmp.path() / "recovery-point-offset-checkpoint");
  std::string content((std::istreambuf_iterator<char>(text)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "0\n1\nt 0 5\n");
  auto manager = LogManager::open({tmp.path()}, config);
  ASSERT_TRUE(manager.ok());
  EXPECT_FALSE(fs::exists(tmp.path() / ".kafka_cleanshutdown")) << "a crash from now on is unclean";
  EXPECT_EQ(fs::status(tmp.path() / "t-0").permissions() & fs::perms::others_all, fs::perms::none);
  EXPECT_EQ(fs::status(tmp.path() / "t-0" / segment_file_name(0, ".log")).permissions() & fs::perms::others_all,
            fs::perms::none);
}

}  // namespace
}  // namespace bulwark::storage
