#include "replication/partition.h"

#include <algorithm>
#include <cassert>


namespace bulwark::replication {

namespace {

bool contains(const std::vector<std::int32_t>& ids, std::int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

Partition::Partition(storage::TopicPartition tp, std::int32_t local_id, std::shared_ptr<storage::PartitionLog> log,
                     std::int64_t checkpointed_high_watermark, std::int64_t lag_ms)
    : tp_(std::move(tp)), local_id_(local_id), log_(std::move(log)), lag_ms_(lag_ms) {
  high_watermark_ = std::clamp(checkpointed_high_watermark, log_->log_start_offset(), log_->log_end_offset());
}

bool Partition::apply(const cluster::PartitionState& state, std::int64_t now_ms) {
  std::lock_guard gate(leadership_gate_);
  std::unique_lock leadership(leadership_mu_);  // no append runs while the role or epoch may change
  std::lock_guard lock(mu_);
  const Role role = state.leader == local_id_ ? Role::leader
                    : contains(state.replicas, local_id_) ? Role::follower
                                                          : Role::none;
  const bool changed = role != role_ || state.leader_epoch != leader_epoch_ || state.leader != leader_id_;
  now_ms_ = std::max(now_ms_, now_ms);
  const bool replicas_changed = replicas_ != state.replicas;
  replicas_ = state.replicas;
  // Only a newer partition epoch settles the change in flight: an image the controller's answer already
  // brought (the same epoch) must not drop a change sent since.
  if (state.partition_epoch > partition_epoch_) {
    isr_ = state.isr;
    partition_epoch_ = state.partition_epoch;
    pending_isr_.reset();
  }
  leader_id_ = state.leader;
  if (!changed) {
    // A reassignment adds replicas (they fetch from here and join the ISR once caught up) or removes them.
    if (replicas_changed && role_ == Role::leader) {
      std::erase_if(followers_, [&](const auto& f) { return !contains(replicas_, f.first); });
      for (auto id : replicas_)
        if (id != local_id_) followers_.try_emplace(id, FollowerState{-1, contains(isr_, id) ? now_ms : 0, 0, -1});
    }
    return false;
  }
  pending_isr_.reset();  // a change sent at another leader epoch can only be refused
  role_ = role;
  leader_epoch_ = state.leader_epoch;
  followers_.clear();
  if (role_ == Role::leader) {
    // Kafka's makeLeader: ISR members count as caught up now, so none is dropped before it could fetch.
    leader_epoch_start_offset_ = log_->log_end_offset();
    for (auto id : replicas_)
      if (id != local_id_) followers_[id] = FollowerState{-1, contains(isr_, id) ? now_ms : 0, 0, -1};
    high_watermark_ = std::min(high_watermark_, log_->log_end_offset());
    advance_high_watermark_locked();
  }
  return true;
}

Role Partition::role() const {
  std::lock_guard lock(mu_);
  return role_;
}
std::int32_t Partition::leader_id() const {
  std::lock_guard lock(mu_);
  return leader_id_;
}
std::int32_t Partition::leader_epoch() const {
  std::lock_guard lock(mu_);
  return leader_epoch_;
}
std::vector<std::int32_t> Partition::isr() const {
  std::lock_guard lock(mu_);
  return isr_;
}
std::vector<std::int32_t> Partition::maximal_isr() const {
  std::lock_guard lock(mu_);
  return maximal_isr_locked();
}
std::int64_t Partition::high_watermark() const {
  std::lock_guard lock(mu_);
  return high_watermark_;
}
std::map<std::int32_t, FollowerState> Partition::followers() const {
  std::lock_guard lock(mu_);
  return followers_;
}

std::vector<std::int32_t> Partition::maximal_isr_locked() const {
  auto out = isr_;
  if (pending_isr_)
    for (auto id : pending_isr_->new_isr)
      if (!contains(out, id)) out.push_back(id);
  return out;
}

storage::EpochEndOffset Partition::end_offset_for_epoch(std::int32_t epoch) const {
  std::lock_guard lock(mu_);
  const auto latest = log_->latest_epoch();
  if (role_ != Role::leader || leader_epoch_ <= latest || epoch < 0) return log_->end_offset_for_epoch(epoch);
  if (epoch == leader_epoch_) return {epoch, log_->log_end_offset()};
  if (epoch > leader_epoch_) return {};
  if (latest < 0) return {epoch, leader_epoch_start_offset_};
  if (epoch > latest) return {latest, leader_epoch_start_offset_};
  return log_->end_offset_for_epoch(epoch);
}

std::optional<storage::LogStatus> Partition::restart_as_follower(std::int64_t offset, std::int32_t leader_epoch) {
  auto leadership = lock_for_append();
  if (!holds_role(Role::follower, leader_epoch)) return std::nullopt;
  auto restarted = log_->restart_at(offset);
  std::lock_guard lock(mu_);
  high_watermark_ = std::min(high_watermark_, log_->log_end_offset());
  return restarted;
}

std::optional<storage::EpochEndOffset> Partition::diverging_epoch(std::int64_t fetch_offset,
                                                                  std::int32_t last_fetched_epoch) const {
  if (last_fetched_epoch < 0) return std::nullopt;
  auto end = end_offset_for_epoch(last_fetched_epoch);
  if (end.epoch != last_fetched_epoch || end.end_offset < fetch_offset) return end;
  return std::nullopt;
}

bool Partition::record_follower_fetch(std::int32_t replica_id, std::int64_t fetch_offset, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (role_ != Role::leader) return false;
  now_ms_ = std::max(now_ms_, now_ms);
  auto it = followers_.find(replica_id);
  if (it == followers_.end()) return false;  // not a replica of this partition
  auto& f = it->second;
  const auto leader_end = log_->log_end_offset();
  // Kafka's Replica.updateFetchState: caught up when fetching from the log end now, or from where the
  // log end was at the previous fetch (appends keep coming while the follower is never behind by more).
  if (fetch_offset >= leader_end) {
    f.last_caught_up_ms = std::max(f.last_caught_up_ms, now_ms);
  } else if (f.leader_end_at_last_fetch >= 0 && fetch_offset >= f.leader_end_at_last_fetch) {
    f.last_caught_up_ms = std::max(f.last_caught_up_ms, f.last_fetch_ms);
  }
  f.log_end_offset = fetch_offset;
  f.last_fetch_ms = now_ms;
  f.leader_end_at_last_fetch = leader_end;
  return advance_high_watermark_locked();
}

std::shared_lock<std::shared_mutex> Partition::lock_for_append() const {
  std::lock_guard gate(leadership_gate_);
  return std::shared_lock(leadership_mu_);
}

bool Partition::holds_role(Role role, std::optional<std::int32_t> leader_epoch) const {
  std::lock_guard lock(mu_);
  return role_ == role && (!leader_epoch || leader_epoch_ == *leader_epoch);
}

std::optional<Partition::LeaderAppend> Partition::append_as_leader(ByteView records, storage::AppendOptions options) {
  auto leadership = lock_for_append();  // leadership cannot change under an append
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::leader) return std::nullopt;
    options.leader_epoch = leader_epoch_;
    now_ms_ = std::max(now_ms_, options.now_ms);
  }
  options.assign_offsets = true;
  LeaderAppend out{log_->append(records, options)};
  if (out.result.ok()) {
    std::lock_guard lock(mu_);
    out.high_watermark_moved = advance_high_watermark_locked();
  }
  return out;
}

std::optional<storage::LogStatus> Partition::append_as_follower(ByteView records, std::int32_t leader_epoch,
                                                                std::int64_t now_ms) {
  auto leadership = lock_for_append();
  if (!holds_role(Role::follower, leader_epoch)) return std::nullopt;
  storage::AppendOptions options;
  options.assign_offsets = false;
  options.max_message_bytes = 0;  // the leader checked max.message.bytes
  options.now_ms = now_ms;
  auto appended = log_->append(records, options);
  if (!appended.ok()) return storage::LogStatus(appended.error());
  return storage::LogStatus(storage::LogDone{});
}

std::optional<storage::LogStatus> Partition::truncate_as_follower(std::int64_t offset, std::int32_t leader_epoch) {
  auto leadership = lock_for_append();
  if (!holds_role(Role::follower, leader_epoch)) return std::nullopt;
  auto cut = log_->truncate_to(offset);
  std::lock_guard lock(mu_);
  high_watermark_ = std::min(high_watermark_, log_->log_end_offset());
  return cut;
}

bool Partition::advance_high_watermark_locked() {
  // Not past what this log may acknowledge: in fsync-before-ack mode, an fdatasync in progress covers
  // the rest (a consumer must not read what a power failure could take back).
  std::int64_t candidate = log_->acknowledgeable_end();
  const auto members = maximal_isr_locked();
  for (const auto& [id, f] : followers_) {
    // Kafka's maybeIncrementLeaderHW: ISR members, and followers caught up recently (about to join),
    // so that a joining follower never misses what the high watermark already covers.
    const bool counts = contains(members, id) ||
                        (f.log_end_offset >= 0 && f.last_caught_up_ms > 0 && now_ms_ - f.last_caught_up_ms <= lag_ms_);
    if (counts) candidate = std::min(candidate, std::max<std::int64_t>(f.log_end_offset, 0));
  }
  if (candidate <= high_watermark_) return false;
  high_watermark_ = candidate;
  return true;
}

bool Partition::update_follower_high_watermark(std::int64_t leader_high_watermark) {
  std::lock_guard lock(mu_);
  if (role_ != Role::follower) return false;
  const auto next = std::min(leader_high_watermark, log_->log_end_offset());
  if (next == high_watermark_) return false;
  high_watermark_ = next;  // a follower follows its leader, which may have a lower one after an election
  return true;
}


std::optional<storage::LogStatus> Partition::follow_log_start(std::int64_t leader_log_start, std::int32_t leader_epoch) {
  auto leadership = lock_for_append();
  if (!holds_role(Role::follower, leader_epoch)) return std::nullopt;
  const auto target = std::min(leader_log_start, high_watermark());
  if (target <= log_->log_start_offset()) return storage::LogStatus(storage::LogDone{});
  auto moved = log_->delete_records_before(target);
  if (!moved.ok()) return storage::LogStatus(moved.error());
  return storage::LogStatus(storage::LogDone{});
}

std::optional<IsrChange> Partition::next_isr_change(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  now_ms_ = std::max(now_ms_, now_ms);
  if (role_ != Role::leader || pending_isr_) return std::nullopt;
  std::vector<std::int32_t> next;
  const auto leader_end = log_->log_end_offset();
  for (auto id : isr_) {
    auto it = followers_.find(id);
    // Kafka's isFollowerOutOfSync: behind the log end, and not caught up for replica.lag.time.max.ms.
    const bool lagging = it != followers_.end() && it->second.log_end_offset != leader_end &&
                         now_ms - it->second.last_caught_up_ms > lag_ms_;
    if (id == local_id_ || !lagging) next.push_back(id);
  }
  for (const auto& [id, f] : followers_) {
    const bool joins = !contains(isr_, id) && f.log_end_offset >= high_watermark_ &&
                       f.log_end_offset >= leader_epoch_start_offset_ && now_ms - f.last_caught_up_ms <= lag_ms_;
    if (joins) next.push_back(id);
  }
  if (next == isr_) return std::nullopt;
  assert(contains(next, local_id_));  // the leader never removes itself
  pending_isr_ = IsrChange{tp_.topic, tp_.partition, leader_epoch_, partition_epoch_, std::move(next)};
  return pending_isr_;
}

void Partition::complete_isr_change(const IsrChange& sent,
                                    std::optional<std::pair<std::vector<std::int32_t>, std::int32_t>> committed) {
  std::lock_guard lock(mu_);
  const bool in_flight = pending_isr_ && pending_isr_->leader_epoch == sent.leader_epoch &&
                         pending_isr_->partition_epoch == sent.partition_epoch && pending_isr_->new_isr == sent.new_isr;
  if (!in_flight) return;  // stale: an image or an earlier answer settled it already
  pending_isr_.reset();
  if (committed && committed->second > partition_epoch_) {
    isr_ = std::move(committed->first);
    partition_epoch_ = committed->second;
  }
  if (role_ == Role::leader) advance_high_watermark_locked();
}

}  // namespace bulwark::replication
