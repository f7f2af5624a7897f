// Kafka record batches (magic v2), as the broker sees them on the produce and fetch paths: a fixed
// 61-byte header read in place, CRC-32C validation, offset assignment without re-encoding, and record
// iteration / building with every compression codec for the places that need the records themselves.
//
// Layout (big-endian): baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
// attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 | producerId i64 |
// producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
// batchLength counts from partitionLeaderEpoch to the end; the CRC covers attributes .. end, so the
// broker may rewrite baseOffset and partitionLeaderEpoch without recomputing it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace bulwark::wire {

constexpr std::size_t kBatchHeaderSize = 61;
constexpr std::size_t kBatchLengthOffset = 8;        // where batchLength sits
constexpr std::size_t kBatchLogOverhead = 12;        // baseOffset + batchLength
constexpr std::size_t kBatchCrcOffset = 17;
constexpr std::size_t kBatchAttributesOffset = 21;   // first byte covered by the CRC

enum class Compression : std::uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

struct BatchHeader {
  std::int64_t base_offset = 0;
  std::int32_t batch_length = 0;
  std::int32_t partition_leader_epoch = 0;
  std::int8_t magic = 2;
  std::uint32_t crc = 0;
  std::int16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  std::int64_t base_timestamp = 0;
  std::int64_t max_timestamp = 0;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  std::int32_t record_count = 0;

  Compression compression() const { return static_cast<Compression>(attributes & 0x7); }
  bool log_append_time() const { return (attributes & 0x8) != 0; }
  bool is_transactional() const { return (attributes & 0x10) != 0; }
  bool is_control() const { return (attributes & 0x20) != 0; }
  std::int64_t last_offset() const { return base_offset + last_offset_delta; }
  // Whole size on the wire / on disk: batchLength + 12.
  std::size_t total_size() const { return static_cast<std::size_t>(batch_length) + kBatchLogOverhead; }
};

// Reads the header of the batch starting at data[0]. Fails (corrupt) when fewer than 61 bytes are
// present, magic is not 2, or batchLength is smaller than the header or larger than the data.
Result<BatchHeader> parse_batch_header(ByteView data);

// True when the stored CRC matches CRC-32C of bytes [21, total_size).
bool batch_crc_ok(ByteView batch);

// Splits a records blob (Produce request, Fetch response, log segment) into whole batches.
// Each batch's header is parsed and bounds-checked; a trailing partial batch (allowed in Fetch
// responses) is reported in trailing_bytes rather than as an error.
struct SplitBatches {
  std::vector<ByteView> batches;
  std::size_t trailing_bytes = 0;
};
Result<SplitBatches> split_batches(ByteView records);

// In-place rewrites outside the CRC-covered range.
void set_base_offset(std::span<std::uint8_t> batch, std::int64_t base_offset);
void set_partition_leader_epoch(std::span<std::uint8_t> batch, std::int32_t epoch);
// Rewrites maxTimestamp and sets the LogAppendTime attribute bit, then recomputes the CRC (used when
// message.timestamp.type=LogAppendTime).
void set_log_append_time(std::span<std::uint8_t> batch, std::int64_t timestamp);

struct RecordHeader {
  std::string key;
  std::optional<Bytes> value;
};

struct Record {
  std::int64_t offset = 0;     // base_offset + offsetDelta
  std::int64_t timestamp = 0;  // base_timestamp + timestampDelta
  std::optional<Bytes> key;    // nullopt = null key
  std::optional<Bytes> value;  // nullopt = null value (tombstone)
  std::vector<RecordHeader> headers;
};

// Decompresses (when needed) and decodes every record of one batch. Bounds-checked: corrupt input
// and decompression bombs (more than max_uncompressed bytes) give an error, never a crash.
Result<std::vector<Record>> decode_records(ByteView batch, std::size_t max_uncompressed = 64u << 20);

// Builds a complete batch (header, records, CRC) with the given codec. Offsets and timestamps in the
// records are taken relative to the first record.
struct BatchOptions {
  Compression compression = Compression::none;
  std::int64_t base_offset = 0;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  bool transactional = false;
  bool control = false;
  std::int32_t partition_leader_epoch = -1;
  // For the log cleaner, which keeps a batch's offset range when it drops records from it: offset deltas
  // count from base_offset (not from the first record), and lastOffsetDelta is this when >= 0.
  bool deltas_from_base_offset = false;
  std::int32_t last_offset_delta = -1;
};
Result<Bytes> encode_batch(const std::vector<Record>& records, const BatchOptions& options);

}  // namespace bulwark::wire
