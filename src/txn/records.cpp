#include "txn/records.h"

#include <limits>
#include <map>
#include <vector>

namespace bulwark::txn {
namespace {

Error corrupt(const std::string& what) {
  return make_error(ErrorKind::corrupt, "__transaction_state record: " + what);
}

void write_string(ByteWriter& w, const std::string& s) {
  auto n = std::min<std::size_t>(s.size(), std::numeric_limits<std::int16_t>::max());
  w.write_i16(static_cast<std::int16_t>(n));
  w.write_bytes(std::string_view(s.data(), n));
}

// Reads Kafka's classic (i16 length) or compact (uvarint length + 1) string.
bool read_string(ByteReader& r, bool compact, std::string& out) {
  std::int64_t n = 0;
  if (compact) {
    std::uint32_t u = 0;
    if (!r.read_unsigned_varint(u) || u == 0) return false;
    n = static_cast<std::int64_t>(u) - 1;
  } else {
    std::int16_t s = 0;
    if (!r.read_i16(s) || s < 0) return false;
    n = s;
  }
  ByteView data;
  if (!r.read_bytes(static_cast<std::size_t>(n), data)) return false;
  out = std::string(as_chars(data));
  return true;
}

// An array length: -1 for null.
bool read_array_length(ByteReader& r, bool compact, std::int64_t& n) {
  if (compact) {
    std::uint32_t u = 0;
    if (!r.read_unsigned_varint(u)) return false;
    n = static_cast<std::int64_t>(u) - 1;
    return true;
  }
  std::int32_t s = 0;
  if (!r.read_i32(s)) return false;
  n = s;
  return true;
}

bool skip_tagged_fields(ByteReader& r) {
  std::uint32_t count = 0;
  if (!r.read_unsigned_varint(count)) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t tag = 0, size = 0;
    ByteView ignored;
    if (!r.read_unsigned_varint(tag) || !r.read_unsigned_varint(size) || !r.read_bytes(size, ignored)) return false;
  }
  return true;
}

bool read_partitions(ByteReader& r, bool compact, std::set<TopicPartition>& out) {
  std::int64_t topics = 0;
  if (!read_array_length(r, compact, topics)) return false;
  // Every entry takes at least one byte: a count beyond what is left is corrupt, not an allocation.
  if (topics > static_cast<std::int64_t>(r.remaining())) return false;
  for (std::int64_t t = 0; t < topics; ++t) {
    std::string topic;
    std::int64_t ids = 0;
    if (!read_string(r, compact, topic) || !read_array_length(r, compact, ids) || ids < 0 ||
        ids > static_cast<std::int64_t>(r.remaining())) {
      return false;
    }
    for (std::int64_t i = 0; i < ids; ++i) {
      std::int32_t id = 0;
      if (!r.read_i32(id)) return false;
      out.insert(TopicPartition{topic, id});
    }
    if (compact && !skip_tagged_fields(r)) return false;
  }
  return true;
}

}  // namespace

Bytes encode_log_key(const std::string& transactional_id) {
  ByteWriter w;
  w.write_i16(0);
  write_string(w, transactional_id);
  return w.take();
}

Result<std::string> decode_log_key(ByteView key) {
  ByteReader r(key);
  std::int16_t version = 0;
  if (!r.read_i16(version)) return corrupt("key too short");
  if (version != 0) return corrupt("unknown key version " + std::to_string(version));
  std::string id;
  if (!read_string(r, false, id)) return corrupt("key truncated");
  return id;
}

Bytes encode_log_value(const TxnMetadata& m) {
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const TopicPartition& tp : m.partitions) by_topic[tp.topic].push_back(tp.partition);
  ByteWriter w;
  w.write_i16(0);
  w.write_i64(m.producer_id);
  w.write_i16(m.producer_epoch);
  w.write_i32(m.timeout_ms);
  w.write_i8(static_cast<std::int8_t>(m.state));
  w.write_i32(static_cast<std::int32_t>(by_topic.size()));
  for (const auto& [topic, ids] : by_topic) {
    write_string(w, topic);
    w.write_i32(static_cast<std::int32_t>(ids.size()));
    for (std::int32_t id : ids) w.write_i32(id);
  }
  w.write_i64(m.last_update_ms);
  w.write_i64(m.txn_start_ms);
  return w.take();
}

Result<TxnMetadata> decode_log_value(ByteView value) {
  ByteReader r(value);
  std::int16_t version = 0;
  if (!r.read_i16(version)) return corrupt("value too short");
  if (version < 0 || version > 1) return corrupt("unknown value version " + std::to_string(version));
  const bool compact = version >= 1;
  TxnMetadata m;
  std::int8_t status = 0;
  if (!r.read_i64(m.producer_id) || !r.read_i16(m.producer_epoch) || !r.read_i32(m.timeout_ms) ||
      !r.read_i8(status)) {
    return corrupt("value truncated");
  }
  std::optional<TxnState> state = state_from_id(status);
  if (!state) return corrupt("unknown transaction status " + std::to_string(status));
  m.state = *state;
  if (!read_partitions(r, compact, m.partitions)) return corrupt("partitions truncated");
  if (!r.read_i64(m.last_update_ms) || !r.read_i64(m.txn_start_ms)) return corrupt("timestamps truncated");
  if (compact && !skip_tagged_fields(r)) return corrupt("tagged fields truncated");
  return m;
}

Result<std::map<std::string, Transaction>> replay_log(const std::vector<LogRecord>& records) {
  std::map<std::string, Transaction> out;
  for (const LogRecord& record : records) {
    Result<std::string> id = decode_log_key(ByteView(record.key));
    if (!id) return id.error();
    if (!record.value) {
      out.erase(*id);
      continue;
    }
    Result<TxnMetadata> m = decode_log_value(ByteView(*record.value));
    if (!m) return m.error();
    if (m->state == TxnState::dead) {
      out.erase(*id);
      continue;
    }
    Transaction txn;
    txn.current = std::move(*m);
    txn.current.transactional_id = *id;
    out[*id] = std::move(txn);
  }
  return out;
}

}  // namespace bulwark::txn
