// Generated Kafka codecs against byte vectors written by hand from the protocol spec
// (https://kafka.apache.org/protocol), plus malformed-input cases. The exhaustive round trip of every
// message and version is generated: wire_test_codecs_roundtrip.cpp.
// The replaced operator new below hands out malloc memory; GCC cannot see that pairing across calls.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "wire/generated/messages.h"
#include "wire/protocol.h"

// Largest single allocation while tracking is on: shows that forged counts do not allocate.
namespace {
std::atomic<bool> g_track{false};
std::atomic<std::size_t> g_largest{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_track.load(std::memory_order_relaxed)) {
    std::size_t prev = g_largest.load();
    while (n > prev && !g_largest.compare_exchange_weak(prev, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace bulwark::wire {
namespace {

Bytes hex(std::string_view s) {
  Bytes out;
  int hi = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      continue;  // spaces and separators
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

Bytes str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class M>
Bytes encode(const M& m, std::int16_t v) {
  ByteWriter w;
  m.encode(w, v);
  return w.take();
}

// Decodes the whole of `bytes` as M at version v; fails the test if anything is left over.
template <class M>
M decode_all(const Bytes& bytes, std::int16_t v) {
  ByteReader r(bytes);
  M m;
  EXPECT_TRUE(m.decode(r, v));
  EXPECT_TRUE(r.at_end()) << r.remaining() << " bytes left";
  return m;
}

template <class M>
void expect_truncations_fail(const Bytes& bytes, std::int16_t v) {
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    ByteReader r(ByteView(bytes.data(), cut));
    M m;
    EXPECT_FALSE(m.decode(r, v)) << "prefix of " << cut << " bytes";
  }
}

TEST(RequestHeader, ApiVersionsV0FromKafkaPython) {
  // api_key 18, version 0, correlation id 1, client id "kafka-python"; ApiVersions v0 has no body.
  const Bytes frame = cat({hex("0012 0000 00000001 000c"), str("kafka-python")});
  ByteReader r(frame);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->api_key, 18);
  EXPECT_EQ(h->api_version, 0);
  EXPECT_EQ(h->correlation_id, 1);
  EXPECT_EQ(h->client_id, "kafka-python");
  msg::ApiVersionsRequest req;
  EXPECT_TRUE(req.decode(r, 0));
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(encode(req, 0).empty());

  ByteWriter w;
  encode_request_header(w, *h);
  EXPECT_EQ(w.take(), frame);
}

TEST(RequestHeader, ApiVersionsV3FlexibleWithClientSoftware) {
  // Header v2: the client id keeps its int16 length, then an empty tagged field section.
  const Bytes header = cat({hex("0012 0003 00000007 0007"), str("rdkafka"), hex("00")});
  // Body: compact strings (length + 1), then the body's own empty tagged field section.
  const Bytes body = cat({hex("0b"), str("librdkafka"), hex("06"), str("2.0.2"), hex("00")});
  const Bytes frame = cat({header, body});
  ByteReader r(frame);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->api_version, 3);
  EXPECT_EQ(h->correlation_id, 7);
  EXPECT_EQ(h->client_id, "rdkafka");
  EXPECT_EQ(r.position(), header.size());

  msg::ApiVersionsRequest req;
  ASSERT_TRUE(req.decode(r, 3));
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(req.client_software_name, "librdkafka");
  EXPECT_EQ(req.client_software_version, "2.0.2");
  EXPECT_EQ(encode(req, 3), body);
  expect_truncations_fail<msg::ApiVersionsRequest>(body, 3);

  ByteWriter w;
  encode_request_header(w, *h);
  EXPECT_EQ(w.take(), header);
}

TEST(RequestHeader, V2WithNullClientId) {
  // Metadata v12 is flexible: header v2, client id -1 (null), no tagged fields.
  const Bytes frame = hex("0003 000c 0000002a ffff 00");
  EXPECT_EQ(request_header_version(3, 12), 2);
  ByteReader r(frame);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->api_key, 3);
  EXPECT_EQ(h->api_version, 12);
  EXPECT_EQ(h->correlation_id, 42);
  EXPECT_FALSE(h->client_id.has_value());
  EXPECT_TRUE(r.at_end());
  ByteWriter w;
  encode_request_header(w, *h);
  EXPECT_EQ(w.take(), frame);
  // The generated header struct agrees.
  auto g = decode_all<msg::RequestHeader>(frame, 2);
  EXPECT_EQ(g.request_api_key, 3);
  EXPECT_FALSE(g.client_id.has_value());
  EXPECT_EQ(encode(g, 2), frame);
}

TEST(RequestHeader, Versions) {
  EXPECT_EQ(request_header_version(7, 0), 0);  // ControlledShutdown v0: no client id
  EXPECT_EQ(request_header_version(7, 1), 1);
  EXPECT_EQ(request_header_version(7, 3), 2);
  EXPECT_EQ(request_header_version(0, 8), 1);  // Produce 9+ is flexible
  EXPECT_EQ(request_header_version(0, 9), 2);
  EXPECT_EQ(request_header_version(18, 2), 1);
  EXPECT_EQ(request_header_version(18, 3), 2);
  EXPECT_EQ(request_header_version(18, 4), 2);  // a newer ApiVersions is still flexible
  EXPECT_EQ(request_header_version(17, 1), 1);  // SaslHandshake is never flexible
  EXPECT_EQ(request_header_version(999, 5), 1);

  const Bytes cs = hex("0007 0000 00000005 00000001");  // ControlledShutdown v0: broker id follows
  ByteReader r(cs);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->correlation_id, 5);
  EXPECT_FALSE(h->client_id.has_value());
  EXPECT_EQ(r.remaining(), 4u);
}

TEST(RequestHeader, UnknownApiKeyStillYieldsHeader) {
  const Bytes frame = cat({hex("7fff 0004 00000009 0001"), str("x"), hex("deadbeef")});
  ByteReader r(frame);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->api_key, 0x7fff);
  EXPECT_EQ(h->api_version, 4);
  EXPECT_EQ(h->correlation_id, 9);
  EXPECT_EQ(h->client_id, "x");
  EXPECT_EQ(find_api(0x7fff), nullptr);
  EXPECT_FALSE(api_version_supported(0x7fff, 4));
}

TEST(RequestHeader, TruncatedFails) {
  const Bytes frame = cat({hex("0012 0003 00000007 0007"), str("rdkafka"), hex("00")});
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    ByteReader r(ByteView(frame.data(), cut));
    auto h = decode_request_header(r);
    EXPECT_FALSE(h.ok()) << cut;
    if (!h.ok()) {
      EXPECT_EQ(h.error().kind, ErrorKind::corrupt);
    }
  }
}

