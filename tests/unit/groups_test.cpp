// The group state machine with a fake clock: rebalances, protocol selection, timeouts, static
// membership, generation checks, offsets and their retention, and replay from stored records.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "groups/coordinator.h"
#include "groups/log_store.h"
#include "storage/log.h"

namespace bulwark::groups {
namespace {

class MemoryStore : public GroupStore {
 public:
  explicit MemoryStore(std::shared_ptr<std::vector<StoredRecord>> records) : records_(std::move(records)) {}
  Status append(const std::vector<StoredRecord>& records) override {
    if (fail) return make_error(ErrorKind::io, "disk full");
    records_->insert(records_->end(), records.begin(), records.end());
    return Status::success();
  }
  Result<std::vector<StoredRecord>> load() override { return *records_; }
  bool fail = false;

 private:
  std::shared_ptr<std::vector<StoredRecord>> records_;
};

Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A consumer-protocol subscription naming the topics (version 0).
Bytes subscription(const std::vector<std::string>& topics) {
  ByteWriter w;
  w.write_i16(0);
  w.write_i32(static_cast<std::int32_t>(topics.size()));
  for (const auto& t : topics) {
    w.write_i16(static_cast<std::int16_t>(t.size()));
    w.write_bytes(t);
  }
  w.write_i32(-1);  // user data
  return w.take();
}

class GroupsTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    coordinator.reset();
    auto store = std::make_unique<MemoryStore>(records);
    store_ptr = store.get();
    auto c = GroupCoordinator::open(settings, std::move(store), [this] { return now; });
    ASSERT_TRUE(c.ok()) << c.error().message;
    coordinator = std::move(*c);
  }

  JoinRequest join_request(const std::string& member_id, std::vector<Protocol> protocols = {},
                           std::optional<std::string> instance = std::nullopt) {
    JoinRequest r;
    r.group_id = "g";
    r.member_id = member_id;
    r.group_instance_id = std::move(instance);
    r.protocol_type = "consumer";
    r.protocols = protocols.empty() ? std::vector<Protocol>{{"range", subscription({"t"})}} : std::move(protocols);
    r.session_timeout_ms = 10000;
    r.rebalance_timeout_ms = 30000;
    r.client_id = "client";
    r.client_host = "/127.0.0.1";
    return r;
  }

  // Starts a join; the result slot fills when the coordinator answers.
  std::shared_ptr<std::optional<JoinResult>> join(JoinRequest r) {
    auto slot = std::make_shared<std::optional<JoinResult>>();
    coordinator->join(std::move(r), [slot](JoinResult result) { *slot = std::move(result); });
    return slot;
  }
  std::shared_ptr<std::optional<SyncResult>> sync(const std::string& member_id, std::int32_t generation,
                                                  std::vector<std::pair<std::string, Bytes>> assignments = {}) {
    SyncRequest r;
    r.group_id = "g";
    r.member_id = member_id;
    r.generation_id = generation;
    r.assignments = std::move(assignments);
    auto slot = std::make_shared<std::optional<SyncResult>>();
    coordinator->sync(std::move(r), [slot](SyncResult result) { *slot = std::move(result); });
    return slot;
  }

  // The v4+ dance: an empty member id gets MEMBER_ID_REQUIRED and an id, then joins with it.
  std::string new_member_id() {
    auto r = join_request("");
    r.require_known_member_id = true;
    auto first = join(r);
    EXPECT_TRUE(first->has_value());
    EXPECT_EQ((*first)->error, GroupError::member_id_required);
    EXPECT_FALSE((*first)->member_id.empty());
    return (*first)->member_id;
  }

  void advance(std::int64_t ms) {
    now += ms;
    coordinator->tick();
  }

