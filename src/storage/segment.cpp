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

Result<std::shared_ptr<Segment>> Segment::create(const std::filesystem::path& dir, std::int64_t base_offset) {
  auto seg = std::make_shared<Segment>();
  seg->base_offset = base_offset;
  seg->next_offset = base_offset;
  seg->log_path = dir / segment_file_name(base_offset, ".log");
  seg->index_path = dir / segment_file_name(base_offset, ".index");
  seg->time_index_path = dir / segment_file_name(base_offset, ".timeindex");
  auto log = File::open(seg->log_path, File::Mode::create_truncate);
  if (!log.ok()) return log.error();
  seg->log = std::move(*log);
  auto index = File::open(seg->index_path, File::Mode::create_truncate);
  if (!index.ok()) return index.error();
  seg->index_file_ = std::move(*index);
  auto time_index = File::open(seg->time_index_path, File::Mode::create_truncate);
  if (!time_index.ok()) return time_index.error();
  seg->time_index_file_ = std::move(*time_index);
  return seg;
}

Result<std::shared_ptr<Segment>> Segment::open(const std::filesystem::path& dir, std::int64_t base_offset) {
  auto seg = std::make_shared<Segment>();
  seg->base_offset = base_offset;
  seg->next_offset = base_offset;
  seg->log_path = dir / segment_file_name(base_offset, ".log");
  seg->index_path = dir / segment_file_name(base_offset, ".index");
  seg->time_index_path = dir / segment_file_name(base_offset, ".timeindex");
  auto log = File::open(seg->log_path, File::Mode::open_existing);
  if (!log.ok()) return log.error();
  seg->log = std::move(*log);
  auto index = File::open(seg->index_path, File::Mode::create_or_open);
  if (!index.ok()) return index.error();
  seg->index_file_ = std::move(*index);
  auto time_index = File::open(seg->time_index_path, File::Mode::create_or_open);
  if (!time_index.ok()) return time_index.error();
  seg->time_index_file_ = std::move(*time_index);
  seg->last_modified_ms = mtime_ms(seg->log_path);
  return seg;
}

Result<Segment::Recovery> Segment::recover(bool verify_crc, bool sealed, std::int64_t min_offset, std::int32_t index_interval_bytes,
                                           const std::function<void(const wire::BatchHeader&)>& on_batch) {
  auto file_size = log.size();
  if (!file_size.ok()) return file_size.error();
  index.clear();
  time_index.clear();
  bytes_since_index_ = 0;
  max_timestamp = -1;
  offset_of_max_timestamp = -1;
  rolling_timestamp = -1;
  next_offset = base_offset;
  size = 0;

  std::uint64_t pos = 0;
  std::int64_t expected = std::max(min_offset, base_offset);
  std::string problem;
  Bytes buffer;
  std::uint8_t head[wire::kBatchHeaderSize];
  while (pos < *file_size) {
    if (*file_size - pos < wire::kBatchHeaderSize) {
      problem = "partial batch header (" + std::to_string(*file_size - pos) + " bytes)";
      break;
    }
    BULWARK_TRY(log.read_exact(pos, head, sizeof head));
    wire::BatchHeader h;
    if (!parse_header_prefix(head, h)) {
      problem = "invalid batch header (magic " + std::to_string(static_cast<int>(h.magic)) + ", length " +
                std::to_string(h.batch_length) + ")";
      break;
    }
    if (pos + h.total_size() > *file_size) {
      problem = "partial batch (" + std::to_string(h.total_size()) + " bytes, " +
                std::to_string(*file_size - pos) + " present)";
      break;
    }
    if (h.base_offset < expected) {
      problem = "offset " + std::to_string(h.base_offset) + " goes backwards (expected at least " +
                std::to_string(expected) + ")";
      break;
    }
    if (h.last_offset() - base_offset > INT32_MAX) {
      problem = "offset " + std::to_string(h.last_offset()) + " too far from the segment base";
      break;
    }
    if (verify_crc) {
      buffer.resize(h.total_size());
      BULWARK_TRY(log.read_exact(pos, buffer.data(), buffer.size()));
      if (!wire::batch_crc_ok(buffer)) {
        problem = "CRC mismatch";
        break;
      }
    }
    track(h, pos, index_interval_bytes);
    if (on_batch) on_batch(h);
    expected = h.last_offset() + 1;
    pos += h.total_size();
  }
  size = pos;
  Recovery result;
  if (pos < *file_size) {
    result.truncated_bytes = *file_size - pos;
    result.problem = problem;
    log::warn("{}: {} at byte {}; truncating {} bytes (log ends at offset {})", log_path.string(), problem, pos,
              result.truncated_bytes, next_offset);
    BULWARK_TRY(log.truncate(pos));
  }
  if (sealed) add_final_time_entry();
  // Rewrite the index files only when they differ, so a clean open writes nothing.
  Bytes want_index = encode_index(index, 0);
  Bytes want_time = encode_time_index(time_index, 0);
  if (slurp(index_file_) != want_index || slurp(time_index_file_) != want_time) {
    BULWARK_TRY(rewrite_index_files());
  }
  persisted_index_ = index.size();
  persisted_time_index_ = time_index.size();
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
  BULWARK_TRY(write_index_tail());
  BULWARK_TRY(log.datasync());
  BULWARK_TRY(index_file_.datasync());
  return time_index_file_.datasync();
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

Result<wire::BatchHeader> Segment::read_header(std::uint64_t position) const {
  std::uint8_t head[wire::kBatchHeaderSize];
  if (position + sizeof head > size) {
    return make_error(ErrorKind::corrupt, log_path.string() + ": no batch header at byte " + std::to_string(position));
  }
  BULWARK_TRY(log.read_exact(position, head, sizeof head));
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
  while (position < size) {
    auto h = read_header(position);
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
  BULWARK_TRY(log.truncate(position));
  // Rebuild the bookkeeping by rescanning headers; segments are bounded, truncation is rare.
  auto rec = recover(false, false, base_offset, index_interval_bytes, nullptr);
  if (!rec.ok()) return rec.error();
  return Status::success();
}

Status Segment::remove_files() {
  // Only unlink: a reader may still pread through our descriptors; they close with the last reference.
  BULWARK_TRY(remove_file(log_path));
  BULWARK_TRY(remove_file(index_path));
  return remove_file(time_index_path);
}

}  // namespace bulwark::storage
