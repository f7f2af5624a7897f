#include "groups/coordinator.h"

#include <algorithm>
#include <random>

#include "base/log.h"

namespace bulwark::groups {

const char* to_string(GroupError error) {
  switch (error) {
    case GroupError::none: return "none";
    case GroupError::coordinator_not_available: return "coordinator not available";
    case GroupError::not_coordinator: return "not coordinator";
    case GroupError::coordinator_load_in_progress: return "coordinator load in progress";
    case GroupError::illegal_generation: return "illegal generation";
    case GroupError::inconsistent_group_protocol: return "inconsistent group protocol";
    case GroupError::invalid_group_id: return "invalid group id";
    case GroupError::unknown_member_id: return "unknown member id";
    case GroupError::invalid_session_timeout: return "invalid session timeout";
    case GroupError::rebalance_in_progress: return "rebalance in progress";
    case GroupError::member_id_required: return "member id required";
    case GroupError::fenced_instance_id: return "fenced instance id";
    case GroupError::group_max_size_reached: return "group max size reached";
    case GroupError::group_id_not_found: return "group id not found";
    case GroupError::non_empty_group: return "non-empty group";
    case GroupError::group_subscribed_to_topic: return "group subscribed to topic";
    case GroupError::offset_metadata_too_large: return "offset metadata too large";
    case GroupError::invalid_request: return "invalid request";
    case GroupError::unknown_topic_or_partition: return "unknown topic or partition";
    case GroupError::group_authorization_failed: return "group authorization failed";
    case GroupError::topic_authorization_failed: return "topic authorization failed";
    case GroupError::unstable_offset_commit: return "unstable offset commit";
    case GroupError::fenced_member_epoch: return "fenced member epoch";
    case GroupError::unreleased_instance_id: return "unreleased instance id";
    case GroupError::unsupported_assignor: return "unsupported assignor";
    case GroupError::stale_member_epoch: return "stale member epoch";
    case GroupError::unsupported_version: return "unsupported version";
  }
  return "unknown";
}

const char* to_string(GroupState state) {
  switch (state) {
    case GroupState::empty: return "Empty";
    case GroupState::preparing_rebalance: return "PreparingRebalance";
    case GroupState::completing_rebalance: return "CompletingRebalance";
    case GroupState::stable: return "Stable";
    case GroupState::dead: return "Dead";
  }
  return "Dead";
}

struct GroupCoordinator::Member {
  std::string member_id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t session_timeout_ms = 0;
  std::int32_t rebalance_timeout_ms = 0;
  std::vector<Protocol> protocols;
  Bytes assignment;
  JoinCallback awaiting_join;  // set while a JoinGroup waits for the rebalance to complete
  SyncCallback awaiting_sync;  // set while a SyncGroup waits for the leader's assignment
  std::int64_t last_heartbeat = 0;
  bool is_new = false;  // joined during the current rebalance
  bool synced = false;  // sent SyncGroup in the current generation
  std::uint64_t join_order = 0;

  const Protocol* protocol(const std::string& name) const {
    for (const auto& p : protocols)
      if (p.name == name) return &p;
    return nullptr;
  }
};

namespace {
// An offset and where its record sits in the log (next_position_ order).
struct CommittedOffset {
  OffsetValue value;
  std::uint64_t position = 0;
};
}  // namespace

struct GroupCoordinator::Group {
  std::string id;
  GroupState state = GroupState::empty;
  std::string protocol_type;  // "" for a group that only ever committed offsets (simple consumers)
  std::optional<std::string> protocol_name;
  std::int32_t generation = 0;
  std::optional<std::string> leader_id;
  std::map<std::string, Member> members;
  std::map<std::string, std::int64_t> pending_members;  // member id handed out -> deadline to join
  std::map<std::string, std::string> static_members;    // group.instance.id -> member id
  std::int64_t rebalance_deadline = 0;
  bool initial_delay = false;  // a new group waiting group.initial.rebalance.delay.ms for more members
  std::int64_t initial_delay_limit = 0;
  std::int64_t sync_deadline = 0;
  std::int64_t state_timestamp = 0;
  bool stored = false;  // a group metadata record exists in the store
  std::map<TopicPartitionKey, CommittedOffset> offsets;
  // TxnOffsetCommit offsets of open transactions, by producer id; they wait for the marker.
  std::map<std::int64_t, std::map<TopicPartitionKey, CommittedOffset>> pending_txn;
  std::uint64_t next_join_order = 0;

  bool has_pending_txn(const TopicPartitionKey& tp) const {
    for (const auto& [producer, offsets_of] : pending_txn)
      if (offsets_of.count(tp)) return true;
    return false;
  }

  std::int32_t max_rebalance_timeout() const {
    std::int32_t t = 0;
    for (const auto& [id, m] : members) t = std::max(t, m.rebalance_timeout_ms);
    return t;
  }
  // Protocols every member supports.
  std::vector<std::string> candidate_protocols() const {
    std::vector<std::string> out;
    bool first = true;
    for (const auto& [id, m] : members) {
      std::vector<std::string> names;
      for (const auto& p : m.protocols) names.push_back(p.name);
      if (first) {
        out = names;
        first = false;
      } else {
        std::erase_if(out, [&](const std::string& n) { return std::find(names.begin(), names.end(), n) == names.end(); });
      }
    }
    return out;
  }
  bool supports(const std::string& type, const std::vector<Protocol>& protocols) const {
    if (type.empty() || protocols.empty()) return false;
    if (members.empty()) return true;
    if (type != protocol_type) return false;
    auto candidates = candidate_protocols();
    for (const auto& p : protocols)
      if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) return true;
    return false;
  }
  std::vector<const Member*> members_by_join_order() const {
    std::vector<const Member*> out;
    for (const auto& [id, m] : members) out.push_back(&m);
    std::sort(out.begin(), out.end(), [](const Member* a, const Member* b) { return a->join_order < b->join_order; });
    return out;
  }
  // Each member votes for its most preferred protocol among those all support; the most votes wins,
  // ties going to the protocol of the earliest member.
  std::optional<std::string> select_protocol() const {
    auto candidates = candidate_protocols();
    if (candidates.empty()) return std::nullopt;
    std::map<std::string, int> votes;
    std::vector<std::string> order;
    for (const auto* m : members_by_join_order())
      for (const auto& p : m->protocols)
        if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) {
          if (votes[p.name]++ == 0) order.push_back(p.name);
          break;
        }
    std::optional<std::string> best;
    int best_votes = 0;
    for (const auto& name : order)
      if (votes[name] > best_votes) {
        best = name;
        best_votes = votes[name];
      }
    return best;
  }
};

namespace {

bool same_protocols(const std::vector<Protocol>& a, const std::vector<Protocol>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].metadata != b[i].metadata) return false;
  return true;
}

const Protocol* find_protocol(const std::vector<Protocol>& protocols, const std::string& name) {
  for (const auto& p : protocols)
    if (p.name == name) return &p;
  return nullptr;
}

// Whether two sets of protocols subscribe the same way under the selected protocol: the same topics for
// the consumer protocol, the same bytes for any other.
bool same_subscription(const std::vector<Protocol>& a, const std::vector<Protocol>& b, const std::string& selected,
                       const std::string& protocol_type) {
  const auto* pa = find_protocol(a, selected);
  const auto* pb = find_protocol(b, selected);
  if (!pa || !pb) return false;
  if (pa->metadata == pb->metadata) return true;
  if (protocol_type != "consumer") return false;
  auto ta = subscribed_topics(pa->metadata), tb = subscribed_topics(pb->metadata);
  if (ta.empty() || tb.empty()) return false;
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return ta == tb;
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::uint64_t> dist;
  auto hi = dist(rng), lo = dist(rng);
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                     lo & 0xffffffffffffull);
}

