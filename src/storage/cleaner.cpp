// The log cleaner: planning (which segments, is the log due), the key map, the batch filter, the
// crash-safe swap and the cleaner threads. See storage/cleaner.h and docs/storage.md.
#include "storage/cleaner.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/files.h"
#include "base/log.h"
#include "storage/env.h"
#include "storage/file.h"
#include "storage/segment.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

constexpr const char* kCleanerCheckpoint = "cleaner-offset-checkpoint";
constexpr const char* kCleanedSuffix = ".cleaned";
constexpr const char* kSwapSuffix = ".swap";

// A 128-bit key hash (Kafka keeps 16 bytes of MD5): two independent 64-bit hashes, so a collision,
// which would drop a live key's record, is as unlikely as Kafka's.
struct KeyHash {
  std::uint64_t a = 0, b = 0;
  bool operator==(const KeyHash&) const = default;
};
struct KeyHashHasher {
  std::size_t operator()(const KeyHash& k) const { return static_cast<std::size_t>(k.a); }
};

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

KeyHash hash_key(ByteView key) {
  std::uint64_t fnv = 0xcbf29ce484222325ull;  // FNV-1a 64
  std::uint64_t other = 0x9e3779b97f4a7c15ull ^ key.size();
  for (std::uint8_t c : key) {
    fnv = (fnv ^ c) * 0x100000001b3ull;
    other = mix64(other + c);
  }
  return {mix64(fnv), other};
}

// Kafka's SkimpyOffsetMap: key hash -> the offset of its last record in the mapped range.
class KeyMap {
 public:
  explicit KeyMap(std::size_t budget_bytes) : capacity_(std::max<std::size_t>(budget_bytes / kKeyMapBytesPerEntry, 1)) {}
  bool fits(std::size_t more) const { return map_.empty() || map_.size() + more <= capacity_; }
  void put(ByteView key, std::int64_t offset) { map_[hash_key(key)] = offset; }
  std::optional<std::int64_t> get(ByteView key) const {
    auto it = map_.find(hash_key(key));
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }

 private:
  const std::size_t capacity_;
  std::unordered_map<KeyHash, std::int64_t, KeyHashHasher> map_;
};

// Visits every batch of a sealed segment in order: (header, whole batch bytes).
Status for_each_batch(const Segment& seg, IoThrottle* throttle, const std::atomic<bool>* stop,
                      const std::function<Status(const wire::BatchHeader&, ByteView)>& visit) {
  auto file = seg.log_file();
  if (!file.ok()) return file.error();
  Bytes batch;
  for (std::uint64_t pos = 0; pos < seg.size;) {
    if (stop && stop->load()) return make_error(ErrorKind::unavailable, "the cleaner is stopping");
    auto header = seg.read_header(**file, pos);
    if (!header.ok()) return header.error();
    batch.resize(header->total_size());
    BULWARK_TRY((*file)->read_exact(pos, batch.data(), batch.size()));
    if (throttle) throttle->acquire(batch.size(), stop);
    BULWARK_TRY(visit(*header, ByteView(batch)));
    pos += batch.size();
  }
  return Status::success();
}

template <class T>
void store_be_at(std::uint8_t* p, T value) {
  auto u = static_cast<std::make_unsigned_t<T>>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::uint8_t>(u >> (8 * (sizeof(T) - 1 - i)));
}

// A batch with its records gone but its header kept (Kafka's RETAIN_EMPTY): the producer's last
// sequence and epoch survive for idempotence after a restart. No records, so no codec.
Bytes empty_batch(ByteView batch) {
  Bytes out(batch.begin(), batch.begin() + wire::kBatchHeaderSize);
  store_be_at<std::int32_t>(out.data() + wire::kBatchLengthOffset,
                            static_cast<std::int32_t>(wire::kBatchHeaderSize - wire::kBatchLogOverhead));
  const std::int16_t attributes = static_cast<std::int16_t>(
      ((out[wire::kBatchAttributesOffset] << 8) | out[wire::kBatchAttributesOffset + 1]) & ~0x7);
  store_be_at<std::int16_t>(out.data() + wire::kBatchAttributesOffset, attributes);
  store_be_at<std::int32_t>(out.data() + wire::kBatchHeaderSize - 4, 0);  // recordCount
  store_be_at<std::uint32_t>(out.data() + wire::kBatchCrcOffset,
                             crc32c(ByteView(out).subspan(wire::kBatchAttributesOffset)));
  return out;
}

