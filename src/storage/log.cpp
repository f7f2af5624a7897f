#include "storage/log.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "base/clock.h"
#include "base/files.h"
#include "base/log.h"
#include "storage/cleaner.h"
#include "storage/env.h"
#include "storage/file.h"
#include "storage/segment.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

constexpr const char* kLogStartCheckpoint = "log-start-offset";
constexpr const char* kEpochCheckpoint = "leader-epoch-checkpoint";
constexpr std::size_t kProducerBatchesKept = 5;
constexpr std::size_t kStandaloneOpenFiles = 64;     // sealed-segment files a PartitionLog opened alone keeps
constexpr std::int64_t kRejectReportIntervalMs = 10'000;  // as Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN


// Sequence numbers wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
std::int32_t sequence_add(std::int32_t sequence, std::int32_t delta) {
  if (sequence > INT32_MAX - delta) return delta - (INT32_MAX - sequence) - 1;
  return sequence + delta;
}

// The transaction a marker ended: its first offset and the marker's.
struct TxnEnd {
  std::int64_t first_offset = -1;
  std::int64_t last_offset = -1;
  bool commit = false;
};

// One batch into a producer's entry (Kafka's ProducerAppendInfo): sequences and epoch, the transaction a
// transactional batch opens, the one a marker (control batch with an EndTransactionMarker) ends.
std::optional<TxnEnd> remember_batch(ProducerState& entry, const wire::BatchHeader& h, const TxnMarker* marker) {
  if (h.is_control() && !marker) return std::nullopt;  // not an EndTransactionMarker: nothing to learn
  if (h.producer_epoch != entry.epoch) {
    entry.epoch = h.producer_epoch;
    entry.batches.clear();
  }
  if (marker) {
    entry.coordinator_epoch = marker->coordinator_epoch;
    TxnEnd end{entry.txn_first_offset >= 0 ? entry.txn_first_offset : h.base_offset, h.last_offset(), marker->commit};
    entry.txn_first_offset = -1;
    return end;
  }
  if (h.base_sequence >= 0) {
    entry.batches.push_back({h.base_sequence, sequence_add(h.base_sequence, h.last_offset_delta), h.base_offset,
                             h.last_offset()});
    while (entry.batches.size() > kProducerBatchesKept) entry.batches.pop_front();
  }
  entry.last_timestamp = h.max_timestamp;
  if (h.is_transactional() && entry.txn_first_offset < 0) entry.txn_first_offset = h.base_offset;
  return std::nullopt;
}

// Control batches are a few dozen bytes; anything far larger is not a marker worth reading back.
constexpr std::size_t kMaxMarkerBatchBytes = 64 * 1024;

std::int16_t load_i16(const std::uint8_t* p) { return static_cast<std::int16_t>((p[0] << 8) | p[1]); }
std::int32_t load_i32(const std::uint8_t* p) {
  return static_cast<std::int32_t>((std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) |
                                   (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]));
}
void put_i16(Bytes& out, std::int16_t v) {
  out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}
void put_i32(Bytes& out, std::int32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
}

// Kafka's ProducerAppendInfo.checkProducerEpoch + checkSequence for the client (leader) path. Returns the
// original batch when h is a retry of one of the last five.
LogResult<std::optional<ProducerBatchMeta>> check_producer(const std::map<std::int64_t, ProducerState>& producers,
                                                           const wire::BatchHeader& h) {
  using Found = std::optional<ProducerBatchMeta>;
  auto it = producers.find(h.producer_id);
  if (it == producers.end()) return Found();  // unknown producer (new, or its state aged out): accept
  const ProducerState& entry = it->second;
  if (h.producer_epoch < entry.epoch) {
    return LogFailure(LogError::invalid_producer_epoch,
                      "producer " + std::to_string(h.producer_id) + " epoch " + std::to_string(h.producer_epoch) +
                          " is older than the current epoch " + std::to_string(entry.epoch));
  }
  if (h.producer_epoch > entry.epoch) {
    if (h.base_sequence != 0) {
      return LogFailure(LogError::out_of_order_sequence,
                        "producer " + std::to_string(h.producer_id) + " new epoch " +
                            std::to_string(h.producer_epoch) + " must start at sequence 0, got " +
                            std::to_string(h.base_sequence));
    }
    return Found();
  }
  const std::int32_t last_sequence = sequence_add(h.base_sequence, h.last_offset_delta);
  for (const auto& b : entry.batches) {
    if (b.first_sequence == h.base_sequence && b.last_sequence == last_sequence) return Found(b);
  }
  if (entry.batches.empty()) return Found();
  const std::int32_t expected = sequence_add(entry.batches.back().last_sequence, 1);
  if (h.base_sequence != expected) {
    return LogFailure(LogError::out_of_order_sequence,
                      "producer " + std::to_string(h.producer_id) + " sent sequence " +
                          std::to_string(h.base_sequence) + ", expected " + std::to_string(expected));
  }
  return Found();
}

// Control batches: only markers, only from WriteTxnMarkers on the leader path (Kafka refuses them from
// clients); the follower path copies whatever the leader has. marker is set for an EndTransactionMarker.
LogStatus check_control_batch(const wire::BatchHeader& h, ByteView batch, const AppendOptions& options,
                              std::optional<TxnMarker>& marker) {
  if (!h.is_control()) {
    if (options.assign_offsets && options.markers)
      return LogFailure(LogError::invalid_record, "WriteTxnMarkers appends control batches only");
    return LogDone{};
  }
  if (h.producer_id >= 0 && h.total_size() <= kMaxMarkerBatchBytes) marker = parse_txn_marker(batch);
  if (!options.assign_offsets) return LogDone{};
  if (!options.markers)
    return LogFailure(LogError::invalid_record, "control batches are written only by the transaction coordinator");
  if (!marker || !h.is_transactional())
    return LogFailure(LogError::invalid_record, "control batch is not a transactional EndTransactionMarker");
  return LogDone{};
}

// Kafka's ProducerAppendInfo.appendEndTxnMarker checks: the producer epoch, then the coordinator epoch.
LogStatus check_marker_epochs(const ProducerState& entry, const wire::BatchHeader& h, const TxnMarker& marker) {
  if (h.producer_epoch < entry.epoch) {
    return LogFailure(LogError::invalid_producer_epoch,
                      "marker for producer " + std::to_string(h.producer_id) + " has epoch " +
                          std::to_string(h.producer_epoch) + ", older than the current epoch " +
                          std::to_string(entry.epoch));
  }
  if (marker.coordinator_epoch < entry.coordinator_epoch) {
    return LogFailure(LogError::coordinator_fenced,
                      "marker for producer " + std::to_string(h.producer_id) + " has coordinator epoch " +
                          std::to_string(marker.coordinator_epoch) + ", older than " +
                          std::to_string(entry.coordinator_epoch));
  }
  return LogDone{};
}

