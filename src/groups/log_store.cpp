#include "groups/log_store.h"

#include "wire/record_batch.h"

namespace bulwark::groups {

Result<Bytes> encode_group_batch(const std::vector<StoredRecord>& records, std::int64_t now_ms) {
  std::vector<wire::Record> batch_records;
  batch_records.reserve(records.size());
  for (const auto& r : records) {
    wire::Record record;
    record.offset = static_cast<std::int64_t>(batch_records.size());  // relative; the log assigns the base
    record.timestamp = now_ms;
    record.key = r.key;
    record.value = r.value;
    batch_records.push_back(std::move(record));
  }
  wire::BatchOptions options;
  if (!records.empty() && records.front().kind == RecordKind::transactional) {
    options.transactional = true;
    options.producer_id = records.front().producer_id;
    options.producer_epoch = records.front().producer_epoch;
  }
  return wire::encode_batch(batch_records, options);
}

namespace {

// A control batch's one record: EndTransactionMarker key (i16 version, i16 type). nullopt when it is not a
// transaction marker (Kafka has other control records, which groups ignore).
std::optional<StoredRecord> transaction_marker(const wire::BatchHeader& header, const wire::Record& record) {
  if (!record.key) return std::nullopt;
  ByteReader r(*record.key);
  std::int16_t version = 0, type = 0;
  if (!r.read_i16(version) || !r.read_i16(type) || version < 0 || (type != 0 && type != 1)) return std::nullopt;
  StoredRecord marker{*record.key, std::nullopt};
  marker.kind = type == 1 ? RecordKind::commit_marker : RecordKind::abort_marker;
  marker.producer_id = header.producer_id;
  marker.producer_epoch = header.producer_epoch;
  return marker;
}

}  // namespace


Status PartitionLogStore::append(const std::vector<StoredRecord>& records) {
  if (records.empty()) return Status::success();
  const auto now = clock_();
  auto batch = encode_group_batch(records, now);
  if (!batch.ok()) return batch.error();
  storage::AppendOptions options;
  options.now_ms = now;
  options.max_message_bytes = INT32_MAX;  // group metadata with many members may be large
  auto appended = log_->append(*batch, options);
  if (!appended.ok()) return static_cast<Error>(appended.error());
  return Status::success();
}

Result<std::vector<StoredRecord>> read_group_records(storage::PartitionLog& log) {
  std::vector<StoredRecord> out;
  auto offset = log.log_start_offset();
  const auto end = log.log_end_offset();
  while (offset < end) {
    auto data = log.read(offset, 1 << 20, end);
    if (!data.ok()) return static_cast<Error>(data.error());
    if (data->bytes.empty()) break;
    auto split = wire::split_batches(data->bytes);
    if (!split.ok()) return split.error();
    if (split->batches.empty()) break;
    for (auto batch : split->batches) {
      auto header = wire::parse_batch_header(batch);
      if (!header.ok()) return header.error();
      auto records = wire::decode_records(batch);
      if (!records.ok())
        return make_error(ErrorKind::corrupt, log.dir().string() + ": batch at offset " +
                                                  std::to_string(header->base_offset) + ": " + records.error().message);
      for (auto& record : *records) {
        if (header->is_control()) {
          if (auto marker = transaction_marker(*header, record)) out.push_back(std::move(*marker));
          continue;
        }
        if (!record.key) continue;  // not ours; a group record always has a key
        StoredRecord stored{std::move(*record.key), std::move(record.value)};
        if (header->is_transactional()) {
          stored.kind = RecordKind::transactional;
          stored.producer_id = header->producer_id;
          stored.producer_epoch = header->producer_epoch;
        }
        out.push_back(std::move(stored));
      }
      offset = header->last_offset() + 1;
    }
  }
  return out;
}

}  // namespace bulwark::groups
