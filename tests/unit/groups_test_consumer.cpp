// KIP-848's consumer group state machine (groups/consumer/) driven by hand with a fake clock: joins,
// complete assignments, revoke-before-assign with two and three members, leaves, session expiry,
// fencing, metadata changes; and the uniform and range assignors on seeded random subscriptions.
#include <gtest/gtest.h>

#include <random>

#include "groups/consumer/assignors.h"
#include "groups/consumer/consumer_group.h"

namespace bulwark::groups::consumer {
namespace {

// A group with its topics, members that behave as KIP-848 consumers (they report what they own and
// let go of what they are no longer assigned), and a check that no partition has two owners.
class Harness {
 public:
  Harness() : group_("g", settings()) {}
  static ConsumerGroupSettings settings() {
    ConsumerGroupSettings s;
    s.session_timeout_ms = 45000;
    s.heartbeat_interval_ms = 5000;
    return s;
  }

  void topic(const std::string& name, std::int32_t partitions) {
    auto& meta = topics_[name];
    meta.id[0] = static_cast<std::uint8_t>(name.size());
    meta.partitions = partitions;
  }

  struct Client {
    std::string id;
    std::int32_t epoch = 0;
    Partitions owned;
  };

  HeartbeatResult send(HeartbeatRequest r) {
    auto lookup = [this](const std::string& name) -> std::optional<TopicMetadata> {
      auto it = topics_.find(name);
      if (it == topics_.end()) return std::nullopt;
      return it->second;
    };
    std::string message;
    auto invalid = validate_heartbeat(r, message);
    if (invalid != GroupError::none) return HeartbeatResult{invalid, message, r.member_id, 0, 0, std::nullopt};
    return group_.heartbeat(r, now, lookup, [this] { return "m" + std::to_string(next_id_++); });
  }

  Client join(std::vector<std::string> topics, std::optional<std::string> assignor = std::nullopt) {
    HeartbeatRequest r;
    r.group_id = "g";
    r.member_epoch = 0;
    r.rebalance_timeout_ms = 30000;
    r.subscribed_topics = std::move(topics);
    r.server_assignor = std::move(assignor);
    r.owned = Partitions{};
    auto result = send(r);
    EXPECT_EQ(result.error, GroupError::none) << result.message;
    Client c{result.member_id, result.member_epoch, {}};
    if (result.assignment) c.owned = *result.assignment;
    check_no_double_ownership();
    return c;
  }

  // One heartbeat as a consumer: it reports what it owns, then adopts the assignment it is given
  // (dropping revoked partitions, taking new ones).
  HeartbeatResult beat(Client& c) {
    HeartbeatRequest r;
    r.group_id = "g";
    r.member_id = c.id;
    r.member_epoch = c.epoch;
    r.owned = c.owned;
    auto result = send(r);
    if (result.error == GroupError::none) {
      c.epoch = result.member_epoch;
      if (result.assignment) c.owned = *result.assignment;
    }
    check_no_double_ownership();
    return result;
  }

  void settle(std::vector<Client*> clients, int rounds = 10) {
    for (int i = 0; i < rounds; ++i)
      for (auto* c : clients) beat(*c);
  }

  void check_no_double_ownership() {
    std::map<std::pair<std::string, std::int32_t>, std::string> owner;
    for (const auto& m : group_.describe().members)
      for (const auto& [topic, ids] : m.assigned)
        for (auto p : ids) {
          auto [it, fresh] = owner.emplace(std::make_pair(topic, p), m.member_id);
          EXPECT_TRUE(fresh) << topic << "-" << p << " owned by " << it->second << " and " << m.member_id;
        }
  }

  static std::size_t count(const Partitions& p) {
    std::size_t n = 0;
    for (const auto& [t, ids] : p) n += ids.size();
    return n;
  }

