// Metadata record framing against bytes computed by hand from the schemas, malformed input, and the
// Raft control records.
#include <gtest/gtest.h>

#include "cluster/records.h"

namespace bulwark::cluster {
namespace {

Uuid counting_uuid(std::uint8_t first) {
  Uuid u{};
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = static_cast<std::uint8_t>(first + i);
  return u;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes uuid_bytes(const Uuid& u) { return Bytes(u.begin(), u.end()); }

// Hex for failure messages (gtest prints only the first 32 elements of a vector).
std::string hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
    out.push_back(' ');
  }
  return out;
}

#define EXPECT_BYTES(actual, expected) EXPECT_EQ(hex(actual), hex(expected))

template <class R>
const R& decoded_as(const Result<AnyRecord>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  EXPECT_TRUE(std::holds_alternative<R>(r->record));
  return std::get<R>(r->record);
}

TEST(RecordBytes, TopicRecordV0) {
  rec::TopicRecord t;
  t.name = "foo";
  t.topic_id = counting_uuid(1);
  const Bytes expected = concat({
      {0x01, 0x02, 0x00},            // frame version 1, apiKey 2, version 0
      {0x04, 'f', 'o', 'o'},         // compact string: length + 1
      uuid_bytes(counting_uuid(1)),  // TopicId
      {0x00},                        // no tagged fields
  });
  EXPECT_BYTES(encode_record(make_record(t, 0)), expected);
  auto decoded = decode_record(expected);
  EXPECT_EQ(decoded_as<rec::TopicRecord>(decoded), t);
  EXPECT_EQ(decoded->version, 0);
  EXPECT_EQ(decoded->name(), "TopicRecord");
}

TEST(RecordBytes, PartitionRecordV0AndV2) {
  rec::PartitionRecord p;
  p.partition_id = 1;
  p.topic_id = counting_uuid(0x20);
  p.replicas = {1, 2, 3};
  p.isr = {1, 2};
  p.leader = 1;
  p.leader_epoch = 5;
  p.partition_epoch = 7;
  const Bytes body_v0 = concat({
      {0x00, 0x00, 0x00, 0x01},                                           // PartitionId
      uuid_bytes(counting_uuid(0x20)),                                    // TopicId
      {0x04, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3},                         // Replicas (3 + 1)
      {0x03, 0, 0, 0, 1, 0, 0, 0, 2},                                     // Isr
      {0x01},                                                             // RemovingReplicas []
      {0x01},                                                             // AddingReplicas []
      {0, 0, 0, 1},                                                       // Leader
      {0, 0, 0, 5},                                                       // LeaderEpoch
      {0, 0, 0, 7},                                                       // PartitionEpoch
  });
  const Bytes v0 = concat({{0x01, 0x03, 0x00}, body_v0, {0x00}});
  EXPECT_BYTES(encode_record(make_record(p, 0)), v0);
  EXPECT_EQ(decoded_as<rec::PartitionRecord>(decode_record(v0)), p);

  // v2: Directories (v1+) follow PartitionEpoch; LeaderRecoveryState (tag 0) and the ELR (tag 1) are
  // tagged and sorted by tag.
  p.leader_recovery_state = 1;
  p.eligible_leader_replicas = std::vector<std::int32_t>{2};
  const Bytes v2 = concat({
      {0x01, 0x03, 0x02},
      body_v0,
      {0x01},                          // Directories []
      {0x02},                          // two tagged fields
      {0x00, 0x01, 0x01},              // tag 0, size 1, LeaderRecoveryState 1
      {0x01, 0x05, 0x02, 0, 0, 0, 2},  // tag 1, size 5, [2]
  });
  EXPECT_BYTES(encode_record(make_record(p, 2)), v2);
  EXPECT_EQ(decoded_as<rec::PartitionRecord>(decode_record(v2)), p);
}

TEST(RecordBytes, RegisterBrokerRecordV0AndV3) {
  rec::RegisterBrokerRecord b;
  b.broker_id = 1;
  b.incarnation_id = counting_uuid(0x40);
  b.broker_epoch = 10;
  auto& e = b.end_points.emplace_back();
  e.name = "EXT";
  e.host = "h";
  e.port = 9092;
  e.security_protocol = 1;
  auto& f = b.features.emplace_back();
  f.name = "mv";
  f.min_supported_version = 1;
  f.max_supported_version = 19;
  b.fenced = true;
  b.rack = std::nullopt;  // Kafka's default for a nullable string without "default" is "", not null
  const Bytes endpoints_and_features = {
      0x02,                             // one endpoint
      0x04, 'E', 'X', 'T',              // Name
      0x02, 'h',                        // Host
      0x23, 0x84,                       // Port 9092
      0x00, 0x01,                       // SecurityProtocol
      0x00,                             // endpoint's tagged fields
      0x02,                             // one feature
      0x03, 'm', 'v', 0x00, 0x01, 0x00, 0x13, 0x00,
  };
  const Bytes v0 = concat({
      {0x01, 0x00, 0x00},  // frame, apiKey 0, version 0
      {0, 0, 0, 1},        // BrokerId
      uuid_bytes(counting_uuid(0x40)),
      {0, 0, 0, 0, 0, 0, 0, 10},  // BrokerEpoch
      endpoints_and_features,
      {0x00},  // Rack null
      {0x01},  // Fenced
      {0x00},  // tagged fields
  });
  EXPECT_BYTES(encode_record(make_record(b, 0)), v0);
  EXPECT_EQ(decoded_as<rec::RegisterBrokerRecord>(decode_record(v0)), b);

  // v3: IsMigratingZkBroker (v2+) after BrokerId, InControlledShutdown (v1+) after Fenced, LogDirs tag 0.
  b.rack = "r";
  b.fenced = false;
  b.in_controlled_shutdown = true;
  b.log_dirs = {counting_uuid(0x60)};
  const Bytes v3 = concat({
      {0x01, 0x00, 0x03},
      {0, 0, 0, 1},
      {0x00},  // IsMigratingZkBroker
      uuid_bytes(counting_uuid(0x40)),
      {0, 0, 0, 0, 0, 0, 0, 10},
      endpoints_and_features,
      {0x02, 'r'},  // Rack
      {0x00},       // Fenced
      {0x01},       // InControlledShutdown
      {0x01, 0x00, 0x11, 0x02},  // one tagged field: tag 0, 17 bytes, one uuid
      uuid_bytes(counting_uuid(0x60)),
  });
  EXPECT_BYTES(encode_record(make_record(b, 3)), v3);
  EXPECT_EQ(decoded_as<rec::RegisterBrokerRecord>(decode_record(v3)), b);
}

TEST(RecordBytes, PartitionChangeRecordAbsentFieldsAreNotWritten) {
  rec::PartitionChangeRecord c;
  c.partition_id = 0;
  c.topic_id = counting_uuid(1);
  EXPECT_EQ(c.leader, -2);  // NO_LEADER_CHANGE is the default
  const Bytes minimal = concat({{0x01, 0x05, 0x00}, {0, 0, 0, 0}, uuid_bytes(counting_uuid(1)), {0x00}});
  EXPECT_BYTES(encode_record(make_record(c, 0)), minimal);
  c.isr = std::vector<std::int32_t>{3};
  c.leader = -1;
  const Bytes with_isr_and_leader = concat({{0x01, 0x05, 0x00}, {0, 0, 0, 0}, uuid_bytes(counting_uuid(1)),
                                            {0x02, 0x00, 0x05, 0x02, 0, 0, 0, 3, 0x01, 0x04, 0xff, 0xff, 0xff, 0xff}});
  EXPECT_BYTES(encode_record(make_record(c, 0)), with_isr_and_leader);
  EXPECT_EQ(decoded_as<rec::PartitionChangeRecord>(decode_record(with_isr_and_leader)), c);
}

TEST(RecordDecode, UnknownApiKeyIsUnsupported) {
  const Bytes bytes = {0x01, 0x63, 0x00, 0x00};  // apiKey 99
  auto r = decode_record(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::unsupported);
  EXPECT_NE(r.error().message.find("unknown metadata record apiKey 99"), std::string::npos) << r.error().message;
  // A varint too large for any key.
  auto huge = decode_record(Bytes{0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().kind, ErrorKind::unsupported);
}

TEST(RecordDecode, UnsupportedVersionNamesTheRange) {
  auto r = decode_record(Bytes{0x01, 0x03, 0x07, 0x00});  // PartitionRecord v7
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::unsupported);
  EXPECT_NE(r.error().message.find("PartitionRecord version 7 is not supported (0-2)"), std::string::npos)
      << r.error().message;
}

TEST(RecordDecode, UnknownFrameVersion) {
  auto r = decode_record(Bytes{0x02, 0x02, 0x00});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::unsupported);
  EXPECT_NE(r.error().message.find("frame version 2"), std::string::npos);
}

