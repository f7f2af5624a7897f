// A view of a whole cluster for the tools that must reach more than the bootstrap broker: partition
// leaders (produce, consume, ListOffsets), group coordinators (groups, consume --group), every broker
// (ListGroups). It keeps one AdminConnection per broker, opened on first use with the same settings,
// and the last Metadata it fetched.
//
// Thread safety: used by one thread at a time, like AdminConnection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "wire/generated/metadata.h"

namespace bulwark::client {

class ClusterClient {
 public:
  // Connects to a bootstrap server and fetches the broker list.
  static Result<std::unique_ptr<ClusterClient>> connect(const ClientSettings& settings);

  const ClientSettings& settings() const { return settings_; }
  // The bootstrap connection (any broker; the broker forwards controller work itself).
  AdminConnection& any() { return *bootstrap_; }

  // Fetches Metadata for `topics` (every topic when empty; never creates topics) and keeps it for
  // leader(). Per-topic errors are left in the response for the caller to report.
  Result<wire::msg::MetadataResponse> refresh_metadata(const std::vector<std::string>& topics = {});
  // The same, letting the broker create missing topics (auto.create.topics.enable) as a producer's
  // Metadata request does.
  Result<wire::msg::MetadataResponse> fetch_metadata(const std::vector<std::string>& topics,
                                                     bool allow_auto_topic_creation);
  const wire::msg::MetadataResponse& metadata() const { return metadata_; }
  std::vector<std::int32_t> broker_ids() const;

  // The connection to broker `node_id` (from the last Metadata), opened on first use.
  Result<AdminConnection*> broker(std::int32_t node_id);
  // The node a connection from broker()/leader()/group_coordinator() talks to, to drop it after an error.
  std::optional<std::int32_t> node_of(const AdminConnection* connection) const;
  // Forgets the connection to `node_id` after an I/O error on it, so the next broker() dials again
  // (the old object stays valid, failing, for whoever still holds it).
  void drop_connection(std::int32_t node_id);
  // The leader of topic-partition per the last Metadata; refreshes once when it names no leader.
  Result<AdminConnection*> leader(const std::string& topic, std::int32_t partition);
  // The leader's node id per the last Metadata (no refresh), to name or drop its connection.
  std::optional<std::int32_t> leader_id(const std::string& topic, std::int32_t partition) const;
  // The coordinator of consumer group `group` (FindCoordinator, key type GROUP), retried while the
  // broker answers COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS.
  Result<AdminConnection*> group_coordinator(const std::string& group);

 private:
  ClusterClient() = default;

  ClientSettings settings_;
  std::unique_ptr<AdminConnection> bootstrap_;
  std::int32_t bootstrap_node_ = -1;  // the broker bootstrap_ reached; -1 not known yet, -2 not to be reused
  wire::msg::MetadataResponse metadata_;
  std::map<std::int32_t, std::unique_ptr<AdminConnection>> connections_;
  // Replaced after an I/O error; kept so that pointers handed out earlier never dangle.
  std::vector<std::unique_ptr<AdminConnection>> retired_;
};

}  // namespace bulwark::client
