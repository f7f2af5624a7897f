// The log cleaner (storage/cleaner.h): last value per key, tombstones and delete.retention.ms, the
// cleanable bound, the dirty ratio and compaction lags, offsets, codecs, the key map budget, and a
// crash at each step of the swap.
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "storage/cleaner.h"
#include "storage/fault_env.h"
#include "storage/log.h"
#include "storage/segment.h"
#include "temp_dir.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

struct Written {
  std::int64_t offset;
  std::string key;
  std::optional<std::string> value;  // nullopt: tombstone
};

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

LogConfig compact_config() {
  LogConfig c;
  c.segment_bytes = 400;  // a few batches per segment
  c.retention_ms = -1;
  c.compact = true;
  c.delete_by_retention = false;
  c.min_cleanable_dirty_ratio = 0.0;
  c.delete_retention_ms = 60'000;
  return c;
}

// Appends one batch of (key, value) pairs; records what went where.
void append(PartitionLog& log, const std::vector<std::pair<std::string, std::optional<std::string>>>& kvs,
            std::vector<Written>& written, wire::Compression codec = wire::Compression::none) {
  std::vector<wire::Record> records;
  for (std::size_t i = 0; i < kvs.size(); ++i) {
    wire::Record r;
    r.offset = static_cast<std::int64_t>(i);
    r.timestamp = wall_clock_ms();
    r.key = to_bytes(kvs[i].first);
    if (kvs[i].second) r.value = to_bytes(*kvs[i].second);
    records.push_back(std::move(r));
  }
  wire::BatchOptions o;
  o.compression = codec;
  auto batch = wire::encode_batch(records, o);
  ASSERT_TRUE(batch.ok());
  AppendOptions options;
  options.now_ms = wall_clock_ms();
  auto appended = log.append(*batch, options);
  ASSERT_TRUE(appended.ok()) << appended.error().message;
  for (std::size_t i = 0; i < kvs.size(); ++i)
    written.push_back({appended->base_offset + static_cast<std::int64_t>(i), kvs[i].first, kvs[i].second});
}

// Rounds of every key, the value naming the round: "k<i>" = "r<round>".
void write_rounds(PartitionLog& log, int rounds, int keys, std::vector<Written>& written,
                  wire::Compression codec = wire::Compression::none) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::pair<std::string, std::optional<std::string>>> kvs;
    for (int k = 0; k < keys; ++k) kvs.push_back({"k" + std::to_string(k), "r" + std::to_string(round)});
    append(log, kvs, written, codec);
  }
}

struct ReadRecord {
  std::int64_t offset;
  std::optional<std::string> key, value;
  wire::Compression codec;
};

std::vector<ReadRecord> read_all(PartitionLog& log) {
  std::vector<ReadRecord> out;
  std::int64_t offset = log.log_start_offset();
  while (offset < log.log_end_offset()) {
    auto data = log.read(offset, 1 << 20, log.log_end_offset());
    EXPECT_TRUE(data.ok());
    if (!data.ok() || data->bytes.empty()) break;
    auto split = wire::split_batches(data->bytes);
    EXPECT_TRUE(split.ok());
    for (auto batch : split->batches) {
      auto h = wire::parse_batch_header(batch);
      EXPECT_TRUE(wire::batch_crc_ok(batch));
      auto records = wire::decode_records(batch);
      EXPECT_TRUE(records.ok());
      for (auto& r : *records) {
        ReadRecord rr{r.offset, std::nullopt, std::nullopt, h->compression()};
        if (r.key) rr.key = std::string(r.key->begin(), r.key->end());
        if (r.value) rr.value = std::string(r.value->begin(), r.value->end());
        out.push_back(rr);
      }
      offset = h->last_offset() + 1;
    }
  }
  return out;
}

// The truth: each key's last write (and its offset).
std::map<std::string, Written> last_per_key(const std::vector<Written>& written) {
  std::map<std::string, Written> last;
  for (const auto& w : written) last.insert_or_assign(w.key, w);
  return last;
}