std::optional<std::int64_t> parse_i64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<TxnMarker> parse_txn_marker(ByteView batch) {
  auto records = wire::decode_records(batch, kMaxMarkerBatchBytes);
  if (!records.ok() || records->size() != 1) return std::nullopt;
  const auto& r = records->front();
  // Key: version int16 (0), type int16 (0 ABORT, 1 COMMIT). Value: version int16, coordinator epoch int32.
  if (!r.key || r.key->size() < 4 || load_i16(r.key->data()) != 0) return std::nullopt;
  const std::int16_t type = load_i16(r.key->data() + 2);
  if (type != 0 && type != 1) return std::nullopt;
  if (!r.value || r.value->size() < 6 || load_i16(r.value->data()) < 0) return std::nullopt;
  return TxnMarker{type == 1, load_i32(r.value->data() + 2)};
}

Bytes build_txn_marker_batch(std::int64_t producer_id, std::int16_t producer_epoch, const TxnMarker& marker,
                             std::int64_t timestamp_ms) {
  wire::Record record;
  record.timestamp = timestamp_ms;
  Bytes key, value;
  put_i16(key, 0);
  put_i16(key, marker.commit ? 1 : 0);
  put_i16(value, 0);
  put_i32(value, marker.coordinator_epoch);
  record.key = std::move(key);
  record.value = std::move(value);
  wire::BatchOptions options;
  options.producer_id = producer_id;
  options.producer_epoch = producer_epoch;
  options.transactional = true;
  options.control = true;
  auto batch = wire::encode_batch({record}, options);
  return batch.ok() ? std::move(*batch) : Bytes{};  // an uncompressed one-record batch always encodes
}

const char* to_string(LogError error) {
  switch (error) {
    case LogError::corrupt_message: return "corrupt message";
    case LogError::message_too_large: return "message too large";
    case LogError::out_of_order_sequence: return "out of order sequence number";
    case LogError::invalid_producer_epoch: return "invalid producer epoch";
    case LogError::offset_out_of_range: return "offset out of range";
    case LogError::invalid_argument: return "invalid argument";
    case LogError::invalid_record: return "invalid record";
    case LogError::coordinator_fenced: return "transaction coordinator fenced";
    case LogError::not_found: return "not found";
    case LogError::already_exists: return "already exists";
    case LogError::io: return "storage I/O error";
  }
  return "unknown";
}

LogFailure::LogFailure(const Error& error) : message(error.message) {
  switch (error.kind) {
    case ErrorKind::corrupt: code = LogError::corrupt_message; break;
    case ErrorKind::invalid_argument: code = LogError::invalid_argument; break;
    case ErrorKind::not_found: code = LogError::not_found; break;
    case ErrorKind::already_exists: code = LogError::already_exists; break;
    default: code = LogError::io; break;
  }
}

LogFailure::operator Error() const {
  ErrorKind kind = ErrorKind::invalid_argument;
  switch (code) {
    case LogError::corrupt_message: kind = ErrorKind::corrupt; break;
    case LogError::not_found: kind = ErrorKind::not_found; break;
    case LogError::already_exists: kind = ErrorKind::already_exists; break;
    case LogError::io: kind = ErrorKind::io; break;
    default: break;
  }
  return make_error(kind, message);
}

LogDirContext::LogDirContext(std::filesystem::path root, Env* env, std::shared_ptr<FileCache> cache)
    : root_(std::move(root)), env_(env ? env : Env::posix()), files_(std::move(cache)) {}

std::shared_ptr<LogDirContext> LogDirContext::standalone(const std::filesystem::path& root, Env* env) {
  return std::make_shared<LogDirContext>(root, env, std::make_shared<FileCache>(kStandaloneOpenFiles));
}

std::string LogDirContext::offline_reason() const {
  std::lock_guard lock(mu_);
  return offline_reason_;
}

void LogDirContext::mark_offline(const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (offline_.load()) return;
    offline_reason_ = reason;
    offline_.store(true);
  }
  log::error("log dir {} is offline: {}. Its partitions answer KAFKA_STORAGE_ERROR until the broker restarts "
             "(data not fdatasync'ed before the failure may be gone; recovery checks what is left)",
             root_.string(), reason);
}

void LogDirContext::report_refused(const std::string& message) {
  const std::int64_t now = wall_clock_ms();
  std::int64_t count = 0;
  {
    std::lock_guard lock(mu_);
    ++rejected_since_report_;
    if (last_report_ms_ >= 0 && now - last_report_ms_ < kRejectReportIntervalMs) return;
    count = rejected_since_report_;
    rejected_since_report_ = 0;
    last_report_ms_ = now;
  }
  log::warn("log dir {}: {} request(s) refused since the last report of this kind; latest: {}", root_.string(), count,
            message);
}

PartitionLog::PartitionLog(std::filesystem::path dir, LogConfig config, std::shared_ptr<LogDirContext> context)
    : dir_(std::move(dir)), context_(std::move(context)), config_(config) {}

PartitionLog::~PartitionLog() { close(); }

LogResult<std::shared_ptr<PartitionLog>> PartitionLog::open(const std::filesystem::path& dir, const LogConfig& config,
                                                            const OpenOptions& options) {
  if (config.segment_bytes <= 0 || config.segment_bytes > INT32_MAX) {
    return LogFailure(LogError::invalid_argument, "log.segment.bytes must be in 1.." + std::to_string(INT32_MAX));
  }
  auto context = options.context ? options.context : LogDirContext::standalone(dir.parent_path());
  if (context->offline()) return LogFailure(LogError::io, "log dir " + context->root().string() + " is offline");
  BULWARK_TRY(make_data_directories(context->env(), dir));
  std::shared_ptr<PartitionLog> log(new PartitionLog(dir, config, context));
  std::lock_guard lock(log->mu_);
  BULWARK_TRY(log->recover_locked(options.verify_crc_from));
  return log;
}

LogFailure PartitionLog::offline_failure() const {
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
  return LogFailure(LogError::io, "log dir " + context_->root().string() + " is offline (" +
                                      context_->offline_reason() + ")");
}

LogFailure PartitionLog::sync_failed(const Error& error) {
  // Never retried: after a failed fdatasync the unsynced tail cannot be trusted (fsyncgate).
  context_->mark_offline(error.message);
  return LogFailure(LogError::io, error.message);
}

