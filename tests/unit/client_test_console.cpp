// The pure pieces of `bulwark produce` / `bulwark consume`: Kafka's LineMessageReader and
// DefaultMessageFormatter rules, Utils.murmur2 and the default partitioner, the consumer protocol's
// bytes and the RangeAssignor.
#include <gtest/gtest.h>

#include "client/console.h"

namespace bulwark::client {
namespace {

std::string text(const std::optional<Bytes>& b) { return b ? std::string(as_chars(*b)) : "<null>"; }
Bytes bytes(std::string_view s) { return Bytes(as_bytes(s).begin(), as_bytes(s).end()); }

LineReaderOptions reader(std::map<std::string, std::string> properties) {
  auto o = line_reader_options(properties);
  EXPECT_TRUE(o.ok()) << o.error().message;
  return o.ok() ? *o : LineReaderOptions{};
}

TEST(LineReader, ValueOnlyByDefault) {
  auto r = parse_line("hello\tworld:1", {}, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->key);
  EXPECT_EQ(text(r->value), "hello\tworld:1");
  EXPECT_TRUE(r->headers.empty());
}

TEST(LineReader, KeyWithCustomSeparatorSplitsAtTheFirstOne) {
  auto o = reader({{"parse.key", "true"}, {"key.separator", ":"}});
  auto r = parse_line("user-1:a:b", o, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(text(r->key), "user-1");
  EXPECT_EQ(text(r->value), "a:b");
  auto empty_key = parse_line(":v", o, 2);
  ASSERT_TRUE(empty_key.ok());
  EXPECT_EQ(text(empty_key->key), "");
}

TEST(LineReader, MissingKeySeparatorIsAnErrorUnlessIgnored) {
  auto r = parse_line("no separator", reader({{"parse.key", "true"}}), 7);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "No key separator found on line number 7: 'no separator'");
  auto ignored = parse_line("no separator", reader({{"parse.key", "true"}, {"ignore.error", "true"}}), 7);
  ASSERT_TRUE(ignored.ok());
  EXPECT_FALSE(ignored->key);
  EXPECT_EQ(text(ignored->value), "no separator");
}

TEST(LineReader, HeadersKeyAndValueInKafka3Form) {
  auto o = reader({{"parse.key", "true"}, {"parse.headers", "true"}});
  auto r = parse_line("h1:v1,h2:v2\tkey\tvalue with\ttab", o, 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->headers.size(), 2u);
  EXPECT_EQ(r->headers[0].key, "h1");
  EXPECT_EQ(text(r->headers[0].value), "v1");
  EXPECT_EQ(r->headers[1].key, "h2");
  EXPECT_EQ(text(r->headers[1].value), "v2");
  EXPECT_EQ(text(r->key), "key");
  EXPECT_EQ(text(r->value), "value with\ttab");
}

TEST(LineReader, CustomHeaderSeparatorsAndHeaderValueWithKeySeparator) {
  auto o = reader({{"parse.headers", "true"}, {"headers.delimiter", "|"}, {"headers.separator", ";"},
                   {"headers.key.separator", "="}});
  auto r = parse_line("a=1=2;b=|payload", o, 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->headers.size(), 2u);
  EXPECT_EQ(text(r->headers[0].value), "1=2");
  EXPECT_EQ(text(r->headers[1].value), "");
  EXPECT_EQ(text(r->value), "payload");
}

TEST(LineReader, HeaderWithoutKeySeparator) {
  auto o = reader({{"parse.headers", "true"}});
  auto r = parse_line("broken\tv", o, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "No header key separator found in pair 'broken' on line number 3");
  auto ignored = parse_line("broken\tv", reader({{"parse.headers", "true"}, {"ignore.error", "true"}}), 3);
  ASSERT_TRUE(ignored.ok());
  ASSERT_EQ(ignored->headers.size(), 1u);
  EXPECT_FALSE(ignored->headers[0].value);
}

TEST(LineReader, NullMarker) {
  auto o = reader({{"parse.key", "true"}, {"parse.headers", "true"}, {"null.marker", "NULL"}, {"key.separator", ":"}});
  auto r = parse_line("h:NULL\tNULL:NULL", o, 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->key);
  EXPECT_FALSE(r->value);
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_FALSE(r->headers[0].value);
  EXPECT_FALSE(parse_line("NULL:x\tk:v", o, 1).ok());  // a header key may not be null
}

TEST(LineReader, BadProperties) {
  EXPECT_FALSE(line_reader_options({{"parse.key", "yes"}}).ok());
  EXPECT_FALSE(line_reader_options({{"print.key", "true"}}).ok());
  // The key separator and the headers delimiter may be equal (both tab by default); header separators not.
  EXPECT_TRUE(line_reader_options({{"parse.key", "true"}, {"parse.headers", "true"}}).ok());
  EXPECT_FALSE(line_reader_options({{"parse.headers", "true"}, {"headers.separator", ":"}}).ok());
  EXPECT_FALSE(line_reader_options({{"headers.delimiter", ","}}).ok());
}

TEST(KeyValues, FlagPairs) {
  auto kv = parse_key_values({"a=1", "b=x=y", "c="}, "--property");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ((*kv)["b"], "x=y");
  EXPECT_EQ((*kv)["c"], "");
  EXPECT_FALSE(parse_key_values({"novalue"}, "--property").ok());
}

// Kafka's UtilsTest.testMurmur2 vectors.
TEST(Murmur2, KafkaTestVectors) {
  EXPECT_EQ(murmur2(as_bytes("21")), -973932308);
  EXPECT_EQ(murmur2(as_bytes("foobar")), -790332482);
  EXPECT_EQ(murmur2(as_bytes("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(murmur2(as_bytes("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(murmur2(as_bytes("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")), -58897971);
  EXPECT_EQ(murmur2(as_bytes("abc")), 479470107);
}

TEST(Murmur2, PartitionClearsTheSignBit) {
  // toPositive(-1486304829) = 661178819; % 6 = 5 (Math.abs would give 1486304829 % 6 = 3).
  EXPECT_EQ(partition_for_key(as_bytes("a-little-bit-longer-string"), 6), 5);
  EXPECT_EQ(partition_for_key(as_bytes("abc"), 6), 3);
  EXPECT_EQ(partition_for_key(as_bytes("21"), 1), 0);
}

TEST(ProducerProperties, ParsedAndUnknownNoted) {
  ProducerOptions o;
  std::vector<std::string> notes;
  ASSERT_TRUE(apply_producer_properties({{"acks", "1"}, {"compression.type", "zstd"}, {"linger.ms", "5"},
                                         {"batch.size", "100"}, {"enable.idempotence", "true"}},
                                        o, notes)
                  .ok());
  EXPECT_EQ(o.acks, 1);
  EXPECT_EQ(o.compression, wire::Compression::zstd);
  EXPECT_EQ(o.linger, std::chrono::milliseconds(5));
  EXPECT_EQ(o.batch_bytes, 100u);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("enable.idempotence"), std::string::npos);
  EXPECT_FALSE(apply_producer_properties({{"acks", "2"}}, o, notes).ok());
  EXPECT_FALSE(apply_producer_properties({{"linger.ms", "-1"}}, o, notes).ok());
  EXPECT_EQ(*parse_acks("all"), -1);
  EXPECT_FALSE(parse_compression("brotli").ok());
}

wire::Record record(std::optional<std::string> key, std::optional<std::string> value,
                    std::vector<std::pair<std::string, std::optional<std::string>>> headers = {}) {
  wire::Record r;
  r.offset = 42;
  r.timestamp = 1700000000123;
  if (key) r.key = bytes(*key);
  if (value) r.value = bytes(*value);
  for (auto& h : headers) r.headers.push_back({h.first, h.second ? std::optional<Bytes>(bytes(*h.second)) : std::nullopt});
  return r;
}

FormatOptions format(std::map<std::string, std::string> properties) {
  auto o = format_options(properties);
  EXPECT_TRUE(o.ok()) << o.error().message;
  return o.ok() ? *o : FormatOptions{};
}

TEST(Formatter, ValueOnlyByDefault) {
  EXPECT_EQ(format_record(record("k", "v"), 0, false, {}), "v\n");
  EXPECT_EQ(format_record(record("k", std::nullopt), 0, false, {}), "null\n");
}

TEST(Formatter, EveryFieldInKafkasOrder) {
  auto o = format({{"print.timestamp", "true"}, {"print.partition", "true"}, {"print.offset", "true"},
                   {"print.headers", "true"}, {"print.key", "true"}});
  EXPECT_EQ(format_record(record("k", "v", {{"h1", "x"}, {"h2", std::nullopt}}), 3, false, o),
            "CreateTime:1700000000123\tPartition:3\tOffset:42\th1:x,h2:null\tk\tv\n");
  EXPECT_EQ(format_record(record(std::nullopt, "v"), 3, true, o),
            "LogAppendTime:1700000000123\tPartition:3\tOffset:42\tNO_HEADERS\tnull\tv\n");
}

TEST(Formatter, SeparatorsAndNoValue) {
  auto o = format({{"print.key", "true"}, {"key.separator", " => "}, {"null.literal", "-"}});
  EXPECT_EQ(format_record(record(std::nullopt, "v"), 0, false, o), "- => v\n");
  auto key_only = format({{"print.key", "true"}, {"print.value", "false"}, {"line.separator", "|"}});
  EXPECT_EQ(format_record(record("k", "v"), 0, false, key_only), "k|");
  EXPECT_FALSE(format_options({{"print.everything", "true"}}).ok());
}

TEST(ConsumerProtocol, SubscriptionRoundTripAndLaterVersions) {
  auto bytes_v0 = encode_subscription({"orders", "payments"});
  // version 0, 2 topics, "orders", "payments", null user data.
  EXPECT_EQ(bytes_v0.size(), 2u + 4 + (2 + 6) + (2 + 8) + 4);
  auto topics = decode_subscription(bytes_v0);
  ASSERT_TRUE(topics.ok());
  EXPECT_EQ(*topics, (std::vector<std::string>{"orders", "payments"}));
  // A v1+ subscription (owned partitions after the user data) reads the same.
  ByteWriter w;
  w.write_i16(1);
  w.write_i32(1);
  w.write_i16(1);
  w.write_bytes(std::string_view("t"));
  w.write_i32(-1);
  w.write_i32(0);
  EXPECT_EQ(*decode_subscription(w.buffer()), std::vector<std::string>{"t"});
  EXPECT_FALSE(decode_subscription(Bytes{0, 0, 0x7f, 0, 0, 0}).ok());
}

TEST(ConsumerProtocol, AssignmentRoundTrip) {
  std::vector<TopicPartitions> a{{"orders", {0, 1, 2}}, {"x", {}}};
  auto decoded = decode_assignment(encode_assignment(a));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, a);
  EXPECT_TRUE(decode_assignment({})->empty());
  auto truncated = encode_assignment(a);
  truncated.resize(10);
  EXPECT_FALSE(decode_assignment(truncated).ok());
}

TEST(RangeAssignor, ConsecutiveRangesFirstMembersTakeTheRest) {
  std::vector<MemberSubscription> members{{"m-c", std::nullopt, {"t"}}, {"m-a", std::nullopt, {"t", "u"}},
                                          {"m-b", std::nullopt, {"t"}}};
  auto out = range_assign(members, {{"t", 7}, {"u", 2}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out["m-a"], (std::vector<TopicPartitions>{{"t", {0, 1, 2}}, {"u", {0, 1}}}));
  EXPECT_EQ(out["m-b"], (std::vector<TopicPartitions>{{"t", {3, 4}}}));
  EXPECT_EQ(out["m-c"], (std::vector<TopicPartitions>{{"t", {5, 6}}}));
}

TEST(RangeAssignor, MoreMembersThanPartitionsAndStaticMembersFirst) {
  std::vector<MemberSubscription> members{{"a", std::nullopt, {"t"}}, {"z", std::string("i-2"), {"t"}},
                                          {"y", std::string("i-1"), {"t"}}};
  auto out = range_assign(members, {{"t", 2}});
  EXPECT_EQ(out["y"], (std::vector<TopicPartitions>{{"t", {0}}}));
  EXPECT_EQ(out["z"], (std::vector<TopicPartitions>{{"t", {1}}}));
  EXPECT_TRUE(out["a"].empty());
  EXPECT_TRUE(range_assign(members, {})["a"].empty());  // unknown topics are not assigned
}

TEST(ConsumerProperties, ParsedAndChecked) {
  ConsumerOptions o;
  std::vector<std::string> notes;
  ASSERT_TRUE(apply_consumer_properties({{"group.id", "g"}, {"auto.offset.reset", "earliest"},
                                         {"session.timeout.ms", "6000"}, {"key.deserializer", "x"}},
                                        o, notes)
                  .ok());
  EXPECT_EQ(o.group, "g");
  EXPECT_EQ(o.auto_offset_reset, "earliest");
  EXPECT_EQ(o.session_timeout, std::chrono::milliseconds(6000));
  EXPECT_EQ(notes.size(), 1u);
  EXPECT_FALSE(apply_consumer_properties({{"auto.offset.reset", "smallest"}}, o, notes).ok());
}

}  // namespace
}  // namespace bulwark::client
