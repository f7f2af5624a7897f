#include "broker/broker_metrics.h"

#include <ctime>

#include "broker/group_partitions.h"
#include "broker/state.h"
#include "broker/tls_reloader.h"
#include "net/server.h"

namespace bulwark::broker {
namespace {

using metrics::Labels;

// Kafka's ApiKeys names, by key.
constexpr std::array<std::string_view, 61> kApiNames = {
    "Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica", "UpdateMetadata",
    "ControlledShutdown", "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup",
    "SyncGroup", "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics", "DeleteTopics",
    "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn",
    "WriteTxnMarkers", "TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs",
    "AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate", "CreatePartitions",
    "CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken", "DescribeDelegationToken",
    "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs", "AlterPartitionReassignments",
    "ListPartitionReassignments", "OffsetDelete", "DescribeClientQuotas", "AlterClientQuotas",
    "DescribeUserScramCredentials", "AlterUserScramCredentials", "Vote", "BeginQuorumEpoch", "EndQuorumEpoch",
    "DescribeQuorum", "AlterPartition", "UpdateFeatures", "Envelope", "FetchSnapshot", "DescribeCluster"};

constexpr double kQuantiles[] = {0.5, 0.75, 0.95, 0.99, 0.999};

std::string operation_name(security::Operation op) {
  switch (op) {
    case security::Operation::read: return "READ";
    case security::Operation::write: return "WRITE";
    case security::Operation::create: return "CREATE";
    case security::Operation::remove: return "DELETE";
    case security::Operation::alter: return "ALTER";
    case security::Operation::describe: return "DESCRIBE";
    case security::Operation::cluster_action: return "CLUSTER_ACTION";
    case security::Operation::describe_configs: return "DESCRIBE_CONFIGS";
    case security::Operation::alter_configs: return "ALTER_CONFIGS";
    case security::Operation::idempotent_write: return "IDEMPOTENT_WRITE";
    default: return "OTHER";
  }
}

void collect_partitions(metrics::Sample& out, const BrokerState& state) {
  const auto image = state.image();
  const std::int32_t me = state.node_id();
  double partitions = 0, leaders = 0, under_replicated = 0, offline = 0;
  for (const auto* topic : image->topics()) {
    for (const auto& [index, p] : topic->partitions) {
      if (p.leader < 0) ++offline;
      if (std::find(p.replicas.begin(), p.replicas.end(), me) == p.replicas.end()) continue;
      ++partitions;
      if (p.leader != me) continue;
      ++leaders;
      if (p.isr.size() < p.replicas.size()) ++under_replicated;
    }
  }
  const bool active = state.controller_service != nullptr && state.quorum_leader && state.quorum_leader() == me;
  out.value("kafka_server_replicamanager_partitioncount", "Partitions with a replica on this broker", {}, partitions);
  out.value("kafka_server_replicamanager_leadercount", "Partitions this broker leads", {}, leaders);
  out.value("kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions this broker leads whose ISR is smaller than their replica set", {}, under_replicated);
  out.value("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller, else 0", {},
            active ? 1 : 0);
  // As Kafka: the active controller reports the cluster's offline partitions, the others 0.
  out.value("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader (active controller)",
            {}, active ? offline : 0);
}

void collect_logs(metrics::Sample& out, const BrokerState& state) {
  if (!state.logs) return;
  for (const auto& tp : state.logs->list()) {
    auto log = state.logs->get(tp);
    if (!log) continue;
    const Labels labels = {{"topic", tp.topic}, {"partition", std::to_string(tp.partition)}};
    out.value("kafka_log_log_logendoffset", "The offset the next record of the partition gets", labels,
              static_cast<double>(log->log_end_offset()));
    out.value("kafka_log_log_logstartoffset", "The first offset the partition still holds", labels,
              static_cast<double>(log->log_start_offset()));
    out.value("kafka_log_log_size", "Bytes the partition's segments hold", labels, static_cast<double>(log->size_bytes()));
  }
}

// As kafka_exporter names it: the committed offsets of the groups coordinated here, against the log end
// of partitions this node holds.
void collect_lag(metrics::Sample& out, BrokerState& state) {
  if (!state.group_coordinators || !state.logs) return;
  for (const auto& coordinator : state.group_coordinators->all()) {
    for (const auto& listing : coordinator->list_groups()) {
      const auto committed = coordinator->fetch_offsets(listing.group_id, std::nullopt);
      for (const auto& offset : committed.offsets) {
        if (offset.offset < 0) continue;
        auto log = state.logs->get({offset.topic, offset.partition});
        if (!log) continue;
        const Labels labels = {{"consumergroup", listing.group_id},
                               {"topic", offset.topic},
                               {"partition", std::to_string(offset.partition)}};
        out.value("kafka_consumergroup_current_offset", "The group's committed offset", labels,
                  static_cast<double>(offset.offset));
        out.value("kafka_consumergroup_lag", "Records between the group's committed offset and the log end", labels,
                  static_cast<double>(std::max<std::int64_t>(log->log_end_offset() - offset.offset, 0)));
      }
    }
  }
}

}  // namespace

std::string_view api_name(std::int16_t api_key) {
  return api_key >= 0 && static_cast<std::size_t>(api_key) < kApiNames.size() ? kApiNames[static_cast<std::size_t>(api_key)]
                                                                                : "Unknown";
}

BrokerMetrics::BrokerMetrics() {
  for (std::size_t key = 0; key < kApiNames.size(); ++key) {
    const Labels labels = {{"request", std::string(kApiNames[key])}};
    requests_[key] = &registry_.counter("kafka_network_requestmetrics_requests_total", "Requests answered, by API", labels);
    request_time_[key] = &registry_.histogram("bulwark_request_total_time_ms",
                                              "Time from a request's arrival to its answer, by API", labels);
  }
  bytes_in_ = &registry_.counter("kafka_server_brokertopicmetrics_bytesin_total", "Bytes produced to this broker");
  bytes_out_ = &registry_.counter("kafka_server_brokertopicmetrics_bytesout_total", "Bytes fetched from this broker");
  messages_in_ = &registry_.counter("kafka_server_brokertopicmetrics_messagesin_total", "Records produced to this broker");
  isr_shrinks_ = &registry_.counter("kafka_server_replicamanager_isrshrinks_total",
                                    "ISR shrinks of partitions this broker leads");
  isr_expands_ = &registry_.counter("kafka_server_replicamanager_isrexpands_total",
                                    "ISR expands of partitions this broker leads");
  registry_.add_collector([this](metrics::Sample& out) {
    for (std::size_t key = 0; key < kApiNames.size(); ++key) {
      if (request_time_[key]->count() == 0) continue;
      for (double q : kQuantiles) {
        out.value("kafka_network_requestmetrics_totaltimems", "Request time quantiles in ms, by API (JMX exporter form)",
                  {{"request", std::string(kApiNames[key])}, {"quantile", fmt::format("{}", q)}},
                  request_time_[key]->quantile_ms(q));
      }
    }
  });
}

void BrokerMetrics::request_done(std::int16_t api_key, std::chrono::microseconds elapsed) {
  if (api_key < 0 || static_cast<std::size_t>(api_key) >= kApiNames.size()) return;
  requests_[static_cast<std::size_t>(api_key)]->add();
  request_time_[static_cast<std::size_t>(api_key)]->observe_ms(static_cast<double>(elapsed.count()) / 1000.0);
}

void BrokerMetrics::produced(const std::string& topic, std::size_t bytes, std::int64_t records) {
  bytes_in_->add(bytes);
  messages_in_->add(static_cast<std::uint64_t>(std::max<std::int64_t>(records, 0)));
  registry_.counter("kafka_server_brokertopicmetrics_bytesin_total", "", {{"topic", topic}}).add(bytes);
  registry_.counter("kafka_server_brokertopicmetrics_messagesin_total", "", {{"topic", topic}})
      .add(static_cast<std::uint64_t>(std::max<std::int64_t>(records, 0)));
}

void BrokerMetrics::throttled(std::string_view quota_type, const std::string& user, const std::string& client_id,
                              std::int64_t ms) {
  const metrics::Labels labels = {{"user", user}, {"client_id", client_id}};
  const std::string prefix = "kafka_server_" + std::string(quota_type);
  registry_.counter(prefix + "_throttle_time_ms_total", "Milliseconds clients were throttled by their quota", labels)
      .add(static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0)));
  registry_.counter(prefix + "_throttled_total", "Responses that throttled a client over its quota", labels).add();
}