// Every key's last value is in the log at its original offset (tombstones aside).
void expect_last_values(PartitionLog& log, const std::vector<Written>& written) {
  std::map<std::string, ReadRecord> seen;
  for (auto& r : read_all(log)) seen.insert_or_assign(*r.key, r);
  for (const auto& [key, w] : last_per_key(written)) {
    if (!w.value) continue;
    ASSERT_TRUE(seen.count(key)) << key;
    EXPECT_EQ(seen[key].offset, w.offset) << key;
    EXPECT_EQ(seen[key].value, w.value) << key;
  }
}

LogResult<CleanResult> clean(PartitionLog& log, std::int64_t end, std::int64_t now = wall_clock_ms()) {
  CleanRequest request;
  request.now_ms = now;
  request.cleanable_end = end;
  return log.clean(request);
}

TEST(Cleaner, KeepsTheLastValuePerKeyAtItsOffset) {
  TempDir dir;
  auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
  std::vector<Written> written;
  write_rounds(*log, 20, 5, written);
  ASSERT_GT(log->segment_count(), 4u);
  const auto before = read_all(*log);
  auto result = clean(*log, log->log_end_offset());
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_TRUE(result->cleaned) << result->reason;
  EXPECT_LT(result->records_out, result->records_in);
  expect_last_values(*log, written);
  const auto after = read_all(*log);
  EXPECT_LT(after.size(), before.size());
  // Every record left is one that was written there, and in the sealed part no key appears twice.
  std::map<std::int64_t, ReadRecord> original;
  for (const auto& r : before) original.emplace(r.offset, r);
  const auto active_base = log->segment_base_offsets().back();
  std::map<std::string, int> sealed_count;
  for (const auto& r : after) {
    ASSERT_TRUE(original.count(r.offset));
    EXPECT_EQ(original[r.offset].value, r.value);
    if (r.offset < active_base) {
      EXPECT_EQ(++sealed_count[*r.key], 1) << *r.key;
    }
  }
  // The active segment is untouched.
  std::size_t active_before = 0, active_after = 0;
  for (const auto& r : before) active_before += r.offset >= active_base;
  for (const auto& r : after) active_after += r.offset >= active_base;
  EXPECT_EQ(active_before, active_after);
  EXPECT_EQ(log->log_end_offset(), written.back().offset + 1);
  // A fetch at an offset compacted away answers with the next batch.
  auto data = log->read(1, 1 << 20, log->log_end_offset());
  ASSERT_TRUE(data.ok());
  ASSERT_FALSE(data->bytes.empty());
  EXPECT_GE(wire::parse_batch_header(data->bytes)->last_offset(), 1);
  // And it all survives a reopen.
  log.reset();
  auto reopened = *PartitionLog::open(dir.path() / "t-0", compact_config());
  expect_last_values(*reopened, written);
  EXPECT_EQ(read_all(*reopened).size(), after.size());
}

TEST(Cleaner, NeverTouchesAnythingAtOrPastTheBound) {
  TempDir dir;
  auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
  std::vector<Written> written;
  write_rounds(*log, 20, 5, written);
  const auto bases = log->segment_base_offsets();
  ASSERT_GT(bases.size(), 4u);
  const std::int64_t bound = bases[bases.size() / 2] + 1;  // inside a segment: that one stays too
  const auto before = read_all(*log);
  auto result = clean(*log, bound);
  ASSERT_TRUE(result.ok() && result->cleaned);
  std::vector<std::int64_t> past_before, past_after;
  for (const auto& r : before)
    if (r.offset >= bases[bases.size() / 2]) past_before.push_back(r.offset);
  for (const auto& r : read_all(*log))
    if (r.offset >= bases[bases.size() / 2]) past_after.push_back(r.offset);
  EXPECT_EQ(past_before, past_after);
  expect_last_values(*log, written);
  // Nothing below the bound holds a whole segment: nothing to do.
  auto none = clean(*log, bases[1]);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->cleaned);
}

