// Bulwark's KRaft consensus core (KIP-595 / KIP-630), a pure state machine: no sockets, clocks,
// files, threads or global randomness. The driver feeds it time, messages, proposals and I/O
// completions, and drains its outputs as a Ready batch (like etcd's raft.Ready).
//
// Driver contract, for every Ready taken with take_ready():
//  1. quorum_state (if set) must be durable BEFORE any message of this batch, or of any later batch,
//     is sent: votes and epochs are promises to peers. Write it to a temp file, fsync, rename.
//  2. log_writes are applied in order, and issued only once the quorum_state of the same batch is
//     durable. They may become durable later; report it with on_log_durable(write_id), which also
//     promises that every earlier batch is durable. (Checked: log durability running ahead of a
//     batch's quorum state is an invariant violation.)
//  3. messages may then be sent (subject to 1), in any order; the network may lose or reorder them.
//  4. committed entries are applied to the state machine in order; install_snapshot (if set) is saved
//     durably and loaded into the state machine after them, then on_snapshot_loaded(id) is called.
// A crash may lose any write not yet made durable; restart with what was durable (PersistedState).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "raft/memory_log.h"
#include "raft/messages.h"
#include "raft/quorum_state.h"
#include "raft/random.h"

namespace bulwark::raft {

// Deliberately broken behaviour, for proving that the simulator's checker catches bugs. Never set
// outside tests.
enum class TestFault {
  none,
  vote_ignores_log,         // grant votes without comparing logs
  commit_without_majority,  // leader advances the high watermark on its own durable end
  // Regressions of bugs the simulator found, kept so it must keep finding them:
  accept_stale_fetch_answers,  // act on Fetch answers without matching them to the latest request
  reset_timer_on_any_epoch,    // restart the election timer whenever a higher epoch is seen
  advertise_volatile_log,      // VoteRequest claims the whole log, durable or not
};

struct Config {
  std::string cluster_id;
  NodeId node_id = kNoNode;
  std::vector<NodeId> voters;         // the static voter set (controller.quorum.voters)
  int64_t election_timeout_ms = 1000;  // T; a timeout is T + rand(T)
  int64_t fetch_timeout_ms = 2000;
  int64_t election_backoff_max_ms = 1000;
  int64_t request_timeout_ms = 2000;   // resend an unanswered request after this
  int64_t fetch_backoff_ms = 50;       // pause after an empty fetch answer (stands in for long-poll)
  int32_t max_fetch_bytes = 1 << 20;
  int32_t max_fetch_entries = 512;
  int32_t max_snapshot_chunk_bytes = 1 << 20;
  TestFault test_fault = TestFault::none;
};

// What was durable when the node (re)started.
struct PersistedState {
  std::optional<QuorumStateData> quorum_state;  // absent on first start
  SnapshotId snapshot;                          // latest durable snapshot, if any
  std::vector<uint8_t> snapshot_bytes;
  std::vector<LogEntry> log;                    // durable entries, contiguous, ascending
};

struct OutgoingMessage {
  NodeId to = kNoNode;
  Message message;
  // Kafka's request header correlation id: a request gets a fresh one, a response echoes its
  // request's. The driver carries it to the peer's receive().
  int32_t correlation_id = 0;
};

struct LogWrite {
  enum class Kind {
    append,       // entries at the end of the log
    truncate,     // drop every entry at or after `offset`
    drop_prefix,  // a local snapshot was saved: entries before snapshot.end_offset may go
    reset,        // a leader's snapshot was installed: drop the whole log; it restarts at the snapshot
  };
  Kind kind = Kind::append;
  std::vector<LogEntry> entries;
  int64_t offset = 0;
  SnapshotId snapshot;
};

struct SnapshotInstall {
  SnapshotId id;
  std::vector<uint8_t> bytes;
};

struct Ready {
  uint64_t write_id = 0;  // non-zero when quorum_state or log_writes are set
  std::optional<QuorumStateData> quorum_state;
  std::vector<LogWrite> log_writes;
  std::vector<OutgoingMessage> messages;
  std::vector<LogEntry> committed;
  std::optional<SnapshotInstall> install_snapshot;
  bool empty() const {
    return !quorum_state && log_writes.empty() && messages.empty() && committed.empty() && !install_snapshot;
  }
};

enum class Role { unattached, voted, candidate, leader, follower, resigned };
const char* role_name(Role role);

struct ProposeResult {
  ErrorCode error = ErrorCode::none;  // not_leader_or_follower when this node does not lead
  LeaderIdAndEpoch leader;             // the leader as this node knows it
  int64_t first_offset = kNoOffset;
  int64_t last_offset = kNoOffset;
};

class RaftNode {
 public:
  // Validates the config (a node id, a non-empty voter set of distinct ids, positive timeouts) and
  // restores the durable state. `seed` drives this node's timeouts.
  static Result<RaftNode> create(Config config, PersistedState persisted, uint64_t seed, int64_t now_ms);