TEST(ResponseHeader, V0VersusV1) {
  EXPECT_EQ(response_header_version(18, 3), 0);  // ApiVersions: always v0
  EXPECT_EQ(response_header_version(3, 9), 1);
  EXPECT_EQ(response_header_version(3, 8), 0);
  EXPECT_EQ(response_header_version(999, 0), 0);
  ByteWriter v0;
  encode_response_header(v0, 18, 3, 7);
  EXPECT_EQ(v0.take(), hex("00000007"));
  ByteWriter v1;
  encode_response_header(v1, 3, 9, 7);
  EXPECT_EQ(v1.take(), hex("00000007 00"));
  ByteWriter v0b;
  encode_response_header(v0b, 3, 8, -2);
  EXPECT_EQ(v0b.take(), hex("fffffffe"));

  const Bytes with_tag = hex("00000007 01 05 02 aabb");  // a tagged field a newer peer might add
  ByteReader r(with_tag);
  auto c = decode_response_header(r, 3, 9);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 7);
  EXPECT_TRUE(r.at_end());
}

TEST(ApiVersionsResponse, V0) {
  msg::ApiVersionsResponse resp;
  resp.api_keys.push_back({.api_key = 0, .min_version = 0, .max_version = 9});
  resp.api_keys.push_back({.api_key = 18, .min_version = 0, .max_version = 3});
  resp.throttle_time_ms = 100;  // not in v0: dropped
  const Bytes expected = hex("0000 00000002 0000 0000 0009 0012 0000 0003");
  EXPECT_EQ(encode(resp, 0), expected);
  auto back = decode_all<msg::ApiVersionsResponse>(expected, 0);
  ASSERT_EQ(back.api_keys.size(), 2u);
  EXPECT_EQ(back.api_keys[1].api_key, 18);
  EXPECT_EQ(back.api_keys[1].max_version, 3);
  EXPECT_EQ(back.throttle_time_ms, 0);
  expect_truncations_fail<msg::ApiVersionsResponse>(expected, 0);
}

