// Kafka's message sets of magic v0 and v1, which Produce v0-v2 clients send (kafka-python with
// api_version < 0.11, old Java and librdkafka clients), and their conversion into one v2 record batch,
// as Kafka 3.7 converts them on append (Kafka 4.0 refuses them).
//
// Entry layout (big-endian): offset i64 | size i32 | crc u32 | magic i8 | attributes i8 |
// [timestamp i64, v1 only] | key bytes (i32 length, -1 = null) | value bytes (likewise).
// The CRC is CRC-32 (zlib's, not CRC-32C) of magic .. end of value. Attributes bits 0-2 are the codec;
// in v1 bit 3 is LogAppendTime. A compressed entry is a wrapper whose value is a nested message set of
// uncompressed messages of the same magic (in v1 with offsets relative to the first inner one).
// Nesting is one level deep: a compressed inner message is refused, so depth is bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "wire/record_batch.h"

namespace bulwark::wire {

constexpr std::size_t kLegacyMagicOffset = 16;  // same place as a v2 batch's magic byte

// The magic byte of the first entry in a records blob, or -1 when it is too short to hold one.
int first_entry_magic(ByteView records);

struct LegacyMessages {
  std::vector<Record> records;  // offsets 0, 1, ...; v0 messages have timestamp -1 (none)
  std::int8_t magic = 0;
  Compression compression = Compression::none;  // the wrappers' codec (the last one, when they differ)
};

// Parses and validates a whole message set. Errors, by ErrorKind (Kafka's code at the protocol edge):
//   corrupt           CORRUPT_MESSAGE: a CRC mismatch, a truncated entry, a size out of range, a
//                     wrapper whose compressed value does not decompress, an unknown codec
//   invalid_argument  INVALID_RECORD: a v2 batch or mixed magics in the set, nested compression, a
//                     wrapper with a null value or an empty inner set, no message at all
//   unsupported       UNSUPPORTED_COMPRESSION_TYPE: zstd, which v0/v1 cannot carry
// A compressed wrapper's inner set may decompress to at most max_uncompressed bytes.
Result<LegacyMessages> decode_legacy_messages(ByteView message_set, std::size_t max_uncompressed = 64u << 20);

// decode_legacy_messages, then one v2 batch (base offset 0, no producer id) compressed with the
// wrappers' codec, ready for the normal append path.
Result<Bytes> convert_legacy_messages(ByteView message_set, std::size_t max_uncompressed = 64u << 20);

// CRC-32 (ISO-HDLC, zlib's) as the v0/v1 formats use it.
std::uint32_t legacy_crc32(ByteView data);

// Encodes one message (tests, tools and the seed generator): codec goes into the attributes, value
// is written as given (already compressed for a wrapper).
struct LegacyMessage {
  std::int64_t offset = 0;
  std::int8_t magic = 1;
  std::int8_t attributes = 0;
  std::int64_t timestamp = -1;  // v1 only
  std::optional<Bytes> key;
  std::optional<Bytes> value;
};
void append_legacy_message(const LegacyMessage& message, Bytes& out);

}  // namespace bulwark::wire
