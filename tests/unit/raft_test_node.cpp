// Hand-driven scenarios for the KRaft core. Most tests drive one node directly and inspect its Ready;
// the catch-up tests route messages between a few nodes through a tiny in-test network whose disks
// are durable at once.
#include <gtest/gtest.h>

#include <map>

#include "raft/node.h"

namespace bulwark::raft {
namespace {

Config config_for(NodeId id, std::vector<NodeId> voters = {1, 2, 3}) {
  Config config;
  config.cluster_id = "test";
  config.node_id = id;
  config.voters = std::move(voters);
  return config;
}

RaftNode make_node(NodeId id, PersistedState persisted = {}, std::vector<NodeId> voters = {1, 2, 3}, Config* override_config = nullptr) {
  auto node = RaftNode::create(override_config ? *override_config : config_for(id, std::move(voters)), std::move(persisted), 42 + id, 0);
  EXPECT_TRUE(node.ok());
  return std::move(*node);
}

LogEntry data_entry(int64_t offset, int32_t epoch, uint8_t value = 0) { return LogEntry{offset, epoch, EntryKind::data, {value}}; }

// Copies, so a temporary Ready may be searched.
template <class T>
std::vector<std::pair<OutgoingMessage, T>> find(const Ready& ready) {
  std::vector<std::pair<OutgoingMessage, T>> out;
  for (auto& m : ready.messages)
    if (auto* typed = std::get_if<T>(&m.message)) out.emplace_back(m, *typed);
  return out;
}

// Takes every Ready and reports all writes durable, as a driver with an instant disk would.
Ready settle(RaftNode& node, int64_t now) {
  Ready all;
  while (node.has_ready()) {
    Ready r = node.take_ready();
    if (r.quorum_state) all.quorum_state = r.quorum_state;
    for (auto& w : r.log_writes) all.log_writes.push_back(std::move(w));
    for (auto& m : r.messages) all.messages.push_back(std::move(m));
    for (auto& e : r.committed) all.committed.push_back(std::move(e));
    if (r.install_snapshot) all.install_snapshot = r.install_snapshot;
    if (r.write_id) {
      node.on_quorum_state_persisted(now, r.write_id);
      node.on_log_durable(now, r.write_id);
    }
  }
  return all;
}

// Ticks a voter until it stands for election.
Ready run_election_timer(RaftNode& node, int64_t& now) {
  Ready all;
  while (node.role() != Role::candidate && node.role() != Role::leader && now < 10000) {
    now += 10;
    node.tick(now);
    Ready r = settle(node, now);
    for (auto& m : r.messages) all.messages.push_back(m);
    if (r.quorum_state) all.quorum_state = r.quorum_state;
    for (auto& w : r.log_writes) all.log_writes.push_back(w);
  }
  return all;
}

// Makes node 1 the leader of epoch 1 of {1,2,3}; node 2 granted.
RaftNode elected_leader(int64_t& now, PersistedState persisted = {}) {
  RaftNode leader = make_node(1, std::move(persisted));
  run_election_timer(leader, now);
  leader.receive(now, 2, VoteResponse{ErrorCode::none, kNoNode, leader.epoch(), true});
  settle(leader, now);
  EXPECT_EQ(leader.role(), Role::leader);
  return leader;
}

TEST(RaftConfig, RejectsBadConfigs) {
  Config no_voters = config_for(1, {});
  EXPECT_FALSE(RaftNode::create(no_voters, {}, 1, 0).ok());
  Config twice = config_for(1, {1, 1, 2});
  EXPECT_FALSE(RaftNode::create(twice, {}, 1, 0).ok());
  Config no_id = config_for(-1);
  EXPECT_FALSE(RaftNode::create(no_id, {}, 1, 0).ok());
  Config zero_timeout = config_for(1);
  zero_timeout.fetch_timeout_ms = 0;
  EXPECT_FALSE(RaftNode::create(zero_timeout, {}, 1, 0).ok());
  PersistedState gap;
  gap.log = {data_entry(0, 1), data_entry(2, 1)};
  EXPECT_EQ(RaftNode::create(config_for(1), gap, 1, 0).error().kind, ErrorKind::corrupt);
  PersistedState ahead;
  ahead.quorum_state = QuorumStateData{"test", kNoNode, 2, kNoNode, 0, {1, 2, 3}};
  ahead.log = {data_entry(0, 3)};
  auto refused = RaftNode::create(config_for(1), ahead, 1, 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::corrupt);
}

// ---- Vote ---------------------------------------------------------------------------------------

TEST(RaftVote, GrantsAndPersistsTheVoteInTheSameBatchAsTheAnswer) {
  RaftNode node = make_node(2);
  node.receive(5, 1, VoteRequest{"test", 3, 1, 0, 0});
  ASSERT_TRUE(node.has_ready());
  Ready ready = node.take_ready();
  // The driver must make this durable before sending the answer (contract rule 1).
  ASSERT_TRUE(ready.quorum_state);
  EXPECT_EQ(ready.quorum_state->voted_id, 1);
  EXPECT_EQ(ready.quorum_state->leader_epoch, 3);
  EXPECT_NE(ready.write_id, 0u);
  auto answers = find<VoteResponse>(ready);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].second.vote_granted);
  EXPECT_EQ(answers[0].first.to, 1);
  EXPECT_EQ(node.role(), Role::voted);
}