// The aborted transactions of the log, by producer: (first offset, marker offset).
using AbortedRanges = std::multimap<std::int64_t, std::pair<std::int64_t, std::int64_t>>;

// A data batch of an aborted transaction (Kafka's cleaner discards them: no consumer may see them, and
// their keys must not supersede committed records).
bool in_aborted_txn(const AbortedRanges& aborted, const wire::BatchHeader& h) {
  if (!h.is_transactional() || h.is_control() || h.producer_id < 0) return false;
  auto [from, to] = aborted.equal_range(h.producer_id);
  for (auto it = from; it != to; ++it)
    if (it->second.first <= h.base_offset && h.last_offset() <= it->second.second) return true;
  return false;
}

struct FilterContext {
  const KeyMap* map = nullptr;
  std::int64_t map_end = 0;         // records at or past this were not mapped: kept
  bool drop_tombstones = false;     // the segment's tombstones are past delete.retention.ms
  const std::set<std::pair<std::int64_t, std::int64_t>>* producer_last = nullptr;  // (id, last offset)
  const AbortedRanges* aborted = nullptr;
};

struct Filtered {
  enum class Kind { keep, drop, rewrite } kind = Kind::keep;
  Bytes bytes;  // for rewrite
  std::int64_t records_in = 0, records_out = 0;
  bool kept_tombstone = false;
};

bool retain_record(const wire::Record& r, const FilterContext& ctx) {
  if (!r.key || r.offset >= ctx.map_end) return true;  // keyless records are kept: nothing supersedes them
  auto last = ctx.map->get(ByteView(*r.key));
  if (last && r.offset < *last) return false;  // a later record of the key exists
  return r.value.has_value() || !ctx.drop_tombstones;
}

// Kafka's MemoryRecords.filterTo for one batch. Control batches stay as they are (transaction markers
// are kept); the batches of aborted transactions go (their header stays when it is the producer's last).
Result<Filtered> filter_batch(const wire::BatchHeader& h, ByteView batch, const FilterContext& ctx) {
  Filtered out;
  if (h.is_control()) return out;
  if (ctx.aborted && in_aborted_txn(*ctx.aborted, h)) {
    out.records_in = h.record_count;
    const bool producers_last = ctx.producer_last->count({h.producer_id, h.last_offset()}) > 0;
    out.kind = producers_last ? Filtered::Kind::rewrite : Filtered::Kind::drop;
    if (producers_last) out.bytes = empty_batch(batch);
    return out;
  }
  auto records = wire::decode_records(batch);
  if (!records.ok()) return records.error();
  std::vector<wire::Record> kept;
  for (auto& r : *records) {
    if (!retain_record(r, ctx)) continue;
    out.kept_tombstone |= !r.value.has_value();
    kept.push_back(std::move(r));
  }
  out.records_in = static_cast<std::int64_t>(records->size());
  out.records_out = static_cast<std::int64_t>(kept.size());
  if (kept.size() == records->size()) return out;
  if (kept.empty()) {
    const bool producers_last = h.producer_id >= 0 && ctx.producer_last->count({h.producer_id, h.last_offset()});
    out.kind = producers_last ? Filtered::Kind::rewrite : Filtered::Kind::drop;
    if (producers_last) out.bytes = empty_batch(batch);
    return out;
  }
  wire::BatchOptions o;
  o.compression = h.compression();
  o.base_offset = h.base_offset;
  o.producer_id = h.producer_id;
  o.producer_epoch = h.producer_epoch;
  o.base_sequence = h.base_sequence;
  o.transactional = h.is_transactional();
  o.partition_leader_epoch = h.partition_leader_epoch;
  o.deltas_from_base_offset = true;  // offsets stay as they were
  o.last_offset_delta = h.last_offset_delta;
  auto built = wire::encode_batch(kept, o);
  if (!built.ok()) return built.error();
  if (h.log_append_time()) wire::set_log_append_time(std::span<std::uint8_t>(*built), h.max_timestamp);
  out.kind = Filtered::Kind::rewrite;
  out.bytes = std::move(*built);
  return out;
}

