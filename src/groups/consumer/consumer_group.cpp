#include "groups/consumer/consumer_group.h"

#include <algorithm>
#include <random>

#include "base/log.h"

namespace bulwark::groups::consumer {
namespace {

bool contains(const Partitions& set, const std::string& topic, std::int32_t partition) {
  auto it = set.find(topic);
  return it != set.end() && it->second.count(partition) > 0;
}

// Every partition of `a` is in `b`.
bool is_subset(const Partitions& a, const Partitions& b) {
  for (const auto& [topic, ids] : a)
    for (auto p : ids)
      if (!contains(b, topic, p)) return false;
  return true;
}

void add(Partitions& set, const std::string& topic, std::int32_t partition) { set[topic].insert(partition); }

std::set<std::string> all_topics(const Partitions& a, const Partitions& b, const Partitions& c) {
  std::set<std::string> out;
  for (const auto* p : {&a, &b, &c})
    for (const auto& [topic, ids] : *p) out.insert(topic);
  return out;
}

const std::set<std::int32_t>& partitions_of(const Partitions& set, const std::string& topic) {
  static const std::set<std::int32_t> none;
  auto it = set.find(topic);
  return it == set.end() ? none : it->second;
}

}  // namespace

const char* to_string(ConsumerGroupState state) {
  switch (state) {
    case ConsumerGroupState::empty: return "empty";
    case ConsumerGroupState::assigning: return "assigning";
    case ConsumerGroupState::reconciling: return "reconciling";
    case ConsumerGroupState::stable: return "stable";
  }
  return "dead";
}

std::string random_member_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uniform_int_distribution<int> pick(0, 63);
  std::string id(22, 'A');
  for (auto& c : id) c = kAlphabet[pick(rng)];
  return id;
}

GroupError validate_heartbeat(const HeartbeatRequest& r, std::string& message) {
  auto invalid = [&](const char* why) {
    message = why;
    return GroupError::invalid_request;
  };
  if (r.group_id.empty()) return invalid("GroupId can't be empty.");
  if (r.instance_id && r.instance_id->empty()) return invalid("InstanceId can't be empty.");
  if (r.rack_id && r.rack_id->empty()) return invalid("RackId can't be empty.");
  if (r.member_epoch > 0 || r.member_epoch == kLeaveEpoch) {
    if (r.member_id.empty()) return invalid("MemberId can't be empty.");
  } else if (r.member_epoch == 0) {
    if (r.rebalance_timeout_ms == -1) return invalid("RebalanceTimeoutMs must be provided in first request.");
    if (!r.owned || !r.owned->empty()) return invalid("TopicPartitions must be empty when (re-)joining.");
    if (!r.subscribed_topics || r.subscribed_topics->empty())
      return invalid("SubscribedTopicNames must be set in first request.");
  } else if (r.member_epoch == kStaticLeaveEpoch) {
    if (r.member_id.empty()) return invalid("MemberId can't be empty.");
    if (!r.instance_id) return invalid("InstanceId can't be null.");
  } else {
    return invalid("MemberEpoch is invalid.");
  }
  if (r.server_assignor && !is_known_assignor(*r.server_assignor)) {
    message = "ServerAssignor " + *r.server_assignor + " is not supported. Supported assignors: uniform, range.";
    return GroupError::unsupported_assignor;
  }
  return GroupError::none;
}

ConsumerGroup::ConsumerGroup(std::string group_id, const ConsumerGroupSettings& settings)
    : group_id_(std::move(group_id)), settings_(settings), last_assignor_(settings.default_assignor) {}