template <class Callback, class Result>
std::function<void()> call_with(Callback callback, Result result) {
  return [callback = std::move(callback), result = std::move(result)]() mutable { callback(std::move(result)); };
}

}  // namespace

GroupCoordinator::GroupCoordinator(GroupSettings settings, std::unique_ptr<GroupStore> store, Clock clock)
    : settings_(settings), store_(std::move(store)), clock_(std::move(clock)) {}

GroupCoordinator::~GroupCoordinator() { stop_background_ticks(); }

Result<std::unique_ptr<GroupCoordinator>> GroupCoordinator::open(GroupSettings settings,
                                                                 std::unique_ptr<GroupStore> store, Clock clock) {
  std::unique_ptr<GroupCoordinator> coordinator(new GroupCoordinator(settings, std::move(store), std::move(clock)));
  auto records = coordinator->store_->load();
  if (!records.ok()) return make_error(records.error().kind, "loading consumer groups: " + records.error().message);
  BULWARK_TRY(coordinator->replay(*records));
  coordinator->next_retention_check_ = coordinator->clock_() + settings.offsets_retention_check_interval_ms;
  return coordinator;
}

Status GroupCoordinator::replay(const std::vector<StoredRecord>& records) {
  std::lock_guard lock(mu_);
  std::size_t skipped = 0;
  for (const auto& record : records) {
    if (record.kind == RecordKind::commit_marker || record.kind == RecordKind::abort_marker) {
      complete_transaction_locked(record.producer_id, record.kind == RecordKind::commit_marker);
      continue;
    }
    auto key = decode_key(record.key);
    if (!key.ok()) {
      ++skipped;
      continue;
    }
    if (auto* offset_key = std::get_if<OffsetKey>(&*key)) {
      replay_offset_locked(*offset_key, record, skipped);
    } else {
      const auto& group_key = std::get<GroupKey>(*key);
      if (record.kind == RecordKind::transactional) {
        ++skipped;  // Kafka writes only offsets in transactions
        continue;
      }
      if (!record.value) {
        auto it = groups_.find(group_key.group);
        if (it == groups_.end()) continue;
        // A deleted group keeps the offsets of its open transactions (as Kafka); the rest is gone.
        auto pending = std::move(it->second->pending_txn);
        groups_.erase(it);
        if (!pending.empty()) get_or_create_group_locked(group_key.group).pending_txn = std::move(pending);
        continue;
      }
      auto value = decode_group_value(*record.value);
      if (!value.ok()) {
        ++skipped;
        continue;
      }
      auto& group = get_or_create_group_locked(group_key.group);
      group.protocol_type = value->protocol_type;
      group.generation = value->generation;
      group.protocol_name = value->protocol;
      group.leader_id = value->leader;
      group.state_timestamp = value->state_timestamp;
      group.stored = true;
      group.members.clear();
      group.static_members.clear();
      for (auto& stored : value->members) {
        Member m;
        m.member_id = stored.member_id;
        m.instance_id = stored.group_instance_id;
        m.client_id = stored.client_id;
        m.client_host = stored.client_host;
        m.session_timeout_ms = stored.session_timeout_ms;
        m.rebalance_timeout_ms = stored.rebalance_timeout_ms;
        m.protocols.push_back(Protocol{value->protocol.value_or(""), stored.subscription});
        m.assignment = stored.assignment;
        m.join_order = group.next_join_order++;
        if (m.instance_id) group.static_members[*m.instance_id] = m.member_id;
        group.members.emplace(m.member_id, std::move(m));
      }
    }
  }
  const auto now = clock_();
  for (auto& [id, group] : groups_) {
    // Members of a stored generation get a fresh session: they keep heartbeating, or expire.
    group->state = group->members.empty() ? GroupState::empty : GroupState::stable;
    for (auto& [member_id, m] : group->members) m.last_heartbeat = now;
    if (group->leader_id && !group->members.count(*group->leader_id)) group->leader_id.reset();
    if (group->state_timestamp < 0) group->state_timestamp = now;
  }
  std::size_t open_transactions = 0;
  for (const auto& [id, group] : groups_) open_transactions += group->pending_txn.size();
  if (skipped > 0) log::warn("consumer groups: skipped {} stored records that could not be read", skipped);
  log::info("consumer groups: loaded {} groups from {} stored records ({} open transactional offset commits)",
            groups_.size(), records.size(), open_transactions);
  return Status::success();
}

void GroupCoordinator::replay_offset_locked(const OffsetKey& key, const StoredRecord& record, std::size_t& skipped) {
  TopicPartitionKey tp{key.topic, key.partition};
  const auto position = next_position_++;
  const bool transactional = record.kind == RecordKind::transactional;
  if (!record.value) {
    // A tombstone removes the committed offset; an open transaction's offset stays pending (see
    // delete_group), and a transactional tombstone withdraws the producer's pending one.
    auto* group = find_group_locked(key.group);
    if (!group) return;
    if (!transactional) {
      group->offsets.erase(tp);
    } else if (auto it = group->pending_txn.find(record.producer_id); it != group->pending_txn.end()) {
      it->second.erase(tp);
    }
    return;
  }
  auto value = decode_offset_value(*record.value);
  if (!value.ok()) {
    ++skipped;
    return;
  }
  auto& group = get_or_create_group_locked(key.group);
  if (transactional)
    group.pending_txn[record.producer_id][tp] = CommittedOffset{*value, position};
  else
    group.offsets[tp] = CommittedOffset{*value, position};
}

// Kafka's completePendingTxnOffsetCommit: on COMMIT a pending offset wins over a committed one only
// when its record is the later one in the log; either way the producer has nothing pending after.
void GroupCoordinator::complete_transaction_locked(std::int64_t producer_id, bool committed) {
  for (auto& [id, group] : groups_) {
    auto it = group->pending_txn.find(producer_id);
    if (it == group->pending_txn.end()) continue;
    if (committed) {
      for (auto& [tp, pending] : it->second) {
        auto current = group->offsets.find(tp);
        if (current == group->offsets.end() || current->second.position < pending.position)
          group->offsets[tp] = std::move(pending);
      }
    }
    group->pending_txn.erase(it);
  }
}

void GroupCoordinator::run_deferred(std::unique_lock<std::mutex>& lock) {
  auto work = std::move(deferred_);
  deferred_.clear();
  lock.unlock();
  for (auto& fn : work) fn();
}

GroupCoordinator::Group* GroupCoordinator::find_group_locked(const std::string& group_id) {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : it->second.get();
}

GroupCoordinator::Group& GroupCoordinator::get_or_create_group_locked(const std::string& group_id) {
  auto& slot = groups_[group_id];
  if (!slot) {
    slot = std::make_unique<Group>();
    slot->id = group_id;
    slot->state_timestamp = clock_();
  }
  return *slot;
}

// ---- JoinGroup -------------------------------------------------------------------------------------