  // Brings up a stable group of n members; returns their ids (leader first) and the generation.
  std::pair<std::vector<std::string>, std::int32_t> stable_group(int n) {
    std::vector<std::string> ids;
    std::vector<std::shared_ptr<std::optional<JoinResult>>> joins;
    for (int i = 0; i < n; ++i) {
      ids.push_back(new_member_id());
      joins.push_back(join(join_request(ids.back())));
    }
    advance(settings.initial_rebalance_delay_ms);
    std::int32_t generation = -1;
    std::string leader;
    for (auto& j : joins) {
      EXPECT_TRUE(j->has_value());
      EXPECT_EQ((*j)->error, GroupError::none);
      generation = (*j)->generation_id;
      leader = (*j)->leader_id;
    }
    std::vector<std::pair<std::string, Bytes>> assignments;
    for (const auto& id : ids) assignments.emplace_back(id, bytes("assignment of " + id));
    std::vector<std::shared_ptr<std::optional<SyncResult>>> syncs;
    for (const auto& id : ids) syncs.push_back(sync(id, generation, id == leader ? assignments : decltype(assignments){}));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(syncs[i]->has_value());
      EXPECT_EQ((*syncs[i])->error, GroupError::none);
      EXPECT_EQ((*syncs[i])->assignment, bytes("assignment of " + ids[i]));
    }
    std::erase(ids, leader);
    ids.insert(ids.begin(), leader);
    return {ids, generation};
  }

  GroupSettings settings = [] {
    GroupSettings s;
    s.initial_rebalance_delay_ms = 100;
    s.offsets_retention_ms = 60000;
    s.offsets_retention_check_interval_ms = 1000;
    return s;
  }();
  std::int64_t now = 1'000'000;
  std::shared_ptr<std::vector<StoredRecord>> records = std::make_shared<std::vector<StoredRecord>>();
  MemoryStore* store_ptr = nullptr;
  std::unique_ptr<GroupCoordinator> coordinator;
};

TEST_F(GroupsTest, ThreeMembersJoinAndSync) {
  std::vector<std::string> ids;
  std::vector<std::shared_ptr<std::optional<JoinResult>>> joins;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(new_member_id());
    joins.push_back(join(join_request(ids.back())));
  }
  // The initial rebalance delay holds the first generation back for more members.
  for (auto& j : joins) EXPECT_FALSE(j->has_value());
  EXPECT_EQ(coordinator->describe("g").state, GroupState::preparing_rebalance);
  advance(100);
  int leaders = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(joins[i]->has_value());
    const auto& r = **joins[i];
    EXPECT_EQ(r.error, GroupError::none);
    EXPECT_EQ(r.generation_id, 1);
    EXPECT_EQ(r.protocol_name, "range");
    EXPECT_EQ(r.member_id, ids[i]);
    EXPECT_EQ(r.leader_id, ids[0]);  // the first to join leads
    if (r.leader_id == r.member_id) {
      ++leaders;
      ASSERT_EQ(r.members.size(), 3u);
      EXPECT_EQ(r.members[1].metadata, subscription({"t"}));
    } else {
      EXPECT_TRUE(r.members.empty());
    }
  }
  EXPECT_EQ(leaders, 1);
  EXPECT_EQ(coordinator->describe("g").state, GroupState::completing_rebalance);

  // Followers wait for the leader's assignment.
  auto s1 = sync(ids[1], 1);
  auto s2 = sync(ids[2], 1);
  EXPECT_FALSE(s1->has_value());
  EXPECT_EQ(coordinator->heartbeat("g", 1, ids[1], std::nullopt), GroupError::none);
  auto s0 = sync(ids[0], 1, {{ids[0], bytes("a0")}, {ids[1], bytes("a1")}, {ids[2], bytes("a2")}});
  ASSERT_TRUE(s0->has_value() && s1->has_value() && s2->has_value());
  EXPECT_EQ((*s0)->assignment, bytes("a0"));
  EXPECT_EQ((*s1)->assignment, bytes("a1"));
  EXPECT_EQ((*s2)->assignment, bytes("a2"));
  EXPECT_EQ((*s2)->protocol_name, "range");
  auto d = coordinator->describe("g");
  EXPECT_EQ(d.state, GroupState::stable);
  EXPECT_EQ(d.members.size(), 3u);
  EXPECT_EQ(d.protocol_name, "range");
  for (const auto& id : ids) EXPECT_EQ(coordinator->heartbeat("g", 1, id, std::nullopt), GroupError::none);
}