TEST(RecordDecode, TruncationAndTrailingBytesAreCorrupt) {
  rec::TopicRecord t;
  t.name = "foo";
  t.topic_id = counting_uuid(1);
  Bytes bytes = encode_record(make_record(t));
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = decode_record(ByteView(bytes.data(), cut));
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.error().kind, ErrorKind::corrupt) << cut << ": " << r.error().message;
  }
  auto cut = decode_record(ByteView(bytes.data(), bytes.size() - 3));
  EXPECT_NE(cut.error().message.find("TopicRecord v0 is truncated"), std::string::npos) << cut.error().message;
  bytes.push_back(0x00);
  auto trailing = decode_record(bytes);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().kind, ErrorKind::corrupt);
  EXPECT_NE(trailing.error().message.find("1 trailing bytes"), std::string::npos) << trailing.error().message;
}

TEST(RecordDecode, MalformedBodyIsCorrupt) {
  // ConfigRecord with a compact string length of 0 where a non-nullable string is required (0 = null).
  auto r = decode_record(Bytes{0x01, 0x04, 0x00, 0x02, 0x00});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
}

TEST(RecordEncode, UnsupportedVersionEncodesNothing) {
  EXPECT_TRUE(encode_record(AnyRecord{rec::TopicRecord{}, 3}).empty());
  EXPECT_TRUE(encode_record(AnyRecord{rec::TopicRecord{}, -1}).empty());
  EXPECT_FALSE(decode_record(Bytes{}).ok());
}

