#include "sim/simulator.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "raft/invariant.h"
#include "raft/random.h"
#include "sim/metadata_machine.h"
#include "sim/state_machine.h"

namespace bulwark::sim {
namespace {

using raft::LogEntry;
using raft::LogWrite;
using raft::Message;
using raft::NodeId;
using raft::RaftNode;

// A checker failure or a core invariant: ends the run, reported against its seed.
struct Violation {
  std::string what;
};

[[noreturn]] void throw_core_invariant(const char* name, const char* file, int line) {
  std::ostringstream out;
  out << "core invariant \"" << name << "\" (" << file << ":" << line << ")";
  throw Violation{out.str()};
}

[[noreturn]] void fail(const std::string& what) { throw Violation{what}; }

// What is on a node's disk: quorum-state file, latest snapshot, and the log segments.
struct DiskImage {
  std::optional<raft::QuorumStateData> quorum_state;
  raft::SnapshotId snapshot;
  std::vector<uint8_t> snapshot_bytes;
  int64_t log_start = 0;  // offset of log.front()
  std::vector<LogEntry> log;

  int64_t log_end() const { return log_start + static_cast<int64_t>(log.size()); }
  const LogEntry* entry(int64_t offset) const {
    if (offset < log_start || offset >= log_end()) return nullptr;
    return &log[static_cast<size_t>(offset - log_start)];
  }

  void apply(const LogWrite& write) {
    switch (write.kind) {
      case LogWrite::Kind::append:
        for (const LogEntry& e : write.entries) {
          if (log.empty()) log_start = e.offset;
          if (e.offset != log_end()) fail("disk: non-contiguous append at " + std::to_string(e.offset));
          log.push_back(e);
        }
        break;
      case LogWrite::Kind::truncate:
        while (!log.empty() && log_end() > write.offset) log.pop_back();
        break;
      case LogWrite::Kind::drop_prefix:
        if (write.snapshot.end_offset > log_start) {
          const int64_t drop = std::min<int64_t>(write.snapshot.end_offset - log_start, static_cast<int64_t>(log.size()));
          log.erase(log.begin(), log.begin() + drop);
          log_start = write.snapshot.end_offset;
        }
        break;
      case LogWrite::Kind::reset:
        log.clear();
        log_start = write.snapshot.end_offset;
        break;
    }
  }

  raft::PersistedState persisted() const {
    return raft::PersistedState{quorum_state, snapshot, snapshot_bytes, log};
  }
};

// The quorum-state file and the log are separate files with separate fsyncs, as in Kafka. The only
// ordering between them is the driver's: a batch's quorum state is durable before its log writes are
// issued (so log durability of batch w implies the quorum states of batches <= w are durable).
struct PendingState {
  uint64_t write_id;
  raft::QuorumStateData quorum_state;
};
struct PendingLog {
  uint64_t write_id;
  uint64_t needs_state_id;  // the latest quorum-state write at or before this batch
  std::vector<LogWrite> writes;
};

struct HeldMessage {
  uint64_t needs_write_id;
  raft::OutgoingMessage message;
};

struct SimNode {
  NodeId id = 0;
  bool voter = true;
  bool up = true;
  int incarnation = 0;
  std::optional<RaftNode> core;
  std::unique_ptr<ReplicatedStateMachine> machine;
  DiskImage disk;
  std::deque<PendingState> pending_state;  // written, not yet durable
  std::deque<PendingLog> pending_log;
  std::vector<HeldMessage> held;  // waiting for their quorum state to be durable
  uint64_t last_state_write_id = 0;
  uint64_t durable_state_id = 0;
  bool state_flush_scheduled = false;
  bool log_flush_scheduled = false;
  int64_t paused_until = 0;    // a stopped process (GC pause, SIGSTOP): nothing runs, input queues up
  int64_t slow_log_until = 0;  // a struggling log disk: fsyncs take hundreds of ms
  bool crash_armed = false;    // crash within a few ms of the next write, while it is not durable
  // Checker memory across the node's lifetimes.
  int32_t max_epoch_sent = 0;
  int32_t last_epoch = 0;
  int64_t last_high_watermark = 0;
  int64_t max_high_watermark = 0;
  raft::Role last_role = raft::Role::unattached;
};

enum class EventKind { tick, deliver, flush, fault, client, snapshot, restart, crash };

struct Event {
  EventKind kind;
  int node = -1;  // index
  int from = -1;
  int incarnation = 0;
  Message message;
  int32_t correlation_id = 0;
};

int32_t message_epoch(const Message& m) {
  return std::visit(
      [](const auto& x) -> int32_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, raft::VoteRequest>) return x.candidate_epoch;
        else if constexpr (std::is_same_v<T, raft::BeginQuorumEpochRequest> || std::is_same_v<T, raft::EndQuorumEpochRequest>) return x.leader_epoch;
        else if constexpr (std::is_same_v<T, raft::FetchRequest> || std::is_same_v<T, raft::FetchSnapshotRequest>) return x.current_leader_epoch;
        else if constexpr (std::is_same_v<T, raft::FetchResponse> || std::is_same_v<T, raft::FetchSnapshotResponse>) return x.current_leader.leader_epoch;
        else return x.leader_epoch;
      },
      m);
}