TEST(Cleaner, TombstonesStayForDeleteRetentionThenGo) {
  TempDir dir;
  auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
  std::vector<Written> written;
  write_rounds(*log, 3, 4, written);
  append(*log, {{"k1", std::nullopt}, {"k2", std::nullopt}}, written);
  write_rounds(*log, 10, 1, written);  // k0 only: rolls the tombstones into a sealed segment
  auto tombstones = [&] {
    int n = 0;
    for (const auto& r : read_all(*log)) n += (*r.key == "k1" || *r.key == "k2");
    return n;
  };
  const auto now = wall_clock_ms();
  ASSERT_TRUE(clean(*log, log->log_end_offset(), now)->cleaned);
  EXPECT_EQ(tombstones(), 2);  // only the tombstones of k1, k2 remain
  for (const auto& r : read_all(*log))
    if (*r.key == "k1" || *r.key == "k2") {
      EXPECT_FALSE(r.value);
    }
  // Within delete.retention.ms: nothing due.
  auto early = clean(*log, log->log_end_offset(), now + 1000);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->cleaned);
  EXPECT_EQ(tombstones(), 2);
  // Past it: the tombstones are due on their own (no new dirty data needed) and go.
  auto late = clean(*log, log->log_end_offset(), now + compact_config().delete_retention_ms + 5000);
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE(late->cleaned) << late->reason;
  EXPECT_EQ(tombstones(), 0);
  expect_last_values(*log, written);
}

TEST(Cleaner, HonoursTheDirtyRatio) {
  TempDir dir;
  auto config = compact_config();
  config.min_cleanable_dirty_ratio = 0.9;
  auto log = *PartitionLog::open(dir.path() / "t-0", config);
  std::vector<Written> written;
  write_rounds(*log, 20, 5, written);
  ASSERT_TRUE(clean(*log, log->log_end_offset())->cleaned);  // all dirty: ratio 1
  write_rounds(*log, 2, 5, written);                          // a little more dirt
  auto small = clean(*log, log->log_end_offset());
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(small->cleaned);
  EXPECT_NE(small->reason.find("ratio"), std::string::npos);
  CleanRequest forced;
  forced.now_ms = wall_clock_ms();
  forced.cleanable_end = log->log_end_offset();
  forced.ignore_dirty_ratio = true;
  EXPECT_TRUE(log->clean(forced)->cleaned);
  expect_last_values(*log, written);
}

TEST(Cleaner, HonoursMinAndMaxCompactionLag) {
  TempDir dir;
  auto config = compact_config();
  config.min_compaction_lag_ms = 3'600'000;
  auto log = *PartitionLog::open(dir.path() / "t-0", config);
  std::vector<Written> written;
  write_rounds(*log, 20, 5, written);
  auto young = clean(*log, log->log_end_offset());
  ASSERT_TRUE(young.ok());
  EXPECT_FALSE(young->cleaned);  // every segment is younger than the lag
  EXPECT_TRUE(clean(*log, log->log_end_offset(), wall_clock_ms() + 7'200'000)->cleaned);

  // max.compaction.lag.ms forces a cleaning below the ratio.
  config.min_compaction_lag_ms = 0;
  config.min_cleanable_dirty_ratio = 1.0;
  log->set_config(config);
  write_rounds(*log, 2, 5, written);
  EXPECT_FALSE(clean(*log, log->log_end_offset())->cleaned);
  config.max_compaction_lag_ms = 1;
  log->set_config(config);
  EXPECT_TRUE(clean(*log, log->log_end_offset(), wall_clock_ms() + 1000)->cleaned);
  expect_last_values(*log, written);
}

TEST(Cleaner, RecompressesWithTheBatchCodec) {
  for (auto codec : {wire::Compression::gzip, wire::Compression::zstd, wire::Compression::lz4}) {
    TempDir dir;
    auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
    std::vector<Written> written;
    write_rounds(*log, 20, 8, written, codec);
    ASSERT_TRUE(clean(*log, log->log_end_offset())->cleaned);
    expect_last_values(*log, written);
    for (const auto& r : read_all(*log)) EXPECT_EQ(r.codec, codec);
  }
}