TEST(RecordInfo, NamesAndVersions) {
  EXPECT_EQ(record_name(0), "RegisterBrokerRecord");
  EXPECT_EQ(record_name(27), "RegisterControllerRecord");
  EXPECT_EQ(record_name(6), "");  // Kafka retired apiKey 6 (IsrChangeRecord)
  EXPECT_EQ(record_name(-1), "");
  EXPECT_TRUE(record_version_supported(3, 2));
  EXPECT_FALSE(record_version_supported(3, 3));
  EXPECT_EQ(make_record(rec::PartitionRecord{}).version, 2);
  EXPECT_EQ(make_record(rec::NoOpRecord{}).api_key(), 20);
}

TEST(RecordInfo, UuidStringIsKafkasBase64Url) {
  EXPECT_EQ(uuid_string(Uuid{}), "AAAAAAAAAAAAAAAAAAAAAA");
  Uuid u{};
  u.fill(0xff);
  EXPECT_EQ(uuid_string(u), "_____________________w");
  EXPECT_EQ(uuid_string(counting_uuid(0)).size(), 22u);
}

TEST(ControlRecords, LeaderChangeBytes) {
  rec::LeaderChangeMessage m;
  m.leader_id = 1;
  m.voters.emplace_back().voter_id = 1;
  m.voters.emplace_back().voter_id = 2;
  m.granting_voters.emplace_back().voter_id = 1;
  const Bytes value = {0x00, 0x00,                                  // Version
                       0, 0, 0, 1,                                  // LeaderId
                       0x03, 0, 0, 0, 1, 0x00, 0, 0, 0, 2, 0x00,    // Voters
                       0x02, 0, 0, 0, 1, 0x00,                      // GrantingVoters
                       0x00};
  EXPECT_BYTES(encode_control_value(ControlRecord(m)), value);
  EXPECT_EQ(encode_control_key(ControlRecordType::leader_change), (Bytes{0, 0, 0, 2}));
  auto decoded = decode_control_record(encode_control_key(ControlRecordType::leader_change), value);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(control_record_type(*decoded), ControlRecordType::leader_change);
  EXPECT_EQ(std::get<rec::LeaderChangeMessage>(*decoded), m);
}

TEST(ControlRecords, SnapshotHeaderAndFooter) {
  rec::SnapshotHeaderRecord h;
  h.last_contained_log_timestamp = 1234;
  auto header = decode_control_record(encode_control_key(ControlRecordType::snapshot_header),
                                      encode_control_value(ControlRecord(h)));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(std::get<rec::SnapshotHeaderRecord>(*header), h);
  auto footer = decode_control_record(encode_control_key(ControlRecordType::snapshot_footer),
                                      encode_control_value(ControlRecord(rec::SnapshotFooterRecord{})));
  ASSERT_TRUE(footer.ok());
  EXPECT_EQ(control_record_type(*footer), ControlRecordType::snapshot_footer);
}

TEST(ControlRecords, BadKeysAndValues) {
  const Bytes footer = encode_control_value(ControlRecord(rec::SnapshotFooterRecord{}));
  auto short_key = decode_control_record(Bytes{0, 0, 0}, footer);
  ASSERT_FALSE(short_key.ok());
  EXPECT_EQ(short_key.error().kind, ErrorKind::corrupt);
  auto commit_marker = decode_control_record(Bytes{0, 0, 0, 1}, footer);  // transaction COMMIT
  ASSERT_FALSE(commit_marker.ok());
  EXPECT_EQ(commit_marker.error().kind, ErrorKind::unsupported);
  auto negative = decode_control_record(Bytes{0xff, 0xff, 0, 4}, footer);
  EXPECT_FALSE(negative.ok());
  Bytes trailing = footer;
  trailing.push_back(0);
  auto t = decode_control_record(encode_control_key(ControlRecordType::snapshot_footer), trailing);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("trailing"), std::string::npos);
  auto truncated = decode_control_record(encode_control_key(ControlRecordType::leader_change), Bytes{0, 0, 0});
  EXPECT_FALSE(truncated.ok());
}

}  // namespace
}  // namespace bulwark::cluster