void GroupCoordinator::join(JoinRequest request, JoinCallback done) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  auto fail = [&](GroupError error, std::string member_id) {
    JoinResult result;
    result.error = error;
    result.member_id = std::move(member_id);
    defer(call_with(std::move(done), std::move(result)));
  };
  std::size_t metadata_bytes = 0;
  for (const auto& p : request.protocols) metadata_bytes += p.metadata.size() + p.name.size();
  if (resigned_ != GroupError::none) {
    fail(resigned_, request.member_id);
  } else if (request.group_id.empty()) {
    fail(GroupError::invalid_group_id, request.member_id);
  } else if (request.session_timeout_ms < settings_.min_session_timeout_ms ||
             request.session_timeout_ms > settings_.max_session_timeout_ms) {
    fail(GroupError::invalid_session_timeout, request.member_id);
  } else if (metadata_bytes > settings_.max_member_metadata_bytes) {
    log::warn("group {}: join from {} rejected: {} bytes of protocol metadata (the limit is {})", request.group_id,
              request.client_host, metadata_bytes, settings_.max_member_metadata_bytes);
    fail(GroupError::invalid_request, request.member_id);
  } else if (request.protocol_type.empty() || request.protocols.empty()) {
    fail(GroupError::inconsistent_group_protocol, request.member_id);
  } else {
    auto* group = find_group_locked(request.group_id);
    if (consumer_groups_.count(request.group_id)) {
      log::info("group {}: classic JoinGroup refused: the group uses the consumer protocol", request.group_id);
      fail(GroupError::group_id_not_found, request.member_id);  // Kafka 3.7: "is not a classic group"
    } else if (!group && !request.member_id.empty()) {
      fail(GroupError::unknown_member_id, request.member_id);
    } else {
      if (!group) group = &get_or_create_group_locked(request.group_id);
      const bool new_member = request.member_id.empty() || (!group->members.count(request.member_id) &&
                                                            !group->pending_members.count(request.member_id));
      if (new_member && !request.group_instance_id && settings_.max_group_size > 0 &&
          group->members.size() + group->pending_members.size() >= static_cast<std::size_t>(settings_.max_group_size)) {
        fail(GroupError::group_max_size_reached, request.member_id);
      } else if (request.member_id.empty()) {
        join_unknown_member_locked(*group, request, done, now);
      } else {
        join_known_member_locked(*group, request, done, now);
      }
    }
  }
  run_deferred(lock);
}

JoinResult GroupCoordinator::join_result_for_locked(const Group& group, const Member& member) const {
  JoinResult r;
  r.generation_id = group.generation;
  r.protocol_type = group.protocol_type;
  r.protocol_name = group.protocol_name;
  r.leader_id = group.leader_id.value_or("");
  r.member_id = member.member_id;
  if (group.leader_id && *group.leader_id == member.member_id) {
    for (const auto* m : group.members_by_join_order()) {
      const auto* p = group.protocol_name ? m->protocol(*group.protocol_name) : nullptr;
      r.members.push_back(JoinedMember{m->member_id, m->instance_id, p ? p->metadata : Bytes{}});
    }
  }
  return r;
}

void GroupCoordinator::join_unknown_member_locked(Group& group, JoinRequest& request, JoinCallback& done,
                                                  std::int64_t now) {
  if (!group.supports(request.protocol_type, request.protocols)) {
    JoinResult r;
    r.error = GroupError::inconsistent_group_protocol;
    defer(call_with(std::move(done), std::move(r)));
    return;
  }
  const std::string prefix = request.group_instance_id ? *request.group_instance_id
                             : request.client_id.empty() ? std::string("member")
                                                         : request.client_id;
  const std::string new_id = prefix + "-" + random_suffix();
  if (request.group_instance_id) {
    auto it = group.static_members.find(*request.group_instance_id);
    if (it != group.static_members.end() && group.members.count(it->second)) {
      // A static member back with a new member id: the old id is fenced, the new one takes its place.
      const std::string old_id = it->second;
      const auto old_protocols = group.members.at(old_id).protocols;
      replace_static_member_locked(group, old_id, new_id);
      auto& member = group.members.at(new_id);
      member.client_id = request.client_id;
      member.client_host = request.client_host;
      member.session_timeout_ms = request.session_timeout_ms;
      member.rebalance_timeout_ms = request.rebalance_timeout_ms;
      member.last_heartbeat = now;
      member.protocols = request.protocols;
      // As Kafka: no rebalance when the group would pick the same protocol and the member subscribes to
      // the same topics (its metadata's user data, e.g. a sticky assignor's, may differ after a restart).
      const bool unchanged = group.state == GroupState::stable && group.protocol_name &&
                             group.select_protocol() == group.protocol_name &&
                             same_subscription(old_protocols, member.protocols, *group.protocol_name, group.protocol_type);
      if (unchanged) {
        store_group_locked(group);
        auto r = join_result_for_locked(group, member);
        r.skip_assignment = group.leader_id && *group.leader_id == new_id;
        log::info("group {}: static member {} rejoined as {} with nothing changed; no rebalance", group.id,
                  *request.group_instance_id, new_id);
        defer(call_with(std::move(done), std::move(r)));
      } else {
        update_member_and_rebalance_locked(group, member, request, std::move(done), now);
      }
      return;
    }
    add_member_and_rebalance_locked(group, request, new_id, std::move(done), now);
    return;
  }
  if (request.require_known_member_id) {
    group.pending_members[new_id] = now + request.session_timeout_ms;
    JoinResult r;
    r.error = GroupError::member_id_required;
    r.member_id = new_id;
    defer(call_with(std::move(done), std::move(r)));
    return;
  }
  add_member_and_rebalance_locked(group, request, new_id, std::move(done), now);
}

void GroupCoordinator::join_known_member_locked(Group& group, JoinRequest& request, JoinCallback& done,
                                                std::int64_t now) {
  auto reply_error = [&](GroupError error) {
    JoinResult r;
    r.error = error;
    r.member_id = request.member_id;
    defer(call_with(std::move(done), std::move(r)));
  };
  if (group.pending_members.count(request.member_id)) {
    if (!group.supports(request.protocol_type, request.protocols)) return reply_error(GroupError::inconsistent_group_protocol);
    group.pending_members.erase(request.member_id);
    add_member_and_rebalance_locked(group, request, request.member_id, std::move(done), now);
    return;
  }
  auto it = group.members.find(request.member_id);
  if (it == group.members.end()) {
    if (request.group_instance_id && group.static_members.count(*request.group_instance_id))
      return reply_error(GroupError::fenced_instance_id);
    return reply_error(GroupError::unknown_member_id);
  }
  if (request.group_instance_id) {
    auto s = group.static_members.find(*request.group_instance_id);
    if (s != group.static_members.end() && s->second != request.member_id) return reply_error(GroupError::fenced_instance_id);
  }
  auto& member = it->second;
  if (!group.supports(request.protocol_type, request.protocols)) return reply_error(GroupError::inconsistent_group_protocol);
  const bool unchanged = same_protocols(member.protocols, request.protocols);
  switch (group.state) {
    case GroupState::preparing_rebalance:
      update_member_and_rebalance_locked(group, member, request, std::move(done), now);
      return;
    case GroupState::completing_rebalance:
      if (unchanged) {  // the member missed the join response: send it again
        member.last_heartbeat = now;
        defer(call_with(std::move(done), join_result_for_locked(group, member)));
      } else {
        update_member_and_rebalance_locked(group, member, request, std::move(done), now);
      }
      return;
    case GroupState::stable:
      if (!unchanged || (group.leader_id && *group.leader_id == member.member_id)) {
        // The leader rejoining means it wants a new assignment (e.g. its subscription changed).
        update_member_and_rebalance_locked(group, member, request, std::move(done), now);
      } else {
        member.last_heartbeat = now;
        defer(call_with(std::move(done), join_result_for_locked(group, member)));
      }
      return;
    case GroupState::empty:
    case GroupState::dead:
      return reply_error(GroupError::unknown_member_id);
  }
}