// A coordinator whose partition moved to another broker answers what waits, and what comes later,
// with NOT_COORDINATOR, so clients find the new one at once instead of waiting out their timeouts.
TEST_F(GroupsTest, ResignAnswersWaitingJoinsAndSyncsAndRefusesLaterCalls) {
  auto [ids, generation] = stable_group(2);
  auto waiting_join = join(join_request(new_member_id()));  // a third member: a rebalance starts
  EXPECT_FALSE(waiting_join->has_value());
  coordinator->resign(GroupError::not_coordinator);
  ASSERT_TRUE(waiting_join->has_value());
  EXPECT_EQ((*waiting_join)->error, GroupError::not_coordinator);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[0], std::nullopt), GroupError::not_coordinator);
  auto later_sync = sync(ids[0], generation);
  ASSERT_TRUE(later_sync->has_value());
  EXPECT_EQ((*later_sync)->error, GroupError::not_coordinator);
  CommitRequest commit;
  commit.group_id = "g";
  commit.offsets.push_back({"t", 0, 5, -1, "", GroupError::none});
  EXPECT_EQ(coordinator->commit(commit), std::vector<GroupError>{GroupError::not_coordinator});
  auto later_join = join(join_request(ids[1]));
  ASSERT_TRUE(later_join->has_value());
  EXPECT_EQ((*later_join)->error, GroupError::not_coordinator);
}

TEST_F(GroupsTest, ProtocolSelectedByVotesAndNoneSharedIsInconsistent) {
  settings.initial_rebalance_delay_ms = 0;
  open();
  auto a = new_member_id();
  auto b = new_member_id();
  auto c = new_member_id();
  auto ja = join(join_request(a, {{"roundrobin", {}}, {"range", {}}}));
  auto jb = join(join_request(b, {{"range", {}}, {"roundrobin", {}}}));
  auto jc = join(join_request(c, {{"range", {}}, {"sticky", {}}}));
  ASSERT_TRUE(ja->has_value() && jb->has_value() && jc->has_value());
  // Only "range" is shared by all three, whatever a prefers.
  EXPECT_EQ((*ja)->protocol_name, "range");

  // A newcomer sharing nothing with the group is refused and changes nothing.
  auto d = new_member_id();
  auto jd = join(join_request(d, {{"cooperative-sticky", {}}}));
  ASSERT_TRUE(jd->has_value());
  EXPECT_EQ((*jd)->error, GroupError::inconsistent_group_protocol);
  // So is one of another protocol type.
  auto other = join_request("");
  other.protocol_type = "connect";
  auto jo = join(other);
  ASSERT_TRUE(jo->has_value());
  EXPECT_EQ((*jo)->error, GroupError::inconsistent_group_protocol);
  EXPECT_EQ(coordinator->describe("g").members.size(), 3u);
}

TEST_F(GroupsTest, VotesPickTheMostPreferredSharedProtocol) {
  settings.initial_rebalance_delay_ms = 0;
  open();
  auto a = new_member_id();
  auto b = new_member_id();
  auto c = new_member_id();
  auto ja = join(join_request(a, {{"range", {}}, {"roundrobin", {}}}));
  auto jb = join(join_request(b, {{"roundrobin", {}}, {"range", {}}}));
  auto jc = join(join_request(c, {{"roundrobin", {}}, {"range", {}}}));
  ASSERT_TRUE(ja->has_value());
  EXPECT_EQ((*ja)->protocol_name, "roundrobin");
}

TEST_F(GroupsTest, MemberIdRequiredThenJoin) {
  auto r = join_request("");
  r.require_known_member_id = true;
  auto first = join(r);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->error, GroupError::member_id_required);
  EXPECT_EQ((*first)->member_id.rfind("client-", 0), 0u);
  // The handed-out id expires unused after the session timeout.
  advance(10001);
  auto late = join(join_request((*first)->member_id));
  ASSERT_TRUE(late->has_value());
  EXPECT_EQ((*late)->error, GroupError::unknown_member_id);
  // Old clients (v0-3) join directly with an empty member id.
  auto direct = join(join_request(""));
  advance(100);
  ASSERT_TRUE(direct->has_value());
  EXPECT_EQ((*direct)->error, GroupError::none);
  EXPECT_FALSE((*direct)->member_id.empty());
}

TEST_F(GroupsTest, SessionTimeoutBoundsAndGroupId) {
  auto r = join_request("");
  r.session_timeout_ms = 1000;
  auto j = join(r);
  ASSERT_TRUE(j->has_value());
  EXPECT_EQ((*j)->error, GroupError::invalid_session_timeout);
  r = join_request("");
  r.group_id = "";
  j = join(r);
  EXPECT_EQ((*j)->error, GroupError::invalid_group_id);
}

