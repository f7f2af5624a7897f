// See quorum_store.h for the layout and the rules.
#include "cluster/quorum_store.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/files.h"
#include "cluster/raft_wire.h"
#include "cluster/records.h"
#include "raft/quorum_state.h"
#include "wire/record_batch.h"

namespace bulwark::cluster {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCheckpointSuffix = ".checkpoint";
constexpr const char* kPartSuffix = ".part";
constexpr const char* kRewriteSuffix = ".rewrite";

std::string errno_text(long error) { return std::strerror(static_cast<int>(-error)); }

Error io_error(const std::string& what, const fs::path& path, long error) {
  return make_error(ErrorKind::io, "quorum store: " + what + " " + path.string() + ": " + errno_text(error));
}

std::string voters_text(std::vector<raft::NodeId> voters) {
  std::string out = "[";
  for (size_t i = 0; i < voters.size(); ++i) out += (i ? "," : "") + std::to_string(voters[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "%020d-%010d.checkpoint" back to its id; nullopt for any other name.
std::optional<raft::SnapshotId> parse_snapshot_name(const std::string& name) {
  if (name.size() != 20 + 1 + 10 + std::strlen(kCheckpointSuffix) || !ends_with(name, kCheckpointSuffix) || name[20] != '-')
    return std::nullopt;
  for (size_t i = 0; i < 31; ++i)
    if (i != 20 && (name[i] < '0' || name[i] > '9')) return std::nullopt;
  raft::SnapshotId id;
  id.end_offset = std::stoll(name.substr(0, 20));
  long long epoch = std::stoll(name.substr(21, 10));
  if (epoch > INT32_MAX) return std::nullopt;
  id.epoch = static_cast<int32_t>(epoch);
  return id;
}

bool snapshot_before(const raft::SnapshotId& a, const raft::SnapshotId& b) {
  return std::pair(a.end_offset, a.epoch) < std::pair(b.end_offset, b.epoch);
}

uint64_t read_be(ByteView b, size_t at, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | b[at + i];
  return v;
}

bool all_zero(ByteView b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

Result<Bytes> read_whole(storage::Env* env, int fd, const fs::path& path) {
  const int64_t size = env->file_size(fd);
  if (size < 0) return io_error("cannot size", path, size);
  Bytes data(static_cast<size_t>(size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t got = env->pread(fd, data.data() + done, data.size() - done, done);
    if (got < 0) return io_error("cannot read", path, got);
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  data.resize(done);
  return data;
}

// The control record a control batch holds (exactly one), or an error.
Result<ControlRecord> single_control_record(ByteView batch) {
  auto records = wire::decode_records(batch);
  if (!records.ok()) return records.error();
  if (records->size() != 1 || !(*records)[0].key || !(*records)[0].value)
    return make_error(ErrorKind::corrupt, "control batch does not hold one keyed record");
  return decode_control_record(*(*records)[0].key, *(*records)[0].value);
}

// The snapshot bytes of a complete checkpoint file, or why it is not one.
Result<Bytes> decode_checkpoint(ByteView data) {
  auto split = wire::split_batches(data);
  if (!split.ok()) return split.error();
  if (split->trailing_bytes != 0) return make_error(ErrorKind::corrupt, "a partial batch at the end");
  const auto& batches = split->batches;
  if (batches.size() < 2) return make_error(ErrorKind::corrupt, "no header and footer");
  Bytes out;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (!wire::batch_crc_ok(batches[i])) return make_error(ErrorKind::corrupt, "a batch fails its CRC");
    auto header = wire::parse_batch_header(batches[i]);
    if (!header.ok()) return header.error();
    const bool edge = i == 0 || i + 1 == batches.size();
    if (header->is_control() != edge) return make_error(ErrorKind::corrupt, "control batches out of place");
    if (edge) {
      auto control = single_control_record(batches[i]);
      if (!control.ok()) return control.error();
      auto want = i == 0 ? ControlRecordType::snapshot_header : ControlRecordType::snapshot_footer;
      if (control_record_type(*control) != want) return make_error(ErrorKind::corrupt, "no snapshot header/footer");
      continue;
    }
    auto records = wire::decode_records(batches[i]);
    if (!records.ok()) return records.error();
    for (const auto& record : *records) {
      if (!record.value) return make_error(ErrorKind::corrupt, "a snapshot record without a value");
      out.insert(out.end(), record.value->begin(), record.value->end());
    }
  }
  return out;
}

Result<Bytes> encode_checkpoint(const raft::SnapshotId& id, ByteView bytes) {
  Bytes file;
  int64_t offset = 0;
  auto add = [&](std::vector<wire::Record> records, bool control) -> Status {
    for (size_t i = 0; i < records.size(); ++i) records[i].offset = offset + static_cast<int64_t>(i);
    wire::BatchOptions options;
    options.base_offset = offset;
    options.control = control;
    options.partition_leader_epoch = id.epoch;
    auto batch = wire::encode_batch(records, options);
    if (!batch.ok()) return batch.error();
    file.insert(file.end(), batch->begin(), batch->end());
    offset += static_cast<int64_t>(records.size());
    return {};
  };
  auto control_record = [](ControlRecord record) {
    wire::Record r;
    r.key = encode_control_key(control_record_type(record));
    r.value = encode_control_value(record);
    return r;
  };
  BULWARK_TRY(add({control_record(rec::SnapshotHeaderRecord{})}, true));
  for (size_t at = 0; at < bytes.size(); at += kSnapshotChunkBytes) {
    wire::Record r;
    auto chunk = bytes.subspan(at, std::min(kSnapshotChunkBytes, bytes.size() - at));
    r.value = Bytes(chunk.begin(), chunk.end());
    BULWARK_TRY(add({std::move(r)}, false));
  }
  BULWARK_TRY(add({control_record(rec::SnapshotFooterRecord{})}, true));
  return file;
}

}  // namespace

std::string snapshot_file_name(const raft::SnapshotId& id) {
  char name[64];
  std::snprintf(name, sizeof name, "%020lld-%010d%s", static_cast<long long>(id.end_offset), id.epoch, kCheckpointSuffix);
  return name;
}

QuorumStore::QuorumStore(QuorumStore&& other) noexcept
    : dir_(std::move(other.dir_)),
      cluster_id_(std::move(other.cluster_id_)),
      node_id_(other.node_id_),
      env_(other.env_),
      log_fd_(std::exchange(other.log_fd_, -1)),
      log_size_(other.log_size_),
      log_start_(other.log_start_),
      log_dirty_(other.log_dirty_),
      failed_(other.failed_),
      snapshot_(other.snapshot_),
      entries_(std::move(other.entries_)),
      batches_(std::move(other.batches_)),
      persisted_(std::move(other.persisted_)) {}

QuorumStore& QuorumStore::operator=(QuorumStore&& other) noexcept {
  if (this == &other) return *this;
  if (log_fd_ >= 0) env_->close(log_fd_);
  dir_ = std::move(other.dir_);
  cluster_id_ = std::move(other.cluster_id_);
  node_id_ = other.node_id_;
  env_ = other.env_;
  log_fd_ = std::exchange(other.log_fd_, -1);
  log_size_ = other.log_size_;
  log_start_ = other.log_start_;
  log_dirty_ = other.log_dirty_;
  failed_ = other.failed_;
  snapshot_ = other.snapshot_;
  entries_ = std::move(other.entries_);
  batches_ = std::move(other.batches_);
  persisted_ = std::move(other.persisted_);
  return *this;
}

QuorumStore::~QuorumStore() {
  if (log_fd_ >= 0) env_->close(log_fd_);
}

Result<QuorumStore> QuorumStore::open(const fs::path& metadata_dir, std::string cluster_id, raft::NodeId node_id,
                                      std::vector<raft::NodeId> voters, storage::Env* env) {
  QuorumStore store(metadata_dir / kMetadataPartitionDir, std::move(cluster_id), node_id, env);
  BULWARK_TRY(make_directories(store.dir_, kDataDirMode));
  BULWARK_TRY(store.load_quorum_state(voters));
  BULWARK_TRY(store.load_snapshot());
  BULWARK_TRY(store.load_log());
  store.persisted_.snapshot = store.snapshot_;
  store.persisted_.log = store.entries_;
  return store;
}

Status QuorumStore::load_quorum_state(const std::vector<raft::NodeId>& voters) {
  const fs::path path = quorum_state_path();
  std::error_code ec;
  if (!fs::exists(path, ec)) return {};  // first start
  auto text = read_file(path);
  if (!text.ok()) return text.error();
  auto state = raft::decode_quorum_state(*text);
  if (!state.ok()) return make_error(state.error().kind, path.string() + ": " + state.error().message);
  auto stored = state->current_voters, configured = voters;
  std::sort(stored.begin(), stored.end());
  std::sort(configured.begin(), configured.end());
  if (stored != configured)
    return make_error(ErrorKind::invalid_argument, "node " + std::to_string(node_id_) + ": " + path.string() +
                                                       " lists voters " + voters_text(stored) +
                                                       " but controller.quorum.voters is " + voters_text(configured));
  // Kafka's own files carry an empty clusterId; only a set one can disagree.
  if (!state->cluster_id.empty() && state->cluster_id != cluster_id_)
    return make_error(ErrorKind::invalid_argument, "node " + std::to_string(node_id_) + ": " + path.string() +
                                                       " belongs to cluster '" + state->cluster_id +
                                                       "', not the expected cluster '" + cluster_id_ + "'");
  persisted_.quorum_state = std::move(*state);
  return {};
}

Status QuorumStore::load_snapshot() {
  std::vector<std::pair<raft::SnapshotId, fs::path>> found;
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(dir_, ec)) {
    const std::string name = item.path().filename().string();
    if (ends_with(name, std::string(kCheckpointSuffix) + kPartSuffix) ||
        name == std::string(kMetadataLogFile) + kRewriteSuffix) {
      env_->unlink(item.path());  // an unfinished write: never renamed, never trusted
    } else if (auto id = parse_snapshot_name(name)) {
      found.emplace_back(*id, item.path());
    }
  }
  if (ec) return io_error("cannot list", dir_, -ec.value());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return snapshot_before(b.first, a.first); });
  for (const auto& [id, path] : found) {
    int fd = env_->open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return io_error("cannot open", path, fd);
    auto data = read_whole(env_, fd, path);
    env_->close(fd);
    if (!data.ok()) return data.error();
    auto bytes = decode_checkpoint(*data);
    if (!bytes.ok()) continue;  // incomplete or damaged: the next older one may do
    snapshot_ = id;
    persisted_.snapshot_bytes = std::move(*bytes);
    return {};
  }
  return {};
}

Status QuorumStore::load_log() {
  const fs::path path = log_path();
  log_fd_ = env_->open(path, O_RDWR | O_CREAT | O_CLOEXEC, kPrivateFileMode);
  if (log_fd_ < 0) return io_error("cannot open", path, std::exchange(log_fd_, -1));
  auto read = read_whole(env_, log_fd_, path);
  if (!read.ok()) return read.error();
  const ByteView data = *read;
  size_t pos = 0;
  while (pos < data.size()) {
    const ByteView rest = data.subspan(pos);
    if (rest.size() < wire::kBatchHeaderSize || all_zero(rest)) break;  // torn tail
    auto damaged = [&](const std::string& what) {
      const auto base_offset = static_cast<int64_t>(read_be(rest, 0, 8));
      return make_error(ErrorKind::corrupt, "quorum store: " + path.string() + ": batch at byte " + std::to_string(pos) +
                                                " (base offset " + std::to_string(base_offset) + ") " + what +
                                                "; the log is damaged before its tail");
    };
    const auto batch_length = static_cast<int32_t>(read_be(rest, wire::kBatchLengthOffset, 4));
    const int64_t total = int64_t{batch_length} + int64_t{wire::kBatchLogOverhead};
    if (total > static_cast<int64_t>(rest.size())) break;  // torn: cut short
    const ByteView batch = rest.first(static_cast<size_t>(std::max<int64_t>(total, 0)));
    const bool last = static_cast<size_t>(total) == rest.size();
    auto header = wire::parse_batch_header(rest);
    if (!header.ok() || !wire::batch_crc_ok(batch)) {
      if (last) break;  // a whole-length last batch whose bytes did not all land
      return damaged(header.ok() ? "fails its CRC" : "has a malformed header");
    }
    auto entries = decode_entries(batch);
    if (!entries.ok()) return damaged("does not decode: " + entries.error().message);
    if (!entries_.empty() && entries->front().offset != log_end_offset())
      return damaged("starts at offset " + std::to_string(entries->front().offset) + ", not where the log ends");
    if (entries_.empty()) log_start_ = entries->front().offset;
    batches_.push_back({pos, entries->front().offset, entries->back().offset});
    for (auto& entry : *entries) entries_.push_back(std::move(entry));
    pos += batch.size();
  }
  if (entries_.empty()) log_start_ = snapshot_.valid() ? snapshot_.end_offset : 0;
  // A log starting above the snapshot would leave offsets nobody holds.
  const int64_t covered = snapshot_.valid() ? snapshot_.end_offset : 0;
  if (log_start_ > covered)
    return make_error(ErrorKind::corrupt, "quorum store: " + path.string() + " starts at offset " +
                                              std::to_string(log_start_) + " but the newest complete snapshot ends at " +
                                              std::to_string(covered));
  log_size_ = pos;
  if (pos < data.size()) {  // cut the torn tail off, durably, before anything is appended after it
    if (int rc = env_->ftruncate(log_fd_, pos); rc < 0) return io_error("cannot truncate", path, rc);
    if (int rc = env_->fdatasync(log_fd_); rc < 0) return io_error("cannot sync", path, rc);
  }
  return {};
}

Status QuorumStore::fail(Error error) {
  failed_ = true;
  return error;
}

Status QuorumStore::check_writable() const {
  if (failed_)
    return make_error(ErrorKind::io, "quorum store: an earlier write to " + dir_.string() +
                                         " failed; refusing further writes until it is reopened");
  return {};
}

Result<QuorumStore::Durable> QuorumStore::apply(const raft::Ready& ready) {
  BULWARK_TRY(check_writable());
  Durable durable;
  durable.write_id = ready.write_id;
  if (ready.quorum_state) {
    Status written = write_file_atomic(quorum_state_path(), raft::encode_quorum_state(*ready.quorum_state),
                                       kDataFileMode, Overwrite::allow);
    if (!written.ok()) return fail(written.error()).error();
    durable.quorum_state = true;
  }
  for (const auto& write : ready.log_writes) {
    switch (write.kind) {
      case raft::LogWrite::Kind::append: BULWARK_TRY(append(write.entries)); break;
      case raft::LogWrite::Kind::truncate: BULWARK_TRY(truncate(write.offset)); break;
      case raft::LogWrite::Kind::drop_prefix: BULWARK_TRY(rewrite_from(write.snapshot.end_offset, true)); break;
      case raft::LogWrite::Kind::reset: BULWARK_TRY(rewrite_from(write.snapshot.end_offset, false)); break;
    }
  }
  if (!ready.log_writes.empty()) {
    BULWARK_TRY(sync_log());
    durable.log = true;
  }
  return durable;
}

Status QuorumStore::write_all(int fd, ByteView bytes, std::uint64_t position, const fs::path& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = env_->pwrite(fd, bytes.data() + done, bytes.size() - done, position + done);
    if (n < 0) return fail(io_error("cannot write", path, n));
    if (n == 0) return fail(io_error("cannot write", path, -EIO));
    done += static_cast<size_t>(n);
  }
  return {};
}

Status QuorumStore::write_entries(const std::vector<raft::LogEntry>& entries) {
  if (entries.empty()) return {};
  auto encoded = encode_entries(entries);
  if (!encoded.ok()) return encoded.error();
  BULWARK_TRY(write_all(log_fd_, encoded->records, log_size_, log_path()));
  auto split = wire::split_batches(encoded->records);
  if (!split.ok()) return split.error();
  uint64_t position = log_size_;
  for (ByteView batch : split->batches) {
    auto header = wire::parse_batch_header(batch);
    if (!header.ok()) return header.error();
    batches_.push_back({position, header->base_offset, header->last_offset()});
    position += batch.size();
  }
  log_size_ = position;
  log_dirty_ = true;
  return {};
}

Status QuorumStore::append(const std::vector<raft::LogEntry>& entries) {
  if (entries.empty()) return {};
  if (entries.front().offset != log_end_offset())
    return make_error(ErrorKind::internal, "quorum store: append at offset " + std::to_string(entries.front().offset) +
                                               " but the log ends at " + std::to_string(log_end_offset()));
  BULWARK_TRY(write_entries(entries));
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  return {};
}

Status QuorumStore::truncate(std::int64_t offset) {
  offset = std::max(offset, log_start_);
  if (offset >= log_end_offset()) return {};
  auto cut = std::find_if(batches_.begin(), batches_.end(), [&](const BatchSpan& b) { return b.last_offset >= offset; });
  const uint64_t position = cut->position;
  const int64_t batch_base = cut->base_offset;
  batches_.erase(cut, batches_.end());
  if (int rc = env_->ftruncate(log_fd_, position); rc < 0) return fail(io_error("cannot truncate", log_path(), rc));
  log_size_ = position;
  log_dirty_ = true;
  entries_.resize(static_cast<size_t>(offset - log_start_));
  // The entries of the cut batch below `offset` are written again as a batch of their own.
  std::vector<raft::LogEntry> kept(entries_.begin() + (batch_base - log_start_), entries_.end());
  return write_entries(kept);
}

Status QuorumStore::rewrite_from(std::int64_t start, bool keep_suffix) {
  std::vector<raft::LogEntry> kept;
  for (const auto& entry : entries_)
    if (keep_suffix && entry.offset >= start) kept.push_back(entry);
  const fs::path path = log_path();
  const fs::path temp = path.string() + kRewriteSuffix;
  int fd = env_->open(temp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return fail(io_error("cannot create", temp, fd));
  auto finish = [&](Status status) {
    if (!status.ok()) env_->close(fd);
    return status;
  };
  Bytes records;
  if (!kept.empty()) {
    auto encoded = encode_entries(kept);
    if (!encoded.ok()) return finish(encoded.error());
    records = std::move(encoded->records);
  }
  BULWARK_TRY(finish(write_all(fd, records, 0, temp)));
  if (int rc = env_->fdatasync(fd); rc < 0) return finish(fail(io_error("cannot sync", temp, rc)));
  if (int rc = env_->rename(temp, path); rc < 0) return finish(fail(io_error("cannot rename", temp, rc)));
  if (int rc = env_->fsync_directory(dir_); rc < 0) return finish(fail(io_error("cannot sync", dir_, rc)));
  env_->close(log_fd_);
  log_fd_ = fd;
  log_size_ = 0;
  log_start_ = start;
  entries_.clear();
  batches_.clear();
  auto split = wire::split_batches(records);
  if (!split.ok()) return split.error();
  for (ByteView batch : split->batches) {
    auto header = wire::parse_batch_header(batch);
    if (!header.ok()) return header.error();
    batches_.push_back({log_size_, header->base_offset, header->last_offset()});
    log_size_ += batch.size();
  }
  entries_ = std::move(kept);
  log_dirty_ = false;
  return {};
}

Status QuorumStore::sync_log() {
  if (!log_dirty_) return {};
  if (int rc = env_->fdatasync(log_fd_); rc < 0) return fail(io_error("cannot sync", log_path(), rc));
  log_dirty_ = false;
  return {};
}

Status QuorumStore::save_snapshot(const raft::SnapshotId& id, ByteView bytes) {
  BULWARK_TRY(check_writable());
  if (!id.valid()) return make_error(ErrorKind::invalid_argument, "quorum store: invalid snapshot id");
  BULWARK_TRY(write_snapshot_file(id, bytes));
  if (!snapshot_.valid() || snapshot_before(snapshot_, id)) snapshot_ = id;
  remove_snapshots_before(snapshot_);
  return {};
}

Status QuorumStore::write_snapshot_file(const raft::SnapshotId& id, ByteView bytes) {
  auto file = encode_checkpoint(id, bytes);
  if (!file.ok()) return file.error();
  const fs::path path = dir_ / snapshot_file_name(id);
  const fs::path part = path.string() + kPartSuffix;
  int fd = env_->open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return fail(io_error("cannot create", part, fd));
  Status written = write_all(fd, *file, 0, part);
  if (written.ok())
    if (int rc = env_->fdatasync(fd); rc < 0) written = fail(io_error("cannot sync", part, rc));
  env_->close(fd);
  BULWARK_TRY(written);
  if (int rc = env_->rename(part, path); rc < 0) return fail(io_error("cannot rename", part, rc));
  if (int rc = env_->fsync_directory(dir_); rc < 0) return fail(io_error("cannot sync", dir_, rc));
  return {};
}

void QuorumStore::remove_snapshots_before(const raft::SnapshotId& id) {
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(dir_, ec)) {
    auto other = parse_snapshot_name(item.path().filename().string());
    // A leftover older checkpoint only costs space; a failed unlink is retried after the next save.
    if (other && snapshot_before(*other, id)) env_->unlink(item.path());
  }
}

}  // namespace bulwark::cluster
