#include <gtest/gtest.h>

#include "temp_dir.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <atomic>
#include <set>
#include <thread>

#include "base/bytes.h"
#include "base/log.h"
#include "storage/log.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

struct BatchSpec {
  int records = 1;
  std::int64_t timestamp = 1000;   // of the first record; each next record +1
  std::size_t value_size = 50;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  std::string tag = "v";
};

Bytes make_batch(const BatchSpec& spec) {
  std::vector<wire::Record> records;
  for (int i = 0; i < spec.records; ++i) {
    wire::Record r;
    r.offset = i;
    r.timestamp = spec.timestamp + i;
    std::string value = spec.tag + "-" + std::to_string(i) + "-";
    value.resize(std::max(value.size(), spec.value_size), 'x');
    r.value = Bytes(value.begin(), value.end());
    records.push_back(std::move(r));
  }
  wire::BatchOptions options;
  options.producer_id = spec.producer_id;
  options.producer_epoch = spec.producer_epoch;
  options.base_sequence = spec.base_sequence;
  auto batch = wire::encode_batch(records, options);
  EXPECT_TRUE(batch.ok()) << batch.error().message;
  return *batch;
}

AppendOptions opts(std::int64_t now = 1000) {
  AppendOptions o;
  o.now_ms = now;
  return o;
}

LogConfig small_segments(std::int64_t segment_bytes = 2000) {
  LogConfig c;
  c.segment_bytes = segment_bytes;
  c.index_interval_bytes = 300;
  c.retention_ms = -1;
  return c;
}

std::vector<wire::BatchHeader> headers_of(const Bytes& blob) {
  std::vector<wire::BatchHeader> out;
  auto split = wire::split_batches(blob);
  EXPECT_TRUE(split.ok());
  EXPECT_EQ(split->trailing_bytes, 0u);
  for (auto b : split->batches) {
    EXPECT_TRUE(wire::batch_crc_ok(b));
    out.push_back(*wire::parse_batch_header(b));
  }
  return out;
}

fs::path last_segment_file(const PartitionLog& log) {
  char name[32];
  std::snprintf(name, sizeof name, "%020lld.log", static_cast<long long>(log.segment_base_offsets().back()));
  return log.dir() / name;
}

TEST(PartitionLog, AppendsAndReadsAcrossManySegments) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok()) << log.error().message;
  std::vector<Bytes> originals;
  std::int64_t expected = 0;
  for (int i = 0; i < 120; ++i) {
    BatchSpec spec;
    spec.records = 1 + i % 4;
    spec.tag = "b" + std::to_string(i);
    originals.push_back(make_batch(spec));
    auto r = (*log)->append(originals.back(), opts());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->base_offset, expected);
    EXPECT_EQ(r->last_offset, expected + spec.records - 1);
    EXPECT_EQ(r->record_count, spec.records);
    expected += spec.records;
  }
  const std::int64_t leo = (*log)->log_end_offset();
  EXPECT_EQ(leo, expected);
  EXPECT_GT((*log)->segment_count(), 10u);

  // Every offset: the first batch returned is the one containing it, whole, with its bytes intact.
  for (std::int64_t off = 0; off < leo; ++off) {
    auto f = (*log)->read(off, 1, leo);
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto hs = headers_of(f->bytes);
    ASSERT_EQ(hs.size(), 1u) << "max_bytes=1 still gives one whole batch (KIP-74)";
    EXPECT_LE(hs[0].base_offset, off);
    EXPECT_GE(hs[0].last_offset(), off);
    EXPECT_EQ(f->log_end_offset, leo);
  }
  // A large fetch returns consecutive whole batches and stops at a segment end.
  auto all = (*log)->read(0, 1 << 20, leo);
  ASSERT_TRUE(all.ok());
  auto hs = headers_of(all->bytes);
  ASSERT_FALSE(hs.empty());
  for (std::size_t i = 1; i < hs.size(); ++i) EXPECT_EQ(hs[i].base_offset, hs[i - 1].last_offset() + 1);
  // Reading the whole log batch by batch gives back the producer's bytes (but for the base offset).
  std::int64_t off = 0;
  std::size_t index = 0;
  while (off < leo) {
    auto f = (*log)->read(off, 700, leo);
    ASSERT_TRUE(f.ok());
    auto split = wire::split_batches(f->bytes);
    ASSERT_TRUE(split.ok());
    ASSERT_FALSE(split->batches.empty());
    EXPECT_LE(f->bytes.size(), std::max<std::size_t>(700, split->batches[0].size()));
    for (auto b : split->batches) {
      ASSERT_LT(index, originals.size());
      Bytes got(b.begin(), b.end()), want = originals[index++];
      EXPECT_EQ(wire::parse_batch_header(got)->base_offset, off);
      wire::set_base_offset(want, off);
      EXPECT_EQ(got, want);
      off = wire::parse_batch_header(got)->last_offset() + 1;
    }
  }
  EXPECT_EQ(index, originals.size());

  // Bounds: the log end is an empty read, beyond it or below the start is out of range, and the
  // max offset (high watermark) stops before the batch that reaches it.
  auto at_end = (*log)->read(leo, 1000, leo);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->bytes.empty());
  EXPECT_EQ((*log)->read(leo + 1, 1000, leo).code(), LogError::offset_out_of_range);
  EXPECT_EQ((*log)->read(-1, 1000, leo).code(), LogError::offset_out_of_range);
  auto capped = (*log)->read(0, 1 << 20, 5);
  ASSERT_TRUE(capped.ok());
  for (const auto& h : headers_of(capped->bytes)) EXPECT_LT(h.last_offset(), 5);
}