TEST_F(GroupsTest, OversizedMetadataRejected) {
  auto r = join_request("", {{"range", Bytes(settings.max_member_metadata_bytes + 1, 'x')}});
  auto j = join(r);
  ASSERT_TRUE(j->has_value());
  EXPECT_EQ((*j)->error, GroupError::invalid_request);
  EXPECT_EQ(coordinator->describe("g").members.size(), 0u);
}

TEST_F(GroupsTest, SessionExpiryTriggersRebalance) {
  auto [ids, generation] = stable_group(3);
  // Two members heartbeat, the third goes silent.
  for (int i = 0; i < 3; ++i) {
    advance(3000);
    EXPECT_EQ(coordinator->heartbeat("g", generation, ids[0], std::nullopt), GroupError::none);
    EXPECT_EQ(coordinator->heartbeat("g", generation, ids[1], std::nullopt), GroupError::none);
  }
  EXPECT_EQ(coordinator->describe("g").members.size(), 3u);
  advance(1001);  // 10 s passed: the silent member's session is over
  EXPECT_EQ(coordinator->describe("g").members.size(), 2u);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[0], std::nullopt), GroupError::rebalance_in_progress);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[2], std::nullopt), GroupError::unknown_member_id);
  auto j0 = join(join_request(ids[0]));
  EXPECT_FALSE(j0->has_value());
  auto j1 = join(join_request(ids[1]));
  ASSERT_TRUE(j0->has_value() && j1->has_value());
  EXPECT_EQ((*j0)->generation_id, generation + 1);
  EXPECT_EQ((*j0)->members.size(), 2u);
}

TEST_F(GroupsTest, RebalanceTimeoutRemovesMembersThatDoNotRejoin) {
  auto [ids, generation] = stable_group(2);
  auto j0 = join(join_request(ids[0]));  // the leader asks for a rebalance; the other never rejoins
  EXPECT_FALSE(j0->has_value());
  for (int i = 0; i < 10; ++i) {
    advance(3000);
    coordinator->heartbeat("g", generation, ids[1], std::nullopt);  // heartbeats do not count as a rejoin
  }
  ASSERT_TRUE(j0->has_value());  // after the 30 s rebalance timeout
  EXPECT_EQ((*j0)->generation_id, generation + 1);
  EXPECT_EQ((*j0)->members.size(), 1u);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[1], std::nullopt), GroupError::unknown_member_id);
}

TEST_F(GroupsTest, LeaderThatNeverSyncsIsRemoved) {
  settings.initial_rebalance_delay_ms = 0;
  open();
  auto a = new_member_id();
  auto b = new_member_id();
  auto ja = join(join_request(a));
  auto jb = join(join_request(b));
  ASSERT_TRUE(ja->has_value() && jb->has_value());
  auto sb = sync(b, (*jb)->generation_id);
  EXPECT_FALSE(sb->has_value());
  advance(30000);  // the leader never sends SyncGroup
  ASSERT_TRUE(sb->has_value());
  EXPECT_EQ((*sb)->error, GroupError::rebalance_in_progress);
  auto jb2 = join(join_request(b));
  ASSERT_TRUE(jb2->has_value());
  EXPECT_EQ((*jb2)->leader_id, b);
}

TEST_F(GroupsTest, GenerationAndMemberChecks) {
  auto [ids, generation] = stable_group(2);
  EXPECT_EQ(coordinator->heartbeat("g", generation + 5, ids[0], std::nullopt), GroupError::illegal_generation);
  EXPECT_EQ(coordinator->heartbeat("g", generation, "nobody", std::nullopt), GroupError::unknown_member_id);
  EXPECT_EQ(coordinator->heartbeat("nogroup", generation, ids[0], std::nullopt), GroupError::unknown_member_id);
  auto s = sync(ids[1], generation - 1);
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->error, GroupError::illegal_generation);
  s = sync("nobody", generation);
  EXPECT_EQ((*s)->error, GroupError::unknown_member_id);
  auto j = join(join_request("nobody"));
  ASSERT_TRUE(j->has_value());
  EXPECT_EQ((*j)->error, GroupError::unknown_member_id);

  CommitRequest c;
  c.group_id = "g";
  c.member_id = ids[0];
  c.generation_id = generation - 1;
  c.offsets.push_back({"t", 0, 10, -1, "", GroupError::none});
  EXPECT_EQ(coordinator->commit(c), std::vector<GroupError>{GroupError::illegal_generation});
  c.member_id = "nobody";
  c.generation_id = generation;
  EXPECT_EQ(coordinator->commit(c), std::vector<GroupError>{GroupError::unknown_member_id});
  // A simple commit (generation -1) into a group with members is refused too.
  c.member_id = "";
  c.generation_id = -1;
  EXPECT_EQ(coordinator->commit(c), std::vector<GroupError>{GroupError::unknown_member_id});
  c.member_id = ids[1];
  c.generation_id = generation;
  EXPECT_EQ(coordinator->commit(c), std::vector<GroupError>{GroupError::none});
}