std::string describe(const Message& m) {
  std::ostringstream out;
  out << raft::message_name(m) << " epoch " << message_epoch(m);
  if (auto* f = std::get_if<raft::FetchRequest>(&m)) out << " offset " << f->fetch_offset << " last epoch " << f->last_fetched_epoch;
  if (auto* f = std::get_if<raft::FetchResponse>(&m)) {
    out << " " << raft::error_name(f->error_code) << " leader " << f->current_leader.leader_id << " hw " << f->high_watermark;
    if (f->diverging_epoch.present()) out << " diverging " << f->diverging_epoch.epoch << "@" << f->diverging_epoch.end_offset;
    if (f->snapshot_id.valid()) out << " snapshot " << f->snapshot_id.end_offset << "/" << f->snapshot_id.epoch;
    if (!f->records.empty()) out << " records " << f->records.front().offset << ".." << f->records.back().offset;
  }
  if (auto* v = std::get_if<raft::VoteRequest>(&m)) out << " last " << v->last_offset_epoch << "/" << v->last_offset;
  if (auto* v = std::get_if<raft::VoteResponse>(&m)) out << (v->vote_granted ? " granted" : " refused") << " " << raft::error_name(v->error_code);
  if (auto* s = std::get_if<raft::FetchSnapshotResponse>(&m)) out << " pos " << s->position << " size " << s->size << " " << raft::error_name(s->error_code);
  return out.str();
}

class Cluster {
 public:
  explicit Cluster(const SimOptions& options) : options_(options), rng_(options.seed * 0x2545F4914F6CDD1DULL + 1) {}

  RunResult run();

 private:
  // Setup and the event loop.
  raft::Config config_for(NodeId id) const;
  void start_node(SimNode& node);
  void schedule(int64_t at, Event event);
  void dispatch(Event& event);

  // Driver duties.
  void drain(SimNode& node);
  void send(SimNode& from, const raft::OutgoingMessage& message);
  void flush_state(SimNode& node);
  void flush_log(SimNode& node);
  void schedule_flush(SimNode& node, bool state);
  void crash(SimNode& node);
  void deliver(Event& event);
  void apply_committed(SimNode& node, const LogEntry& entry);
  void install_snapshot(SimNode& node, const raft::SnapshotInstall& install);
  void take_local_snapshot(SimNode& node);

  // Faults and clients.
  void fault_step();
  void client_step();
  void controller_step(SimNode& node);
  std::unique_ptr<ReplicatedStateMachine> make_machine(raft::NodeId id) const;
  void heal();
  int64_t restart_delay();

  // Checks.
  void check_after_event();
  void check_majority_holds_committed(bool full);
  void check_liveness();
  void trace(const char* kind, int a, int b, int64_t c);
  // printf-style; the attribute lets the compiler check every call's arguments.
  void log(const char* format, ...) __attribute__((format(printf, 2, 3)));

  SimOptions options_;
  raft::Random rng_;
  int64_t now_ = 0;
  uint64_t next_seq_ = 0;
  std::map<std::pair<int64_t, uint64_t>, Event> events_;
  std::vector<SimNode> nodes_;
  std::vector<std::vector<bool>> cut_;  // cut_[a][b]: a's messages to b are dropped
  // Network profile.
  uint32_t loss_per_mille_ = 0;
  uint32_t dup_per_mille_ = 0;
  int64_t max_delay_ms_ = 5;
  // Global knowledge.
  std::vector<LogEntry> committed_;
  std::vector<uint64_t> digest_at_;  // digest_at_[n]: state digest after applying offsets [0, n)
  std::map<int32_t, NodeId> leader_of_epoch_;
  std::map<std::pair<int64_t, int32_t>, std::vector<uint8_t>> proposed_;  // (offset, epoch) -> payload
  uint32_t next_value_ = 1;
  int64_t quiet_mark_ = -1;  // committed length when the quiet phase began
  RunResult result_;
};

void Cluster::log(const char* format, ...) {
  if (!options_.verbose) return;
  std::printf("%7lld ", static_cast<long long>(now_));
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::printf("\n");
}

