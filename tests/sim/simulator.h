// A deterministic simulator for the KRaft core: N real RaftNodes in one process over a simulated
// network and disk, driven by one seeded PRNG and simulated time. Every run is a pure function of
// its options, so a failing seed replays exactly.
#pragma once

#include <cstdint>
#include <string>

#include "raft/node.h"

namespace bulwark::sim {

struct SimOptions {
  uint64_t seed = 1;
  int voters = 3;
  int observers = 1;
  int64_t fault_phase_ms = 6000;  // faults of every kind
  int64_t quiet_phase_ms = 4000;  // healed, nobody crashes: a leader must emerge and commit
  raft::TestFault core_fault = raft::TestFault::none;
  // The replicated state machine: a hash chain over opaque payloads, or the real metadata image with
  // the real controller decisions choosing what the leader proposes.
  enum class Machine { hash_chain, metadata };
  Machine machine = Machine::hash_chain;
  bool controller_eager_activation = false;  // a broken controller, to prove the checker catches it
  bool verbose = false;
};

struct RunResult {
  bool ok = true;
  std::string violation;  // the first violated invariant, in words
  int64_t violation_time_ms = -1;
  uint64_t trace_hash = 0;  // digest of every event, for determinism checks
  int64_t events = 0;
  int64_t committed = 0;
  int64_t leaders = 0;  // epochs that had a leader
  int64_t crashes = 0;
  int64_t snapshots_saved = 0;
  int64_t snapshots_installed = 0;
  int64_t truncations = 0;
};

RunResult run_simulation(const SimOptions& options);

}  // namespace bulwark::sim
