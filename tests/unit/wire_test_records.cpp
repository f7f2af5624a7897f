// Record batch v2: a spec-derived byte vector, round trips through every codec, CRC coverage, the
// in-place rewrites the produce path uses, and splitting record blobs into batches.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "wire/compression.h"
#include "wire/record_batch.h"

namespace bulwark::wire {
namespace {

Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

const Compression kAllCodecs[] = {Compression::none, Compression::gzip, Compression::snappy, Compression::lz4,
                                  Compression::zstd};

// One record, key "k", value "v", header h=x, timestamp 1000, offset 0, written out by hand from the
// record batch v2 layout. The CRC value was computed independently (kafka-python's calc_crc32c).
const Bytes kSingleRecordBatch = {
    0, 0, 0, 0, 0, 0, 0, 0,                  // baseOffset 0
    0, 0, 0, 0x3e,                           // batchLength 62 = 74 - 12
    0xff, 0xff, 0xff, 0xff,                  // partitionLeaderEpoch -1
    0x02,                                    // magic
    0x85, 0xd4, 0x93, 0x6f,                  // crc (CRC-32C of bytes 21..73)
    0, 0,                                    // attributes: no compression, CreateTime
    0, 0, 0, 0,                              // lastOffsetDelta 0
    0, 0, 0, 0, 0, 0, 0x03, 0xe8,            // baseTimestamp 1000
    0, 0, 0, 0, 0, 0, 0x03, 0xe8,            // maxTimestamp 1000
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // producerId -1
    0xff, 0xff,                              // producerEpoch -1
    0xff, 0xff, 0xff, 0xff,                  // baseSequence -1
    0, 0, 0, 1,                              // recordCount 1
    0x18,                                    // record length 12 (zigzag 24)
    0x00,                                    // record attributes
    0x00,                                    // timestampDelta 0
    0x00,                                    // offsetDelta 0
    0x02, 'k',                               // key length 1, "k"
    0x02, 'v',                               // value length 1, "v"
    0x02,                                    // 1 header
    0x02, 'h', 0x02, 'x',                    // header key "h", value "x"
};

Record make_record(std::int64_t offset, std::int64_t timestamp, std::optional<Bytes> key, std::optional<Bytes> value,
                   std::vector<RecordHeader> headers = {}) {
  Record r;
  r.offset = offset;
  r.timestamp = timestamp;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = std::move(headers);
  return r;
}

void expect_same_records(const std::vector<Record>& want, const std::vector<Record>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(want[i].offset, got[i].offset);
    EXPECT_EQ(want[i].timestamp, got[i].timestamp);
    EXPECT_EQ(want[i].key, got[i].key);
    EXPECT_EQ(want[i].value, got[i].value);
    ASSERT_EQ(want[i].headers.size(), got[i].headers.size());
    for (std::size_t h = 0; h < want[i].headers.size(); ++h) {
      EXPECT_EQ(want[i].headers[h].key, got[i].headers[h].key);
      EXPECT_EQ(want[i].headers[h].value, got[i].headers[h].value);
    }
  }
}

TEST(RecordBatchVector, EncodeMatchesHandBuiltBytes) {
  std::vector<Record> records = {make_record(0, 1000, b("k"), b("v"), {{"h", b("x")}})};
  auto encoded = encode_batch(records, BatchOptions{});
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  EXPECT_EQ(*encoded, kSingleRecordBatch);
  // The CRC in the vector is CRC-32C of the covered range, by the portable implementation too.
  EXPECT_EQ(crc32c_software(ByteView(kSingleRecordBatch).subspan(kBatchAttributesOffset)), 0x85d4936fu);
}

TEST(RecordBatchVector, ParseHandBuiltBytes) {
  ByteView view(kSingleRecordBatch);
  auto header = parse_batch_header(view);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->base_offset, 0);
  EXPECT_EQ(header->batch_length, 62);
  EXPECT_EQ(header->partition_leader_epoch, -1);
  EXPECT_EQ(header->magic, 2);
  EXPECT_EQ(header->crc, 0x85d4936fu);
  EXPECT_EQ(header->compression(), Compression::none);
  EXPECT_FALSE(header->log_append_time());
  EXPECT_EQ(header->last_offset_delta, 0);
  EXPECT_EQ(header->base_timestamp, 1000);
  EXPECT_EQ(header->max_timestamp, 1000);
  EXPECT_EQ(header->producer_id, -1);
  EXPECT_EQ(header->producer_epoch, -1);
  EXPECT_EQ(header->base_sequence, -1);
  EXPECT_EQ(header->record_count, 1);
  EXPECT_EQ(header->total_size(), kSingleRecordBatch.size());
  EXPECT_TRUE(batch_crc_ok(view));