void GroupCoordinator::add_member_and_rebalance_locked(Group& group, JoinRequest& request,
                                                       const std::string& member_id, JoinCallback done,
                                                       std::int64_t now) {
  Member m;
  m.member_id = member_id;
  m.instance_id = request.group_instance_id;
  m.client_id = request.client_id;
  m.client_host = request.client_host;
  m.session_timeout_ms = request.session_timeout_ms;
  m.rebalance_timeout_ms = request.rebalance_timeout_ms;
  m.protocols = std::move(request.protocols);
  m.awaiting_join = std::move(done);
  m.last_heartbeat = now;
  m.is_new = true;
  m.join_order = group.next_join_order++;
  if (group.members.empty()) group.protocol_type = request.protocol_type;
  if (m.instance_id) group.static_members[*m.instance_id] = member_id;
  group.members.emplace(member_id, std::move(m));
  group.pending_members.erase(member_id);
  if (!group.leader_id) group.leader_id = member_id;
  if (group.state == GroupState::preparing_rebalance) {
    if (group.initial_delay) {  // a newcomer during the initial delay makes the group wait for more peers
      group.rebalance_deadline = std::max(
          group.rebalance_deadline, std::min<std::int64_t>(now + settings_.initial_rebalance_delay_ms, group.initial_delay_limit));
    } else {  // a newcomer may need more time than the members that set the deadline
      group.rebalance_deadline = std::max<std::int64_t>(group.rebalance_deadline, now + request.rebalance_timeout_ms);
    }
  } else {
    prepare_rebalance_locked(group, now, "a new member joined");
  }
  maybe_complete_join_locked(group, now, false);
}

void GroupCoordinator::update_member_and_rebalance_locked(Group& group, Member& member, JoinRequest& request,
                                                          JoinCallback done, std::int64_t now) {
  member.protocols = std::move(request.protocols);
  member.session_timeout_ms = request.session_timeout_ms;
  member.rebalance_timeout_ms = request.rebalance_timeout_ms;
  member.client_id = request.client_id;
  member.client_host = request.client_host;
  member.last_heartbeat = now;
  if (member.awaiting_join) {  // a second join while the first waits: the first is superseded
    JoinResult r;
    r.error = GroupError::rebalance_in_progress;
    r.member_id = member.member_id;
    defer(call_with(std::move(member.awaiting_join), std::move(r)));
  }
  member.awaiting_join = std::move(done);
  if (group.state != GroupState::preparing_rebalance) prepare_rebalance_locked(group, now, "a member rejoined");
  maybe_complete_join_locked(group, now, false);
}

void GroupCoordinator::replace_static_member_locked(Group& group, const std::string& old_id, const std::string& new_id) {
  auto node = group.members.extract(old_id);
  auto& old_member = node.mapped();
  if (old_member.awaiting_join) {
    JoinResult r;
    r.error = GroupError::fenced_instance_id;
    r.member_id = old_id;
    defer(call_with(std::move(old_member.awaiting_join), std::move(r)));
    old_member.awaiting_join = nullptr;
  }
  if (old_member.awaiting_sync) {
    SyncResult r;
    r.error = GroupError::fenced_instance_id;
    defer(call_with(std::move(old_member.awaiting_sync), std::move(r)));
    old_member.awaiting_sync = nullptr;
  }
  node.key() = new_id;
  old_member.member_id = new_id;
  if (old_member.instance_id) group.static_members[*old_member.instance_id] = new_id;
  group.members.insert(std::move(node));
  if (group.leader_id && *group.leader_id == old_id) group.leader_id = new_id;
}

void GroupCoordinator::prepare_rebalance_locked(Group& group, std::int64_t now, const char* reason) {
  if (group.state == GroupState::completing_rebalance) {
    for (auto& [id, m] : group.members) {
      m.assignment.clear();
      if (m.awaiting_sync) {
        SyncResult r;
        r.error = GroupError::rebalance_in_progress;
        defer(call_with(std::move(m.awaiting_sync), std::move(r)));
        m.awaiting_sync = nullptr;
      }
    }
  }
  const bool was_empty = group.state == GroupState::empty;
  group.state = GroupState::preparing_rebalance;
  group.state_timestamp = now;
  const auto rebalance_timeout = group.max_rebalance_timeout();
  if (was_empty && settings_.initial_rebalance_delay_ms > 0) {
    group.initial_delay = true;
    group.rebalance_deadline = now + settings_.initial_rebalance_delay_ms;
    group.initial_delay_limit = now + std::max<std::int64_t>(rebalance_timeout, settings_.initial_rebalance_delay_ms);
  } else {
    group.initial_delay = false;
    group.rebalance_deadline = now + rebalance_timeout;
  }
  log::info("group {}: rebalancing (generation {}): {}", group.id, group.generation, reason);
}

void GroupCoordinator::maybe_complete_join_locked(Group& group, std::int64_t now, bool deadline_passed) {
  if (group.state != GroupState::preparing_rebalance) return;
  if (group.initial_delay && !deadline_passed) return;
  bool all_joined = group.pending_members.empty();
  for (const auto& [id, m] : group.members)
    if (!m.awaiting_join) all_joined = false;
  if (all_joined || deadline_passed) complete_join_locked(group, now);
}

void GroupCoordinator::complete_join_locked(Group& group, std::int64_t now) {
  // Dynamic members that did not rejoin in time are out; static ones stay until their session ends.
  for (auto it = group.members.begin(); it != group.members.end();) {
    if (!it->second.awaiting_join && !it->second.instance_id) {
      log::info("group {}: member {} did not rejoin within the rebalance timeout and is removed", group.id, it->first);
      if (group.leader_id && *group.leader_id == it->first) group.leader_id.reset();
      it = group.members.erase(it);
    } else {
      ++it;
    }
  }
  group.initial_delay = false;
  ++group.generation;
  group.state_timestamp = now;
  bool anyone_joined = false;
  for (const auto& [id, m] : group.members)
    if (m.awaiting_join) anyone_joined = true;
  if (group.members.empty() || !anyone_joined) {
    // Nobody rejoined: remaining (static) members are dropped too and the group is empty.
    group.members.clear();
    group.static_members.clear();
    group.state = GroupState::empty;
    group.protocol_name.reset();
    group.leader_id.reset();
    log::info("group {}: generation {} has no members; the group is empty", group.id, group.generation);
    store_group_locked(group);
    return;
  }
  group.protocol_name = group.select_protocol();
  if (!group.leader_id || !group.members.at(*group.leader_id).awaiting_join) {
    group.leader_id.reset();
    for (const auto* m : group.members_by_join_order())
      if (m->awaiting_join) {
        group.leader_id = m->member_id;
        break;
      }
  }
  group.state = GroupState::completing_rebalance;
  group.sync_deadline = now + group.max_rebalance_timeout();
  log::info("group {}: generation {} formed with {} members, protocol {}, leader {}", group.id, group.generation,
            group.members.size(), group.protocol_name.value_or("?"), group.leader_id.value_or("?"));
  for (auto& [id, m] : group.members) {
    m.is_new = false;
    m.synced = false;
    m.last_heartbeat = now;
    if (m.awaiting_join) {
      defer(call_with(std::move(m.awaiting_join), join_result_for_locked(group, m)));
      m.awaiting_join = nullptr;
    }
  }
}

