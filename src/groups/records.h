// The records the coordinator stores, in the layout of Kafka's __consumer_offsets topic (so the
// bytes read the same as Kafka's):
//   offset commit  key v1: i16 version=1, string group, string topic, i32 partition
//                  value v3: i16 version=3, i64 offset, i32 leader epoch, string metadata, i64 commit ts
//   group metadata key v2: i16 version=2, string group
//                  value v3: i16 version=3, string protocol type, i32 generation, nullable string
//                  protocol, nullable string leader, i64 state timestamp, members[] (string member id,
//                  nullable string instance id, string client id, string client host, i32 rebalance
//                  timeout, i32 session timeout, bytes subscription, bytes assignment)
// A null value is a tombstone: the offset or the group is gone. Strings are i16-length prefixed,
// bytes i32-length prefixed, arrays i32-count prefixed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace bulwark::groups {

// How a record sits in the log. Transactional records (TxnOffsetCommit) wait for their producer's
// transaction marker: a control batch whose key is Kafka's EndTransactionMarker (i16 version, i16 type:
// 0 = ABORT, 1 = COMMIT). A marker's key is kept as read and its value is nullopt.
enum class RecordKind { plain, transactional, commit_marker, abort_marker };

struct StoredRecord {
  Bytes key;
  std::optional<Bytes> value;  // nullopt = tombstone
  RecordKind kind = RecordKind::plain;
  std::int64_t producer_id = -1;  // transactional records and markers
  std::int16_t producer_epoch = -1;
};

struct OffsetKey {
  std::string group;
  std::string topic;
  std::int32_t partition = 0;
};
struct OffsetValue {
  std::int64_t offset = -1;
  std::int32_t leader_epoch = -1;
  std::string metadata;
  std::int64_t commit_timestamp = -1;
};

struct GroupKey {
  std::string group;
};
struct StoredMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t rebalance_timeout_ms = 0;
  std::int32_t session_timeout_ms = 0;
  Bytes subscription;
  Bytes assignment;
};
struct GroupValue {
  std::string protocol_type;
  std::int32_t generation = 0;
  std::optional<std::string> protocol;
  std::optional<std::string> leader;
  std::int64_t state_timestamp = -1;
  std::vector<StoredMember> members;
};

Bytes encode_offset_key(const OffsetKey& key);
Bytes encode_offset_value(const OffsetValue& value);
Bytes encode_group_key(const GroupKey& key);
Bytes encode_group_value(const GroupValue& value);

// A decoded key: which kind it is tells how to read the value.
using DecodedKey = std::variant<OffsetKey, GroupKey>;
Result<DecodedKey> decode_key(ByteView key);
Result<OffsetValue> decode_offset_value(ByteView value);  // value versions 0, 1 and 3
Result<GroupValue> decode_group_value(ByteView value);    // value versions 0..3

}  // namespace bulwark::groups