std::string cleaned_path_name(std::int64_t base) { return segment_file_name(base, ".log") + kCleanedSuffix; }
std::string swap_path_name(std::int64_t base) { return segment_file_name(base, ".log") + kSwapSuffix; }

std::optional<std::int64_t> parse_offset(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

// One past the last offset of the batches in a (complete, fdatasync'ed) swap file; base when empty.
Result<std::int64_t> swap_next_offset(Env* env, const std::filesystem::path& path, std::int64_t base) {
  auto file = File::open(env, path, File::Mode::open_existing);
  if (!file.ok()) return file.error();
  auto size = file->size();
  if (!size.ok()) return size.error();
  std::int64_t next = base;
  std::uint8_t header[wire::kBatchHeaderSize];
  for (std::uint64_t pos = 0; pos + wire::kBatchHeaderSize <= *size;) {
    BULWARK_TRY(file->read_exact(pos, header, sizeof(header)));
    wire::BatchHeader h;
    if (!parse_header_prefix(header, h)) break;
    next = h.last_offset() + 1;
    pos += h.total_size();
  }
  return next;
}

Status complete_swap(Env* env, const std::filesystem::path& dir, std::int64_t base,
                     const std::vector<std::int64_t>& segment_bases) {
  const auto swap = dir / swap_path_name(base);
  auto next = swap_next_offset(env, swap, base);
  if (!next.ok()) return next.error();
  // The swap replaces every segment whose base lies in [base, next): Kafka's rule.
  const std::int64_t end = std::max(*next, base + 1);
  for (std::int64_t b : segment_bases) {
    if (b < base || b >= end) continue;
    for (const char* suffix : {".log", ".index", ".timeindex"}) BULWARK_TRY(remove_file(env, dir / segment_file_name(b, suffix)));
  }
  BULWARK_TRY(sync_directory(env, dir));
  BULWARK_TRY(rename_file(env, swap, dir / segment_file_name(base, ".log")));
  log::info("{}: completed the swap of cleaned segment {} left by a crash", dir.string(), base);
  return Status::success();
}

// The mtime of the cleaned file is the newest of the segments it replaces (as Kafka), so the
// delete.retention.ms clock of its tombstones is not restarted by each cleaning.
void set_mtime_ms(const std::filesystem::path& path, std::int64_t ms) {
  if (ms <= 0) return;
  timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ms / 1000;
  times[0].tv_nsec = times[1].tv_nsec = (ms % 1000) * 1000000;
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0)
    log::warn("{}: cannot set its modification time (tombstones there may be kept longer)", path.string());
}

std::string log_name(const std::filesystem::path& dir) { return dir.filename().string(); }

std::int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ----- IoThrottle

void IoThrottle::acquire(std::size_t n, const std::atomic<bool>* stop) {
  if (rate_ <= 0 || rate_ >= 1e300) return;
  double wait_s = 0;
  {
    std::lock_guard lock(mu_);
    const double now = static_cast<double>(monotonic_ms()) / 1000.0;
    if (window_start_s_ < 0 || now - window_start_s_ >= 1.0) {
      window_start_s_ = now;
      window_bytes_ = 0;
    }
    window_bytes_ += static_cast<double>(n);
    wait_s = window_bytes_ / rate_ - (now - window_start_s_);
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::max(wait_s, 0.0));
  while (std::chrono::steady_clock::now() < until && !(stop && stop->load()))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// ----- recovery

LogStatus recover_cleaner_files(Env* env, const std::filesystem::path& dir) {
  std::vector<std::int64_t> bases, swaps;
  std::vector<std::filesystem::path> cleaned;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    auto base = name.size() >= 24 ? parse_offset(name.substr(0, 20)) : std::nullopt;
    if (!base || name.substr(20, 4) != ".log") continue;
    const std::string rest = name.substr(24);
    if (rest.empty()) bases.push_back(*base);
    if (rest == kSwapSuffix) swaps.push_back(*base);
    if (rest == kCleanedSuffix) cleaned.push_back(entry.path());
  }
  if (ec) return LogFailure(LogError::io, "cannot list " + dir.string() + ": " + ec.message());
  // Not yet committed: the old segments are intact.
  for (const auto& path : cleaned) BULWARK_TRY(remove_file(env, path));
  std::sort(swaps.begin(), swaps.end());
  for (std::int64_t base : swaps) BULWARK_TRY(complete_swap(env, dir, base, bases));
  if (!cleaned.empty() || !swaps.empty()) BULWARK_TRY(sync_directory(env, dir));
  return LogDone{};
}

