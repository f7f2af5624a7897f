#include "raft/memory_log.h"

#include <algorithm>

#include "raft/invariant.h"

namespace bulwark::raft {

int32_t MemoryLog::last_epoch() const {
  if (!entries_.empty()) return entries_.back().epoch;
  return snapshot_.valid() ? snapshot_.epoch : 0;
}

int32_t MemoryLog::epoch_at(int64_t offset) const {
  if (offset == start_offset() - 1) return snapshot_.epoch;
  return at(offset).epoch;
}

const LogEntry& MemoryLog::at(int64_t offset) const {
  RAFT_INVARIANT(offset >= start_offset() && offset < end_offset(), "log read inside [start, end)");
  return entries_[static_cast<size_t>(offset - start_offset())];
}

std::vector<LogEntry> MemoryLog::read(int64_t from, int64_t max_entries, int64_t max_bytes) const {
  std::vector<LogEntry> out;
  int64_t bytes = 0;
  for (int64_t offset = from; offset < end_offset() && static_cast<int64_t>(out.size()) < max_entries; ++offset) {
    const LogEntry& entry = at(offset);
    bytes += static_cast<int64_t>(entry.payload.size());
    // Always return at least one entry so a large one cannot stall a follower.
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(entry);
  }
  return out;
}

void MemoryLog::append(LogEntry entry) {
  RAFT_INVARIANT(entry.offset == end_offset(), "log offsets are contiguous");
  RAFT_INVARIANT(entry.epoch >= last_epoch(), "log epochs never decrease");
  if (epoch_starts_.empty() || epoch_starts_.back().first < entry.epoch) epoch_starts_.emplace_back(entry.epoch, entry.offset);
  entries_.push_back(std::move(entry));
}

void MemoryLog::truncate_to(int64_t end) {
  RAFT_INVARIANT(end >= start_offset(), "log truncation stays above the snapshot");
  while (end_offset() > end) entries_.pop_back();
  while (!epoch_starts_.empty() && epoch_starts_.back().second >= end) epoch_starts_.pop_back();
}

void MemoryLog::drop_prefix(const SnapshotId& snapshot) {
  RAFT_INVARIANT(snapshot.end_offset > start_offset() && snapshot.end_offset <= end_offset(), "snapshot inside the log");
  RAFT_INVARIANT(at(snapshot.end_offset - 1).epoch == snapshot.epoch, "snapshot epoch matches its last entry");
  const int64_t dropped = snapshot.end_offset - start_offset();
  entries_.erase(entries_.begin(), entries_.begin() + dropped);
  snapshot_ = snapshot;
  // Keep the epoch covering the snapshot's last entry; older epochs are inside the snapshot.
  while (epoch_starts_.size() > 1 && epoch_starts_[1].second <= snapshot.end_offset - 1)
    epoch_starts_.erase(epoch_starts_.begin());
}

void MemoryLog::reset_to_snapshot(const SnapshotId& snapshot) {
  RAFT_INVARIANT(snapshot.valid(), "installed snapshot is valid");
  entries_.clear();
  snapshot_ = snapshot;
  // The snapshot's last entry (end_offset - 1) is known to carry its epoch.
  epoch_starts_.assign(1, {snapshot.epoch, snapshot.end_offset - 1});
}

EpochLookup MemoryLog::end_offset_for_epoch(int32_t epoch) const {
  auto after = std::upper_bound(epoch_starts_.begin(), epoch_starts_.end(), epoch,
                                [](int32_t e, const std::pair<int32_t, int64_t>& start) { return e < start.first; });
  if (after == epoch_starts_.begin()) {
    // Nothing known at or below `epoch`. An empty log from offset 0 trivially ends there.
    if (start_offset() == 0) return {true, 0, 0};
    return {};
  }
  int64_t end = after == epoch_starts_.end() ? end_offset() : after->second;
  return {true, std::prev(after)->first, end};
}

}  // namespace bulwark::raft
