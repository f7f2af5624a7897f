// Hostile record batches: truncations, random mutations, inconsistent record fields and
// decompression bombs must all give error values, never a crash or an unbounded allocation.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "wire/compression.h"
#include "wire/record_batch.h"

namespace bulwark::wire {
namespace {

const Compression kAllCodecs[] = {Compression::none, Compression::gzip, Compression::snappy, Compression::lz4,
                                  Compression::zstd};

Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes sample_batch(Compression codec, std::size_t n = 20) {
  std::vector<Record> records;
  for (std::size_t i = 0; i < n; ++i) {
    Record r;
    r.offset = static_cast<std::int64_t>(i);
    r.timestamp = 1000 + static_cast<std::int64_t>(i);
    if (i % 3) r.key = b("key" + std::to_string(i));
    r.value = b("value-" + std::to_string(i) + std::string(i * 7, 'v'));
    if (i % 2) r.headers.push_back({"trace", b("abc")});
    records.push_back(std::move(r));
  }
  BatchOptions options;
  options.compression = codec;
  auto encoded = encode_batch(records, options);
  EXPECT_TRUE(encoded.ok());
  return encoded.ok() ? *encoded : Bytes{};
}

void set_i32(Bytes& batch, std::size_t at, std::int32_t v) {
  for (int i = 0; i < 4; ++i) batch[at + i] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(v) >> (24 - 8 * i));
}
void fix_crc(Bytes& batch) {
  std::uint32_t crc = crc32c(ByteView(batch).subspan(kBatchAttributesOffset));
  set_i32(batch, kBatchCrcOffset, static_cast<std::int32_t>(crc));
}

// A batch around a hand-written records section (uncompressed), with a correct header and CRC.
Bytes batch_with_section(const Bytes& section, std::int32_t record_count) {
  Bytes batch(kBatchHeaderSize + section.size(), 0);
  std::copy(section.begin(), section.end(), batch.begin() + kBatchHeaderSize);
  set_i32(batch, kBatchLengthOffset, static_cast<std::int32_t>(batch.size() - kBatchLogOverhead));
  batch[16] = 2;
  set_i32(batch, 57, record_count);
  fix_crc(batch);
  return batch;
}

class Malformed : public ::testing::TestWithParam<Compression> {};

TEST_P(Malformed, EveryTruncationFails) {
  Bytes batch = sample_batch(GetParam());
  ASSERT_TRUE(decode_records(ByteView(batch)).ok());
  for (std::size_t cut = 0; cut < batch.size(); ++cut) {
    ByteView view = ByteView(batch).first(cut);
    EXPECT_FALSE(parse_batch_header(view).ok()) << cut;
    EXPECT_FALSE(batch_crc_ok(view)) << cut;
    EXPECT_FALSE(decode_records(view).ok()) << cut;
    auto split = split_batches(view);
    ASSERT_TRUE(split.ok()) << cut;  // a cut batch is a trailing partial, not an error
    EXPECT_TRUE(split->batches.empty());
    EXPECT_EQ(split->trailing_bytes, cut);
  }
}

TEST_P(Malformed, EveryTruncatedRecordsSectionFails) {
  // The header agrees with the shortened length, so only the records decoder can notice.
  Bytes batch = sample_batch(GetParam());
  for (std::size_t cut = kBatchHeaderSize; cut < batch.size(); ++cut) {
    Bytes shorter(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(cut));
    set_i32(shorter, kBatchLengthOffset, static_cast<std::int32_t>(cut - kBatchLogOverhead));
    fix_crc(shorter);
    ASSERT_TRUE(parse_batch_header(ByteView(shorter)).ok());
    EXPECT_TRUE(batch_crc_ok(ByteView(shorter)));
    auto decoded = decode_records(ByteView(shorter));
    EXPECT_FALSE(decoded.ok()) << "cut at " << cut << " of " << batch.size();
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
    }
  }
}

TEST_P(Malformed, RandomMutationsNeverCrash) {
  Bytes original = sample_batch(GetParam());
  std::mt19937 rng(20261123 + static_cast<unsigned>(GetParam()));
  int decoded_ok = 0;
  for (int round = 0; round < 3000; ++round) {
    Bytes batch = original;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Mostly the records section, sometimes the header.
      std::size_t at = rng() % 4 == 0 ? rng() % kBatchHeaderSize : kBatchHeaderSize + rng() % (batch.size() - kBatchHeaderSize);
      batch[at] = static_cast<std::uint8_t>(rng());
    }
    if (rng() % 2) fix_crc(batch);
    (void)batch_crc_ok(ByteView(batch));
    auto split = split_batches(ByteView(batch));
    auto header = parse_batch_header(ByteView(batch));
    auto decoded = decode_records(ByteView(batch), 1 << 20);
    if (decoded.ok()) {
      ++decoded_ok;
      ASSERT_TRUE(header.ok());
      EXPECT_EQ(decoded->size(), static_cast<std::size_t>(header->record_count));
    }
    if (split.ok()) {
      for (ByteView v : split->batches) EXPECT_TRUE(parse_batch_header(v).ok());
    }
  }
  // Some mutations (inside values, timestamps) still decode; that is fine and expected.
  SUCCEED() << decoded_ok << " of 3000 mutated batches still decoded";
}