HeartbeatResult ConsumerGroup::heartbeat(const HeartbeatRequest& request, std::int64_t now, const TopicLookup& topics,
                                         const std::function<std::string()>& new_member_id) {
  HeartbeatResult result;
  result.member_id = request.member_id;
  if (request.member_epoch == kLeaveEpoch || request.member_epoch == kStaticLeaveEpoch)
    return leave(request, result.message);
  const bool joining = request.member_epoch == 0;
  const bool known = !request.member_id.empty() && members_.count(request.member_id);
  if (static_cast<std::int64_t>(members_.size()) >= settings_.max_size && !known) {
    result.error = GroupError::group_max_size_reached;
    result.message = "The consumer group has reached its maximum capacity of " + std::to_string(settings_.max_size) + " members.";
    return result;
  }
  Member* member = nullptr;
  bool replaced_static = false;
  result.error = find_member(request, new_member_id, member, replaced_static, result.message);
  if (result.error != GroupError::none) return result;

  // 1. The member's own fields; a new subscription raises the group epoch.
  bool bump = false;
  if (request.subscribed_topics) {
    auto subscribed = *request.subscribed_topics;
    std::sort(subscribed.begin(), subscribed.end());
    subscribed.erase(std::unique(subscribed.begin(), subscribed.end()), subscribed.end());
    if (subscribed != member->subscribed) {
      log::info("group {}: member {} subscribes to {} topics", group_id_, member->id, subscribed.size());
      member->subscribed = std::move(subscribed);
      bump = true;
    }
  }
  if (request.rebalance_timeout_ms != -1) member->rebalance_timeout_ms = request.rebalance_timeout_ms;
  if (request.server_assignor) member->server_assignor = request.server_assignor;
  if (request.rack_id) member->rack_id = request.rack_id;
  member->client_id = request.client_id;
  member->client_host = request.client_host;
  // 2. The subscribed topics as the metadata image has them now: created topics and added partitions
  // raise the group epoch too.
  if (refresh_subscription_metadata(topics)) bump = true;
  if (bump) {
    ++group_epoch_;
    log::info("group {}: group epoch {}", group_id_, group_epoch_);
  }
  // 3. A new target assignment for the new epoch.
  if (group_epoch_ > assignment_epoch_ || replaced_static) compute_target_assignment();
  // 4. The member moves towards its target.
  bool updated = false;
  if (member->state != MemberState::stable || member->target_epoch != assignment_epoch_)
    updated = reconcile(*member, request.owned);
  if (member->state == MemberState::revoking) {
    if (updated) member->revocation_deadline = now + std::max(0, member->rebalance_timeout_ms);
  } else {
    member->revocation_deadline = 0;
  }
  member->session_deadline = now + settings_.session_timeout_ms;

  result.member_id = member->id;
  result.member_epoch = member->epoch;
  result.heartbeat_interval_ms = settings_.heartbeat_interval_ms;
  if (request.owned || joining || updated) result.assignment = member->assigned;
  return result;
}

GroupError ConsumerGroup::find_member(const HeartbeatRequest& request, const std::function<std::string()>& new_member_id,
                                      Member*& member, bool& replaced_static, std::string& message) {
  const bool joining = request.member_epoch == 0;
  const std::string id = request.member_id.empty() ? new_member_id() : request.member_id;
  // Kafka's throwIfMemberEpochIsInvalid: an epoch ahead of ours, or behind it unless it is the
  // previous one and the member owns only what it is assigned (our answer bumping it was lost).
  auto check_epoch = [&](const Member& m) {
    if (request.member_epoch > m.epoch ||
        (request.member_epoch < m.epoch &&
         (request.member_epoch != m.previous_epoch || !request.owned || !is_subset(*request.owned, m.assigned)))) {
      message = "The consumer group member has a member epoch (" + std::to_string(request.member_epoch) +
                ") other than the coordinator's (" + std::to_string(m.epoch) +
                "). The member must abandon all its partitions and rejoin.";
      return GroupError::fenced_member_epoch;
    }
    return GroupError::none;
  };
  auto create = [&](const std::string& new_id) -> Member& {
    log::info("group {}: member {} joins", group_id_, new_id);
    auto& m = members_[new_id];
    m.id = new_id;
    m.instance_id = request.instance_id;
    return m;
  };
  Member* by_instance = nullptr;
  if (request.instance_id)
    for (auto& [mid, m] : members_)
      if (m.instance_id == request.instance_id) by_instance = &m;

  if (!request.instance_id) {
    auto it = members_.find(id);
    if (it == members_.end()) {
      if (!joining) {
        message = "Member " + id + " is not a member of group " + group_id_ + ".";
        return GroupError::unknown_member_id;
      }
      member = &create(id);
      return GroupError::none;
    }
    member = &it->second;
    return check_epoch(*member);
  }
  if (joining) {
    if (!by_instance) {
      member = &create(id);
      return GroupError::none;
    }
    if (by_instance->epoch != kStaticLeaveEpoch) {
      message = "Static member " + id + " with instance id " + *request.instance_id +
                " cannot join the group because the instance id is owned by " + by_instance->id + " member.";
      return GroupError::unreleased_instance_id;
    }
    // The static member comes back under a new member id and takes over its assignment.
    Member previous = *by_instance;
    auto target = target_[previous.id];
    remove_member(previous.id, "replaced by its rejoining instance");
    --group_epoch_;  // a replacement is not a membership change
    member = &create(id);
    member->assigned = std::move(previous.assigned);
    member->subscribed = std::move(previous.subscribed);  // compared with the new request, as Kafka does
    target_[id] = std::move(target);
    replaced_static = true;
    return GroupError::none;
  }
  if (!by_instance) {
    message = "Instance id " + *request.instance_id + " is unknown.";
    return GroupError::unknown_member_id;
  }
  if (by_instance->id != id) {
    message = "Static member " + id + " with instance id " + *request.instance_id + " was fenced by member " +
              by_instance->id + ".";
    return GroupError::fenced_instance_id;
  }
  member = by_instance;
  return check_epoch(*member);
}