TEST_F(GroupsTest, LeaveTriggersRebalanceAndLastLeaveEmptiesTheGroup) {
  auto [ids, generation] = stable_group(2);
  auto result = coordinator->leave("g", {{ids[1], std::nullopt}, {"nobody", std::nullopt}});
  ASSERT_EQ(result.members.size(), 2u);
  EXPECT_EQ(result.members[0].second, GroupError::none);
  EXPECT_EQ(result.members[1].second, GroupError::unknown_member_id);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[0], std::nullopt), GroupError::rebalance_in_progress);
  auto j = join(join_request(ids[0]));
  ASSERT_TRUE(j->has_value());  // the only member left has rejoined: done at once
  EXPECT_EQ((*j)->generation_id, generation + 1);
  coordinator->leave("g", {{ids[0], std::nullopt}});
  auto d = coordinator->describe("g");
  EXPECT_EQ(d.state, GroupState::empty);
  EXPECT_EQ(d.generation_id, generation + 2);
  EXPECT_EQ(coordinator->delete_group("g"), GroupError::none);
  EXPECT_EQ(coordinator->describe("g").state, GroupState::dead);
  EXPECT_EQ(coordinator->delete_group("g"), GroupError::group_id_not_found);
}

TEST_F(GroupsTest, StaticMemberRejoinsWithoutRebalance) {
  settings.initial_rebalance_delay_ms = 0;
  open();
  auto ja = join(join_request("", {}, "instance-a"));
  ASSERT_TRUE(ja->has_value());  // no initial delay: a forms generation 1 alone
  std::string a_id = (*ja)->member_id;
  ASSERT_TRUE(sync(a_id, (*ja)->generation_id, {{a_id, bytes("A")}})->has_value());
  auto jb = join(join_request("", {}, "instance-b"));  // static members need no MEMBER_ID_REQUIRED round
  EXPECT_FALSE(jb->has_value());
  auto ja2 = join(join_request(a_id, {}, "instance-a"));
  ASSERT_TRUE(ja2->has_value() && jb->has_value());
  std::string b_id = (*jb)->member_id;
  auto gen = (*jb)->generation_id;
  auto leader = (*jb)->leader_id;
  EXPECT_EQ(leader, a_id);
  auto s_other = sync(b_id, gen);
  auto s_leader = sync(a_id, gen, {{a_id, bytes("A")}, {b_id, bytes("B")}});
  ASSERT_TRUE(s_leader->has_value() && s_other->has_value());
  EXPECT_EQ(coordinator->describe("g").state, GroupState::stable);

  // b restarts: same instance id, no member id, same protocols.
  auto jb2 = join(join_request("", {}, "instance-b"));
  ASSERT_TRUE(jb2->has_value());
  EXPECT_EQ((*jb2)->error, GroupError::none);
  EXPECT_EQ((*jb2)->generation_id, gen);  // no rebalance
  EXPECT_NE((*jb2)->member_id, b_id);
  EXPECT_EQ(coordinator->describe("g").state, GroupState::stable);
  auto sb2 = sync((*jb2)->member_id, gen);
  ASSERT_TRUE(sb2->has_value());
  EXPECT_EQ((*sb2)->assignment, bytes("B"));  // keeps its assignment
  // The old member id is fenced.
  EXPECT_EQ(coordinator->heartbeat("g", gen, b_id, std::string("instance-b")), GroupError::fenced_instance_id);
  auto old = join(join_request(b_id, {}, "instance-b"));
  ASSERT_TRUE(old->has_value());
  EXPECT_EQ((*old)->error, GroupError::fenced_instance_id);
  EXPECT_EQ(coordinator->heartbeat("g", gen, a_id, std::string("instance-a")), GroupError::none);

  // Leaving by instance id.
  auto left = coordinator->leave("g", {{"", std::string("instance-b")}});
  EXPECT_EQ(left.members[0].second, GroupError::none);
  EXPECT_EQ(coordinator->describe("g").members.size(), 1u);
}

