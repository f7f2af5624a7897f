// `bulwark quorum describe --status|--replication`: the KRaft quorum as kafka-metadata-quorum.sh shows it
// (DescribeQuorum through any broker, which asks the quorum's leader): the leader, its epoch, the high
// watermark, and each voter's and observer's log end offset, lag and last fetch.
//
// Exit codes: 0 done, 1 the broker or the connection failed, 2 usage errors.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/client.h"
#include "cluster/raft_wire.h"
#include "wire/generated/describe_quorum.h"
#include "wire/generated/metadata.h"

namespace {

using namespace bulwark;
using cli::kBrokerError;

struct QuorumFlags {
  client::ConnectionFlags connection;
  bool status = false;
  bool replication = false;
};

std::string id_list(const std::vector<raft::ReplicaDescription>& replicas) {
  std::vector<raft::NodeId> ids;
  for (const auto& r : replicas) ids.push_back(r.replica_id);
  std::sort(ids.begin(), ids.end());
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

void print_status(const std::string& cluster_id, const raft::QuorumDescription& q) {
  std::int64_t max_lag = 0;
  std::int64_t max_lag_ms = 0;
  std::int64_t leader_time = -1;
  for (const auto& v : q.current_voters)
    if (v.replica_id == q.leader_id) leader_time = v.last_caught_up_timestamp;
  for (const auto& v : q.current_voters) {
    max_lag = std::max(max_lag, q.high_watermark - v.log_end_offset);
    if (leader_time >= 0 && v.last_caught_up_timestamp >= 0)
      max_lag_ms = std::max(max_lag_ms, leader_time - v.last_caught_up_timestamp);
  }
  std::printf("ClusterId:              %s\n", cluster_id.c_str());
  std::printf("LeaderId:               %d\n", q.leader_id);
  std::printf("LeaderEpoch:            %d\n", q.leader_epoch);
  std::printf("HighWatermark:          %lld\n", static_cast<long long>(q.high_watermark));
  std::printf("MaxFollowerLag:         %lld\n", static_cast<long long>(max_lag));
  std::printf("MaxFollowerLagTimeMs:   %lld\n", static_cast<long long>(max_lag_ms));
  std::printf("CurrentVoters:          %s\n", id_list(q.current_voters).c_str());
  std::printf("CurrentObservers:       %s\n", id_list(q.observers).c_str());
}

void print_replication(const raft::QuorumDescription& q) {
  std::printf("%-8s %-14s %-8s %-20s %-22s %s\n", "NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
              "LastCaughtUpTimestamp", "Status");
  auto row = [&](const raft::ReplicaDescription& r, const char* status) {
    std::printf("%-8d %-14lld %-8lld %-20lld %-22lld %s\n", r.replica_id, static_cast<long long>(r.log_end_offset),
                static_cast<long long>(std::max<std::int64_t>(0, q.high_watermark - r.log_end_offset)),
                static_cast<long long>(r.last_fetch_timestamp), static_cast<long long>(r.last_caught_up_timestamp),
                status);
  };
  for (const auto& v : q.current_voters) row(v, v.replica_id == q.leader_id ? "Leader" : "Follower");
  for (const auto& o : q.observers) row(o, "Observer");
}

int run_describe(const QuorumFlags& flags) {
  int exit_code = 0;
  auto connection = cli::connect_admin(flags.connection, exit_code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return exit_code;
  }
  auto answer = (*connection)->call<wire::msg::DescribeQuorumRequest, wire::msg::DescribeQuorumResponse>(
      cluster::describe_quorum_request());
  if (!answer) {
    std::fprintf(stderr, "error: DescribeQuorum: %s\n", answer.error().message.c_str());
    return kBrokerError;
  }
  if (answer->error_code != 0) {
    std::fprintf(stderr, "error: DescribeQuorum: %s\n", client::error_name(answer->error_code).c_str());
    return kBrokerError;
  }
  auto quorum = cluster::from_wire(*answer);
  if (!quorum) {
    std::fprintf(stderr, "error: DescribeQuorum: %s\n", quorum.error().message.c_str());
    return kBrokerError;
  }
  if (quorum->error_code != raft::ErrorCode::none) {
    std::fprintf(stderr, "error: DescribeQuorum: %s (the quorum has no leader the broker could ask)\n",
                 raft::error_name(quorum->error_code));
    return kBrokerError;
  }
  if (flags.replication) {
    print_replication(*quorum);
    return 0;
  }
  wire::msg::MetadataRequest metadata;
  metadata.topics = std::vector<wire::msg::MetadataRequest::MetadataRequestTopic>{};
  auto cluster = (*connection)->call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(metadata);
  print_status(cluster && cluster->cluster_id ? *cluster->cluster_id : "", *quorum);
  return 0;
}

void add_quorum_commands(CLI::App& app) {
  auto* group = cli::command_group(app, "quorum", "The KRaft controller quorum, as kafka-metadata-quorum.sh shows it");
  auto flags = std::make_shared<QuorumFlags>();
  auto* cmd = group->add_subcommand("describe", "Leader, epoch, high watermark and every replica's lag");
  cli::add_admin_connection_flags(cmd, flags->connection, "kafka-metadata-quorum.sh");
  auto* status = cmd->add_flag("--status", flags->status, "The quorum's leader, epoch, high watermark and lag (default)");
  cmd->add_flag("--replication", flags->replication, "Each voter's and observer's log end offset and lag")->excludes(status);
  cli::set_action(cmd, [flags] { return run_describe(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_quorum_commands);