LogFailure PartitionLog::write_failed(Segment& segment, File& file, std::uint64_t start, const Error& error) {
  const int cause = file.last_error();
  // Leave no partial batch behind; when even that fails the file's tail is unknown.
  if (auto cut = file.truncate(start); !cut.ok()) {
    context_->mark_offline(error.message + "; then " + cut.error().message);
    return LogFailure(LogError::io, error.message);
  }
  segment.size = start;
  if (is_out_of_space(cause)) {
    context_->report_refused(error.message);
    return LogFailure(LogError::io, error.message);
  }
  context_->mark_offline(error.message);
  return LogFailure(LogError::io, error.message);
}

LogStatus PartitionLog::recover_locked(std::int64_t verify_crc_from) {
  Env* env = context_->env();
  BULWARK_TRY(recover_cleaner_files(env, dir_));  // a cleaning a crash interrupted: old or new segments
  first_dirty_offset_ = std::max<std::int64_t>(read_cleaner_checkpoint(dir_), 0);
  std::vector<std::int64_t> bases;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 24 && name.ends_with(".log")) {
      if (auto base = parse_i64(name.substr(0, 20)); base && *base >= 0) bases.push_back(*base);
    }
  }
  if (ec) return LogFailure(LogError::io, "cannot list " + dir_.string() + ": " + ec.message());
  std::sort(bases.begin(), bases.end());

  std::int64_t checkpoint = -1;
  if (auto text = read_file(dir_ / kLogStartCheckpoint); text.ok()) {
    auto v = parse_i64(*text);
    if (!v || *v < 0) {
      log::warn("{}: ignoring unreadable log start checkpoint", (dir_ / kLogStartCheckpoint).string());
    } else {
      checkpoint = *v;
    }
  } else if (text.error().kind != ErrorKind::not_found) {
    return LogFailure(text.error());
  }

  clear_producers_locked();
  epochs_.clear();
  segments_.clear();
  std::int64_t next = 0;
  std::uint64_t damaged = 0;
  for (std::size_t i = 0; i < bases.size(); ++i) {
    auto seg = Segment::open(env, context_->files(), dir_, bases[i]);
    if (!seg.ok()) return LogFailure(seg.error());
    const bool last = i + 1 == bases.size();
    if (last) BULWARK_TRY((*seg)->activate());
    // A segment holds offsets below the next one's base: check it when that reaches the recovery point.
    const bool verify = last || bases[i + 1] > verify_crc_from;
    // on_batch sees the intact batches in file order from position 0, so positions add up.
    std::uint64_t position = 0;
    const Segment& segment = **seg;
    auto recovery = (*seg)->recover(verify, /*sealed=*/!last, next, config_.index_interval_bytes,
                                    [&](const wire::BatchHeader& h) {
                                      replay_batch_locked(segment, h, position);
                                      position += h.total_size();
                                      note_batch_epoch_locked(h);
                                    });
    if (!recovery.ok()) return LogFailure(recovery.error());
    damaged += recovery->quarantined_bytes;
    next = std::max(next, (*seg)->next_offset);
    segments_.push_back(*seg);
  }
  if (damaged > 0) {
    log::error("{}: recovery cut {} damaged bytes out of the log (kept in *.damaged-* files); every intact batch "
               "was kept",
               dir_.string(), damaged);
  }
  if (segments_.empty()) {
    auto seg = Segment::create(env, context_->files(), dir_, std::max<std::int64_t>(checkpoint, 0));
    if (!seg.ok()) return LogFailure(seg.error());
    (*seg)->created_ms = wall_clock_ms();
    segments_.push_back(*seg);
    BULWARK_TRY(sync_directory(env, dir_));
  }
  auto& active = segments_.back();
  if (active->rolling_timestamp < 0) active->created_ms = active->last_modified_ms;
  log_end_offset_ = std::max(active->next_offset, active->base_offset);
  log_start_offset_ = std::max(checkpoint, segments_.front()->base_offset);
  if (log_start_offset_ > log_end_offset_) {
    log::warn("{}: log start offset {} is past the recovered log end {}; using the log end", dir_.string(),
              log_start_offset_, log_end_offset_);
    log_start_offset_ = log_end_offset_;
  }
  recovery_point_ = std::clamp(verify_crc_from, log_start_offset_, log_end_offset_);
  publish_first_unstable_locked();
  write_epoch_checkpoint_locked();
  closed_ = false;
  return LogDone{};
}

LogResult<AppendResult> PartitionLog::append(ByteView records, const AppendOptions& options) {
  auto split = wire::split_batches(records);
  if (!split.ok()) return LogFailure(LogError::corrupt_message, "invalid record batch: " + split.error().message);
  if (split->trailing_bytes != 0) {
    return LogFailure(LogError::corrupt_message,
                      "partial record batch at the end (" + std::to_string(split->trailing_bytes) + " bytes)");
  }
  if (split->batches.empty()) return LogFailure(LogError::corrupt_message, "no record batches");

  std::vector<wire::BatchHeader> headers;
  headers.reserve(split->batches.size());
  for (std::size_t i = 0; i < split->batches.size(); ++i) {
    ByteView b = split->batches[i];
    auto h = wire::parse_batch_header(b);
    if (!h.ok()) return LogFailure(LogError::corrupt_message, "batch " + std::to_string(i) + ": " + h.error().message);
    if (options.max_message_bytes > 0 && b.size() > static_cast<std::size_t>(options.max_message_bytes)) {
      return LogFailure(LogError::message_too_large, "batch of " + std::to_string(b.size()) +
                                                         " bytes exceeds max.message.bytes " +
                                                         std::to_string(options.max_message_bytes));
    }
    if (!wire::batch_crc_ok(b)) {
      return LogFailure(LogError::corrupt_message, "CRC mismatch in batch " + std::to_string(i));
    }
    if (h->record_count <= 0 || (options.assign_offsets && h->record_count != h->last_offset_delta + 1)) {
      return LogFailure(LogError::corrupt_message, "batch " + std::to_string(i) + " has record count " +
                                                       std::to_string(h->record_count) + " and last offset delta " +
                                                       std::to_string(h->last_offset_delta));
    }
    headers.push_back(*h);
  }
  Bytes data(records.begin(), records.end());
  {
    std::lock_guard lock(mu_);
    if (config_.flush_interval_messages > 1) {
      auto appended = append_locked(headers, data, options, /*may_roll=*/true, /*defer_sync=*/false);
      return appended ? std::move(*appended) : LogFailure(LogError::io, "unreachable: a roll was refused");
    }
  }
  return append_in_group(headers, data, options);
}