std::int64_t read_cleaner_checkpoint(const std::filesystem::path& dir) {
  auto text = read_file(dir / kCleanerCheckpoint);
  if (!text.ok()) return -1;
  return parse_offset(*text).value_or(-1);
}

// ----- PartitionLog::clean

struct PartitionLog::CleanedGroup {
  std::vector<std::shared_ptr<Segment>> segments;  // replaced, consecutive in segments_
  std::filesystem::path cleaned;
  std::int64_t base = 0;
};

namespace {

// What clean() decided under the lock; the work then runs without it.
struct CleanPlan {
  std::vector<std::shared_ptr<Segment>> segments;  // the cleanable sealed segments, from the first one
  std::int64_t first_dirty = 0, end = 0;
  std::set<std::pair<std::int64_t, std::int64_t>> producer_last;
  AbortedRanges aborted;
  LogConfig config;
  std::uint64_t truncations = 0;
  double ratio = 0;
};

// The log file's mtime now (Segment::last_modified_ms is only read at open): when it was last written.
std::int64_t segment_mtime_ms(const Segment& s) {
  struct stat st {};
  if (::stat(s.log_path.c_str(), &st) != 0) return s.last_modified_ms;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

std::int64_t segment_largest_time(const Segment& s) { return s.max_timestamp >= 0 ? s.max_timestamp : segment_mtime_ms(s); }
std::int64_t segment_first_time(const Segment& s) { return s.rolling_timestamp >= 0 ? s.rolling_timestamp : s.created_ms; }

// Maps the keys of [first_dirty, ...) until the map is full (at a batch boundary). Returns the end.
Result<std::int64_t> build_key_map(const CleanPlan& plan, KeyMap& map, const CleanRequest& request) {
  std::int64_t map_end = plan.first_dirty;
  bool full = false;
  for (const auto& seg : plan.segments) {
    if (seg->next_offset <= plan.first_dirty || full) continue;
    auto visited = for_each_batch(*seg, request.throttle, request.stop,
                                  [&](const wire::BatchHeader& h, ByteView batch) -> Status {
                                    if (full || h.last_offset() < plan.first_dirty) return Status::success();
                                    if (!h.is_control() && !in_aborted_txn(plan.aborted, h)) {
                                      if (!map.fits(static_cast<std::size_t>(h.record_count))) {
                                        full = true;
                                        return Status::success();
                                      }
                                      auto records = wire::decode_records(batch);
                                      if (!records.ok()) return records.error();
                                      for (const auto& r : *records)
                                        if (r.key && r.offset >= plan.first_dirty) map.put(ByteView(*r.key), r.offset);
                                    }
                                    map_end = h.last_offset() + 1;
                                    return Status::success();
                                  });
    if (!visited.ok()) return visited.error();
  }
  return full ? map_end : plan.end;
}

}  // namespace

std::int64_t PartitionLog::first_dirty_offset() const {
  std::lock_guard lock(mu_);
  return std::max(first_dirty_offset_, log_start_offset_);
}

LogResult<CleanResult> PartitionLog::clean(const CleanRequest& request) {
  CleanResult result;
  CleanPlan plan;
  {
    std::lock_guard lock(mu_);
    if (closed_ || context_->offline()) return offline_failure();
    if (!config_.compact) {
      result.reason = "cleanup.policy has no compact";
      return result;
    }
    if (cleaning_) {
      result.reason = "already being cleaned";
      return result;
    }
    plan.config = config_;
    plan.truncations = truncations_;
    plan.first_dirty = std::max(first_dirty_offset_, log_start_offset_);
    // Never past the last stable offset: an open transaction's records are not yet decided.
    std::int64_t bound = std::min(request.cleanable_end, segments_.back()->base_offset);
    if (const std::int64_t unstable = first_unstable_offset(); unstable >= 0) bound = std::min(bound, unstable);
    std::int64_t dirty_bytes = 0, clean_bytes = 0;
    bool overdue = false;
    for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
      const auto& seg = segments_[i];
      if (seg->next_offset > bound) break;  // not wholly below the high watermark
      if (plan.config.min_compaction_lag_ms > 0 &&
          request.now_ms - segment_largest_time(*seg) < plan.config.min_compaction_lag_ms)
        break;
      plan.segments.push_back(seg);
      plan.end = std::max(seg->next_offset, segments_[i + 1]->base_offset);
      const bool dirty = seg->next_offset > plan.first_dirty && seg->size > 0;
      (dirty ? dirty_bytes : clean_bytes) += static_cast<std::int64_t>(seg->size);
      if (dirty && plan.config.max_compaction_lag_ms < INT64_MAX &&
          request.now_ms - segment_first_time(*seg) > plan.config.max_compaction_lag_ms)
        overdue = true;
    }
    const bool tombstones_due = tombstone_deadline_ms_ >= 0 && request.now_ms >= tombstone_deadline_ms_;
    plan.ratio = dirty_bytes + clean_bytes > 0 ? static_cast<double>(dirty_bytes) / static_cast<double>(dirty_bytes + clean_bytes) : 0;
    if (plan.segments.empty() || (dirty_bytes == 0 && !tombstones_due)) {
      result.reason = "nothing cleanable";
      return result;
    }
    if (!overdue && !tombstones_due && !request.ignore_dirty_ratio && plan.ratio < plan.config.min_cleanable_dirty_ratio) {
      result.reason = "dirty ratio below min.cleanable.dirty.ratio";
      return result;
    }
    plan.first_dirty = std::min(plan.first_dirty, plan.end);
    for (const auto& [id, state] : producers_)
      if (!state.batches.empty()) plan.producer_last.insert({id, state.batches.back().last_offset});
    for (const auto& a : aborted_txns_)
      if (a.first_offset < plan.end) plan.aborted.insert({a.producer_id, {a.first_offset, a.last_offset}});
    cleaning_ = true;
  }
  struct Done {
    PartitionLog* log;
    ~Done() {
      std::lock_guard lock(log->mu_);
      log->cleaning_ = false;
    }
  } done{this};
  log::info("cleaning log {}: offsets [{}, {}) in {} segments, dirty ratio {:.3f}", log_name(dir_),
            plan.segments.front()->base_offset, plan.end, plan.segments.size(), plan.ratio);
  result.first_dirty = plan.first_dirty;
  result.dirty_ratio = plan.ratio;

