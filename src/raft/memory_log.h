// The unsnapshotted suffix of the metadata log, held in memory (the metadata log is small), plus the
// epoch cache (epoch -> first offset) used to answer "where does epoch E end" for divergence checks.
// The prefix below start_offset() lives in the latest snapshot.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "raft/messages.h"

namespace bulwark::raft {

struct EpochLookup {
  bool found = false;   // false: no epoch <= the one asked for is known (it is inside the snapshot)
  int32_t epoch = kNoEpoch;
  int64_t end_offset = kNoOffset;
};

class MemoryLog {
 public:
  int64_t start_offset() const { return snapshot_.valid() ? snapshot_.end_offset : 0; }
  int64_t end_offset() const { return start_offset() + static_cast<int64_t>(entries_.size()); }
  const SnapshotId& snapshot() const { return snapshot_; }
  // Epoch of the last entry, else of the snapshot, else 0.
  int32_t last_epoch() const;
  // Epoch of the entry at `offset`; start_offset() - 1 answers the snapshot's epoch. Requires
  // offset in [start_offset() - 1, end_offset()).
  int32_t epoch_at(int64_t offset) const;
  const LogEntry& at(int64_t offset) const;
  std::vector<LogEntry> read(int64_t from, int64_t max_entries, int64_t max_bytes) const;

  void append(LogEntry entry);
  void truncate_to(int64_t end);
  // A snapshot ending inside (or at the end of) the log: drop everything before it.
  void drop_prefix(const SnapshotId& snapshot);
  // A snapshot installed from the leader: the whole log is replaced by it.
  void reset_to_snapshot(const SnapshotId& snapshot);

  // The largest epoch <= `epoch` in this log and the offset where it ends (KIP-595's
  // OffsetForLeaderEpoch semantics).
  EpochLookup end_offset_for_epoch(int32_t epoch) const;
  const std::vector<std::pair<int32_t, int64_t>>& epoch_starts() const { return epoch_starts_; }

 private:
  SnapshotId snapshot_;
  std::deque<LogEntry> entries_;
  std::vector<std::pair<int32_t, int64_t>> epoch_starts_;  // ascending epochs and offsets
};

}  // namespace bulwark::raft