// Group commit (flush.messages=1): appenders queue; the first one in the queue writes every queued
// append and covers them all with one fdatasync, then hands each its result. The others wait meanwhile
// and none of them is answered before the fdatasync that covers it.
LogResult<AppendResult> PartitionLog::append_in_group(std::vector<wire::BatchHeader>& headers, Bytes& data,
                                                      const AppendOptions& options) {
  GroupMember me{&headers, &data, &options, std::nullopt};
  std::unique_lock queue_lock(group_mu_);
  group_queue_.push_back(&me);
  group_cv_.wait(queue_lock, [&] { return me.result.has_value() || (!group_busy_ && group_queue_.front() == &me); });
  if (me.result) return std::move(*me.result);
  group_busy_ = true;
  std::vector<GroupMember*> group(group_queue_.begin(), group_queue_.end());
  group_queue_.clear();
  queue_lock.unlock();
  auto results = commit_group(group);
  queue_lock.lock();
  for (std::size_t i = 0; i < results.size(); ++i) group[i]->result = std::move(results[i]);
  // Those left out (they had to roll the segment) lead the next group, in their order.
  group_queue_.insert(group_queue_.begin(), group.begin() + static_cast<std::ptrdiff_t>(results.size()), group.end());
  group_busy_ = false;
  queue_lock.unlock();
  group_cv_.notify_all();
  return std::move(*me.result);
}

// Appends a prefix of the group (at least its first member) and covers it with one fdatasync; their
// results. The fdatasync runs outside mu_, so readers are not held up by the disk (what they may read
// early is unacknowledged, and a follower may have it, as in Kafka). When it fails, none of the group
// counts as written: the dir goes offline, and the log end and producer table are put back.
std::vector<LogResult<AppendResult>> PartitionLog::commit_group(const std::vector<GroupMember*>& group) {
  std::unique_lock lock(mu_);
  const std::int64_t end_before = log_end_offset_;
  const auto epochs_before = epochs_;
  const std::size_t aborted_before = aborted_txns_.size();
  std::map<std::int64_t, std::optional<ProducerState>> producers_before;
  for (const auto* member : group)
    for (const auto& h : *member->headers)
      if (h.producer_id >= 0 && !producers_before.count(h.producer_id)) {
        auto it = producers_.find(h.producer_id);
        producers_before[h.producer_id] = it == producers_.end() ? std::nullopt : std::optional(it->second);
      }
  const auto active_before = segments_.empty() ? nullptr : segments_.back();
  const std::uint64_t size_before = active_before ? active_before->size : 0;

  std::vector<LogResult<AppendResult>> results;
  bool wrote = false;
  for (const auto* member : group) {
    auto appended = append_locked(*member->headers, *member->data, *member->options, /*may_roll=*/results.empty(),
                                  /*defer_sync=*/true);
    if (!appended) break;  // needs a new segment: it leads the next group
    wrote = wrote || (appended->ok() && !(*appended)->duplicate);
    results.push_back(std::move(*appended));
  }
  if (!wrote) return results;
  auto active = segments_.back();
  const std::uint64_t start = active == active_before ? size_before : 0;
  const std::int64_t group_end = log_end_offset_;
  auto file = active->log_file();
  syncing_from_ = end_before;
  lock.unlock();
  Status synced = file.ok() ? (*file)->datasync() : Status(file.error());
  lock.lock();
  syncing_from_ = -1;
  if (synced.ok()) {
    unflushed_messages_ = 0;
    last_flush_ms_ = group.front()->options->now_ms;
    recovery_point_ = std::max(recovery_point_, std::min(group_end, log_end_offset_));
    return results;
  }
  auto failure = sync_failed(synced.error());
  // Put back only what this group did: an append that came in while the fdatasync ran (possible only
  // after a flush.messages change) keeps its state, and recovery decides about its bytes.
  if (log_end_offset_ == group_end && segments_.back() == active) {
    if (file.ok()) (void)(*file)->truncate(start);  // best effort; recovery decides what is left
    active->size = start;
    log_end_offset_ = end_before;
    epochs_ = epochs_before;
    for (auto& [id, state] : producers_before) {
      if (state) put_producer_locked(id, std::move(*state));
      else erase_producer_locked(id);
    }
    aborted_txns_.resize(std::min(aborted_txns_.size(), aborted_before));
    publish_first_unstable_locked();
  }
  for (auto& result : results) result = failure;
  return results;
}