  ConsumerGroup group_;
  std::map<std::string, TopicMetadata> topics_;
  std::int64_t now = 1000;
  int next_id_ = 1;
};

TEST(ConsumerGroup, FirstMemberGetsEveryPartitionAndTheGroupEpoch) {
  Harness h;
  h.topic("orders", 6);
  auto a = h.join({"orders"});
  EXPECT_EQ(a.id, "m1");
  EXPECT_EQ(a.epoch, 1);
  EXPECT_EQ(h.group_.group_epoch(), 1);
  EXPECT_EQ(h.group_.assignment_epoch(), 1);
  EXPECT_EQ(Harness::count(a.owned), 6u);
  EXPECT_EQ(h.group_.state(), ConsumerGroupState::stable);
}

TEST(ConsumerGroup, JoinRequestsAreValidatedAsKafkaDoes) {
  Harness h;
  HeartbeatRequest r;
  r.group_id = "g";
  r.member_epoch = 0;
  r.owned = Partitions{};
  r.subscribed_topics = std::vector<std::string>{"t"};
  EXPECT_EQ(h.send(r).error, GroupError::invalid_request);  // no rebalance timeout
  r.rebalance_timeout_ms = 1000;
  r.server_assignor = "sticky";
  EXPECT_EQ(h.send(r).error, GroupError::unsupported_assignor);
  r.server_assignor.reset();
  r.member_epoch = 3;
  EXPECT_EQ(h.send(r).error, GroupError::invalid_request);  // epoch > 0 without a member id
  r.member_epoch = -3;
  r.member_id = "x";
  EXPECT_EQ(h.send(r).error, GroupError::invalid_request);
}

TEST(ConsumerGroup, SecondMemberGetsPartitionsOnlyAfterTheFirstRevokesThem) {
  Harness h;
  h.topic("t", 4);
  auto a = h.join({"t"});
  ASSERT_EQ(Harness::count(a.owned), 4u);
  auto b = h.join({"t"});
  EXPECT_EQ(Harness::count(b.owned), 0u) << "a still owns everything";
  EXPECT_EQ(b.epoch, 2);
  EXPECT_EQ(h.group_.state(), ConsumerGroupState::reconciling);

  // a is told to keep two partitions and keeps its epoch until it has let the others go.
  auto r = h.beat(a);
  EXPECT_EQ(r.member_epoch, 1);
  EXPECT_EQ(Harness::count(a.owned), 2u);
  EXPECT_EQ(Harness::count(b.owned), 0u);
  h.beat(a);  // reports the smaller set: revocation done
  EXPECT_EQ(a.epoch, 2);
  h.beat(b);
  EXPECT_EQ(Harness::count(b.owned), 2u);
  EXPECT_EQ(h.group_.state(), ConsumerGroupState::stable);
}

TEST(ConsumerGroup, ThreeMembersReconcileWithoutSharingAPartition) {
  Harness h;
  h.topic("t", 9);
  h.topic("u", 3);
  auto a = h.join({"t", "u"});
  auto b = h.join({"t", "u"});
  h.settle({&a, &b});
  auto c = h.join({"t", "u"});
  h.settle({&a, &b, &c});
  EXPECT_EQ(Harness::count(a.owned), 4u);
  EXPECT_EQ(Harness::count(b.owned), 4u);
  EXPECT_EQ(Harness::count(c.owned), 4u);
  EXPECT_EQ(a.epoch, h.group_.group_epoch());
  EXPECT_EQ(c.epoch, 3);
  EXPECT_EQ(h.group_.state(), ConsumerGroupState::stable);
}

TEST(ConsumerGroup, AMemberThatDoesNotReportItsRevocationKeepsItsEpochAndThePartitions) {
  Harness h;
  h.topic("t", 2);
  auto a = h.join({"t"});
  auto b = h.join({"t"});
  HeartbeatRequest r;  // a heartbeat without owned partitions: nothing is known to be revoked
  r.group_id = "g";
  r.member_id = a.id;
  r.member_epoch = a.epoch;
  for (int i = 0; i < 3; ++i) {
    auto result = h.send(r);
    EXPECT_EQ(result.member_epoch, 1);
    h.beat(b);
    EXPECT_EQ(Harness::count(b.owned), 0u);
  }
}

TEST(ConsumerGroup, LeavingHandsThePartitionsToTheOthers) {
  Harness h;
  h.topic("t", 4);
  auto a = h.join({"t"});
  auto b = h.join({"t"});
  h.settle({&a, &b});
  HeartbeatRequest leave;
  leave.group_id = "g";
  leave.member_id = b.id;
  leave.member_epoch = kLeaveEpoch;
  auto r = h.send(leave);
  EXPECT_EQ(r.error, GroupError::none);
  EXPECT_EQ(r.member_epoch, kLeaveEpoch);
  EXPECT_EQ(h.group_.state(), ConsumerGroupState::assigning);
  h.beat(a);
  EXPECT_EQ(Harness::count(a.owned), 4u);
  EXPECT_EQ(a.epoch, 3);
}

TEST(ConsumerGroup, StaticLeaveKeepsTheAssignmentForTheInstance) {
  Harness h;
  h.topic("t", 4);
  HeartbeatRequest r;
  r.group_id = "g";
  r.member_epoch = 0;
  r.rebalance_timeout_ms = 1000;
  r.instance_id = "host-1";
  r.subscribed_topics = std::vector<std::string>{"t"};
  r.owned = Partitions{};
  auto first = h.send(r);
  ASSERT_EQ(first.error, GroupError::none);
  auto again = h.send(r);  // the instance is still held
  EXPECT_EQ(again.error, GroupError::unreleased_instance_id);
  HeartbeatRequest leave;
  leave.group_id = "g";
  leave.member_id = first.member_id;
  leave.instance_id = "host-1";
  leave.member_epoch = kStaticLeaveEpoch;
  EXPECT_EQ(h.send(leave).error, GroupError::none);
  const auto epoch = h.group_.group_epoch();
  auto back = h.send(r);
  ASSERT_EQ(back.error, GroupError::none);
  EXPECT_NE(back.member_id, first.member_id);
  EXPECT_EQ(Harness::count(*back.assignment), 4u);
  EXPECT_EQ(h.group_.group_epoch(), epoch) << "a replaced static member is no membership change";
}

TEST(ConsumerGroup, SessionExpiryRemovesTheMemberAndBumpsTheEpoch) {
  Harness h;
  h.topic("t", 4);
  auto a = h.join({"t"});
  auto b = h.join({"t"});
  h.settle({&a, &b});
  const auto epoch = h.group_.group_epoch();
  h.now += 40000;
  h.beat(a);  // a renews its session, b does not
  EXPECT_TRUE(h.group_.expire(h.now).empty());
  h.now += 6000;
  EXPECT_EQ(h.group_.expire(h.now), std::vector<std::string>{b.id});
  EXPECT_EQ(h.group_.group_epoch(), epoch + 1);
  h.beat(a);
  EXPECT_EQ(Harness::count(a.owned), 4u);
  EXPECT_EQ(h.beat(b).error, GroupError::unknown_member_id);
}

TEST(ConsumerGroup, AMemberThatNeverRevokesIsFencedAfterItsRebalanceTimeout) {
  Harness h;
  h.topic("t", 2);
  auto a = h.join({"t"});
  auto b = h.join({"t"});
  HeartbeatRequest r;
  r.group_id = "g";
  r.member_id = a.id;
  r.member_epoch = a.epoch;
  h.send(r);  // a is now revoking, with a rebalance timeout of 30 s
  h.now += 31000;
  EXPECT_EQ(h.group_.expire(h.now), std::vector<std::string>{a.id});
  h.beat(b);
  EXPECT_EQ(Harness::count(b.owned), 2u);
}

TEST(ConsumerGroup, EpochsAheadOrBehindAreFenced) {
  Harness h;
  h.topic("t", 2);
  auto a = h.join({"t"});
  auto ahead = a;
  ahead.epoch += 1;
  EXPECT_EQ(h.beat(ahead).error, GroupError::fenced_member_epoch);
  auto b = h.join({"t"});
  h.settle({&a, &b});
  auto behind = a;
  behind.epoch = a.epoch - 1;  // the previous epoch, but owning more than its assignment
  behind.owned = {{"t", {0, 1}}};
  EXPECT_EQ(h.beat(behind).error, GroupError::fenced_member_epoch);
  auto unknown = a;
  unknown.id = "nobody";
  EXPECT_EQ(h.beat(unknown).error, GroupError::unknown_member_id);
}

TEST(ConsumerGroup, ThePreviousEpochIsAcceptedWhenTheMemberOwnsOnlyItsAssignment) {
  Harness h;
  h.topic("t", 2);
  auto a = h.join({"t"});
  auto b = h.join({"t"});
  h.settle({&a, &b});
  auto lost_answer = a;  // a's last answer (its new epoch) was lost
  lost_answer.epoch = a.epoch - 1;
  EXPECT_EQ(h.beat(lost_answer).error, GroupError::none);
}

TEST(ConsumerGroup, NewPartitionsAndNewTopicsBumpTheGroupEpoch) {
  Harness h;
  h.topic("t", 2);
  auto a = h.join({"t", "later"});
  EXPECT_EQ(Harness::count(a.owned), 2u);
  h.topic("t", 4);
  h.beat(a);
  EXPECT_EQ(h.group_.group_epoch(), 2);
  EXPECT_EQ(Harness::count(a.owned), 4u);
  h.topic("later", 3);
  h.beat(a);
  EXPECT_EQ(h.group_.group_epoch(), 3);
  EXPECT_EQ(Harness::count(a.owned), 7u);
}

TEST(ConsumerGroup, OffsetCommitAndFetchCheckTheMemberEpoch) {
  Harness h;
  h.topic("t", 1);
  EXPECT_EQ(h.group_.validate_offset_commit("", -1), GroupError::none);  // empty group, admin commit
  auto a = h.join({"t"});
  EXPECT_EQ(h.group_.validate_offset_commit(a.id, a.epoch), GroupError::none);
  EXPECT_EQ(h.group_.validate_offset_commit(a.id, a.epoch - 1), GroupError::stale_member_epoch);
  EXPECT_EQ(h.group_.validate_offset_commit("x", a.epoch), GroupError::unknown_member_id);
  EXPECT_EQ(h.group_.validate_offset_commit("", -1), GroupError::unknown_member_id);
  EXPECT_EQ(h.group_.validate_offset_fetch(std::nullopt, -1), GroupError::none);
  EXPECT_EQ(h.group_.validate_offset_fetch(a.id, a.epoch + 1), GroupError::stale_member_epoch);
}

TEST(ConsumerGroup, TheMembersChooseTheAssignor) {
  Harness h;
  h.topic("t", 3);
  auto a = h.join({"t"}, "range");
  EXPECT_EQ(h.group_.describe().assignor, "range");
  (void)a;
}

// ---- Assignors -------------------------------------------------------------------------------------

AssignmentSpec random_spec(std::mt19937& rng, bool same_subscription) {
  AssignmentSpec spec;
  const int topics = std::uniform_int_distribution<int>(1, 6)(rng);
  for (int t = 0; t < topics; ++t) spec.partition_counts["t" + std::to_string(t)] = std::uniform_int_distribution<int>(1, 12)(rng);
  const int members = std::uniform_int_distribution<int>(1, 8)(rng);
  std::set<std::string> common;
  for (const auto& [topic, n] : spec.partition_counts)
    if (rng() % 2 || common.empty()) common.insert(topic);
  for (int m = 0; m < members; ++m) {
    auto& subs = spec.subscriptions["member-" + std::to_string(m)];
    if (same_subscription) {
      subs = common;
    } else {
      for (const auto& [topic, n] : spec.partition_counts)
        if (rng() % 2) subs.insert(topic);
      if (rng() % 4 == 0) subs.insert("missing-topic");
    }
  }
  return spec;
}

// Every partition of a subscribed, existing topic goes to exactly one of its subscribers.
void expect_complete_and_disjoint(const AssignmentSpec& spec, const GroupAssignment& out, std::uint32_t seed) {
  std::map<std::pair<std::string, std::int32_t>, int> seen;
  for (const auto& [member, partitions] : out)
    for (const auto& [topic, ids] : partitions) {
      EXPECT_TRUE(spec.subscriptions.at(member).count(topic)) << "seed " << seed << ": " << member << " got " << topic;
      for (auto p : ids) {
        EXPECT_LT(p, spec.partition_counts.at(topic)) << "seed " << seed;
        ++seen[{topic, p}];
      }
    }
  for (const auto& [topic, n] : spec.partition_counts) {
    bool subscribed = false;
    for (const auto& [member, subs] : spec.subscriptions) subscribed |= subs.count(topic) > 0;
    for (std::int32_t p = 0; p < n; ++p)
      EXPECT_EQ(seen[std::make_pair(topic, p)], subscribed ? 1 : 0) << "seed " << seed << ": " << topic << "-" << p;
  }
}

std::size_t load(const Partitions& p) { return Harness::count(p); }

TEST(Assignors, UniformIsCompleteDisjointAndBalancedOnRandomSubscriptions) {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    const bool same = seed % 2 == 0;
    auto spec = random_spec(rng, same);
    auto out = assign_uniform(spec);
    expect_complete_and_disjoint(spec, out, seed);
    if (same) {
      std::size_t lo = SIZE_MAX, hi = 0;
      for (const auto& [m, p] : out) {
        lo = std::min(lo, load(p));
        hi = std::max(hi, load(p));
      }
      EXPECT_LE(hi - lo, 1u) << "seed " << seed;
    }
    // No partition could move to one of its subscribers with two fewer partitions than its owner.
    for (const auto& [owner, partitions] : out)
      for (const auto& [topic, ids] : partitions)
        for (const auto& [other, subs] : spec.subscriptions)
          if (subs.count(topic)) {
            EXPECT_LE(load(partitions), load(out.at(other)) + 1) << "seed " << seed;
          }
    // Sticky: the same spec with this result as the current assignment gives the same result.
    spec.current = out;
    if (same) {
      EXPECT_EQ(assign_uniform(spec), out) << "seed " << seed;
    }
  }
}

TEST(Assignors, UniformKeepsMostPartitionsWhenAMemberJoins) {
  AssignmentSpec spec;
  spec.partition_counts["t"] = 12;
  for (auto m : {"a", "b", "c"}) spec.subscriptions[m] = {"t"};
  auto before = assign_uniform(spec);
  spec.current = before;
  spec.subscriptions["d"] = {"t"};
  auto after = assign_uniform(spec);
  std::size_t kept = 0;
  for (auto m : {"a", "b", "c"})
    for (auto p : after[m]["t"]) kept += before[m]["t"].count(p);
  EXPECT_EQ(kept, 9u);  // each of a, b, c gives up one partition to d
}

TEST(Assignors, RangeGivesContiguousBalancedRangesPerTopic) {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    auto spec = random_spec(rng, seed % 2 == 0);
    auto out = assign_range(spec);
    expect_complete_and_disjoint(spec, out, seed);
    for (const auto& [topic, n] : spec.partition_counts) {
      std::size_t lo = SIZE_MAX, hi = 0;
      for (const auto& [member, subs] : spec.subscriptions) {
        if (!subs.count(topic)) continue;
        auto it = out.at(member).find(topic);
        const auto size = it == out.at(member).end() ? 0 : it->second.size();
        lo = std::min(lo, size);
        hi = std::max(hi, size);
        if (size > 0) {
          EXPECT_EQ(*it->second.rbegin() - *it->second.begin() + 1, static_cast<std::int32_t>(size)) << "seed " << seed;
        }
      }
      if (hi > 0) {
        EXPECT_LE(hi - lo, 1u) << "seed " << seed << " topic " << topic;
      }
    }
  }
}

}  // namespace
}  // namespace bulwark::groups::consumer
