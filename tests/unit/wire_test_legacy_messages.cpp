// Message sets of magic v0/v1 (Produce v0-v2): Kafka's own bytes (as kafka-python's
// LegacyRecordBatchBuilder writes them, CRCs included), compressed wrappers with every codec v0/v1 can
// carry, and hostile input, which must give Kafka's error (by ErrorKind) and never a crash.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wire/compression.h"
#include "wire/legacy_messages.h"
#include "wire/record_batch.h"

namespace bulwark::wire {
namespace {

Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes unhex(std::string_view hex) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// Two messages: key "k1" value "hello", then a null key and value "world" (v1: timestamps
// 1700000000000 and 1700000000005), uncompressed and in a gzip wrapper.
const Bytes kV0 = unhex(
    "00000000000000000000001571ef57700000000000026b310000000568656c6c6f0000000000000001000000138bc0cd770000ffffffff"
    "00000005776f726c64");
const Bytes kV0Gzip = unhex(
    "00000000000000000000004cc38308f80001ffffffff0000003e1f8b08008120126b02ff63608003d1c2f7e105601653b6219064cd48"
    "cdc9c9874a3202b170f781b3e50c0cff8100245d9e5f949302002ac0136a40000000");
const Bytes kV1 = unhex(
    "00000000000000000000001d9e34959601000000018bcfe56800000000026b310000000568656c6c6f00000000000000010000001b06"
    "27d21201000000018bcfe56805ffffffff00000005776f726c64");
const Bytes kV1Gzip = unhex(
    "00000000000000000000005d911e3d3d01010000000000000000ffffffff000000471f8b08008120126b02ff63608003d9792653a731"
    "02198cdde79f66804498b20d81246b466a4e4e3e5411485e9a4dfd92105c21eb7f2000292bcf2fca4901001597fd6150000000");

void expect_two_messages(const Result<LegacyMessages>& decoded, std::int8_t magic) {
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->magic, magic);
  ASSERT_EQ(decoded->records.size(), 2u);
  const auto& first = decoded->records[0];
  const auto& second = decoded->records[1];
  EXPECT_EQ(first.offset, 0);
  EXPECT_EQ(second.offset, 1);
  EXPECT_EQ(first.key, b("k1"));
  EXPECT_EQ(first.value, b("hello"));
  EXPECT_FALSE(second.key.has_value());
  EXPECT_EQ(second.value, b("world"));
  EXPECT_EQ(first.timestamp, magic == 0 ? -1 : 1700000000000);
  EXPECT_EQ(second.timestamp, magic == 0 ? -1 : 1700000000005);
}

TEST(LegacyMessages, KafkaBytesV0AndV1) {
  EXPECT_EQ(first_entry_magic(kV0), 0);
  EXPECT_EQ(first_entry_magic(kV1), 1);
  expect_two_messages(decode_legacy_messages(kV0), 0);
  expect_two_messages(decode_legacy_messages(kV1), 1);
}

TEST(LegacyMessages, KafkaGzipWrappers) {
  auto v0 = decode_legacy_messages(kV0Gzip);
  expect_two_messages(v0, 0);
  EXPECT_EQ(v0->compression, Compression::gzip);
  // The v1 wrapper's offset is the last inner one's relative offset (1); inner offsets are relative.
  auto v1 = decode_legacy_messages(kV1Gzip);
  expect_two_messages(v1, 1);
  EXPECT_EQ(v1->compression, Compression::gzip);
}

TEST(LegacyMessages, EncoderMatchesKafkaBytes) {
  Bytes out;
  append_legacy_message({0, 1, 0, 1700000000000, b("k1"), b("hello")}, out);
  append_legacy_message({1, 1, 0, 1700000000005, std::nullopt, b("world")}, out);
  EXPECT_EQ(out, kV1);
}

TEST(LegacyMessages, ConvertsToOneV2Batch) {
  auto batch = convert_legacy_messages(kV1Gzip);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  auto header = parse_batch_header(*batch);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->compression(), Compression::gzip);
  EXPECT_EQ(header->record_count, 2);
  EXPECT_EQ(header->max_timestamp, 1700000000005);
  EXPECT_TRUE(batch_crc_ok(*batch));
  auto records = decode_records(*batch);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ((*records)[0].value, b("hello"));
  EXPECT_EQ((*records)[1].timestamp, 1700000000005);
}