  auto records = decode_records(view);
  ASSERT_TRUE(records.ok()) << records.error().message;
  expect_same_records({make_record(0, 1000, b("k"), b("v"), {{"h", b("x")}})}, *records);
}

TEST(RecordBatchHeader, RejectsShortWrongMagicAndBadLength) {
  Bytes batch = kSingleRecordBatch;
  EXPECT_FALSE(parse_batch_header(ByteView(batch).first(60)).ok());
  Bytes wrong_magic = batch;
  wrong_magic[16] = 1;
  auto r = parse_batch_header(ByteView(wrong_magic));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
  Bytes small = batch;
  small[11] = 48;  // batchLength below the 49-byte header remainder
  EXPECT_FALSE(parse_batch_header(ByteView(small)).ok());
  Bytes long_length = batch;
  long_length[11] = 63;  // one byte more than present
  EXPECT_FALSE(parse_batch_header(ByteView(long_length)).ok());
  EXPECT_FALSE(batch_crc_ok(ByteView(long_length)));
}

TEST(RecordBatchEncode, HeaderFieldsComputed) {
  std::vector<Record> records = {make_record(100, 5000, b("a"), b("1")), make_record(101, 7000, std::nullopt, b("2")),
                                 make_record(105, 6000, b("c"), std::nullopt)};
  BatchOptions options;
  options.base_offset = 42;
  options.producer_id = 77;
  options.producer_epoch = 3;
  options.base_sequence = 9;
  options.transactional = true;
  options.partition_leader_epoch = 5;
  auto encoded = encode_batch(records, options);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto header = parse_batch_header(ByteView(*encoded));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->base_offset, 42);
  EXPECT_EQ(header->last_offset_delta, 5);
  EXPECT_EQ(header->base_timestamp, 5000);
  EXPECT_EQ(header->max_timestamp, 7000);
  EXPECT_EQ(header->producer_id, 77);
  EXPECT_EQ(header->producer_epoch, 3);
  EXPECT_EQ(header->base_sequence, 9);
  EXPECT_EQ(header->partition_leader_epoch, 5);
  EXPECT_TRUE(header->is_transactional());
  EXPECT_FALSE(header->is_control());
  EXPECT_EQ(header->record_count, 3);
  EXPECT_TRUE(batch_crc_ok(ByteView(*encoded)));

  auto decoded = decode_records(ByteView(*encoded));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_EQ(decoded->size(), 3u);
  EXPECT_EQ((*decoded)[0].offset, 42);
  EXPECT_EQ((*decoded)[1].offset, 43);
  EXPECT_EQ((*decoded)[2].offset, 47);
  EXPECT_EQ((*decoded)[1].timestamp, 7000);
  EXPECT_EQ((*decoded)[2].timestamp, 6000);
}

TEST(RecordBatchEncode, RejectsEmptyAndNonIncreasingOffsets) {
  EXPECT_FALSE(encode_batch({}, BatchOptions{}).ok());
  std::vector<Record> records = {make_record(3, 0, b("a"), b("1")), make_record(3, 0, b("b"), b("2"))};
  auto r = encode_batch(records, BatchOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
}

std::vector<Record> varied_records(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Record> out;
  for (std::size_t i = 0; i < n; ++i) {
    Record r;
    r.offset = static_cast<std::int64_t>(i);
    r.timestamp = 1'700'000'000'000 + static_cast<std::int64_t>(rng() % 100000) - 50000;
    if (i % 5 != 0) r.key = b("key-" + std::to_string(i));
    if (i % 7 == 3) {
      r.value = std::nullopt;
    } else if (i % 11 == 4) {
      r.value = Bytes{};
    } else {
      r.value = b("value " + std::to_string(i) + std::string(rng() % 300, static_cast<char>('a' + i % 26)));
    }
    for (std::size_t h = 0; h < i % 4; ++h) {
      RecordHeader header;
      header.key = "h" + std::to_string(h);
      if (h != 1) header.value = b("hv" + std::to_string(i * h));
      r.headers.push_back(std::move(header));
    }
    out.push_back(std::move(r));
  }
  return out;
}

class RecordBatchCodec : public ::testing::TestWithParam<Compression> {};

TEST_P(RecordBatchCodec, RoundTripManyRecords) {
  auto records = varied_records(1000, 7);
  BatchOptions options;
  options.compression = GetParam();
  auto encoded = encode_batch(records, options);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto header = parse_batch_header(ByteView(*encoded));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->compression(), GetParam());
  EXPECT_EQ(header->record_count, 1000);
  EXPECT_EQ(header->last_offset_delta, 999);
  std::int64_t max_ts = records[0].timestamp;
  for (const auto& r : records) max_ts = std::max(max_ts, r.timestamp);
  EXPECT_EQ(header->max_timestamp, max_ts);
  EXPECT_TRUE(batch_crc_ok(ByteView(*encoded)));
  auto decoded = decode_records(ByteView(*encoded));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_same_records(records, *decoded);
}