void Cluster::trace(const char* kind, int a, int b, int64_t c) {
  uint64_t h = result_.trace_hash ^ static_cast<uint64_t>(now_);
  for (const char* p = kind; *p; ++p) h = h * 1099511628211ULL ^ static_cast<uint8_t>(*p);
  h = h * 1099511628211ULL ^ static_cast<uint64_t>(a + 1);
  h = h * 1099511628211ULL ^ static_cast<uint64_t>(b + 1);
  h = h * 1099511628211ULL ^ static_cast<uint64_t>(c);
  result_.trace_hash = h;
}

raft::Config Cluster::config_for(NodeId id) const {
  raft::Config config;
  config.cluster_id = "sim-cluster";
  config.node_id = id;
  for (int v = 1; v <= options_.voters; ++v) config.voters.push_back(v);
  // Kafka's defaults scaled down ~6x so a short run sees many elections.
  config.election_timeout_ms = 150;
  config.fetch_timeout_ms = 300;
  config.election_backoff_max_ms = 150;
  config.request_timeout_ms = 80;
  config.fetch_backoff_ms = 10;
  config.max_fetch_entries = 8;
  config.max_fetch_bytes = 256;
  config.max_snapshot_chunk_bytes = 64;
  config.test_fault = options_.core_fault;
  return config;
}

std::unique_ptr<ReplicatedStateMachine> Cluster::make_machine(raft::NodeId id) const {
  if (options_.machine == SimOptions::Machine::metadata)
    return std::make_unique<MetadataMachine>(id, options_.controller_eager_activation);
  return std::make_unique<HashChainMachine>();
}

void Cluster::start_node(SimNode& node) {
  node.machine = make_machine(node.id);
  if (node.disk.snapshot.valid() && !node.machine->load(node.disk.snapshot_bytes)) fail("durable snapshot does not load");
  auto core = RaftNode::create(config_for(node.id), node.disk.persisted(), rng_.next(), now_);
  if (!core) fail("node " + std::to_string(node.id) + " does not restart: " + core.error().message);
  node.core.emplace(std::move(*core));
  node.up = true;
  node.pending_state.clear();
  node.pending_log.clear();
  node.held.clear();
  node.state_flush_scheduled = node.log_flush_scheduled = false;
  node.crash_armed = false;
  node.last_state_write_id = 0;
  node.durable_state_id = 0;
  ++node.incarnation;
  // A restarted node has only what was durable: its high watermark restarts at its snapshot.
  const int64_t hw = node.core->high_watermark();
  if (hw > node.max_high_watermark) fail("node " + std::to_string(node.id) + " restarted with a high watermark it never had");
  node.last_high_watermark = hw;
  if (node.core->epoch() < node.max_epoch_sent)
    fail("node " + std::to_string(node.id) + " restarted at epoch " + std::to_string(node.core->epoch()) +
         " below epoch " + std::to_string(node.max_epoch_sent) + " it already sent messages in");
  node.last_epoch = node.core->epoch();
  node.last_role = node.core->role();
  log("n%d starts (incarnation %d) epoch %d role %s hw %lld", node.id, node.incarnation, node.core->epoch(),
      raft::role_name(node.core->role()), static_cast<long long>(hw));
  drain(node);
}

void Cluster::schedule(int64_t at, Event event) { events_.emplace(std::make_pair(at, next_seq_++), std::move(event)); }

// ---------------------------------------------------------------------------------------------
// The driver: what a real node's I/O loop does with each Ready.

void Cluster::drain(SimNode& node) {
  while (node.up && node.core->has_ready()) {
    raft::Ready ready = node.core->take_ready();
    if (ready.write_id != 0) {
      for (auto& write : ready.log_writes)
        if (write.kind == LogWrite::Kind::truncate) ++result_.truncations;
      if (ready.quorum_state) {
        node.pending_state.push_back(PendingState{ready.write_id, *ready.quorum_state});
        node.last_state_write_id = ready.write_id;
        schedule_flush(node, true);
      }
      node.pending_log.push_back(PendingLog{ready.write_id, node.last_state_write_id, std::move(ready.log_writes)});
      schedule_flush(node, false);
      if (node.crash_armed) {
        node.crash_armed = false;
        schedule(now_ + rng_.below(4), Event{EventKind::crash, static_cast<int>(&node - nodes_.data()), -1, node.incarnation, {}});
      }
    }
    for (auto& message : ready.messages) {
      // Rule 1 of the contract: no message before the quorum state it relies on is durable.
      if (node.last_state_write_id > node.durable_state_id)
        node.held.push_back(HeldMessage{node.last_state_write_id, std::move(message)});
      else
        send(node, message);
    }
    for (const LogEntry& entry : ready.committed) apply_committed(node, entry);
    if (ready.install_snapshot) install_snapshot(node, *ready.install_snapshot);
  }
}