TEST(RaftVote, OneVotePerEpochButTheSameCandidateMayAskAgain) {
  RaftNode node = make_node(2);
  node.receive(5, 1, VoteRequest{"test", 3, 1, 0, 0});
  settle(node, 5);
  node.receive(6, 3, VoteRequest{"test", 3, 3, 0, 0});
  auto refused = find<VoteResponse>(settle(node, 6));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].second.vote_granted);
  EXPECT_EQ(refused[0].second.error_code, ErrorCode::none);
  node.receive(7, 1, VoteRequest{"test", 3, 1, 0, 0});
  auto again = find<VoteResponse>(settle(node, 7));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].second.vote_granted);
  // A later epoch frees the vote.
  node.receive(8, 3, VoteRequest{"test", 4, 3, 0, 0});
  auto later = find<VoteResponse>(settle(node, 8));
  EXPECT_TRUE(later[0].second.vote_granted);
  EXPECT_EQ(node.voted_id(), 3);
}

TEST(RaftVote, RefusesACandidateWhoseLogIsBehind) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 3, 2, kNoNode, 0, {1, 2, 3}};
  persisted.log = {data_entry(0, 1), data_entry(1, 2), data_entry(2, 2)};
  RaftNode node = make_node(2, persisted);
  struct Case { int32_t last_epoch; int64_t end; bool granted; };
  const Case cases[] = {{1, 10, false}, {2, 2, false}, {2, 3, true}};
  int32_t epoch = 3;
  for (const Case& c : cases) {
    node.receive(1, 1, VoteRequest{"test", epoch, 1, c.last_epoch, c.end});
    auto answer = find<VoteResponse>(settle(node, 1));
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_EQ(answer[0].second.vote_granted, c.granted) << c.last_epoch << "/" << c.end;
    EXPECT_EQ(node.epoch(), epoch);  // the higher epoch is adopted even when refusing
    ++epoch;
  }
  // A later last epoch beats a longer log.
  node.receive(1, 3, VoteRequest{"test", epoch, 3, 3, 1});
  EXPECT_TRUE(find<VoteResponse>(settle(node, 1))[0].second.vote_granted);
}

TEST(RaftVote, RefusesStaleEpochsStrangersAndOtherClusters) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", kNoNode, 5, kNoNode, 0, {1, 2, 3}};
  RaftNode node = make_node(2, persisted);
  node.receive(1, 1, VoteRequest{"test", 4, 1, 0, 0});
  auto stale = find<VoteResponse>(settle(node, 1));
  EXPECT_EQ(stale[0].second.error_code, ErrorCode::fenced_leader_epoch);
  EXPECT_EQ(stale[0].second.leader_epoch, 5);
  node.receive(1, 9, VoteRequest{"test", 6, 9, 0, 0});
  EXPECT_EQ(find<VoteResponse>(settle(node, 1))[0].second.error_code, ErrorCode::inconsistent_voter_set);
  node.receive(1, 1, VoteRequest{"other", 6, 1, 0, 0});
  EXPECT_EQ(find<VoteResponse>(settle(node, 1))[0].second.error_code, ErrorCode::inconsistent_cluster_id);
  EXPECT_EQ(node.epoch(), 5);
  EXPECT_EQ(node.voted_id(), kNoNode);
}

TEST(RaftVote, ObserversDoNotVote) {
  RaftNode observer = make_node(4);
  observer.receive(1, 1, VoteRequest{"test", 1, 1, 0, 0});
  auto answer = find<VoteResponse>(settle(observer, 1));
  EXPECT_FALSE(answer[0].second.vote_granted);
  EXPECT_EQ(answer[0].second.error_code, ErrorCode::inconsistent_voter_set);
  int64_t now = 0;
  for (; now < 10000; now += 100) observer.tick(now);
  EXPECT_NE(observer.role(), Role::candidate);
}

// ---- Election -----------------------------------------------------------------------------------

