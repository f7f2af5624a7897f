#include "broker/fetch_sessions.h"

#include <algorithm>

#include "broker/errors.h"

namespace bulwark::broker {
namespace {

constexpr std::int32_t kInitialEpoch = 0;  // a full fetch that opens a session
constexpr std::int32_t kFinalEpoch = -1;   // a full fetch without (or closing) a session

std::int32_t next_epoch(std::int32_t epoch) { return epoch == INT32_MAX ? 1 : epoch + 1; }

}  // namespace

FetchSessionCache::FetchSessionCache(std::int32_t slots, std::int64_t eviction_ms)
    : slots_(static_cast<std::size_t>(std::max(slots, 0))), eviction_ms_(eviction_ms) {}

std::size_t FetchSessionCache::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void FetchSessionCache::Session::put(const wire::msg::FetchRequest::FetchTopic& topic,
                                     const wire::msg::FetchRequest::FetchPartition& p) {
  const Key key{topic.topic, p.partition};
  auto found = index.find(key);
  if (found != index.end()) {
    found->second->topic_id = topic.topic_id;
    found->second->request = p;
    return;
  }
  partitions.push_back(CachedPartition{topic.topic, topic.topic_id, p.partition, p});
  index.emplace(key, std::prev(partitions.end()));
}

// By name; a v13+ topic id that no longer names a topic (deleted) by the id the session kept.
void FetchSessionCache::Session::forget(const wire::msg::FetchRequest::ForgottenTopic& topic, std::int32_t partition) {
  auto found = index.end();
  if (!topic.topic.empty()) {
    found = index.find(Key{topic.topic, partition});
  } else {
    found = std::find_if(index.begin(), index.end(), [&](const auto& entry) {
      return entry.second->topic_id == topic.topic_id && entry.second->partition == partition;
    });
  }
  if (found == index.end()) return;
  partitions.erase(found->second);
  index.erase(found);
}

// The request with every partition of the session, in the session's order, grouped by topic as they come.
wire::msg::FetchRequest FetchSessionCache::Session::effective_request(wire::msg::FetchRequest request) const {
  request.topics.clear();
  request.forgotten_topics_data.clear();
  for (const auto& cached : partitions) {
    if (request.topics.empty() || request.topics.back().topic != cached.topic ||
        request.topics.back().topic_id != cached.topic_id) {
      request.topics.emplace_back();
      request.topics.back().topic = cached.topic;
      request.topics.back().topic_id = cached.topic_id;
    }
    request.topics.back().partitions.push_back(cached.request);
  }
  return request;
}

FetchContext FetchSessionCache::begin(wire::msg::FetchRequest request, const FetchSessionOwner& owner,
                                      std::int64_t now_ms) {
  FetchContext context;
  std::lock_guard lock(mu_);
  if (request.session_epoch == kFinalEpoch || request.session_epoch == kInitialEpoch) {
    // A full fetch: it closes the session it names (if that session is the asker's).
    if (request.session_id != 0) {
      auto old = sessions_.find(request.session_id);
      if (old != sessions_.end() && old->second->owner == owner) sessions_.erase(old);
    }
    if (request.session_epoch == kInitialEpoch) context.session_id = open_locked(owner, request, now_ms);
    context.effective = std::move(request);
    return context;
  }
  auto found = sessions_.find(request.session_id);
  if (request.session_id == 0 || found == sessions_.end() || !(found->second->owner == owner)) {
    context.error = code(KafkaError::fetch_session_id_not_found);
    return context;
  }
  Session& session = *found->second;
  if (request.session_epoch != session.next_epoch) {
    context.error = code(KafkaError::invalid_fetch_session_epoch);
    return context;
  }
  session.next_epoch = next_epoch(session.next_epoch);
  session.last_used_ms = now_ms;
  for (const auto& topic : request.topics)
    for (const auto& p : topic.partitions) session.put(topic, p);
  for (const auto& topic : request.forgotten_topics_data)
    for (auto partition : topic.partitions) session.forget(topic, partition);
  context.session_id = request.session_id;
  context.incremental = true;
  context.effective = session.effective_request(std::move(request));
  return context;
}

std::int32_t FetchSessionCache::open_locked(const FetchSessionOwner& owner, const wire::msg::FetchRequest& request,
                                            std::int64_t now_ms) {
  if (!make_room_locked(owner.replica_id >= 0, now_ms)) return 0;
  auto session = std::make_unique<Session>();
  session->owner = owner;
  session->last_used_ms = now_ms;
  for (const auto& topic : request.topics)
    for (const auto& p : topic.partitions) session->put(topic, p);
  const auto id = new_id_locked();
  sessions_.emplace(id, std::move(session));
  return id;
}

// Kafka's rule, simplified: a slot is free, or the least recently used session has been idle for the
// eviction time, or (for a follower) a consumer's session is the least recently used one.
bool FetchSessionCache::make_room_locked(bool for_follower, std::int64_t now_ms) {
  if (slots_ == 0) return false;
  if (sessions_.size() < slots_) return true;
  auto lru = sessions_.end();
  auto lru_consumer = sessions_.end();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (lru == sessions_.end() || it->second->last_used_ms < lru->second->last_used_ms) lru = it;
    if (it->second->owner.replica_id < 0 &&
        (lru_consumer == sessions_.end() || it->second->last_used_ms < lru_consumer->second->last_used_ms))
      lru_consumer = it;
  }
  if (now_ms - lru->second->last_used_ms >= eviction_ms_) {
    sessions_.erase(lru);
    return true;
  }
  if (for_follower && lru_consumer != sessions_.end()) {
    sessions_.erase(lru_consumer);
    return true;
  }
  return false;
}

std::int32_t FetchSessionCache::new_id_locked() {
  std::uniform_int_distribution<std::int32_t> ids(1, INT32_MAX);
  for (;;) {
    const auto id = ids(random_);
    if (!sessions_.count(id)) return id;
  }
}

void FetchSessionCache::finish(const FetchContext& context, wire::msg::FetchResponse& response) {
  response.session_id = context.session_id;
  if (context.session_id == 0) return;
  std::lock_guard lock(mu_);
  auto found = sessions_.find(context.session_id);
  if (found == sessions_.end()) return;  // evicted meanwhile: this answer is complete, the next fetch hears why
  Session& session = *found->second;
  std::vector<std::list<CachedPartition>::iterator> fed;  // returned records: to the back of the line
  for (auto& topic : response.responses) {
    auto& partitions = topic.partitions;
    std::erase_if(partitions, [&](const wire::msg::FetchResponse::PartitionData& out) {
      auto cached = session.index.find(Key{topic.topic, out.partition_index});
      if (cached == session.index.end()) return false;
      auto& c = *cached->second;
      const bool records = out.records && !out.records->empty();
      const bool news = out.error_code != 0 || records || out.diverging_epoch.epoch >= 0 ||
                        out.high_watermark != c.high_watermark || out.last_stable_offset != c.last_stable_offset ||
                        out.log_start_offset != c.log_start_offset;
      c.high_watermark = out.high_watermark;
      c.last_stable_offset = out.last_stable_offset;
      c.log_start_offset = out.log_start_offset;
      if (records) fed.push_back(cached->second);
      return context.incremental && !news;
    });
  }
  if (context.incremental)
    std::erase_if(response.responses, [](const auto& topic) { return topic.partitions.empty(); });
  for (auto it : fed) session.partitions.splice(session.partitions.end(), session.partitions, it);
}

}  // namespace bulwark::broker
