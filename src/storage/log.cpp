#include "storage/log.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "base/files.h"
#include "base/log.h"
#include "storage/segment.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

constexpr const char* kLogStartCheckpoint = "log-start-offset";
constexpr std::size_t kProducerBatchesKept = 5;  // as Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sequence numbers wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
std::int32_t sequence_add(std::int32_t sequence, std::int32_t delta) {
  if (sequence > INT32_MAX - delta) return delta - (INT32_MAX - sequence) - 1;
  return sequence + delta;
}

void remember_producer_batch(std::map<std::int64_t, ProducerState>& producers, const wire::BatchHeader& h) {
  if (h.producer_id < 0) return;
  auto& entry = producers[h.producer_id];
  if (h.producer_epoch != entry.epoch) {
    entry.epoch = h.producer_epoch;
    entry.batches.clear();
  }
  if (h.base_sequence >= 0) {
    entry.batches.push_back({h.base_sequence, sequence_add(h.base_sequence, h.last_offset_delta), h.base_offset,
                             h.last_offset()});
    while (entry.batches.size() > kProducerBatchesKept) entry.batches.pop_front();
  }
  entry.last_timestamp = h.max_timestamp;
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

std::optional<std::int64_t> parse_i64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

const char* to_string(LogError error) {
  switch (error) {
    case LogError::corrupt_message: return "corrupt message";
    case LogError::message_too_large: return "message too large";
    case LogError::out_of_order_sequence: return "out of order sequence number";
    case LogError::invalid_producer_epoch: return "invalid producer epoch";
    case LogError::offset_out_of_range: return "offset out of range";
    case LogError::invalid_argument: return "invalid argument";
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

PartitionLog::PartitionLog(std::filesystem::path dir, LogConfig config) : dir_(std::move(dir)), config_(config) {}

PartitionLog::~PartitionLog() { close(); }

LogResult<std::shared_ptr<PartitionLog>> PartitionLog::open(const std::filesystem::path& dir, const LogConfig& config) {
  if (config.segment_bytes <= 0 || config.segment_bytes > INT32_MAX) {
    return LogFailure(LogError::invalid_argument, "log.segment.bytes must be in 1.." + std::to_string(INT32_MAX));
  }
  BULWARK_TRY(make_directories(dir));
  std::shared_ptr<PartitionLog> log(new PartitionLog(dir, config));
  std::lock_guard lock(log->mu_);
  BULWARK_TRY(log->recover_locked());
  return log;
}

LogStatus PartitionLog::recover_locked() {
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

  producers_.clear();
  segments_.clear();
  std::int64_t next = 0;
  for (std::size_t i = 0; i < bases.size(); ++i) {
    auto seg = Segment::open(dir_, bases[i]);
    if (!seg.ok()) return LogFailure(seg.error());
    const bool last = i + 1 == bases.size();
    auto recovery = (*seg)->recover(/*verify_crc=*/last, /*sealed=*/!last, next, config_.index_interval_bytes,
                                    [this](const wire::BatchHeader& h) { remember_producer_batch(producers_, h); });
    if (!recovery.ok()) return LogFailure(recovery.error());
    next = std::max(next, (*seg)->next_offset);
    segments_.push_back(*seg);
    if (!last && recovery->truncated_bytes > 0) {
      // A hole in an older segment: everything after it would leave a gap in the offsets.
      for (std::size_t j = i + 1; j < bases.size(); ++j) {
        log::warn("{}: removing segment {} after the damaged segment {}", dir_.string(), bases[j], bases[i]);
        auto later = Segment::open(dir_, bases[j]);
        if (later.ok()) BULWARK_TRY((*later)->remove_files());
      }
      break;
    }
  }
  if (segments_.empty()) {
    auto seg = Segment::create(dir_, std::max<std::int64_t>(checkpoint, 0));
    if (!seg.ok()) return LogFailure(seg.error());
    (*seg)->created_ms = wall_clock_ms();
    segments_.push_back(*seg);
    BULWARK_TRY(sync_directory(dir_));
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

  std::lock_guard lock(mu_);
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");

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
  for (const auto& h : headers) {
    if (h.producer_id < 0) continue;
    if (!staged.count(h.producer_id)) {
      auto it = producers_.find(h.producer_id);
      if (it != producers_.end()) staged[h.producer_id] = it->second;
    }
    if (options.assign_offsets && h.base_sequence >= 0) {
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
    remember_producer_batch(staged, h);
  }

  const std::int64_t first_offset = headers.front().base_offset;
  const std::int64_t last_offset = headers.back().last_offset();
  {
    Segment* active = segments_.back().get();
    const std::int64_t rolling = active->rolling_timestamp >= 0 ? active->rolling_timestamp : active->created_ms;
    const bool full = active->size + data.size() > static_cast<std::uint64_t>(config_.segment_bytes);
    const bool old = config_.segment_ms >= 0 && options.now_ms - rolling >= config_.segment_ms;
    const bool far = last_offset - active->base_offset > INT32_MAX;
    if (active->size > 0 && (full || old || far)) BULWARK_TRY(roll_locked(options.now_ms, first_offset));
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

  const std::uint64_t start = active->size;
  if (auto written = active->log.write_all(start, data); !written.ok()) {
    (void)active->log.truncate(start);  // best effort: leave no partial batch behind
    return LogFailure(written.error());
  }
  std::int32_t record_count = 0;
  pos = start;
  for (const auto& h : headers) {
    active->track(h, pos, config_.index_interval_bytes);
    pos += h.total_size();
    record_count += h.record_count;
  }
  if (auto idx = active->write_index_tail(); !idx.ok()) {
    // The index is rebuilt from the log at the next open; the data itself is written.
    log::warn("{}", idx.error().message);
  }
  log_end_offset_ = last_offset + 1;
  for (auto& [id, state] : staged) producers_[id] = std::move(state);
  unflushed_messages_ += record_count;
  if (unflushed_messages_ >= config_.flush_interval_messages) BULWARK_TRY(flush_locked(options.now_ms));

  AppendResult result;
  result.base_offset = first_offset;
  result.last_offset = last_offset;
  result.log_append_time = append_time ? options.now_ms : -1;
  result.log_start_offset = log_start_offset_;
  result.record_count = record_count;
  return result;
}

LogStatus PartitionLog::roll_locked(std::int64_t now_ms, std::int64_t new_base) {
  auto& active = segments_.back();
  if (active->size == 0 && active->base_offset == new_base) return LogDone{};
  if (active->size > 0) {
    BULWARK_TRY(active->seal());
  } else {
    BULWARK_TRY(active->remove_files());
    segments_.pop_back();
  }
  auto seg = Segment::create(dir_, new_base);
  if (!seg.ok()) return LogFailure(seg.error());
  (*seg)->created_ms = now_ms;
  segments_.push_back(*seg);
  BULWARK_TRY(sync_directory(dir_));
  unflushed_messages_ = 0;  // seal() synced everything written so far
  return LogDone{};
}

LogStatus PartitionLog::flush_locked(std::int64_t now_ms) {
  if (closed_ || segments_.empty()) return LogDone{};
  BULWARK_TRY(segments_.back()->sync_log());
  unflushed_messages_ = 0;
  last_flush_ms_ = now_ms;
  return LogDone{};
}

LogStatus PartitionLog::flush() {
  std::lock_guard lock(mu_);
  return flush_locked(wall_clock_ms());
}

LogStatus PartitionLog::maybe_flush(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (config_.flush_interval_ms < 0 || unflushed_messages_ == 0) return LogDone{};
  if (now_ms - last_flush_ms_ < config_.flush_interval_ms) return LogDone{};
  return flush_locked(now_ms);
}

LogResult<FetchData> PartitionLog::read(std::int64_t fetch_offset, std::size_t max_bytes,
                                        std::int64_t max_offset_exclusive) {
  for (int attempt = 0;; ++attempt) {
    FetchData out;
    std::shared_ptr<Segment> seg;
    std::uint64_t start = 0, end = 0, first_size = 0, generation = 0;
    {
      std::lock_guard lock(mu_);
      if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
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
    }
    // Copy outside the lock: [start, end) is committed and the segment's descriptor lives while we hold it.
    const std::uint64_t length = std::min<std::uint64_t>(end - start, std::max<std::uint64_t>(max_bytes, first_size));
    out.bytes.resize(length);
    if (auto read = seg->log.read_exact(start, out.bytes.data(), length); !read.ok()) {
      std::lock_guard lock(mu_);
      if (truncations_ != generation && attempt < 3) continue;
      return LogFailure(read.error());
    }
    {
      std::lock_guard lock(mu_);
      if (truncations_ != generation && attempt < 3) continue;
    }
    // Whole batches only: cut a batch that max_bytes split.
    std::size_t keep = 0;
    while (out.bytes.size() - keep >= wire::kBatchLogOverhead) {
      wire::BatchHeader h;
      ByteReader r(ByteView(out.bytes).subspan(keep + wire::kBatchLengthOffset, 4));
      r.read_i32(h.batch_length);
      const std::size_t total = static_cast<std::size_t>(h.batch_length) + wire::kBatchLogOverhead;
      if (h.batch_length <= 0 || keep + total > out.bytes.size()) break;
      keep += total;
    }
    out.bytes.resize(keep);
    return out;
  }
}

LogResult<std::optional<TimestampOffset>> PartitionLog::offset_for_timestamp(std::int64_t timestamp) {
  std::lock_guard lock(mu_);
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
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
      BULWARK_TRY(seg->log.read_exact(lb.position, batch.data(), batch.size()));
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
  BULWARK_TRY(write_file_atomic(dir_ / kLogStartCheckpoint, std::to_string(log_start_offset_) + "\n",
                                kPublicFileMode, Overwrite::allow));
  BULWARK_TRY(sync_directory(dir_));
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
  if (count > 0) BULWARK_TRY(sync_directory(dir_));
  return LogDone{};
}

LogResult<std::int64_t> PartitionLog::delete_records_before(std::int64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
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

LogResult<std::size_t> PartitionLog::enforce_retention(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
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
  if (closed_) return LogFailure(LogError::io, dir_.string() + " is closed");
  if (offset >= log_end_offset_) return LogDone{};
  ++truncations_;
  if (offset <= log_start_offset_ || offset <= segments_.front()->base_offset) {
    // Nothing at or above the log start survives: start over, empty, at offset.
    while (!segments_.empty()) {
      BULWARK_TRY(segments_.back()->remove_files());
      segments_.pop_back();
    }
    auto seg = Segment::create(dir_, offset);
    if (!seg.ok()) return LogFailure(seg.error());
    (*seg)->created_ms = wall_clock_ms();
    segments_.push_back(*seg);
    log_start_offset_ = offset;
    BULWARK_TRY(write_log_start_checkpoint_locked());
  } else {
    while (segments_.size() > 1 && segments_.back()->base_offset >= offset) {
      BULWARK_TRY(segments_.back()->remove_files());
      segments_.pop_back();
    }
    auto& seg = segments_.back();
    auto located = seg->find_batch(offset);
    if (!located.ok()) return LogFailure(located.error());
    if (located->has_value()) BULWARK_TRY(seg->truncate_at((*located)->position, config_.index_interval_bytes));
    BULWARK_TRY(seg->log.datasync());
  }
  BULWARK_TRY(sync_directory(dir_));
  log_end_offset_ = std::max(segments_.back()->next_offset, segments_.back()->base_offset);
  if (log_start_offset_ > log_end_offset_) log_start_offset_ = log_end_offset_;
  unflushed_messages_ = 0;
  return rebuild_producer_state_locked();
}

LogStatus PartitionLog::rebuild_producer_state_locked() {
  producers_.clear();
  for (const auto& seg : segments_) {
    auto walked = seg->scan_from(0, [this](const wire::BatchHeader& h) {
      remember_producer_batch(producers_, h);
      return false;
    });
    if (!walked.ok()) return LogFailure(walked.error());
  }
  return LogDone{};
}

std::int64_t PartitionLog::log_start_offset() const {
  std::lock_guard lock(mu_);
  return log_start_offset_;
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
  if (unflushed_messages_ > 0 && !segments_.empty()) {
    if (auto synced = segments_.back()->sync_log(); !synced.ok()) log::warn("{}", synced.error().message);
  }
  for (const auto& seg : segments_) {
    if (auto idx = seg->write_index_tail(); !idx.ok()) log::warn("{}", idx.error().message);
  }
  segments_.clear();
  closed_ = true;
}

}  // namespace bulwark::storage
