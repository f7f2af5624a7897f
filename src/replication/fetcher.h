// The follower side of replication (Kafka's ReplicaFetcherThread): one connection per leader broker
// over the inter-broker listener, and on it one Fetch (v12, ReplicaId set, LastFetchedEpoch per
// partition) at a time for every partition this node follows on that leader, in a fetch session
// (KIP-227): after the first full fetch, each fetch names only the partitions whose position changed. Each response is applied
// to the local logs: records appended with the leader's offsets, the log truncated where the leader
// reports a DivergingEpoch, and the follower's high watermark moved to the leader's.
//
// Threading: set_assignment() from any thread; requests go out from the fetcher's own thread, and
// responses are applied on the outbound client's thread (which does nothing else).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/outbound.h"
#include "replication/partition.h"
#include "wire/generated/fetch.h"

namespace bulwark::replication {

struct ReplicationSettings;
using PartitionNotifier = std::function<void(const storage::TopicPartition&)>;

// Applies one partition's part of a Fetch response that was sent at leader_epoch: a DivergingEpoch
// truncates the log, records are appended at the leader's offsets (what the log already has is
// skipped), the high watermark follows the leader's, and a leader whose log now starts past ours makes
// the replica start over there. `notify` hears of a moved log end or high watermark. False when the
// partition should back off before its next fetch (an error, or an answer to an older epoch).
bool apply_fetched(Partition& partition, std::int32_t leader_epoch, const wire::msg::FetchResponse::PartitionData& data,
                   const PartitionNotifier& notify);

struct LeaderAddress {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const LeaderAddress&) const = default;
};

struct FollowerAssignment {
  std::map<std::int32_t, LeaderAddress> leaders;
  std::map<std::int32_t, std::vector<std::shared_ptr<Partition>>> partitions;  // by leader id
};

class FollowerFetcher {
 public:
  FollowerFetcher(const ReplicationSettings& settings, std::unique_ptr<net::OutboundClient> client,
                  PartitionNotifier notify);
  ~FollowerFetcher();  // stop()
  FollowerFetcher(const FollowerFetcher&) = delete;
  FollowerFetcher& operator=(const FollowerFetcher&) = delete;

  void start();
  void stop();
  void set_assignment(FollowerAssignment assignment);
  std::map<std::int32_t, std::vector<storage::TopicPartition>> assignment() const;

 private:
  struct FetchSession {  // KIP-227, the client side (Kafka's FetchSessionHandler)
    std::int32_t id = 0;
    std::int32_t next_epoch = 0;  // 0: the next fetch is a full one, which opens a new session
    std::map<storage::TopicPartition, wire::msg::FetchRequest::FetchPartition> sent;  // the session's partitions
  };
  struct LeaderState {
    LeaderAddress address;
    std::vector<std::shared_ptr<Partition>> partitions;
    FetchSession session;
    bool in_flight = false;
    std::map<storage::TopicPartition, std::chrono::steady_clock::time_point> backoff_until;
  };
  struct SentPartition {
    std::shared_ptr<Partition> partition;
    std::int32_t leader_epoch = -1;  // the epoch the fetch was sent at: a reply to an older one is dropped
  };
  void run();
  void send_fetch_locked(std::int32_t leader_id, LeaderState& leader);
  void on_response(std::int32_t leader_id, bool full, std::vector<SentPartition> partitions,
                   net::OutboundResponse response);

  const ReplicationSettings& settings_;
  std::unique_ptr<net::OutboundClient> client_;
  PartitionNotifier notify_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::int32_t, LeaderState> leaders_;
  std::thread thread_;
};

}  // namespace bulwark::replication