TEST(RaftElection, CandidateVotesForItselfThenLeadsWithAMajority) {
  int64_t now = 0;
  RaftNode node = make_node(1);
  Ready ready = run_election_timer(node, now);
  EXPECT_GE(now, 1000);  // not before the election timeout T
  EXPECT_LE(now, 2010);  // and within T + rand(T)
  EXPECT_EQ(node.role(), Role::candidate);
  EXPECT_EQ(node.epoch(), 1);
  ASSERT_TRUE(ready.quorum_state);
  EXPECT_EQ(ready.quorum_state->voted_id, 1);
  auto requests = find<VoteRequest>(ready);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].second.candidate_epoch, 1);

  node.receive(now, 3, VoteResponse{ErrorCode::none, kNoNode, 1, true});
  Ready led = settle(node, now);
  EXPECT_EQ(node.role(), Role::leader);
  EXPECT_EQ(led.quorum_state->leader_id, 1);
  // The first entry of the epoch is the LeaderChange control record.
  ASSERT_EQ(node.log().end_offset(), 1);
  const LogEntry& first = node.log().at(0);
  EXPECT_EQ(first.kind, EntryKind::leader_change);
  EXPECT_EQ(first.epoch, 1);
  LeaderChange change;
  ASSERT_TRUE(decode_leader_change(first.payload, change));
  EXPECT_EQ(change.leader_id, 1);
  EXPECT_EQ(change.voters, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(change.granting_voters, (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(find<BeginQuorumEpochRequest>(led).size(), 2u);
}

TEST(RaftElection, MajorityRefusalBacksOffThenTriesTheNextEpoch) {
  int64_t now = 0;
  RaftNode node = make_node(1);
  run_election_timer(node, now);
  node.receive(now, 2, VoteResponse{ErrorCode::none, kNoNode, 1, false});
  node.receive(now, 3, VoteResponse{ErrorCode::none, kNoNode, 1, false});
  settle(node, now);
  EXPECT_EQ(node.role(), Role::candidate);
  int64_t start = now;
  while (node.epoch() == 1 && now < start + 5000) {
    now += 10;
    node.tick(now);
    settle(node, now);
  }
  EXPECT_EQ(node.epoch(), 2);
  EXPECT_LE(now - start, 1010);  // within the backoff, not a full election timeout
}

TEST(RaftElection, CandidateAdvertisesOnlyItsDurableLog) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 1, kNoNode, 0, {1, 2, 3}};
  persisted.log = {LogEntry{0, 1, EntryKind::leader_change, {}}};
  RaftNode node = make_node(3, persisted);
  auto fetch = find<FetchRequest>(settle(node, 0));
  FetchResponse response;
  response.current_leader = {1, 1};
  response.high_watermark = 0;
  response.records = {data_entry(1, 1), data_entry(2, 1)};
  node.receive(1, 1, response, fetch[0].first.correlation_id);
  // The appended entries are written but never reported durable (a slow disk).
  Ready unflushed = node.take_ready();
  ASSERT_EQ(node.log().end_offset(), 3);
  ASSERT_EQ(node.durable_end_offset(), 1);
  int64_t now = 1;
  std::vector<VoteRequest> requests;
  while (node.role() != Role::candidate) {
    node.tick(now += 50);
    Ready r = node.take_ready();
    for (auto& [m, request] : find<VoteRequest>(r)) requests.push_back(request);
  }
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].last_offset, 1);
  EXPECT_EQ(requests[0].last_offset_epoch, 1);
  EXPECT_EQ(unflushed.log_writes.size(), 1u);
}

TEST(RaftElection, HigherEpochResponseMakesACandidateFollow) {
  int64_t now = 0;
  RaftNode node = make_node(1);
  run_election_timer(node, now);
  node.receive(now, 2, VoteResponse{ErrorCode::fenced_leader_epoch, 3, 4, false});
  Ready ready = settle(node, now);
  EXPECT_EQ(node.role(), Role::follower);
  EXPECT_EQ(node.epoch(), 4);
  EXPECT_EQ(node.leader_id(), 3);
  EXPECT_EQ(find<FetchRequest>(ready).size(), 1u);
}

TEST(RaftElection, RestartAfterVotingForItselfStaysCandidateInTheSameEpoch) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", kNoNode, 6, 1, 0, {1, 2, 3}};
  RaftNode node = make_node(1, persisted);
  EXPECT_EQ(node.role(), Role::candidate);
  EXPECT_EQ(node.epoch(), 6);
  // It must not vote for anyone else in epoch 6.
  node.receive(1, 2, VoteRequest{"test", 6, 2, 9, 99});
  EXPECT_FALSE(find<VoteResponse>(settle(node, 1))[0].second.vote_granted);
}

