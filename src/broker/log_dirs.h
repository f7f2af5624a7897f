// DescribeLogDirs' answer assembled from what the broker knows of its log dirs (handlers_log_dirs.cpp),
// apart from BrokerState so the per-dir rules (offline dirs, grouping, volume bytes) are unit-testable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/log.h"
#include "wire/generated/describe_log_dirs.h"

namespace bulwark::broker {

struct LogDirPartition {
  storage::TopicPartition tp;
  std::filesystem::path dir;  // the log dir holding it (the parent of its <topic>-<partition> dir)
  std::int64_t size = 0;
  std::int64_t offset_lag = 0;
};

// One result per configured log dir, in log.dirs order, named by its absolute path: an offline dir
// answers KAFKA_STORAGE_ERROR with no topics and unknown (-1) volume bytes; an online one lists its
// partitions by topic (name order) and its volume's total and usable bytes (statvfs).
std::vector<wire::msg::DescribeLogDirsResponse::DescribeLogDirsResult> assemble_log_dirs(
    const std::vector<std::string>& log_dirs, const std::vector<std::filesystem::path>& offline_dirs,
    std::vector<LogDirPartition> partitions);

}  // namespace bulwark::broker