// One append under mu_. nullopt when it needs a new segment and may_roll is false; with defer_sync the
// caller fdatasyncs (a group commit) and nothing here does.
std::optional<LogResult<AppendResult>> PartitionLog::append_locked(std::vector<wire::BatchHeader>& headers, Bytes& data,
                                                                   const AppendOptions& options, bool may_roll,
                                                                   bool defer_sync) {
  if (closed_ || context_->offline()) {
    auto failure = offline_failure();
    context_->report_refused(failure.message);
    return failure;
  }

  // Offsets first (as they will be), then the producer checks against a staged copy of the table, so a
  // rejected append leaves no trace.
  std::int64_t next = log_end_offset_;
  for (auto& h : headers) {
    if (options.assign_offsets) {
      h.base_offset = next;
    } else if (h.base_offset < next) {
      return LogFailure(LogError::invalid_argument, "replicated batch at offset " + std::to_string(h.base_offset) +
                                                        " is below the log end offset " + std::to_string(next));
    }
    next = h.last_offset() + 1;
  }
  std::map<std::int64_t, ProducerState> staged;
  std::vector<std::pair<std::int64_t, TxnEnd>> aborts;  // (producer id, transaction) ended by ABORT markers
  std::size_t at = 0;
  for (const auto& h : headers) {
    const ByteView batch(data.data() + at, h.total_size());
    at += h.total_size();
    std::optional<TxnMarker> marker;
    if (auto checked = check_control_batch(h, batch, options, marker); !checked.ok()) return checked.error();
    if (h.producer_id < 0) continue;
    if (!staged.count(h.producer_id)) {
      auto it = producers_.find(h.producer_id);
      if (it != producers_.end()) staged[h.producer_id] = it->second;
    }
    if (options.assign_offsets && marker) {
      if (auto it = staged.find(h.producer_id); it != staged.end()) {
        if (auto fenced = check_marker_epochs(it->second, h, *marker); !fenced.ok()) return fenced.error();
      }
    }
    if (options.assign_offsets && h.base_sequence >= 0 && !h.is_control()) {
      auto check = check_producer(staged, h);
      if (!check.ok()) return check.error();
      if (check->has_value()) {
        const ProducerBatchMeta& original = **check;
        AppendResult dup;
        dup.base_offset = original.first_offset;
        dup.last_offset = original.last_offset;
        dup.record_count = static_cast<std::int32_t>(original.last_offset - original.first_offset + 1);
        dup.log_start_offset = log_start_offset_;
        dup.duplicate = true;
        return dup;
      }
    }
    auto end = remember_batch(staged[h.producer_id], h, marker ? &*marker : nullptr);
    if (end && !end->commit) aborts.emplace_back(h.producer_id, *end);
  }

  const std::int64_t first_offset = headers.front().base_offset;
  const std::int64_t last_offset = headers.back().last_offset();
  {
    Segment* active = segments_.back().get();
    const std::int64_t rolling = active->rolling_timestamp >= 0 ? active->rolling_timestamp : active->created_ms;
    const bool full = active->size + data.size() > static_cast<std::uint64_t>(config_.segment_bytes);
    const bool old = config_.segment_ms >= 0 && options.now_ms - rolling >= config_.segment_ms;
    const bool far = last_offset - active->base_offset > INT32_MAX;
    if (active->size > 0 && (full || old || far)) {
      if (!may_roll) return std::nullopt;
      if (auto rolled = roll_locked(options.now_ms, first_offset); !rolled.ok()) return LogFailure(rolled.error());
    }
  }
  Segment* active = segments_.back().get();

  // Rewrite the fields outside the CRC (offsets, leader epoch); LogAppendTime also recomputes the CRC.
  const bool append_time = options.timestamp_type == TimestampType::log_append_time;
  std::size_t pos = 0;
  for (auto& h : headers) {
    std::span<std::uint8_t> batch(data.data() + pos, h.total_size());
    if (options.assign_offsets) wire::set_base_offset(batch, h.base_offset);
    if (options.leader_epoch >= 0) {
      wire::set_partition_leader_epoch(batch, options.leader_epoch);
      h.partition_leader_epoch = options.leader_epoch;
    }
    if (append_time) {
      wire::set_log_append_time(batch, options.now_ms);
      h.max_timestamp = options.now_ms;
      h.attributes = static_cast<std::int16_t>(h.attributes | 0x8);
    }
    pos += h.total_size();
  }

  auto file = active->log_file();
  if (!file.ok()) return sync_failed(file.error());
  const std::uint64_t start = active->size;
  if (auto written = (*file)->write_all(start, data); !written.ok()) {
    return write_failed(*active, **file, start, written.error());
  }
  // The flush policy's fdatasync comes before anything is remembered: when it fails, neither the
  // offsets nor the producer table know of this batch, and the dir goes offline.
  std::int32_t record_count = 0;
  for (const auto& h : headers) record_count += h.record_count;
  const bool sync_now = !defer_sync && unflushed_messages_ + record_count >= config_.flush_interval_messages;
  if (sync_now) {
    if (auto synced = (*file)->datasync(); !synced.ok()) {
      (void)(*file)->truncate(start);  // best effort; the dir is offline and recovery decides
      return sync_failed(synced.error());
    }
  }
  pos = start;
  for (const auto& h : headers) {
    active->track(h, pos, config_.index_interval_bytes);
    pos += h.total_size();
  }
  if (auto idx = active->write_index_tail(); !idx.ok()) {
    // The index is rebuilt from the log at the next open; the data itself is written.
    context_->report_refused("index: " + idx.error().message);
  }
  log_end_offset_ = last_offset + 1;
  for (auto& [id, state] : staged) put_producer_locked(id, std::move(state));
  for (const auto& [id, end] : aborts) note_abort_locked(id, end.first_offset, end.last_offset);
  if (!staged.empty()) publish_first_unstable_locked();
  const auto epochs_before = epochs_.size();
  for (const auto& h : headers) note_batch_epoch_locked(h);
  if (epochs_.size() != epochs_before) write_epoch_checkpoint_locked();
  if (sync_now) {
    unflushed_messages_ = 0;
    last_flush_ms_ = options.now_ms;
    recovery_point_ = log_end_offset_;
  } else {
    unflushed_messages_ += record_count;
  }

  AppendResult result;
  result.base_offset = first_offset;
  result.last_offset = last_offset;
  result.log_append_time = append_time ? options.now_ms : -1;
  result.log_start_offset = log_start_offset_;
  result.record_count = record_count;
  return result;
}

LogStatus PartitionLog::roll_locked(std::int64_t now_ms, std::int64_t new_base) {
  auto active = segments_.back();
  if (active->size == 0 && active->base_offset == new_base) return LogDone{};
  Env* env = context_->env();
  // The new segment first: when it cannot be created (no space), the active one stays as it was.
  auto seg = Segment::create(env, context_->files(), dir_, new_base);
  if (!seg.ok()) {
    for (const char* suffix : {".log", ".index", ".timeindex"}) {
      (void)remove_file(env, dir_ / segment_file_name(new_base, suffix));
    }
    context_->report_refused(seg.error().message);
    return LogFailure(seg.error());
  }
  if (active->size == 0) {
    BULWARK_TRY(active->remove_files());
    segments_.pop_back();
  } else {
    if (auto sealed = active->seal(); !sealed.ok()) return sync_failed(sealed.error());
    recovery_point_ = std::max(recovery_point_, active->next_offset);
  }
  (*seg)->created_ms = now_ms;
  segments_.push_back(*seg);
  if (auto synced = sync_directory(env, dir_); !synced.ok()) return sync_failed(synced.error());
  unflushed_messages_ = 0;  // seal() synced everything written so far
  return LogDone{};
}

LogStatus PartitionLog::flush_locked(std::int64_t now_ms) {
  if (closed_ || segments_.empty()) return LogDone{};
  if (context_->offline()) return offline_failure();
  if (auto synced = segments_.back()->sync_log(); !synced.ok()) return sync_failed(synced.error());
  unflushed_messages_ = 0;
  last_flush_ms_ = now_ms;
  recovery_point_ = log_end_offset_;
  return LogDone{};
}

std::int64_t PartitionLog::acknowledgeable_end() const {
  std::lock_guard lock(mu_);
  return syncing_from_ >= 0 ? syncing_from_ : log_end_offset_;
}

LogStatus PartitionLog::flush() {
  std::lock_guard lock(mu_);
  return flush_locked(wall_clock_ms());
}

LogStatus PartitionLog::maybe_flush(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  // An offline dir was reported when it went offline; the periodic task does not repeat it.
  if (closed_ || context_->offline()) return LogDone{};
  if (config_.flush_interval_ms < 0 || unflushed_messages_ == 0) return LogDone{};
  if (now_ms - last_flush_ms_ < config_.flush_interval_ms) return LogDone{};
  return flush_locked(now_ms);
}