TEST_F(GroupsTest, StaticMemberWithChangedSubscriptionRebalances) {
  settings.initial_rebalance_delay_ms = 0;
  open();
  auto ja = join(join_request("", {}, "i"));
  ASSERT_TRUE(ja->has_value());
  auto s = sync((*ja)->member_id, (*ja)->generation_id, {{(*ja)->member_id, bytes("A")}});
  ASSERT_TRUE(s->has_value());
  // Other user data, same topics: no rebalance.
  auto same_topics = subscription({"t"});
  same_topics.back() = 0;  // user data length -1 becomes -256: different bytes, same topics
  auto quiet = join(join_request("", {{"range", same_topics}}, "i"));
  ASSERT_TRUE(quiet->has_value());
  EXPECT_EQ((*quiet)->generation_id, (*ja)->generation_id);
  // Another topic: a rebalance (the only member, so it completes at once).
  auto again = join(join_request("", {{"range", subscription({"t", "u"})}}, "i"));
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->generation_id, (*ja)->generation_id + 1);
}

TEST_F(GroupsTest, SimpleCommitsFetchAndDelete) {
  CommitRequest c;
  c.group_id = "simple";
  c.offsets = {{"t", 0, 5, -1, "m0", GroupError::none}, {"t", 1, 7, 3, "", GroupError::none},
               {"t", 2, 9, -1, std::string(5000, 'x'), GroupError::none}};
  auto errors = coordinator->commit(c);
  EXPECT_EQ(errors, (std::vector<GroupError>{GroupError::none, GroupError::none, GroupError::offset_metadata_too_large}));
  auto fetched = coordinator->fetch_offsets("simple", std::vector<TopicPartitionKey>{{"t", 0}, {"t", 1}, {"t", 2}});
  ASSERT_EQ(fetched.offsets.size(), 3u);
  EXPECT_EQ(fetched.offsets[0].offset, 5);
  EXPECT_EQ(fetched.offsets[0].metadata, "m0");
  EXPECT_EQ(fetched.offsets[1].offset, 7);
  EXPECT_EQ(fetched.offsets[1].leader_epoch, 3);
  EXPECT_EQ(fetched.offsets[2].offset, -1);
  EXPECT_EQ(coordinator->fetch_offsets("simple", std::nullopt).offsets.size(), 2u);
  EXPECT_EQ(coordinator->fetch_offsets("unknown", std::nullopt).offsets.size(), 0u);
  EXPECT_EQ(coordinator->fetch_offsets("unknown", std::vector<TopicPartitionKey>{{"t", 0}}).offsets[0].offset, -1);

  std::vector<GroupError> partition_errors;
  EXPECT_EQ(coordinator->delete_offsets("simple", {{"t", 0}}, partition_errors), GroupError::none);
  EXPECT_EQ(coordinator->fetch_offsets("simple", std::nullopt).offsets.size(), 1u);
  EXPECT_EQ(coordinator->delete_offsets("nope", {{"t", 0}}, partition_errors), GroupError::group_id_not_found);

  store_ptr->fail = true;
  EXPECT_EQ(coordinator->commit(c)[0], GroupError::coordinator_not_available);
  EXPECT_EQ(coordinator->fetch_offsets("simple", std::vector<TopicPartitionKey>{{"t", 0}}).offsets[0].offset, -1);
}

TEST_F(GroupsTest, DeleteRefusedWhileMembersAndSubscribedOffsetsProtected) {
  auto [ids, generation] = stable_group(1);
  CommitRequest c;
  c.group_id = "g";
  c.member_id = ids[0];
  c.generation_id = generation;
  c.offsets = {{"t", 0, 5, -1, "", GroupError::none}, {"other", 0, 1, -1, "", GroupError::none}};
  ASSERT_EQ(coordinator->commit(c), (std::vector<GroupError>{GroupError::none, GroupError::none}));
  EXPECT_EQ(coordinator->delete_group("g"), GroupError::non_empty_group);
  std::vector<GroupError> errors;
  EXPECT_EQ(coordinator->delete_offsets("g", {{"t", 0}, {"other", 0}}, errors), GroupError::none);
  EXPECT_EQ(errors, (std::vector<GroupError>{GroupError::group_subscribed_to_topic, GroupError::none}));
}