TEST_P(Malformed, DecompressionBombFailsCleanly) {
  if (GetParam() == Compression::none) GTEST_SKIP() << "no compression";
  Bytes zeros(8u << 20, 0);
  auto packed = compress(GetParam(), ByteView(zeros));
  ASSERT_TRUE(packed.ok());
  auto out = decompress(GetParam(), ByteView(*packed), 1u << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind, ErrorKind::corrupt);
  // Exactly at the limit passes, one byte under fails.
  EXPECT_TRUE(decompress(GetParam(), ByteView(*packed), zeros.size()).ok());
  EXPECT_FALSE(decompress(GetParam(), ByteView(*packed), zeros.size() - 1).ok());

  // The same inside a record batch.
  Record r;
  r.value = zeros;
  auto batch = encode_batch({r}, BatchOptions{.compression = GetParam()});
  ASSERT_TRUE(batch.ok());
  EXPECT_LT(batch->size(), 1u << 20);
  auto decoded = decode_records(ByteView(*batch), 1u << 20);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
}

TEST_P(Malformed, GarbageCompressedPayloadFails) {
  if (GetParam() == Compression::none) GTEST_SKIP() << "no compression";
  std::mt19937 rng(5);
  for (std::size_t size : {0, 1, 4, 16, 100, 5000}) {
    Bytes garbage(size);
    for (auto& byte : garbage) byte = static_cast<std::uint8_t>(rng());
    auto out = decompress(GetParam(), ByteView(garbage), 1 << 20);
    EXPECT_FALSE(out.ok()) << compression_name(GetParam()) << " size " << size;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, Malformed, ::testing::ValuesIn(kAllCodecs),
                         [](const auto& info) { return std::string(compression_name(info.param)); });

TEST(MalformedRecords, HugeRecordCountRejectedWithoutAllocating) {
  Bytes section = {0x0c, 0, 0, 0, 1, 1, 0};  // one minimal record: length 6
  ASSERT_TRUE(decode_records(ByteView(batch_with_section(section, 1))).ok());
  auto r = decode_records(ByteView(batch_with_section(section, 0x7fffffff)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
  EXPECT_FALSE(parse_batch_header(ByteView(batch_with_section(section, -1))).ok());
}

TEST(MalformedRecords, InconsistentFieldsRejected) {
  struct Case {
    const char* name;
    Bytes section;
    std::int32_t count;
  };
  const Case cases[] = {
      // length 6: attributes, tsDelta, offsetDelta, key -1, value -1, headers 0 (valid form below)
      {"count says two, one present", {0x0c, 0, 0, 0, 1, 1, 0}, 2},
      {"bytes after the declared records", {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 0, 1, 1, 0}, 1},
      {"record length larger than rest", {0x10, 0, 0, 0, 1, 1, 0}, 1},
      {"record length negative", {0x01, 0, 0, 0, 1, 1, 0}, 1},
      {"record length shorter than fields", {0x0a, 0, 0, 0, 1, 1, 0}, 1},
      {"record length longer than fields", {0x0e, 0, 0, 0, 1, 1, 0, 0}, 1},
      {"key length -2", {0x0c, 0, 0, 0, 3, 1, 0}, 1},
      {"key length past end", {0x0c, 0, 0, 0, 0x20, 1, 0}, 1},
      {"value length past end", {0x0c, 0, 0, 0, 1, 0x20, 0}, 1},
      {"header count negative", {0x0c, 0, 0, 0, 1, 1, 3}, 1},
      {"header count past end", {0x0c, 0, 0, 0, 1, 1, 0x40}, 1},
      {"null header key", {0x10, 0, 0, 0, 1, 1, 2, 1, 1}, 1},
      {"unterminated varint", {0x0c, 0, 0x80, 0x80, 0x80, 0x80, 0x80}, 1},
  };
  for (const auto& c : cases) {
    auto r = decode_records(ByteView(batch_with_section(c.section, c.count)));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().kind, ErrorKind::corrupt) << c.name;
    EXPECT_FALSE(r.error().message.empty());
  }
  // The valid base forms decode.
  auto ok = decode_records(ByteView(batch_with_section({0x0c, 0, 0, 0, 1, 1, 0}, 1)));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE((*ok)[0].key.has_value());
  EXPECT_FALSE((*ok)[0].value.has_value());
  auto with_header = decode_records(ByteView(batch_with_section({0x10, 0, 0, 0, 1, 1, 2, 0, 1}, 1)));
  ASSERT_TRUE(with_header.ok()) << with_header.error().message;
  EXPECT_EQ((*with_header)[0].headers.size(), 1u);
  EXPECT_FALSE((*with_header)[0].headers[0].value.has_value());
}

TEST(MalformedRecords, UnknownCodecBits) {
  Bytes batch = sample_batch(Compression::none);
  batch[kBatchAttributesOffset + 1] = 5;
  fix_crc(batch);
  EXPECT_TRUE(parse_batch_header(ByteView(batch)).ok());
  auto r = decode_records(ByteView(batch));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
}

TEST(MalformedRecords, SplitRejectsTinyLength) {
  Bytes batch = sample_batch(Compression::none);
  Bytes two = batch;
  two.insert(two.end(), batch.begin(), batch.end());
  set_i32(two, batch.size() + kBatchLengthOffset, 10);
  EXPECT_FALSE(split_batches(ByteView(two)).ok());
  set_i32(two, batch.size() + kBatchLengthOffset, -5);
  EXPECT_FALSE(split_batches(ByteView(two)).ok());
}

TEST(MalformedRecords, RewritesIgnoreShortBuffers) {
  Bytes tiny(10, 0xab);
  set_base_offset(tiny, 1);
  set_partition_leader_epoch(tiny, 1);
  set_log_append_time(tiny, 1);
  EXPECT_EQ(tiny, Bytes(10, 0xab));
}

}  // namespace
}  // namespace bulwark::wire
