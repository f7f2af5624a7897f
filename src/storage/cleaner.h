// Log compaction (Kafka's LogCleaner): for logs with cleanup.policy=compact, the sealed segments below
// the high watermark are rewritten keeping only the last record of each key; tombstones (null values)
// go delete.retention.ms after the segment holding them was last written, once they have been through
// one cleaning. Offsets never change: rewritten batches keep their base offset and lastOffsetDelta, so
// a compacted log has gaps (reads already continue at the next batch). See docs/storage.md.
//
// Crash safety: a group of segments is written to <base>.log.cleaned, fdatasync'ed, renamed to
// <base>.log.swap (the commit point), the old segments are deleted and the swap renamed to <base>.log.
// Opening a log deletes *.cleaned and completes every *.swap (recover_cleaner_files).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/log.h"

namespace bulwark::storage {

// log.cleaner.io.max.bytes.per.second: a byte budget per second shared by the cleaner's threads.
class IoThrottle {
 public:
  explicit IoThrottle(double bytes_per_second) : rate_(bytes_per_second) {}
  // Sleeps until n more bytes fit in the budget (in short steps, returning early once stop is set).
  void acquire(std::size_t n, const std::atomic<bool>* stop = nullptr);

 private:
  const double rate_;
  std::mutex mu_;
  double window_start_s_ = -1;
  double window_bytes_ = 0;
};

struct CleanRequest {
  std::int64_t now_ms = 0;
  // Exclusive bound (the high watermark): only sealed segments wholly below it are touched.
  std::int64_t cleanable_end = 0;
  // log.cleaner.dedupe.buffer.size: the key map's memory; a full map ends the pass, the next continues.
  std::size_t key_map_bytes = 128u << 20;
  bool ignore_dirty_ratio = false;  // clean even below min.cleanable.dirty.ratio (tests, tools)
  IoThrottle* throttle = nullptr;
  const std::atomic<bool>* stop = nullptr;
  // Tests: called after each step of a swap ("cleaned", "swap", "deleted", "renamed"); true stops there,
  // leaving the files as a crash would.
  std::function<bool(std::string_view step)> crash_after;
};

struct CleanResult {
  bool cleaned = false;  // false: nothing to do (see reason)
  std::string reason;
  std::int64_t records_in = 0, records_out = 0;
  std::int64_t bytes_in = 0, bytes_out = 0;
  std::size_t segments_in = 0, segments_out = 0;
  std::int64_t first_dirty = 0, dirty_end = 0;  // the range whose keys were mapped
  int passes = 0;
  double dirty_ratio = 0;
};

// Bytes of key map memory one key takes (a 16-byte hash, the offset, the hash table's node).
constexpr std::size_t kKeyMapBytesPerEntry = 64;

// At open, before the segments are listed: removes *.log.cleaned and completes each *.log.swap.
LogStatus recover_cleaner_files(Env* env, const std::filesystem::path& dir);
// The cleaner checkpoint of a partition dir (-1 when none).
std::int64_t read_cleaner_checkpoint(const std::filesystem::path& dir);

struct LogCleanerOptions {
  int threads = 1;                          // log.cleaner.threads
  std::int64_t backoff_ms = 15000;          // log.cleaner.backoff.ms
  double io_bytes_per_second = 1.7976931348623157e308;  // log.cleaner.io.max.bytes.per.second
  std::size_t dedupe_buffer_bytes = 128u << 20;         // log.cleaner.dedupe.buffer.size (all threads)
};

// The cleaner threads: each round looks at every compacted log of the manager and cleans those that
// are due. cleanable_end gives a partition's high watermark (nullopt: not hosted, leave it).
class LogCleaner {
 public:
  using CleanableEnd = std::function<std::optional<std::int64_t>(const TopicPartition&)>;
  LogCleaner(LogManager& logs, LogCleanerOptions options, CleanableEnd cleanable_end);
  ~LogCleaner();
  void start();
  void stop();
  // One round over every log, on the caller's thread (tests); returns how many logs were cleaned.
  std::size_t clean_round(int thread_index = 0);

 private:
  void run(int thread_index);
  LogManager& logs_;
  const LogCleanerOptions options_;
  const CleanableEnd cleanable_end_;
  IoThrottle throttle_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
};

}  // namespace bulwark::storage