LogResult<FetchData> PartitionLog::read(std::int64_t fetch_offset, std::size_t max_bytes,
                                        std::int64_t max_offset_exclusive) {
  for (int attempt = 0;; ++attempt) {
    FetchData out;
    std::shared_ptr<Segment> seg;
    std::shared_ptr<File> file;
    std::uint64_t start = 0, end = 0, first_size = 0, generation = 0;
    bool check_crc = false;
    {
      std::lock_guard lock(mu_);
      if (closed_ || context_->offline()) return offline_failure();
      out.log_start_offset = log_start_offset_;
      out.log_end_offset = log_end_offset_;
      if (fetch_offset < log_start_offset_ || fetch_offset > log_end_offset_) {
        return LogFailure(LogError::offset_out_of_range,
                          "offset " + std::to_string(fetch_offset) + " is outside [" +
                              std::to_string(log_start_offset_) + ", " + std::to_string(log_end_offset_) + "] in " +
                              dir_.string());
      }
      const std::int64_t limit = std::min(max_offset_exclusive, log_end_offset_);
      if (fetch_offset >= limit) return out;
      auto it = std::upper_bound(segments_.begin(), segments_.end(), fetch_offset,
                                 [](std::int64_t off, const auto& s) { return off < s->base_offset; });
      if (it != segments_.begin()) --it;
      std::optional<LocatedBatch> found;
      for (; it != segments_.end(); ++it) {  // offsets in a gap continue in the next segment
        auto located = (*it)->find_batch(fetch_offset);
        if (!located.ok()) return LogFailure(located.error());
        if (located->has_value()) {
          found = **located;
          seg = *it;
          break;
        }
      }
      if (!found || found->header.last_offset() >= limit) return out;
      start = found->position;
      first_size = found->header.total_size();
      end = seg->size;
      if (limit < seg->next_offset) {  // stop before the batch that reaches the limit
        auto stop = seg->find_batch(limit);
        if (!stop.ok()) return LogFailure(stop.error());
        if (stop->has_value()) end = (*stop)->position;
      }
      generation = truncations_;
      check_crc = !seg->crc_verified;
      auto opened = seg->log_file();
      if (!opened.ok()) return LogFailure(opened.error());
      file = *opened;
    }
    // Copy outside the lock: [start, end) is committed and the segment's descriptor lives while we hold it.
    const std::uint64_t length = std::min<std::uint64_t>(end - start, std::max<std::uint64_t>(max_bytes, first_size));
    out.bytes.resize(length);
    if (auto read = file->read_exact(start, out.bytes.data(), length); !read.ok()) {
      std::lock_guard lock(mu_);
      if (truncations_ != generation && attempt < 3) continue;
      return LogFailure(read.error());
    }
    {
      std::lock_guard lock(mu_);
      if (truncations_ != generation && attempt < 3) continue;
    }
    // Whole batches only: cut a batch that max_bytes split. In a segment this process has not checked
    // (sealed before a clean start) each batch's CRC is checked: a damaged batch is never served; the
    // batches before it are, and a damaged first batch is an error.
    std::size_t keep = 0;
    while (out.bytes.size() - keep >= wire::kBatchLogOverhead) {
      wire::BatchHeader h;
      ByteReader r(ByteView(out.bytes).subspan(keep + wire::kBatchLengthOffset, 4));
      r.read_i32(h.batch_length);
      const std::size_t total = static_cast<std::size_t>(h.batch_length) + wire::kBatchLogOverhead;
      if (h.batch_length <= 0 || keep + total > out.bytes.size()) break;
      if (check_crc && !wire::batch_crc_ok(ByteView(out.bytes).subspan(keep, total))) {
        if (keep > 0) break;
        const std::string problem = seg->log_path.string() + ": CRC mismatch in the batch at byte " +
                                    std::to_string(start) + " (holding offset " + std::to_string(fetch_offset) +
                                    "); not served";
        context_->report_refused("read: " + problem);
        return LogFailure(LogError::corrupt_message, problem);
      }
      keep += total;
    }
    out.bytes.resize(keep);
    return out;
  }
}

LogResult<std::optional<TimestampOffset>> PartitionLog::offset_for_timestamp(std::int64_t timestamp) {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return offline_failure();
  return offset_for_timestamp_locked(timestamp);
}

// The first record with the largest timestamp is the first one at or after that timestamp.
LogResult<std::optional<TimestampOffset>> PartitionLog::offset_of_max_timestamp() {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return offline_failure();
  std::int64_t largest = -1;
  for (const auto& seg : segments_)
    if (seg->next_offset > log_start_offset_) largest = std::max(largest, seg->max_timestamp);
  if (largest < 0) return std::optional<TimestampOffset>();
  return offset_for_timestamp_locked(largest);
}

LogResult<std::optional<TimestampOffset>> PartitionLog::offset_for_timestamp_locked(std::int64_t timestamp) {
  for (const auto& seg : segments_) {
    if (seg->max_timestamp < timestamp || seg->next_offset <= log_start_offset_) continue;
    auto located = seg->find_batch_by_time(timestamp);
    if (!located.ok()) return LogFailure(located.error());
    if (!located->has_value()) continue;
    const LocatedBatch& lb = **located;
    if (lb.header.last_offset() < log_start_offset_) continue;  // (rare) look further via the next batches
    TimestampOffset answer{lb.header.max_timestamp, std::max(lb.header.base_offset, log_start_offset_)};
    if (!lb.header.log_append_time()) {
      // The exact record: the first one inside the batch with timestamp >= the target.
      Bytes batch(lb.header.total_size());
      auto file = seg->log_file();
      if (!file.ok()) return LogFailure(file.error());
      BULWARK_TRY((*file)->read_exact(lb.position, batch.data(), batch.size()));
      auto records = wire::decode_records(batch);
      if (records.ok()) {
        for (const auto& r : *records) {
          if (r.timestamp >= timestamp && r.offset >= log_start_offset_) {
            answer = {r.timestamp, r.offset};
            break;
          }
        }
      }
    }
    return std::optional<TimestampOffset>(answer);
  }
  return std::optional<TimestampOffset>();
}

LogStatus PartitionLog::write_log_start_checkpoint_locked() {
  const std::string text = std::to_string(log_start_offset_) + "\n";
  // A failure leaves the previous checkpoint in place (the rename is atomic): the data is not at stake.
  BULWARK_TRY(write_file_durably(context_->env(), dir_ / kLogStartCheckpoint, as_bytes(text)));
  return LogDone{};
}

LogStatus PartitionLog::delete_segments_below_locked(std::size_t count) {
  count = std::min(count, segments_.size() - 1);  // never the active segment
  for (std::size_t i = 0; i < count; ++i) {
    auto seg = segments_.front();
    segments_.erase(segments_.begin());
    log::info("{}: deleting segment {} ({} bytes)", dir_.string(), seg->base_offset, seg->size);
    BULWARK_TRY(seg->remove_files());
  }
  log_start_offset_ = std::max(log_start_offset_, segments_.front()->base_offset);
  // An aborted transaction's entry goes with the segment holding its marker (as a .txnindex would).
  while (!aborted_txns_.empty() && aborted_txns_.front().last_offset < segments_.front()->base_offset)
    aborted_txns_.pop_front();
  if (count > 0) {
    if (auto synced = sync_directory(context_->env(), dir_); !synced.ok()) return sync_failed(synced.error());
  }
  return LogDone{};
}