TEST(ApiVersionsResponse, V3WithTaggedFields) {
  msg::ApiVersionsResponse resp;
  resp.error_code = 35;
  resp.api_keys.push_back({.api_key = 18, .min_version = 0, .max_version = 3});
  resp.throttle_time_ms = 0;
  resp.supported_features.push_back({.name = "x", .min_version = 1, .max_version = 2});
  resp.finalized_features_epoch = 5;
  const Bytes expected = cat({
      hex("0023"),                       // error code 35
      hex("02 0012 0000 0003 00"),       // compact array of 1, element with empty tags
      hex("00000000"),                   // throttle time
      hex("02"),                         // two tagged fields, ascending tags
      hex("00 08 02 02"), str("x"), hex("0001 0002 00"),  // tag 0: supported features
      hex("01 08 0000000000000005"),     // tag 1: finalized features epoch
  });
  EXPECT_EQ(encode(resp, 3), expected);
  auto back = decode_all<msg::ApiVersionsResponse>(expected, 3);
  EXPECT_TRUE(back == resp);
  expect_truncations_fail<msg::ApiVersionsResponse>(expected, 3);

  // Defaults are not written as tagged fields: a plain v3 response ends with one 00.
  msg::ApiVersionsResponse plain;
  EXPECT_EQ(encode(plain, 3), hex("0000 01 00000000 00"));
}

TEST(MetadataRequest, V0FromKafkaPython) {
  const Bytes frame = cat({hex("0003 0000 00000002 000c"), str("kafka-python"), hex("00000001 0008"), str("my-topic")});
  ByteReader r(frame);
  auto h = decode_request_header(r);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->api_key, 3);
  msg::MetadataRequest req;
  ASSERT_TRUE(req.decode(r, 0));
  EXPECT_TRUE(r.at_end());
  ASSERT_TRUE(req.topics.has_value());
  ASSERT_EQ(req.topics->size(), 1u);
  EXPECT_EQ((*req.topics)[0].name, "my-topic");
  EXPECT_TRUE(req.allow_auto_topic_creation);  // schema default; not on the wire before v4

  // v0 has no AllowAutoTopicCreation: a non-default value is dropped, as Kafka's ignorable fields are.
  req.allow_auto_topic_creation = false;
  EXPECT_EQ(encode(req, 0), cat({hex("00000001 0008"), str("my-topic")}));

  // v0 cannot say null; v1+ can.
  const Bytes null_count = hex("ffffffff");
  ByteReader rn(null_count);
  EXPECT_FALSE(msg::MetadataRequest().decode(rn, 0));
  auto all = decode_all<msg::MetadataRequest>(hex("ffffffff"), 1);
  EXPECT_FALSE(all.topics.has_value());
  // A null written in v0 becomes the empty list (which v0 reads as "all topics").
  EXPECT_EQ(encode(all, 0), hex("00000000"));
}

TEST(MetadataRequest, V9Flexible) {
  const Bytes body = cat({hex("02 09"), str("my-topic"), hex("00"),  // one topic, empty tags
                          hex("01 00 00"),                            // auto create, no authorized ops
                          hex("00")});
  auto req = decode_all<msg::MetadataRequest>(body, 9);
  ASSERT_TRUE(req.topics.has_value());
  EXPECT_EQ((*req.topics)[0].name, "my-topic");
  EXPECT_TRUE(req.allow_auto_topic_creation);
  EXPECT_FALSE(req.include_topic_authorized_operations);
  EXPECT_EQ(encode(req, 9), body);
  expect_truncations_fail<msg::MetadataRequest>(body, 9);

  auto null_topics = decode_all<msg::MetadataRequest>(hex("00 00 01 00 00"), 9);
  EXPECT_FALSE(null_topics.topics.has_value());
  EXPECT_FALSE(null_topics.allow_auto_topic_creation);
  EXPECT_TRUE(null_topics.include_cluster_authorized_operations);
}