// ---- SyncGroup, Heartbeat, LeaveGroup ---------------------------------------------------------------

void GroupCoordinator::sync(SyncRequest request, SyncCallback done) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  auto reply = [&](GroupError error, Bytes assignment, const Group* group) {
    SyncResult r;
    r.error = error;
    r.assignment = std::move(assignment);
    if (group && error == GroupError::none) {
      r.protocol_type = group->protocol_type;
      r.protocol_name = group->protocol_name;
    }
    defer(call_with(std::move(done), std::move(r)));
  };
  if (resigned_ != GroupError::none) {
    reply(resigned_, {}, nullptr);
    run_deferred(lock);
    return;
  }
  auto* group = find_group_locked(request.group_id);
  Member* member = nullptr;
  if (group) {
    auto it = group->members.find(request.member_id);
    if (it != group->members.end()) member = &it->second;
  }
  if (request.group_id.empty()) {
    reply(GroupError::invalid_group_id, {}, nullptr);
  } else if (!group || !member) {
    const bool fenced = group && request.group_instance_id && group->static_members.count(*request.group_instance_id);
    reply(fenced ? GroupError::fenced_instance_id : GroupError::unknown_member_id, {}, nullptr);
  } else if (request.group_instance_id && group->static_members.count(*request.group_instance_id) &&
             group->static_members.at(*request.group_instance_id) != request.member_id) {
    reply(GroupError::fenced_instance_id, {}, nullptr);
  } else if (request.generation_id != group->generation) {
    reply(GroupError::illegal_generation, {}, nullptr);
  } else if ((request.protocol_type && *request.protocol_type != group->protocol_type) ||
             (request.protocol_name && *request.protocol_name != group->protocol_name.value_or(""))) {
    reply(GroupError::inconsistent_group_protocol, {}, nullptr);
  } else {
    switch (group->state) {
      case GroupState::empty:
      case GroupState::dead:
        reply(GroupError::unknown_member_id, {}, nullptr);
        break;
      case GroupState::preparing_rebalance:
        reply(GroupError::rebalance_in_progress, {}, nullptr);
        break;
      case GroupState::stable:
        member->last_heartbeat = now;
        reply(GroupError::none, member->assignment, group);
        break;
      case GroupState::completing_rebalance: {
        member->last_heartbeat = now;
        member->synced = true;
        if (member->awaiting_sync) {
          SyncResult r;
          r.error = GroupError::rebalance_in_progress;
          defer(call_with(std::move(member->awaiting_sync), std::move(r)));
        }
        member->awaiting_sync = std::move(done);
        if (group->leader_id && *group->leader_id == request.member_id) {
          for (auto& [id, m] : group->members) m.assignment.clear();
          for (auto& [id, assignment] : request.assignments) {
            auto it = group->members.find(id);
            if (it != group->members.end()) it->second.assignment = std::move(assignment);
          }
          group->state = GroupState::stable;
          group->state_timestamp = now;
          store_group_locked(*group);
          for (auto& [id, m] : group->members)
            if (m.awaiting_sync) {
              SyncResult r;
              r.protocol_type = group->protocol_type;
              r.protocol_name = group->protocol_name;
              r.assignment = m.assignment;
              defer(call_with(std::move(m.awaiting_sync), std::move(r)));
              m.awaiting_sync = nullptr;
            }
          log::info("group {}: generation {} is stable", group->id, group->generation);
        }
        break;
      }
    }
  }
  run_deferred(lock);
}

GroupError GroupCoordinator::heartbeat(const std::string& group_id, std::int32_t generation_id,
                                       const std::string& member_id, const std::optional<std::string>& group_instance_id) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  if (resigned_ != GroupError::none) return resigned_;
  auto* group = find_group_locked(group_id);
  if (group_id.empty()) return GroupError::invalid_group_id;
  if (!group) return GroupError::unknown_member_id;
  auto it = group->members.find(member_id);
  if (group_instance_id) {
    auto s = group->static_members.find(*group_instance_id);
    if (s != group->static_members.end() && s->second != member_id) return GroupError::fenced_instance_id;
  }
  if (it == group->members.end()) return GroupError::unknown_member_id;
  if (generation_id != group->generation) return GroupError::illegal_generation;
  switch (group->state) {
    case GroupState::empty:
    case GroupState::dead:
      return GroupError::unknown_member_id;
    case GroupState::preparing_rebalance:
      it->second.last_heartbeat = now;
      return GroupError::rebalance_in_progress;
    case GroupState::completing_rebalance:
    case GroupState::stable:
      it->second.last_heartbeat = now;
      return GroupError::none;
  }
  return GroupError::none;
}

void GroupCoordinator::remove_member_locked(Group& group, std::string member_id, std::int64_t now,
                                            const char* reason) {
  auto it = group.members.find(member_id);
  if (it == group.members.end()) return;
  auto& m = it->second;
  if (m.awaiting_join) {
    JoinResult r;
    r.error = GroupError::unknown_member_id;
    r.member_id = member_id;
    defer(call_with(std::move(m.awaiting_join), std::move(r)));
  }
  if (m.awaiting_sync) {
    SyncResult r;
    r.error = GroupError::unknown_member_id;
    defer(call_with(std::move(m.awaiting_sync), std::move(r)));
  }
  if (m.instance_id) group.static_members.erase(*m.instance_id);
  group.members.erase(it);
  if (group.leader_id && *group.leader_id == member_id) {
    group.leader_id.reset();
    auto order = group.members_by_join_order();
    if (!order.empty()) group.leader_id = order.front()->member_id;
  }
  log::info("group {}: member {} removed: {}", group.id, member_id, reason);
  if (group.state == GroupState::stable || group.state == GroupState::completing_rebalance)
    prepare_rebalance_locked(group, now, reason);
  maybe_complete_join_locked(group, now, false);
}

LeaveResult GroupCoordinator::leave(const std::string& group_id, const std::vector<MemberIdentity>& members) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  LeaveResult result;
  auto* group = find_group_locked(group_id);
  if (group_id.empty()) {
    result.error = GroupError::invalid_group_id;
  } else {
    for (const auto& identity : members) {
      GroupError error = GroupError::none;
      if (!group) {
        error = GroupError::unknown_member_id;
      } else if (identity.group_instance_id) {
        auto s = group->static_members.find(*identity.group_instance_id);
        if (s == group->static_members.end()) {
          error = GroupError::unknown_member_id;
        } else if (!identity.member_id.empty() && s->second != identity.member_id) {
          error = GroupError::fenced_instance_id;
        } else {
          remove_member_locked(*group, s->second, now, "static member left the group");
        }
      } else if (group->pending_members.erase(identity.member_id)) {
        maybe_complete_join_locked(*group, now, false);
      } else if (!group->members.count(identity.member_id)) {
        error = GroupError::unknown_member_id;
      } else {
        remove_member_locked(*group, identity.member_id, now, "member left the group");
      }
      result.members.emplace_back(identity, error);
    }
  }
  run_deferred(lock);
  return result;
}

// ---- Offsets -----------------------------------------------------------------------------------------