Bytes inner_set(std::int8_t magic, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i)
    append_legacy_message({i, magic, 0, 1000 + i, b("key" + std::to_string(i)), b("value-" + std::to_string(i))}, out);
  return out;
}

Bytes wrapper(std::int8_t magic, Compression codec, ByteView inner, std::int8_t extra_attributes = 0) {
  auto compressed = compress(codec, inner);
  EXPECT_TRUE(compressed.ok());
  Bytes out;
  append_legacy_message({0, magic, static_cast<std::int8_t>(static_cast<int>(codec) | extra_attributes), 5000,
                         std::nullopt, *compressed},
                        out);
  return out;
}

TEST(LegacyMessages, EveryLegacyCodecRoundTrips) {
  for (std::int8_t magic : {0, 1}) {
    for (Compression codec : {Compression::gzip, Compression::snappy, Compression::lz4}) {
      auto decoded = decode_legacy_messages(wrapper(magic, codec, inner_set(magic, 30)));
      ASSERT_TRUE(decoded.ok()) << compression_name(codec) << ": " << decoded.error().message;
      ASSERT_EQ(decoded->records.size(), 30u);
      EXPECT_EQ(decoded->records[29].value, b("value-29"));
      EXPECT_EQ(decoded->records[29].offset, 29);
      EXPECT_EQ(decoded->records[29].timestamp, magic == 0 ? -1 : 1029);
    }
  }
  auto raw_snappy = snappy_compress_raw(inner_set(1, 3));
  Bytes out;
  append_legacy_message({0, 1, 2, 0, std::nullopt, raw_snappy}, out);  // librdkafka's unframed snappy
  EXPECT_TRUE(decode_legacy_messages(out).ok());
}

TEST(LegacyMessages, LogAppendTimeWrapperStampsInnerMessages) {
  auto decoded = decode_legacy_messages(wrapper(1, Compression::gzip, inner_set(1, 2), 0x08));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->records[0].timestamp, 5000);
  EXPECT_EQ(decoded->records[1].timestamp, 5000);
}

// KAFKA-3160: v0 LZ4 wrappers carry a frame descriptor checksum computed the wrong way; Kafka's v0
// reader ignores it, the v1 reader does not.
TEST(LegacyMessages, V0Lz4HeaderChecksumQuirk) {
  for (std::int8_t magic : {0, 1}) {
    const Bytes inner = inner_set(magic, 3);
    auto frame = compress(Compression::lz4, inner);
    ASSERT_TRUE(frame.ok());
    (*frame)[6] ^= 0x5a;  // the HC byte: FLG and BD sit at 4 and 5, no content size or dictionary id
    Bytes message;
    append_legacy_message({0, magic, 3, 0, std::nullopt, *frame}, message);
    auto decoded = decode_legacy_messages(message);
    if (magic == 0) {
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(decoded->records.size(), 3u);
    } else {
      ASSERT_FALSE(decoded.ok());
      EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
    }
  }
}

ErrorKind failure(ByteView set) {
  auto decoded = decode_legacy_messages(set, 1 << 20);
  EXPECT_FALSE(decoded.ok());
  return decoded.ok() ? ErrorKind::internal : decoded.error().kind;
}

TEST(LegacyMessages, BadCrcIsCorrupt) {
  for (const Bytes* set : {&kV0, &kV1, &kV0Gzip, &kV1Gzip}) {
    Bytes bad = *set;
    bad.back() ^= 0x01;  // the last value byte
    EXPECT_EQ(failure(bad), ErrorKind::corrupt);
    bad = *set;
    bad[13] ^= 0x01;  // the CRC itself
    EXPECT_EQ(failure(bad), ErrorKind::corrupt);
  }
  // A wrong CRC on an inner message is caught too.
  Bytes inner = inner_set(1, 2);
  inner.back() ^= 0x01;
  EXPECT_EQ(failure(wrapper(1, Compression::gzip, inner)), ErrorKind::corrupt);
}

