#include "replication/fetcher.h"

#include <algorithm>

#include "base/clock.h"
#include "base/log.h"
#include "replication/replica_manager.h"
#include "wire/generated/fetch.h"
#include "wire/protocol.h"
#include "wire/record_batch.h"

namespace bulwark::replication {

namespace msg = wire::msg;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int16_t kFetchVersion = 12;  // ReplicaId in the body, LastFetchedEpoch, DivergingEpoch
constexpr std::int16_t kNone = 0, kOffsetOutOfRange = 1;
constexpr std::int16_t kFetchSessionIdNotFound = 70, kInvalidFetchSessionEpoch = 71;

// Where a follower cuts its log when the leader says its log diverges after (epoch, end offset):
// Kafka's rule, the smaller of the leader's end of that epoch and our own end of it. The next fetch
// (with the epoch we then end with) checks again, so a few rounds converge on the common prefix.
std::int64_t truncation_offset(const storage::PartitionLog& log, const msg::FetchResponse::EpochEndOffset& diverging) {
  const auto ours = log.end_offset_for_epoch(diverging.epoch);
  std::int64_t target = diverging.end_offset;
  if (ours.end_offset >= 0) target = std::min(target, ours.end_offset);
  return std::min(target, log.log_end_offset());
}

// The batches of a fetched blob the local log does not have yet (a retried fetch may overlap).
Result<ByteView> new_batches(ByteView records, std::int64_t log_end) {
  auto split = wire::split_batches(records);
  if (!split.ok()) return split.error();
  std::size_t skip = 0, keep = 0;
  for (auto batch : split->batches) {
    auto header = wire::parse_batch_header(batch);
    if (!header.ok()) return header.error();
    if (header->last_offset() < log_end) {
      skip += batch.size();
    } else {
      if (keep == 0 && header->base_offset != log_end)
        return make_error(ErrorKind::corrupt, "the leader sent a batch at offset " + std::to_string(header->base_offset) +
                                                  " to a log ending at " + std::to_string(log_end));
      keep += batch.size();
    }
  }
  return records.subspan(skip, keep);  // a trailing partial batch (allowed in fetches) is left out
}

}  // namespace

bool apply_fetched(Partition& partition, std::int32_t leader_epoch, const msg::FetchResponse::PartitionData& data,
                   const PartitionNotifier& notify) {
  const auto& tp = partition.topic_partition();
  const auto& log = *partition.log();
  if (data.error_code == kOffsetOutOfRange && data.log_start_offset > log.log_end_offset()) {
    // The leader's retention removed what this follower would fetch next: start over at the leader's start.
    log::warn("{}-{}: the leader's log starts at {}, past this replica's end {}; restarting the replica there",
              tp.topic, tp.partition, data.log_start_offset, log.log_end_offset());
    auto restarted = partition.restart_as_follower(data.log_start_offset, leader_epoch);
    if (restarted && !restarted->ok())
      log::error("{}-{}: cannot restart the log: {}", tp.topic, tp.partition, restarted->error().message);
    return restarted && restarted->ok();
  }
  if (data.error_code != kNone) return false;  // NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH...: the image says who leads
  if (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0) {
    const auto target = truncation_offset(log, data.diverging_epoch);
    log::info("{}-{}: truncating to offset {} (the leader's log diverges after epoch {} at offset {})", tp.topic,
              tp.partition, target, data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
    auto cut = partition.truncate_as_follower(target, leader_epoch);
    if (cut && !cut->ok()) log::error("{}-{}: cannot truncate: {}", tp.topic, tp.partition, cut->error().message);
    return cut && cut->ok();
  }
  bool moved = false;
  if (data.records && !data.records->empty()) {
    auto fresh = new_batches(*data.records, log.log_end_offset());
    if (!fresh.ok()) {
      log::error("{}-{}: cannot use the leader's records: {}", tp.topic, tp.partition, fresh.error().message);
      return false;
    }
    if (!fresh->empty()) {
      auto appended = partition.append_as_follower(*fresh, leader_epoch, wall_clock_ms());
      if (!appended) return false;  // the leadership changed while the fetch was out
      if (!appended->ok()) {
        log::error("{}-{}: cannot append replicated records: {}", tp.topic, tp.partition, appended->error().message);
        return false;
      }
      moved = true;
    }
  }
  moved = partition.update_follower_high_watermark(data.high_watermark) || moved;
  if (data.log_start_offset > log.log_start_offset()) {
    auto started = partition.follow_log_start(data.log_start_offset, leader_epoch);
    if (started && !started->ok())
      log::error("{}-{}: cannot move the log start to the leader's {}: {}", tp.topic, tp.partition,
                 data.log_start_offset, started->error().message);
  }
  if (moved) notify(tp);
  return true;
}

FollowerFetcher::FollowerFetcher(const ReplicationSettings& settings, std::unique_ptr<net::OutboundClient> client,
                                 PartitionNotifier notify)
    : settings_(settings), client_(std::move(client)), notify_(std::move(notify)) {}

FollowerFetcher::~FollowerFetcher() { stop(); }

void FollowerFetcher::start() {
  if (auto started = client_->start(); !started.ok())
    log::error("the replica fetcher cannot start its connections: {}", started.error().message);
  thread_ = std::thread([this] { run(); });
}

void FollowerFetcher::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  client_->stop();
}

