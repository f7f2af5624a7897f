// One log segment: the .log file of raw batches plus its offset and time indexes, kept in memory and
// mirrored to .index/.timeindex. Private to storage/; PartitionLog holds the lock while using it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/file.h"
#include "wire/record_batch.h"

namespace bulwark::storage {

struct IndexEntry {
  std::uint32_t relative_offset = 0;  // of a batch's last offset
  std::uint32_t position = 0;         // where that batch starts in the .log file
};
struct TimeIndexEntry {
  std::int64_t timestamp = 0;          // largest timestamp up to ...
  std::uint32_t relative_offset = 0;   // ... the batch holding it
};

struct LocatedBatch {
  wire::BatchHeader header;
  std::uint64_t position = 0;
};

std::string segment_file_name(std::int64_t base_offset, const char* suffix);
// Reads the 61 header bytes without requiring the rest of the batch (the wire parser wants the whole
// batch). False when the magic is not 2 or batchLength cannot hold the header.
bool parse_header_prefix(const std::uint8_t* data, wire::BatchHeader& out);

class Segment {
 public:
  // New empty segment (existing files with that name are truncated).
  static Result<std::shared_ptr<Segment>> create(const std::filesystem::path& dir, std::int64_t base_offset);
  // Existing segment; call recover() before use.
  static Result<std::shared_ptr<Segment>> open(const std::filesystem::path& dir, std::int64_t base_offset);

  struct Recovery {
    std::uint64_t truncated_bytes = 0;  // removed from the tail
    std::string problem;                // what was wrong at the truncation point
  };
  // Scans the batches from the start (CRC-32C too when verify_crc), stops at the first torn or bad
  // batch or one whose offsets go below min_offset or backwards, truncates the file there, rebuilds the
  // indexes and rewrites the index files when they differ from what is on disk. sealed: an older
  // segment, whose time index ends with its largest timestamp (as seal() leaves it).
  Result<Recovery> recover(bool verify_crc, bool sealed, std::int64_t min_offset, std::int32_t index_interval_bytes,
                           const std::function<void(const wire::BatchHeader&)>& on_batch);

  // Bookkeeping for a batch just written at position (indexes in memory; write_index_tail persists).
  void track(const wire::BatchHeader& header, std::uint64_t position, std::int32_t index_interval_bytes);
  Status write_index_tail();
  // On roll: the final time index entry, then fdatasync of the log and both indexes.
  Status seal();
  Status sync_log() { return log.datasync(); }

  Result<wire::BatchHeader> read_header(std::uint64_t position) const;
  // The batch whose offsets contain offset (or the first after it), using the offset index to seek.
  Result<std::optional<LocatedBatch>> find_batch(std::int64_t offset) const;
  // The first batch whose max timestamp >= timestamp, using the time index to seek.
  Result<std::optional<LocatedBatch>> find_batch_by_time(std::int64_t timestamp) const;
  // Walks the batch headers from position until match returns true.
  Result<std::optional<LocatedBatch>> scan_from(std::uint64_t position,
                                                const std::function<bool(const wire::BatchHeader&)>& match) const;
  // Drops everything from position on and rebuilds the indexes.
  Status truncate_at(std::uint64_t position, std::int32_t index_interval_bytes);
  Status remove_files();  // unlinks; descriptors close with the last shared_ptr

  std::int64_t base_offset = 0;
  std::filesystem::path log_path, index_path, time_index_path;
  File log;
  std::uint64_t size = 0;           // committed bytes
  std::int64_t next_offset = 0;     // one past the last offset (base_offset when empty)
  std::int64_t max_timestamp = -1;  // largest batch maxTimestamp
  std::int64_t offset_of_max_timestamp = -1;
  std::int64_t rolling_timestamp = -1;  // first batch's maxTimestamp, for log.roll.ms
  std::int64_t created_ms = 0;
  std::int64_t last_modified_ms = 0;  // mtime at open, for retention of segments without timestamps
  std::vector<IndexEntry> index;
  std::vector<TimeIndexEntry> time_index;

 private:
  Status rewrite_index_files();
  std::uint64_t seek_position(std::int64_t offset) const;
  void add_final_time_entry();

  std::uint64_t bytes_since_index_ = 0;
  std::size_t persisted_index_ = 0;
  std::size_t persisted_time_index_ = 0;
  File index_file_, time_index_file_;
};

}  // namespace bulwark::storage