// The on-disk .index entries point at the batch whose last offset they name.
TEST(PartitionLog, OffsetIndexEntriesPointAtTheirBatches) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments(1 << 20));
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 100; ++i) {
    BatchSpec spec;
    spec.records = 1 + i % 3;
    ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
  }
  (*log)->close();
  std::ifstream index(tmp.path() / "t-0" / "00000000000000000000.index", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(index)), std::istreambuf_iterator<char>());
  ASSERT_GT(raw.size(), 8u * 5) << "index.interval.bytes=300 over ~20 KB gives many entries";
  ASSERT_EQ(raw.size() % 8, 0u);
  std::ifstream seg(tmp.path() / "t-0" / "00000000000000000000.log", std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(seg)), std::istreambuf_iterator<char>());
  ByteReader r(as_bytes(raw));
  std::uint32_t last_rel = 0;
  while (!r.at_end()) {
    std::uint32_t rel = 0, pos = 0;
    ASSERT_TRUE(r.read_u32(rel) && r.read_u32(pos));
    EXPECT_GE(rel, last_rel);
    last_rel = rel;
    auto h = wire::parse_batch_header(as_bytes(data).subspan(pos));
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->last_offset(), rel);
  }
}

TEST(PartitionLog, OffsetForTimestampFindsTheFirstRecordAtOrAfter) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  // Batch i holds 3 records at 10000 + 10 i + {0, 1, 2}; offsets 3 i + {0, 1, 2}.
  for (int i = 0; i < 60; ++i) {
    BatchSpec spec;
    spec.records = 3;
    spec.timestamp = 10000 + 10 * i;
    ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
  }
  ASSERT_GT((*log)->segment_count(), 3u);
  for (int i = 0; i < 60; ++i) {
    for (int k = 0; k < 10; ++k) {
      const std::int64_t ts = 10000 + 10 * i + k;
      auto found = (*log)->offset_for_timestamp(ts);
      ASSERT_TRUE(found.ok());
      if (k <= 2) {
        ASSERT_TRUE(found->has_value());
        EXPECT_EQ((*found)->offset, 3 * i + k) << "ts " << ts;
        EXPECT_EQ((*found)->timestamp, ts);
      } else if (i + 1 < 60) {
        ASSERT_TRUE(found->has_value());
        EXPECT_EQ((*found)->offset, 3 * (i + 1)) << "ts " << ts;
      } else {
        EXPECT_FALSE(found->has_value());
      }
    }
  }
  auto earliest = (*log)->offset_for_timestamp(0);
  ASSERT_TRUE(earliest.ok() && earliest->has_value());
  EXPECT_EQ((*earliest)->offset, 0);
}

TEST(PartitionLog, OffsetOfMaxTimestampIsTheFirstRecordWithTheLargestTimestamp) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  auto none = (*log)->offset_of_max_timestamp();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "an empty log has no largest timestamp";
  // Batch i holds 3 records at ts(i) + {0, 1, 2}: timestamps rise to batch 25, fall, then batch 50 reaches
  // the same peak again; the answer is the first record of the peak (batch 25's last, offset 77).
  auto ts = [](int i) { return 20000 + 100 * (i <= 25 ? i : i == 50 ? 25 : 50 - i); };
  for (int i = 0; i < 60; ++i) {
    BatchSpec spec;
    spec.records = 3;
    spec.timestamp = ts(i);
    ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
  }
  ASSERT_GT((*log)->segment_count(), 3u);
  auto found = (*log)->offset_of_max_timestamp();
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->timestamp, ts(25) + 2);
  EXPECT_EQ((*found)->offset, 3 * 25 + 2);
}