  KeyMap map(request.key_map_bytes);
  auto map_end = build_key_map(plan, map, request);
  if (!map_end.ok()) return LogFailure(map_end.error());
  result.dirty_end = *map_end;
  result.passes = 1;

  // Groups of consecutive segments that fit one segment (Kafka's groupSegmentsBySize).
  std::vector<CleanedGroup> groups;
  std::int64_t group_bytes = 0;
  for (const auto& seg : plan.segments) {
    if (seg->base_offset >= *map_end && seg->next_offset > plan.first_dirty) break;  // not mapped: later
    const bool fits = !groups.empty() && group_bytes + static_cast<std::int64_t>(seg->size) <= plan.config.segment_bytes &&
                      seg->next_offset - groups.back().base < INT32_MAX;
    if (!fits) {
      groups.push_back({{}, dir_ / cleaned_path_name(seg->base_offset), seg->base_offset});
      group_bytes = 0;
    }
    groups.back().segments.push_back(seg);
    group_bytes += static_cast<std::int64_t>(seg->size);
  }

  Env* env = context_->env();
  std::int64_t tombstone_deadline = -1;
  auto drop_cleaned = [&] {
    for (const auto& g : groups) (void)remove_file(env, g.cleaned);
  };
  for (const auto& g : groups) {
    auto out = File::open(env, g.cleaned, File::Mode::create_truncate);
    if (!out.ok()) return drop_cleaned(), LogFailure(out.error());
    std::uint64_t pos = 0;
    std::int64_t newest = 0;
    bool kept_tombstone = false;
    for (const auto& seg : g.segments) newest = std::max(newest, segment_mtime_ms(*seg));
    for (const auto& seg : g.segments) {
      FilterContext ctx{&map, *map_end,
                        seg->next_offset <= plan.first_dirty &&
                            request.now_ms - segment_mtime_ms(*seg) > plan.config.delete_retention_ms,
                        &plan.producer_last, &plan.aborted};
      auto written = for_each_batch(*seg, request.throttle, request.stop,
                                    [&](const wire::BatchHeader& h, ByteView batch) -> Status {
                                      auto f = filter_batch(h, batch, ctx);
                                      if (!f.ok()) return f.error();
                                      result.records_in += h.is_control() ? 0 : f->records_in;
                                      result.records_out += h.is_control() ? 0 : f->records_out;
                                      kept_tombstone |= f->kept_tombstone;
                                      if (f->kind == Filtered::Kind::drop) return Status::success();
                                      ByteView bytes = f->kind == Filtered::Kind::keep ? batch : ByteView(f->bytes);
                                      BULWARK_TRY(out->write_all(pos, bytes));
                                      pos += bytes.size();
                                      return Status::success();
                                    });
      if (!written.ok()) return drop_cleaned(), LogFailure(written.error());
      result.bytes_in += static_cast<std::int64_t>(seg->size);
    }
    // When the tombstones kept here may go: the cleaned segment carries the group's newest mtime.
    if (kept_tombstone && plan.config.delete_retention_ms < INT64_MAX - newest) {
      const std::int64_t due = newest + plan.config.delete_retention_ms + 1;
      tombstone_deadline = tombstone_deadline < 0 ? due : std::min(tombstone_deadline, due);
    }
    if (auto synced = out->datasync(); !synced.ok()) return drop_cleaned(), LogFailure(synced.error());
    out->close();
    set_mtime_ms(g.cleaned, newest);
    result.bytes_out += static_cast<std::int64_t>(pos);
    result.segments_in += g.segments.size();
  }
  result.segments_out = groups.size();
  if (request.crash_after && request.crash_after("cleaned")) return LogFailure(LogError::io, "stopped after cleaned");

