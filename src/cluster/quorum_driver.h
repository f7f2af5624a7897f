// The quorum driver: one thread that runs a node's pure Raft core (raft::RaftNode) with its durable
// store (QuorumStore) and its outbound connections to the other voters (net::OutboundClient), and that
// answers the KRaft RPCs arriving on the controller listener. It keeps the core's driver contract
// (raft/node.h): a Ready's quorum state and log writes are durable before any of its messages leave,
// committed entries go to the state machine in order, snapshots are saved before they are loaded.
//
// Inbound: the broker's controller-listener router hands every Vote, BeginQuorumEpoch,
// EndQuorumEpoch, Fetch, FetchSnapshot and DescribeQuorum request to handle_request() with a callback;
// the driver decodes it (cluster/raft_wire.h), feeds it to the core and calls the callback once with
// the response body (the core's answer, encoded at the request's version) or with an error value for
// a request that must close the connection (undecodable bytes). A request the core leaves unanswered
// for the request timeout gets ErrorKind::unavailable: the router closes the connection, the peer retries.
//
// Outbound: the core's requests go to the voters' controller-listener addresses
// (controller.quorum.voters); their responses, or a transport failure, come back into the core
// (a failure is simply a lost message: the core's timers retry).
//
// Threading: every method is safe from any thread. Callbacks (on_committed, on_snapshot, on_change,
// the handle_request and propose callbacks) run on the driver thread; they must not block on the
// driver (calling its methods is fine: they queue). Exception: a call made once the driver has
// stopped is answered at once, on the caller's thread (unavailable, or not_leader_or_follower with no
// leader). stop() from a callback only asks for the stop (the thread cannot join itself); never
// destroy the driver from a callback.
//
// Time: the core runs on the steady clock shifted to read as wall-clock milliseconds at open(), so
// DescribeQuorum's fetch timestamps look like Kafka's while timers never jump.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "net/outbound.h"
#include "raft/node.h"
#include "storage/env.h"

namespace bulwark::cluster {

struct VoterAddress {
  raft::NodeId id = raft::kNoNode;
  std::string host;
  std::uint16_t port = 0;
};

// What the node knows about the quorum now (a copy, refreshed after every driver round).
struct QuorumStatus {
  raft::Role role = raft::Role::unattached;
  std::int32_t epoch = 0;
  raft::NodeId leader_id = raft::kNoNode;  // kNoNode while unknown
  std::int64_t high_watermark = 0;
  std::int64_t log_end_offset = 0;         // durable end of the local log
  bool is_leader() const { return role == raft::Role::leader; }
};

struct QuorumDriverOptions {
  raft::Config raft;  // cluster id, node id, voters, timeouts
  std::filesystem::path metadata_dir;
  std::vector<VoterAddress> voters;  // every voter's controller listener (this node's own entry is not dialled)
  net::OutboundOptions outbound;     // security protocol and TLS for dialling voters
  storage::Env* env = nullptr;       // default storage::Env::posix()
  std::uint64_t seed = 0;            // 0 = random: drives election timeouts

  // Committed entries in log order, every kind (leader_change entries too, so the caller can follow
  // the applied offset). Runs on the driver thread.
  std::function<void(const std::vector<raft::LogEntry>&)> on_committed;
  // A snapshot was saved: load it (replacing the state machine) before returning. Called for a
  // leader's snapshot when it is installed, and once at start (before any on_committed) with the
  // latest local snapshot when the metadata dir has one: committed entries then resume after its end.
  // A failure leaves the driver failed().
  std::function<Status(const raft::SnapshotId&, ByteView bytes)> on_snapshot;
  // The role, epoch or leader changed (also called once at start with the restored state, once it is
  // durable; before start() status() shows its epoch with no role or leader). Once the
  // driver failed() it reports role unattached and no leader.
  std::function<void(const QuorumStatus&)> on_change;
};

class QuorumDriver {
 public:
  // Opens the store (refusing, with both values named, a quorum-state whose voters or cluster id
  // disagree with the options) and restores the core. Nothing runs until start().
  static Result<std::unique_ptr<QuorumDriver>> open(QuorumDriverOptions options);
  ~QuorumDriver();  // stop()
  QuorumDriver(const QuorumDriver&) = delete;
  QuorumDriver& operator=(const QuorumDriver&) = delete;

  Status start();
  // Graceful: a leader resigns (EndQuorumEpoch to the voters) and waits up to `grace` for it to go out,
  // then the thread stops and every pending callback gets ErrorKind::unavailable. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

  using ResponseCallback = std::function<void(Result<Bytes>)>;
  // A KRaft request from the controller listener (api keys 1, 52, 53, 54, 55, 59), its body after the
  // request header.
  void handle_request(std::int16_t api_key, std::int16_t api_version, Bytes body, ResponseCallback respond);

  // Appends payloads (framed metadata records, one per log entry) as the leader, in one go.
  // `done` gets the core's answer: the offsets, or not_leader_or_follower with the leader it knows.
  void propose(std::vector<Bytes> payloads, std::function<void(raft::ProposeResult)> done);

  // A local snapshot of the state machine ending at `end_offset` (committed and applied).
  void save_snapshot(std::int64_t end_offset, Bytes bytes, std::function<void(Status)> done);

  QuorumStatus status() const;
  // What DescribeQuorum answers (on a non-leader: not_leader_or_follower and the leader it knows).
  void describe(std::function<void(raft::QuorumDescription)> done);

  // The store failed (an fsync or write error) or on_snapshot did: the node no longer takes part
  // (nothing more is sent; requests get unavailable) and said why in the log, once.
  bool failed() const;

  struct Impl;

 private:
  explicit QuorumDriver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::cluster