LogResult<std::int64_t> PartitionLog::delete_records_before(std::int64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return offline_failure();
  if (offset > log_end_offset_ || offset < 0) {
    return LogFailure(LogError::offset_out_of_range, "cannot delete records before " + std::to_string(offset) +
                                                         ": log end offset is " + std::to_string(log_end_offset_));
  }
  if (offset <= log_start_offset_) return log_start_offset_;
  log_start_offset_ = offset;
  BULWARK_TRY(write_log_start_checkpoint_locked());
  // Everything below the new start may go; the active segment first makes way for an empty one.
  if (segments_.back()->size > 0 && segments_.back()->next_offset <= offset) {
    BULWARK_TRY(roll_locked(wall_clock_ms(), log_end_offset_));
  }
  std::size_t count = 0;
  while (count + 1 < segments_.size() && segments_[count + 1]->base_offset <= offset) {
    ++count;
  }
  BULWARK_TRY(delete_segments_below_locked(count));
  return log_start_offset_;
}

std::size_t PartitionLog::expire_producers(std::int64_t now_ms, std::int64_t expiration_ms) {
  std::lock_guard lock(mu_);
  std::vector<std::int64_t> expired;
  for (const auto& [id, producer] : producers_)
    if (producer.txn_first_offset < 0 && now_ms - producer.last_timestamp >= expiration_ms) expired.push_back(id);
  for (const auto id : expired) erase_producer_locked(id);
  return expired.size();
}

LogResult<std::size_t> PartitionLog::enforce_retention(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return std::size_t{0};  // nothing is deleted from an offline dir
  if (!config_.delete_by_retention) return std::size_t{0};      // cleanup.policy=compact: the cleaner's
  const std::size_t candidates = segments_.size() - 1;
  std::size_t by_time = 0;
  if (config_.retention_ms >= 0) {
    while (by_time < candidates) {
      const auto& seg = segments_[by_time];
      const std::int64_t largest = seg->max_timestamp >= 0 ? seg->max_timestamp : seg->last_modified_ms;
      if (now_ms - largest <= config_.retention_ms) break;
      ++by_time;
    }
  }
  std::size_t by_size = 0;
  if (config_.retention_bytes >= 0) {
    std::int64_t total = 0;
    for (const auto& seg : segments_) total += static_cast<std::int64_t>(seg->size);
    std::int64_t excess = total - config_.retention_bytes;
    while (by_size < candidates && excess - static_cast<std::int64_t>(segments_[by_size]->size) >= 0) {
      excess -= static_cast<std::int64_t>(segments_[by_size]->size);
      ++by_size;
    }
  }
  const std::size_t count = std::max(by_time, by_size);
  BULWARK_TRY(delete_segments_below_locked(count));
  return count;
}

LogStatus PartitionLog::truncate_to(std::int64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return offline_failure();
  if (offset >= log_end_offset_) return LogDone{};
  ++truncations_;
  first_dirty_offset_ = std::min(first_dirty_offset_, offset);  // what comes next is dirty
  if (offset <= log_start_offset_ || offset <= segments_.front()->base_offset) {
    BULWARK_TRY(start_over_locked(offset));  // nothing at or above the log start survives
  } else {
    while (segments_.size() > 1 && segments_.back()->base_offset >= offset) {
      BULWARK_TRY(segments_.back()->remove_files());
      segments_.pop_back();
    }
    auto& seg = segments_.back();
    if (auto activated = seg->activate(); !activated.ok()) return sync_failed(activated.error());
    auto located = seg->find_batch(offset);
    if (!located.ok()) return LogFailure(located.error());
    if (located->has_value()) BULWARK_TRY(seg->truncate_at((*located)->position, config_.index_interval_bytes));
    if (auto synced = seg->sync_log(); !synced.ok()) return sync_failed(synced.error());
  }
  if (auto synced = sync_directory(context_->env(), dir_); !synced.ok()) return sync_failed(synced.error());
  log_end_offset_ = std::max(segments_.back()->next_offset, segments_.back()->base_offset);
  if (log_start_offset_ > log_end_offset_) log_start_offset_ = log_end_offset_;
  unflushed_messages_ = 0;
  BULWARK_TRY(rebuild_batch_state_locked());
  write_epoch_checkpoint_locked();
  return LogDone{};
}

LogStatus PartitionLog::start_over_locked(std::int64_t offset) {
  while (!segments_.empty()) {
    BULWARK_TRY(segments_.back()->remove_files());
    segments_.pop_back();
  }
  auto seg = Segment::create(context_->env(), context_->files(), dir_, offset);
  if (!seg.ok()) return sync_failed(seg.error());
  (*seg)->created_ms = wall_clock_ms();
  segments_.push_back(*seg);
  log_start_offset_ = offset;
  return write_log_start_checkpoint_locked();
}

LogStatus PartitionLog::restart_at(std::int64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_ || context_->offline()) return offline_failure();
  if (offset < 0) return LogFailure(LogError::invalid_argument, "cannot restart the log at a negative offset");
  ++truncations_;
  BULWARK_TRY(start_over_locked(offset));
  if (auto synced = sync_directory(context_->env(), dir_); !synced.ok()) return sync_failed(synced.error());
  log_end_offset_ = offset;
  recovery_point_ = offset;
  unflushed_messages_ = 0;
  clear_producers_locked();
  publish_first_unstable_locked();
  epochs_.clear();
  write_epoch_checkpoint_locked();
  return LogDone{};
}

LogStatus PartitionLog::rebuild_batch_state_locked() {
  clear_producers_locked();
  epochs_.clear();
  for (const auto& seg : segments_) {
    std::uint64_t position = 0;  // scan_from walks the batches one after another from 0
    auto walked = seg->scan_from(0, [&](const wire::BatchHeader& h) {
      replay_batch_locked(*seg, h, position);
      position += h.total_size();
      note_batch_epoch_locked(h);
      return false;
    });
    if (!walked.ok()) return LogFailure(walked.error());
  }
  publish_first_unstable_locked();
  return LogDone{};
}