TEST(RaftElection, SingleVoterLeadsAndCommitsAlone) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", kNoNode, 3, 1, 0, {1}};
  auto created = RaftNode::create(config_for(1, {1}), persisted, 1, 0);
  ASSERT_TRUE(created.ok());
  RaftNode node = std::move(*created);
  EXPECT_EQ(node.role(), Role::leader);
  Ready ready = node.take_ready();
  ASSERT_TRUE(ready.quorum_state);  // the new leadership must reach the disk
  EXPECT_EQ(ready.quorum_state->leader_id, 1);
  EXPECT_EQ(ready.quorum_state->leader_epoch, 3);
  EXPECT_TRUE(ready.messages.empty());
  node.on_quorum_state_persisted(0, ready.write_id);
  node.on_log_durable(0, ready.write_id);
  EXPECT_EQ(node.high_watermark(), 1);
}

TEST(RaftElection, RestartedLeaderResigns) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 6, kNoNode, 0, {1, 2, 3}};
  RaftNode node = make_node(1, persisted);
  EXPECT_EQ(node.role(), Role::resigned);
  Ready ready = settle(node, 0);
  EXPECT_EQ(find<EndQuorumEpochRequest>(ready).size(), 2u);
}

// ---- High watermark -----------------------------------------------------------------------------

FetchRequest fetch_from(NodeId replica, int32_t epoch, int64_t offset, int32_t last_epoch) {
  FetchRequest request;
  request.cluster_id = "test";
  request.replica_id = replica;
  request.current_leader_epoch = epoch;
  request.fetch_offset = offset;
  request.last_fetched_epoch = last_epoch;
  request.partition_max_bytes = 1 << 20;
  return request;
}

TEST(RaftHighWatermark, OldEpochEntriesCommitOnlyWithACurrentEpochEntry) {
  // Node 1 holds three entries of epoch 1 that were never committed; it wins epoch 2.
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 2, 1, kNoNode, 0, {1, 2, 3}};
  persisted.log = {data_entry(0, 1), data_entry(1, 1), data_entry(2, 1)};
  int64_t now = 0;
  RaftNode leader = make_node(1, persisted);
  while (leader.role() != Role::candidate) leader.tick(now += 100);
  settle(leader, now);
  leader.receive(now, 2, VoteResponse{ErrorCode::none, kNoNode, leader.epoch(), true});
  settle(leader, now);
  ASSERT_EQ(leader.role(), Role::leader);
  ASSERT_EQ(leader.log().end_offset(), 4);  // LeaderChange at offset 3
  EXPECT_EQ(leader.high_watermark(), 0);

  // Node 2 holds the epoch-1 entries durably: a majority has offsets 0..2, yet nothing commits.
  leader.receive(now, 2, fetch_from(2, leader.epoch(), 3, 1));
  Ready ready = settle(leader, now);
  EXPECT_EQ(leader.high_watermark(), 0);
  EXPECT_TRUE(ready.committed.empty());
  auto answer = find<FetchResponse>(ready);
  ASSERT_EQ(answer.size(), 1u);
  ASSERT_EQ(answer[0].second.records.size(), 1u);
  EXPECT_EQ(answer[0].second.records[0].kind, EntryKind::leader_change);

  // Once the LeaderChange is durable on node 2 too, everything up to it commits at once.
  leader.receive(now, 2, fetch_from(2, leader.epoch(), 4, leader.epoch()));
  ready = settle(leader, now);
  EXPECT_EQ(leader.high_watermark(), 4);
  ASSERT_EQ(ready.committed.size(), 4u);
  EXPECT_EQ(ready.committed[0].offset, 0);
  EXPECT_EQ(ready.committed[3].kind, EntryKind::leader_change);
  EXPECT_EQ(find<FetchResponse>(ready)[0].second.high_watermark, 4);

  // A lagging fetch never moves the high watermark back.
  leader.receive(now, 2, fetch_from(2, leader.epoch(), 3, 1));
  settle(leader, now);
  EXPECT_EQ(leader.high_watermark(), 4);
}

TEST(RaftHighWatermark, LeaderCountsOnlyItsDurableEndAndObserversDoNotCount) {
  int64_t now = 0;
  RaftNode leader = elected_leader(now);
  auto proposed = leader.propose(now, {{1}, {2}});
  ASSERT_EQ(proposed.error, ErrorCode::none);
  EXPECT_EQ(proposed.first_offset, 1);
  EXPECT_EQ(proposed.last_offset, 2);
  // Take the batch but do not report it durable yet.
  Ready pending = leader.take_ready();
  ASSERT_NE(pending.write_id, 0u);
  leader.receive(now, 2, fetch_from(2, 1, 3, 1));
  leader.receive(now, 4, fetch_from(4, 1, 3, 1));  // an observer, fully caught up
  settle(leader, now);
  EXPECT_EQ(leader.high_watermark(), 1);  // node 2's earlier ack of offset 0 is not what counts here
  leader.on_log_durable(now, pending.write_id);
  settle(leader, now);
  EXPECT_EQ(leader.high_watermark(), 3);

  QuorumDescription quorum = leader.describe_quorum(now);
  EXPECT_EQ(quorum.error_code, ErrorCode::none);
  EXPECT_EQ(quorum.leader_id, 1);
  EXPECT_EQ(quorum.high_watermark, 3);
  ASSERT_EQ(quorum.current_voters.size(), 3u);
  EXPECT_EQ(quorum.current_voters[1].replica_id, 2);
  EXPECT_EQ(quorum.current_voters[1].log_end_offset, 3);
  ASSERT_EQ(quorum.observers.size(), 1u);
  EXPECT_EQ(quorum.observers[0].replica_id, 4);
  EXPECT_EQ(quorum.observers[0].last_fetch_timestamp, now);
}

