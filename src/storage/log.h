// Partition logs as Kafka lays them out on disk, and the manager of all of them on one broker.
//
// Layout: <log.dir>/<topic>-<partition>/ holds segments named by their base offset (20 digits):
//   00000000000000000000.log        record batches (magic v2) exactly as on the wire, offsets assigned
//   00000000000000000000.index      sparse offset index: (relative offset u32, file position u32) BE,
//                                   one entry per index.interval.bytes, keyed by a batch's last offset
//   00000000000000000000.timeindex  time index: (timestamp i64, relative offset u32) BE, increasing
//   log-start-offset                checkpoint written by delete_records_before (survives restart)
//   leader-epoch-checkpoint         Kafka's file of leader epochs and their start offsets, rewritten when
//                                   an epoch begins or is truncated away; recovery rebuilds the epochs
//                                   from the batch headers (partitionLeaderEpoch), which are the truth
// On open every segment's batch headers are scanned, and CRC-32C-checked in the last segment and in
// every segment holding offsets at or above the recovery point (all of them after an unclean shutdown
// with no checkpoint). Damage is cut out of its segment into a quarantine file (<base>.log.damaged-<pos>)
// and the intact batches after it, in that segment and the later ones, are kept; only a torn tail of
// the last segment is truncated. The indexes are rebuilt in memory (and rewritten on disk when they
// differ) and the idempotent-producer table is rebuilt from the batch headers, with the open transactions
// and the aborted-transaction index (docs/transactions.md). Every batch served by
// read() is CRC-checked first: a damaged batch is never served as data (docs/storage.md).
//
// Faults: a failed fdatasync (or a failed write other than "no space") takes the whole log dir offline,
// as Kafka's LogDirFailureChannel does: the write is not acknowledged, nothing of it enters the
// producer table, and every partition of that dir answers LogError::io (KAFKA_STORAGE_ERROR) until the
// broker restarts and recovery decides what survived. A write refused for lack of space (ENOSPC,
// EDQUOT) is cut back off the file and fails alone; the dir stays online and writes resume when space
// returns. See docs/storage.md.
//
// Thread safety: PartitionLog is internally synchronized; every public method may be called from any
// thread. Appends, truncation and deletion are serialized by one mutex; read() locates the bytes under
// the mutex and copies them with pread outside it (segments stay alive while a read holds them).
// LogManager is internally synchronized too; the PartitionLog it hands out is a shared_ptr that stays
// valid after the partition is deleted (later calls on it then fail with LogError::io or read nothing).
//
// Errors are values: LogResult<T> carries a LogError the broker maps to a Kafka error code, and a
// message in plain words naming the file. LogFailure converts to base Error, so BULWARK_TRY works.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace bulwark::wire {
struct BatchHeader;
}

namespace bulwark::storage {

enum class LogError {
  corrupt_message,         // CORRUPT_MESSAGE: bad header, magic, CRC, partial batch
  message_too_large,       // MESSAGE_TOO_LARGE: one batch above max.message.bytes
  out_of_order_sequence,   // OUT_OF_ORDER_SEQUENCE_NUMBER
  invalid_producer_epoch,  // INVALID_PRODUCER_EPOCH
  offset_out_of_range,     // OFFSET_OUT_OF_RANGE
  invalid_argument,        // caller error (bad offsets in a replicated append, bad config, bad name)
  not_found,               // no such partition
  already_exists,
  io,                      // KAFKA_STORAGE_ERROR: the operating system said no, or the log dir is offline
  invalid_record,          // INVALID_RECORD: a batch the log refuses (a control batch from a client...)
  coordinator_fenced,      // TRANSACTION_COORDINATOR_FENCED: a marker from an older coordinator epoch
};

const char* to_string(LogError error);

struct LogFailure {
  LogError code = LogError::io;
  std::string message;