void PartitionLog::replay_batch_locked(const Segment& seg, const wire::BatchHeader& h, std::uint64_t position) {
  if (h.producer_id < 0) return;
  std::optional<TxnMarker> marker;
  if (h.is_control() && h.total_size() <= kMaxMarkerBatchBytes) {
    Bytes bytes(h.total_size());
    auto file = seg.log_file();
    if (file.ok() && (*file)->read_exact(position, bytes.data(), bytes.size()).ok()) {
      marker = parse_txn_marker(bytes);
    } else {
      log::warn("{}: cannot read the control batch at offset {}; its transaction stays open", dir_.string(),
                h.base_offset);
    }
  }
  auto& entry = producers_[h.producer_id];
  const std::int64_t open_before = entry.txn_first_offset;
  auto end = remember_batch(entry, h, marker ? &*marker : nullptr);
  if (entry.txn_first_offset != open_before) {
    if (open_before >= 0) ongoing_txns_.erase({open_before, h.producer_id});
    if (entry.txn_first_offset >= 0) ongoing_txns_.insert({entry.txn_first_offset, h.producer_id});
  }
  if (end && !end->commit) note_abort_locked(h.producer_id, end->first_offset, end->last_offset);
}

void PartitionLog::put_producer_locked(std::int64_t producer_id, ProducerState state) {
  erase_producer_locked(producer_id);
  if (state.txn_first_offset >= 0) ongoing_txns_.insert({state.txn_first_offset, producer_id});
  producers_[producer_id] = std::move(state);
}

void PartitionLog::erase_producer_locked(std::int64_t producer_id) {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return;
  if (it->second.txn_first_offset >= 0) ongoing_txns_.erase({it->second.txn_first_offset, producer_id});
  producers_.erase(it);
}

void PartitionLog::note_abort_locked(std::int64_t producer_id, std::int64_t first_offset, std::int64_t last_offset) {
  // Kafka's ProducerStateManager.lastStableOffset(completedTxn): the first transaction still open, else
  // just past the marker.
  const std::int64_t lso = ongoing_txns_.empty() ? last_offset + 1 : ongoing_txns_.begin()->first;
  aborted_txns_.push_back({producer_id, first_offset, last_offset, lso});
}

void PartitionLog::clear_producers_locked() {
  producers_.clear();
  ongoing_txns_.clear();
  aborted_txns_.clear();
}

void PartitionLog::publish_first_unstable_locked() {
  first_unstable_offset_.store(ongoing_txns_.empty() ? -1 : ongoing_txns_.begin()->first, std::memory_order_release);
}

std::vector<AbortedTxn> PartitionLog::aborted_transactions(std::int64_t from, std::int64_t upper) const {
  std::lock_guard lock(mu_);
  std::vector<AbortedTxn> out;
  auto it = std::lower_bound(aborted_txns_.begin(), aborted_txns_.end(), from,
                             [](const AbortedTxn& a, std::int64_t v) { return a.last_offset < v; });
  for (; it != aborted_txns_.end(); ++it)
    if (it->first_offset < upper) out.push_back(*it);
  return out;
}

std::vector<std::pair<std::int64_t, ProducerState>> PartitionLog::producer_states() const {
  std::lock_guard lock(mu_);
  return {producers_.begin(), producers_.end()};
}

void PartitionLog::note_batch_epoch_locked(const wire::BatchHeader& header) {
  const std::int32_t epoch = header.partition_leader_epoch;
  if (epoch < 0 || (!epochs_.empty() && epochs_.back().epoch >= epoch)) return;
  epochs_.push_back({epoch, header.base_offset});
}

// Kafka's format: version 0, the entry count, then "epoch startOffset" lines. Best effort: recovery
// rebuilds the epochs from the batch headers, so a failed write loses nothing.
void PartitionLog::write_epoch_checkpoint_locked() {
  std::string text = "0\n" + std::to_string(epochs_.size()) + "\n";
  for (const auto& e : epochs_) text += std::to_string(e.epoch) + " " + std::to_string(e.start_offset) + "\n";
  if (auto written = write_file_durably(context_->env(), dir_ / kEpochCheckpoint, as_bytes(text)); !written.ok())
    context_->report_refused("leader-epoch-checkpoint: " + written.error().message);
}

std::vector<EpochStart> PartitionLog::leader_epochs() const {
  std::lock_guard lock(mu_);
  return epochs_;
}

std::int32_t PartitionLog::latest_epoch() const {
  std::lock_guard lock(mu_);
  return epochs_.empty() ? -1 : epochs_.back().epoch;
}

// Kafka's LeaderEpochFileCache.endOffsetFor.
EpochEndOffset PartitionLog::end_offset_for_epoch(std::int32_t epoch) const {
  std::lock_guard lock(mu_);
  if (epoch < 0 || epochs_.empty()) return {};
  if (epochs_.back().epoch == epoch) return {epoch, log_end_offset_};
  auto higher = std::upper_bound(epochs_.begin(), epochs_.end(), epoch,
                                 [](std::int32_t e, const EpochStart& entry) { return e < entry.epoch; });
  if (higher == epochs_.end()) return {};  // above the latest epoch
  if (higher == epochs_.begin()) return {epoch, higher->start_offset};
  return {std::prev(higher)->epoch, higher->start_offset};
}

std::int64_t PartitionLog::log_start_offset() const {
  std::lock_guard lock(mu_);
  return log_start_offset_;
}

std::int64_t PartitionLog::recovery_point() const {
  std::lock_guard lock(mu_);
  return recovery_point_;
}

std::int64_t PartitionLog::log_end_offset() const {
  std::lock_guard lock(mu_);
  return log_end_offset_;
}

std::int64_t PartitionLog::size_bytes() const {
  std::lock_guard lock(mu_);
  std::int64_t total = 0;
  for (const auto& seg : segments_) total += static_cast<std::int64_t>(seg->size);
  return total;
}

std::size_t PartitionLog::segment_count() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

std::vector<std::int64_t> PartitionLog::segment_base_offsets() const {
  std::lock_guard lock(mu_);
  std::vector<std::int64_t> out;
  for (const auto& seg : segments_) out.push_back(seg->base_offset);
  return out;
}

std::optional<ProducerState> PartitionLog::producer_state(std::int64_t producer_id) const {
  std::lock_guard lock(mu_);
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return std::nullopt;
  return it->second;
}

LogConfig PartitionLog::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

void PartitionLog::set_config(const LogConfig& config) {
  std::lock_guard lock(mu_);
  config_ = config;
  // File positions in the index are u32 and relative offsets i32: keep segments below 2 GiB.
  config_.segment_bytes = std::clamp<std::int64_t>(config_.segment_bytes, 1, INT32_MAX);
}

void PartitionLog::close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (unflushed_messages_ > 0 && !segments_.empty() && !context_->offline()) {
    if (auto synced = segments_.back()->sync_log(); !synced.ok()) {
      (void)sync_failed(synced.error());
    } else {
      recovery_point_ = log_end_offset_;
    }
  }
  for (const auto& seg : segments_) {
    if (auto idx = seg->write_index_tail(); !idx.ok()) log::warn("{}", idx.error().message);
    seg->release_cached_file();
  }
  segments_.clear();
  closed_ = true;
}

}  // namespace bulwark::storage