TEST(RaftHighWatermark, FollowerLearnsItCappedByItsOwnLog) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 1, kNoNode, 0, {1, 2, 3}};
  RaftNode follower = make_node(2, persisted);
  Ready ready = settle(follower, 0);
  auto fetches = find<FetchRequest>(ready);
  ASSERT_EQ(fetches.size(), 1u);
  EXPECT_EQ(fetches[0].second.fetch_offset, 0);
  FetchResponse response;
  response.current_leader = {1, 1};
  response.high_watermark = 10;
  response.records = {LogEntry{0, 1, EntryKind::leader_change, {}}, data_entry(1, 1)};
  follower.receive(1, 1, response, fetches[0].first.correlation_id);
  ready = settle(follower, 1);
  EXPECT_EQ(follower.log().end_offset(), 2);
  EXPECT_EQ(follower.high_watermark(), 2);
  EXPECT_EQ(ready.committed.size(), 2u);
  ASSERT_EQ(ready.log_writes.size(), 1u);
  EXPECT_EQ(ready.log_writes[0].kind, LogWrite::Kind::append);
  // The next fetch asks from the new (durable) end.
  auto next = find<FetchRequest>(ready);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].second.fetch_offset, 2);
  EXPECT_EQ(next[0].second.last_fetched_epoch, 1);
}

TEST(RaftHighWatermark, FollowerIgnoresAnswersToOlderRequests) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 1, kNoNode, 0, {1, 2, 3}};
  RaftNode follower = make_node(2, persisted);
  auto first = find<FetchRequest>(settle(follower, 0));
  FetchResponse response;
  response.current_leader = {1, 1};
  response.high_watermark = 1;
  response.records = {LogEntry{0, 1, EntryKind::leader_change, {}}};
  follower.receive(1, 1, response, first[0].first.correlation_id);
  settle(follower, 1);
  ASSERT_EQ(follower.log().end_offset(), 1);
  // A delayed duplicate of an answer to the first request must not truncate what we acknowledged.
  FetchResponse stale;
  stale.current_leader = {1, 1};
  stale.high_watermark = 1;
  stale.diverging_epoch = {0, 0};
  follower.receive(2, 1, stale, first[0].first.correlation_id);
  settle(follower, 2);
  EXPECT_EQ(follower.log().end_offset(), 1);
}

// A leader's answer that does not continue our log (a gap, a reorder, epochs falling or above the
// leader's own) is dropped instead of tripping the log's invariants; a batch that starts below the
// fetch offset is trimmed to what is new.
TEST(RaftHighWatermark, FollowerDropsAnswersThatDoNotContinueItsLog) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 2, kNoNode, 0, {1, 2, 3}};
  persisted.log = {LogEntry{0, 2, EntryKind::leader_change, {}}};
  RaftNode follower = make_node(2, persisted);
  int64_t now = 0;
  auto answer = [&](std::vector<LogEntry> records) {
    auto fetches = find<FetchRequest>(settle(follower, now));
    if (fetches.empty()) {  // wait out the fetch backoff of an answer dropped before
      now += 1000;
      follower.tick(now);
      fetches = find<FetchRequest>(settle(follower, now));
    }
    EXPECT_FALSE(fetches.empty());
    if (fetches.empty()) return;
    FetchResponse response;
    response.current_leader = {1, 2};
    response.high_watermark = 5;
    response.records = std::move(records);
    follower.receive(++now, 1, response, fetches.back().first.correlation_id);
  };
  answer({data_entry(2, 2)});                    // a gap
  EXPECT_EQ(follower.log().end_offset(), 1);
  answer({data_entry(1, 2), data_entry(3, 2)});  // out of order
  EXPECT_EQ(follower.log().end_offset(), 1);
  answer({data_entry(1, 1)});                    // an epoch below our last one
  EXPECT_EQ(follower.log().end_offset(), 1);
  answer({data_entry(1, 3)});                    // an epoch above the leader's
  EXPECT_EQ(follower.log().end_offset(), 1);
  EXPECT_EQ(follower.high_watermark(), 0);       // nothing was learned from those answers
  answer({LogEntry{0, 2, EntryKind::leader_change, {}}, data_entry(1, 2), data_entry(2, 2)});
  EXPECT_EQ(follower.log().end_offset(), 3);
  EXPECT_EQ(follower.log().at(1), data_entry(1, 2));
}