TEST_F(GroupsTest, OffsetsOfEmptyGroupsExpire) {
  auto [ids, generation] = stable_group(1);
  CommitRequest c;
  c.group_id = "g";
  c.member_id = ids[0];
  c.generation_id = generation;
  c.offsets = {{"t", 0, 5, -1, "", GroupError::none}};
  ASSERT_EQ(coordinator->commit(c)[0], GroupError::none);
  // Offsets of an active group never expire.
  for (int i = 0; i < 30; ++i) {
    advance(3000);
    ASSERT_EQ(coordinator->heartbeat("g", generation, ids[0], std::nullopt), GroupError::none);
  }
  EXPECT_EQ(coordinator->fetch_offsets("g", std::nullopt).offsets.size(), 1u);
  coordinator->leave("g", {{ids[0], std::nullopt}});
  advance(59000);
  EXPECT_EQ(coordinator->fetch_offsets("g", std::nullopt).offsets.size(), 1u);
  advance(2000);  // retention (60 s) after the group became empty
  EXPECT_EQ(coordinator->fetch_offsets("g", std::nullopt).offsets.size(), 0u);
  EXPECT_EQ(coordinator->describe("g").state, GroupState::dead);

  // A simple consumer's offsets expire by their commit time.
  CommitRequest s;
  s.group_id = "simple";
  s.offsets = {{"t", 0, 1, -1, "", GroupError::none}};
  coordinator->commit(s);
  advance(30000);
  s.offsets = {{"t", 1, 2, -1, "", GroupError::none}};
  coordinator->commit(s);
  advance(31000);
  auto left = coordinator->fetch_offsets("simple", std::nullopt);
  ASSERT_EQ(left.offsets.size(), 1u);
  EXPECT_EQ(left.offsets[0].partition, 1);

  // The expiry is durable: a replay does not bring the offsets back.
  open();
  EXPECT_EQ(coordinator->fetch_offsets("g", std::nullopt).offsets.size(), 0u);
  EXPECT_EQ(coordinator->fetch_offsets("simple", std::nullopt).offsets.size(), 1u);
}

TEST_F(GroupsTest, ReplayRestoresOffsetsAndGroups) {
  auto [ids, generation] = stable_group(2);
  CommitRequest c;
  c.group_id = "g";
  c.member_id = ids[0];
  c.generation_id = generation;
  c.offsets = {{"t", 0, 42, 1, "meta", GroupError::none}, {"t", 1, 7, -1, "", GroupError::none}};
  ASSERT_EQ(coordinator->commit(c)[0], GroupError::none);
  c.offsets = {{"t", 0, 43, 1, "meta2", GroupError::none}};
  ASSERT_EQ(coordinator->commit(c)[0], GroupError::none);
  CommitRequest gone;
  gone.group_id = "deleted";
  gone.offsets = {{"t", 0, 1, -1, "", GroupError::none}};
  coordinator->commit(gone);
  ASSERT_EQ(coordinator->delete_group("deleted"), GroupError::none);

  open();  // a new coordinator reading the same records
  auto fetched = coordinator->fetch_offsets("g", std::vector<TopicPartitionKey>{{"t", 0}, {"t", 1}});
  EXPECT_EQ(fetched.offsets[0].offset, 43);
  EXPECT_EQ(fetched.offsets[0].metadata, "meta2");
  EXPECT_EQ(fetched.offsets[0].leader_epoch, 1);
  EXPECT_EQ(fetched.offsets[1].offset, 7);
  EXPECT_EQ(coordinator->describe("deleted").state, GroupState::dead);
  // The stored generation carries over: members keep heartbeating and committing.
  auto d = coordinator->describe("g");
  EXPECT_EQ(d.state, GroupState::stable);
  EXPECT_EQ(d.generation_id, generation);
  EXPECT_EQ(d.members.size(), 2u);
  EXPECT_EQ(coordinator->heartbeat("g", generation, ids[1], std::nullopt), GroupError::none);
  auto s = sync(ids[1], generation);
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->assignment, bytes("assignment of " + ids[1]));
  // Members that are gone expire by session timeout as usual.
  advance(10001);
  EXPECT_EQ(coordinator->describe("g").members.size(), 0u);
}