void Cluster::send(SimNode& from, const raft::OutgoingMessage& out) {
  const int32_t epoch = message_epoch(out.message);
  const int32_t durable_epoch = from.disk.quorum_state ? from.disk.quorum_state->leader_epoch : 0;
  if (from.last_state_write_id > from.durable_state_id)
    fail("node " + std::to_string(from.id) + " sent " + raft::message_name(out.message) + " before its quorum state was durable");
  if (epoch > durable_epoch)
    fail("node " + std::to_string(from.id) + " sent " + raft::message_name(out.message) + " of epoch " + std::to_string(epoch) +
         " while its durable epoch is " + std::to_string(durable_epoch));
  if (auto* vote = std::get_if<raft::VoteResponse>(&out.message); vote && vote->vote_granted) {
    const auto& qs = *from.disk.quorum_state;
    if (qs.leader_epoch == vote->leader_epoch && qs.voted_id != out.to && qs.leader_id < 0)
      fail("node " + std::to_string(from.id) + " granted a vote that is not durable");
  }
  from.max_epoch_sent = std::max(from.max_epoch_sent, epoch);
  const int to = out.to - 1;
  if (to < 0 || to >= static_cast<int>(nodes_.size())) fail("message to unknown node " + std::to_string(out.to));
  const int from_index = from.id - 1;
  trace(raft::message_name(out.message), from_index, to, epoch);
  if (cut_[from_index][to] || rng_.below(1000) < loss_per_mille_) return;
  int copies = rng_.below(1000) < dup_per_mille_ ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    int64_t delay = 1 + rng_.below(max_delay_ms_);
    if (rng_.chance(1, 50)) delay += rng_.below(10 * max_delay_ms_);  // a straggler
    schedule(now_ + delay, Event{EventKind::deliver, to, from_index, 0, out.message, out.correlation_id});
  }
}

void Cluster::schedule_flush(SimNode& node, bool state) {
  bool& scheduled = state ? node.state_flush_scheduled : node.log_flush_scheduled;
  if (scheduled) return;
  scheduled = true;
  // Mostly quick, sometimes a slow disk; the two files are independent.
  int64_t delay = rng_.chance(1, 15) ? 5 + rng_.below(40) : 1 + rng_.below(4);
  if (!state && node.slow_log_until > now_) delay = 50 + rng_.below(400);
  schedule(now_ + delay, Event{EventKind::flush, static_cast<int>(&node - nodes_.data()), state ? 0 : 1, node.incarnation, {}});
}

void Cluster::flush_state(SimNode& node) {
  node.state_flush_scheduled = false;
  if (node.pending_state.empty()) return;
  const int32_t old_epoch = node.disk.quorum_state ? node.disk.quorum_state->leader_epoch : 0;
  node.disk.quorum_state = node.pending_state.back().quorum_state;  // temp file, fsync, rename: last wins
  node.durable_state_id = node.pending_state.back().write_id;
  node.pending_state.clear();
  if (node.disk.quorum_state->leader_epoch < old_epoch) fail("durable epoch went backwards");
  node.core->on_quorum_state_persisted(now_, node.durable_state_id);
  std::vector<HeldMessage> held = std::move(node.held);
  node.held.clear();
  for (auto& h : held) {
    if (h.needs_write_id <= node.durable_state_id) send(node, h.message);
    else node.held.push_back(std::move(h));
  }
  if (!node.pending_log.empty()) schedule_flush(node, false);
  drain(node);
}

void Cluster::flush_log(SimNode& node) {
  node.log_flush_scheduled = false;
  uint64_t durable = 0;
  // Log writes of a batch are issued only once its quorum state is durable.
  while (!node.pending_log.empty() && node.pending_log.front().needs_state_id <= node.durable_state_id) {
    for (auto& write : node.pending_log.front().writes) node.disk.apply(write);
    durable = node.pending_log.front().write_id;
    node.pending_log.pop_front();
  }
  if (durable == 0) return;
  node.core->on_log_durable(now_, durable);
  drain(node);
}