// ---- Divergence ---------------------------------------------------------------------------------

TEST(RaftDivergence, LeaderAnswersDivergingEpochAndFollowerTruncates) {
  // Leader: epoch 1 for offsets 0..1, then epoch 3 from offset 2.
  PersistedState leader_state;
  leader_state.quorum_state = QuorumStateData{"test", 2, 2, kNoNode, 0, {1, 2, 3}};
  leader_state.log = {data_entry(0, 1), data_entry(1, 1)};
  int64_t now = 0;
  RaftNode leader = make_node(1, leader_state);
  while (leader.role() != Role::candidate) leader.tick(now += 100);
  settle(leader, now);
  leader.receive(now, 3, VoteResponse{ErrorCode::none, kNoNode, 3, true});
  settle(leader, now);
  ASSERT_EQ(leader.role(), Role::leader);
  ASSERT_EQ(leader.epoch(), 3);

  // Follower 2 wrote offsets 2..4 in epoch 2 (never committed).
  PersistedState follower_state;
  follower_state.quorum_state = QuorumStateData{"test", 1, 3, kNoNode, 0, {1, 2, 3}};
  follower_state.log = {data_entry(0, 1), data_entry(1, 1), data_entry(2, 2), data_entry(3, 2), data_entry(4, 2)};
  RaftNode follower = make_node(2, follower_state);
  auto fetch = find<FetchRequest>(settle(follower, now));
  ASSERT_EQ(fetch.size(), 1u);
  EXPECT_EQ(fetch[0].second.fetch_offset, 5);
  EXPECT_EQ(fetch[0].second.last_fetched_epoch, 2);

  leader.receive(now, 2, fetch[0].second, fetch[0].first.correlation_id);
  auto answer = find<FetchResponse>(settle(leader, now));
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].second.diverging_epoch, (EpochEndOffset{1, 2}));
  EXPECT_TRUE(answer[0].second.records.empty());
  EXPECT_EQ(answer[0].first.correlation_id, fetch[0].first.correlation_id);

  follower.receive(now, 1, answer[0].second, answer[0].first.correlation_id);
  Ready truncated = settle(follower, now);
  EXPECT_EQ(follower.log().end_offset(), 2);
  ASSERT_FALSE(truncated.log_writes.empty());
  EXPECT_EQ(truncated.log_writes[0].kind, LogWrite::Kind::truncate);
  EXPECT_EQ(truncated.log_writes[0].offset, 2);
  auto refetch = find<FetchRequest>(truncated);
  ASSERT_EQ(refetch.size(), 1u);
  EXPECT_EQ(refetch[0].second.fetch_offset, 2);
  EXPECT_EQ(refetch[0].second.last_fetched_epoch, 1);

  leader.receive(now, 2, refetch[0].second, refetch[0].first.correlation_id);
  auto records = find<FetchResponse>(settle(leader, now));
  ASSERT_EQ(records[0].second.records.size(), 1u);
  EXPECT_EQ(records[0].second.records[0].epoch, 3);
  EXPECT_FALSE(records[0].second.diverging_epoch.present());
}

TEST(RaftDivergence, FencedAndUnknownEpochFetches) {
  int64_t now = 0;
  RaftNode leader = elected_leader(now);
  leader.receive(now, 2, fetch_from(2, 0, 0, 0));
  auto fenced = find<FetchResponse>(settle(leader, now));
  EXPECT_EQ(fenced[0].second.error_code, ErrorCode::fenced_leader_epoch);
  EXPECT_EQ(fenced[0].second.current_leader, (LeaderIdAndEpoch{1, 1}));
  leader.receive(now, 2, fetch_from(2, 7, 0, 0));
  EXPECT_EQ(find<FetchResponse>(settle(leader, now))[0].second.error_code, ErrorCode::unknown_leader_epoch);
  RaftNode voter = make_node(3);
  voter.receive(now, 4, fetch_from(4, 0, 0, 0));
  EXPECT_EQ(find<FetchResponse>(settle(voter, now))[0].second.error_code, ErrorCode::not_leader_or_follower);
  auto refused = voter.propose(now, {{1}});
  EXPECT_EQ(refused.error, ErrorCode::not_leader_or_follower);
}

// ---- Check-quorum and graceful resignation -------------------------------------------------------