TEST(LegacyMessages, TruncatedIsCorrupt) {
  for (const Bytes* set : {&kV0, &kV1, &kV1Gzip}) {
    const std::size_t first_end = 12 + ((std::size_t{(*set)[10]} << 8) | (*set)[11]);
    for (std::size_t cut = 1; cut < set->size(); ++cut) {
      if (cut == first_end) continue;  // a whole first message: a valid set
      Bytes truncated(set->begin(), set->begin() + static_cast<std::ptrdiff_t>(cut));
      EXPECT_EQ(failure(truncated), ErrorKind::corrupt) << "cut at " << cut;
    }
  }
  Bytes tiny = kV0;
  tiny[11] = 3;  // size below the smallest message
  EXPECT_EQ(failure(tiny), ErrorKind::corrupt);
  Bytes huge = kV0;
  huge[8] = 0x7f;  // size beyond the data
  EXPECT_EQ(failure(huge), ErrorKind::corrupt);
}

TEST(LegacyMessages, NestedCompressionIsRefused) {
  // A compressed message inside a compressed one: depth is limited to one wrapper.
  const Bytes nested = wrapper(1, Compression::gzip, wrapper(1, Compression::gzip, inner_set(1, 2)));
  EXPECT_EQ(failure(nested), ErrorKind::invalid_argument);
  const Bytes deeper = wrapper(1, Compression::snappy, nested);
  EXPECT_EQ(failure(deeper), ErrorKind::invalid_argument);
}

TEST(LegacyMessages, InvalidSetsAreInvalidRecord) {
  EXPECT_EQ(failure(wrapper(1, Compression::gzip, inner_set(0, 2))), ErrorKind::invalid_argument);  // magic mix
  Bytes mixed = kV0;
  mixed.insert(mixed.end(), kV1.begin(), kV1.end());
  EXPECT_EQ(failure(mixed), ErrorKind::invalid_argument);
  Bytes null_wrapper;
  append_legacy_message({0, 1, 1, 0, std::nullopt, std::nullopt}, null_wrapper);
  EXPECT_EQ(failure(null_wrapper), ErrorKind::invalid_argument);
  EXPECT_EQ(failure(wrapper(1, Compression::gzip, Bytes{})), ErrorKind::invalid_argument);  // empty inner set
  EXPECT_EQ(failure(Bytes{}), ErrorKind::invalid_argument);
  // A v2 batch in a legacy set.
  Record r;
  r.value = b("v");
  auto v2 = encode_batch({r}, {});
  ASSERT_TRUE(v2.ok());
  Bytes with_v2 = kV1;
  with_v2.insert(with_v2.end(), v2->begin(), v2->end());
  EXPECT_EQ(failure(with_v2), ErrorKind::invalid_argument);
}

TEST(LegacyMessages, CodecsV0V1CannotCarry) {
  Bytes zstd;
  append_legacy_message({0, 1, 4, 0, std::nullopt, b("x")}, zstd);
  EXPECT_EQ(failure(zstd), ErrorKind::unsupported);
  Bytes unknown;
  append_legacy_message({0, 1, 6, 0, std::nullopt, b("x")}, unknown);
  EXPECT_EQ(failure(unknown), ErrorKind::corrupt);
  Bytes garbage;
  append_legacy_message({0, 1, 1, 0, std::nullopt, b("not gzip at all")}, garbage);
  EXPECT_EQ(failure(garbage), ErrorKind::corrupt);
}

TEST(LegacyMessages, DecompressionBombIsBounded) {
  Bytes big;
  for (int i = 0; i < 200; ++i) append_legacy_message({i, 1, 0, 0, std::nullopt, Bytes(10000, 'x')}, big);
  EXPECT_EQ(failure(wrapper(1, Compression::gzip, big)), ErrorKind::corrupt);  // 2 MB > the 1 MiB limit
}

}  // namespace
}  // namespace bulwark::wire