TEST_F(GroupsTest, ReplaySkipsCorruptRecords) {
  records->push_back({bytes("\x7f\x7f garbage"), bytes("x")});
  records->push_back({encode_offset_key({"g", "t", 0}), bytes("\x00")});  // truncated value
  records->push_back({encode_offset_key({"g", "t", 1}), encode_offset_value({9, -1, "", 1})});
  open();
  auto fetched = coordinator->fetch_offsets("g", std::nullopt);
  ASSERT_EQ(fetched.offsets.size(), 1u);
  EXPECT_EQ(fetched.offsets[0].offset, 9);
}

TEST(GroupRecords, RoundTripAndKafkaLayout) {
  auto key = encode_offset_key({"grp", "topic", 3});
  // i16 version 1, i16 len "grp", i16 len "topic", i32 partition: exactly Kafka's OffsetCommitKey v1.
  Bytes expected = {0, 1, 0, 3, 'g', 'r', 'p', 0, 5, 't', 'o', 'p', 'i', 'c', 0, 0, 0, 3};
  EXPECT_EQ(key, expected);
  auto decoded = decode_key(key);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<OffsetKey>(*decoded).topic, "topic");
  GroupValue g;
  g.protocol_type = "consumer";
  g.generation = 4;
  g.protocol = "range";
  g.leader = "m1";
  g.members.push_back({"m1", std::string("i1"), "c", "/h", 300, 10, bytes("sub"), bytes("asg")});
  auto value = decode_group_value(encode_group_value(g));
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->generation, 4);
  ASSERT_EQ(value->members.size(), 1u);
  EXPECT_EQ(value->members[0].group_instance_id, "i1");
  EXPECT_EQ(value->members[0].assignment, bytes("asg"));
  auto encoded = encode_group_value(g);
  for (std::size_t cut = 0; cut < encoded.size(); ++cut)
    EXPECT_FALSE(decode_group_value(ByteView(encoded).first(cut)).ok()) << cut;
}

TEST(GroupLogStore, OffsetsSurviveReopeningThePartitionLog) {
  auto dir = std::filesystem::temp_directory_path() / ("groups_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::int64_t now = 5000;
  Clock clock = [&now] { return now; };
  {
    auto log = storage::PartitionLog::open(dir / "__consumer_offsets-0", {});
    ASSERT_TRUE(log.ok());
    auto c = GroupCoordinator::open({}, std::make_unique<PartitionLogStore>(*log, clock), clock);
    ASSERT_TRUE(c.ok());
    CommitRequest commit;
    commit.group_id = "g";
    for (int p = 0; p < 200; ++p) {
      commit.offsets = {{"t", p % 6, p, -1, std::string(100, 'm'), GroupError::none}};
      ASSERT_EQ((*c)->commit(commit)[0], GroupError::none);
    }
    commit.offsets = {{"u", 0, 1, -1, "", GroupError::none}, {"u", 1, 2, -1, "", GroupError::none}};  // one batch of two
    ASSERT_EQ((*c)->commit(commit), (std::vector<GroupError>{GroupError::none, GroupError::none}));
  }
  auto log = storage::PartitionLog::open(dir / "__consumer_offsets-0", {});
  ASSERT_TRUE(log.ok());
  auto c = GroupCoordinator::open({}, std::make_unique<PartitionLogStore>(*log, clock), clock);
  ASSERT_TRUE(c.ok());
  auto fetched = (*c)->fetch_offsets("g", std::vector<TopicPartitionKey>{{"t", 0}, {"t", 1}, {"t", 2}, {"t", 3}, {"t", 4}, {"t", 5}});
  ASSERT_EQ((*c)->fetch_offsets("g", std::nullopt).offsets.size(), 8u);
  for (const auto& o : fetched.offsets) {
    int last = -1;  // the last commit for this partition wins
    for (int p = 0; p < 200; ++p)
      if (p % 6 == o.partition) last = p;
    EXPECT_EQ(o.offset, last);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bulwark::groups
