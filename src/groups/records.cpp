#include "groups/records.h"

#include <limits>

namespace bulwark::groups {
namespace {

void write_string(ByteWriter& w, const std::string& s) {
  // Group ids, topics and member ids are capped well below 32 KiB by the protocol; clamp anyway.
  auto n = std::min<std::size_t>(s.size(), std::numeric_limits<std::int16_t>::max());
  w.write_i16(static_cast<std::int16_t>(n));
  w.write_bytes(std::string_view(s.data(), n));
}

void write_nullable_string(ByteWriter& w, const std::optional<std::string>& s) {
  if (!s) {
    w.write_i16(-1);
    return;
  }
  write_string(w, *s);
}

void write_bytes_field(ByteWriter& w, const Bytes& b) {
  w.write_i32(static_cast<std::int32_t>(b.size()));
  w.write_bytes(ByteView(b));
}

bool read_nullable_string(ByteReader& r, std::optional<std::string>& out) {
  std::int16_t n = 0;
  if (!r.read_i16(n)) return false;
  if (n < 0) {
    out.reset();
    return true;
  }
  ByteView data;
  if (!r.read_bytes(static_cast<std::size_t>(n), data)) return false;
  out = std::string(as_chars(data));
  return true;
}

bool read_string(ByteReader& r, std::string& out) {
  std::optional<std::string> s;
  if (!read_nullable_string(r, s)) return false;
  out = s.value_or("");
  return true;
}

bool read_bytes_field(ByteReader& r, Bytes& out) {
  std::int32_t n = 0;
  if (!r.read_i32(n)) return false;
  if (n < 0) {
    out.clear();
    return true;
  }
  ByteView data;
  if (!r.read_bytes(static_cast<std::size_t>(n), data)) return false;
  out.assign(data.begin(), data.end());
  return true;
}

Error corrupt(const std::string& what) { return make_error(ErrorKind::corrupt, what); }

}  // namespace

Bytes encode_offset_key(const OffsetKey& key) {
  ByteWriter w;
  w.write_i16(1);
  write_string(w, key.group);
  write_string(w, key.topic);
  w.write_i32(key.partition);
  return w.take();
}

Bytes encode_offset_value(const OffsetValue& value) {
  ByteWriter w;
  w.write_i16(3);
  w.write_i64(value.offset);
  w.write_i32(value.leader_epoch);
  write_string(w, value.metadata);
  w.write_i64(value.commit_timestamp);
  return w.take();
}

Bytes encode_group_key(const GroupKey& key) {
  ByteWriter w;
  w.write_i16(2);
  write_string(w, key.group);
  return w.take();
}

Bytes encode_group_value(const GroupValue& value) {
  ByteWriter w;
  w.write_i16(3);
  write_string(w, value.protocol_type);
  w.write_i32(value.generation);
  write_nullable_string(w, value.protocol);
  write_nullable_string(w, value.leader);
  w.write_i64(value.state_timestamp);
  w.write_i32(static_cast<std::int32_t>(value.members.size()));
  for (const auto& m : value.members) {
    write_string(w, m.member_id);
    write_nullable_string(w, m.group_instance_id);
    write_string(w, m.client_id);
    write_string(w, m.client_host);
    w.write_i32(m.rebalance_timeout_ms);
    w.write_i32(m.session_timeout_ms);
    write_bytes_field(w, m.subscription);
    write_bytes_field(w, m.assignment);
  }
  return w.take();
}

Result<DecodedKey> decode_key(ByteView key) {
  ByteReader r(key);
  std::int16_t version = 0;
  if (!r.read_i16(version)) return corrupt("group record key is shorter than its version field");
  if (version == 0 || version == 1) {
    OffsetKey k;
    if (!read_string(r, k.group) || !read_string(r, k.topic) || !r.read_i32(k.partition))
      return corrupt("offset commit key is truncated");
    return DecodedKey{std::move(k)};
  }
  if (version == 2) {
    GroupKey k;
    if (!read_string(r, k.group)) return corrupt("group metadata key is truncated");
    return DecodedKey{std::move(k)};
  }
  return corrupt("group record key has unknown version " + std::to_string(version));
}

Result<OffsetValue> decode_offset_value(ByteView value) {
  ByteReader r(value);
  std::int16_t version = 0;
  OffsetValue v;
  if (!r.read_i16(version)) return corrupt("offset commit value is shorter than its version field");
  bool ok = r.read_i64(v.offset);
  if (version >= 3) ok = ok && r.read_i32(v.leader_epoch);
  ok = ok && read_string(r, v.metadata) && r.read_i64(v.commit_timestamp);
  if (version == 1) {
    std::int64_t expire = 0;
    ok = ok && r.read_i64(expire);
  }
  if (version < 0 || version > 4) return corrupt("offset commit value has unknown version " + std::to_string(version));
  if (!ok) return corrupt("offset commit value is truncated");
  return v;
}

Result<GroupValue> decode_group_value(ByteView value) {
  ByteReader r(value);
  std::int16_t version = 0;
  GroupValue v;
  if (!r.read_i16(version)) return corrupt("group metadata value is shorter than its version field");
  if (version < 0 || version > 4) return corrupt("group metadata value has unknown version " + std::to_string(version));
  bool ok = read_string(r, v.protocol_type) && r.read_i32(v.generation) && read_nullable_string(r, v.protocol) &&
            read_nullable_string(r, v.leader);
  if (version >= 2) ok = ok && r.read_i64(v.state_timestamp);
  std::int32_t count = 0;
  ok = ok && r.read_i32(count);
  if (!ok) return corrupt("group metadata value is truncated");
  if (count < 0 || static_cast<std::size_t>(count) > r.remaining()) return corrupt("group metadata value has a bad member count");
  for (std::int32_t i = 0; i < count; ++i) {
    StoredMember m;
    ok = read_string(r, m.member_id);
    if (version >= 3) ok = ok && read_nullable_string(r, m.group_instance_id);
    ok = ok && read_string(r, m.client_id) && read_string(r, m.client_host);
    if (version >= 1) ok = ok && r.read_i32(m.rebalance_timeout_ms);
    ok = ok && r.read_i32(m.session_timeout_ms);
    if (version == 0) m.rebalance_timeout_ms = m.session_timeout_ms;
    ok = ok && read_bytes_field(r, m.subscription) && read_bytes_field(r, m.assignment);
    if (!ok) return corrupt("group metadata member is truncated");
    v.members.push_back(std::move(m));
  }
  return v;
}

}  // namespace bulwark::groups
