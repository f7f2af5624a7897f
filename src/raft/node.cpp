#include "raft/node.h"

#include <algorithm>
#include <cstdint>

#include "raft/invariant.h"

namespace bulwark::raft {

const char* role_name(Role role) {
  switch (role) {
    case Role::unattached: return "unattached";
    case Role::voted: return "voted";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
    case Role::follower: return "follower";
    case Role::resigned: return "resigned";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Construction and restart

Result<RaftNode> RaftNode::create(Config config, PersistedState persisted, uint64_t seed, int64_t now_ms) {
  if (config.node_id < 0) return make_error(ErrorKind::invalid_argument, "raft: node id must be >= 0");
  if (config.voters.empty()) return make_error(ErrorKind::invalid_argument, "raft: the voter set is empty");
  std::sort(config.voters.begin(), config.voters.end());
  if (std::adjacent_find(config.voters.begin(), config.voters.end()) != config.voters.end())
    return make_error(ErrorKind::invalid_argument, "raft: a voter is listed twice");
  if (config.voters.front() < 0) return make_error(ErrorKind::invalid_argument, "raft: voter ids must be >= 0");
  if (config.election_timeout_ms <= 0 || config.fetch_timeout_ms <= 0 || config.request_timeout_ms <= 0 ||
      config.election_backoff_max_ms <= 0 || config.fetch_backoff_ms < 0)
    return make_error(ErrorKind::invalid_argument, "raft: timeouts must be positive");
  if (config.max_fetch_bytes <= 0 || config.max_fetch_entries <= 0 || config.max_snapshot_chunk_bytes <= 0)
    return make_error(ErrorKind::invalid_argument, "raft: fetch limits must be positive");
  if (persisted.quorum_state && persisted.quorum_state->leader_epoch < 0 && persisted.quorum_state->leader_epoch != kNoEpoch)
    return make_error(ErrorKind::corrupt, "raft: quorum state has a negative epoch");
  for (size_t i = 1; i < persisted.log.size(); ++i)
    if (persisted.log[i].offset != persisted.log[i - 1].offset + 1 || persisted.log[i].epoch < persisted.log[i - 1].epoch)
      return make_error(ErrorKind::corrupt, "raft: the durable log is not contiguous");
  if (!persisted.log.empty() && persisted.log.front().offset < 0)
    return make_error(ErrorKind::corrupt, "raft: the durable log starts at a negative offset");
  // The quorum state is persisted before any entry of its epoch is written.
  const int32_t state_epoch = persisted.quorum_state ? persisted.quorum_state->leader_epoch : 0;
  const int32_t log_epoch = std::max(persisted.log.empty() ? 0 : persisted.log.back().epoch,
                                     persisted.snapshot.valid() ? persisted.snapshot.epoch : 0);
  if (log_epoch > state_epoch)
    return make_error(ErrorKind::corrupt, "raft: the log holds epoch " + std::to_string(log_epoch) +
                                              " but the quorum state only epoch " + std::to_string(state_epoch));
  RaftNode node(std::move(config), seed);
  // A fresh range per incarnation, so answers to a previous life's requests rarely match.
  node.next_correlation_id_ = static_cast<int32_t>(node.rng_.below(INT32_MAX));
  node.restore(std::move(persisted), now_ms);
  return node;
}

void RaftNode::restore(PersistedState persisted, int64_t now_ms) {
  const SnapshotId snapshot = persisted.snapshot;
  if (snapshot.valid()) {
    log_.reset_to_snapshot(snapshot);
    snapshot_bytes_ = std::move(persisted.snapshot_bytes);
  }
  // Keep the durable entries that continue the snapshot. A prefix inside the snapshot is dropped; a
  // suffix that does not continue it (a log older than an installed snapshot) is dropped whole. The
  // first Ready tells the disk.
  bool prefix_dropped = false;
  bool mismatch = false;
  for (auto& entry : persisted.log) {
    if (entry.offset < log_.start_offset()) {
      if (entry.offset == snapshot.end_offset - 1 && entry.epoch != snapshot.epoch) mismatch = true;
      prefix_dropped = true;
      continue;
    }
    if (mismatch || entry.offset != log_.end_offset()) {
      mismatch = true;
      break;
    }
    log_.append(std::move(entry));
  }
  if (mismatch) {
    log_ = MemoryLog();
    if (snapshot.valid()) log_.reset_to_snapshot(snapshot);
    if (snapshot.valid()) ready_.log_writes.push_back(LogWrite{LogWrite::Kind::reset, {}, snapshot.end_offset, snapshot});
    else ready_.log_writes.push_back(LogWrite{LogWrite::Kind::truncate, {}, 0, {}});
  } else if (prefix_dropped) {
    ready_.log_writes.push_back(LogWrite{LogWrite::Kind::drop_prefix, {}, snapshot.end_offset, snapshot});
  }
  durable_end_ = log_.end_offset();
  high_watermark_ = log_.start_offset();
  applied_ = log_.start_offset();

  election_deadline_ms_ = now_ms + random_election_timeout();
  const QuorumStateData state = persisted.quorum_state.value_or(QuorumStateData{});
  epoch_ = std::max<int32_t>(0, state.leader_epoch);
  RAFT_INVARIANT(epoch_ >= log_.last_epoch(), "quorum-state epoch covers every durable entry");
  if (state.leader_id == config_.node_id) {
    leader_ = config_.node_id;
    become_resigned(now_ms);
  } else if (state.leader_id >= 0) {
    become_follower(now_ms, epoch_, state.leader_id);
  } else if (state.voted_id == config_.node_id && is_voter()) {
    become_candidate(now_ms, /*new_epoch=*/false);
  } else if (state.voted_id >= 0 && is_voter()) {
    become_unattached(now_ms, epoch_);
    become_voted(now_ms, state.voted_id);
  } else {
    become_unattached(now_ms, epoch_);
  }
  // As in Kafka, the only voter need not wait out an election timeout: it stands (and wins) at once.
  if (is_voter() && config_.voters.size() == 1 && role_ != Role::candidate && role_ != Role::leader)
    become_candidate(now_ms, true);
  // Restoring is not a new promise: the state just read back is already on disk, unless the
  // restart itself moved on (a single voter that wins at once).
  const QuorumStateData now_state = quorum_state();
  state_dirty_ = !persisted.quorum_state || now_state.leader_id != state.leader_id ||
                 now_state.leader_epoch != state.leader_epoch || now_state.voted_id != state.voted_id;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

bool RaftNode::is_voter(NodeId node) const {
  return std::binary_search(config_.voters.begin(), config_.voters.end(), node);
}

void RaftNode::send(NodeId to, Message message, int32_t correlation_id) {
  RAFT_INVARIANT(to != config_.node_id, "a node never messages itself");
  ready_.messages.push_back(OutgoingMessage{to, std::move(message), correlation_id});
}

int32_t RaftNode::request(NodeId to, Message message) {
  const int32_t id = next_correlation_id_;
  next_correlation_id_ = next_correlation_id_ == INT32_MAX ? 0 : next_correlation_id_ + 1;
  send(to, std::move(message), id);
  return id;
}

void RaftNode::respond(NodeId to, Message message) { send(to, std::move(message), incoming_correlation_id_); }

QuorumStateData RaftNode::quorum_state() const {
  QuorumStateData state;
  state.cluster_id = config_.cluster_id;
  state.leader_id = leader_;
  state.leader_epoch = epoch_;
  state.voted_id = voted_;
  state.applied_offset = 0;
  state.current_voters = config_.voters;
  return state;
}

int64_t RaftNode::random_election_timeout() {
  return config_.election_timeout_ms + rng_.below(config_.election_timeout_ms);
}

bool RaftNode::has_ready() const { return state_dirty_ || !ready_.empty(); }

Ready RaftNode::take_ready() {
  Ready out = std::move(ready_);
  ready_ = Ready{};
  if (state_dirty_) out.quorum_state = quorum_state();
  state_dirty_ = false;
  if (out.quorum_state || !out.log_writes.empty()) {
    out.write_id = next_write_id_++;
    pending_writes_.push_back(PendingWrite{out.write_id, log_.end_offset()});
    if (out.quorum_state) unpersisted_state_ids_.push_back(out.write_id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Transitions

void RaftNode::set_epoch(int32_t epoch) {
  RAFT_INVARIANT(epoch >= epoch_, "epochs only rise");
  if (epoch != epoch_) {
    epoch_ = epoch;
    voted_ = kNoNode;
    leader_ = kNoNode;
  }
}

void RaftNode::become_unattached(int64_t now_ms, int32_t epoch) {
  // Raft resets the election timer on hearing from a leader or granting a vote, not on merely seeing
  // a higher epoch: a voter with a stale log that keeps standing for election must not hold the
  // others' timers back forever (the simulator found that livelock).
  const bool timer_running = (role_ == Role::unattached || role_ == Role::voted || role_ == Role::candidate) &&
                             config_.test_fault != TestFault::reset_timer_on_any_epoch;
  set_epoch(epoch);
  role_ = Role::unattached;
  leader_ = kNoNode;
  if (!timer_running) election_deadline_ms_ = now_ms + random_election_timeout();
  in_backoff_ = false;
  fetch_in_flight_ = false;
  next_fetch_ms_ = now_ms;
  download_.reset();
  persist_state();
}

void RaftNode::become_voted(int64_t now_ms, NodeId candidate) {
  RAFT_INVARIANT(role_ == Role::unattached && voted_ == kNoNode, "one vote per epoch");
  role_ = Role::voted;
  voted_ = candidate;
  election_deadline_ms_ = now_ms + random_election_timeout();
  persist_state();
}

void RaftNode::become_candidate(int64_t now_ms, bool new_epoch) {
  RAFT_INVARIANT(is_voter(), "only voters stand for election");
  if (new_epoch) set_epoch(epoch_ + 1);
  role_ = Role::candidate;
  leader_ = kNoNode;
  voted_ = config_.node_id;
  granted_ = {config_.node_id};
  rejected_.clear();
  vote_sent_ms_.clear();
  in_backoff_ = false;
  download_.reset();
  awaiting_install_ = false;
  election_deadline_ms_ = now_ms + random_election_timeout();
  persist_state();
  if (granted_.size() >= majority()) {
    become_leader(now_ms);
    return;
  }
  send_vote_requests(now_ms);
}

void RaftNode::become_leader(int64_t now_ms) {
  RAFT_INVARIANT(role_ == Role::candidate && voted_ == config_.node_id, "a leader voted for itself");
  RAFT_INVARIANT(granted_.size() >= majority(), "a leader holds a majority of votes");
  role_ = Role::leader;
  leader_ = config_.node_id;
  voted_ = kNoNode;
  leader_since_ms_ = now_ms;
  epoch_start_offset_ = log_.end_offset();
  voters_progress_.clear();
  observers_progress_.clear();
  for (NodeId voter : config_.voters)
    if (voter != config_.node_id) voters_progress_[voter].last_fetch_ms = now_ms;
  persist_state();
  LeaderChange change{config_.node_id, config_.voters, std::vector<NodeId>(granted_.begin(), granted_.end())};
  append_as_leader(EntryKind::leader_change, encode_leader_change(change));
  send_begin_epochs(now_ms);
}

void RaftNode::become_follower(int64_t now_ms, int32_t epoch, NodeId leader) {
  RAFT_INVARIANT(leader != config_.node_id, "a follower follows another node");
  const bool led_this_epoch = (role_ == Role::leader || role_ == Role::resigned) && epoch == epoch_;
  RAFT_INVARIANT(!led_this_epoch, "one leader per epoch");
  set_epoch(epoch);
  role_ = Role::follower;
  leader_ = leader;
  fetch_deadline_ms_ = now_ms + config_.fetch_timeout_ms;
  fetch_in_flight_ = false;
  next_fetch_ms_ = now_ms;
  download_.reset();
  persist_state();
  maybe_send_fetch(now_ms);
}

void RaftNode::become_resigned(int64_t now_ms) {
  role_ = Role::resigned;
  leader_ = config_.node_id;
  end_acked_.clear();
  end_sent_ms_ = -1;
  election_deadline_ms_ = now_ms + random_election_timeout();
  send_end_epochs(now_ms);
}

// A peer told us who leads which epoch. Returns true when this changed our state.
bool RaftNode::observe_leader(int64_t now_ms, const LeaderIdAndEpoch& leader) {
  if (leader.leader_epoch > epoch_) {
    if (leader.leader_id >= 0 && leader.leader_id != config_.node_id)
      become_follower(now_ms, leader.leader_epoch, leader.leader_id);
    else
      become_unattached(now_ms, leader.leader_epoch);
    return true;
  }
  if (leader.leader_epoch == epoch_ && leader.leader_id >= 0 && leader.leader_id != config_.node_id) {
    RAFT_INVARIANT(leader_ != config_.node_id, "one leader per epoch");
    if (role_ == Role::unattached || role_ == Role::voted || role_ == Role::candidate) {
      become_follower(now_ms, epoch_, leader.leader_id);
      return true;
    }
    RAFT_INVARIANT(role_ != Role::follower || leader_ == leader.leader_id, "one leader per epoch");
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Inputs

void RaftNode::tick(int64_t now_ms) {
  switch (role_) {
    case Role::unattached:
    case Role::voted:
      if (is_voter() && now_ms >= election_deadline_ms_) become_candidate(now_ms, true);
      else if (!is_voter()) maybe_send_fetch(now_ms);  // an observer looking for the leader
      break;
    case Role::candidate:
      if (now_ms >= election_deadline_ms_) {
        if (in_backoff_) {
          become_candidate(now_ms, true);
        } else {
          in_backoff_ = true;
          election_deadline_ms_ = now_ms + 1 + rng_.below(config_.election_backoff_max_ms);
        }
      } else if (!in_backoff_) {
        send_vote_requests(now_ms);
      }
      break;
    case Role::leader:
      check_quorum(now_ms);
      if (role_ == Role::leader) send_begin_epochs(now_ms);
      break;
    case Role::follower:
      if (now_ms >= fetch_deadline_ms_) {
        if (is_voter()) become_candidate(now_ms, true);
        else become_unattached(now_ms, epoch_);
      } else {
        maybe_send_fetch(now_ms);
      }
      break;
    case Role::resigned:
      if (now_ms >= election_deadline_ms_) become_candidate(now_ms, true);
      else send_end_epochs(now_ms);
      break;
  }
}

void RaftNode::receive(int64_t now_ms, NodeId from, const Message& message, int32_t correlation_id) {
  if (from == config_.node_id || from < 0) return;
  incoming_correlation_id_ = correlation_id;
  std::visit([&](const auto& m) { handle(now_ms, from, m); }, message);
}

ProposeResult RaftNode::propose(int64_t, std::vector<std::vector<uint8_t>> payloads) {
  ProposeResult result;
  result.leader = current_leader();
  if (role_ != Role::leader) {
    result.error = ErrorCode::not_leader_or_follower;
    return result;
  }
  if (payloads.empty()) {
    result.error = ErrorCode::invalid_request;
    return result;
  }
  result.first_offset = log_.end_offset();
  for (auto& payload : payloads) append_as_leader(EntryKind::data, std::move(payload));
  result.last_offset = log_.end_offset() - 1;
  return result;
}

void RaftNode::resign(int64_t now_ms) {
  if (role_ == Role::leader) become_resigned(now_ms);
}

void RaftNode::on_log_durable(int64_t now_ms, uint64_t write_id) {
  RAFT_INVARIANT(unpersisted_state_ids_.empty() || unpersisted_state_ids_.front() > write_id,
                 "a batch's log writes become durable only after its quorum state");
  bool advanced = false;
  while (!pending_writes_.empty() && pending_writes_.front().write_id <= write_id) {
    // Everything below the log start is in a durable snapshot.
    durable_end_ = std::max(pending_writes_.front().end_after, log_.start_offset());
    pending_writes_.pop_front();
    advanced = true;
  }
  if (!advanced) return;
  RAFT_INVARIANT(durable_end_ <= log_.end_offset(), "durable end within the log");
  if (role_ == Role::leader) maybe_advance_high_watermark();
  else maybe_send_fetch(now_ms);
}

void RaftNode::on_quorum_state_persisted(int64_t, uint64_t write_id) {
  while (!unpersisted_state_ids_.empty() && unpersisted_state_ids_.front() <= write_id) unpersisted_state_ids_.pop_front();
}

Result<SnapshotId> RaftNode::snapshot_id_at(int64_t end_offset) const {
  if (end_offset <= log_.start_offset() || end_offset > log_.end_offset())
    return make_error(ErrorKind::invalid_argument, "raft: snapshot offset is outside the log");
  if (end_offset > high_watermark_) return make_error(ErrorKind::invalid_argument, "raft: snapshot offset is not committed");
  if (end_offset > applied_) return make_error(ErrorKind::invalid_argument, "raft: snapshot offset is not applied yet");
  return SnapshotId{end_offset, log_.epoch_at(end_offset - 1)};
}

Status RaftNode::on_snapshot_saved(int64_t, const SnapshotId& id, std::vector<uint8_t> bytes) {
  auto expected = snapshot_id_at(id.end_offset);
  if (!expected) return expected.error();
  if (!(*expected == id)) return make_error(ErrorKind::invalid_argument, "raft: snapshot epoch does not match the log");
  log_.drop_prefix(id);
  // A follower may snapshot past its durable log end (its high watermark can be ahead of its disk).
  durable_end_ = std::max(durable_end_, id.end_offset);
  snapshot_bytes_ = std::move(bytes);
  ready_.log_writes.push_back(LogWrite{LogWrite::Kind::drop_prefix, {}, id.end_offset, id});
  return Status::success();
}

void RaftNode::on_snapshot_loaded(int64_t now_ms, const SnapshotId& id) {
  if (!awaiting_install_ || !download_ || !(download_->id == id)) return;
  RAFT_INVARIANT(id.end_offset >= applied_ && id.end_offset >= high_watermark_, "an installed snapshot moves forward");
  awaiting_install_ = false;
  snapshot_bytes_ = std::move(download_->bytes);
  download_.reset();
  log_.reset_to_snapshot(id);
  ready_.log_writes.push_back(LogWrite{LogWrite::Kind::reset, {}, id.end_offset, id});
  // The snapshot itself is durable, so everything below its end is.
  durable_end_ = id.end_offset;
  for (auto& pending : pending_writes_) pending.end_after = id.end_offset;
  applied_ = id.end_offset;
  set_high_watermark(id.end_offset);
  next_fetch_ms_ = now_ms;
  maybe_send_fetch(now_ms);
}

// ---------------------------------------------------------------------------------------------
// Vote

bool RaftNode::log_is_up_to_date(int32_t last_epoch, int64_t end_offset) const {
  if (config_.test_fault == TestFault::vote_ignores_log) return true;
  if (last_epoch != log_.last_epoch()) return last_epoch > log_.last_epoch();
  return end_offset >= log_.end_offset();
}

void RaftNode::handle(int64_t now_ms, NodeId from, const VoteRequest& request) {
  VoteResponse response;
  auto answer = [&](ErrorCode error) {
    response.error_code = error;
    response.leader_id = leader_;
    response.leader_epoch = epoch_;
    respond(from, response);
  };
  if (request.cluster_id != config_.cluster_id) return answer(ErrorCode::inconsistent_cluster_id);
  if (!is_voter() || !is_voter(request.candidate_id) || request.candidate_id != from)
    return answer(ErrorCode::inconsistent_voter_set);
  if (request.candidate_epoch < epoch_) return answer(ErrorCode::fenced_leader_epoch);
  if (request.candidate_epoch > epoch_) become_unattached(now_ms, request.candidate_epoch);
  if (role_ == Role::unattached && log_is_up_to_date(request.last_offset_epoch, request.last_offset)) {
    become_voted(now_ms, request.candidate_id);
    response.vote_granted = true;
  } else if (role_ == Role::voted && voted_ == request.candidate_id) {
    response.vote_granted = true;
  }
  answer(ErrorCode::none);
}

void RaftNode::handle(int64_t now_ms, NodeId from, const VoteResponse& response) {
  if (observe_leader(now_ms, {response.leader_id, response.leader_epoch})) return;
  if (role_ != Role::candidate || response.leader_epoch != epoch_ || !is_voter(from)) return;
  if (response.error_code == ErrorCode::none && response.vote_granted) {
    granted_.insert(from);
    rejected_.erase(from);
    if (granted_.size() >= majority()) become_leader(now_ms);
  } else if (!granted_.count(from)) {
    rejected_.insert(from);
    // Lost for sure: back off now rather than wait for the election timeout.
    if (rejected_.size() >= majority() && !in_backoff_) {
      in_backoff_ = true;
      election_deadline_ms_ = now_ms + 1 + rng_.below(config_.election_backoff_max_ms);
    }
  }
}

void RaftNode::send_vote_requests(int64_t now_ms) {
  for (NodeId voter : config_.voters) {
    if (voter == config_.node_id || granted_.count(voter) || rejected_.count(voter)) continue;
    auto sent = vote_sent_ms_.find(voter);
    if (sent != vote_sent_ms_.end() && now_ms - sent->second < config_.request_timeout_ms) continue;
    vote_sent_ms_[voter] = now_ms;
    // Advertise only the durable log. A tail that a crash can still take away must not win votes: a
    // voter that granted would grant again after our restart (same epoch, same candidate) to a
    // shorter log, and entries committed without us could then be truncated everywhere.
    int64_t claimed_end = durable_end_;
    if (config_.test_fault == TestFault::advertise_volatile_log) claimed_end = log_.end_offset();
    const int32_t claimed_epoch = claimed_end == 0 ? 0 : log_.epoch_at(claimed_end - 1);
    request(voter, VoteRequest{config_.cluster_id, epoch_, config_.node_id, claimed_epoch, claimed_end});
  }
}

// ---------------------------------------------------------------------------------------------
// BeginQuorumEpoch / EndQuorumEpoch

ErrorCode RaftNode::validate_leader_request(const std::string& cluster_id, int32_t epoch) const {
  if (cluster_id != config_.cluster_id) return ErrorCode::inconsistent_cluster_id;
  if (epoch < epoch_) return ErrorCode::fenced_leader_epoch;
  return ErrorCode::none;
}

void RaftNode::handle(int64_t now_ms, NodeId from, const BeginQuorumEpochRequest& request) {
  ErrorCode error = validate_leader_request(request.cluster_id, request.leader_epoch);
  if (error == ErrorCode::none && (request.leader_id != from || !is_voter(from))) error = ErrorCode::inconsistent_voter_set;
  if (error == ErrorCode::none) observe_leader(now_ms, {request.leader_id, request.leader_epoch});
  respond(from, BeginQuorumEpochResponse{error, leader_, epoch_});
}

void RaftNode::handle(int64_t now_ms, NodeId from, const BeginQuorumEpochResponse& response) {
  if (observe_leader(now_ms, {response.leader_id, response.leader_epoch})) return;
  if (role_ != Role::leader || response.leader_epoch != epoch_ || response.error_code != ErrorCode::none) return;
  auto it = voters_progress_.find(from);
  if (it != voters_progress_.end()) it->second.begin_acked = true;
}

void RaftNode::send_begin_epochs(int64_t now_ms) {
  for (auto& [voter, progress] : voters_progress_) {
    if (progress.begin_acked || progress.end_offset >= 0) continue;
    if (progress.begin_sent_ms >= 0 && now_ms - progress.begin_sent_ms < config_.request_timeout_ms) continue;
    progress.begin_sent_ms = now_ms;
    request(voter, BeginQuorumEpochRequest{config_.cluster_id, config_.node_id, epoch_});
  }
}

std::vector<NodeId> RaftNode::preferred_successors() const {
  std::vector<std::pair<int64_t, NodeId>> by_end;
  for (NodeId voter : config_.voters) {
    if (voter == config_.node_id) continue;
    auto it = voters_progress_.find(voter);
    by_end.emplace_back(it == voters_progress_.end() ? kNoOffset : it->second.end_offset, voter);
  }
  std::sort(by_end.begin(), by_end.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<NodeId> out;
  for (auto& [end, voter] : by_end) out.push_back(voter);
  return out;
}

void RaftNode::send_end_epochs(int64_t now_ms) {
  if (end_sent_ms_ >= 0 && now_ms - end_sent_ms_ < config_.request_timeout_ms) return;
  end_sent_ms_ = now_ms;
  const std::vector<NodeId> successors = preferred_successors();
  for (NodeId voter : successors)
    if (!end_acked_.count(voter)) request(voter, EndQuorumEpochRequest{config_.cluster_id, config_.node_id, epoch_, successors});
}

void RaftNode::handle(int64_t now_ms, NodeId from, const EndQuorumEpochRequest& request) {
  ErrorCode error = validate_leader_request(request.cluster_id, request.leader_epoch);
  if (error == ErrorCode::none && (request.leader_id != from || !is_voter(from))) error = ErrorCode::inconsistent_voter_set;
  if (error == ErrorCode::none) {
    observe_leader(now_ms, {request.leader_id, request.leader_epoch});
    if (role_ == Role::follower && leader_ == request.leader_id && epoch_ == request.leader_epoch && is_voter()) {
      // Stand for election soon; the most caught-up successor first.
      auto pos = std::find(request.preferred_successors.begin(), request.preferred_successors.end(), config_.node_id);
      if (pos != request.preferred_successors.end()) {
        const int64_t rank = pos - request.preferred_successors.begin();
        const int64_t backoff = rank == 0 ? 0 : std::min<int64_t>(config_.election_backoff_max_ms, 50LL << std::min<int64_t>(rank - 1, 10)) + rng_.below(50);
        fetch_deadline_ms_ = std::min(fetch_deadline_ms_, now_ms + backoff);
      }
    }
  }
  respond(from, EndQuorumEpochResponse{error, leader_, epoch_});
}

void RaftNode::handle(int64_t now_ms, NodeId from, const EndQuorumEpochResponse& response) {
  if (observe_leader(now_ms, {response.leader_id, response.leader_epoch})) return;
  if (role_ == Role::resigned && response.leader_epoch == epoch_ && response.error_code == ErrorCode::none) end_acked_.insert(from);
}

// ---------------------------------------------------------------------------------------------
// Fetch, leader side

void RaftNode::handle(int64_t now_ms, NodeId from, const FetchRequest& request) {
  FetchResponse response;
  response.error_code = validate_leader_request(request.cluster_id, request.current_leader_epoch);
  if (response.error_code == ErrorCode::none && request.replica_id != from) response.error_code = ErrorCode::invalid_request;
  if (response.error_code == ErrorCode::none && request.current_leader_epoch > epoch_) response.error_code = ErrorCode::unknown_leader_epoch;
  if (response.error_code == ErrorCode::none && role_ != Role::leader) response.error_code = ErrorCode::not_leader_or_follower;
  if (response.error_code == ErrorCode::none) response = answer_fetch(now_ms, from, request);
  response.current_leader = current_leader();
  response.high_watermark = high_watermark_;
  response.log_start_offset = log_.start_offset();
  respond(from, std::move(response));
}

FetchResponse RaftNode::answer_fetch(int64_t now_ms, NodeId from, const FetchRequest& request) {
  FetchResponse response;
  const int64_t offset = request.fetch_offset;
  if (offset < log_.start_offset()) {
    response.snapshot_id = log_.snapshot();
    return response;
  }
  const bool at_start = offset == log_.start_offset() &&
                        (offset == 0 || request.last_fetched_epoch == log_.snapshot().epoch);
  if (!at_start) {
    EpochLookup lookup = log_.end_offset_for_epoch(request.last_fetched_epoch);
    if (!lookup.found) {
      response.snapshot_id = log_.snapshot();
      return response;
    }
    if (lookup.epoch != request.last_fetched_epoch || lookup.end_offset < offset || offset > log_.end_offset()) {
      response.diverging_epoch = EpochEndOffset{lookup.epoch, std::min(lookup.end_offset, log_.end_offset())};
      return response;
    }
  }
  // The replica's log matches ours up to `offset`, which is its durable end.
  const bool voter = is_voter(from);
  ReplicaProgress& progress = voter ? voters_progress_[from] : observers_progress_[from];
  progress.end_offset = offset;
  progress.last_fetch_ms = now_ms;
  if (offset >= log_.end_offset()) progress.last_caught_up_ms = now_ms;
  if (voter) maybe_advance_high_watermark();
  response.records = log_.read(offset, config_.max_fetch_entries,
                               std::min<int64_t>(config_.max_fetch_bytes, request.partition_max_bytes > 0 ? request.partition_max_bytes : config_.max_fetch_bytes));
  return response;
}

void RaftNode::maybe_advance_high_watermark() {
  if (role_ != Role::leader) return;
  std::vector<int64_t> ends{durable_end_};
  for (auto& [voter, progress] : voters_progress_) ends.push_back(progress.end_offset);
  std::sort(ends.begin(), ends.end(), std::greater<>());
  int64_t majority_end = ends[majority() - 1];
  if (config_.test_fault == TestFault::commit_without_majority) majority_end = durable_end_;
  // Only an entry of the current epoch commits; earlier ones commit with it.
  if (majority_end > epoch_start_offset_ && majority_end > high_watermark_) set_high_watermark(majority_end);
}

void RaftNode::set_high_watermark(int64_t offset) {
  RAFT_INVARIANT(offset >= high_watermark_, "the high watermark never goes backwards");
  RAFT_INVARIANT(offset <= log_.end_offset(), "the high watermark stays within the log");
  high_watermark_ = offset;
  deliver_committed();
}

void RaftNode::deliver_committed() {
  applied_ = std::max(applied_, log_.start_offset());
  for (; applied_ < high_watermark_; ++applied_) ready_.committed.push_back(log_.at(applied_));
}

void RaftNode::append_as_leader(EntryKind kind, std::vector<uint8_t> payload) {
  RAFT_INVARIANT(role_ == Role::leader, "only the leader appends");
  LogEntry entry{log_.end_offset(), epoch_, kind, std::move(payload)};
  log_.append(entry);
  if (!ready_.log_writes.empty() && ready_.log_writes.back().kind == LogWrite::Kind::append)
    ready_.log_writes.back().entries.push_back(std::move(entry));
  else
    ready_.log_writes.push_back(LogWrite{LogWrite::Kind::append, {std::move(entry)}, 0, {}});
}

void RaftNode::check_quorum(int64_t now_ms) {
  const int64_t window = config_.fetch_timeout_ms * 3 / 2;
  if (now_ms - leader_since_ms_ < window) return;
  size_t heard = 1;  // ourselves
  for (auto& [voter, progress] : voters_progress_)
    if (progress.last_fetch_ms >= now_ms - window) ++heard;
  if (heard < majority()) become_resigned(now_ms);
}

void RaftNode::handle(int64_t now_ms, NodeId from, const FetchSnapshotRequest& request) {
  FetchSnapshotResponse response;
  response.error_code = validate_leader_request(request.cluster_id, request.current_leader_epoch);
  if (response.error_code == ErrorCode::none && request.current_leader_epoch > epoch_) response.error_code = ErrorCode::unknown_leader_epoch;
  if (response.error_code == ErrorCode::none && role_ != Role::leader) response.error_code = ErrorCode::not_leader_or_follower;
  if (response.error_code == ErrorCode::none && (!log_.snapshot().valid() || !(request.snapshot_id == log_.snapshot())))
    response.error_code = ErrorCode::snapshot_not_found;
  const auto size = static_cast<int64_t>(snapshot_bytes_.size());
  if (response.error_code == ErrorCode::none && (request.position < 0 || request.position > size))
    response.error_code = ErrorCode::position_out_of_range;
  response.snapshot_id = request.snapshot_id;
  response.current_leader = current_leader();
  if (response.error_code == ErrorCode::none) {
    const int64_t max = std::min<int64_t>(config_.max_snapshot_chunk_bytes, request.max_bytes > 0 ? request.max_bytes : config_.max_snapshot_chunk_bytes);
    const int64_t end = std::min(size, request.position + max);
    response.size = size;
    response.position = request.position;
    response.unaligned_records.assign(snapshot_bytes_.begin() + request.position, snapshot_bytes_.begin() + end);
    auto& progress = is_voter(from) ? voters_progress_[from] : observers_progress_[from];
    progress.last_fetch_ms = now_ms;
  }
  respond(from, std::move(response));
}

// ---------------------------------------------------------------------------------------------
// Fetch, follower side

void RaftNode::maybe_send_fetch(int64_t now_ms) {
  const bool following = role_ == Role::follower;
  const bool observer_searching = !is_voter() && role_ == Role::unattached;
  if (!following && !observer_searching) return;
  if (awaiting_install_ || now_ms < next_fetch_ms_) return;
  if (fetch_in_flight_ && now_ms - fetch_sent_ms_ < config_.request_timeout_ms) return;
  // Fetch offsets acknowledge durability, so wait until our whole log is durable.
  if (durable_end_ != log_.end_offset()) return;
  NodeId target = leader_;
  if (observer_searching) target = config_.voters[static_cast<size_t>(rng_.below(static_cast<int64_t>(config_.voters.size())))];
  if (target == config_.node_id) return;
  fetch_in_flight_ = true;
  fetch_sent_ms_ = now_ms;
  if (download_) {
    fetch_correlation_ = request(target, FetchSnapshotRequest{config_.cluster_id, config_.node_id, config_.max_snapshot_chunk_bytes, epoch_, download_->id,
                                      static_cast<int64_t>(download_->bytes.size())});
    return;
  }
  FetchRequest request;
  request.cluster_id = config_.cluster_id;
  request.replica_id = config_.node_id;
  request.max_wait_ms = 0;
  request.current_leader_epoch = epoch_;
  request.fetch_offset = log_.end_offset();
  request.last_fetched_epoch = log_.last_epoch();
  fetch_offset_sent_ = request.fetch_offset;
  fetch_epoch_sent_ = request.last_fetched_epoch;
  request.log_start_offset = log_.start_offset();
  request.partition_max_bytes = config_.max_fetch_bytes;
  fetch_correlation_ = this->request(target, std::move(request));
}

std::optional<size_t> RaftNode::first_appendable(const std::vector<LogEntry>& records) const {
  if (records.empty() || records.front().offset > log_.end_offset() || records.front().offset < log_.start_offset())
    return std::nullopt;
  size_t first = records.size();
  int64_t expected = records.front().offset;
  int32_t last_epoch = log_.last_epoch();
  for (size_t i = 0; i < records.size(); ++i) {
    const LogEntry& entry = records[i];
    if (entry.offset != expected++ || entry.epoch > epoch_) return std::nullopt;
    if (entry.offset < log_.end_offset()) continue;  // a batch may start before the fetch offset
    if (first == records.size()) first = i;
    if (entry.epoch < last_epoch) return std::nullopt;
    last_epoch = entry.epoch;
  }
  return first;
}

void RaftNode::truncate_to_diverging(const EpochEndOffset& diverging) {
  EpochLookup ours = log_.end_offset_for_epoch(diverging.epoch);
  int64_t target = std::min(diverging.end_offset, ours.found ? ours.end_offset : log_.start_offset());
  target = std::max(target, log_.start_offset());
  if (target >= log_.end_offset()) return;
  RAFT_INVARIANT(target >= high_watermark_, "never truncate committed entries");
  log_.truncate_to(target);
  durable_end_ = std::min(durable_end_, target);
  for (auto& pending : pending_writes_) pending.end_after = std::min(pending.end_after, target);
  ready_.log_writes.push_back(LogWrite{LogWrite::Kind::truncate, {}, target, {}});
}

void RaftNode::handle(int64_t now_ms, NodeId from, const FetchResponse& response) {
  observe_leader(now_ms, response.current_leader);
  if (!is_voter() && role_ == Role::unattached) {
    // An observer's probe of a voter: only the leader information matters.
    if (response.current_leader.leader_epoch == epoch_ && response.current_leader.leader_id >= 0 && response.current_leader.leader_id != config_.node_id)
      become_follower(now_ms, epoch_, response.current_leader.leader_id);
    fetch_in_flight_ = false;
    next_fetch_ms_ = now_ms + config_.fetch_backoff_ms;
    return;
  }
  if (role_ != Role::follower || from != leader_ || !(response.current_leader == current_leader())) return;
  // An answer is about the log as it was when the request left. Once the log changed (a duplicated
  // or delayed answer to an older request), acting on it could truncate entries this node already
  // acknowledged: the simulator found exactly that.
  const bool answers_latest = incoming_correlation_id_ == fetch_correlation_ && log_.end_offset() == fetch_offset_sent_ &&
                              log_.last_epoch() == fetch_epoch_sent_;
  if (!answers_latest && config_.test_fault != TestFault::accept_stale_fetch_answers) return;
  fetch_in_flight_ = false;
  if (response.error_code != ErrorCode::none) {
    next_fetch_ms_ = now_ms + config_.fetch_backoff_ms;
    return;
  }
  fetch_deadline_ms_ = now_ms + config_.fetch_timeout_ms;
  next_fetch_ms_ = now_ms;
  if (response.diverging_epoch.present()) {
    truncate_to_diverging(response.diverging_epoch);
  } else if (response.snapshot_id.valid()) {
    if (!download_ || !(download_->id == response.snapshot_id)) download_ = SnapshotDownload{response.snapshot_id, {}};
  } else {
    const std::optional<size_t> first_new = first_appendable(response.records);
    const bool fits = first_new.has_value();
    if (fits && *first_new < response.records.size()) {
      LogWrite write{LogWrite::Kind::append, {}, 0, {}};
      for (size_t i = *first_new; i < response.records.size(); ++i) {
        log_.append(response.records[i]);
        write.entries.push_back(response.records[i]);
      }
      ready_.log_writes.push_back(std::move(write));
    }
    if (fits || response.records.empty()) {
      const int64_t learned = std::min(response.high_watermark, log_.end_offset());
      if (learned > high_watermark_) set_high_watermark(learned);
    }
    if (response.records.empty()) next_fetch_ms_ = now_ms + config_.fetch_backoff_ms;
  }
  maybe_send_fetch(now_ms);
}

void RaftNode::handle(int64_t now_ms, NodeId from, const FetchSnapshotResponse& response) {
  observe_leader(now_ms, response.current_leader);
  if (role_ != Role::follower || from != leader_ || !(response.current_leader == current_leader())) return;
  if (!download_ || awaiting_install_ || !(response.snapshot_id == download_->id) || incoming_correlation_id_ != fetch_correlation_) return;
  fetch_in_flight_ = false;
  if (response.error_code != ErrorCode::none) {
    if (response.error_code == ErrorCode::snapshot_not_found || response.error_code == ErrorCode::position_out_of_range) download_.reset();
    next_fetch_ms_ = now_ms + config_.fetch_backoff_ms;
    return;
  }
  fetch_deadline_ms_ = now_ms + config_.fetch_timeout_ms;
  next_fetch_ms_ = now_ms;
  if (response.position != static_cast<int64_t>(download_->bytes.size())) return;  // a stale chunk
  download_->bytes.insert(download_->bytes.end(), response.unaligned_records.begin(), response.unaligned_records.end());
  if (static_cast<int64_t>(download_->bytes.size()) > response.size) {
    download_.reset();  // inconsistent chunks: start over
  } else if (static_cast<int64_t>(download_->bytes.size()) == response.size) {
    if (download_->id.end_offset <= high_watermark_) {
      download_.reset();  // we caught up another way meanwhile
    } else {
      awaiting_install_ = true;
      ready_.install_snapshot = SnapshotInstall{download_->id, download_->bytes};
      return;
    }
  }
  maybe_send_fetch(now_ms);
}

// ---------------------------------------------------------------------------------------------
// DescribeQuorum

QuorumDescription RaftNode::describe_quorum(int64_t now_ms) const {
  QuorumDescription out;
  out.leader_id = leader_;
  out.leader_epoch = epoch_;
  if (role_ != Role::leader) {
    out.error_code = ErrorCode::not_leader_or_follower;
    return out;
  }
  out.high_watermark = high_watermark_;
  out.current_voters.push_back(ReplicaDescription{config_.node_id, log_.end_offset(), now_ms, now_ms});
  for (auto& [voter, p] : voters_progress_)
    out.current_voters.push_back(ReplicaDescription{voter, p.end_offset, p.last_fetch_ms, p.last_caught_up_ms});
  for (auto& [observer, p] : observers_progress_)
    out.observers.push_back(ReplicaDescription{observer, p.end_offset, p.last_fetch_ms, p.last_caught_up_ms});
  return out;
}

}  // namespace bulwark::raft