TEST(PartitionLog, ReopenKeepsDataIndexesAndProducerState) {
  TempDir tmp;
  const auto dir = tmp.path() / "t-0";
  Bytes before;
  {
    auto log = PartitionLog::open(dir, small_segments());
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 50; ++i) {
      BatchSpec spec;
      spec.records = 2;
      spec.timestamp = 5000 + i;
      spec.producer_id = 42;
      spec.producer_epoch = 3;
      spec.base_sequence = 2 * i;
      ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
    }
    before = (*log)->read(37, 1 << 20, 1000)->bytes;
  }
  std::vector<std::string> index_files;
  for (auto& e : fs::directory_iterator(dir)) index_files.push_back(e.path().filename().string());
  auto log = PartitionLog::open(dir, small_segments());
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ((*log)->log_end_offset(), 100);
  EXPECT_EQ((*log)->read(37, 1 << 20, 1000)->bytes, before);
  auto state = (*log)->producer_state(42);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->epoch, 3);
  ASSERT_EQ(state->batches.size(), 5u);
  EXPECT_EQ(state->batches.back().first_sequence, 98);
  EXPECT_EQ(state->batches.back().last_offset, 99);
  // A retry of an old batch is still recognised after the restart, and the next one follows.
  BatchSpec retry;
  retry.records = 2;
  retry.producer_id = 42;
  retry.producer_epoch = 3;
  retry.base_sequence = 96;
  auto dup = (*log)->append(make_batch(retry), opts());
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 96);
  EXPECT_EQ(dup->last_offset, 97);
  retry.base_sequence = 100;
  auto next = (*log)->append(make_batch(retry), opts());
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->duplicate);
  EXPECT_EQ(next->base_offset, 100);
  auto found = (*log)->offset_for_timestamp(5020);  // batch 19 holds 5019 (offset 38) and 5020 (39)
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->offset, 39);
}

TEST(PartitionLog, IdempotentProducerSequencesAndEpochs) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  auto batch = [](std::int16_t epoch, std::int32_t seq, int records = 3) {
    BatchSpec spec;
    spec.records = records;
    spec.producer_id = 7;
    spec.producer_epoch = epoch;
    spec.base_sequence = seq;
    return make_batch(spec);
  };
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), opts()).ok());  // offset 0, no producer
  auto first = (*log)->append(batch(0, 0), opts());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->base_offset, 1);
  for (int i = 1; i < 7; ++i) ASSERT_TRUE((*log)->append(batch(0, 3 * i), opts()).ok());
  const std::int64_t leo = (*log)->log_end_offset();
  EXPECT_EQ(leo, 22);

  auto dup = (*log)->append(batch(0, 18), opts());  // the last batch again
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 19);
  EXPECT_EQ(dup->last_offset, 21);
  dup = (*log)->append(batch(0, 6), opts());  // the oldest of the last five
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 7);
  EXPECT_EQ((*log)->log_end_offset(), leo) << "duplicates are not appended";

  auto too_old = (*log)->append(batch(0, 3), opts());  // beyond the five kept: not a known retry
  EXPECT_EQ(too_old.code(), LogError::out_of_order_sequence);
  auto gap = (*log)->append(batch(0, 22), opts());
  EXPECT_EQ(gap.code(), LogError::out_of_order_sequence);
  auto bad_new_epoch = (*log)->append(batch(1, 5), opts());
  EXPECT_EQ(bad_new_epoch.code(), LogError::out_of_order_sequence);
  EXPECT_EQ((*log)->log_end_offset(), leo);

  auto bumped = (*log)->append(batch(1, 0), opts());
  ASSERT_TRUE(bumped.ok());
  EXPECT_EQ(bumped->base_offset, leo);
  auto fenced = (*log)->append(batch(0, 21), opts());
  EXPECT_EQ(fenced.code(), LogError::invalid_producer_epoch);

  // A rejected batch in a multi-batch append leaves nothing behind.
  Bytes blob = batch(1, 3);
  Bytes bad = batch(1, 99);
  blob.insert(blob.end(), bad.begin(), bad.end());
  const std::int64_t size_before = (*log)->size_bytes();
  EXPECT_EQ((*log)->append(blob, opts()).code(), LogError::out_of_order_sequence);
  EXPECT_EQ((*log)->size_bytes(), size_before);
  EXPECT_EQ((*log)->producer_state(7)->batches.back().first_sequence, 0);
}

TEST(PartitionLog, RejectsCorruptOversizedAndPartialBatchesWritingNothing) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments(1 << 20));
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), opts()).ok());
  const auto seg = last_segment_file(**log);
  const auto size_before = fs::file_size(seg);

  Bytes good = make_batch(BatchSpec{});
  Bytes corrupt = make_batch(BatchSpec{});
  corrupt[corrupt.size() - 3] ^= 0x40;
  Bytes blob = good;
  blob.insert(blob.end(), corrupt.begin(), corrupt.end());
  auto r = (*log)->append(blob, opts());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), LogError::corrupt_message);
  EXPECT_NE(r.error().message.find("CRC mismatch"), std::string::npos) << r.error().message;

  BatchSpec big;
  big.value_size = 5000;
  AppendOptions limited = opts();
  limited.max_message_bytes = 4096;
  auto large = (*log)->append(make_batch(big), limited);
  EXPECT_EQ(large.code(), LogError::message_too_large);

  Bytes partial = good;
  partial.insert(partial.end(), good.begin(), good.begin() + 30);
  EXPECT_EQ((*log)->append(partial, opts()).code(), LogError::corrupt_message);
  EXPECT_EQ((*log)->append(ByteView(), opts()).code(), LogError::corrupt_message);

  EXPECT_EQ(fs::file_size(seg), size_before);
  EXPECT_EQ((*log)->log_end_offset(), 1);
  Error coarse = r.error();
  EXPECT_EQ(coarse.kind, ErrorKind::corrupt);
}