  void tick(int64_t now_ms);
  void receive(int64_t now_ms, NodeId from, const Message& message, int32_t correlation_id = 0);
  ProposeResult propose(int64_t now_ms, std::vector<std::vector<uint8_t>> payloads);
  // Graceful resignation (shutdown): EndQuorumEpoch with the voters most caught up first.
  void resign(int64_t now_ms);

  void on_log_durable(int64_t now_ms, uint64_t write_id);
  void on_quorum_state_persisted(int64_t now_ms, uint64_t write_id);
  // The snapshot id for a local snapshot ending at `end_offset`: it must be committed, applied, and
  // above the current log start.
  Result<SnapshotId> snapshot_id_at(int64_t end_offset) const;
  // The driver saved (durably) a snapshot of its state machine at `id`; the log prefix may go.
  Status on_snapshot_saved(int64_t now_ms, const SnapshotId& id, std::vector<uint8_t> bytes);
  // The snapshot handed out in Ready::install_snapshot is durable and loaded.
  void on_snapshot_loaded(int64_t now_ms, const SnapshotId& id);

  bool has_ready() const;
  Ready take_ready();

  QuorumDescription describe_quorum(int64_t now_ms) const;

  NodeId id() const { return config_.node_id; }
  bool is_voter() const { return is_voter(config_.node_id); }
  Role role() const { return role_; }
  int32_t epoch() const { return epoch_; }
  NodeId leader_id() const { return leader_; }
  NodeId voted_id() const { return voted_; }
  int64_t high_watermark() const { return high_watermark_; }
  int64_t durable_end_offset() const { return durable_end_; }
  const MemoryLog& log() const { return log_; }
  const Config& config() const { return config_; }

 private:
  struct ReplicaProgress {
    int64_t end_offset = kNoOffset;  // last fetch offset = durable end of that replica
    int64_t last_fetch_ms = -1;
    int64_t last_caught_up_ms = -1;
    bool begin_acked = false;
    int64_t begin_sent_ms = -1;
  };
  struct SnapshotDownload {
    SnapshotId id;
    std::vector<uint8_t> bytes;
  };
  struct PendingWrite {
    uint64_t write_id;
    int64_t end_after;  // log end after that batch, lowered by later truncations
  };

  RaftNode(Config config, uint64_t seed) : config_(std::move(config)), rng_(seed) {}
  void restore(PersistedState persisted, int64_t now_ms);

  bool is_voter(NodeId node) const;
  size_t majority() const { return config_.voters.size() / 2 + 1; }
  LeaderIdAndEpoch current_leader() const { return {leader_, epoch_}; }
  void send(NodeId to, Message message, int32_t correlation_id);
  int32_t request(NodeId to, Message message);  // returns the correlation id
  void respond(NodeId to, Message message);     // echoes the request being handled
  void persist_state() { state_dirty_ = true; }
  QuorumStateData quorum_state() const;

  // Transitions.
  void set_epoch(int32_t epoch);
  void become_unattached(int64_t now_ms, int32_t epoch);
  void become_voted(int64_t now_ms, NodeId candidate);
  void become_candidate(int64_t now_ms, bool new_epoch);
  void become_leader(int64_t now_ms);
  void become_follower(int64_t now_ms, int32_t epoch, NodeId leader);
  void become_resigned(int64_t now_ms);
  bool observe_leader(int64_t now_ms, const LeaderIdAndEpoch& leader);
  int64_t random_election_timeout();

