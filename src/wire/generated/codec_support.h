// Shared encode/decode helpers for the generated Kafka message codecs (hand-written, not generated).
// Every read validates a length against the bytes that remain BEFORE allocating, so a forged count or
// length in a small frame fails fast. "flex" selects the compact forms of flexible versions (unsigned
// varint length + 1); "nullable" says whether null is legal in the version being read or written.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace bulwark::wire {

using Uuid = std::array<std::uint8_t, 16>;

// A tagged field this code does not know (or a version that does not define it), kept verbatim so
// that a decode/encode round trip loses nothing.
struct RawTaggedField {
  std::uint32_t tag = 0;
  Bytes data;
  bool operator==(const RawTaggedField&) const = default;
};
using TaggedFields = std::vector<RawTaggedField>;

namespace codec {

bool read(ByteReader& r, bool& v);
inline bool read(ByteReader& r, std::int8_t& v) { return r.read_i8(v); }
inline bool read(ByteReader& r, std::int16_t& v) { return r.read_i16(v); }
inline bool read(ByteReader& r, std::uint16_t& v) { return r.read_u16(v); }
inline bool read(ByteReader& r, std::int32_t& v) { return r.read_i32(v); }
inline bool read(ByteReader& r, std::int64_t& v) { return r.read_i64(v); }
bool read(ByteReader& r, double& v);
bool read(ByteReader& r, Uuid& v);

inline void write_bool(ByteWriter& w, bool v) { w.write_u8(v ? 1 : 0); }
inline void write_i8(ByteWriter& w, std::int8_t v) { w.write_i8(v); }
inline void write_i16(ByteWriter& w, std::int16_t v) { w.write_i16(v); }
inline void write_u16(ByteWriter& w, std::uint16_t v) { w.write_u16(v); }
inline void write_i32(ByteWriter& w, std::int32_t v) { w.write_i32(v); }
inline void write_i64(ByteWriter& w, std::int64_t v) { w.write_i64(v); }
void write_f64(ByteWriter& w, double v);
inline void write_uuid(ByteWriter& w, const Uuid& v) { w.write_bytes(ByteView(v.data(), v.size())); }

// Length prefixes. A decoded length of -1 means null; any negative length fails unless nullable.
// read_array_length also fails when count * min_element_size exceeds the remaining bytes.
bool read_length(ByteReader& r, bool flex, bool wide, bool nullable, std::int64_t& n);
bool read_array_length(ByteReader& r, bool flex, bool nullable, std::size_t min_element_size, std::int32_t& n);
void write_array_length(ByteWriter& w, bool flex, std::int32_t n);  // -1 = null
// Null in a version where null is not legal is written as empty: the closest value the peer accepts.
void write_nullable_array_length(ByteWriter& w, bool flex, bool nullable, bool present, std::size_t n);

bool read_string(ByteReader& r, bool flex, std::string& v);
bool read_nullable_string(ByteReader& r, bool flex, bool nullable, std::optional<std::string>& v);
bool read_bytes(ByteReader& r, bool flex, Bytes& v);
bool read_nullable_bytes(ByteReader& r, bool flex, bool nullable, std::optional<Bytes>& v);
void write_string(ByteWriter& w, bool flex, std::string_view v);
void write_nullable_string(ByteWriter& w, bool flex, bool nullable, const std::optional<std::string>& v);
void write_bytes(ByteWriter& w, bool flex, ByteView v);
void write_nullable_bytes(ByteWriter& w, bool flex, bool nullable, const std::optional<Bytes>& v);

// Arrays of primitives (the element types the schemas use).
bool read_array(ByteReader& r, bool flex, std::vector<std::int8_t>& v);
bool read_array(ByteReader& r, bool flex, std::vector<std::int32_t>& v);
bool read_array(ByteReader& r, bool flex, std::vector<std::int64_t>& v);
bool read_array(ByteReader& r, bool flex, std::vector<std::string>& v);
bool read_array(ByteReader& r, bool flex, std::vector<Uuid>& v);
bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<std::int8_t>>& v);
bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<std::int32_t>>& v);
bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<std::int64_t>>& v);
bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<std::string>>& v);
bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<Uuid>>& v);
void write_array(ByteWriter& w, bool flex, const std::vector<std::int8_t>& v);
void write_array(ByteWriter& w, bool flex, const std::vector<std::int32_t>& v);
void write_array(ByteWriter& w, bool flex, const std::vector<std::int64_t>& v);
void write_array(ByteWriter& w, bool flex, const std::vector<std::string>& v);
void write_array(ByteWriter& w, bool flex, const std::vector<Uuid>& v);
void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<std::int8_t>>& v);
void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<std::int32_t>>& v);
void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<std::int64_t>>& v);
void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<std::string>>& v);
void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<Uuid>>& v);

// Tagged field section (flexible versions): count, then per field tag, size, payload.
bool read_tag_count(ByteReader& r, std::uint32_t& n);
bool read_tag_header(ByteReader& r, std::uint32_t& tag, ByteView& payload);
// Reads a whole section of which this code knows no tag.
bool read_unknown_tagged_fields(ByteReader& r, TaggedFields& out);
void write_unknown_tagged_fields(ByteWriter& w, const TaggedFields& fields);
// Writes the unknown fields from index i on whose tag is below `limit` (keeps tags ascending).
void write_unknown_tags_below(ByteWriter& w, const TaggedFields& fields, std::size_t& i, std::uint64_t limit);
void write_tagged_field(ByteWriter& w, std::uint32_t tag, const Bytes& payload);

}  // namespace codec
}  // namespace bulwark::wire