void Cluster::crash(SimNode& node) {
  // Each file got some prefix of its pending writes out before power went.
  const size_t states = static_cast<size_t>(rng_.below(static_cast<int64_t>(node.pending_state.size()) + 1));
  for (size_t i = 0; i < states; ++i) {
    node.disk.quorum_state = node.pending_state[i].quorum_state;
    node.durable_state_id = node.pending_state[i].write_id;
  }
  size_t logs = static_cast<size_t>(rng_.below(static_cast<int64_t>(node.pending_log.size()) + 1));
  size_t applied = 0;
  for (; applied < logs && node.pending_log[applied].needs_state_id <= node.durable_state_id; ++applied)
    for (auto& write : node.pending_log[applied].writes) node.disk.apply(write);
  log("n%d crashes (%zu of %zu state writes and %zu of %zu log batches survive)", node.id, states, node.pending_state.size(), applied,
      node.pending_log.size());
  trace("crash", node.id, static_cast<int>(states), static_cast<int64_t>(applied));
  node.pending_state.clear();
  node.pending_log.clear();
  node.held.clear();
  node.core.reset();
  node.machine.reset();
  node.up = false;
  ++result_.crashes;
}

void Cluster::deliver(Event& event) {
  SimNode& node = nodes_[static_cast<size_t>(event.node)];
  if (!node.up || cut_[static_cast<size_t>(event.from)][static_cast<size_t>(event.node)]) return;
  if (node.paused_until > now_) {
    schedule(node.paused_until, std::move(event));
    return;
  }
  trace("deliver", event.from, event.node, static_cast<int64_t>(event.message.index()));
  if (options_.verbose) log("n%d <- n%d %s", node.id, event.from + 1, describe(event.message).c_str());
  node.core->receive(now_, event.from + 1, event.message, event.correlation_id);
  drain(node);
}

void Cluster::apply_committed(SimNode& node, const LogEntry& entry) {
  const auto offset = static_cast<size_t>(entry.offset);
  if (offset < committed_.size()) {
    if (!(committed_[offset] == entry))
      fail("node " + std::to_string(node.id) + " committed a different entry at offset " + std::to_string(offset));
  } else if (offset == committed_.size()) {
    // What a client was told about (offset, epoch) is what commits there.
    if (entry.kind == raft::EntryKind::data) {
      auto it = proposed_.find({entry.offset, entry.epoch});
      if (it == proposed_.end() || it->second != entry.payload)
        fail("committed entry at offset " + std::to_string(offset) + " is not the one proposed there");
      proposed_.erase(it);
    }
    committed_.push_back(entry);
  } else {
    fail("node " + std::to_string(node.id) + " committed offset " + std::to_string(offset) + " past the committed end " +
         std::to_string(committed_.size()));
  }
  if (!node.machine->apply(entry)) fail("node " + std::to_string(node.id) + " applied offset " + std::to_string(offset) + " out of order");
  if (auto* metadata = dynamic_cast<MetadataMachine*>(node.machine.get()); metadata && !metadata->apply_failure().empty())
    fail("node " + std::to_string(node.id) + ": a committed record does not fit the image: " + metadata->apply_failure());
  if (digest_at_.size() == offset + 1) digest_at_.push_back(node.machine->digest());
  else if (digest_at_[offset + 1] != node.machine->digest())
    fail("node " + std::to_string(node.id) + " state differs at offset " + std::to_string(offset + 1));
}

void Cluster::install_snapshot(SimNode& node, const raft::SnapshotInstall& install) {
  const int64_t end = install.id.end_offset;
  if (end > static_cast<int64_t>(committed_.size())) fail("installed snapshot at uncommitted offset " + std::to_string(end));
  auto machine = make_machine(node.id);
  if (!machine->load(install.bytes)) fail("installed snapshot does not load");
  if (machine->applied_end() != end || machine->digest() != digest_at_[static_cast<size_t>(end)])
    fail("installed snapshot at " + std::to_string(end) + " differs from the committed state");
  // Saved durably (temp file, fsync, rename) before the core is told.
  node.disk.snapshot = install.id;
  node.disk.snapshot_bytes = install.bytes;
  node.machine = std::move(machine);
  ++result_.snapshots_installed;
  log("n%d installs snapshot end %lld epoch %d", node.id, static_cast<long long>(end), install.id.epoch);
  node.core->on_snapshot_loaded(now_, install.id);
}

void Cluster::take_local_snapshot(SimNode& node) {
  if (!node.up || node.paused_until > now_) return;
  const int64_t end = node.machine->applied_end();
  if (end <= node.core->log().start_offset() + 4) return;
  auto id = node.core->snapshot_id_at(end);
  if (!id) fail("node " + std::to_string(node.id) + " refused a snapshot at its applied offset: " + id.error().message);
  if (end > static_cast<int64_t>(committed_.size()) || node.machine->digest() != digest_at_[static_cast<size_t>(end)])
    fail("snapshot at " + std::to_string(end) + " is not of the committed state");
  node.disk.snapshot = *id;
  node.disk.snapshot_bytes = node.machine->snapshot();
  auto saved = node.core->on_snapshot_saved(now_, *id, node.disk.snapshot_bytes);
  if (!saved.ok()) fail("core rejected a valid snapshot: " + saved.error().message);
  ++result_.snapshots_saved;
  log("n%d snapshots at %lld", node.id, static_cast<long long>(end));
  drain(node);
}