  // Handlers.
  void handle(int64_t now_ms, NodeId from, const VoteRequest& request);
  void handle(int64_t now_ms, NodeId from, const VoteResponse& response);
  void handle(int64_t now_ms, NodeId from, const BeginQuorumEpochRequest& request);
  void handle(int64_t now_ms, NodeId from, const BeginQuorumEpochResponse& response);
  void handle(int64_t now_ms, NodeId from, const EndQuorumEpochRequest& request);
  void handle(int64_t now_ms, NodeId from, const EndQuorumEpochResponse& response);
  void handle(int64_t now_ms, NodeId from, const FetchRequest& request);
  void handle(int64_t now_ms, NodeId from, const FetchResponse& response);
  void handle(int64_t now_ms, NodeId from, const FetchSnapshotRequest& request);
  void handle(int64_t now_ms, NodeId from, const FetchSnapshotResponse& response);
  ErrorCode validate_leader_request(const std::string& cluster_id, int32_t epoch) const;
  bool log_is_up_to_date(int32_t last_epoch, int64_t end_offset) const;
  FetchResponse answer_fetch(int64_t now_ms, NodeId from, const FetchRequest& request);
  void truncate_to_diverging(const EpochEndOffset& diverging);
  // Where the new entries of a Fetch answer start (records.size(): none are new), or nullopt when
  // the answer does not continue our log: a gap, offsets out of order, epochs falling or above the
  // leader's. Such an answer is dropped, not appended: the log's invariants must not be a peer's to
  // trip. (A batch may legitimately start below the fetch offset; that prefix is skipped.)
  std::optional<size_t> first_appendable(const std::vector<LogEntry>& records) const;

  // Leader and follower work.
  void append_as_leader(EntryKind kind, std::vector<uint8_t> payload);
  void maybe_advance_high_watermark();
  void set_high_watermark(int64_t offset);
  void deliver_committed();
  void send_vote_requests(int64_t now_ms);
  void send_begin_epochs(int64_t now_ms);
  void send_end_epochs(int64_t now_ms);
  void maybe_send_fetch(int64_t now_ms);
  void check_quorum(int64_t now_ms);
  std::vector<NodeId> preferred_successors() const;

  Config config_;
  Random rng_;
  MemoryLog log_;

  Role role_ = Role::unattached;
  int32_t epoch_ = 0;
  NodeId leader_ = kNoNode;
  NodeId voted_ = kNoNode;
  int64_t high_watermark_ = 0;
  int64_t applied_ = 0;  // next offset to hand out as committed
  int64_t durable_end_ = 0;

  Ready ready_;
  bool state_dirty_ = false;
  uint64_t next_write_id_ = 1;
  std::deque<uint64_t> unpersisted_state_ids_;  // batches whose quorum state is not yet durable
  std::deque<PendingWrite> pending_writes_;
  std::vector<uint8_t> snapshot_bytes_;

  // Election timer (unattached, voted, candidate, resigned) and candidate bookkeeping.
  int64_t election_deadline_ms_ = 0;
  bool in_backoff_ = false;
  std::set<NodeId> granted_;
  std::set<NodeId> rejected_;
  std::map<NodeId, int64_t> vote_sent_ms_;

  // Leader.
  int64_t epoch_start_offset_ = 0;
  int64_t leader_since_ms_ = 0;
  std::map<NodeId, ReplicaProgress> voters_progress_;
  std::map<NodeId, ReplicaProgress> observers_progress_;

  // Follower (and observer).
  int64_t fetch_deadline_ms_ = 0;
  bool fetch_in_flight_ = false;
  int64_t fetch_sent_ms_ = 0;
  int64_t next_fetch_ms_ = 0;
  int64_t fetch_offset_sent_ = kNoOffset;  // what the latest Fetch asked about
  int32_t fetch_epoch_sent_ = kNoEpoch;
  int32_t fetch_correlation_ = -1;  // of the latest Fetch or FetchSnapshot
  int32_t next_correlation_id_ = 0;
  int32_t incoming_correlation_id_ = 0;
  std::optional<SnapshotDownload> download_;
  bool awaiting_install_ = false;

  // Resigned.
  std::set<NodeId> end_acked_;
  int64_t end_sent_ms_ = -1;
};

}  // namespace bulwark::raft
