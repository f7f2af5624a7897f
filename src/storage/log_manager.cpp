#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "base/files.h"
#include "base/log.h"
#include "storage/file.h"
#include "storage/log.h"

namespace bulwark::storage {
namespace {

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char* digits = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out.push_back(digits[v >> 4]);
    out.push_back(digits[v & 0xf]);
  }
  return out;
}

bool is_deleted_dir(const std::string& name) {
  // <topic>-<partition>.<uuid>-delete, as Kafka names partitions on their way out.
  return name.ends_with("-delete") && name.find('.') != std::string::npos;
}

}  // namespace

std::optional<TopicPartition> parse_partition_dir_name(const std::string& name) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  const std::string digits = name.substr(dash + 1);
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  TopicPartition tp;
  tp.topic = name.substr(0, dash);
  tp.partition = std::stoi(digits);
  return tp;
}

std::string partition_dir_name(const TopicPartition& tp) { return tp.topic + "-" + std::to_string(tp.partition); }

LogResult<std::unique_ptr<LogManager>> LogManager::open(std::vector<std::filesystem::path> log_dirs,
                                                        const LogConfig& default_config) {
  if (log_dirs.empty()) return LogFailure(LogError::invalid_argument, "no log directories configured");
  std::unique_ptr<LogManager> manager(new LogManager(std::move(log_dirs), default_config));
  for (const auto& root : manager->log_dirs_) {
    BULWARK_TRY(make_directories(root));
    std::error_code ec;
    std::vector<std::filesystem::path> entries;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
      if (entry.is_directory()) entries.push_back(entry.path());
    }
    if (ec) return LogFailure(LogError::io, "cannot list " + root.string() + ": " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) {
      const std::string name = path.filename().string();
      if (is_deleted_dir(name)) {
        log::info("removing {} left over from a partition deletion", path.string());
        std::filesystem::remove_all(path, ec);
        if (ec) log::warn("cannot remove {}: {}", path.string(), ec.message());
        continue;
      }
      auto tp = parse_partition_dir_name(name);
      if (!tp) continue;  // not a partition (lost+found, stray dirs)
      if (tp->topic == "__cluster_metadata") continue;  // the KRaft metadata log belongs to raft/
      if (manager->logs_.count(*tp)) {
        return LogFailure(LogError::already_exists,
                          "partition " + name + " exists in two log directories (second: " + root.string() + ")");
      }
      auto log = PartitionLog::open(path, default_config);
      if (!log.ok()) return log.error();
      manager->logs_[*tp] = *log;
    }
  }
  return manager;
}

std::shared_ptr<PartitionLog> LogManager::get(const TopicPartition& tp) const {
  std::lock_guard lock(mu_);
  auto it = logs_.find(tp);
  return it == logs_.end() ? nullptr : it->second;
}

LogResult<std::shared_ptr<PartitionLog>> LogManager::get_or_create(const TopicPartition& tp, const LogConfig& config) {
  std::lock_guard lock(mu_);
  if (auto it = logs_.find(tp); it != logs_.end()) return it->second;
  if (tp.topic.empty() || tp.partition < 0 || tp.topic.find('/') != std::string::npos || tp.topic == "." ||
      tp.topic == "..") {
    return LogFailure(LogError::invalid_argument, "invalid topic partition '" + tp.topic + "' " +
                                                      std::to_string(tp.partition));
  }
  // The log dir with the fewest partitions, as Kafka places new ones.
  std::map<std::filesystem::path, std::size_t> counts;
  for (const auto& dir : log_dirs_) counts[dir] = 0;
  for (const auto& [_, log] : logs_) ++counts[log->dir().parent_path()];
  const std::filesystem::path* best = &log_dirs_.front();
  for (const auto& dir : log_dirs_) {
    if (counts[dir] < counts[*best]) best = &dir;
  }
  auto log = PartitionLog::open(*best / partition_dir_name(tp), config);
  if (!log.ok()) return log.error();
  BULWARK_TRY(sync_directory(*best));
  logs_[tp] = *log;
  return *log;
}

LogStatus LogManager::remove(const TopicPartition& tp) {
  std::shared_ptr<PartitionLog> log;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(tp);
    if (it == logs_.end()) {
      return LogFailure(LogError::not_found, "no partition " + partition_dir_name(tp) + " in the log dirs");
    }
    log = it->second;
    logs_.erase(it);
  }
  log->close();
  const auto dir = log->dir();
  auto doomed = dir;
  doomed += "." + random_hex(16) + "-delete";
  std::error_code ec;
  std::filesystem::rename(dir, doomed, ec);
  if (ec) return LogFailure(LogError::io, "cannot rename " + dir.string() + ": " + ec.message());
  BULWARK_TRY(sync_directory(dir.parent_path()));
  std::filesystem::remove_all(doomed, ec);
  if (ec) return LogFailure(LogError::io, "cannot remove " + doomed.string() + ": " + ec.message());
  return LogDone{};
}

std::vector<TopicPartition> LogManager::list() const {
  std::lock_guard lock(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, _] : logs_) out.push_back(tp);
  return out;
}

LogStatus LogManager::maybe_flush_all(std::int64_t now_ms) {
  std::vector<std::shared_ptr<PartitionLog>> logs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, log] : logs_) logs.push_back(log);
  }
  LogStatus result = LogDone{};
  for (const auto& log : logs) {
    auto flushed = log->maybe_flush(now_ms);
    if (!flushed.ok() && result.ok()) result = flushed;
  }
  return result;
}

LogStatus LogManager::enforce_retention_all(std::int64_t now_ms) {
  std::vector<std::shared_ptr<PartitionLog>> logs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, log] : logs_) logs.push_back(log);
  }
  LogStatus result = LogDone{};
  for (const auto& log : logs) {
    auto deleted = log->enforce_retention(now_ms);
    if (!deleted.ok() && result.ok()) result = deleted.error();
  }
  return result;
}

}  // namespace bulwark::storage
