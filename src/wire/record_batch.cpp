#include "wire/record_batch.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string>

#include "base/crc32c.h"
#include "wire/compression.h"

namespace bulwark::wire {
namespace {

// Field offsets inside the 61-byte header.
constexpr std::size_t kLeaderEpochOffset = 12;
constexpr std::size_t kMagicOffset = 16;
constexpr std::size_t kLastOffsetDeltaOffset = 23;
constexpr std::size_t kBaseTimestampOffset = 27;
constexpr std::size_t kMaxTimestampOffset = 35;
constexpr std::size_t kProducerIdOffset = 43;
constexpr std::size_t kProducerEpochOffset = 51;
constexpr std::size_t kBaseSequenceOffset = 53;
constexpr std::size_t kRecordCountOffset = 57;
constexpr std::int32_t kMinBatchLength = static_cast<std::int32_t>(kBatchHeaderSize - kBatchLogOverhead);
// Smallest possible record: length, attributes, timestampDelta, offsetDelta, keyLength, valueLength,
// header count, one byte each.
constexpr std::size_t kMinRecordSize = 7;

// std::byteswap is C++23.
inline std::uint16_t bswap(std::uint16_t v) { return __builtin_bswap16(v); }
inline std::uint32_t bswap(std::uint32_t v) { return __builtin_bswap32(v); }
inline std::uint64_t bswap(std::uint64_t v) { return __builtin_bswap64(v); }

template <class T>
T load_be(const std::uint8_t* p) {
  std::make_unsigned_t<T> u;
  std::memcpy(&u, p, sizeof u);
  if constexpr (std::endian::native == std::endian::little) u = bswap(u);
  return static_cast<T>(u);
}

template <class T>
void store_be(std::uint8_t* p, T v) {
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  if constexpr (std::endian::native == std::endian::little) u = bswap(u);
  std::memcpy(p, &u, sizeof u);
}

Error corrupt(std::string what) { return make_error(ErrorKind::corrupt, std::move(what)); }

std::size_t unsigned_varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
std::size_t varint_size(std::int32_t v) {
  return unsigned_varint_size((static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31));
}
std::size_t varlong_size(std::int64_t v) {
  return unsigned_varint_size((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

// Reads a nullable byte field (varint length, -1 = null) from a record.
bool read_nullable(ByteReader& reader, std::optional<Bytes>& out, const char* what, std::string& error) {
  std::int32_t length = 0;
  if (!reader.read_varint(length)) {
    error = std::string(what) + " length runs past the end of the record";
    return false;
  }
  if (length == -1) {
    out.reset();
    return true;
  }
  ByteView bytes;
  if (length < -1 || !reader.read_bytes(static_cast<std::size_t>(length), bytes)) {
    error = std::string(what) + " length " + std::to_string(length) + " is invalid for the " +
            std::to_string(reader.remaining()) + " bytes left in the record";
    return false;
  }
  out.emplace(bytes.begin(), bytes.end());
  return true;
}

bool decode_one(ByteView body, const BatchHeader& header, Record& record, std::string& error) {
  ByteReader reader(body);
  std::int8_t attributes = 0;
  std::int64_t timestamp_delta = 0;
  std::int32_t offset_delta = 0;
  if (!reader.read_i8(attributes) || !reader.read_varlong(timestamp_delta) || !reader.read_varint(offset_delta)) {
    error = "record fields run past the end of the record";
    return false;
  }
  // Wrapping arithmetic: hostile deltas must not be signed-overflow UB.
  record.offset = static_cast<std::int64_t>(static_cast<std::uint64_t>(header.base_offset) +
                                            static_cast<std::uint64_t>(static_cast<std::int64_t>(offset_delta)));
  record.timestamp = static_cast<std::int64_t>(static_cast<std::uint64_t>(header.base_timestamp) +
                                               static_cast<std::uint64_t>(timestamp_delta));
  if (!read_nullable(reader, record.key, "key", error)) return false;
  if (!read_nullable(reader, record.value, "value", error)) return false;
  std::int32_t header_count = 0;
  if (!reader.read_varint(header_count)) {
    error = "header count runs past the end of the record";
    return false;
  }
  // Each header takes at least two bytes: bounds the allocation by what is present.
  if (header_count < 0 || static_cast<std::size_t>(header_count) > reader.remaining() / 2) {
    error = "header count " + std::to_string(header_count) + " is invalid for the " +
            std::to_string(reader.remaining()) + " bytes left in the record";
    return false;
  }
  record.headers.resize(static_cast<std::size_t>(header_count));
  for (auto& h : record.headers) {
    std::int32_t key_length = 0;
    ByteView key;
    if (!reader.read_varint(key_length) || key_length < 0 ||
        !reader.read_bytes(static_cast<std::size_t>(key_length), key)) {
      error = "header key length invalid or past the end of the record";
      return false;
    }
    h.key.assign(reinterpret_cast<const char*>(key.data()), key.size());
    if (!read_nullable(reader, h.value, "header value", error)) return false;
  }
  if (!reader.at_end()) {
    error = "record declares " + std::to_string(body.size()) + " bytes but its fields use " +
            std::to_string(reader.position());
    return false;
  }
  return true;
}

Status decode_section(ByteView section, const BatchHeader& header, std::vector<Record>& out) {
  if (header.record_count < 0) return corrupt("batch record count is negative");
  std::size_t count = static_cast<std::size_t>(header.record_count);
  if (count > section.size() / kMinRecordSize)
    return corrupt("batch claims " + std::to_string(count) + " records but has only " +
                   std::to_string(section.size()) + " bytes of records");
  out.resize(count);
  ByteReader reader(section);
  std::string error;
  for (std::size_t i = 0; i < count; ++i) {
    std::int32_t length = 0;
    ByteView body;
    if (!reader.read_varint(length) || length < 0 || !reader.read_bytes(static_cast<std::size_t>(length), body))
      return corrupt("record " + std::to_string(i) + " of " + std::to_string(count) +
                     ": length invalid or past the end of the batch");
    if (!decode_one(body, header, out[i], error)) return corrupt("record " + std::to_string(i) + ": " + error);
  }
  if (!reader.at_end())
    return corrupt(std::to_string(reader.remaining()) + " bytes left after the " + std::to_string(count) +
                   " records the batch declares");
  return Status::success();
}

void write_nullable(ByteWriter& w, const std::optional<Bytes>& v) {
  if (!v) {
    w.write_varint(-1);
    return;
  }
  w.write_varint(static_cast<std::int32_t>(v->size()));
  w.write_bytes(ByteView(*v));
}

std::size_t nullable_size(const std::optional<Bytes>& v) {
  return v ? varint_size(static_cast<std::int32_t>(v->size())) + v->size() : 1;
}

constexpr std::size_t kMaxField = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());

}  // namespace

Result<BatchHeader> parse_batch_header(ByteView data) {
  if (data.size() < kBatchHeaderSize)
    return corrupt("record batch header needs 61 bytes, only " + std::to_string(data.size()) + " present");
  const std::uint8_t* p = data.data();
  BatchHeader h;
  h.base_offset = load_be<std::int64_t>(p);
  h.batch_length = load_be<std::int32_t>(p + kBatchLengthOffset);
  h.partition_leader_epoch = load_be<std::int32_t>(p + kLeaderEpochOffset);
  h.magic = static_cast<std::int8_t>(p[kMagicOffset]);
  h.crc = load_be<std::uint32_t>(p + kBatchCrcOffset);
  h.attributes = load_be<std::int16_t>(p + kBatchAttributesOffset);
  h.last_offset_delta = load_be<std::int32_t>(p + kLastOffsetDeltaOffset);
  h.base_timestamp = load_be<std::int64_t>(p + kBaseTimestampOffset);
  h.max_timestamp = load_be<std::int64_t>(p + kMaxTimestampOffset);
  h.producer_id = load_be<std::int64_t>(p + kProducerIdOffset);
  h.producer_epoch = load_be<std::int16_t>(p + kProducerEpochOffset);
  h.base_sequence = load_be<std::int32_t>(p + kBaseSequenceOffset);
  h.record_count = load_be<std::int32_t>(p + kRecordCountOffset);
  if (h.magic != 2)
    return make_error(ErrorKind::corrupt, "record batch magic is " + std::to_string(h.magic) + ", only 2 is supported");
  if (h.batch_length < kMinBatchLength)
    return corrupt("record batch length " + std::to_string(h.batch_length) + " is smaller than its header");
  if (h.total_size() > data.size())
    return corrupt("record batch length " + std::to_string(h.batch_length) + " runs past the " +
                   std::to_string(data.size()) + " bytes present");
  if (h.record_count < 0) return corrupt("record batch record count is negative");
  return h;
}

bool batch_crc_ok(ByteView batch) {
  if (batch.size() < kBatchHeaderSize) return false;
  std::int32_t length = load_be<std::int32_t>(batch.data() + kBatchLengthOffset);
  if (length < kMinBatchLength) return false;
  std::size_t total = static_cast<std::size_t>(length) + kBatchLogOverhead;
  if (total > batch.size()) return false;
  std::uint32_t stored = load_be<std::uint32_t>(batch.data() + kBatchCrcOffset);
  return crc32c(batch.subspan(kBatchAttributesOffset, total - kBatchAttributesOffset)) == stored;
}

Result<SplitBatches> split_batches(ByteView records) {
  SplitBatches result;
  std::size_t pos = 0;
  while (pos < records.size()) {
    ByteView rest = records.subspan(pos);
    if (rest.size() < kBatchLogOverhead) break;  // partial: not even the length is there
    std::int32_t length = load_be<std::int32_t>(rest.data() + kBatchLengthOffset);
    if (length < kMinBatchLength)
      return corrupt("record batch at byte " + std::to_string(pos) + " has length " + std::to_string(length) +
                     ", smaller than its header");
    std::size_t total = static_cast<std::size_t>(length) + kBatchLogOverhead;
    if (total > rest.size()) break;  // partial trailing batch (Fetch responses may cut one)
    auto header = parse_batch_header(rest);
    if (!header.ok()) return corrupt("record batch at byte " + std::to_string(pos) + ": " + header.error().message);
    result.batches.push_back(rest.first(total));
    pos += total;
  }
  result.trailing_bytes = records.size() - pos;
  return result;
}

void set_base_offset(std::span<std::uint8_t> batch, std::int64_t base_offset) {
  if (batch.size() < kBatchHeaderSize) return;
  store_be(batch.data(), base_offset);
}

void set_partition_leader_epoch(std::span<std::uint8_t> batch, std::int32_t epoch) {
  if (batch.size() < kBatchHeaderSize) return;
  store_be(batch.data() + kLeaderEpochOffset, epoch);
}

void set_log_append_time(std::span<std::uint8_t> batch, std::int64_t timestamp) {
  if (batch.size() < kBatchHeaderSize) return;
  std::int32_t length = load_be<std::int32_t>(batch.data() + kBatchLengthOffset);
  if (length < kMinBatchLength || static_cast<std::size_t>(length) + kBatchLogOverhead > batch.size()) return;
  std::size_t total = static_cast<std::size_t>(length) + kBatchLogOverhead;
  store_be(batch.data() + kMaxTimestampOffset, timestamp);
  auto attributes = static_cast<std::uint16_t>(load_be<std::int16_t>(batch.data() + kBatchAttributesOffset) | 0x8);
  store_be(batch.data() + kBatchAttributesOffset, attributes);
  store_be(batch.data() + kBatchCrcOffset,
           crc32c(ByteView(batch.data() + kBatchAttributesOffset, total - kBatchAttributesOffset)));
}

Result<std::vector<Record>> decode_records(ByteView batch, std::size_t max_uncompressed) {
  auto parsed = parse_batch_header(batch);
  if (!parsed.ok()) return parsed.error();
  const BatchHeader& header = *parsed;
  ByteView section = batch.subspan(kBatchHeaderSize, header.total_size() - kBatchHeaderSize);
  std::vector<Record> records;
  auto codec_bits = header.attributes & 0x7;
  if (codec_bits > 4) return corrupt("record batch uses unknown compression codec " + std::to_string(codec_bits));
  Compression codec = header.compression();
  if (codec == Compression::none || (section.empty() && header.record_count == 0)) {
    if (section.size() > max_uncompressed)
      return corrupt("record batch holds " + std::to_string(section.size()) + " bytes of records, more than the " +
                     std::to_string(max_uncompressed) + " byte limit");
    BULWARK_TRY(decode_section(section, header, records));
    return records;
  }
  Bytes plain;
  Status status = decompress_to(codec, section, max_uncompressed, plain);
  if (!status.ok())
    return make_error(status.error().kind, std::string(compression_name(codec)) + " records: " + status.error().message);
  BULWARK_TRY(decode_section(ByteView(plain), header, records));
  return records;
}

Result<Bytes> encode_batch(const std::vector<Record>& records, const BatchOptions& options) {
  if (records.empty()) return make_error(ErrorKind::invalid_argument, "a record batch needs at least one record");
  if (records.size() > kMaxField) return make_error(ErrorKind::invalid_argument, "too many records for one batch");
  const std::int64_t first_offset = options.deltas_from_base_offset ? options.base_offset : records.front().offset;
  if (first_offset > records.front().offset)
    return make_error(ErrorKind::invalid_argument, "a record offset is below the batch's base offset");
  const std::int64_t base_timestamp = records.front().timestamp;
  std::int64_t max_timestamp = base_timestamp;
  std::int64_t last_offset_delta = 0;

  // Sizes first, so each record's length prefix is written in one pass without a scratch copy.
  std::size_t section_estimate = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (i > 0 && r.offset <= records[i - 1].offset)
      return make_error(ErrorKind::invalid_argument, "record offsets in a batch must increase (record " +
                                                         std::to_string(i) + ")");
    if (static_cast<std::uint64_t>(r.offset) - static_cast<std::uint64_t>(first_offset) >
        static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
      return make_error(ErrorKind::invalid_argument, "record offsets span more than a batch can hold");
    if ((r.key && r.key->size() > kMaxField) || (r.value && r.value->size() > kMaxField) ||
        r.headers.size() > kMaxField)
      return make_error(ErrorKind::invalid_argument, "record field too large for a batch");
    max_timestamp = std::max(max_timestamp, r.timestamp);
    section_estimate += 5 + 21 + nullable_size(r.key) + nullable_size(r.value) + 5;
    for (const auto& h : r.headers) section_estimate += 10 + h.key.size() + nullable_size(h.value);
  }

  Bytes out;
  out.reserve(kBatchHeaderSize + (options.compression == Compression::none ? section_estimate
                                                                            : section_estimate / 2 + 64));
  out.resize(kBatchHeaderSize);
  Bytes scratch;
  // Uncompressed records go straight after the header; compressed ones through a scratch buffer.
  Bytes& target = options.compression == Compression::none ? out : scratch;
  if (&target == &scratch) scratch.reserve(section_estimate);
  ByteWriter w(target);
  for (const Record& r : records) {
    const auto offset_delta =
        static_cast<std::int32_t>(static_cast<std::uint64_t>(r.offset) - static_cast<std::uint64_t>(first_offset));
    const std::int64_t timestamp_delta =
        static_cast<std::int64_t>(static_cast<std::uint64_t>(r.timestamp) - static_cast<std::uint64_t>(base_timestamp));
    last_offset_delta = offset_delta;
    std::size_t body = 1 + varlong_size(timestamp_delta) + varint_size(offset_delta) + nullable_size(r.key) +
                       nullable_size(r.value) + varint_size(static_cast<std::int32_t>(r.headers.size()));
    for (const auto& h : r.headers)
      body += varint_size(static_cast<std::int32_t>(h.key.size())) + h.key.size() + nullable_size(h.value);
    if (body > kMaxField) return make_error(ErrorKind::invalid_argument, "record too large for a batch");
    w.write_varint(static_cast<std::int32_t>(body));
    w.write_i8(0);  // record attributes: unused
    w.write_varlong(timestamp_delta);
    w.write_varint(offset_delta);
    write_nullable(w, r.key);
    write_nullable(w, r.value);
    w.write_varint(static_cast<std::int32_t>(r.headers.size()));
    for (const auto& h : r.headers) {
      w.write_varint(static_cast<std::int32_t>(h.key.size()));
      w.write_bytes(std::string_view(h.key));
      write_nullable(w, h.value);
    }
  }
  if (options.compression != Compression::none) BULWARK_TRY(compress_to(options.compression, ByteView(scratch), out));
  if (out.size() - kBatchLogOverhead > kMaxField)
    return make_error(ErrorKind::invalid_argument, "record batch larger than 2 GiB");

  std::int16_t attributes = static_cast<std::int16_t>(options.compression);
  if (options.transactional) attributes |= 0x10;
  if (options.control) attributes |= 0x20;
  std::uint8_t* p = out.data();
  store_be(p, options.base_offset);
  store_be(p + kBatchLengthOffset, static_cast<std::int32_t>(out.size() - kBatchLogOverhead));
  store_be(p + kLeaderEpochOffset, options.partition_leader_epoch);
  p[kMagicOffset] = 2;
  store_be(p + kBatchAttributesOffset, attributes);
  if (options.last_offset_delta >= 0) {
    if (options.last_offset_delta < last_offset_delta)
      return make_error(ErrorKind::invalid_argument, "lastOffsetDelta below the last record's offset delta");
    last_offset_delta = options.last_offset_delta;
  }
  store_be(p + kLastOffsetDeltaOffset, static_cast<std::int32_t>(last_offset_delta));
  store_be(p + kBaseTimestampOffset, base_timestamp);
  store_be(p + kMaxTimestampOffset, max_timestamp);
  store_be(p + kProducerIdOffset, options.producer_id);
  store_be(p + kProducerEpochOffset, options.producer_epoch);
  store_be(p + kBaseSequenceOffset, options.base_sequence);
  store_be(p + kRecordCountOffset, static_cast<std::int32_t>(records.size()));
  store_be(p + kBatchCrcOffset, crc32c(ByteView(out).subspan(kBatchAttributesOffset)));
  return out;
}

}  // namespace bulwark::wire