TEST(RaftCheckQuorum, LeaderWithoutFetchesFromAMajorityResigns) {
  int64_t now = 0;
  RaftNode leader = elected_leader(now);
  const int64_t elected_at = now;
  // Node 3 keeps fetching but node 2 does not: 2 of 3 (with ourselves) is still a majority.
  for (; now < elected_at + 4000; now += 100) {
    leader.receive(now, 3, fetch_from(3, 1, 0, 0));
    leader.tick(now);
    settle(leader, now);
  }
  EXPECT_EQ(leader.role(), Role::leader);
  // Now nobody fetches: resign once 1.5 x fetch timeout (3000 ms) passed since the last fetch.
  const int64_t last_fetch = now - 100;
  Ready ready;
  while (leader.role() == Role::leader) {
    now += 10;
    leader.tick(now);
    ready = settle(leader, now);
  }
  EXPECT_EQ(leader.role(), Role::resigned);
  EXPECT_GE(now - last_fetch, 3000);
  EXPECT_LE(now - last_fetch, 3020);
  auto ends = find<EndQuorumEpochRequest>(ready);
  ASSERT_EQ(ends.size(), 2u);
  // The voter that fetched most recently (node 3, the most caught up) is the first successor.
  EXPECT_EQ(ends[0].second.preferred_successors.front(), 3);
  EXPECT_EQ(leader.propose(now, {{1}}).error, ErrorCode::not_leader_or_follower);
}

TEST(RaftEndQuorumEpoch, FirstSuccessorStandsForElectionAtOnce) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 1, 4, kNoNode, 0, {1, 2, 3}};
  RaftNode follower = make_node(2, persisted);
  settle(follower, 0);
  follower.receive(10, 1, EndQuorumEpochRequest{"test", 1, 4, {2, 3}});
  auto answer = find<EndQuorumEpochResponse>(settle(follower, 10));
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].second.error_code, ErrorCode::none);
  follower.tick(11);
  Ready ready = settle(follower, 11);
  EXPECT_EQ(follower.role(), Role::candidate);
  EXPECT_EQ(follower.epoch(), 5);
  EXPECT_EQ(find<VoteRequest>(ready).size(), 2u);
}

TEST(RaftEndQuorumEpoch, GracefulResignFromTheLeader) {
  int64_t now = 0;
  RaftNode leader = elected_leader(now);
  leader.receive(now, 3, fetch_from(3, 1, 1, 1));
  settle(leader, now);
  leader.resign(now);
  auto ends = find<EndQuorumEpochRequest>(settle(leader, now));
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].second.preferred_successors, (std::vector<NodeId>{3, 2}));
  EXPECT_EQ(ends[0].second.leader_epoch, 1);
  EXPECT_EQ(leader.role(), Role::resigned);
}

// ---- Snapshots ----------------------------------------------------------------------------------

// Routes messages between nodes with instant, durable disks until nothing moves.
struct Network {
  std::map<NodeId, RaftNode*> nodes;
  std::vector<std::pair<NodeId, OutgoingMessage>> in_flight;
  std::map<NodeId, std::vector<LogEntry>> applied;
  std::map<NodeId, int> installs;

  void pump(int64_t now, int rounds = 200) {
    for (int round = 0; round < rounds; ++round) {
      for (auto& [id, node] : nodes) {
        Ready r = settle(*node, now);
        for (auto& e : r.committed) applied[id].push_back(e);
        for (auto& m : r.messages) in_flight.emplace_back(id, m);
        if (r.install_snapshot) {
          ++installs[id];
          node->on_snapshot_loaded(now, r.install_snapshot->id);
          for (auto& m : settle(*node, now).messages) in_flight.emplace_back(id, m);
        }
      }
      if (in_flight.empty()) return;
      auto batch = std::move(in_flight);
      in_flight.clear();
      for (auto& [from, m] : batch)
        if (nodes.count(m.to)) nodes[m.to]->receive(now, from, m.message, m.correlation_id);
    }
  }
};

TEST(RaftSnapshot, OnlyCommittedAndAppliedOffsetsMaySnapshot) {
  int64_t now = 0;
  RaftNode leader = elected_leader(now);
  leader.propose(now, {{1}, {2}, {3}});
  settle(leader, now);
  EXPECT_FALSE(leader.snapshot_id_at(2).ok());  // not committed
  leader.receive(now, 2, fetch_from(2, 1, 4, 1));
  settle(leader, now);
  ASSERT_EQ(leader.high_watermark(), 4);
  auto id = leader.snapshot_id_at(3);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, (SnapshotId{3, 1}));
  EXPECT_FALSE(leader.on_snapshot_saved(now, SnapshotId{3, 0}, {}).ok());  // wrong epoch
  ASSERT_TRUE(leader.on_snapshot_saved(now, *id, {9, 9}).ok());
  EXPECT_EQ(leader.log().start_offset(), 3);
  Ready ready = settle(leader, now);
  ASSERT_EQ(ready.log_writes.size(), 1u);
  EXPECT_EQ(ready.log_writes[0].kind, LogWrite::Kind::drop_prefix);
  EXPECT_FALSE(leader.snapshot_id_at(3).ok());  // not above the log start any more
}

