// __transaction_state records (txn/records.h): Kafka's TransactionLogKey v0 and TransactionLogValue
// v0/v1 byte for byte, round trips, malformed input, and replaying a partition's log.
#include <gtest/gtest.h>

#include "txn/records.h"

namespace bulwark::txn {
namespace {

Bytes hex(const std::string& h) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

TxnMetadata sample() {
  TxnMetadata m;
  m.producer_id = 0x0102030405060708;
  m.producer_epoch = 3;
  m.timeout_ms = 60000;
  m.state = TxnState::ongoing;
  m.partitions = {{"ab", 1}, {"ab", 0}, {"c", 7}};
  m.last_update_ms = 1000;
  m.txn_start_ms = 900;
  return m;
}

TEST(TxnRecords, KeyIsKafkasLayout) {
  EXPECT_EQ(encode_log_key("tx"), hex("0000" "0002" "7478"));
  Result<std::string> id = decode_log_key(ByteView(hex("000000027478")));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "tx");
}

TEST(TxnRecords, KeyErrors) {
  EXPECT_FALSE(decode_log_key(ByteView(hex("00"))).ok());
  EXPECT_FALSE(decode_log_key(ByteView(hex("0001" "0002" "7478"))).ok());  // offsets-style version 1
  EXPECT_FALSE(decode_log_key(ByteView(hex("0000" "0005" "7478"))).ok());  // truncated
}

TEST(TxnRecords, ValueV0IsKafkasLayout) {
  Bytes expected = hex(
      "0000"                // version 0
      "0102030405060708"    // producer id
      "0003"                // epoch
      "0000ea60"            // timeout 60000
      "01"                  // Ongoing
      "00000002"            // two topics
      "0002" "6162" "00000002" "00000000" "00000001"  // ab: 0, 1
      "0001" "63" "00000001" "00000007"              // c: 7
      "00000000000003e8"    // last update 1000
      "0000000000000384");  // start 900
  EXPECT_EQ(encode_log_value(sample()), expected);
}

TEST(TxnRecords, ValueRoundTrip) {
  for (TxnState s : {TxnState::empty, TxnState::ongoing, TxnState::prepare_commit, TxnState::prepare_abort,
                     TxnState::complete_commit, TxnState::complete_abort, TxnState::dead}) {
    TxnMetadata m = sample();
    m.state = s;
    if (s != TxnState::ongoing && s != TxnState::prepare_commit && s != TxnState::prepare_abort) m.partitions.clear();
    Result<TxnMetadata> back = decode_log_value(ByteView(encode_log_value(m)));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->producer_id, m.producer_id);
    EXPECT_EQ(back->producer_epoch, m.producer_epoch);
    EXPECT_EQ(back->timeout_ms, m.timeout_ms);
    EXPECT_EQ(back->state, s);
    EXPECT_EQ(back->partitions, m.partitions);
    EXPECT_EQ(back->last_update_ms, m.last_update_ms);
    EXPECT_EQ(back->txn_start_ms, m.txn_start_ms);
  }
}

TEST(TxnRecords, ValueV1FlexibleWithTaggedFieldsDecodes) {
  Bytes v1 = hex(
      "0001"
      "0000000000000009"  // producer id 9
      "0000"              // epoch 0
      "000003e8"          // timeout 1000
      "02"                // PrepareCommit
      "02"                // compact array: one topic
      "02" "61"           // compact string "a"
      "03" "00000004" "00000005"  // compact array [4, 5]
      "00"                // topic's tagged fields
      "0000000000000064"  // last update 100
      "0000000000000032"  // start 50
      "02"                // two tagged fields
      "00" "08" "0000000000000008"  // tag 0 PreviousProducerId = 8
      "02" "02" "0002");  // tag 2 ClientTransactionVersion = 2
  Result<TxnMetadata> m = decode_log_value(ByteView(v1));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->producer_id, 9);
  EXPECT_EQ(m->state, TxnState::prepare_commit);
  EXPECT_EQ(m->partitions, (std::set<TopicPartition>{{"a", 4}, {"a", 5}}));
  EXPECT_EQ(m->last_update_ms, 100);
  EXPECT_EQ(m->txn_start_ms, 50);
}

TEST(TxnRecords, NullPartitionsDecodeAsNone) {
  Bytes v0 = hex("0000" "0000000000000001" "0001" "00000064" "00" "ffffffff" "0000000000000001" "ffffffffffffffff");
  Result<TxnMetadata> m = decode_log_value(ByteView(v0));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->partitions.empty());
  EXPECT_EQ(m->txn_start_ms, -1);
}

TEST(TxnRecords, MalformedValuesAreErrors) {
  Bytes good = encode_log_value(sample());
  for (std::size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(decode_log_value(ByteView(cut)).ok()) << "prefix of " << n << " bytes";
  }
  Bytes bad_status = good;
  bad_status[2 + 8 + 2 + 4] = 9;
  EXPECT_FALSE(decode_log_value(ByteView(bad_status)).ok());
  Bytes bad_version = good;
  bad_version[1] = 2;
  EXPECT_FALSE(decode_log_value(ByteView(bad_version)).ok());
  // A huge topic count is refused, not allocated.
  Bytes huge = hex("0000" "0000000000000001" "0001" "00000064" "01" "7fffffff");
  EXPECT_FALSE(decode_log_value(ByteView(huge)).ok());
}

TEST(TxnRecords, ReplayKeepsLastValueAndDropsTombstonesAndDead) {
  TxnMetadata a = sample();
  TxnMetadata a2 = sample();
  a2.state = TxnState::prepare_abort;
  a2.producer_epoch = 4;
  TxnMetadata b = sample();
  b.state = TxnState::complete_commit;
  b.partitions.clear();
  TxnMetadata c = b;
  c.state = TxnState::dead;
  std::vector<LogRecord> log = {
      {encode_log_key("a"), encode_log_value(a)},
      {encode_log_key("b"), encode_log_value(b)},
      {encode_log_key("gone"), encode_log_value(b)},
      {encode_log_key("a"), encode_log_value(a2)},
      {encode_log_key("gone"), std::nullopt},
      {encode_log_key("b2"), encode_log_value(b)},
      {encode_log_key("b2"), encode_log_value(c)},
  };
  auto replayed = replay_log(log);
  ASSERT_TRUE(replayed.ok()) << replayed.error().message;
  ASSERT_EQ(replayed->size(), 2u);
  EXPECT_EQ(replayed->at("a").current.state, TxnState::prepare_abort);
  EXPECT_EQ(replayed->at("a").current.producer_epoch, 4);
  EXPECT_EQ(replayed->at("a").current.transactional_id, "a");
  EXPECT_FALSE(replayed->at("a").pending);
  EXPECT_EQ(replayed->at("b").current.state, TxnState::complete_commit);
}

TEST(TxnRecords, ReplayRefusesCorruptRecords) {
  std::vector<LogRecord> log = {{encode_log_key("a"), hex("0000ff")}};
  EXPECT_FALSE(replay_log(log).ok());
}

}  // namespace
}  // namespace bulwark::txn