TEST(ProduceRequest, V3WithRecords) {
  const Bytes records = hex("0102030405");
  const Bytes body = cat({hex("ffff ffff 00007530"),        // null transactional id, acks -1, 30 s
                          hex("00000001 0004"), str("test"),  // one topic
                          hex("00000001 00000000"),           // one partition, index 0
                          hex("00000005"), records});
  auto req = decode_all<msg::ProduceRequest>(body, 3);
  EXPECT_FALSE(req.transactional_id.has_value());
  EXPECT_EQ(req.acks, -1);
  EXPECT_EQ(req.timeout_ms, 30000);
  ASSERT_EQ(req.topic_data.size(), 1u);
  EXPECT_EQ(req.topic_data[0].name, "test");
  ASSERT_EQ(req.topic_data[0].partition_data.size(), 1u);
  EXPECT_EQ(req.topic_data[0].partition_data[0].index, 0);
  EXPECT_EQ(req.topic_data[0].partition_data[0].records, records);
  EXPECT_EQ(encode(req, 3), body);
  expect_truncations_fail<msg::ProduceRequest>(body, 3);
}

TEST(ProduceRequest, V9Flexible) {
  msg::ProduceRequest req;
  req.transactional_id = "tx";
  req.acks = 1;
  req.timeout_ms = 1000;
  auto& topic = req.topic_data.emplace_back();
  topic.name = "test";
  auto& part = topic.partition_data.emplace_back();
  part.index = 2;
  part.records = hex("aabbcc");
  const Bytes expected = cat({hex("03"), str("tx"), hex("0001 000003e8"),
                              hex("02 05"), str("test"),
                              hex("02 00000002 04 aabbcc 00"),  // records: compact bytes
                              hex("00"),                        // topic tags
                              hex("00")});                      // request tags
  EXPECT_EQ(encode(req, 9), expected);
  auto back = decode_all<msg::ProduceRequest>(expected, 9);
  EXPECT_TRUE(back == req);
  expect_truncations_fail<msg::ProduceRequest>(expected, 9);

  // Null records are legal (length 0 in compact form, -1 in classic form).
  part.records.reset();
  auto null_records = decode_all<msg::ProduceRequest>(encode(req, 9), 9);
  EXPECT_FALSE(null_records.topic_data[0].partition_data[0].records.has_value());
  auto null_records_v3 = decode_all<msg::ProduceRequest>(encode(req, 3), 3);
  EXPECT_FALSE(null_records_v3.topic_data[0].partition_data[0].records.has_value());
}

TEST(Malformed, HugeArrayCountDoesNotAllocate) {
  // Metadata v0 claiming 2^31-1 topics in a 10-byte frame.
  const Bytes frame = hex("7fffffff 0001 61 0001 62");
  g_largest = 0;
  g_track = true;
  msg::MetadataRequest req;
  ByteReader r(frame);
  const bool ok = req.decode(r, 0);
  g_track = false;
  EXPECT_FALSE(ok);
  EXPECT_LT(g_largest.load(), 1024u);

  // The same in compact form (unsigned varint 2^32-1), and a primitive array.
  const Bytes compact = hex("ffffffff0f 00 00");
  g_largest = 0;
  g_track = true;
  msg::MetadataRequest req9;
  ByteReader r9(compact);
  const bool ok9 = req9.decode(r9, 9);
  // One topic "a", one partition whose replica list (int32 array) claims 2^32-2 entries.
  msg::AlterPartitionReassignmentsRequest apr;
  const Bytes replicas = hex("00000000 02 02 61 02 00000000 ffffffff0f");
  ByteReader ra(replicas);
  const bool oka = apr.decode(ra, 0);
  g_track = false;
  EXPECT_FALSE(ok9);
  EXPECT_FALSE(oka);
  EXPECT_LT(g_largest.load(), 1024u);
}

TEST(Malformed, LengthsAndNulls) {
  // Non-nullable string with length -1 (a topic name in Produce v3).
  const Bytes null_name = hex("ffff ffff 00007530 00000001 ffff 00000000");
  ByteReader r0(null_name);
  EXPECT_FALSE(msg::ProduceRequest().decode(r0, 3));
  // String longer than the frame.
  const Bytes long_name = hex("00000001 7fff 6161");
  ByteReader r1(long_name);
  EXPECT_FALSE(msg::MetadataRequest().decode(r1, 0));
  // Records length beyond the frame.
  const Bytes long_records = cat({hex("ffff ffff 00007530 00000001 0001"), str("t"), hex("00000001 00000000 7fffffff 00")});
  ByteReader r2(long_records);
  EXPECT_FALSE(msg::ProduceRequest().decode(r2, 3));
  // Negative array count other than null in a non-nullable array.
  const Bytes negative = hex("0000 fffffffe");
  ByteReader r3(negative);
  EXPECT_FALSE(msg::ApiVersionsResponse().decode(r3, 0));
  // Unsupported version.
  const Bytes none;
  ByteReader r4(none);
  EXPECT_FALSE(msg::ApiVersionsRequest().decode(r4, 4));
  EXPECT_FALSE(msg::ApiVersionsRequest().decode(r4, -1));
}