void FollowerFetcher::set_assignment(FollowerAssignment assignment) {
  std::lock_guard lock(mu_);
  // Leaders no longer followed keep their entry (a fetch may be in flight to them), with nothing to fetch.
  for (auto& [leader_id, state] : leaders_)
    if (!assignment.partitions.count(leader_id)) state.partitions.clear();
  for (auto& [leader_id, partitions] : assignment.partitions) {
    auto& state = leaders_[leader_id];
    const auto& address = assignment.leaders[leader_id];
    if (!(state.address == address)) {
      state.address = address;
      state.session = {};  // a session lives on one broker
      client_->set_peer(leader_id, address.host, address.port);
    }
    state.partitions = std::move(partitions);
  }
  cv_.notify_all();
}

std::map<std::int32_t, std::vector<storage::TopicPartition>> FollowerFetcher::assignment() const {
  std::lock_guard lock(mu_);
  std::map<std::int32_t, std::vector<storage::TopicPartition>> out;
  for (const auto& [id, state] : leaders_)
    for (const auto& p : state.partitions) out[id].push_back(p->topic_partition());
  return out;
}

void FollowerFetcher::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    for (auto& [leader_id, leader] : leaders_)
      if (!leader.in_flight) send_fetch_locked(leader_id, leader);
    // Woken by a response or a new assignment; the timeout ends partition backoffs.
    cv_.wait_for(lock, std::chrono::milliseconds(std::clamp(settings_.fetch_backoff_ms / 4, 10, 250)));
  }
}

