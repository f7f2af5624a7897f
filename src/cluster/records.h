// KIP-631 metadata records as they are stored in __cluster_metadata, and the Raft control records.
//
// A metadata record value is framed as Kafka frames it: unsigned varint frame version (1), unsigned
// varint apiKey, unsigned varint record version, then the record in its (flexible) encoding. The record
// structs themselves are generated (cluster/generated, namespace bulwark::cluster::rec) from Kafka's
// schemas by tools/gen_codecs.py.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/generated/control_records.h"
#include "cluster/generated/record_list.h"

namespace bulwark::cluster {

using Uuid = wire::Uuid;

// Kafka's text form of a Uuid (base64url without padding, 22 characters), for messages and logs.
std::string uuid_string(const Uuid& id);

inline constexpr std::uint32_t kRecordFrameVersion = 1;

// One metadata record with the version it is (to be) encoded in.
struct AnyRecord {
  rec::RecordVariant record;
  std::int16_t version = 0;

  std::int16_t api_key() const;
  std::string_view name() const;
  bool operator==(const AnyRecord&) const = default;
};

// A record at the highest version this code knows (what the controller writes).
template <class R>
AnyRecord make_record(R record, std::int16_t version = R::highest_supported_version) {
  return AnyRecord{std::move(record), version};
}

// The record's schema name ("TopicRecord"), or "" for an apiKey no schema has.
std::string_view record_name(std::int16_t api_key);
bool record_version_supported(std::int16_t api_key, std::int16_t version);

// The framed value. Empty when record.version is not one the record type supports (a caller bug
// that decode_record then reports as truncation rather than bytes no reader understands).
Bytes encode_record(const AnyRecord& record);

// Errors (all values, never a crash): ErrorKind::unsupported for an unknown frame version, an unknown
// apiKey or a record version this code does not know; ErrorKind::corrupt for truncation, a malformed
// body or trailing bytes. The message names the record and what is wrong.
Result<AnyRecord> decode_record(ByteView value);

// --- Raft control records (in control batches; the key says which one) ---------------------------

enum class ControlRecordType : std::int16_t {
  leader_change = 2,
  snapshot_header = 3,
  snapshot_footer = 4,
};

using ControlRecord = std::variant<rec::LeaderChangeMessage, rec::SnapshotHeaderRecord, rec::SnapshotFooterRecord>;

ControlRecordType control_record_type(const ControlRecord& record);
// Key: int16 key version (0), int16 type. Value: the struct at version 0.
Bytes encode_control_key(ControlRecordType type);
Bytes encode_control_value(const ControlRecord& record);
// ErrorKind::unsupported for a control type other than the three above (e.g. transaction markers),
// ErrorKind::corrupt for a short key, a malformed value or trailing bytes.
Result<ControlRecord> decode_control_record(ByteView key, ByteView value);

}  // namespace bulwark::cluster
