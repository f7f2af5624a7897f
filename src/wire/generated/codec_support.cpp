// Hand-written helpers for the generated codecs; see codec_support.h.
#include "wire/generated/codec_support.h"

#include <bit>
#include <limits>

namespace bulwark::wire::codec {

bool read(ByteReader& r, bool& v) {
  std::uint8_t b = 0;
  if (!r.read_u8(b)) return false;
  v = b != 0;  // as Kafka reads it
  return true;
}

bool read(ByteReader& r, double& v) {
  std::uint64_t bits = 0;
  if (!r.read_u64(bits)) return false;
  v = std::bit_cast<double>(bits);
  return true;
}

bool read(ByteReader& r, Uuid& v) {
  ByteView b;
  if (!r.read_bytes(v.size(), b)) return false;
  std::memcpy(v.data(), b.data(), v.size());
  return true;
}

void write_f64(ByteWriter& w, double v) { w.write_u64(std::bit_cast<std::uint64_t>(v)); }

bool read_length(ByteReader& r, bool flex, bool wide, bool nullable, std::int64_t& n) {
  if (flex) {
    std::uint32_t raw = 0;
    if (!r.read_unsigned_varint(raw)) return false;
    n = static_cast<std::int64_t>(raw) - 1;
  } else if (wide) {
    std::int32_t raw = 0;
    if (!r.read_i32(raw)) return false;
    n = raw;
  } else {
    std::int16_t raw = 0;
    if (!r.read_i16(raw)) return false;
    n = raw;
  }
  if (n < 0) {
    if (!nullable) return false;
    n = -1;
  }
  return true;
}

bool read_array_length(ByteReader& r, bool flex, bool nullable, std::size_t min_element_size, std::int32_t& n) {
  std::int64_t len = 0;
  if (!read_length(r, flex, true, nullable, len)) return false;
  // Each element takes at least min_element_size bytes: a count the frame cannot hold is malformed.
  if (len > std::numeric_limits<std::int32_t>::max()) return false;
  if (len > 0 && static_cast<std::uint64_t>(len) > r.remaining() / (min_element_size ? min_element_size : 1)) {
    return false;
  }
  n = static_cast<std::int32_t>(len);
  return true;
}

void write_array_length(ByteWriter& w, bool flex, std::int32_t n) {
  if (flex) {
    w.write_unsigned_varint(static_cast<std::uint64_t>(static_cast<std::int64_t>(n) + 1));
  } else {
    w.write_i32(n);
  }
}

void write_nullable_array_length(ByteWriter& w, bool flex, bool nullable, bool present, std::size_t n) {
  if (!present) {
    write_array_length(w, flex, nullable ? -1 : 0);
  } else {
    write_array_length(w, flex, static_cast<std::int32_t>(n));
  }
}

namespace {

// Reads a string or bytes payload; n == -1 means null.
bool read_payload(ByteReader& r, bool flex, bool wide, bool nullable, std::int64_t& n, ByteView& out) {
  if (!read_length(r, flex, wide, nullable, n)) return false;
  if (n < 0) return true;
  if (static_cast<std::uint64_t>(n) > r.remaining()) return false;
  return r.read_bytes(static_cast<std::size_t>(n), out);
}

void write_length(ByteWriter& w, bool flex, bool wide, std::int64_t n) {
  if (flex) {
    w.write_unsigned_varint(static_cast<std::uint64_t>(n + 1));
  } else if (wide) {
    w.write_i32(static_cast<std::int32_t>(n));
  } else {
    w.write_i16(static_cast<std::int16_t>(n));
  }
}

}  // namespace

bool read_string(ByteReader& r, bool flex, std::string& v) {
  std::int64_t n = 0;
  ByteView b;
  if (!read_payload(r, flex, false, false, n, b)) return false;
  v.assign(as_chars(b));
  return true;
}

bool read_nullable_string(ByteReader& r, bool flex, bool nullable, std::optional<std::string>& v) {
  std::int64_t n = 0;
  ByteView b;
  if (!read_payload(r, flex, false, nullable, n, b)) return false;
  if (n < 0) {
    v.reset();
  } else {
    v.emplace(as_chars(b));
  }
  return true;
}

bool read_bytes(ByteReader& r, bool flex, Bytes& v) {
  std::int64_t n = 0;
  ByteView b;
  if (!read_payload(r, flex, true, false, n, b)) return false;
  v.assign(b.begin(), b.end());
  return true;
}

bool read_nullable_bytes(ByteReader& r, bool flex, bool nullable, std::optional<Bytes>& v) {
  std::int64_t n = 0;
  ByteView b;
  if (!read_payload(r, flex, true, nullable, n, b)) return false;
  if (n < 0) {
    v.reset();
  } else {
    v.emplace(b.begin(), b.end());
  }
  return true;
}

void write_string(ByteWriter& w, bool flex, std::string_view v) {
  write_length(w, flex, false, static_cast<std::int64_t>(v.size()));
  w.write_bytes(v);
}

void write_nullable_string(ByteWriter& w, bool flex, bool nullable, const std::optional<std::string>& v) {
  if (!v) {
    write_length(w, flex, false, nullable ? -1 : 0);
    return;
  }
  write_string(w, flex, *v);
}

void write_bytes(ByteWriter& w, bool flex, ByteView v) {
  write_length(w, flex, true, static_cast<std::int64_t>(v.size()));
  w.write_bytes(v);
}

void write_nullable_bytes(ByteWriter& w, bool flex, bool nullable, const std::optional<Bytes>& v) {
  if (!v) {
    write_length(w, flex, true, nullable ? -1 : 0);
    return;
  }
  write_bytes(w, flex, *v);
}

namespace {

template <class T>
constexpr std::size_t wire_size() {
  if constexpr (std::is_same_v<T, std::string>) {
    return 1;  // a compact empty string; classic ones take 2
  } else if constexpr (std::is_same_v<T, Uuid>) {
    return 16;
  } else {
    return sizeof(T);
  }
}

template <class T>
bool read_element(ByteReader& r, bool flex, T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return read_string(r, flex, v);
  } else {
    return read(r, v);
  }
}

template <class T>
void write_element(ByteWriter& w, bool flex, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    write_string(w, flex, v);
  } else if constexpr (std::is_same_v<T, Uuid>) {
    write_uuid(w, v);
  } else if constexpr (std::is_same_v<T, std::int8_t>) {
    w.write_i8(v);
  } else if constexpr (std::is_same_v<T, std::int32_t>) {
    w.write_i32(v);
  } else {
    w.write_i64(v);
  }
}