// ---------------------------------------------------------------------------------------------
// Faults and clients

// Sometimes a supervisor restarts the process at once, sometimes the machine takes its time.
int64_t Cluster::restart_delay() { return rng_.chance(1, 3) ? 5 + rng_.below(45) : 20 + rng_.below(600); }

void Cluster::heal() {
  for (auto& row : cut_) std::fill(row.begin(), row.end(), false);
}

void Cluster::fault_step() {
  const int n = static_cast<int>(nodes_.size());
  SimNode& target = nodes_[static_cast<size_t>(rng_.below(n))];
  const int64_t roll = rng_.below(100);
  trace("fault", target.id, 0, roll);
  if (roll < 6) {
    if (target.up) {
      crash(target);
      schedule(now_ + restart_delay(), Event{EventKind::restart, target.id - 1, -1, 0, {}});
    }
  } else if (roll < 12) {
    if (target.up) target.crash_armed = true;
  } else if (roll < 22) {
    heal();
    std::vector<bool> side(static_cast<size_t>(n));
    for (auto&& s : side) s = rng_.chance(1, 2);
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) cut_[a][b] = side[a] != side[b];
    log("partition");
  } else if (roll < 30) {
    const int a = static_cast<int>(rng_.below(n)), b = static_cast<int>(rng_.below(n));
    cut_[a][b] = true;
    log("one-way cut n%d -> n%d", a + 1, b + 1);
  } else if (roll < 42) {
    heal();
    log("heal");
  } else if (roll < 52) {
    static const uint32_t losses[] = {0, 10, 50, 200};
    static const uint32_t dups[] = {0, 20, 100};
    static const int64_t delays[] = {3, 10, 40};
    loss_per_mille_ = losses[rng_.below(4)];
    dup_per_mille_ = dups[rng_.below(3)];
    max_delay_ms_ = delays[rng_.below(3)];
    log("network loss %u/1000 dup %u/1000 delay <= %lld", loss_per_mille_, dup_per_mille_, static_cast<long long>(max_delay_ms_));
  } else if (roll < 62) {
    if (target.up && target.paused_until <= now_) {
      target.paused_until = now_ + 50 + rng_.below(800);
      log("n%d pauses until %lld", target.id, static_cast<long long>(target.paused_until));
    }
  } else if (roll < 64) {
    target.slow_log_until = now_ + 200 + rng_.below(1500);
    log("n%d log disk slow until %lld", target.id, static_cast<long long>(target.slow_log_until));
  } else if (roll < 69) {
    if (target.up && target.core->role() == raft::Role::leader) {
      log("n%d resigns", target.id);
      target.core->resign(now_);
      drain(target);
    }
  }
}

// The leader's active controller decides what to propose, from its working image.
void Cluster::controller_step(SimNode& node) {
  auto* machine = dynamic_cast<MetadataMachine*>(node.machine.get());
  auto payloads = machine->next_proposal(node.core->epoch(), node.core->log().end_offset(), rng_);
  if (!payloads) return;
  auto copies = *payloads;
  auto result = node.core->propose(now_, std::move(*payloads));
  if (result.error != raft::ErrorCode::none) fail("the leader refused a proposal");
  if (!machine->mark_proposed(result.first_offset))
    fail("node " + std::to_string(node.id) + "'s controller proposal landed at offset " +
         std::to_string(result.first_offset) + ", not where the controller predicted");
  if (!machine->apply_failure().empty()) fail("node " + std::to_string(node.id) + ": " + machine->apply_failure());
  for (int64_t offset = result.first_offset; offset <= result.last_offset; ++offset)
    proposed_[{offset, node.core->epoch()}] = copies[static_cast<size_t>(offset - result.first_offset)];
  trace("propose", node.id, 0, result.first_offset);
  drain(node);
}

