// GroupStore on a partition log (the broker's __consumer_offsets-0): each append is one record batch,
// load() reads every batch from the log start.
#pragma once

#include <memory>

#include "groups/coordinator.h"
#include "storage/log.h"

namespace bulwark::groups {

class PartitionLogStore : public GroupStore {
 public:
  explicit PartitionLogStore(std::shared_ptr<storage::PartitionLog> log, Clock clock)
      : log_(std::move(log)), clock_(std::move(clock)) {}
  Status append(const std::vector<StoredRecord>& records) override;
  Result<std::vector<StoredRecord>> load() override;

 private:
  std::shared_ptr<storage::PartitionLog> log_;
  Clock clock_;
};

}  // namespace bulwark::groups