void BrokerMetrics::fetched(const std::string& topic, std::size_t bytes) {
  bytes_out_->add(bytes);
  registry_.counter("kafka_server_brokertopicmetrics_bytesout_total", "", {{"topic", topic}}).add(bytes);
}

void BrokerMetrics::authentication(const std::string& listener, bool succeeded) {
  registry_
      .counter(succeeded ? "kafka_server_socketservermetrics_successful_authentication_total"
                         : "kafka_server_socketservermetrics_failed_authentication_total",
               succeeded ? "SASL logins that succeeded, by listener" : "SASL logins that failed, by listener",
               {{"listener", listener}})
      .add();
}

void BrokerMetrics::handshake_failed(const std::string& listener, std::string_view failure_class) {
  registry_
      .counter("bulwark_tls_handshake_failures_total", "TLS handshakes that failed, by listener and reason",
               {{"listener", listener}, {"reason", std::string(failure_class)}})
      .add();
}

void BrokerMetrics::denied(security::Operation operation, security::ResourceType resource_type) {
  registry_
      .counter("bulwark_authorizer_denials_total", "Requests the authorizer denied, by operation and resource type",
               {{"operation", operation_name(operation)}, {"resource_type", std::string(security::name_of(resource_type))}})
      .add();
}

void BrokerMetrics::isr_changed(bool shrunk) { (shrunk ? isr_shrinks_ : isr_expands_)->add(); }

void add_broker_collectors(BrokerMetrics& metrics, BrokerState& state, net::Server& server, TlsReloader& tls) {
  metrics.registry().add_collector([&state](metrics::Sample& out) {
    collect_partitions(out, state);
    collect_logs(out, state);
    collect_lag(out, state);
  });
  metrics.registry().add_collector([&server](metrics::Sample& out) {
    for (const auto& [listener, open] : server.connections_per_listener())
      out.value("kafka_server_socketservermetrics_connection_count", "Open connections, by listener",
                {{"listener", listener}}, static_cast<double>(open));
  });
  metrics.registry().add_collector([&tls](metrics::Sample& out) {
    const auto now = static_cast<double>(std::time(nullptr));
    for (const auto& cert : tls.certificates())
      out.value("bulwark_tls_certificate_expiry_seconds",
                "Seconds until a certificate expires (negative: expired), by listener and role", 
                {{"listener", cert.listener}, {"role", cert.role}, {"subject", cert.subject}, {"serial", cert.serial}},
                static_cast<double>(cert.not_after) - now);
  });
}

}  // namespace bulwark::broker
