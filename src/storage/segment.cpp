#include "storage/segment.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "base/log.h"

namespace bulwark::storage {
namespace {

constexpr std::size_t kIndexEntrySize = 8;
constexpr std::size_t kTimeIndexEntrySize = 12;

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_i64(Bytes& out, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
}

Bytes encode_index(const std::vector<IndexEntry>& entries, std::size_t from) {
  Bytes out;
  out.reserve((entries.size() - from) * kIndexEntrySize);
  for (std::size_t i = from; i < entries.size(); ++i) {
    put_u32(out, entries[i].relative_offset);
    put_u32(out, entries[i].position);
  }
  return out;
}

Bytes encode_time_index(const std::vector<TimeIndexEntry>& entries, std::size_t from) {
  Bytes out;
  out.reserve((entries.size() - from) * kTimeIndexEntrySize);
  for (std::size_t i = from; i < entries.size(); ++i) {
    put_i64(out, entries[i].timestamp);
    put_u32(out, entries[i].relative_offset);
  }
  return out;
}

std::int64_t mtime_ms(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

// Reads a whole small file; missing file -> empty.
Bytes slurp(const File& file) {
  auto size = file.size();
  if (!size.ok()) return {};
  Bytes data(*size);
  if (!data.empty() && !file.read_exact(0, data.data(), data.size()).ok()) return {};
  return data;
}

}  // namespace

std::string segment_file_name(std::int64_t base_offset, const char* suffix) {
  char name[64];
  std::snprintf(name, sizeof name, "%020lld%s", static_cast<long long>(base_offset), suffix);
  return name;
}

bool parse_header_prefix(const std::uint8_t* data, wire::BatchHeader& h) {
  ByteReader r(ByteView(data, wire::kBatchHeaderSize));
  r.read_i64(h.base_offset);
  r.read_i32(h.batch_length);
  r.read_i32(h.partition_leader_epoch);
  r.read_i8(h.magic);
  r.read_u32(h.crc);
  r.read_i16(h.attributes);
  r.read_i32(h.last_offset_delta);
  r.read_i64(h.base_timestamp);
  r.read_i64(h.max_timestamp);
  r.read_i64(h.producer_id);
  r.read_i16(h.producer_epoch);
  r.read_i32(h.base_sequence);
  r.read_i32(h.record_count);
  return r.ok() && h.magic == 2 &&
         h.batch_length >= static_cast<std::int32_t>(wire::kBatchHeaderSize - wire::kBatchLogOverhead) &&
         h.last_offset_delta >= 0 && h.base_offset >= 0;
}

Result<std::shared_ptr<File>> FileCache::get(Env* env, const std::filesystem::path& path) {
  std::lock_guard lock(mu_);
  if (auto it = by_path_.find(path.string()); it != by_path_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  auto file = File::open(env, path, File::Mode::open_existing);
  if (!file.ok()) return file.error();
  lru_.emplace_front(path.string(), std::make_shared<File>(std::move(*file)));
  by_path_[path.string()] = lru_.begin();
  while (lru_.size() > capacity_) {
    by_path_.erase(lru_.back().first);
    lru_.pop_back();  // closes now, or when the last reader lets go
  }
  return lru_.front().second;
}

void FileCache::forget(const std::filesystem::path& path) {
  std::lock_guard lock(mu_);
  if (auto it = by_path_.find(path.string()); it != by_path_.end()) {
    lru_.erase(it->second);
    by_path_.erase(it);
  }
}

std::size_t FileCache::open_count() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

Segment::Segment(Env* env, std::shared_ptr<FileCache> cache, const std::filesystem::path& dir, std::int64_t base)
    : base_offset(base),
      log_path(dir / segment_file_name(base, ".log")),
      index_path(dir / segment_file_name(base, ".index")),
      time_index_path(dir / segment_file_name(base, ".timeindex")),
      next_offset(base),
      env_(env),
      cache_(std::move(cache)) {}

Result<std::shared_ptr<Segment>> Segment::create(Env* env, std::shared_ptr<FileCache> cache,
                                                 const std::filesystem::path& dir, std::int64_t base_offset) {
  std::shared_ptr<Segment> seg(new Segment(env, std::move(cache), dir, base_offset));
  auto log = File::open(env, seg->log_path, File::Mode::create_truncate);
  if (!log.ok()) return log.error();
  seg->active_log_ = std::make_shared<File>(std::move(*log));
  seg->crc_verified = true;  // appends check every batch's CRC before writing it
  auto index = File::open(env, seg->index_path, File::Mode::create_truncate);
  if (!index.ok()) return index.error();
  seg->index_file_ = std::move(*index);
  auto time_index = File::open(env, seg->time_index_path, File::Mode::create_truncate);
  if (!time_index.ok()) return time_index.error();
  seg->time_index_file_ = std::move(*time_index);
  return seg;
}

Result<std::shared_ptr<Segment>> Segment::open(Env* env, std::shared_ptr<FileCache> cache,
                                               const std::filesystem::path& dir, std::int64_t base_offset) {
  std::shared_ptr<Segment> seg(new Segment(env, std::move(cache), dir, base_offset));
  seg->last_modified_ms = mtime_ms(seg->log_path);
  return seg;
}

Status Segment::open_index_files() {
  if (!index_file_.is_open()) {
    auto index = File::open(env_, index_path, File::Mode::create_or_open);
    if (!index.ok()) return index.error();
    index_file_ = std::move(*index);
  }
  if (!time_index_file_.is_open()) {
    auto time_index = File::open(env_, time_index_path, File::Mode::create_or_open);
    if (!time_index.ok()) return time_index.error();
    time_index_file_ = std::move(*time_index);
  }
  return Status::success();
}

void Segment::close_index_files() {
  index_file_.close();
  time_index_file_.close();
}

Status Segment::activate() {
  if (active_log_) return Status::success();
  cache_->forget(log_path);
  auto log = File::open(env_, log_path, File::Mode::create_or_open);
  if (!log.ok()) return log.error();
  active_log_ = std::make_shared<File>(std::move(*log));
  return open_index_files();
}

Result<std::shared_ptr<File>> Segment::log_file() const {
  if (active_log_) return active_log_;
  return cache_->get(env_, log_path);
}

Status Segment::sync_log() {
  if (!active_log_) return Status::success();  // sealed segments were synced when sealed
  return active_log_->datasync();
}

void Segment::reset_bookkeeping() {
  index.clear();
  time_index.clear();
  bytes_since_index_ = 0;
  max_timestamp = -1;
  offset_of_max_timestamp = -1;
  rolling_timestamp = -1;
  next_offset = base_offset;
  size = 0;
}

namespace {

// Why the batch at pos cannot be used, or "" when it can. Reads the whole batch for the CRC check.
std::string batch_problem(const File& file, std::uint64_t pos, std::uint64_t file_size, std::int64_t expected,
                          std::int64_t base_offset, bool verify_crc, wire::BatchHeader& h, Bytes& buffer,
                          Status& io) {
  std::uint8_t head[wire::kBatchHeaderSize];
  if (file_size - pos < wire::kBatchHeaderSize) {
    return "partial batch header (" + std::to_string(file_size - pos) + " bytes)";
  }
  if (io = file.read_exact(pos, head, sizeof head); !io.ok()) return "unreadable";
  if (!parse_header_prefix(head, h)) {
    return "invalid batch header (magic " + std::to_string(static_cast<int>(h.magic)) + ", length " +
           std::to_string(h.batch_length) + ")";
  }
  if (pos + h.total_size() > file_size) {
    return "partial batch (" + std::to_string(h.total_size()) + " bytes, " + std::to_string(file_size - pos) +
           " present)";
  }
  if (h.base_offset < expected) {
    return "offset " + std::to_string(h.base_offset) + " goes backwards (expected at least " +
           std::to_string(expected) + ")";
  }
  if (h.last_offset() - base_offset > INT32_MAX) {
    return "offset " + std::to_string(h.last_offset()) + " too far from the segment base";
  }
  if (verify_crc) {
    buffer.resize(h.total_size());
    if (io = file.read_exact(pos, buffer.data(), buffer.size()); !io.ok()) return "unreadable";
    if (!wire::batch_crc_ok(buffer)) return "CRC mismatch";
  }
  return "";
}

// An intact batch at data[at]: whole, offsets not below expected, CRC right.
bool intact_batch_at(ByteView data, std::size_t at, std::int64_t expected, std::int64_t base_offset,
                     wire::BatchHeader& h) {
  if (data.size() - at < wire::kBatchHeaderSize || data[at + wire::kBatchLogOverhead + 4] != 2) return false;
  if (!parse_header_prefix(data.data() + at, h)) return false;
  if (h.total_size() > data.size() - at || h.base_offset < expected || h.last_offset() - base_offset > INT32_MAX) {
    return false;
  }
  return wire::batch_crc_ok(data.subspan(at, h.total_size()));
}

std::filesystem::path unused_name(std::filesystem::path path) {
  std::error_code ec;
  const auto base = path;
  for (int n = 1; std::filesystem::exists(path, ec); ++n) {
    path = base;
    path += "." + std::to_string(n);
  }
  return path;
}

}  // namespace

Result<Segment::Recovery> Segment::recover(bool verify_crc, bool sealed, std::int64_t min_offset,
                                           std::int32_t index_interval_bytes,
                                           const std::function<void(const wire::BatchHeader&)>& on_batch) {
  auto file = log_file();
  if (!file.ok()) return file.error();
  auto file_size = (*file)->size();
  if (!file_size.ok()) return file_size.error();
  reset_bookkeeping();

  std::uint64_t pos = 0;
  std::int64_t expected = std::max(min_offset, base_offset);
  std::string problem;
  Bytes buffer;
  std::vector<wire::BatchHeader> seen;  // reported to on_batch once the segment is known good
  while (pos < *file_size) {
    wire::BatchHeader h;
    Status io;
    problem = batch_problem(**file, pos, *file_size, expected, base_offset, verify_crc, h, buffer, io);
    if (!io.ok()) return io.error();
    if (!problem.empty()) break;
    track(h, pos, index_interval_bytes);
    if (on_batch) seen.push_back(h);
    expected = h.last_offset() + 1;
    pos += h.total_size();
  }
  Recovery result;
  if (pos < *file_size) {
    auto repaired = repair(pos, problem, sealed, expected);
    if (!repaired.ok()) return repaired.error();
    if (repaired->quarantined_bytes > 0) {
      // The damaged bytes are gone from the segment: scan it again, every batch CRC-checked.
      auto again = recover(true, sealed, min_offset, index_interval_bytes, on_batch);
      if (!again.ok()) return again.error();
      again->quarantined_bytes += repaired->quarantined_bytes;
      if (again->quarantine_file.empty()) again->quarantine_file = repaired->quarantine_file;
      again->problem = repaired->problem;
      return again;
    }
    result = *repaired;
  }
  for (const auto& h : seen) on_batch(h);
  if (verify_crc) crc_verified = true;
  if (sealed) add_final_time_entry();
  BULWARK_TRY(open_index_files());
  // Rewrite the index files only when they differ, so a clean open writes nothing.
  Bytes want_index = encode_index(index, 0);
  Bytes want_time = encode_time_index(time_index, 0);
  Status rewritten;
  if (slurp(index_file_) != want_index || slurp(time_index_file_) != want_time) rewritten = rewrite_index_files();
  persisted_index_ = index.size();
  persisted_time_index_ = time_index.size();
  if (!active()) close_index_files();
  if (!rewritten.ok()) return rewritten.error();
  return result;
}

Result<Segment::Recovery> Segment::repair(std::uint64_t damaged_at, const std::string& problem, bool sealed,
                                          std::int64_t expected) {
  auto file = log_file();
  if (!file.ok()) return file.error();
  auto file_size = (*file)->size();
  if (!file_size.ok()) return file_size.error();
  Bytes tail(*file_size - damaged_at);
  BULWARK_TRY((*file)->read_exact(damaged_at, tail.data(), tail.size()));

  // Resynchronize: the intact batches after the damage, found by trying every byte position.
  Bytes kept;
  std::int64_t next = expected;
  for (std::size_t at = 1; at < tail.size();) {
    wire::BatchHeader h;
    if (intact_batch_at(tail, at, next, base_offset, h)) {
      kept.insert(kept.end(), tail.begin() + static_cast<std::ptrdiff_t>(at),
                  tail.begin() + static_cast<std::ptrdiff_t>(at + h.total_size()));
      next = h.last_offset() + 1;
      at += h.total_size();
    } else {
      ++at;
    }
  }
  Recovery result;
  result.problem = problem;
  if (kept.empty() && !sealed) {
    // A torn write at the end of the active segment: nothing after it, the tail goes.
    result.truncated_bytes = tail.size();
    log::warn("{}: {} at byte {}; truncating {} bytes (log ends at offset {})", log_path.string(), problem,
              damaged_at, result.truncated_bytes, next_offset);
    BULWARK_TRY((*file)->truncate(damaged_at));
    return result;
  }
  // Keep the original bytes first (durably), then rewrite the segment without the damaged ones.
  auto aside = log_path;
  aside += ".damaged-" + std::to_string(damaged_at);
  aside = unused_name(aside);
  BULWARK_TRY(write_file_durably(env_, aside, tail));
  if (!kept.empty()) BULWARK_TRY((*file)->write_all(damaged_at, kept));
  BULWARK_TRY((*file)->truncate(damaged_at + kept.size()));
  BULWARK_TRY((*file)->datasync());
  result.quarantined_bytes = tail.size() - kept.size();
  result.quarantine_file = aside;
  log::error("{}: {} at byte {}; {} damaged bytes cut out, {} intact bytes after them kept; the original bytes "
             "from byte {} on are in {}",
             log_path.string(), problem, damaged_at, result.quarantined_bytes, kept.size(), damaged_at,
             aside.string());
  return result;
}

void Segment::track(const wire::BatchHeader& h, std::uint64_t position, std::int32_t index_interval_bytes) {
  if (position == 0) rolling_timestamp = h.max_timestamp;
  if (h.max_timestamp > max_timestamp) {
    max_timestamp = h.max_timestamp;
    offset_of_max_timestamp = h.last_offset();
  }
  // As Kafka: an index entry for the batch that starts after index.interval.bytes have gone by.
  if (bytes_since_index_ > static_cast<std::uint64_t>(std::max(index_interval_bytes, 0))) {
    index.push_back({static_cast<std::uint32_t>(h.last_offset() - base_offset), static_cast<std::uint32_t>(position)});
    if (time_index.empty() || max_timestamp > time_index.back().timestamp) {
      time_index.push_back({max_timestamp, static_cast<std::uint32_t>(offset_of_max_timestamp - base_offset)});
    }
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += h.total_size();
  next_offset = h.last_offset() + 1;
  size = std::max<std::uint64_t>(size, position + h.total_size());
}

Status Segment::write_index_tail() {
  if (!index_file_.is_open() || !time_index_file_.is_open()) return Status::success();  // sealed: all persisted
  if (persisted_index_ < index.size()) {
    BULWARK_TRY(index_file_.write_all(persisted_index_ * kIndexEntrySize, encode_index(index, persisted_index_)));
    persisted_index_ = index.size();
  }
  if (persisted_time_index_ < time_index.size()) {
    BULWARK_TRY(time_index_file_.write_all(persisted_time_index_ * kTimeIndexEntrySize,
                                           encode_time_index(time_index, persisted_time_index_)));
    persisted_time_index_ = time_index.size();
  }
  return Status::success();
}

void Segment::add_final_time_entry() {
  if (max_timestamp >= 0 && (time_index.empty() || max_timestamp > time_index.back().timestamp)) {
    time_index.push_back({max_timestamp, static_cast<std::uint32_t>(offset_of_max_timestamp - base_offset)});
  }
}

Status Segment::seal() {
  add_final_time_entry();
  // The indexes are rebuilt from the log at recovery: failing to write or sync them costs no data.
  if (auto idx = write_index_tail(); !idx.ok()) log::warn("{}", idx.error().message);
  if (active_log_) BULWARK_TRY(active_log_->datasync());
  if (index_file_.is_open()) {
    if (auto synced = index_file_.datasync(); !synced.ok()) log::warn("{}", synced.error().message);
  }
  if (time_index_file_.is_open()) {
    if (auto synced = time_index_file_.datasync(); !synced.ok()) log::warn("{}", synced.error().message);
  }
  close_index_files();
  active_log_.reset();
  return Status::success();
}

Status Segment::rewrite_index_files() {
  BULWARK_TRY(index_file_.truncate(0));
  BULWARK_TRY(time_index_file_.truncate(0));
  BULWARK_TRY(index_file_.write_all(0, encode_index(index, 0)));
  BULWARK_TRY(time_index_file_.write_all(0, encode_time_index(time_index, 0)));
  persisted_index_ = index.size();
  persisted_time_index_ = time_index.size();
  return Status::success();
}

Result<wire::BatchHeader> Segment::read_header(const File& file, std::uint64_t position) const {
  std::uint8_t head[wire::kBatchHeaderSize];
  if (position + sizeof head > size) {
    return make_error(ErrorKind::corrupt, log_path.string() + ": no batch header at byte " + std::to_string(position));
  }
  BULWARK_TRY(file.read_exact(position, head, sizeof head));
  wire::BatchHeader h;
  if (!parse_header_prefix(head, h) || position + h.total_size() > size) {
    return make_error(ErrorKind::corrupt, log_path.string() + ": invalid batch header at byte " + std::to_string(position));
  }
  return h;
}

std::uint64_t Segment::seek_position(std::int64_t offset) const {
  if (offset <= base_offset) return 0;
  auto rel = static_cast<std::uint32_t>(std::min<std::int64_t>(offset - base_offset, UINT32_MAX));
  // Last entry whose (last) offset <= rel: the batch containing offset starts at or after it.
  auto it = std::upper_bound(index.begin(), index.end(), rel,
                             [](std::uint32_t v, const IndexEntry& e) { return v < e.relative_offset; });
  if (it == index.begin()) return 0;
  return std::prev(it)->position;
}

Result<std::optional<LocatedBatch>> Segment::scan_from(
    std::uint64_t position, const std::function<bool(const wire::BatchHeader&)>& match) const {
  if (position >= size) return std::optional<LocatedBatch>();
  auto file = log_file();
  if (!file.ok()) return file.error();
  while (position < size) {
    auto h = read_header(**file, position);
    if (!h.ok()) return h.error();
    if (match(*h)) return std::optional<LocatedBatch>(LocatedBatch{*h, position});
    position += h->total_size();
  }
  return std::optional<LocatedBatch>();
}

Result<std::optional<LocatedBatch>> Segment::find_batch(std::int64_t offset) const {
  return scan_from(seek_position(offset), [offset](const wire::BatchHeader& h) { return h.last_offset() >= offset; });
}

Result<std::optional<LocatedBatch>> Segment::find_batch_by_time(std::int64_t timestamp) const {
  // Last time index entry strictly below the target: every batch up to its offset is older.
  auto it = std::lower_bound(time_index.begin(), time_index.end(), timestamp,
                             [](const TimeIndexEntry& e, std::int64_t ts) { return e.timestamp < ts; });
  std::uint64_t start = 0;
  if (it != time_index.begin()) start = seek_position(base_offset + std::prev(it)->relative_offset);
  return scan_from(start, [timestamp](const wire::BatchHeader& h) { return h.max_timestamp >= timestamp; });
}

Status Segment::truncate_at(std::uint64_t position, std::int32_t index_interval_bytes) {
  BULWARK_TRY(activate());
  BULWARK_TRY(active_log_->truncate(position));
  // Rebuild the bookkeeping by rescanning headers; segments are bounded, truncation is rare.
  auto rec = recover(false, false, base_offset, index_interval_bytes, nullptr);
  if (!rec.ok()) return rec.error();
  return Status::success();
}

void Segment::release_cached_file() { cache_->forget(log_path); }

Status Segment::remove_files() {
  // Only unlink: a reader may still pread through a descriptor it holds; it closes with its last user.
  cache_->forget(log_path);
  BULWARK_TRY(remove_file(env_, log_path));
  BULWARK_TRY(remove_file(env_, index_path));
  return remove_file(env_, time_index_path);
}

}  // namespace bulwark::storage