void Cluster::client_step() {
  for (auto& node : nodes_) {
    if (!node.up || node.paused_until > now_ || node.core->role() != raft::Role::leader) continue;
    if (options_.machine == SimOptions::Machine::metadata) {
      controller_step(node);
      continue;
    }
    std::vector<std::vector<uint8_t>> payloads;
    const int64_t count = 1 + rng_.below(3);
    for (int64_t i = 0; i < count; ++i) payloads.push_back(HashChainMachine::make_payload(static_cast<uint32_t>(rng_.below(40)), next_value_++));
    auto copies = payloads;
    auto result = node.core->propose(now_, std::move(payloads));
    if (result.error != raft::ErrorCode::none) fail("the leader refused a proposal");
    for (int64_t offset = result.first_offset; offset <= result.last_offset; ++offset)
      proposed_[{offset, node.core->epoch()}] = copies[static_cast<size_t>(offset - result.first_offset)];
    trace("propose", node.id, 0, result.first_offset);
    drain(node);
  }
  // A proposal to a non-leader answers with what it knows.
  SimNode& any = nodes_[static_cast<size_t>(rng_.below(static_cast<int64_t>(nodes_.size())))];
  if (any.up && any.paused_until <= now_ && any.core->role() != raft::Role::leader) {
    auto result = any.core->propose(now_, {HashChainMachine::make_payload(0, 0)});
    if (result.error != raft::ErrorCode::not_leader_or_follower) fail("a non-leader accepted a proposal");
  }
}

// ---------------------------------------------------------------------------------------------
// Checks after every event

void Cluster::check_after_event() {
  for (auto& node : nodes_) {
    if (!node.up) continue;
    const RaftNode& core = *node.core;
    auto who = [&] { return "node " + std::to_string(node.id); };
    if (core.epoch() < node.last_epoch) fail(who() + " epoch went backwards");
    if (core.high_watermark() < node.last_high_watermark) fail(who() + " high watermark went backwards");
    if (core.high_watermark() > core.log().end_offset()) fail(who() + " high watermark beyond its log end");
    if (core.high_watermark() > static_cast<int64_t>(committed_.size())) fail(who() + " high watermark beyond what was delivered");
    if (core.role() == raft::Role::leader) {
      auto [it, inserted] = leader_of_epoch_.emplace(core.epoch(), node.id);
      if (!inserted && it->second != node.id)
        fail("two leaders in epoch " + std::to_string(core.epoch()) + ": nodes " + std::to_string(it->second) + " and " + std::to_string(node.id));
      if (!node.voter) fail(who() + " is an observer and leads");
    }
    // Crash at interesting moments: just after standing for election or winning one, while the
    // new promises and the log tail may not be durable yet.
    if (core.role() != node.last_role && (core.role() == raft::Role::candidate || core.role() == raft::Role::leader) &&
        now_ < options_.fault_phase_ms && rng_.chance(1, 10))
      schedule(now_ + rng_.below(10), Event{EventKind::crash, node.id - 1, -1, node.incarnation, {}});
    if (core.role() != node.last_role || core.epoch() != node.last_epoch)
      log("n%d is %s in epoch %d (leader %d, hw %lld, log end %lld)", node.id, raft::role_name(core.role()), core.epoch(),
          core.leader_id(), static_cast<long long>(core.high_watermark()), static_cast<long long>(core.log().end_offset()));
    node.last_epoch = core.epoch();
    node.last_role = core.role();
    node.last_high_watermark = core.high_watermark();
    node.max_high_watermark = std::max(node.max_high_watermark, core.high_watermark());
  }
  check_majority_holds_committed(result_.events % 256 == 0);
}

// Every committed entry must be durable on a majority of voters (in a snapshot or in the log).
void Cluster::check_majority_holds_committed(bool full) {
  const auto end = static_cast<int64_t>(committed_.size());
  if (end == 0) return;
  int holders = 0;
  for (auto& node : nodes_) {
    if (!node.voter) continue;
    const DiskImage& disk = node.disk;
    bool holds = true;
    const int64_t from = full ? 0 : end - 1;
    for (int64_t offset = from; offset < end && holds; ++offset) {
      if (offset < disk.snapshot.end_offset) continue;
      const LogEntry* entry = disk.entry(offset);
      holds = entry && *entry == committed_[static_cast<size_t>(offset)];
    }
    if (holds) ++holders;
  }
  if (holders < options_.voters / 2 + 1)
    fail("committed offset " + std::to_string(end - 1) + " is durable on only " + std::to_string(holders) + " voters");
}

void Cluster::check_liveness() {
  const SimNode* leader = nullptr;
  int32_t top_epoch = -1;
  for (auto& node : nodes_) top_epoch = std::max(top_epoch, node.core->epoch());
  for (auto& node : nodes_)
    if (node.core->role() == raft::Role::leader && node.core->epoch() == top_epoch) leader = &node;
  if (!leader) fail("liveness: no leader after the faults stopped");
  bool quiet_commit = false;
  for (int64_t i = quiet_mark_; i < static_cast<int64_t>(committed_.size()); ++i)
    if (committed_[static_cast<size_t>(i)].kind == raft::EntryKind::data) quiet_commit = true;
  if (!quiet_commit) fail("liveness: no proposal committed after the faults stopped");
  // Everyone, observers included, caught up with what was committed well before the end.
  for (auto& node : nodes_)
    if (node.machine->applied_end() < quiet_mark_)
      fail("liveness: node " + std::to_string(node.id) + " did not catch up (applied " + std::to_string(node.machine->applied_end()) +
           " of " + std::to_string(quiet_mark_) + ")");
}