HeartbeatResult ConsumerGroup::leave(const HeartbeatRequest& request, std::string& message) {
  HeartbeatResult result;
  result.member_id = request.member_id;
  result.member_epoch = request.member_epoch;
  Member* member = nullptr;
  if (!request.instance_id) {
    auto it = members_.find(request.member_id);
    if (it != members_.end()) member = &it->second;
  } else {
    for (auto& [mid, m] : members_)
      if (m.instance_id == request.instance_id) member = &m;
    if (member && member->id != request.member_id) {
      result.error = GroupError::fenced_instance_id;
      message = "Static member " + request.member_id + " with instance id " + *request.instance_id +
                " was fenced by member " + member->id + ".";
      return result;
    }
  }
  if (!member) {
    result.error = GroupError::unknown_member_id;
    message = "Member " + request.member_id + " is not a member of group " + group_id_ + ".";
    return result;
  }
  if (request.member_epoch == kStaticLeaveEpoch) {
    // A temporary leave: the instance keeps its partitions until it rejoins or its session ends.
    log::info("group {}: static member {} ({}) left temporarily", group_id_, member->id, *request.instance_id);
    member->epoch = kStaticLeaveEpoch;
    member->pending_revocation.clear();
    member->revocation_deadline = 0;
  } else {
    remove_member(member->id, "left the group");
  }
  result.message = message;
  return result;
}

void ConsumerGroup::remove_member(std::string member_id, const char* reason) {
  log::info("group {}: member {} {}", group_id_, member_id, reason);
  members_.erase(member_id);
  target_.erase(member_id);
  ++group_epoch_;
}

std::vector<std::string> ConsumerGroup::expire(std::int64_t now) {
  std::vector<std::string> expired;
  std::vector<std::pair<std::string, const char*>> gone;
  for (const auto& [id, m] : members_) {
    if (m.session_deadline <= now)
      gone.emplace_back(id, "removed: its session timed out");
    else if (m.revocation_deadline != 0 && m.revocation_deadline <= now)
      gone.emplace_back(id, "fenced: it did not revoke its partitions within its rebalance timeout");
  }
  for (const auto& [id, reason] : gone) {
    remove_member(id, reason);
    expired.push_back(id);
  }
  return expired;
}

bool ConsumerGroup::refresh_subscription_metadata(const TopicLookup& topics) {
  std::map<std::string, TopicMetadata> fresh;
  for (const auto& topic : subscribed_topics())
    if (auto meta = topics(topic)) fresh[topic] = *meta;
  if (fresh == subscription_metadata_) return false;
  subscription_metadata_ = std::move(fresh);
  return true;
}

std::set<std::string> ConsumerGroup::subscribed_topics() const {
  std::set<std::string> out;
  for (const auto& [id, m] : members_) out.insert(m.subscribed.begin(), m.subscribed.end());
  return out;
}

std::string ConsumerGroup::preferred_assignor() const {
  std::map<std::string, int> votes;
  for (const auto& [id, m] : members_)
    if (m.server_assignor) ++votes[*m.server_assignor];
  std::string best = settings_.default_assignor;
  int best_votes = 0;
  for (const auto& [name, n] : votes)
    if (n > best_votes) {
      best = name;
      best_votes = n;
    }
  return best;
}

void ConsumerGroup::compute_target_assignment() {
  AssignmentSpec spec;
  for (const auto& [id, m] : members_) spec.subscriptions[id] = {m.subscribed.begin(), m.subscribed.end()};
  for (const auto& [topic, meta] : subscription_metadata_) spec.partition_counts[topic] = meta.partitions;
  spec.current = target_;
  last_assignor_ = preferred_assignor();
  target_ = assign(last_assignor_, spec);
  assignment_epoch_ = group_epoch_;
  log::info("group {}: target assignment for epoch {} with the {} assignor", group_id_, assignment_epoch_,
            last_assignor_);
}

bool ConsumerGroup::owned_by_other(const std::string& member_id, const std::string& topic, std::int32_t partition) const {
  for (const auto& [id, m] : members_)
    if (id != member_id && (contains(m.assigned, topic, partition) || contains(m.pending_revocation, topic, partition)))
      return true;
  return false;
}