  LogFailure() = default;
  LogFailure(LogError c, std::string m) : code(c), message(std::move(m)) {}
  // From base errors (file helpers): io stays io, corrupt becomes corrupt_message, etc.
  LogFailure(const Error& error);  // NOLINT(implicit)
  operator Error() const;          // NOLINT(implicit): coarse kind for callers that only propagate
};

template <class T>
class [[nodiscard]] LogResult {
 public:
  LogResult(T value) : state_(std::move(value)) {}
  LogResult(LogFailure failure) : state_(std::move(failure)) {}
  LogResult(const Error& error) : state_(LogFailure(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const LogFailure& error() const { return std::get<1>(state_); }
  LogError code() const { return error().code; }

 private:
  std::variant<T, LogFailure> state_;
};

struct LogDone {};
using LogStatus = LogResult<LogDone>;

enum class TimestampType { create_time, log_append_time };

// Per-partition settings, named after Kafka's topic configs. -1 means unlimited / disabled where noted.
struct LogConfig {
  std::int64_t segment_bytes = 1ll << 30;                 // log.segment.bytes (at most 2 GiB - 1)
  std::int64_t segment_ms = 7ll * 24 * 3600 * 1000;       // log.roll.ms
  std::int32_t index_interval_bytes = 4096;               // index.interval.bytes
  std::int64_t retention_ms = 7ll * 24 * 3600 * 1000;     // log.retention.ms, -1 = unlimited
  std::int64_t retention_bytes = -1;                      // log.retention.bytes, -1 = unlimited
  std::int64_t flush_interval_messages = INT64_MAX;       // log.flush.interval.messages (1 = fsync every append)
  std::int64_t flush_interval_ms = -1;                    // log.flush.interval.ms, -1 = never by time
  std::int32_t max_message_bytes = 1048588;               // max.message.bytes (default for AppendOptions)
  TimestampType timestamp_type = TimestampType::create_time;  // message.timestamp.type
  // cleanup.policy: compact (the log cleaner keeps the last record per key, storage/cleaner.h) and/or
  // delete (retention.ms / retention.bytes delete old segments).
  bool compact = false;
  bool delete_by_retention = true;
  std::int64_t delete_retention_ms = 24ll * 3600 * 1000;  // delete.retention.ms: tombstones kept this long
  double min_cleanable_dirty_ratio = 0.5;                 // min.cleanable.dirty.ratio
  std::int64_t min_compaction_lag_ms = 0;                 // min.compaction.lag.ms
  std::int64_t max_compaction_lag_ms = INT64_MAX;         // max.compaction.lag.ms
};

struct AppendOptions {
  // true: the leader path (client produce): offsets assigned from the log end, idempotence checked.
  // false: the follower path: batches keep their offsets, which must not go below the log end offset
  // (gaps are allowed: a compacted leader's log has them).
  bool assign_offsets = true;
  std::int32_t max_message_bytes = 1048588;  // per batch, including the 12-byte log overhead
  TimestampType timestamp_type = TimestampType::create_time;
  std::int64_t now_ms = 0;                   // wall clock, for LogAppendTime and log.roll.ms
  std::int32_t leader_epoch = -1;            // written as partitionLeaderEpoch when >= 0
  // The leader path only: the batches are transaction markers from WriteTxnMarkers (Kafka's
  // AppendOrigin.COORDINATOR). Control batches from anyone else are refused (invalid_record).
  bool markers = false;
};

struct AppendResult {
  std::int64_t base_offset = -1;
  std::int64_t last_offset = -1;
  std::int64_t log_append_time = -1;  // -1 unless LogAppendTime
  std::int64_t log_start_offset = 0;
  std::int32_t record_count = 0;
  bool duplicate = false;  // an idempotent retry: nothing appended, original offsets returned
};

struct FetchData {
  Bytes bytes;  // whole batches, the first one containing fetch_offset; empty at the log end
  std::int64_t log_start_offset = 0;
  std::int64_t log_end_offset = 0;
};

// Where a leader epoch's batches begin in the log (Kafka's leader-epoch cache entry).
struct EpochStart {
  std::int32_t epoch = -1;
  std::int64_t start_offset = -1;
  bool operator==(const EpochStart&) const = default;
};
// The answer to "where does epoch E end here" (OffsetForLeaderEpoch, DivergingEpoch): the largest
// epoch <= E that this log has, and the offset where the next epoch starts (the log end for the
// latest). {-1, -1} when E is above the latest epoch or the log has none.
struct EpochEndOffset {
  std::int32_t epoch = -1;
  std::int64_t end_offset = -1;
  bool operator==(const EpochEndOffset&) const = default;
};

struct TimestampOffset {
  std::int64_t timestamp = -1;
  std::int64_t offset = -1;
};

// What the partition remembers about one idempotent producer (Kafka's ProducerStateEntry).
struct ProducerBatchMeta {
  std::int32_t first_sequence = 0;
  std::int32_t last_sequence = 0;
  std::int64_t first_offset = 0;
  std::int64_t last_offset = 0;
};
struct ProducerState {
  std::int16_t epoch = -1;
  std::deque<ProducerBatchMeta> batches;  // the last 5, oldest first
  std::int64_t last_timestamp = -1;
  std::int32_t coordinator_epoch = -1;  // of the last transaction marker (-1: none seen)
  std::int64_t txn_first_offset = -1;   // first offset of the producer's open transaction (-1: none)
};

// One aborted transaction (Kafka's AbortedTxn, a .txnindex entry): its data lies in
// [first_offset, last_offset], last_offset being the ABORT marker's offset. last_stable_offset is the
// log's last stable offset right after the abort (its first still-open transaction, or last_offset + 1).
struct AbortedTxn {
  std::int64_t producer_id = -1;
  std::int64_t first_offset = -1;
  std::int64_t last_offset = -1;
  std::int64_t last_stable_offset = -1;
  bool operator==(const AbortedTxn&) const = default;
};

// The EndTransactionMarker of a control batch (key: version 0, type 0 ABORT / 1 COMMIT; value: version 0,
// coordinator epoch).
struct TxnMarker {
  bool commit = false;
  std::int32_t coordinator_epoch = 0;
};
// The marker of a whole control batch; nullopt for other control records or bytes that are not one.
std::optional<TxnMarker> parse_txn_marker(ByteView batch);
// A control batch holding one marker, as WriteTxnMarkers appends it (offset 0; the log assigns it).
Bytes build_txn_marker_batch(std::int64_t producer_id, std::int16_t producer_epoch, const TxnMarker& marker,
                             std::int64_t timestamp_ms);

class Env;
class File;
struct CleanRequest;  // storage/cleaner.h
struct CleanResult;
class FileCache;
class Segment;

// What the partitions of one log dir share: the Env, the cache of open sealed-segment files, and the
// dir's health. Internally synchronized.
class LogDirContext {
 public:
  LogDirContext(std::filesystem::path root, Env* env, std::shared_ptr<FileCache> cache);
  static std::shared_ptr<LogDirContext> standalone(const std::filesystem::path& root, Env* env = nullptr);

  const std::filesystem::path& root() const { return root_; }
  Env* env() const { return env_; }
  const std::shared_ptr<FileCache>& files() const { return files_; }

  bool offline() const { return offline_.load(); }
  std::string offline_reason() const;
  // The first call logs an error naming the dir and the cause; the dir stays offline for the process.
  void mark_offline(const std::string& reason);
  // A request refused for a storage reason (no space, the dir offline, a damaged batch): logged at most
  // once per 10 s with a count, so a full disk under load does not flood the log.
  void report_refused(const std::string& message);

 private:
  const std::filesystem::path root_;
  Env* const env_;
  const std::shared_ptr<FileCache> files_;
  std::atomic<bool> offline_{false};
  mutable std::mutex mu_;
  std::string offline_reason_;
  std::int64_t rejected_since_report_ = 0;
  std::int64_t last_report_ms_ = -1;
};

struct OpenOptions {
  std::shared_ptr<LogDirContext> context;  // null: a context of its own on the POSIX Env
  // Segments holding offsets at or above this are CRC-checked at open (the recovery point); the last
  // segment always is. 0: every segment.
  std::int64_t verify_crc_from = 0;
};

class PartitionLog {
 public:
  // Opens (creating when missing) the partition directory and recovers it. The log start offset is the
  // checkpointed one, or the first segment's base offset, or 0 for a new log.
  static LogResult<std::shared_ptr<PartitionLog>> open(const std::filesystem::path& dir, const LogConfig& config,
                                                       const OpenOptions& options = {});
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // Validates every batch of a Produce records blob, then writes them all with one write (nothing is
  // written when any batch fails). See AppendOptions for the leader and follower paths.
  LogResult<AppendResult> append(ByteView records, const AppendOptions& options);

  // Whole batches starting with the one containing fetch_offset, from one segment, at most max_bytes
  // (but at least one batch, KIP-74), only batches whose last offset is below max_offset_exclusive
  // (high watermark for consumers, log end offset for followers). fetch_offset outside
  // [log_start_offset, log_end_offset] gives offset_out_of_range.
  LogResult<FetchData> read(std::int64_t fetch_offset, std::size_t max_bytes, std::int64_t max_offset_exclusive);

  // First record whose timestamp >= ts (nullopt when none). Earliest/latest are the caller's business.
  LogResult<std::optional<TimestampOffset>> offset_for_timestamp(std::int64_t timestamp);
  // The first record with the largest timestamp in the log (ListOffsets MAX_TIMESTAMP, KIP-734); nullopt
  // when no record has a timestamp.
  LogResult<std::optional<TimestampOffset>> offset_of_max_timestamp();

  // DeleteRecords: moves the log start offset forward (never past the log end), deletes the segments
  // entirely below it and checkpoints it. Returns the new log start offset.
  LogResult<std::int64_t> delete_records_before(std::int64_t offset);

  // Deletes whole old segments by retention.ms and retention.bytes, never the active one. Returns how
  // many segments went.
  LogResult<std::size_t> enforce_retention(std::int64_t now_ms);

  // KIP-854 (producer.id.expiration.ms): forgets the producers whose last batch is older than
  // `expiration_ms`, unless a transaction of theirs is open. Returns how many went. A forgotten producer
  // is new to this partition again: its next batch is taken as a new producer's (KIP-360).
  std::size_t expire_producers(std::int64_t now_ms, std::int64_t expiration_ms);

  // Log compaction of the sealed segments below request.cleanable_end (storage/cleaner.h, defined in
  // cleaner.cpp). Runs on the cleaner's thread; appends and reads go on meanwhile.
  LogResult<CleanResult> clean(const CleanRequest& request);
  // Where the part of the log not yet compacted starts (Kafka's cleaner checkpoint).
  std::int64_t first_dirty_offset() const;

  // Removes every batch at or above offset (a follower truncating to the leader's log), at batch
  // boundaries, and rebuilds the producer table.
  LogStatus truncate_to(std::int64_t offset);

  // Drops every batch and starts the log over, empty, at offset (a follower behind its leader's log
  // start: Kafka's truncateFullyAndStartAt).
  LogStatus restart_at(std::int64_t offset);

  // fdatasync when log.flush.interval.ms has passed since the last flush and something is unflushed.
  LogStatus maybe_flush(std::int64_t now_ms);
  LogStatus flush();  // fdatasync the active segment now

  std::int64_t log_start_offset() const;
  std::int64_t log_end_offset() const;
  // The log end, except while a group commit's fdatasync runs (flush.messages=1): then where that
  // group starts, since nothing of it may be acknowledged or read by consumers yet.
  std::int64_t acknowledgeable_end() const;
  // Every offset below this is on disk (fdatasync'ed): Kafka's recovery point.
  std::int64_t recovery_point() const;
  std::int64_t size_bytes() const;
  std::size_t segment_count() const;
  std::vector<std::int64_t> segment_base_offsets() const;
  std::optional<ProducerState> producer_state(std::int64_t producer_id) const;
  std::vector<std::pair<std::int64_t, ProducerState>> producer_states() const;  // by producer id
  // Transactions (docs/transactions.md): the first offset of the oldest transaction still open here,
  // -1 when none is. The last stable offset is this capped by the high watermark (the caller's).
  // Lock-free: the fetch path asks on every read.
  std::int64_t first_unstable_offset() const { return first_unstable_offset_.load(std::memory_order_acquire); }
  // The aborted transactions whose range overlaps [from, upper): last_offset >= from, first_offset < upper.
  std::vector<AbortedTxn> aborted_transactions(std::int64_t from, std::int64_t upper) const;
  // Leader epochs of the batches in the log (partitionLeaderEpoch >= 0), oldest first.
  std::vector<EpochStart> leader_epochs() const;
  std::int32_t latest_epoch() const;  // -1 when no batch carries an epoch
  EpochEndOffset end_offset_for_epoch(std::int32_t epoch) const;
  LogConfig config() const;
  void set_config(const LogConfig& config);  // takes effect on the next append / retention check
  const std::filesystem::path& dir() const { return dir_; }

  // Closes the files; later calls fail with io. Called by the destructor and by LogManager on delete.
  void close();

 private:
  PartitionLog(std::filesystem::path dir, LogConfig config, std::shared_ptr<LogDirContext> context);
  LogStatus recover_locked(std::int64_t verify_crc_from);
  LogFailure offline_failure() const;
  LogFailure sync_failed(const Error& error);  // takes the log dir offline
  // A failed write of len bytes at start: cut back; out of space fails alone, anything else is fatal.
  LogFailure write_failed(Segment& segment, File& file, std::uint64_t start, const Error& error);
  LogStatus roll_locked(std::int64_t now_ms, std::int64_t new_base);
  LogStatus delete_segments_below_locked(std::size_t count);
  LogStatus write_log_start_checkpoint_locked();
  LogResult<std::optional<TimestampOffset>> offset_for_timestamp_locked(std::int64_t timestamp);
  LogStatus start_over_locked(std::int64_t offset);  // removes every segment; one empty one at offset
  LogStatus rebuild_batch_state_locked();  // producer table and leader epochs, from the batch headers
  // Producer table and transactions for one recovered batch at position of seg (markers are read back).
  void replay_batch_locked(const Segment& seg, const wire::BatchHeader& header, std::uint64_t position);
  void put_producer_locked(std::int64_t producer_id, ProducerState state);  // keeps ongoing_txns_ in step
  void erase_producer_locked(std::int64_t producer_id);
  // An ABORT marker at last_offset ended the transaction begun at first_offset: into the index.
  void note_abort_locked(std::int64_t producer_id, std::int64_t first_offset, std::int64_t last_offset);
  void clear_producers_locked();
  void publish_first_unstable_locked();
  void note_batch_epoch_locked(const wire::BatchHeader& header);
  void write_epoch_checkpoint_locked();
  LogStatus flush_locked(std::int64_t now_ms);
  // cleaner.cpp: the swap of cleaned segments into the log, under mu_.
  struct CleanedGroup;
  LogStatus swap_cleaned_locked(std::vector<CleanedGroup>& groups, const CleanRequest& request);
  struct GroupMember {  // one caller's append waiting in a group commit
    std::vector<wire::BatchHeader>* headers;
    Bytes* data;
    const AppendOptions* options;
    std::optional<LogResult<AppendResult>> result;  // set, under group_mu_, when it is done
  };
  LogResult<AppendResult> append_in_group(std::vector<wire::BatchHeader>& headers, Bytes& data,
                                          const AppendOptions& options);
  std::vector<LogResult<AppendResult>> commit_group(const std::vector<GroupMember*>& group);
  std::optional<LogResult<AppendResult>> append_locked(std::vector<wire::BatchHeader>& headers, Bytes& data,
                                                       const AppendOptions& options, bool may_roll, bool defer_sync);

  const std::filesystem::path dir_;
  const std::shared_ptr<LogDirContext> context_;
  mutable std::mutex mu_;
  LogConfig config_;
  std::vector<std::shared_ptr<Segment>> segments_;  // ascending base offset; last = active
  std::int64_t log_start_offset_ = 0;
  std::int64_t log_end_offset_ = 0;
  std::int64_t unflushed_messages_ = 0;
  std::int64_t last_flush_ms_ = 0;
  std::int64_t recovery_point_ = 0;
  std::uint64_t truncations_ = 0;  // bumped on truncate_to so reads outside the lock can retry
  std::int64_t first_dirty_offset_ = 0;  // the cleaner's checkpoint (cleaner-offset-checkpoint file)
  bool cleaning_ = false;  // one clean() at a time per log
  std::int64_t tombstone_deadline_ms_ = -1;  // when tombstones the last cleaning kept may go (-1: none known)
  bool closed_ = false;
  std::map<std::int64_t, ProducerState> producers_;
  std::set<std::pair<std::int64_t, std::int64_t>> ongoing_txns_;  // (first offset, producer id)
  std::deque<AbortedTxn> aborted_txns_;  // ascending by last offset; rebuilt from the log at open
  std::atomic<std::int64_t> first_unstable_offset_{-1};  // ongoing_txns_'s first, published for readers
  std::vector<EpochStart> epochs_;
  // The group commit's queue (flush.messages=1); its own lock, so appends queue while one fdatasyncs.
  std::mutex group_mu_;
  std::condition_variable group_cv_;
  std::deque<GroupMember*> group_queue_;
  bool group_busy_ = false;  // a group is being written
  std::int64_t syncing_from_ = -1;  // under mu_: where the group whose fdatasync runs starts; -1 if none
};

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// "<topic>-<partition>" -> TopicPartition; the last '-' separates the partition. nullopt otherwise.
std::optional<TopicPartition> parse_partition_dir_name(const std::string& name);
std::string partition_dir_name(const TopicPartition& tp);

// Kafka's offset checkpoint files (recovery-point-offset-checkpoint, replication-offset-checkpoint):
// version 0, the entry count, then "topic partition offset" lines. nullopt when the text is not one.
std::optional<std::map<TopicPartition, std::int64_t>> parse_offset_checkpoint(const std::string& text);
std::string format_offset_checkpoint(const std::map<TopicPartition, std::int64_t>& offsets);

// An exclusive flock on <dir>/.lock, held for the life of the object (Kafka's per-log-dir lock): a
// second process on the same dir fails to take it and refuses to start.
class DirectoryLock {
 public:
  // Creates the directory (0750) when missing. The error names the dir: in use by another process,
  // read-only, not writable...
  static Result<DirectoryLock> acquire(const std::filesystem::path& dir);
  DirectoryLock() = default;
  ~DirectoryLock();
  DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

struct LogManagerOptions {
  Env* env = nullptr;  // null: POSIX
  // Open log files of sealed segments kept across all partitions; 0: derived from RLIMIT_NOFILE.
  std::size_t max_open_segment_files = 0;
};

class LogManager {
 public:
  // Locks each log dir (<dir>/.lock), opens every <topic>-<partition> directory under it (creating the
  // log dirs) and removes leftovers of deletions (<topic>-<partition>.<uuid>-delete). __cluster_metadata-0
  // is left alone (the raft layer owns it). Without a clean-shutdown marker (.kafka_cleanshutdown) the
  // segments above each partition's recovery point (recovery-point-offset-checkpoint) are CRC-checked.
  // Raises the soft RLIMIT_NOFILE to the hard limit and warns when that is below the expected need.
  static LogResult<std::unique_ptr<LogManager>> open(std::vector<std::filesystem::path> log_dirs,
                                                     const LogConfig& default_config,
                                                     const LogManagerOptions& options = {});
  ~LogManager();
  LogManager(const LogManager&) = delete;
  LogManager& operator=(const LogManager&) = delete;

  std::shared_ptr<PartitionLog> get(const TopicPartition& tp) const;
  // Returns the existing log, or creates one in the log dir holding the fewest partitions.
  LogResult<std::shared_ptr<PartitionLog>> get_or_create(const TopicPartition& tp, const LogConfig& config);
  // Renames the directory to <topic>-<partition>.<uuid>-delete, then removes it.
  LogStatus remove(const TopicPartition& tp);
  std::vector<TopicPartition> list() const;

  // Periodic work for the broker's scheduler: flush by time and retention on every partition.
  // Also writes the recovery-point checkpoints (at most once a minute, as Kafka).
  LogStatus maybe_flush_all(std::int64_t now_ms);
  LogStatus enforce_retention_all(std::int64_t now_ms);
  // expire_producers on every log; returns how many producers went in all.
  std::size_t expire_producers_all(std::int64_t now_ms, std::int64_t expiration_ms);

  // Log dirs taken offline by a storage failure since start.
  std::vector<std::filesystem::path> offline_dirs() const;
  std::size_t max_open_segment_files() const;

  // Flushes and closes every partition, writes the recovery points and, in each dir still online, the
  // clean-shutdown marker. Called by the destructor; later calls do nothing.
  void close();

 private:
  LogManager(std::vector<std::filesystem::path> log_dirs, LogConfig config)
      : log_dirs_(std::move(log_dirs)), default_config_(config) {}
  std::shared_ptr<LogDirContext> context_for(const std::filesystem::path& root) const;
  LogStatus write_recovery_points();
  std::vector<std::filesystem::path> log_dirs_;
  LogConfig default_config_;
  std::vector<DirectoryLock> locks_;
  std::map<std::filesystem::path, std::shared_ptr<LogDirContext>> contexts_;
  mutable std::mutex mu_;
  std::map<TopicPartition, std::shared_ptr<PartitionLog>> logs_;
  // The logs open now, for walks that must not hold mu_ while each log works.
  std::vector<std::shared_ptr<PartitionLog>> open_logs() const;
  std::mutex checkpoint_mu_;
  std::map<std::filesystem::path, std::string> last_checkpoint_;  // what each dir's file holds now
  std::int64_t last_checkpoint_ms_ = -1;
  std::uint64_t budget_limit_ = 0, budget_reserve_ = 0;  // descriptors: RLIMIT_NOFILE, kept for connections
  bool warned_descriptors_ = false;
  bool closed_ = false;
};

}  // namespace bulwark::storage