std::vector<GroupError> GroupCoordinator::commit(const CommitRequest& request) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  std::vector<GroupError> errors(request.offsets.size(), GroupError::none);
  auto fail_all = [&](GroupError e) { std::fill(errors.begin(), errors.end(), e); };
  auto* group = find_group_locked(request.group_id);
  bool allowed = false;
  if (resigned_ != GroupError::none) {
    fail_all(resigned_);
  } else if (request.group_id.empty()) {
    fail_all(GroupError::invalid_group_id);
  } else if (consumer_groups_.count(request.group_id)) {
    const auto error = validate_consumer_commit_locked(request);
    allowed = error == GroupError::none;
    if (!allowed) fail_all(error);
  } else if (!group) {
    if (request.generation_id < 0) {
      allowed = true;  // a simple consumer's commit creates the group
    } else {
      // v9+ answers GROUP_ID_NOT_FOUND, which both protocols understand; older versions keep ILLEGAL_GENERATION.
      fail_all(request.member_epoch_version ? GroupError::group_id_not_found : GroupError::illegal_generation);
    }
  } else if (request.group_instance_id && group->static_members.count(*request.group_instance_id) &&
             group->static_members.at(*request.group_instance_id) != request.member_id) {
    fail_all(GroupError::fenced_instance_id);
  } else if (request.generation_id < 0 && group->state == GroupState::empty) {
    allowed = true;
  } else if (group->state == GroupState::completing_rebalance) {
    fail_all(GroupError::rebalance_in_progress);
  } else if (!group->members.count(request.member_id)) {
    fail_all(GroupError::unknown_member_id);
  } else if (request.generation_id != group->generation) {
    fail_all(GroupError::illegal_generation);
  } else {
    allowed = true;
    group->members.at(request.member_id).last_heartbeat = now;
  }
  if (allowed) {
    std::vector<StoredRecord> records;
    std::vector<std::pair<TopicPartitionKey, CommittedOffset>> updates;
    for (std::size_t i = 0; i < request.offsets.size(); ++i) {
      const auto& o = request.offsets[i];
      if (o.metadata.size() > settings_.max_offset_metadata_bytes) {
        errors[i] = GroupError::offset_metadata_too_large;
        continue;
      }
      OffsetValue value{o.offset, o.leader_epoch, o.metadata, now};
      records.push_back({encode_offset_key({request.group_id, o.topic, o.partition}), encode_offset_value(value)});
      updates.emplace_back(TopicPartitionKey{o.topic, o.partition}, CommittedOffset{std::move(value), next_position_++});
    }
    auto stored = store_->append(records);
    if (!stored.ok()) {
      log::error("group {}: storing {} committed offsets failed: {}", request.group_id, records.size(),
                 stored.error().message);
      for (auto& e : errors)
        if (e == GroupError::none) e = GroupError::coordinator_not_available;
    } else if (!updates.empty()) {
      auto& g = group ? *group : get_or_create_group_locked(request.group_id);
      for (auto& [tp, value] : updates) g.offsets[tp] = std::move(value);
    }
  }
  run_deferred(lock);
  return errors;
}

// Kafka's ConsumerGroup.validateOffsetCommit; a stale epoch sent by an OffsetCommit older than v9 is
// UNSUPPORTED_VERSION, as Kafka 3.7 answers (such a client cannot speak the consumer protocol).
GroupError GroupCoordinator::validate_consumer_commit_locked(const CommitRequest& request) const {
  auto error = consumer_groups_.at(request.group_id).validate_offset_commit(request.member_id, request.generation_id);
  if (error == GroupError::stale_member_epoch && !request.member_epoch_version) return GroupError::unsupported_version;
  return error;
}

std::vector<GroupError> GroupCoordinator::txn_commit(const TxnCommitRequest& request) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  std::vector<GroupError> errors(request.offsets.size(), GroupError::none);
  auto fail_all = [&](GroupError e) {
    std::fill(errors.begin(), errors.end(), e);
    return errors;
  };
  if (resigned_ != GroupError::none) return fail_all(resigned_);
  if (request.group_id.empty()) return fail_all(GroupError::invalid_group_id);
  if (request.producer_id < 0) return fail_all(GroupError::invalid_request);
  auto* group = find_group_locked(request.group_id);
  // Kafka's validateOffsetCommit for transactions: a consumer that names itself (KIP-447) must be the
  // current member of the current generation; one that does not (v0-v2) is not checked, and neither is
  // generation -1 into an empty group (an admin client or a consumer outside group management).
  const bool empty_group = !group || group->state == GroupState::empty;
  const bool names_member = request.generation_id >= 0 || !request.member_id.empty() || request.group_instance_id;
  if (names_member && !(request.generation_id < 0 && empty_group)) {
    if (request.group_instance_id && group && group->static_members.count(*request.group_instance_id) &&
        group->static_members.at(*request.group_instance_id) != request.member_id)
      return fail_all(GroupError::fenced_instance_id);
    if (!group || !group->members.count(request.member_id)) return fail_all(GroupError::unknown_member_id);
    if (request.generation_id != group->generation) return fail_all(GroupError::illegal_generation);
  }
  std::vector<StoredRecord> records;
  std::vector<std::pair<TopicPartitionKey, CommittedOffset>> updates;
  for (std::size_t i = 0; i < request.offsets.size(); ++i) {
    const auto& o = request.offsets[i];
    if (o.metadata.size() > settings_.max_offset_metadata_bytes) {
      errors[i] = GroupError::offset_metadata_too_large;
      continue;
    }
    OffsetValue value{o.offset, o.leader_epoch, o.metadata, now};
    StoredRecord record{encode_offset_key({request.group_id, o.topic, o.partition}), encode_offset_value(value)};
    record.kind = RecordKind::transactional;
    record.producer_id = request.producer_id;
    record.producer_epoch = request.producer_epoch;
    records.push_back(std::move(record));
    updates.emplace_back(TopicPartitionKey{o.topic, o.partition}, CommittedOffset{std::move(value), next_position_++});
  }
  if (records.empty()) return errors;
  if (auto stored = store_->append(records); !stored.ok()) {
    log::error("group {}: storing {} transactional offsets of producer {} failed: {}", request.group_id,
               records.size(), request.producer_id, stored.error().message);
    for (auto& e : errors)
      if (e == GroupError::none) e = GroupError::coordinator_not_available;
    return errors;
  }
  auto& pending = get_or_create_group_locked(request.group_id).pending_txn[request.producer_id];
  for (auto& [tp, offset] : updates) pending[tp] = std::move(offset);
  return errors;
}

void GroupCoordinator::on_transaction_marker(std::int64_t producer_id, std::int16_t producer_epoch, bool committed) {
  std::lock_guard lock(mu_);
  log::debug("consumer groups: {} of producer {} (epoch {})", committed ? "COMMIT" : "ABORT", producer_id,
             producer_epoch);
  complete_transaction_locked(producer_id, committed);
}