TEST_P(RecordBatchCodec, RoundTripNullsAndEmpties) {
  std::vector<Record> records = {
      make_record(0, 1, std::nullopt, std::nullopt),
      make_record(1, 2, Bytes{}, Bytes{}),
      make_record(2, 3, std::nullopt, Bytes{}, {{"", std::nullopt}, {"x", Bytes{}}}),
  };
  BatchOptions options;
  options.compression = GetParam();
  auto encoded = encode_batch(records, options);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto decoded = decode_records(ByteView(*encoded));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_same_records(records, *decoded);
}

TEST_P(RecordBatchCodec, RoundTripOneMebibyteValue) {
  std::mt19937 rng(11);
  Bytes big(1 << 20);
  // Half random, half repetitive: exercises both incompressible and compressible stretches.
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = i < big.size() / 2 ? static_cast<std::uint8_t>(rng()) : 'z';
  std::vector<Record> records = {make_record(0, 1, b("big"), big), make_record(1, 2, b("small"), b("s"))};
  BatchOptions options;
  options.compression = GetParam();
  auto encoded = encode_batch(records, options);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto decoded = decode_records(ByteView(*encoded), 2 << 20);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_same_records(records, *decoded);
  // The same batch with a limit below its size fails cleanly.
  auto limited = decode_records(ByteView(*encoded), 512 * 1024);
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().kind, ErrorKind::corrupt);
}

TEST_P(RecordBatchCodec, CompressDecompressEmptyAndSmall) {
  for (std::string_view text : {std::string_view(""), std::string_view("a"), std::string_view("hello hello hello")}) {
    auto packed = compress(GetParam(), as_bytes(text));
    ASSERT_TRUE(packed.ok());
    auto unpacked = decompress(GetParam(), ByteView(*packed), 1024);
    ASSERT_TRUE(unpacked.ok()) << compression_name(GetParam()) << ": " << unpacked.error().message;
    EXPECT_EQ(as_chars(ByteView(*unpacked)), text);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, RecordBatchCodec, ::testing::ValuesIn(kAllCodecs),
                         [](const auto& info) { return std::string(compression_name(info.param)); });

TEST(Snappy, XerialFramingBuiltByHand) {
  // Frame three blocks ourselves per the xerial layout and check the decoder joins them.
  std::string parts[] = {"first block, ", std::string(5000, 'q'), " and the end"};
  Bytes framed = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0x00, 0, 0, 0, 1, 0, 0, 0, 1};
  std::string whole;
  for (const auto& part : parts) {
    Bytes block = snappy_compress_raw(as_bytes(part));
    ByteWriter w(framed);
    w.write_i32(static_cast<std::int32_t>(block.size()));
    w.write_bytes(ByteView(block));
    whole += part;
  }
  EXPECT_TRUE(is_xerial_snappy(ByteView(framed)));
  auto out = decompress(Compression::snappy, ByteView(framed), 1 << 20);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(as_chars(ByteView(*out)), whole);

  // Raw snappy (librdkafka's form) decodes through the same entry point.
  Bytes raw = snappy_compress_raw(as_bytes(whole));
  EXPECT_FALSE(is_xerial_snappy(ByteView(raw)));
  auto out_raw = decompress(Compression::snappy, ByteView(raw), 1 << 20);
  ASSERT_TRUE(out_raw.ok());
  EXPECT_EQ(as_chars(ByteView(*out_raw)), whole);

  // A block length past the end is corrupt, not a crash.
  Bytes bad = framed;
  bad[16] = 0x7f;
  EXPECT_FALSE(decompress(Compression::snappy, ByteView(bad), 1 << 20).ok());
}

TEST(Snappy, XerialWriterUsesThirtyTwoKibBlocks) {
  Bytes input(100 * 1024, 'r');
  Bytes framed = snappy_compress_xerial(ByteView(input));
  ASSERT_TRUE(is_xerial_snappy(ByteView(framed)));
  ByteReader reader(ByteView(framed).subspan(16));
  int blocks = 0;
  while (!reader.at_end()) {
    std::int32_t length = 0;
    ASSERT_TRUE(reader.read_i32(length));
    ASSERT_TRUE(reader.skip(static_cast<std::size_t>(length)));
    ++blocks;
  }
  EXPECT_EQ(blocks, 4);  // 32 + 32 + 32 + 4 KiB
}