TEST(RaftSnapshot, LaggingFollowerCatchesUpThroughFetchSnapshot) {
  Config leader_config = config_for(1);
  leader_config.max_snapshot_chunk_bytes = 4;  // several chunks
  int64_t now = 0;
  auto created = RaftNode::create(leader_config, {}, 7, 0);
  ASSERT_TRUE(created.ok());
  RaftNode leader = std::move(*created);
  while (leader.role() != Role::candidate) leader.tick(now += 100);
  settle(leader, now);
  leader.receive(now, 2, VoteResponse{ErrorCode::none, kNoNode, 1, true});
  settle(leader, now);
  ASSERT_EQ(leader.role(), Role::leader);

  PersistedState follower_state;
  follower_state.quorum_state = QuorumStateData{"test", 1, 1, kNoNode, 0, {1, 2, 3}};
  RaftNode follower2 = make_node(2, follower_state);
  Network net;
  net.nodes = {{1, &leader}, {2, &follower2}};
  for (uint8_t v = 0; v < 10; ++v) leader.propose(now, {{v}});
  for (int i = 0; i < 20; ++i) {
    follower2.tick(now += 60);
    net.pump(now);
  }
  ASSERT_EQ(leader.high_watermark(), 11);
  const std::vector<uint8_t> image = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  ASSERT_TRUE(leader.on_snapshot_saved(now, *leader.snapshot_id_at(8), image).ok());

  // Node 3 starts empty: below the leader's log start it is sent to the snapshot.
  follower_state.quorum_state->leader_id = 1;
  RaftNode follower3 = make_node(3, follower_state);
  net.nodes[3] = &follower3;
  Ready first = settle(follower3, now);
  for (auto& m : first.messages) net.in_flight.emplace_back(3, m);
  leader.receive(now, 3, find<FetchRequest>(first)[0].second, find<FetchRequest>(first)[0].first.correlation_id);
  auto answer = find<FetchResponse>(settle(leader, now));
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].second.snapshot_id, (SnapshotId{8, 1}));
  net.in_flight.clear();
  follower3.receive(now, 1, answer[0].second, answer[0].first.correlation_id);
  for (int i = 0; i < 30; ++i) {
    net.pump(now);
    follower3.tick(now += 60);
  }
  EXPECT_EQ(net.installs[3], 1);
  EXPECT_EQ(follower3.log().start_offset(), 8);
  EXPECT_EQ(follower3.log().end_offset(), 11);
  EXPECT_EQ(follower3.high_watermark(), 11);
  // Entries after the snapshot were delivered as committed; those inside it were not.
  ASSERT_EQ(net.applied[3].size(), 3u);
  EXPECT_EQ(net.applied[3].front().offset, 8);
  // A FetchSnapshot for an unknown snapshot or a position past its end gets an error.
  FetchSnapshotRequest wrong{"test", 3, 100, 1, SnapshotId{5, 1}, 0};
  leader.receive(now, 3, wrong, 1);
  EXPECT_EQ(find<FetchSnapshotResponse>(settle(leader, now))[0].second.error_code, ErrorCode::snapshot_not_found);
  FetchSnapshotRequest past{"test", 3, 100, 1, SnapshotId{8, 1}, 12};
  leader.receive(now, 3, past, 2);
  EXPECT_EQ(find<FetchSnapshotResponse>(settle(leader, now))[0].second.error_code, ErrorCode::position_out_of_range);
}

TEST(RaftSnapshot, RestartDropsLogPrefixInsideTheSnapshot) {
  PersistedState persisted;
  persisted.quorum_state = QuorumStateData{"test", 2, 2, kNoNode, 0, {1, 2, 3}};
  persisted.snapshot = SnapshotId{2, 1};
  persisted.snapshot_bytes = {1};
  persisted.log = {data_entry(0, 1), data_entry(1, 1), data_entry(2, 1)};
  RaftNode node = make_node(3, persisted);
  EXPECT_EQ(node.log().start_offset(), 2);
  EXPECT_EQ(node.log().end_offset(), 3);
  EXPECT_EQ(node.high_watermark(), 2);
  Ready ready = node.take_ready();
  ASSERT_FALSE(ready.log_writes.empty());
  EXPECT_EQ(ready.log_writes[0].kind, LogWrite::Kind::drop_prefix);

  // A log that does not continue the snapshot is dropped whole.
  persisted.log = {data_entry(0, 1), data_entry(1, 2), data_entry(2, 2)};
  RaftNode other = make_node(3, persisted);
  EXPECT_EQ(other.log().end_offset(), 2);
  EXPECT_EQ(other.take_ready().log_writes[0].kind, LogWrite::Kind::reset);
}

}  // namespace
}  // namespace bulwark::raft