TEST(PartitionLog, LogAppendTimeRewritesTimestampAndKeepsCrcValid) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  AppendOptions o = opts(777777);
  o.timestamp_type = TimestampType::log_append_time;
  o.leader_epoch = 4;
  auto r = (*log)->append(make_batch(BatchSpec{}), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->log_append_time, 777777);
  auto f = (*log)->read(0, 1000, 10);
  auto hs = headers_of(f->bytes);  // checks the CRC too
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_EQ(hs[0].max_timestamp, 777777);
  EXPECT_TRUE(hs[0].log_append_time());
  EXPECT_EQ(hs[0].partition_leader_epoch, 4);
}

// Kill -9 or power loss in the middle of a write: every cut inside the last batch and every flipped
// byte in it must leave the log ending at the last intact batch, and appends must continue from there.
TEST(PartitionLog, RecoversFromTornAndCorruptTail) {
  TempDir tmp;
  log::set_level(log::Level::error);  // hundreds of expected truncation warnings
  const auto pristine = tmp.path() / "pristine-0";
  std::int64_t last_base = 0;
  std::uint64_t last_pos = 0, full_size = 0;
  fs::path seg_name;
  {
    auto log = PartitionLog::open(pristine, small_segments(4000));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 30; ++i) {
      BatchSpec spec;
      spec.records = 2;
      spec.producer_id = 9;
      spec.producer_epoch = 0;
      spec.base_sequence = 2 * i;
      auto r = (*log)->append(make_batch(spec), opts());
      ASSERT_TRUE(r.ok());
      last_base = r->base_offset;
    }
    seg_name = last_segment_file(**log).filename();
    full_size = fs::file_size(last_segment_file(**log));
    auto f = (*log)->read(last_base, 1, 1000);
    last_pos = full_size - f->bytes.size();
  }
  ASSERT_GT(last_pos, 0u) << "the last batch must not be alone in its segment";
  auto check = [&](const fs::path& dir, const std::string& what) {
    auto log = PartitionLog::open(dir, small_segments(4000));
    ASSERT_TRUE(log.ok()) << what << ": " << log.error().message;
    EXPECT_EQ((*log)->log_end_offset(), last_base) << what;
    EXPECT_EQ(fs::file_size(dir / seg_name), last_pos) << what;
    // Every earlier offset still reads; the producer may resend the lost batch (sequence 58).
    for (std::int64_t off = 0; off < last_base; off += 7) ASSERT_TRUE((*log)->read(off, 1, last_base).ok()) << what;
    BatchSpec spec;
    spec.records = 2;
    spec.producer_id = 9;
    spec.producer_epoch = 0;
    spec.base_sequence = 58;
    auto r = (*log)->append(make_batch(spec), opts());
    ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
    EXPECT_FALSE(r->duplicate) << what;
    EXPECT_EQ(r->base_offset, last_base) << what;
    (*log)->close();
    auto again = PartitionLog::open(dir, small_segments(4000));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)->log_end_offset(), last_base + 2) << what;
    auto f = (*again)->read(last_base, 1, 1000);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(headers_of(f->bytes).at(0).base_offset, last_base) << what;
  };
  int cases = 0;
  for (std::uint64_t cut = last_pos; cut < full_size; ++cut) {
    const auto dir = tmp.path() / ("cut-" + std::to_string(cut));
    fs::copy(pristine, dir);
    fs::resize_file(dir / seg_name, cut);
    check(dir, "cut at " + std::to_string(cut));
    fs::remove_all(dir);
    ++cases;
  }
  // Flip each byte covered by the CRC, plus magic and the CRC itself.
  for (std::uint64_t at = last_pos + 16; at < full_size; ++at) {
    const auto dir = tmp.path() / ("flip-" + std::to_string(at));
    fs::copy(pristine, dir);
    {
      std::fstream f(dir / seg_name, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(at));
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x10);
      f.seekp(static_cast<std::streamoff>(at));
      f.write(&c, 1);
    }
    check(dir, "flip at " + std::to_string(at));
    fs::remove_all(dir);
    ++cases;
  }
  EXPECT_GT(cases, 100);
  log::set_level(log::Level::info);
}