TEST(RecordBatchCrc, EverySingleBitFlipInCoveredRangeDetected) {
  auto encoded = encode_batch(varied_records(5, 3), BatchOptions{});
  ASSERT_TRUE(encoded.ok());
  Bytes batch = *encoded;
  ASSERT_TRUE(batch_crc_ok(ByteView(batch)));
  for (std::size_t byte = kBatchAttributesOffset; byte < batch.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      batch[byte] ^= static_cast<std::uint8_t>(1u << bit);
      EXPECT_FALSE(batch_crc_ok(ByteView(batch))) << "byte " << byte << " bit " << bit;
      batch[byte] ^= static_cast<std::uint8_t>(1u << bit);
    }
  }
  // The stored CRC itself flipped is a mismatch too.
  for (std::size_t byte = kBatchCrcOffset; byte < kBatchAttributesOffset; ++byte) {
    batch[byte] ^= 0x10;
    EXPECT_FALSE(batch_crc_ok(ByteView(batch)));
    batch[byte] ^= 0x10;
  }
  EXPECT_TRUE(batch_crc_ok(ByteView(batch)));
}

TEST(RecordBatchRewrite, BaseOffsetAndEpochKeepCrc) {
  auto encoded = encode_batch(varied_records(10, 5), BatchOptions{.compression = Compression::lz4});
  ASSERT_TRUE(encoded.ok());
  Bytes batch = *encoded;
  set_base_offset(batch, 123456789012LL);
  set_partition_leader_epoch(batch, 17);
  EXPECT_TRUE(batch_crc_ok(ByteView(batch)));
  auto header = parse_batch_header(ByteView(batch));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->base_offset, 123456789012LL);
  EXPECT_EQ(header->partition_leader_epoch, 17);
  EXPECT_EQ(header->last_offset(), 123456789012LL + 9);
  auto decoded = decode_records(ByteView(batch));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->front().offset, 123456789012LL);
  EXPECT_EQ(decoded->back().offset, 123456789012LL + 9);
}

TEST(RecordBatchRewrite, LogAppendTimeKeepsBatchValid) {
  auto records = varied_records(10, 9);
  auto encoded = encode_batch(records, BatchOptions{.compression = Compression::zstd});
  ASSERT_TRUE(encoded.ok());
  Bytes batch = *encoded;
  set_log_append_time(batch, 1'800'000'000'000LL);
  EXPECT_TRUE(batch_crc_ok(ByteView(batch)));
  auto header = parse_batch_header(ByteView(batch));
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(header->log_append_time());
  EXPECT_EQ(header->max_timestamp, 1'800'000'000'000LL);
  EXPECT_EQ(header->compression(), Compression::zstd);  // other attribute bits untouched
  EXPECT_EQ(header->base_timestamp, records[0].timestamp);
  auto decoded = decode_records(ByteView(batch));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), records.size());
}

TEST(RecordBatchSplit, WholeBatchesAndTrailingPartial) {
  Bytes blob;
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 3; ++i) {
    auto encoded = encode_batch(varied_records(3 + i, i), BatchOptions{.base_offset = i * 100});
    ASSERT_TRUE(encoded.ok());
    sizes.push_back(encoded->size());
    blob.insert(blob.end(), encoded->begin(), encoded->end());
  }
  auto split = split_batches(ByteView(blob));
  ASSERT_TRUE(split.ok()) << split.error().message;
  ASSERT_EQ(split->batches.size(), 3u);
  EXPECT_EQ(split->trailing_bytes, 0u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(split->batches[i].size(), sizes[i]);
    EXPECT_TRUE(batch_crc_ok(split->batches[i]));
    EXPECT_EQ(parse_batch_header(split->batches[i])->base_offset, static_cast<std::int64_t>(i * 100));
  }
  // Cut into the last batch: two whole batches and the rest reported as trailing.
  for (std::size_t cut : {std::size_t{1}, std::size_t{11}, std::size_t{12}, std::size_t{40}, sizes[2] - 1}) {
    auto partial = split_batches(ByteView(blob).first(sizes[0] + sizes[1] + cut));
    ASSERT_TRUE(partial.ok()) << partial.error().message;
    EXPECT_EQ(partial->batches.size(), 2u);
    EXPECT_EQ(partial->trailing_bytes, cut);
  }
  auto empty = split_batches(ByteView());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->batches.empty());
  // A whole batch with the wrong magic is an error, not trailing bytes.
  Bytes bad = blob;
  bad[sizes[0] + 16] = 1;
  EXPECT_FALSE(split_batches(ByteView(bad)).ok());
}

}  // namespace
}  // namespace bulwark::wire