// Moves the partitions of `pending` that no other member owns any more into `assigned`.
void ConsumerGroup::take_free_partitions(const Member& member, Partitions& assigned, Partitions& pending) const {
  for (auto it = pending.begin(); it != pending.end();) {
    auto& [topic, ids] = *it;
    for (auto p = ids.begin(); p != ids.end();) {
      if (!owned_by_other(member.id, topic, *p)) {
        add(assigned, topic, *p);
        p = ids.erase(p);
      } else {
        ++p;
      }
    }
    it = ids.empty() ? pending.erase(it) : std::next(it);
  }
}

// Kafka's CurrentAssignmentBuilder: true when the member changed.
bool ConsumerGroup::reconcile(Member& member, const std::optional<Partitions>& owned) {
  const auto before = member;
  auto advance_epoch = [&](Partitions assigned, Partitions pending) {
    take_free_partitions(member, assigned, pending);
    member.assigned = std::move(assigned);
    member.pending_revocation.clear();
    member.state = pending.empty() ? MemberState::stable : MemberState::assigning;
    member.pending_assignment = std::move(pending);
    if (member.epoch != assignment_epoch_) member.previous_epoch = member.epoch;
    member.epoch = assignment_epoch_;
    member.target_epoch = assignment_epoch_;
  };
  if (member.target_epoch != assignment_epoch_) {
    const auto& target = target_[member.id];
    Partitions assigned, revoking, pending;
    for (const auto& topic : all_topics(target, member.assigned, member.pending_revocation)) {
      const auto& wanted = partitions_of(target, topic);
      std::set<std::int32_t> owned_now = partitions_of(member.assigned, topic);
      owned_now.insert(partitions_of(member.pending_revocation, topic).begin(),
                       partitions_of(member.pending_revocation, topic).end());
      for (auto p : owned_now) add(wanted.count(p) ? assigned : revoking, topic, p);
      for (auto p : wanted)
        if (!owned_now.count(p)) add(pending, topic, p);
    }
    if (!revoking.empty()) {
      // Revoke first, keep the epoch: the partitions move on only once this member has let them go.
      member.assigned = std::move(assigned);
      member.pending_revocation = std::move(revoking);
      member.pending_assignment = std::move(pending);
      member.state = MemberState::revoking;
      member.target_epoch = assignment_epoch_;
    } else {
      advance_epoch(std::move(assigned), std::move(pending));
    }
  } else if (member.state == MemberState::revoking) {
    if (member.pending_revocation.empty() || (owned && is_subset(*owned, member.assigned)))
      advance_epoch(member.assigned, member.pending_assignment);
  } else if (member.state == MemberState::assigning) {
    advance_epoch(member.assigned, member.pending_assignment);
  }
  return !(member == before);
}

ConsumerGroupState ConsumerGroup::state() const {
  if (members_.empty()) return ConsumerGroupState::empty;
  if (group_epoch_ > assignment_epoch_) return ConsumerGroupState::assigning;
  for (const auto& [id, m] : members_)
    if (m.epoch != kStaticLeaveEpoch && (m.epoch != assignment_epoch_ || m.state != MemberState::stable))
      return ConsumerGroupState::reconciling;
  return ConsumerGroupState::stable;
}

GroupError ConsumerGroup::validate_offset_commit(const std::string& member_id, std::int32_t member_epoch) const {
  // Epoch -1 into an empty group: an admin client or a consumer without group management.
  if (member_epoch < 0 && members_.empty()) return GroupError::none;
  auto it = members_.find(member_id);
  if (it == members_.end()) return GroupError::unknown_member_id;
  return member_epoch == it->second.epoch ? GroupError::none : GroupError::stale_member_epoch;
}

GroupError ConsumerGroup::validate_offset_fetch(const std::optional<std::string>& member_id,
                                                std::int32_t member_epoch) const {
  if (!member_id && member_epoch < 0) return GroupError::none;
  auto it = member_id ? members_.find(*member_id) : members_.end();
  if (it == members_.end()) return GroupError::unknown_member_id;
  return member_epoch == it->second.epoch ? GroupError::none : GroupError::stale_member_epoch;
}

GroupDescription ConsumerGroup::describe() const {
  GroupDescription d;
  d.group_id = group_id_;
  d.state = state();
  d.group_epoch = group_epoch_;
  d.assignment_epoch = assignment_epoch_;
  d.assignor = last_assignor_;
  for (const auto& [id, m] : members_) {
    MemberDescription md{m.id, m.instance_id, m.rack_id, m.epoch, m.client_id, m.client_host, m.subscribed, m.assigned, {}};
    if (auto t = target_.find(id); t != target_.end()) md.target = t->second;
    d.members.push_back(std::move(md));
  }
  return d;
}

}  // namespace bulwark::groups::consumer