template <class T>
bool read_elements(ByteReader& r, bool flex, std::int32_t n, std::vector<T>& v) {
  v.clear();
  // Fixed-size elements: the count was checked against the remaining bytes, so reserving is bounded.
  if constexpr (!std::is_same_v<T, std::string>) v.reserve(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i) {
    if (!read_element(r, flex, v.emplace_back())) return false;
  }
  return true;
}

template <class T>
bool read_array_t(ByteReader& r, bool flex, std::vector<T>& v) {
  std::int32_t n = 0;
  if (!read_array_length(r, flex, false, wire_size<T>(), n)) return false;
  return read_elements(r, flex, n, v);
}

template <class T>
bool read_nullable_array_t(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<T>>& v) {
  std::int32_t n = 0;
  if (!read_array_length(r, flex, nullable, wire_size<T>(), n)) return false;
  if (n < 0) {
    v.reset();
    return true;
  }
  return read_elements(r, flex, n, v.emplace());
}

template <class T>
void write_array_t(ByteWriter& w, bool flex, const std::vector<T>& v) {
  write_array_length(w, flex, static_cast<std::int32_t>(v.size()));
  for (const auto& e : v) write_element(w, flex, e);
}

template <class T>
void write_nullable_array_t(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<T>>& v) {
  if (!v) {
    write_array_length(w, flex, nullable ? -1 : 0);
    return;
  }
  write_array_t(w, flex, *v);
}

}  // namespace

#define BULWARK_CODEC_ARRAY(T)                                                                        \
  bool read_array(ByteReader& r, bool flex, std::vector<T>& v) { return read_array_t(r, flex, v); }   \
  bool read_nullable_array(ByteReader& r, bool flex, bool nullable, std::optional<std::vector<T>>& v) { \
    return read_nullable_array_t(r, flex, nullable, v);                                               \
  }                                                                                                   \
  void write_array(ByteWriter& w, bool flex, const std::vector<T>& v) { write_array_t(w, flex, v); }  \
  void write_nullable_array(ByteWriter& w, bool flex, bool nullable, const std::optional<std::vector<T>>& v) { \
    write_nullable_array_t(w, flex, nullable, v);                                                     \
  }
BULWARK_CODEC_ARRAY(std::int8_t)
BULWARK_CODEC_ARRAY(std::int32_t)
BULWARK_CODEC_ARRAY(std::int64_t)
BULWARK_CODEC_ARRAY(std::string)
BULWARK_CODEC_ARRAY(Uuid)
#undef BULWARK_CODEC_ARRAY

bool read_tag_count(ByteReader& r, std::uint32_t& n) {
  if (!r.read_unsigned_varint(n)) return false;
  // Every tagged field takes at least two bytes (tag and size).
  return n <= r.remaining() / 2;
}

bool read_tag_header(ByteReader& r, std::uint32_t& tag, ByteView& payload) {
  std::uint32_t size = 0;
  if (!r.read_unsigned_varint(tag) || !r.read_unsigned_varint(size)) return false;
  if (size > r.remaining()) return false;
  return r.read_bytes(size, payload);
}

bool read_unknown_tagged_fields(ByteReader& r, TaggedFields& out) {
  std::uint32_t n = 0;
  if (!read_tag_count(r, n)) return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t tag = 0;
    ByteView payload;
    if (!read_tag_header(r, tag, payload)) return false;
    out.push_back(RawTaggedField{tag, Bytes(payload.begin(), payload.end())});
  }
  return true;
}

void write_tagged_field(ByteWriter& w, std::uint32_t tag, const Bytes& payload) {
  w.write_unsigned_varint(tag);
  w.write_unsigned_varint(payload.size());
  w.write_bytes(payload);
}

void write_unknown_tagged_fields(ByteWriter& w, const TaggedFields& fields) {
  w.write_unsigned_varint(fields.size());
  for (const auto& f : fields) write_tagged_field(w, f.tag, f.data);
}

void write_unknown_tags_below(ByteWriter& w, const TaggedFields& fields, std::size_t& i, std::uint64_t limit) {
  while (i < fields.size() && fields[i].tag < limit) {
    write_tagged_field(w, fields[i].tag, fields[i].data);
    ++i;
  }
}

}  // namespace bulwark::wire::codec