TEST(PartitionLog, RetentionByTimeAndSizeNeverDeletesTheActiveSegment) {
  TempDir tmp;
  LogConfig config = small_segments(1000);
  config.retention_ms = 10000;
  auto log = PartitionLog::open(tmp.path() / "t-0", config);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 60; ++i) {
    BatchSpec spec;
    spec.timestamp = 100000 + 1000 * i;  // one batch per second
    ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
  }
  const auto bases = (*log)->segment_base_offsets();
  ASSERT_GT(bases.size(), 5u);
  // At now = 100000 + 40000 + 10000 every batch older than offset 40 has expired.
  auto deleted = (*log)->enforce_retention(100000 + 40000 + 10000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_GT(*deleted, 0u);
  const std::int64_t start = (*log)->log_start_offset();
  EXPECT_EQ(start, (*log)->segment_base_offsets().front());
  EXPECT_LE(start, 40);
  EXPECT_GT(start, 20);
  EXPECT_EQ((*log)->read(start - 1, 100, 1000).code(), LogError::offset_out_of_range);
  EXPECT_TRUE((*log)->read(start, 100, 1000).ok());
  // Far in the future: everything but the active segment goes.
  ASSERT_TRUE((*log)->enforce_retention(1ll << 40).ok());
  EXPECT_EQ((*log)->segment_count(), 1u);
  EXPECT_EQ((*log)->log_end_offset(), 60);

  // By size, as Kafka: delete the oldest segments while what remains is still >= retention.bytes.
  TempDir tmp2;
  LogConfig by_size = small_segments(1500);
  by_size.retention_bytes = 5000;
  auto log2 = PartitionLog::open(tmp2.path() / "t-0", by_size);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE((*log2)->append(make_batch(BatchSpec{}), opts()).ok());
  const std::int64_t before = (*log2)->size_bytes();
  ASSERT_GT(before, 5000);
  ASSERT_TRUE((*log2)->enforce_retention(0).ok());
  EXPECT_GE((*log2)->size_bytes(), 5000);
  EXPECT_LT((*log2)->size_bytes(), 5000 + 1500);
  EXPECT_LT((*log2)->size_bytes(), before);
  EXPECT_EQ((*log2)->log_start_offset(), (*log2)->segment_base_offsets().front());

  // Unlimited keeps everything.
  TempDir tmp3;
  auto log3 = PartitionLog::open(tmp3.path() / "t-0", small_segments(1500));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE((*log3)->append(make_batch(BatchSpec{}), opts()).ok());
  const auto n = (*log3)->segment_count();
  ASSERT_TRUE((*log3)->enforce_retention(1ll << 50).ok());
  EXPECT_EQ((*log3)->segment_count(), n);
}

TEST(PartitionLog, DeleteRecordsMovesStartAndSurvivesReopen) {
  TempDir tmp;
  const auto dir = tmp.path() / "t-0";
  {
    auto log = PartitionLog::open(dir, small_segments(1500));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 40; ++i) ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), opts()).ok());
    const auto segments_before = (*log)->segment_count();
    auto moved = (*log)->delete_records_before(23);
    ASSERT_TRUE(moved.ok());
    EXPECT_EQ(*moved, 23);
    EXPECT_LT((*log)->segment_count(), segments_before);
    EXPECT_LE((*log)->segment_base_offsets().front(), 23);
    EXPECT_EQ((*log)->read(22, 100, 100).code(), LogError::offset_out_of_range);
    auto f = (*log)->read(23, 1, 100);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(headers_of(f->bytes).at(0).base_offset, 23);
    EXPECT_EQ((*log)->delete_records_before(41).code(), LogError::offset_out_of_range);
    EXPECT_EQ(*(*log)->delete_records_before(10), 23) << "never moves backwards";
  }
  {
    auto log = PartitionLog::open(dir, small_segments(1500));
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->log_start_offset(), 23);
    EXPECT_EQ((*log)->log_end_offset(), 40);
    // Up to the log end: every old segment goes, and appends continue at 40.
    ASSERT_EQ(*(*log)->delete_records_before(40), 40);
    EXPECT_EQ((*log)->segment_count(), 1u);
    auto r = (*log)->append(make_batch(BatchSpec{}), opts());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->base_offset, 40);
  }
  auto log = PartitionLog::open(dir, small_segments(1500));
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->log_start_offset(), 40);
  EXPECT_EQ((*log)->log_end_offset(), 41);
}

TEST(PartitionLog, RollsByTime) {
  TempDir tmp;
  LogConfig config = small_segments(1 << 20);
  config.segment_ms = 1000;
  auto log = PartitionLog::open(tmp.path() / "t-0", config);
  BatchSpec spec;
  spec.timestamp = 50000;
  ASSERT_TRUE((*log)->append(make_batch(spec), opts(50000)).ok());
  ASSERT_TRUE((*log)->append(make_batch(spec), opts(50500)).ok());
  EXPECT_EQ((*log)->segment_count(), 1u);
  ASSERT_TRUE((*log)->append(make_batch(spec), opts(51000)).ok());
  EXPECT_EQ((*log)->segment_count(), 2u);
  EXPECT_EQ((*log)->segment_base_offsets().back(), 2);
}