  std::lock_guard lock(mu_);
  if (closed_ || context_->offline() || truncations_ != plan.truncations) {
    drop_cleaned();
    result.reason = "the log changed while it was cleaned";
    return result;
  }
  for (const auto& seg : plan.segments) {
    auto it = std::find(segments_.begin(), segments_.end() - 1, seg);
    if (it == segments_.end() - 1) {  // retention or truncation took a segment meanwhile
      drop_cleaned();
      result.reason = "the log changed while it was cleaned";
      return result;
    }
  }
  BULWARK_TRY(swap_cleaned_locked(groups, request));
  first_dirty_offset_ = std::max(first_dirty_offset_, *map_end);
  tombstone_deadline_ms_ = tombstone_deadline;
  const std::string checkpoint = std::to_string(first_dirty_offset_) + "\n";
  // Best effort: a lost checkpoint only makes the next cleaning map keys again.
  if (auto written = write_file_durably(env, dir_ / kCleanerCheckpoint, as_bytes(checkpoint)); !written.ok())
    log::warn("{}: writing the cleaner checkpoint: {}", dir_.string(), written.error().message);
  result.cleaned = true;
  return result;
}

LogStatus PartitionLog::swap_cleaned_locked(std::vector<CleanedGroup>& groups, const CleanRequest& request) {
  Env* env = context_->env();
  auto crashed = [&](std::string_view step) {
    if (!request.crash_after || !request.crash_after(step)) return false;
    closed_ = true;  // a simulated crash: nothing more happens to this log object
    return true;
  };
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    auto& g = groups[gi];
    const auto swap = dir_ / swap_path_name(g.base);
    if (auto renamed = rename_file(env, g.cleaned, swap); !renamed.ok()) {
      for (std::size_t j = gi; j < groups.size(); ++j) (void)remove_file(env, groups[j].cleaned);
      return LogFailure(renamed.error());
    }
    // From here on, a failure leaves the swap for recovery to complete: the dir goes offline.
    if (auto synced = sync_directory(env, dir_); !synced.ok()) return sync_failed(synced.error());
    if (crashed("swap")) return LogFailure(LogError::io, "stopped after swap");
    for (const auto& seg : g.segments) {
      if (auto removed = seg->remove_files(); !removed.ok()) return sync_failed(removed.error());
    }
    if (auto synced = sync_directory(env, dir_); !synced.ok()) return sync_failed(synced.error());
    if (crashed("deleted")) return LogFailure(LogError::io, "stopped after deleted");
    if (auto renamed = rename_file(env, swap, dir_ / segment_file_name(g.base, ".log")); !renamed.ok())
      return sync_failed(renamed.error());
    if (auto synced = sync_directory(env, dir_); !synced.ok()) return sync_failed(synced.error());
    if (crashed("renamed")) return LogFailure(LogError::io, "stopped after renamed");

    auto first = std::find(segments_.begin(), segments_.end(), g.segments.front());
    assert(first != segments_.end() && first + static_cast<std::ptrdiff_t>(g.segments.size()) < segments_.end());
    const std::int64_t min_offset = first == segments_.begin() ? 0 : (*std::prev(first))->next_offset;
    auto seg = Segment::open(env, context_->files(), dir_, g.base);
    if (!seg.ok()) return sync_failed(seg.error());
    auto recovered = (*seg)->recover(/*verify_crc=*/true, /*sealed=*/true, min_offset, config_.index_interval_bytes,
                                     [](const wire::BatchHeader&) {});
    if (!recovered.ok()) return sync_failed(recovered.error());
    (*seg)->crc_verified = true;
    (*seg)->created_ms = g.segments.front()->created_ms;
    first = segments_.erase(first, first + static_cast<std::ptrdiff_t>(g.segments.size()));
    segments_.insert(first, *seg);
  }
  return LogDone{};
}

