// Fetch sessions (KIP-227). A client that fetches the same partitions again and again opens a session
// with a full fetch (epoch 0); after that it sends only what changed (incremental fetches, epoch 1, 2,
// ...) and hears only about partitions with news: records, an error, a moved high watermark or log
// start. The broker keeps each session's partitions and what it last told about them.
//
// The broker still fetches over every partition of the session (FetchContext::effective is the full
// request), so long polling and the leader's view of a follower (its fetch offset and caught-up time
// per partition, which decide the ISR) see every partition, changed or not.
//
// A session belongs to the principal and replica id that opened it; anyone else asking for it hears
// FETCH_SESSION_ID_NOT_FOUND. The cache holds max.incremental.fetch.session.cache.slots sessions and
// evicts the least recently used one once it has been idle for the eviction time, or sooner for a
// follower's session (followers keep their sessions ahead of consumers, as in Kafka).
//
// Fetch v13+ names topics by id: the handler resolves the ids to names first, so sessions key on names
// and keep the id the client used; a session's partition whose topic was recreated under a new id
// answers UNKNOWN_TOPIC_ID until the client names the new id.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>

#include "wire/generated/fetch.h"

namespace bulwark::broker {

struct FetchSessionOwner {
  std::string principal;
  std::int32_t replica_id = -1;  // a follower's broker id; -1 for consumers
  bool operator==(const FetchSessionOwner&) const = default;
};

// One Fetch as its session makes it: the full request to serve and how to answer it.
struct FetchContext {
  std::int16_t error = 0;       // FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH: answer only that
  std::int32_t session_id = 0;  // in the answer; 0 = no session (the client sends full fetches)
  bool incremental = false;     // the answer lists only partitions with news
  wire::msg::FetchRequest effective;
};

class FetchSessionCache {
 public:
  explicit FetchSessionCache(std::int32_t slots, std::int64_t eviction_ms = 120'000);

  // Opens, continues or closes the request's session (by its session id and epoch).
  FetchContext begin(wire::msg::FetchRequest request, const FetchSessionOwner& owner, std::int64_t now_ms);
  // Before the answer goes out: remembers what it tells about each partition and, for an incremental
  // fetch, leaves out the partitions without news. Partitions that returned records move to the end of
  // the session, so that under fetch.max.bytes every partition gets its turn.
  void finish(const FetchContext& context, wire::msg::FetchResponse& response);

  std::size_t size() const;

 private:
  struct CachedPartition {
    std::string topic;
    wire::Uuid topic_id{};  // as the client named it (v13+), zero before
    std::int32_t partition = 0;
    wire::msg::FetchRequest::FetchPartition request;  // as the client last sent it
    std::int64_t high_watermark = -1;                  // as the broker last told it
    std::int64_t last_stable_offset = -1;
    std::int64_t log_start_offset = -1;
  };
  using Key = std::pair<std::string, std::int32_t>;
  struct Session {
    FetchSessionOwner owner;
    std::int32_t next_epoch = 1;
    std::int64_t last_used_ms = 0;
    std::list<CachedPartition> partitions;  // the order fetches go through them
    std::map<Key, std::list<CachedPartition>::iterator> index;
    void put(const wire::msg::FetchRequest::FetchTopic& topic, const wire::msg::FetchRequest::FetchPartition& p);
    void forget(const wire::msg::FetchRequest::ForgottenTopic& topic, std::int32_t partition);
    wire::msg::FetchRequest effective_request(wire::msg::FetchRequest request) const;
  };

  std::int32_t open_locked(const FetchSessionOwner& owner, const wire::msg::FetchRequest& request, std::int64_t now_ms);
  bool make_room_locked(bool for_follower, std::int64_t now_ms);
  std::int32_t new_id_locked();

  const std::size_t slots_;
  const std::int64_t eviction_ms_;
  mutable std::mutex mu_;
  std::map<std::int32_t, std::unique_ptr<Session>> sessions_;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace bulwark::broker
