// `bulwark metadata dump <dir>`: the metadata log in words, as kafka-dump-log.sh
// --cluster-metadata-decoder prints it: every entry's offset and epoch, the leader changes, and each
// KIP-631 record with the fields an operator looks for. SCRAM keys are never printed; config values of
// keys that look secret are hidden.
//
// Reads <dir>/metadata.log (dir: a node's __cluster_metadata-0) and names the snapshots (KIP-630
// checkpoints) beside it; their records are not decoded here. Exit codes: 0 done, 1 unreadable.
#include <cstdio>
#include <string>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/files.h"
#include "cli/command.h"
#include "config/config.h"
#include "cluster/quorum_store.h"
#include "cluster/raft_wire.h"
#include "cluster/records.h"

namespace {

using namespace bulwark;
namespace rec = cluster::rec;

// The fields worth reading of the records operators meet; the name alone for the others.
std::string describe(const cluster::AnyRecord& record) {
  return std::visit(
      [&](const auto& r) -> std::string {
        using R = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<R, rec::TopicRecord>)
          return fmt::format("name={} id={}", r.name, cluster::uuid_string(r.topic_id));
        else if constexpr (std::is_same_v<R, rec::PartitionRecord>)
          return fmt::format("topic={} partition={} replicas={} isr={} leader={} leaderEpoch={}",
                             cluster::uuid_string(r.topic_id), r.partition_id, r.replicas, r.isr, r.leader,
                             r.leader_epoch);
        else if constexpr (std::is_same_v<R, rec::PartitionChangeRecord>)
          return fmt::format("topic={} partition={} leader={}", cluster::uuid_string(r.topic_id), r.partition_id,
                             r.leader);
        else if constexpr (std::is_same_v<R, rec::RemoveTopicRecord>)
          return fmt::format("id={}", cluster::uuid_string(r.topic_id));
        else if constexpr (std::is_same_v<R, rec::RegisterBrokerRecord>) {
          std::string endpoints;
          for (const auto& e : r.end_points) endpoints += fmt::format("{}{}://{}:{}", endpoints.empty() ? "" : ",", e.name, e.host, e.port);
          return fmt::format("broker={} epoch={} fenced={} endpoints=[{}]", r.broker_id, r.broker_epoch, r.fenced, endpoints);
        } else if constexpr (std::is_same_v<R, rec::FenceBrokerRecord> || std::is_same_v<R, rec::UnfenceBrokerRecord>)
          return fmt::format("broker={} epoch={}", r.id, r.epoch);
        else if constexpr (std::is_same_v<R, rec::ConfigRecord>)
          return fmt::format("resourceType={} resource={} {}={}", r.resource_type, r.resource_name, r.name,
                             config::is_sensitive_key(r.name) ? "[hidden]" : r.value.value_or("(deleted)"));
        else if constexpr (std::is_same_v<R, rec::AccessControlEntryRecord>)
          return fmt::format("resourceType={} resource={} pattern={} principal={} host={} operation={} permission={}",
                             r.resource_type, r.resource_name, r.pattern_type, r.principal, r.host, r.operation,
                             r.permission_type);
        else if constexpr (std::is_same_v<R, rec::UserScramCredentialRecord>)
          return fmt::format("user={} mechanism={} iterations={} (keys not shown)", r.name, r.mechanism, r.iterations);
        else if constexpr (std::is_same_v<R, rec::FeatureLevelRecord>)
          return fmt::format("{}={}", r.name, r.feature_level);
        else if constexpr (std::is_same_v<R, rec::ProducerIdsRecord>)
          return fmt::format("broker={} nextProducerId={}", r.broker_id, r.next_producer_id);
        else
          return "";
      },
      record.record);
}

int run_dump(const std::string& dir) {
  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(dir, ec))
    if (file.path().extension() == ".checkpoint")
      std::printf("snapshot %s (the log below starts after it)\n", file.path().filename().c_str());
  auto path = std::filesystem::path(dir) / cluster::kMetadataLogFile;
  auto bytes = read_file(path);
  if (!bytes.ok()) {
    std::fprintf(stderr, "error: %s\n", bytes.error().message.c_str());
    return 1;
  }
  if (bytes->empty()) return 0;
  auto entries = cluster::decode_entries(as_bytes(*bytes));
  if (!entries.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", path.c_str(), entries.error().message.c_str());
    return 1;
  }
  for (const auto& entry : *entries) {
    if (entry.kind == raft::EntryKind::leader_change) {
      raft::LeaderChange change;
      if (raft::decode_leader_change(entry.payload, change))
        std::printf("offset %lld epoch %d LeaderChange leader=%d voters=%s\n", static_cast<long long>(entry.offset),
                    entry.epoch, change.leader_id, fmt::format("{}", change.voters).c_str());
      continue;
    }
    auto record = cluster::decode_record(entry.payload);
    if (!record.ok()) {
      std::printf("offset %lld epoch %d (undecodable: %s)\n", static_cast<long long>(entry.offset), entry.epoch,
                  record.error().message.c_str());
      continue;
    }
    std::printf("offset %lld epoch %d %s v%d %s\n", static_cast<long long>(entry.offset), entry.epoch,
                std::string(record->name()).c_str(), record->version, describe(*record).c_str());
  }
  return 0;
}

void add_metadata_commands(CLI::App& app) {
  auto* group = cli::command_group(app, "metadata", "The cluster metadata log, as kafka-dump-log.sh decodes it");
  auto dir = std::make_shared<std::string>();
  auto* cmd = group->add_subcommand("dump", "Every record of a node's metadata log, in words");
  cmd->add_option("dir", *dir, "The node's __cluster_metadata-0 directory")->required();
  cli::set_action(cmd, [dir] { return run_dump(*dir); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_metadata_commands);