TEST(PartitionLog, TruncateToDropsTheTailAtBatchBoundaries) {
  TempDir tmp;
  const auto dir = tmp.path() / "t-0";
  auto log = PartitionLog::open(dir, small_segments(1500));
  for (int i = 0; i < 30; ++i) {
    BatchSpec spec;
    spec.records = 2;
    spec.producer_id = 5;
    spec.producer_epoch = 0;
    spec.base_sequence = 2 * i;
    ASSERT_TRUE((*log)->append(make_batch(spec), opts()).ok());
  }
  ASSERT_TRUE((*log)->truncate_to(31).ok());  // inside the batch 30..31: it goes whole
  EXPECT_EQ((*log)->log_end_offset(), 30);
  EXPECT_EQ((*log)->producer_state(5)->batches.back().last_offset, 29);
  BatchSpec spec;
  spec.records = 2;
  spec.producer_id = 5;
  spec.producer_epoch = 0;
  spec.base_sequence = 30;
  auto r = (*log)->append(make_batch(spec), opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->base_offset, 30);
  (*log)->close();
  auto again = PartitionLog::open(dir, small_segments(1500));
  EXPECT_EQ((*again)->log_end_offset(), 32);
}

TEST(PartitionLog, FollowerAppendKeepsOffsets) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  Bytes b = make_batch(BatchSpec{});
  wire::set_base_offset(b, 0);
  AppendOptions follower = opts();
  follower.assign_offsets = false;
  ASSERT_TRUE((*log)->append(b, follower).ok());
  EXPECT_EQ((*log)->append(b, follower).code(), LogError::invalid_argument) << "offset 0 is below the log end";
  wire::set_base_offset(b, 1);
  auto r = (*log)->append(b, follower);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, 1);
  EXPECT_EQ((*log)->log_end_offset(), 2);
}

// Appends from two threads, reads from two more and retention from a fifth, as the broker's network
// threads and scheduler do: offsets stay unique and consecutive and every read is whole batches.
TEST(PartitionLog, ConcurrentAppendsReadsAndRetention) {
  TempDir tmp;
  LogConfig config = small_segments(3000);
  config.retention_bytes = 20000;
  auto log = PartitionLog::open(tmp.path() / "t-0", config);
  ASSERT_TRUE(log.ok());
  std::atomic<bool> done{false};
  std::atomic<int> read_failures{0}, reads{0};
  std::vector<std::vector<std::int64_t>> bases(2);
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 300; ++i) {
        BatchSpec spec;
        spec.records = 1 + (i + w) % 3;
        auto r = (*log)->append(make_batch(spec), opts());
        if (!r.ok() || r->record_count != spec.records) {
          read_failures++;
          return;
        }
        bases[w].push_back(r->base_offset);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!done) {
        const std::int64_t start = (*log)->log_start_offset(), end = (*log)->log_end_offset();
        if (end == start) continue;
        const std::int64_t off = start + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(end - start));
        auto f = (*log)->read(off, 5000, end);
        if (!f.ok()) {
          if (f.code() != LogError::offset_out_of_range) read_failures++;  // retention may overtake us
          continue;
        }
        auto split = wire::split_batches(f->bytes);
        if (!split.ok() || split->trailing_bytes != 0 || split->batches.empty() ||
            !wire::batch_crc_ok(split->batches[0])) {
          read_failures++;
          continue;
        }
        auto h = wire::parse_batch_header(split->batches[0]);
        if (h->base_offset > off || h->last_offset() < off) read_failures++;
        reads++;
      }
    });
  }
  threads.emplace_back([&] {
    while (!done) {
      if (!(*log)->enforce_retention(0).ok()) read_failures++;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  threads[0].join();
  threads[1].join();
  done = true;
  for (std::size_t i = 2; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(read_failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  std::set<std::int64_t> all(bases[0].begin(), bases[0].end());
  all.insert(bases[1].begin(), bases[1].end());
  EXPECT_EQ(all.size(), 600u);
  EXPECT_EQ((*log)->log_end_offset(), 600 * 2);  // records per batch average 2 over both writers
  EXPECT_GT((*log)->log_start_offset(), 0);
}


// Leader epoch cache (Kafka's LeaderEpochFileCache) and its leader-epoch-checkpoint file.

AppendOptions epoch_opts(std::int32_t leader_epoch) {
  AppendOptions o = opts();
  o.leader_epoch = leader_epoch;
  return o;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Two-record batches at epochs 0, 0, 2, 5: offsets 0..1, 2..3, 4..5, 6..7.
void append_epochs_0_0_2_5(PartitionLog& log) {
  for (std::int32_t epoch : {0, 0, 2, 5}) {
    BatchSpec spec;
    spec.records = 2;
    auto r = log.append(make_batch(spec), epoch_opts(epoch));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
}

const std::vector<EpochStart> kEpochs025 = {{0, 0}, {2, 4}, {5, 6}};

TEST(LeaderEpochCache, LeaderAppendsRecordWhereEachEpochStarts) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE((*log)->leader_epochs().empty());
  EXPECT_EQ((*log)->latest_epoch(), -1);
  EXPECT_EQ((*log)->end_offset_for_epoch(0), (EpochEndOffset{})) << "no epochs at all";
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), opts()).ok());  // leader_epoch -1: none recorded
  EXPECT_TRUE((*log)->leader_epochs().empty());
  ASSERT_TRUE((*log)->truncate_to(0).ok());

  append_epochs_0_0_2_5(**log);
  EXPECT_EQ((*log)->leader_epochs(), kEpochs025);
  EXPECT_EQ((*log)->latest_epoch(), 5);
  EXPECT_EQ(read_text((*log)->dir() / "leader-epoch-checkpoint"), "0\n3\n0 0\n2 4\n5 6\n");
  // The epoch is stamped into the batch header.
  auto f = (*log)->read(4, 1, 8);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(headers_of(f->bytes).at(0).partition_leader_epoch, 2);
}

TEST(LeaderEpochCache, EndOffsetForEpochFollowsKafka) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  append_epochs_0_0_2_5(**log);
  ASSERT_EQ((*log)->log_end_offset(), 8);
  auto& l = **log;
  EXPECT_EQ(l.end_offset_for_epoch(5), (EpochEndOffset{5, 8})) << "latest: the log end";
  EXPECT_EQ(l.end_offset_for_epoch(2), (EpochEndOffset{2, 6})) << "known: where the next begins";
  EXPECT_EQ(l.end_offset_for_epoch(0), (EpochEndOffset{0, 4}));
  EXPECT_EQ(l.end_offset_for_epoch(1), (EpochEndOffset{0, 4})) << "between: floor epoch, next start";
  EXPECT_EQ(l.end_offset_for_epoch(3), (EpochEndOffset{2, 6}));
  EXPECT_EQ(l.end_offset_for_epoch(4), (EpochEndOffset{2, 6}));
  EXPECT_EQ(l.end_offset_for_epoch(6), (EpochEndOffset{})) << "above the latest";
  EXPECT_EQ(l.end_offset_for_epoch(-1), (EpochEndOffset{}));

  TempDir tmp2;
  auto later = PartitionLog::open(tmp2.path() / "t-0", small_segments());
  ASSERT_TRUE((*later)->append(make_batch(BatchSpec{}), epoch_opts(3)).ok());
  ASSERT_TRUE((*later)->append(make_batch(BatchSpec{}), epoch_opts(4)).ok());
  EXPECT_EQ((*later)->end_offset_for_epoch(1), (EpochEndOffset{1, 0})) << "below the first: requested, first start";
  EXPECT_EQ((*later)->end_offset_for_epoch(3), (EpochEndOffset{3, 1}));
  EXPECT_EQ((*later)->end_offset_for_epoch(4), (EpochEndOffset{4, 2}));
}

TEST(LeaderEpochCache, OlderEpochAfterNewerStartsNothing) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), epoch_opts(5)).ok());
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), epoch_opts(3)).ok());
  EXPECT_EQ((*log)->leader_epochs(), (std::vector<EpochStart>{{5, 0}}));
}