TEST(Cleaner, AFullKeyMapCleansInSeveralPasses) {
  TempDir dir;
  auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
  std::vector<Written> written;
  write_rounds(*log, 20, 5, written);
  CleanRequest request;
  request.now_ms = wall_clock_ms();
  request.cleanable_end = log->log_end_offset();
  request.key_map_bytes = kKeyMapBytesPerEntry * 6;  // one batch of 5 keys at a time
  request.ignore_dirty_ratio = true;
  int passes = 0;
  std::int64_t dirty = log->first_dirty_offset();
  while (passes < 100) {
    auto result = log->clean(request);
    ASSERT_TRUE(result.ok()) << result.error().message;
    if (!result->cleaned) break;
    ++passes;
    EXPECT_GT(log->first_dirty_offset(), dirty);
    dirty = log->first_dirty_offset();
  }
  EXPECT_GT(passes, 2);
  expect_last_values(*log, written);
}

// A crash (the process stops) after each step of the swap: reopening gives the old segments or the
// new ones, every key's last value intact, and no *.cleaned / *.swap left.
TEST(Cleaner, ACrashAtEachStepOfTheSwapLosesNothing) {
  for (const char* step : {"cleaned", "swap", "deleted", "renamed"}) {
    SCOPED_TRACE(step);
    TempDir dir;
    std::vector<Written> written;
    {
      auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
      write_rounds(*log, 20, 5, written);
      CleanRequest request;
      request.now_ms = wall_clock_ms();
      request.cleanable_end = log->log_end_offset();
      request.crash_after = [step](std::string_view at) { return at == step; };
      auto result = log->clean(request);
      EXPECT_FALSE(result.ok());
      bool leftovers = false;
      for (const auto& e : fs::directory_iterator(dir.path() / "t-0"))
        leftovers |= e.path().string().ends_with(".cleaned") || e.path().string().ends_with(".swap");
      if (std::string_view(step) != "renamed") {
        EXPECT_TRUE(leftovers);
      }
    }
    auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
    expect_last_values(*log, written);
    EXPECT_EQ(log->log_end_offset(), written.back().offset + 1);
    for (const auto& e : fs::directory_iterator(dir.path() / "t-0")) {
      EXPECT_FALSE(e.path().string().ends_with(".cleaned")) << e.path();
      EXPECT_FALSE(e.path().string().ends_with(".swap")) << e.path();
    }
    // And cleaning again finishes the job.
    ASSERT_TRUE(clean(*log, log->log_end_offset()).ok());
    expect_last_values(*log, written);
  }
}

// Disk failures (fault env) at each fdatasync of a cleaning, then power loss: nothing is lost.
TEST(Cleaner, FailedSyncsAndPowerLossDuringCleaningLoseNothing) {
  for (int nth = 1; nth <= 8; ++nth) {
    SCOPED_TRACE(nth);
    TempDir dir;
    std::vector<Written> written;
    {
      auto config = compact_config();
      config.flush_interval_messages = 1;  // acknowledged = durable, so power loss keeps all of it
      FaultEnv env;
      OpenOptions options;
      options.context = std::make_shared<LogDirContext>(dir.path(), &env, std::make_shared<FileCache>(16));
      auto log = *PartitionLog::open(dir.path() / "t-0", config, options);
      write_rounds(*log, 20, 5, written);
      env.fail_sync(nth, EIO);
      (void)clean(*log, log->log_end_offset());
      env.power_loss();
      log->close();
    }
    auto log = *PartitionLog::open(dir.path() / "t-0", compact_config());
    expect_last_values(*log, written);
    EXPECT_EQ(log->log_end_offset(), written.back().offset + 1);
  }
}

}  // namespace
}  // namespace bulwark::storage