FetchOffsetsResult GroupCoordinator::fetch_offsets(const std::string& group_id,
                                                   const std::optional<std::vector<TopicPartitionKey>>& partitions,
                                                   bool require_stable, const FetchingMember& member) {
  std::lock_guard lock(mu_);
  FetchOffsetsResult result;
  if (auto cg = consumer_groups_.find(group_id); cg != consumer_groups_.end()) {
    result.error = cg->second.validate_offset_fetch(member.member_id, member.member_epoch);
    if (result.error != GroupError::none) return result;
  }
  auto* group = find_group_locked(group_id);
  if (partitions) {
    for (const auto& tp : *partitions) {
      PartitionOffset out;
      out.topic = tp.topic;
      out.partition = tp.partition;
      if (group && require_stable && group->has_pending_txn(tp)) {
        out.error = GroupError::unstable_offset_commit;  // Kafka answers offset -1 with it
      } else if (group) {
        auto it = group->offsets.find(tp);
        if (it != group->offsets.end()) {
          out.offset = it->second.value.offset;
          out.leader_epoch = it->second.value.leader_epoch;
          out.metadata = it->second.value.metadata;
        }
      }
      result.offsets.push_back(std::move(out));
    }
  } else if (group) {
    for (const auto& [tp, committed] : group->offsets) {
      const auto& value = committed.value;
      if (require_stable && group->has_pending_txn(tp))
        result.offsets.push_back(PartitionOffset{tp.topic, tp.partition, -1, -1, "", GroupError::unstable_offset_commit});
      else
        result.offsets.push_back(PartitionOffset{tp.topic, tp.partition, value.offset, value.leader_epoch, value.metadata});
    }
  }
  return result;
}

GroupError GroupCoordinator::delete_offsets(const std::string& group_id, const std::vector<TopicPartitionKey>& partitions,
                                            std::vector<GroupError>& partition_errors) {
  std::unique_lock lock(mu_);
  partition_errors.assign(partitions.size(), GroupError::none);
  auto* group = find_group_locked(group_id);
  if (!group) return GroupError::group_id_not_found;
  std::set<std::string> subscribed;
  if (auto cg = consumer_groups_.find(group_id); cg != consumer_groups_.end()) subscribed = cg->second.subscribed_topics();
  if (group->state != GroupState::empty) {
    if (group->protocol_type != "consumer") return GroupError::non_empty_group;
    for (const auto& [id, m] : group->members)
      if (const auto* p = group->protocol_name ? m.protocol(*group->protocol_name) : nullptr)
        for (auto& topic : subscribed_topics(p->metadata)) subscribed.insert(std::move(topic));
  }
  std::vector<StoredRecord> records;
  std::vector<TopicPartitionKey> erased;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto& tp = partitions[i];
    if (subscribed.count(tp.topic)) {
      partition_errors[i] = GroupError::group_subscribed_to_topic;
    } else if (group->offsets.count(tp)) {
      records.push_back({encode_offset_key({group_id, tp.topic, tp.partition}), std::nullopt});
      erased.push_back(tp);
    }
  }
  if (auto stored = store_->append(records); !stored.ok()) {
    log::error("group {}: storing offset deletions failed: {}", group_id, stored.error().message);
    return GroupError::coordinator_not_available;
  }
  for (const auto& tp : erased) group->offsets.erase(tp);
  return GroupError::none;
}

GroupError GroupCoordinator::delete_group(const std::string& group_id) {
  std::unique_lock lock(mu_);
  if (auto cg = consumer_groups_.find(group_id); cg != consumer_groups_.end()) {
    if (!cg->second.empty()) return GroupError::non_empty_group;
    consumer_groups_.erase(cg);
    log::info("consumer group {} deleted", group_id);
    if (!find_group_locked(group_id)) return GroupError::none;  // it had no committed offsets
  }
  auto* group = find_group_locked(group_id);
  if (!group) return GroupError::group_id_not_found;
  if (!group->members.empty() || group->state != GroupState::empty) return GroupError::non_empty_group;
  std::vector<StoredRecord> records;
  for (const auto& [tp, committed] : group->offsets)
    records.push_back({encode_offset_key({group_id, tp.topic, tp.partition}), std::nullopt});
  records.push_back({encode_group_key({group_id}), std::nullopt});
  if (auto stored = store_->append(records); !stored.ok()) {
    log::error("group {}: storing the deletion failed: {}", group_id, stored.error().message);
    return GroupError::coordinator_not_available;
  }
  next_position_ += records.size();
  // Pending members (given an id, not yet joined) learn on their join that the group is gone. Offsets
  // of open transactions survive (as Kafka keeps them): their marker decides, in a fresh empty group.
  auto pending = std::move(group->pending_txn);
  groups_.erase(group_id);
  if (!pending.empty()) {
    get_or_create_group_locked(group_id).pending_txn = std::move(pending);
    log::info("group {} deleted; the offsets of its open transactions wait for their markers", group_id);
  } else {
    log::info("group {} deleted", group_id);
  }
  return GroupError::none;
}

std::vector<GroupListing> GroupCoordinator::list_groups() const {
  std::lock_guard lock(mu_);
  std::vector<GroupListing> out;
  for (const auto& [id, group] : groups_)
    if (!consumer_groups_.count(id)) out.push_back(GroupListing{id, group->protocol_type, group->state, std::nullopt});
  for (const auto& [id, group] : consumer_groups_)
    out.push_back(GroupListing{id, "consumer", GroupState::empty, group.state()});
  return out;
}

std::string GroupListing::state_name() const {
  return consumer_state ? consumer::to_string(*consumer_state) : to_string(state);
}

GroupDescription GroupCoordinator::describe(const std::string& group_id) const {
  std::lock_guard lock(mu_);
  GroupDescription d;
  d.group_id = group_id;
  auto it = groups_.find(group_id);
  if (it == groups_.end() || consumer_groups_.count(group_id)) return d;
  const auto& group = *it->second;
  d.state = group.state;
  d.protocol_type = group.protocol_type;
  d.protocol_name = group.state == GroupState::stable ? group.protocol_name.value_or("") : "";
  d.generation_id = group.generation;
  d.leader_id = group.leader_id.value_or("");
  for (const auto* m : group.members_by_join_order()) {
    MemberDescription md;
    md.member_id = m->member_id;
    md.group_instance_id = m->instance_id;
    md.client_id = m->client_id;
    md.client_host = m->client_host;
    if (group.state == GroupState::stable) {
      if (const auto* p = group.protocol_name ? m->protocol(*group.protocol_name) : nullptr) md.metadata = p->metadata;
      md.assignment = m->assignment;
    }
    d.members.push_back(std::move(md));
  }
  return d;
}

void GroupCoordinator::store_group_locked(Group& group) {
  GroupValue value;
  value.protocol_type = group.protocol_type;
  value.generation = group.generation;
  value.protocol = group.protocol_name;
  value.leader = group.leader_id;
  value.state_timestamp = group.state_timestamp;
  for (const auto* m : group.members_by_join_order()) {
    StoredMember sm;
    sm.member_id = m->member_id;
    sm.group_instance_id = m->instance_id;
    sm.client_id = m->client_id;
    sm.client_host = m->client_host;
    sm.rebalance_timeout_ms = m->rebalance_timeout_ms;
    sm.session_timeout_ms = m->session_timeout_ms;
    if (const auto* p = group.protocol_name ? m->protocol(*group.protocol_name) : nullptr) sm.subscription = p->metadata;
    sm.assignment = m->assignment;
    value.members.push_back(std::move(sm));
  }
  // Group metadata is what lets members keep their generation over a restart; losing it only costs a
  // rebalance, so a store failure is logged rather than failing the rebalance.
  auto stored = store_->append({{encode_group_key({group.id}), encode_group_value(value)}});
  if (!stored.ok()) {
    log::error("group {}: storing group metadata failed: {}", group.id, stored.error().message);
    return;
  }
  group.stored = true;
}

// ---- Time --------------------------------------------------------------------------------------------