// ---------------------------------------------------------------------------------------------

void Cluster::dispatch(Event& event) {
  const bool faulty = now_ < options_.fault_phase_ms;
  switch (event.kind) {
    case EventKind::tick:
      for (auto& node : nodes_) {
        if (!node.up || node.paused_until > now_) continue;
        node.core->tick(now_);
        drain(node);
      }
      schedule(now_ + 5, Event{EventKind::tick});
      break;
    case EventKind::deliver:
      deliver(event);
      break;
    case EventKind::flush: {
      SimNode& node = nodes_[static_cast<size_t>(event.node)];
      if (node.up && node.incarnation == event.incarnation) {
        if (node.paused_until > now_) schedule(node.paused_until, std::move(event));
        else if (event.from == 0) flush_state(node);
        else flush_log(node);
      }
      break;
    }
    case EventKind::fault:
      if (faulty) {
        fault_step();
        schedule(now_ + 10 + rng_.below(150), Event{EventKind::fault});
      }
      break;
    case EventKind::client:
      client_step();
      schedule(now_ + 5 + rng_.below(30), Event{EventKind::client});
      break;
    case EventKind::snapshot:
      take_local_snapshot(nodes_[static_cast<size_t>(rng_.below(static_cast<int64_t>(nodes_.size())))]);
      schedule(now_ + 100 + rng_.below(400), Event{EventKind::snapshot});
      break;
    case EventKind::crash: {
      SimNode& node = nodes_[static_cast<size_t>(event.node)];
      if (node.up && node.incarnation == event.incarnation && now_ < options_.fault_phase_ms) {
        crash(node);
        schedule(now_ + restart_delay(), Event{EventKind::restart, event.node, -1, 0, {}});
      }
      break;
    }
    case EventKind::restart: {
      SimNode& node = nodes_[static_cast<size_t>(event.node)];
      if (!node.up) start_node(node);
      break;
    }
  }
}

RunResult Cluster::run() {
  const int total = options_.voters + options_.observers;
  nodes_.resize(static_cast<size_t>(total));
  cut_.assign(static_cast<size_t>(total), std::vector<bool>(static_cast<size_t>(total), false));
  digest_at_.push_back(make_machine(1)->digest());
  for (int i = 0; i < total; ++i) {
    nodes_[static_cast<size_t>(i)].id = i + 1;
    nodes_[static_cast<size_t>(i)].voter = i < options_.voters;
  }
  try {
    for (auto& node : nodes_) start_node(node);
    schedule(0, Event{EventKind::tick});
    schedule(rng_.below(100), Event{EventKind::fault});
    schedule(rng_.below(50), Event{EventKind::client});
    schedule(200 + rng_.below(300), Event{EventKind::snapshot});
    const int64_t end = options_.fault_phase_ms + options_.quiet_phase_ms;
    bool quiet = false;
    while (!events_.empty()) {
      auto handle = events_.extract(events_.begin());
      now_ = handle.key().first;
      if (now_ > end) break;
      if (!quiet && now_ >= options_.fault_phase_ms) {
        // Faults stop: heal the network and bring everyone back.
        quiet = true;
        heal();
        loss_per_mille_ = dup_per_mille_ = 0;
        max_delay_ms_ = 5;
        for (auto& node : nodes_)
          if (!node.up) start_node(node);
        log("faults stop");
      }
      if (quiet && quiet_mark_ < 0 && now_ >= end - options_.quiet_phase_ms / 2) quiet_mark_ = static_cast<int64_t>(committed_.size());
      ++result_.events;
      dispatch(handle.mapped());
      check_after_event();
    }
    check_majority_holds_committed(true);
    check_liveness();
  } catch (const Violation& violation) {
    result_.ok = false;
    result_.violation = violation.what;
    result_.violation_time_ms = now_;
  }
  result_.committed = static_cast<int64_t>(committed_.size());
  result_.leaders = static_cast<int64_t>(leader_of_epoch_.size());
  return result_;
}

}  // namespace

RunResult run_simulation(const SimOptions& options) {
  auto previous = raft::set_invariant_handler(&throw_core_invariant);
  Cluster cluster(options);
  RunResult result = cluster.run();
  raft::set_invariant_handler(previous);
  return result;
}

}  // namespace bulwark::sim