TEST(LeaderEpochCache, TruncationDropsEpochsAndRewritesTheFile) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  append_epochs_0_0_2_5(**log);
  const auto file = (*log)->dir() / "leader-epoch-checkpoint";
  ASSERT_TRUE((*log)->truncate_to(6).ok());
  EXPECT_EQ((*log)->leader_epochs(), (std::vector<EpochStart>{{0, 0}, {2, 4}}));
  EXPECT_EQ((*log)->latest_epoch(), 2);
  EXPECT_EQ((*log)->end_offset_for_epoch(2), (EpochEndOffset{2, 6}));
  EXPECT_EQ(read_text(file), "0\n2\n0 0\n2 4\n");
  ASSERT_TRUE((*log)->truncate_to(4).ok());
  EXPECT_EQ((*log)->leader_epochs(), (std::vector<EpochStart>{{0, 0}}));
  EXPECT_EQ(read_text(file), "0\n1\n0 0\n");
  ASSERT_TRUE((*log)->append(make_batch(BatchSpec{}), epoch_opts(7)).ok());
  EXPECT_EQ((*log)->leader_epochs(), (std::vector<EpochStart>{{0, 0}, {7, 4}}));
  EXPECT_EQ(read_text(file), "0\n2\n0 0\n7 4\n");
  ASSERT_TRUE((*log)->truncate_to(0).ok());
  EXPECT_TRUE((*log)->leader_epochs().empty());
  EXPECT_EQ(read_text(file), "0\n0\n");
}

TEST(LeaderEpochCache, RestartAtForgetsEveryEpoch) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  append_epochs_0_0_2_5(**log);
  ASSERT_TRUE((*log)->restart_at(100).ok());
  EXPECT_TRUE((*log)->leader_epochs().empty());
  EXPECT_EQ((*log)->latest_epoch(), -1);
  EXPECT_EQ(read_text((*log)->dir() / "leader-epoch-checkpoint"), "0\n0\n");
}

