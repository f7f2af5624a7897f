// GroupStore on a partition log: each append is one record batch, load() reads every batch from the
// log start. PartitionLogStore appends to a local log (tests, tools); the broker's store appends
// through the replicated partition (broker/group_partitions.h) with the same two helpers.
#pragma once

#include <memory>

#include "groups/coordinator.h"
#include "storage/log.h"

namespace bulwark::groups {

// One record batch holding `records` (keys and values as Kafka's __consumer_offsets has them). When the
// first record is transactional the batch is a transactional one of its producer (attributes 0x10, no
// sequence: the coordinator writes it, as Kafka's does); every record of one append shares its kind.
Result<Bytes> encode_group_batch(const std::vector<StoredRecord>& records, std::int64_t now_ms);
// Every group record in `log`, from its start to its end, transactional ones and markers tagged.
Result<std::vector<StoredRecord>> read_group_records(storage::PartitionLog& log);

class PartitionLogStore : public GroupStore {
 public:
  explicit PartitionLogStore(std::shared_ptr<storage::PartitionLog> log, Clock clock)
      : log_(std::move(log)), clock_(std::move(clock)) {}
  Status append(const std::vector<StoredRecord>& records) override;
  Result<std::vector<StoredRecord>> load() override { return read_group_records(*log_); }

 private:
  std::shared_ptr<storage::PartitionLog> log_;
  Clock clock_;
};

}  // namespace bulwark::groups
