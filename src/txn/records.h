// The records of __transaction_state in Kafka's layout, so Kafka's tooling reads them:
//   key   TransactionLogKey v0: i16 version=0, string transactional_id
//   value TransactionLogValue v0: i16 version=0, i64 producer_id, i16 producer_epoch,
//         i32 transaction_timeout_ms, i8 transaction_status, nullable [] {string topic, []i32
//         partition_ids}, i64 transaction_last_update_timestamp_ms, i64 transaction_start_timestamp_ms
//   v1 is the same fields in the flexible encoding (compact strings and arrays, tagged fields, which
//   are skipped). A null value (tombstone) is a removed transactional id. Written as v0, as Kafka 3.7.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "txn/metadata.h"

namespace bulwark::txn {

Bytes encode_log_key(const std::string& transactional_id);
Result<std::string> decode_log_key(ByteView key);

// The value of `m` as the log holds it; last_producer_id/last_producer_epoch are memory only.
Bytes encode_log_value(const TxnMetadata& m);
// Reads v0 or v1 into a TxnMetadata (transactional_id left empty: it is the key's).
Result<TxnMetadata> decode_log_value(ByteView value);

}  // namespace bulwark::txn

namespace bulwark::txn {

// One record of the log as the coordinator reads it back.
struct LogRecord {
  Bytes key;
  std::optional<Bytes> value;  // nullopt = tombstone
};

// The transactions a partition's records leave, in log order: the last value per id wins, a
// tombstone (or Dead) removes the id. A record that does not decode is an error: the partition's log
// is then not this coordinator's to serve from.
Result<std::map<std::string, Transaction>> replay_log(const std::vector<LogRecord>& records);

}  // namespace bulwark::txn
