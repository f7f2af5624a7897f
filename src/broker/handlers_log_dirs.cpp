// DescribeLogDirs (KIP-113, `kafka-log-dirs.sh --describe`): every log dir of this broker with the
// partitions it holds, their sizes and lag, and (v4) the volume's total and usable bytes.
#include <sys/statvfs.h>

#include <algorithm>
#include <map>
#include <set>

#include "broker/log_dirs.h"
#include "broker/state.h"

namespace bulwark::broker {
namespace {

using Response = wire::msg::DescribeLogDirsResponse;
using Request = wire::msg::DescribeLogDirsRequest;

// Log dirs compare as absolute paths, minus "." segments and a trailing slash.
std::filesystem::path normal_dir(const std::filesystem::path& dir) {
  auto normal = std::filesystem::absolute(dir).lexically_normal();
  return normal.has_filename() ? normal : normal.parent_path();
}

// The partitions the request names (null topics: every partition).
bool wanted(const Request& request, const storage::TopicPartition& tp) {
  if (!request.topics) return true;
  for (const auto& topic : *request.topics) {
    if (topic.topic != tp.topic) continue;
    for (auto index : topic.partitions)
      if (index == tp.partition) return true;
  }
  return false;
}

// Kafka's offset lag of a current (non-future) log: max(HWM - LEO, 0); -1 when no replica is hosted.
std::int64_t offset_lag(const BrokerState& state, const storage::TopicPartition& tp, const storage::PartitionLog& log) {
  auto hosted = state.replicas ? state.replicas->get(tp) : nullptr;
  if (!hosted) return -1;
  return std::max<std::int64_t>(hosted->high_watermark() - log.log_end_offset(), 0);
}

void add_volume_space(const std::filesystem::path& dir, Response::DescribeLogDirsResult& out) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return;  // stays -1: unknown
  out.total_bytes = static_cast<std::int64_t>(fs.f_blocks) * static_cast<std::int64_t>(fs.f_frsize);
  out.usable_bytes = static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
}

std::vector<LogDirPartition> local_partitions(const BrokerState& state, const Request& request) {
  std::vector<LogDirPartition> out;
  for (const auto& tp : state.logs->list()) {
    auto log = state.logs->get(tp);
    if (!log || !wanted(request, tp)) continue;
    out.push_back({tp, log->dir().parent_path(), log->size_bytes(), offset_lag(state, tp, *log)});
  }
  return out;
}

}  // namespace

std::vector<Response::DescribeLogDirsResult> assemble_log_dirs(const std::vector<std::string>& log_dirs,
                                                               const std::vector<std::filesystem::path>& offline_dirs,
                                                               std::vector<LogDirPartition> partitions) {
  std::set<std::filesystem::path> offline;
  for (const auto& dir : offline_dirs) offline.insert(normal_dir(dir));
  std::map<std::filesystem::path, std::map<std::string, std::vector<Response::DescribeLogDirsPartition>>> by_dir;
  for (auto& p : partitions) {
    auto& out = by_dir[normal_dir(p.dir)][p.tp.topic].emplace_back();
    out.partition_index = p.tp.partition;
    out.partition_size = p.size;
    out.offset_lag = p.offset_lag;
  }
  std::vector<Response::DescribeLogDirsResult> results;
  for (const auto& configured : log_dirs) {
    const auto dir = normal_dir(configured);
    auto& result = results.emplace_back();
    result.log_dir = dir.string();
    if (offline.contains(dir)) {
      result.error_code = code(KafkaError::kafka_storage_error);
      continue;
    }
    add_volume_space(dir, result);
    for (auto& [topic, topic_partitions] : by_dir[dir]) {
      std::sort(topic_partitions.begin(), topic_partitions.end(),
                [](const auto& a, const auto& b) { return a.partition_index < b.partition_index; });
      result.topics.push_back({topic, std::move(topic_partitions), {}});
    }
  }
  return results;
}

// DESCRIBE on the cluster, as Kafka: without it the answer lists no dir (and, v3+, says why).
void handle_describe_log_dirs(BrokerState& state, Call& call) {
  Request request;
  if (!decode_request(call, request)) return;
  Response response;
  if (!authorized_cluster(state, call, security::Operation::describe))
    response.error_code = code(KafkaError::cluster_authorization_failed);
  else if (state.logs)
    response.results = assemble_log_dirs(state.config.log_dirs, state.logs->offline_dirs(),
                                         local_partitions(state, request));
  respond(call, response);
}

}  // namespace bulwark::broker