// ----- LogCleaner

LogCleaner::LogCleaner(LogManager& logs, LogCleanerOptions options, CleanableEnd cleanable_end)
    : logs_(logs), options_(options), cleanable_end_(std::move(cleanable_end)), throttle_(options.io_bytes_per_second) {}

LogCleaner::~LogCleaner() { stop(); }

void LogCleaner::start() {
  const int n = std::max(options_.threads, 1);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { run(i); });
  log::info("log cleaner started with {} thread(s)", n);
}

void LogCleaner::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::size_t LogCleaner::clean_round(int thread_index) {
  const auto threads = static_cast<std::size_t>(std::max(options_.threads, 1));
  std::size_t cleaned = 0, index = 0;
  for (const auto& tp : logs_.list()) {
    if (stop_.load()) break;
    if (index++ % threads != static_cast<std::size_t>(thread_index)) continue;
    auto log = logs_.get(tp);
    if (!log || !log->config().compact) continue;
    auto end = cleanable_end_(tp);
    if (!end) continue;
    CleanRequest request;
    request.now_ms = wall_clock_ms();
    request.cleanable_end = *end;
    request.key_map_bytes = options_.dedupe_buffer_bytes / threads;
    request.throttle = &throttle_;
    request.stop = &stop_;
    const auto started = monotonic_ms();
    auto result = log->clean(request);
    if (!result.ok()) {
      if (!stop_.load()) log::warn("cleaning log {}: {}", partition_dir_name(tp), result.error().message);
      continue;
    }
    if (!result->cleaned) continue;
    ++cleaned;
    log::info("cleaned log {}: {} records -> {} in {} segments -> {} ({} -> {} bytes, keys of [{}, {}) mapped, {} ms)",
              partition_dir_name(tp), result->records_in, result->records_out, result->segments_in,
              result->segments_out, result->bytes_in, result->bytes_out, result->first_dirty, result->dirty_end,
              monotonic_ms() - started);
  }
  return cleaned;
}

void LogCleaner::run(int thread_index) {
  // What top -H and /proc/<pid>/task/*/comm show (bench/api_bench.py reads the cleaner's CPU there).
  const auto name = "bw-cleaner-" + std::to_string(thread_index);
  pthread_setname_np(pthread_self(), name.c_str());
  while (!stop_.load()) {
    if (clean_round(thread_index) > 0) continue;  // more may be due (a full key map ends a pass)
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<std::int64_t>(options_.backoff_ms, 10)),
                 [this] { return stop_.load(); });
  }
}

}  // namespace bulwark::storage