void GroupCoordinator::tick() {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, group] : groups_) ids.push_back(id);
  for (const auto& id : ids) {
    auto* group = find_group_locked(id);
    if (!group) continue;
    for (auto it = group->pending_members.begin(); it != group->pending_members.end();) {
      if (it->second <= now) {
        log::info("group {}: member id {} was handed out but never used to join; forgotten", id, it->first);
        it = group->pending_members.erase(it);
      } else {
        ++it;
      }
    }
    std::vector<std::string> expired;
    for (const auto& [member_id, m] : group->members) {
      bool alive;
      if (m.awaiting_join)
        alive = !m.is_new || m.last_heartbeat + settings_.new_member_join_timeout_ms > now;
      else if (m.awaiting_sync)
        alive = true;
      else
        alive = m.last_heartbeat + m.session_timeout_ms > now;
      if (!alive) expired.push_back(member_id);
    }
    for (const auto& member_id : expired) remove_member_locked(*group, member_id, now, "session timeout expired");
    if (group->state == GroupState::preparing_rebalance)
      maybe_complete_join_locked(*group, now, now >= group->rebalance_deadline);
    if (group->state == GroupState::completing_rebalance && now >= group->sync_deadline) {
      // KIP-814 style: members that never sent SyncGroup within the rebalance timeout are removed, so
      // the others are not left waiting for an assignment that never comes.
      std::vector<std::string> late;
      for (const auto& [member_id, m] : group->members)
        if (!m.synced) late.push_back(member_id);
      for (const auto& member_id : late)
        remove_member_locked(*group, member_id, now, "did not send SyncGroup within the rebalance timeout");
    }
  }
  for (auto& [id, group] : consumer_groups_) group.expire(now);
  if (now >= next_retention_check_) {
    expire_offsets_locked(now);
    next_retention_check_ = now + settings_.offsets_retention_check_interval_ms;
  }
  run_deferred(lock);
}

void GroupCoordinator::expire_offsets_locked(std::int64_t now) {
  if (settings_.offsets_retention_ms < 0) return;
  for (auto it = groups_.begin(); it != groups_.end();) {
    auto& group = *it->second;
    auto consumer_group = consumer_groups_.find(group.id);
    const bool consumer_members = consumer_group != consumer_groups_.end() && !consumer_group->second.empty();
    if (group.state != GroupState::empty || !group.pending_members.empty() || consumer_members) {
      ++it;
      continue;
    }
    std::vector<StoredRecord> records;
    std::vector<TopicPartitionKey> expired;
    for (const auto& [tp, committed] : group.offsets) {
      if (group.has_pending_txn(tp)) continue;  // an open transaction will commit over it (Kafka keeps it)
      // Kafka's rule: offsets of an empty consumer group expire retention after the group became
      // empty; a simple consumer's (no protocol type) expire retention after their commit.
      const auto base = group.protocol_type.empty() ? committed.value.commit_timestamp : group.state_timestamp;
      if (base + settings_.offsets_retention_ms <= now) {
        records.push_back({encode_offset_key({group.id, tp.topic, tp.partition}), std::nullopt});
        expired.push_back(tp);
      }
    }
    const bool drop_group = expired.size() == group.offsets.size() && group.pending_txn.empty();
    if (drop_group && group.stored) records.push_back({encode_group_key({group.id}), std::nullopt});
    if (auto stored = store_->append(records); !stored.ok()) {
      log::error("group {}: storing expired offsets failed: {}", group.id, stored.error().message);
      ++it;
      continue;
    }
    if (!expired.empty()) log::info("group {}: {} committed offsets expired", group.id, expired.size());
    for (const auto& tp : expired) group.offsets.erase(tp);
    if (drop_group) {
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
  // An empty consumer group without committed offsets is gone, as Kafka cleans such groups up.
  std::erase_if(consumer_groups_, [&](const auto& entry) { return entry.second.empty() && !groups_.count(entry.first); });
}

// ---- KIP-848 consumer protocol ------------------------------------------------------------------------

consumer::HeartbeatResult GroupCoordinator::consumer_heartbeat(const consumer::HeartbeatRequest& request,
                                                               const consumer::TopicLookup& topics) {
  const auto now = clock_();
  std::unique_lock lock(mu_);
  consumer::HeartbeatResult result;
  result.member_id = request.member_id;
  auto refuse = [&](GroupError error, std::string message) {
    result.error = error;
    result.message = std::move(message);
    return result;
  };
  if (resigned_ != GroupError::none) return refuse(resigned_, "");
  auto it = consumer_groups_.find(request.group_id);
  if (it == consumer_groups_.end()) {
    // Kafka 3.7 does not convert groups between protocols: a classic group with members keeps its id.
    if (const auto* classic = find_group_locked(request.group_id);
        classic && (!classic->members.empty() || !classic->pending_members.empty()))
      return refuse(GroupError::group_id_not_found, "Group " + request.group_id + " is not a consumer group.");
    // Kafka answers GROUP_ID_NOT_FOUND here; this coordinator keeps consumer groups in memory, so after a
    // failover the members of a live group land here, and UNKNOWN_MEMBER_ID makes them rejoin.
    if (request.member_epoch != 0)
      return refuse(GroupError::unknown_member_id, "Consumer group " + request.group_id + " not found; rejoin with epoch 0.");
    it = consumer_groups_.try_emplace(request.group_id, request.group_id, settings_.consumer).first;
  }
  return it->second.heartbeat(request, now, topics, consumer::random_member_id);
}

std::optional<consumer::GroupDescription> GroupCoordinator::describe_consumer_group(const std::string& group_id) const {
  std::lock_guard lock(mu_);
  auto it = consumer_groups_.find(group_id);
  if (it == consumer_groups_.end()) return std::nullopt;
  return it->second.describe();
}

void GroupCoordinator::start_background_ticks(std::chrono::milliseconds interval) {
  stop_background_ticks();
  {
    std::lock_guard lock(ticker_mu_);
    ticker_stop_ = false;
  }
  ticker_ = std::thread([this, interval] {
    std::unique_lock lock(ticker_mu_);
    while (!ticker_stop_) {
      ticker_cv_.wait_for(lock, interval);
      if (ticker_stop_) break;
      lock.unlock();
      tick();
      lock.lock();
    }
  });
}

void GroupCoordinator::resign(GroupError error) {
  std::unique_lock lock(mu_);
  resigned_ = error;
  for (auto& [id, group] : groups_) {
    for (auto& [member_id, member] : group->members) {
      if (member.awaiting_join) {
        JoinResult r;
        r.error = error;
        r.member_id = member_id;
        defer(call_with(std::move(member.awaiting_join), std::move(r)));
        member.awaiting_join = nullptr;
      }
      if (member.awaiting_sync) {
        SyncResult r;
        r.error = error;
        defer(call_with(std::move(member.awaiting_sync), std::move(r)));
        member.awaiting_sync = nullptr;
      }
    }
  }
  run_deferred(lock);
}

void GroupCoordinator::stop_background_ticks() {
  {
    std::lock_guard lock(ticker_mu_);
    ticker_stop_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

std::vector<std::string> subscribed_topics(ByteView metadata) {
  ByteReader r(metadata);
  std::int16_t version = 0;
  std::int32_t count = 0;
  std::vector<std::string> topics;
  if (!r.read_i16(version) || version < 0 || !r.read_i32(count) || count < 0) return {};
  for (std::int32_t i = 0; i < count; ++i) {
    std::int16_t n = 0;
    ByteView name;
    if (!r.read_i16(n) || n < 0 || !r.read_bytes(static_cast<std::size_t>(n), name)) return {};
    topics.emplace_back(as_chars(name));
  }
  return topics;
}

}  // namespace bulwark::groups