void FollowerFetcher::send_fetch_locked(std::int32_t leader_id, LeaderState& leader) {
  const auto now = Clock::now();
  msg::FetchRequest request;
  request.replica_id = settings_.node_id;
  request.max_wait_ms = settings_.fetch_wait_max_ms;
  request.min_bytes = settings_.fetch_min_bytes;
  request.max_bytes = settings_.fetch_response_max_bytes;
  // Full: every partition, opening a session. Incremental: only the partitions whose position moved,
  // and the ones to forget; the leader still fetches over every partition of the session.
  auto& session = leader.session;
  const bool full = session.next_epoch == 0;
  request.session_id = session.id;
  request.session_epoch = session.next_epoch;
  std::vector<SentPartition> sent;
  std::map<storage::TopicPartition, msg::FetchRequest::FetchPartition> wanted;
  for (const auto& partition : leader.partitions) {
    const auto& tp = partition->topic_partition();
    auto backoff = leader.backoff_until.find(tp);
    if (backoff != leader.backoff_until.end() && now < backoff->second) continue;
    if (partition->role() != Role::follower || partition->leader_id() != leader_id) continue;
    msg::FetchRequest::FetchPartition p;
    p.partition = tp.partition;
    p.current_leader_epoch = partition->leader_epoch();
    p.fetch_offset = partition->log()->log_end_offset();
    p.last_fetched_epoch = partition->log()->latest_epoch();
    p.log_start_offset = partition->log()->log_start_offset();
    p.partition_max_bytes = settings_.fetch_max_bytes;
    sent.push_back({partition, p.current_leader_epoch});
    auto before = session.sent.find(tp);
    if (!full && before != session.sent.end() && before->second == p) {
      wanted.emplace(tp, p);
      continue;
    }
    if (request.topics.empty() || request.topics.back().topic != tp.topic) request.topics.push_back({tp.topic, {}});
    request.topics.back().partitions.push_back(p);
    wanted.emplace(tp, p);
  }
  if (sent.empty()) return;
  if (!full)
    for (const auto& [tp, p] : session.sent) {
      if (wanted.count(tp)) continue;
      if (request.forgotten_topics_data.empty() || request.forgotten_topics_data.back().topic != tp.topic)
        request.forgotten_topics_data.push_back({tp.topic, {}, {}});
      request.forgotten_topics_data.back().partitions.push_back(tp.partition);
    }
  session.sent = std::move(wanted);
  leader.in_flight = true;
  net::OutboundRequest out;
  out.api_key = msg::FetchRequest::api_key;
  out.api_version = kFetchVersion;
  out.body = wire::encode_message(request, kFetchVersion);
  out.timeout = std::chrono::milliseconds(settings_.fetch_wait_max_ms + 30000);
  client_->send(leader_id, std::move(out), [this, leader_id, full, sent = std::move(sent)](net::OutboundResponse response) {
    on_response(leader_id, full, sent, std::move(response));
  });
}

void FollowerFetcher::on_response(std::int32_t leader_id, bool full, std::vector<SentPartition> partitions,
                                  net::OutboundResponse response) {
  std::vector<storage::TopicPartition> backing_off;
  std::optional<std::int32_t> session_id;  // the session to go on with; none: the next fetch is a full one
  auto decoded = response.ok() ? wire::decode_message<msg::FetchResponse>(response.body, kFetchVersion) : std::nullopt;
  if (!response.ok()) {
    log::debug("fetch from leader {} failed: {}", leader_id, response.message);
    for (const auto& p : partitions) backing_off.push_back(p.partition->topic_partition());
  } else if (!decoded) {
    log::warn("leader {} sent a fetch response that does not decode", leader_id);
    for (const auto& p : partitions) backing_off.push_back(p.partition->topic_partition());
  } else if (decoded->error_code == kFetchSessionIdNotFound || decoded->error_code == kInvalidFetchSessionEpoch) {
    log::info("leader {} ended the fetch session (error {}); the next fetch opens a new one", leader_id,
              decoded->error_code);
  } else {
    if (decoded->session_id != 0) session_id = decoded->session_id;
    std::map<storage::TopicPartition, const SentPartition*> by_tp;
    for (const auto& p : partitions) by_tp[p.partition->topic_partition()] = &p;
    for (const auto& topic : decoded->responses)
      for (const auto& data : topic.partitions) {
        auto it = by_tp.find({topic.topic, data.partition_index});
        if (it == by_tp.end()) continue;
        if (!apply_fetched(*it->second->partition, it->second->leader_epoch, data, notify_))
          backing_off.push_back(it->first);
      }
  }
  std::lock_guard lock(mu_);
  auto leader = leaders_.find(leader_id);
  if (leader == leaders_.end()) return;
  leader->second.in_flight = false;
  auto& session = leader->second.session;
  if (!session_id) {
    session.next_epoch = 0;
  } else {
    session.id = *session_id;
    session.next_epoch = full || session.next_epoch == INT32_MAX ? 1 : session.next_epoch + 1;
  }
  const auto until = Clock::now() + std::chrono::milliseconds(settings_.fetch_backoff_ms);
  for (const auto& tp : backing_off) leader->second.backoff_until[tp] = until;
  cv_.notify_all();
}

}  // namespace bulwark::replication
