// Connections to the brokers a tool needs, found through Metadata and FindCoordinator.
#include "client/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "wire/generated/find_coordinator.h"

namespace bulwark::client {
namespace {

constexpr std::int16_t kCoordinatorLoadInProgress = 14;
constexpr std::int16_t kCoordinatorNotAvailable = 15;
constexpr std::int16_t kNotCoordinator = 16;
constexpr std::int16_t kGroupAuthorizationFailed = 30;

}  // namespace

Result<std::unique_ptr<ClusterClient>> ClusterClient::connect(const ClientSettings& settings) {
  auto bootstrap = AdminConnection::connect(settings);
  if (!bootstrap) return bootstrap.error();
  std::unique_ptr<ClusterClient> cluster(new ClusterClient());
  cluster->settings_ = settings;
  cluster->bootstrap_ = std::move(*bootstrap);
  BULWARK_TRY(cluster->refresh_metadata());
  return cluster;
}

Result<wire::msg::MetadataResponse> ClusterClient::refresh_metadata(const std::vector<std::string>& topics) {
  return fetch_metadata(topics, false);
}

Result<wire::msg::MetadataResponse> ClusterClient::fetch_metadata(const std::vector<std::string>& topics,
                                                                  bool allow_auto_topic_creation) {
  wire::msg::MetadataRequest request;
  request.allow_auto_topic_creation = allow_auto_topic_creation;
  if (topics.empty()) {
    request.topics = std::nullopt;  // every topic
  } else {
    request.topics.emplace();
    for (const auto& t : topics) request.topics->push_back({.name = t});
  }
  auto response = bootstrap_->call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(request);
  if (!response && response.error().kind == ErrorKind::io) {
    // The bootstrap broker went away (restart, idle timeout): dial the bootstrap list again, once.
    auto again = AdminConnection::connect(settings_);
    if (!again) return response.error();
    // The old one stays alive (and fails) for callers still holding any() or a broker() pointer.
    retired_.push_back(std::move(bootstrap_));
    bootstrap_ = std::move(*again);
    bootstrap_node_ = -1;
    response = bootstrap_->call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(request);
  }
  if (!response) return response.error();
  metadata_ = *response;
  if (bootstrap_node_ < 0) {
    // The bootstrap connection doubles as the connection to the broker it reached.
    const HostPort& reached = bootstrap_->broker();
    for (const auto& b : metadata_.brokers)
      if (b.host == reached.host && b.port == reached.port && !connections_.contains(b.node_id))
        bootstrap_node_ = b.node_id;
  }
  return response;
}

std::optional<std::int32_t> ClusterClient::node_of(const AdminConnection* connection) const {
  if (connection == bootstrap_.get() && bootstrap_node_ >= 0) return bootstrap_node_;
  for (const auto& [id, c] : connections_)
    if (c.get() == connection) return id;
  return std::nullopt;
}

void ClusterClient::drop_connection(std::int32_t node_id) {
  if (auto it = connections_.find(node_id); it != connections_.end()) {
    retired_.push_back(std::move(it->second));
    connections_.erase(it);
  }
  // A dead bootstrap connection is replaced by the next Metadata call; until then dial the broker anew.
  if (node_id == bootstrap_node_) bootstrap_node_ = -2;
}

std::vector<std::int32_t> ClusterClient::broker_ids() const {
  std::vector<std::int32_t> ids;
  for (const auto& b : metadata_.brokers) ids.push_back(b.node_id);
  return ids;
}

Result<AdminConnection*> ClusterClient::broker(std::int32_t node_id) {
  if (node_id == bootstrap_node_) return bootstrap_.get();
  if (auto it = connections_.find(node_id); it != connections_.end()) return it->second.get();
  // A broker that registered after our last look (a coordinator, a new leader).
  const auto ids = broker_ids();
  if (std::find(ids.begin(), ids.end(), node_id) == ids.end()) BULWARK_TRY(refresh_metadata());
  for (const auto& b : metadata_.brokers) {
    if (b.node_id != node_id) continue;
    ClientSettings direct = settings_;
    direct.bootstrap_servers = {HostPort{b.host, static_cast<std::uint16_t>(b.port)}};
    auto connection = AdminConnection::connect(direct);
    if (!connection) {
      return make_error(connection.error().kind,
                        fmt::format("broker {} ({}:{}): {}", node_id, b.host, b.port, connection.error().message));
    }
    return connections_.emplace(node_id, std::move(*connection)).first->second.get();
  }
  return make_error(ErrorKind::not_found, fmt::format("broker {} is not in the cluster's metadata", node_id));
}

std::optional<std::int32_t> ClusterClient::leader_id(const std::string& topic, std::int32_t partition) const {
  for (const auto& t : metadata_.topics) {
    if (t.name != topic) continue;
    for (const auto& p : t.partitions) {
      if (p.partition_index == partition && p.leader_id >= 0) return p.leader_id;
    }
  }
  return std::nullopt;
}

Result<AdminConnection*> ClusterClient::leader(const std::string& topic, std::int32_t partition) {
  auto id = leader_id(topic, partition);
  if (!id) {
    BULWARK_TRY(refresh_metadata({topic}));
    id = leader_id(topic, partition);
  }
  if (!id) return make_error(ErrorKind::unavailable, fmt::format("{}-{} has no leader now", topic, partition));
  return broker(*id);
}

Result<AdminConnection*> ClusterClient::group_coordinator(const std::string& group) {
  wire::msg::FindCoordinatorRequest request;
  request.key = group;
  request.key_type = 0;
  request.coordinator_keys = {group};
  const auto deadline = std::chrono::steady_clock::now() + settings_.timeout;
  for (;;) {
    auto response = bootstrap_->call<wire::msg::FindCoordinatorRequest, wire::msg::FindCoordinatorResponse>(request);
    if (!response && response.error().kind == ErrorKind::io) {
      BULWARK_TRY(refresh_metadata());  // dials the bootstrap list again
      response = bootstrap_->call<wire::msg::FindCoordinatorRequest, wire::msg::FindCoordinatorResponse>(request);
    }
    if (!response) return response.error();
    // v4+ answers per key in `coordinators`; older versions in the top-level fields.
    std::int16_t error = response->error_code;
    std::int32_t node = response->node_id;
    if (!response->coordinators.empty()) {
      error = response->coordinators.front().error_code;
      node = response->coordinators.front().node_id;
    }
    const bool transient =
        error == kCoordinatorLoadInProgress || error == kCoordinatorNotAvailable || error == kNotCoordinator;
    if (error == 0) return broker(node);
    if (error == kGroupAuthorizationFailed) {
      // Not a coordinator problem: say who may not do what, as the other tools do.
      return make_error(ErrorKind::unauthenticated,
                        fmt::format("the broker says {} may not describe group '{}' ({})", bootstrap_->identity(), group,
                                    error_name(error)));
    }
    if (!transient || std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorKind::unavailable, fmt::format("no coordinator for group {}: {}", group, error_name(error)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace bulwark::client