TEST(Malformed, TaggedFields) {
  // A tagged field whose size runs past the end.
  const Bytes b1 = hex("0000 01 00000000 01 01 09 00");
  ByteReader r1(b1);
  EXPECT_FALSE(msg::ApiVersionsResponse().decode(r1, 3));
  // A known tagged field (finalized features epoch, int64) with a payload of the wrong size.
  const Bytes b2 = hex("0000 01 00000000 01 01 09 000000000000000500");
  ByteReader r2(b2);
  EXPECT_FALSE(msg::ApiVersionsResponse().decode(r2, 3));
  const Bytes b3 = hex("0000 01 00000000 01 01 04 00000005");
  ByteReader r3(b3);
  EXPECT_FALSE(msg::ApiVersionsResponse().decode(r3, 3));
  // A tag count larger than the bytes could hold.
  const Bytes b4 = hex("0000 01 00000000 ffffffff0f");
  ByteReader r4(b4);
  EXPECT_FALSE(msg::ApiVersionsResponse().decode(r4, 3));
}

TEST(TaggedFields, UnknownTagsArePreservedInOrder) {
  // Tags 2 (finalized features, known), 7 and 40 (unknown) around a known one.
  const Bytes body = cat({hex("0000 01 00000000 03"),
                          hex("01 08 0000000000000009"),  // tag 1, known
                          hex("07 02 abcd"),              // tag 7, unknown
                          hex("28 00")});                 // tag 40, unknown and empty
  auto resp = decode_all<msg::ApiVersionsResponse>(body, 3);
  EXPECT_EQ(resp.finalized_features_epoch, 9);
  ASSERT_EQ(resp.unknown_tagged_fields.size(), 2u);
  EXPECT_EQ(resp.unknown_tagged_fields[0].tag, 7u);
  EXPECT_EQ(resp.unknown_tagged_fields[0].data, hex("abcd"));
  EXPECT_EQ(resp.unknown_tagged_fields[1].tag, 40u);
  EXPECT_EQ(encode(resp, 3), body);

  // Unknown tags go after the known ones below them, keeping tags ascending.
  msg::ApiVersionsResponse m;
  m.zk_migration_ready = true;  // tag 3
  m.unknown_tagged_fields.push_back({5, hex("ff")});
  EXPECT_EQ(encode(m, 3), hex("0000 01 00000000 02 03 01 01 05 01 ff"));
  // Tagged fields exist only in flexible versions: v2 drops them.
  EXPECT_EQ(encode(m, 2), hex("0000 00000000 00000000"));
}

TEST(ApiTable, KnownApis) {
  const ApiInfo* produce = find_api(0);
  ASSERT_NE(produce, nullptr);
  EXPECT_STREQ(produce->name, "Produce");
  EXPECT_EQ(produce->min_version, 0);
  EXPECT_EQ(produce->max_version, msg::ProduceRequest::highest_supported_version);
  EXPECT_EQ(produce->first_flexible_version, 9);
  const ApiInfo* sasl = find_api(static_cast<std::int16_t>(ApiKey::sasl_handshake));
  ASSERT_NE(sasl, nullptr);
  EXPECT_EQ(sasl->first_flexible_version, -1);
  EXPECT_EQ(msg::MetadataRequest::api_key, 3);
  EXPECT_EQ(msg::MetadataResponse::first_flexible_version, 9);
  int count = 0;
  std::int16_t last = -1;
  for (const auto& a : all_apis()) {
    EXPECT_GT(a.api_key, last);
    last = a.api_key;
    ++count;
  }
  int listed = 0;
#define COUNT_API(key, Name, Req, Resp)                           \
  ++listed;                                                       \
  static_assert(msg::Req::api_key == key && msg::Resp::api_key == key);
  BULWARK_WIRE_FOR_EACH_API(COUNT_API)
#undef COUNT_API
  EXPECT_EQ(count, listed);
  EXPECT_GE(count, 70);
}

}  // namespace
}  // namespace bulwark::wire
