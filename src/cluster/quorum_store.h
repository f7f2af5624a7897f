// The durable side of a KRaft node's consensus core: what raft::RaftNode's driver writes for each Ready
// and reads back at start (raft::PersistedState). Everything lives in
// <metadata dir>/__cluster_metadata-0/:
//   quorum-state                       Kafka's JSON line (raft/quorum_state.h), written with
//                                      write_file_atomic (temp, fsync, rename, directory fsync).
//   metadata.log                       the log after the latest snapshot: Kafka v2 record batches as
//                                      cluster/raft_wire.h encodes them (partitionLeaderEpoch = Raft
//                                      epoch, LEADER_CHANGE in control batches). One file, not Kafka's
//                                      segments: the metadata log is small and is rewritten whole when
//                                      its prefix goes.
//   %020d-%010d.checkpoint             a snapshot (end offset, epoch), framed as Kafka frames one:
//                                      batch 0 = a control batch holding one SnapshotHeader record,
//                                      then one data batch per chunk of at most 1 MiB of the snapshot
//                                      bytes (one record, the chunk as its value), then a control batch
//                                      holding one SnapshotFooter record. Offsets count from 0 across
//                                      the file's records; every batch carries the snapshot's epoch.
//                                      Written as .checkpoint.part, synced, renamed.
//
// Loading: the newest complete checkpoint (CRC-valid header ... footer) wins; .part files and a
// leftover metadata.log.rewrite (a prefix drop cut short) are removed. The log is read batch by batch:
// a last batch cut short or failing its CRC is a torn append and is cut off (durably, before any new
// append); any damage before the last batch is an error naming the file, the byte position and the
// batch's base offset (committed data is never dropped silently). The log may start below the
// snapshot end (the core drops that prefix and says so in its first Ready) but never above it.
//
// Durability: apply() returns only once the Ready's quorum state and log writes are on disk. Any I/O
// error is returned and leaves the store failed: it refuses every later write (after a failed fsync the
// page cache can no longer be trusted, so retrying it as if nothing happened would lie). Reopen to
// recover from what the disk holds.
//
// The log and snapshots are written with mode 0600: they hold SCRAM credentials (salted keys still
// allow offline guessing) and the ACLs.
//
// Single-threaded: the one driver thread that owns the RaftNode calls every method.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "raft/node.h"
#include "storage/env.h"

namespace bulwark::cluster {

inline constexpr const char* kMetadataPartitionDir = "__cluster_metadata-0";
inline constexpr const char* kQuorumStateFile = "quorum-state";
inline constexpr const char* kMetadataLogFile = "metadata.log";
inline constexpr std::size_t kSnapshotChunkBytes = 1 << 20;

// "00000000000000000100-0000000003.checkpoint"
std::string snapshot_file_name(const raft::SnapshotId& id);

class QuorumStore {
 public:
  // Which callbacks of the Ready's write_id the driver may now make: on_quorum_state_persisted when
  // quorum_state, then on_log_durable when log.
  struct Durable {
    std::uint64_t write_id = 0;
    bool quorum_state = false;
    bool log = false;
  };

  // Creates the partition directory when missing and loads what is there. Refuses (invalid_argument)
  // a quorum-state whose voters differ from `voters` (controller.quorum.voters) or whose clusterId is
  // set and differs from `cluster_id`; corrupt for damaged files.
  static Result<QuorumStore> open(const std::filesystem::path& metadata_dir, std::string cluster_id,
                                  raft::NodeId node_id, std::vector<raft::NodeId> voters,
                                  storage::Env* env = storage::Env::posix());

  QuorumStore(QuorumStore&& other) noexcept;
  QuorumStore& operator=(QuorumStore&& other) noexcept;
  QuorumStore(const QuorumStore&) = delete;
  QuorumStore& operator=(const QuorumStore&) = delete;
  ~QuorumStore();

  // What was durable at open, for RaftNode::create. Moves it out: call once.
  raft::PersistedState take_persisted() { return std::move(persisted_); }

  // The quorum state, then the log writes in order, then one fdatasync of the log.
  Result<Durable> apply(const raft::Ready& ready);

  // A local snapshot of the state machine at `id` (then call RaftNode::on_snapshot_saved; the
  // drop_prefix it causes arrives in a later Ready). Older checkpoints are deleted once it is durable.
  Status save_snapshot(const raft::SnapshotId& id, ByteView bytes);
  // Ready::install_snapshot (from the leader): made durable the same way; then load it into the state
  // machine and call RaftNode::on_snapshot_loaded (the log reset arrives in a later Ready).
  Status install_snapshot(const raft::SnapshotInstall& install) { return save_snapshot(install.id, install.bytes); }

  bool failed() const { return failed_; }
  const std::filesystem::path& directory() const { return dir_; }
  std::filesystem::path log_path() const { return dir_ / kMetadataLogFile; }
  std::filesystem::path quorum_state_path() const { return dir_ / kQuorumStateFile; }
  const raft::SnapshotId& snapshot() const { return snapshot_; }
  // Offsets of the entries in metadata.log: [log_start_offset, log_end_offset).
  std::int64_t log_start_offset() const { return log_start_; }
  std::int64_t log_end_offset() const { return log_start_ + static_cast<std::int64_t>(entries_.size()); }

 private:
  struct BatchSpan {
    std::uint64_t position = 0;  // byte position in metadata.log
    std::int64_t base_offset = 0;
    std::int64_t last_offset = 0;
  };

  QuorumStore(std::filesystem::path dir, std::string cluster_id, raft::NodeId node_id, storage::Env* env)
      : dir_(std::move(dir)), cluster_id_(std::move(cluster_id)), node_id_(node_id), env_(env) {}

  Status load_quorum_state(const std::vector<raft::NodeId>& voters);
  Status load_snapshot();
  Status load_log();
  Status fail(Error error);
  Status check_writable() const;

  Status append(const std::vector<raft::LogEntry>& entries);
  Status write_entries(const std::vector<raft::LogEntry>& entries);
  Status truncate(std::int64_t offset);
  Status rewrite_from(std::int64_t start, bool keep_suffix);
  Status write_all(int fd, ByteView bytes, std::uint64_t position, const std::filesystem::path& path);
  Status sync_log();
  Status write_snapshot_file(const raft::SnapshotId& id, ByteView bytes);
  void remove_snapshots_before(const raft::SnapshotId& id);

  std::filesystem::path dir_;
  std::string cluster_id_;
  raft::NodeId node_id_ = raft::kNoNode;
  storage::Env* env_ = nullptr;
  int log_fd_ = -1;
  std::uint64_t log_size_ = 0;
  std::int64_t log_start_ = 0;
  bool log_dirty_ = false;
  bool failed_ = false;
  raft::SnapshotId snapshot_;
  std::vector<raft::LogEntry> entries_;  // what metadata.log holds, ascending
  std::vector<BatchSpan> batches_;
  raft::PersistedState persisted_;
};

}  // namespace bulwark::cluster