TEST(LeaderEpochCache, ReopenRebuildsEpochsFromBatchHeaders) {
  TempDir tmp;
  const auto dir = tmp.path() / "t-0";
  const auto file = dir / "leader-epoch-checkpoint";
  std::vector<EpochStart> before;
  {
    auto log = PartitionLog::open(dir, small_segments(600));  // several segments
    for (std::int32_t epoch : {1, 1, 1, 4, 4, 4, 4, 9, 9}) {
      BatchSpec spec;
      spec.records = 3;
      ASSERT_TRUE((*log)->append(make_batch(spec), epoch_opts(epoch)).ok());
    }
    ASSERT_GT((*log)->segment_count(), 2u);
    before = (*log)->leader_epochs();
    EXPECT_EQ(before, (std::vector<EpochStart>{{1, 0}, {4, 9}, {9, 21}}));
    (*log)->close();
  }
  {
    auto log = PartitionLog::open(dir, small_segments(600));
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->leader_epochs(), before);
    EXPECT_EQ((*log)->latest_epoch(), 9);
    EXPECT_EQ(read_text(file), "0\n3\n1 0\n4 9\n9 21\n");
    (*log)->close();
  }
  // The batch headers are the truth: a wrong or missing file is rewritten from them.
  {
    std::ofstream(file, std::ios::trunc) << "0\n1\n77 3\n";
  }
  {
    auto log = PartitionLog::open(dir, small_segments(600));
    EXPECT_EQ((*log)->leader_epochs(), before);
    EXPECT_EQ(read_text(file), "0\n3\n1 0\n4 9\n9 21\n");
    (*log)->close();
  }
  fs::remove(file);
  {
    auto log = PartitionLog::open(dir, small_segments(600));
    EXPECT_EQ((*log)->leader_epochs(), before);
    EXPECT_EQ(read_text(file), "0\n3\n1 0\n4 9\n9 21\n");
  }
}

TEST(LeaderEpochCache, FollowerAppendRecordsTheLeadersEpochs) {
  TempDir tmp;
  auto log = PartitionLog::open(tmp.path() / "t-0", small_segments());
  AppendOptions follower = opts();
  follower.assign_offsets = false;
  std::int64_t base = 0;
  for (std::int32_t epoch : {3, 3, 4, 8}) {
    BatchSpec spec;
    spec.records = 2;
    Bytes b = make_batch(spec);
    wire::set_base_offset(b, base);
    wire::set_partition_leader_epoch(b, epoch);
    auto r = (*log)->append(b, follower);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->base_offset, base);
    base += 2;
  }
  EXPECT_EQ((*log)->leader_epochs(), (std::vector<EpochStart>{{3, 0}, {4, 4}, {8, 6}}));
  EXPECT_EQ((*log)->latest_epoch(), 8);
  EXPECT_EQ(read_text((*log)->dir() / "leader-epoch-checkpoint"), "0\n3\n3 0\n4 4\n8 6\n");

  // Several batches in one follower append, as a fetch response carries them.
  Bytes blob;
  for (std::int32_t epoch : {8, 10}) {
    Bytes b = make_batch(BatchSpec{});
    wire::set_base_offset(b, base++);
    wire::set_partition_leader_epoch(b, epoch);
    blob.insert(blob.end(), b.begin(), b.end());
  }
  ASSERT_TRUE((*log)->append(blob, follower).ok());
  EXPECT_EQ((*log)->leader_epochs().back(), (EpochStart{10, 9}));
}

TEST(OffsetCheckpoint, FormatAndParseRoundTrip) {
  const std::map<TopicPartition, std::int64_t> offsets = {
      {{"orders", 0}, 42}, {{"orders", 11}, 0}, {{"a.b_c-d", 3}, 9000000000}};
  const std::string text = format_offset_checkpoint(offsets);
  EXPECT_EQ(text, "0\n3\na.b_c-d 3 9000000000\norders 0 42\norders 11 0\n");
  auto parsed = parse_offset_checkpoint(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, offsets);

  EXPECT_EQ(format_offset_checkpoint({}), "0\n0\n");
  auto empty = parse_offset_checkpoint("0\n0\n");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(OffsetCheckpoint, MalformedTextIsRejected) {
  EXPECT_FALSE(parse_offset_checkpoint("").has_value());
  EXPECT_FALSE(parse_offset_checkpoint("garbage").has_value());
  EXPECT_FALSE(parse_offset_checkpoint("1\n0\n").has_value()) << "unknown version";
  EXPECT_FALSE(parse_offset_checkpoint("1\n1\nt 0 5\n").has_value()) << "unknown version";
  EXPECT_FALSE(parse_offset_checkpoint("0\n2\nt 0 5\n").has_value()) << "fewer entries than counted";
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt 0 5\nu 1 6\n").has_value()) << "more entries than counted";
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt x 5\n").has_value()) << "partition not a number";
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt 0 five\n").has_value()) << "offset not a number";
  EXPECT_FALSE(parse_offset_checkpoint("0\nmany\n").has_value());
}

TEST(OffsetCheckpoint, TrailingPartialLineIsRejected) {
  // As Kafka's CheckpointFile reader: nothing after the counted entries, exactly three fields each.
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt 0 5\nu 1\n").has_value()) << "a torn extra line";
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt 0 5\nextra\n").has_value()) << "trailing garbage";
  EXPECT_FALSE(parse_offset_checkpoint("0\n1\nt 0 5 6\n").has_value()) << "a fourth field";
}

}  // namespace
}  // namespace bulwark::storage
