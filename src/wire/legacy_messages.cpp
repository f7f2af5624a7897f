#include "wire/legacy_messages.h"

#include <zlib.h>

#include <string>

#include "wire/compression.h"

namespace bulwark::wire {
namespace {

constexpr std::size_t kEntryOverhead = 12;  // offset + size
constexpr std::int32_t kMinMessageSize = 14;  // crc, magic, attributes, key and value lengths (v0)
constexpr std::uint8_t kCodecMask = 0x07;
constexpr std::uint8_t kLogAppendTimeBit = 0x08;

Error corrupt(std::string what) { return make_error(ErrorKind::corrupt, std::move(what)); }
Error invalid(std::string what) { return make_error(ErrorKind::invalid_argument, std::move(what)); }

struct Entry {
  std::int8_t magic = 0;
  std::uint8_t attributes = 0;
  std::int64_t timestamp = -1;
  std::optional<ByteView> key;
  std::optional<ByteView> value;
};

bool read_nullable(ByteReader& r, std::optional<ByteView>& out) {
  std::int32_t length = 0;
  if (!r.read_i32(length) || length < -1) return false;
  if (length == -1) return true;
  ByteView bytes;
  if (!r.read_bytes(static_cast<std::size_t>(length), bytes)) return false;
  out = bytes;
  return true;
}

// The fields after the CRC; they must fill the message exactly.
Result<Entry> parse_fields(ByteView body) {
  ByteReader r(body);
  Entry entry;
  std::int8_t attributes = 0;
  bool ok = r.read_i8(entry.magic) && r.read_i8(attributes);
  entry.attributes = static_cast<std::uint8_t>(attributes);
  if (ok && entry.magic == 1) ok = r.read_i64(entry.timestamp);
  ok = ok && read_nullable(r, entry.key) && read_nullable(r, entry.value);
  if (!ok || !r.at_end()) return corrupt("message fields do not match its size");
  return entry;
}

// One entry (offset, size, message) from r, CRC-checked.
Result<Entry> read_entry(ByteReader& r) {
  if (r.remaining() < kEntryOverhead) return corrupt("truncated message set: a partial entry header");
  std::int64_t offset = 0;
  std::int32_t size = 0;
  (void)r.read_i64(offset);
  (void)r.read_i32(size);
  if (size < kMinMessageSize) return corrupt("message size " + std::to_string(size) + " is below the minimum");
  ByteView message;
  if (!r.read_bytes(static_cast<std::size_t>(size), message))
    return corrupt("truncated message set: a message of " + std::to_string(size) + " bytes is cut short");
  const std::int8_t magic = static_cast<std::int8_t>(message[4]);
  if (magic == 2) return invalid("a record batch (magic 2) among v0/v1 messages");
  if (magic < 0 || magic > 2) return corrupt("unknown message magic " + std::to_string(magic));
  const std::uint32_t stored = (std::uint32_t{message[0]} << 24) | (std::uint32_t{message[1]} << 16) |
                               (std::uint32_t{message[2]} << 8) | std::uint32_t{message[3]};
  if (stored != legacy_crc32(message.subspan(4)))
    return corrupt("message CRC mismatch (the message is corrupt)");
  return parse_fields(message.subspan(4));
}

Record to_record(const Entry& entry, std::int64_t timestamp) {
  Record record;
  record.timestamp = timestamp;
  if (entry.key) record.key = Bytes(entry.key->begin(), entry.key->end());
  if (entry.value) record.value = Bytes(entry.value->begin(), entry.value->end());
  return record;
}

// XXH32 for inputs under 16 bytes: all an LZ4 frame descriptor checksum needs.
std::uint32_t xxh32_short(ByteView data) {
  constexpr std::uint32_t p1 = 2654435761u, p2 = 2246822519u, p3 = 3266489917u, p4 = 668265263u, p5 = 374761393u;
  auto rotl = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  std::uint32_t h = p5 + static_cast<std::uint32_t>(data.size());
  std::size_t i = 0;
  for (; i + 4 <= data.size(); i += 4) {
    const std::uint32_t word = std::uint32_t{data[i]} | (std::uint32_t{data[i + 1]} << 8) |
                               (std::uint32_t{data[i + 2]} << 16) | (std::uint32_t{data[i + 3]} << 24);
    h = rotl(h + word * p3, 17) * p4;
  }
  for (; i < data.size(); ++i) h = rotl(h + data[i] * p5, 11) * p1;
  h ^= h >> 15;
  h *= p2;
  h ^= h >> 13;
  h *= p3;
  h ^= h >> 16;
  return h;
}

// KAFKA-3160: v0 clients computed the LZ4 frame descriptor checksum over the magic number too, and
// Kafka's v0 reader ignores it; liblz4 checks it, so recompute it before decoding.
void fix_v0_lz4_header_checksum(Bytes& frame) {
  if (frame.size() < 7 || frame[0] != 0x04 || frame[1] != 0x22 || frame[2] != 0x4D || frame[3] != 0x18) return;
  const std::uint8_t flags = frame[4];
  const std::size_t descriptor = 2 + ((flags & 0x08) ? 8 : 0) + ((flags & 0x01) ? 4 : 0);
  if (frame.size() <= 4 + descriptor) return;  // truncated: liblz4 reports it
  frame[4 + descriptor] =
      static_cast<std::uint8_t>(xxh32_short(ByteView(frame).subspan(4, descriptor)) >> 8);
}

Result<Compression> legacy_codec(std::uint8_t attributes) {
  const std::uint8_t codec = attributes & kCodecMask;
  if (codec == 4) return make_error(ErrorKind::unsupported, "zstd compression needs magic 2 (Produce v7+)");
  if (codec > 4) return corrupt("unknown compression codec " + std::to_string(codec));
  return static_cast<Compression>(codec);
}

// The uncompressed messages inside one wrapper, appended to out.records.
Status append_inner(const Entry& wrapper, Compression codec, std::size_t& budget, LegacyMessages& out) {
  if (!wrapper.value) return invalid("a compressed message with a null value");
  Bytes compressed(wrapper.value->begin(), wrapper.value->end());
  if (codec == Compression::lz4 && wrapper.magic == 0) fix_v0_lz4_header_checksum(compressed);
  auto inner_set = decompress(codec, compressed, budget);
  if (!inner_set.ok()) return corrupt("compressed message set does not decompress: " + inner_set.error().message);
  budget -= inner_set->size();
  const bool log_append_time = wrapper.magic == 1 && (wrapper.attributes & kLogAppendTimeBit) != 0;
  ByteReader r(*inner_set);
  std::size_t count = 0;
  while (!r.at_end()) {
    auto inner = read_entry(r);
    if (!inner.ok()) return inner.error();
    if (inner->magic != wrapper.magic) return invalid("an inner message's magic differs from its wrapper's");
    if ((inner->attributes & kCodecMask) != 0) return invalid("a compressed message inside a compressed message");
    out.records.push_back(to_record(*inner, log_append_time ? wrapper.timestamp : inner->timestamp));
    ++count;
  }
  if (count == 0) return invalid("a compressed message with no inner messages");
  return Status::success();
}

}  // namespace

std::uint32_t legacy_crc32(ByteView data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; messages are bounded by an int32 size, so one call suffices.
  return static_cast<std::uint32_t>(crc32(crc, data.data(), static_cast<uInt>(data.size())));
}

int first_entry_magic(ByteView records) {
  return records.size() > kLegacyMagicOffset ? static_cast<std::int8_t>(records[kLegacyMagicOffset]) : -1;
}

Result<LegacyMessages> decode_legacy_messages(ByteView message_set, std::size_t max_uncompressed) {
  LegacyMessages out;
  out.magic = -1;
  std::size_t budget = max_uncompressed;
  ByteReader r(message_set);
  while (!r.at_end()) {
    auto entry = read_entry(r);
    if (!entry.ok()) return entry.error();
    if (out.magic >= 0 && entry->magic != out.magic) return invalid("messages of different magic in one set");
    out.magic = entry->magic;
    auto codec = legacy_codec(entry->attributes);
    if (!codec.ok()) return codec.error();
    if (*codec == Compression::none) {
      out.records.push_back(to_record(*entry, entry->timestamp));
      continue;
    }
    out.compression = *codec;
    BULWARK_TRY(append_inner(*entry, *codec, budget, out));
  }
  if (out.records.empty()) return invalid("the message set holds no message");
  for (std::size_t i = 0; i < out.records.size(); ++i) out.records[i].offset = static_cast<std::int64_t>(i);
  return out;
}

Result<Bytes> convert_legacy_messages(ByteView message_set, std::size_t max_uncompressed) {
  auto messages = decode_legacy_messages(message_set, max_uncompressed);
  if (!messages.ok()) return messages.error();
  BatchOptions options;
  options.compression = messages->compression;
  return encode_batch(messages->records, options);
}

void append_legacy_message(const LegacyMessage& message, Bytes& out) {
  Bytes body;
  ByteWriter w(body);
  w.write_i8(message.magic);
  w.write_i8(message.attributes);
  if (message.magic == 1) w.write_i64(message.timestamp);
  for (const auto* field : {&message.key, &message.value}) {
    w.write_i32(*field ? static_cast<std::int32_t>((*field)->size()) : -1);
    if (*field) body.insert(body.end(), (*field)->begin(), (*field)->end());
  }
  ByteWriter o(out);
  o.write_i64(message.offset);
  o.write_i32(static_cast<std::int32_t>(body.size() + 4));
  o.write_u32(legacy_crc32(body));
  out.insert(out.end(), body.begin(), body.end());
}

}  // namespace bulwark::wire
