#include "cluster/records.h"

#include <string>
#include <type_traits>

namespace bulwark::cluster {

namespace {

struct RecordInfo {
  std::int16_t api_key;
  std::string_view name;
  std::int16_t lowest_version;
  std::int16_t highest_version;
};

#define BULWARK_RECORD_INFO(key, Name) \
  RecordInfo{key, #Name, rec::Name::lowest_supported_version, rec::Name::highest_supported_version},
constexpr RecordInfo kRecords[] = {BULWARK_CLUSTER_FOR_EACH_RECORD(BULWARK_RECORD_INFO)};
#undef BULWARK_RECORD_INFO

const RecordInfo* find_record(std::uint32_t api_key) {
  for (const auto& info : kRecords) {
    if (static_cast<std::uint32_t>(info.api_key) == api_key) return &info;
  }
  return nullptr;
}

std::string version_range(const RecordInfo& info) {
  return std::to_string(info.lowest_version) + "-" + std::to_string(info.highest_version);
}

template <class R>
Result<AnyRecord> decode_body(ByteReader& r, std::int16_t version) {
  R record;
  const std::size_t start = r.position();
  if (!record.decode(r, version)) {
    const char* what = r.ok() ? "is malformed" : "is truncated";
    return make_error(ErrorKind::corrupt, std::string(record_name(R::api_key)) + " v" + std::to_string(version) +
                                              " " + what + " (at byte " + std::to_string(r.position() - start) +
                                              " of its body)");
  }
  if (!r.at_end()) {
    return make_error(ErrorKind::corrupt, std::string(record_name(R::api_key)) + " v" + std::to_string(version) +
                                              " is followed by " + std::to_string(r.remaining()) +
                                              " trailing bytes");
  }
  return AnyRecord{std::move(record), version};
}

Result<AnyRecord> decode_by_key(ByteReader& r, std::int16_t api_key, std::int16_t version) {
  switch (api_key) {
#define BULWARK_RECORD_CASE(key, Name) \
  case key:                            \
    return decode_body<rec::Name>(r, version);
    BULWARK_CLUSTER_FOR_EACH_RECORD(BULWARK_RECORD_CASE)
#undef BULWARK_RECORD_CASE
    default:
      break;
  }
  return make_error(ErrorKind::unsupported, "unknown metadata record apiKey " + std::to_string(api_key));
}

}  // namespace

std::string uuid_string(const Uuid& id) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int have = 0;
  for (std::uint8_t b : id) {
    bits = (bits << 8) | b;
    have += 8;
    while (have >= 6) {
      have -= 6;
      out.push_back(kAlphabet[(bits >> have) & 0x3f]);
    }
  }
  if (have > 0) out.push_back(kAlphabet[(bits << (6 - have)) & 0x3f]);
  return out;
}

std::int16_t AnyRecord::api_key() const {
  return std::visit([](const auto& r) { return std::decay_t<decltype(r)>::api_key; }, record);
}

std::string_view AnyRecord::name() const { return record_name(api_key()); }

std::string_view record_name(std::int16_t api_key) {
  const RecordInfo* info = find_record(static_cast<std::uint16_t>(api_key));
  return info ? info->name : std::string_view();
}

bool record_version_supported(std::int16_t api_key, std::int16_t version) {
  const RecordInfo* info = api_key < 0 ? nullptr : find_record(static_cast<std::uint32_t>(api_key));
  return info != nullptr && version >= info->lowest_version && version <= info->highest_version;
}

Bytes encode_record(const AnyRecord& record) {
  if (!record_version_supported(record.api_key(), record.version)) return {};
  ByteWriter w;
  w.write_unsigned_varint(kRecordFrameVersion);
  w.write_unsigned_varint(static_cast<std::uint64_t>(record.api_key()));
  w.write_unsigned_varint(static_cast<std::uint64_t>(record.version));
  std::visit([&](const auto& r) { r.encode(w, record.version); }, record.record);
  return w.take();
}

Result<AnyRecord> decode_record(ByteView value) {
  ByteReader r(value);
  std::uint32_t frame_version = 0;
  std::uint32_t api_key = 0;
  std::uint32_t version = 0;
  if (!r.read_unsigned_varint(frame_version)) {
    return make_error(ErrorKind::corrupt, "metadata record is truncated before its frame version");
  }
  if (frame_version != kRecordFrameVersion) {
    return make_error(ErrorKind::unsupported, "metadata record frame version " + std::to_string(frame_version) +
                                                  " is not supported (only 1)");
  }
  if (!r.read_unsigned_varint(api_key) || !r.read_unsigned_varint(version)) {
    return make_error(ErrorKind::corrupt, "metadata record is truncated in its frame header");
  }
  const RecordInfo* info = find_record(api_key);
  if (info == nullptr) {
    return make_error(ErrorKind::unsupported, "unknown metadata record apiKey " + std::to_string(api_key));
  }
  if (version < static_cast<std::uint32_t>(info->lowest_version) ||
      version > static_cast<std::uint32_t>(info->highest_version)) {
    return make_error(ErrorKind::unsupported, std::string(info->name) + " version " + std::to_string(version) +
                                                  " is not supported (" + version_range(*info) + ")");
  }
  return decode_by_key(r, info->api_key, static_cast<std::int16_t>(version));
}

// --- Control records --------------------------------------------------------------------------

namespace {

constexpr std::int16_t kControlKeyVersion = 0;
constexpr std::int16_t kControlValueVersion = 0;

template <class R>
Result<ControlRecord> decode_control_value(ByteView value, std::string_view name) {
  ByteReader r(value);
  R record;
  if (!record.decode(r, kControlValueVersion)) {
    return make_error(ErrorKind::corrupt, std::string(name) + " control record is truncated or malformed");
  }
  if (!r.at_end()) {
    return make_error(ErrorKind::corrupt, std::string(name) + " control record is followed by " +
                                              std::to_string(r.remaining()) + " trailing bytes");
  }
  return ControlRecord(std::move(record));
}

}  // namespace

ControlRecordType control_record_type(const ControlRecord& record) {
  switch (record.index()) {
    case 0:
      return ControlRecordType::leader_change;
    case 1:
      return ControlRecordType::snapshot_header;
    default:
      return ControlRecordType::snapshot_footer;
  }
}

Bytes encode_control_key(ControlRecordType type) {
  ByteWriter w;
  w.write_i16(kControlKeyVersion);
  w.write_i16(static_cast<std::int16_t>(type));
  return w.take();
}

Bytes encode_control_value(const ControlRecord& record) {
  ByteWriter w;
  std::visit([&](const auto& r) { r.encode(w, kControlValueVersion); }, record);
  return w.take();
}

Result<ControlRecord> decode_control_record(ByteView key, ByteView value) {
  ByteReader r(key);
  std::int16_t key_version = 0;
  std::int16_t type = 0;
  if (!r.read_i16(key_version) || !r.read_i16(type)) {
    return make_error(ErrorKind::corrupt, "control record key is shorter than 4 bytes");
  }
  // Kafka reads the type from any non-negative key version (later versions may append fields).
  if (key_version < 0) {
    return make_error(ErrorKind::corrupt, "control record key version " + std::to_string(key_version) +
                                              " is negative");
  }
  switch (static_cast<ControlRecordType>(type)) {
    case ControlRecordType::leader_change:
      return decode_control_value<rec::LeaderChangeMessage>(value, "LeaderChangeMessage");
    case ControlRecordType::snapshot_header:
      return decode_control_value<rec::SnapshotHeaderRecord>(value, "SnapshotHeaderRecord");
    case ControlRecordType::snapshot_footer:
      return decode_control_value<rec::SnapshotFooterRecord>(value, "SnapshotFooterRecord");
  }
  return make_error(ErrorKind::unsupported, "control record type " + std::to_string(type) + " is not supported");
}

}  // namespace bulwark::cluster
