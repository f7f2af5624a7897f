// One log segment: the .log file of raw batches plus its offset and time indexes, kept in memory and
// mirrored to .index/.timeindex. Private to storage/; PartitionLog holds the lock while using it.
//
// Descriptors: the active segment keeps its three files open. A sealed segment keeps none: its log file
// is opened on demand through the shared FileCache (LRU with a cap) and its index files only while
// recovery rewrites them, so the number of descriptors does not grow with the number of segments.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "storage/file.h"
#include "wire/record_batch.h"

namespace bulwark::storage {

// Open log files of sealed segments, least recently used closed first. A file handed out stays open
// while its user holds it, even when evicted meanwhile.
class FileCache {
 public:
  explicit FileCache(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}
  Result<std::shared_ptr<File>> get(Env* env, const std::filesystem::path& path);
  void forget(const std::filesystem::path& path);
  std::size_t open_count() const;
  std::size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<File>>;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_path_;
};

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
  // New empty active segment (existing files with that name are truncated).
  static Result<std::shared_ptr<Segment>> create(Env* env, std::shared_ptr<FileCache> cache,
                                                 const std::filesystem::path& dir, std::int64_t base_offset);
  // Existing segment, not active; call recover() before use.
  static Result<std::shared_ptr<Segment>> open(Env* env, std::shared_ptr<FileCache> cache,
                                               const std::filesystem::path& dir, std::int64_t base_offset);

  struct Recovery {
    std::uint64_t truncated_bytes = 0;    // removed from the tail (a torn write in the active segment)
    std::uint64_t quarantined_bytes = 0;  // damaged bytes moved aside into quarantine_file
    std::filesystem::path quarantine_file;
    std::string problem;                  // what was wrong at the first damaged byte
  };
  // Scans the batches from the start (CRC-32C too when verify_crc) and rebuilds the indexes, rewriting
  // the index files when they differ from what is on disk. At a torn or bad batch (or one whose offsets
  // go below min_offset or backwards) it looks for the next intact batch (CRC-checked): when there is
  // one, or the segment is sealed, the damaged bytes are moved into <base>.log.damaged-<position> and
  // the intact batches after them kept; a damaged tail of the active segment is truncated (a torn write).
  // sealed: an older segment, whose time index ends with its largest timestamp (as seal() leaves it).
  Result<Recovery> recover(bool verify_crc, bool sealed, std::int64_t min_offset, std::int32_t index_interval_bytes,
                           const std::function<void(const wire::BatchHeader&)>& on_batch);

  // Bookkeeping for a batch just written at position (indexes in memory; write_index_tail persists).
  void track(const wire::BatchHeader& header, std::uint64_t position, std::int32_t index_interval_bytes);
  Status write_index_tail();
  // Makes this the active segment: its three files stay open until seal().
  Status activate();
  bool active() const { return active_log_ != nullptr; }
  // On roll: the final time index entry, fdatasync of the log (the error is the caller's to act on) and,
  // best effort, of the indexes (rebuilt from the log at recovery); then the files close.
  Status seal();
  Status sync_log();
  // The log file: the active one, or a cached descriptor of a sealed one.
  Result<std::shared_ptr<File>> log_file() const;

  Result<wire::BatchHeader> read_header(const File& file, std::uint64_t position) const;
  // The batch whose offsets contain offset (or the first after it), using the offset index to seek.
  Result<std::optional<LocatedBatch>> find_batch(std::int64_t offset) const;
  // The first batch whose max timestamp >= timestamp, using the time index to seek.
  Result<std::optional<LocatedBatch>> find_batch_by_time(std::int64_t timestamp) const;
  // Walks the batch headers from position until match returns true.
  Result<std::optional<LocatedBatch>> scan_from(std::uint64_t position,
                                                const std::function<bool(const wire::BatchHeader&)>& match) const;
  // Drops everything from position on and rebuilds the indexes (active segment only).
  Status truncate_at(std::uint64_t position, std::int32_t index_interval_bytes);
  Status remove_files();  // unlinks; open descriptors close with their last user
  void release_cached_file();  // drops this segment's log file from the cache (closed partition)

  std::int64_t base_offset = 0;
  std::filesystem::path log_path, index_path, time_index_path;
  std::uint64_t size = 0;           // committed bytes
  std::int64_t next_offset = 0;     // one past the last offset (base_offset when empty)
  std::int64_t max_timestamp = -1;  // largest batch maxTimestamp
  std::int64_t offset_of_max_timestamp = -1;
  std::int64_t rolling_timestamp = -1;  // first batch's maxTimestamp, for log.roll.ms
  std::int64_t created_ms = 0;
  std::int64_t last_modified_ms = 0;  // mtime at open, for retention of segments without timestamps
  std::vector<IndexEntry> index;
  std::vector<TimeIndexEntry> time_index;
  // Every batch was CRC-checked by this process (written here from checked input, or checked by
  // recovery). Reads CRC-check the batches of the other segments before serving them.
  bool crc_verified = false;

 private:
  Segment(Env* env, std::shared_ptr<FileCache> cache, const std::filesystem::path& dir, std::int64_t base);
  Status open_index_files();
  void close_index_files();
  Status rewrite_index_files();
  Result<Recovery> repair(std::uint64_t damaged_at, const std::string& problem, bool sealed, std::int64_t expected);
  std::uint64_t seek_position(std::int64_t offset) const;
  void add_final_time_entry();
  void reset_bookkeeping();

  Env* env_;
  std::shared_ptr<FileCache> cache_;
  std::shared_ptr<File> active_log_;  // set while active
  std::uint64_t bytes_since_index_ = 0;
  std::size_t persisted_index_ = 0;
  std::size_t persisted_time_index_ = 0;
  File index_file_, time_index_file_;  // open while active (and during recovery)
};

}  // namespace bulwark::storage
